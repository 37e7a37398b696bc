"""Read-only access to the history database.

Everyone but the writer reads through :func:`connect_readonly` (``mode=ro``), which is
safe while a run is writing (WAL). The helpers return plain dicts keyed by the
contract column names. The full ``history`` command builds on these.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any


def connect_readonly(path: str | Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    """Open ``path`` read-only; raises ``FileNotFoundError`` when it does not exist."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"no history database at {path}")
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout)
    conn.row_factory = sqlite3.Row
    return conn


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [col[0] for col in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def runs(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Every run, oldest first, with its iteration count."""
    return _dicts(
        conn.execute(
            "SELECT r.*, (SELECT COUNT(*) FROM iterations i WHERE i.run_id = r.id)"
            " AS iterations FROM runs r ORDER BY r.id"
        )
    )


def latest_run_id(conn: sqlite3.Connection) -> int | None:
    """The id of the most recent run, or None on an empty database."""
    row = conn.execute("SELECT MAX(id) FROM runs").fetchone()
    return None if row is None or row[0] is None else int(row[0])


def iterations(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    """The iterations of one run, in order (contract columns of ``iterations``)."""
    return _dicts(
        conn.execute("SELECT * FROM iterations WHERE run_id = ? ORDER BY seq, id", (run_id,))
    )


def phases(conn: sqlite3.Connection, run_id: int, seq: int) -> list[dict[str, Any]]:
    """The phases of iteration ``seq`` of a run, in order."""
    return _dicts(
        conn.execute(
            "SELECT p.* FROM phases p JOIN iterations i ON i.id = p.iteration_id"
            " WHERE i.run_id = ? AND i.seq = ? ORDER BY p.seq, p.id",
            (run_id, seq),
        )
    )


def results_for_iteration(conn: sqlite3.Connection, run_id: int, seq: int) -> list[dict[str, Any]]:
    """Every result of iteration ``seq`` of a run, in the order they were written.

    Each dict: suite, nodeid, file, outcome, attempt, duration, started_at, message,
    longrepr, dump, worker, phase (name, or None) and phase_seq.
    """
    return _dicts(
        conn.execute(
            "SELECT t.suite, t.nodeid, t.file, r.outcome, r.attempt, r.duration,"
            " r.started_at, r.message, r.longrepr, r.dump, r.worker,"
            " p.name AS phase, p.seq AS phase_seq"
            " FROM results r"
            " JOIN iterations i ON i.id = r.iteration_id"
            " JOIN tests t ON t.id = r.test_id"
            " LEFT JOIN phases p ON p.id = r.phase_id"
            " WHERE i.run_id = ? AND i.seq = ? ORDER BY r.id",
            (run_id, seq),
        )
    )
