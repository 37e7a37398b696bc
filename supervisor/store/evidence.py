"""Reading the ``evidence`` table: what the backend said beside each non-pass.

Read-only, for ``history test`` (:func:`evidence_of_test`: the newest non-passes of one test) and the TUI's
failure report (:func:`run_evidence`: this run's results, by the names events give them). A history made
before migration ``0006_evidence`` has no such table: that reads as no evidence.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from supervisor.core.evidence import EVIDENCE_OUTCOMES
from supervisor.store.schema import sql_list

_COLUMNS = "e.result_id, e.source, e.lines, e.omitted, e.first_at, e.last_at"

#: (iteration seq, phase seq, suite, nodeid, attempt): a result as events name it
ResultKey = tuple[int, int, str, str, int]


def has_evidence(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'evidence'"
        ).fetchone()
        is not None
    )


def _rows(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [col[0] for col in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


def evidence_of_test(
    conn: sqlite3.Connection, test_id: int, results: int = 3
) -> list[dict[str, Any]]:
    """Evidence of the newest ``results`` non-passing results of a test that have any,
    newest first: one dict per row, with the result's iteration, outcome and attempt."""
    if not has_evidence(conn):
        return []
    outcomes = sql_list(sorted(EVIDENCE_OUTCOMES))
    return _rows(
        conn.execute(
            f"SELECT i.run_id || '.' || i.seq AS iteration, r.outcome, r.attempt, {_COLUMNS}"
            " FROM evidence e JOIN results r ON r.id = e.result_id"
            " JOIN iterations i ON i.id = r.iteration_id"
            " WHERE e.result_id IN (SELECT r2.id FROM results r2 WHERE r2.test_id = ?"
            f" AND r2.outcome IN {outcomes} AND EXISTS (SELECT 1 FROM evidence e2"
            " WHERE e2.result_id = r2.id) ORDER BY r2.id DESC LIMIT ?)"
            " ORDER BY e.result_id DESC, e.id",
            (test_id, results),
        )
    )


def run_evidence(
    db_path: str | Path | None, run_id: int, keys: Iterable[ResultKey]
) -> dict[ResultKey, list[dict[str, Any]]]:
    """Evidence rows of this run's results named by ``keys``, read-only from the
    history at ``db_path`` (the TUI's failure report). A history that cannot be read,
    or evidence not written yet, gives nothing for that result."""
    found: dict[ResultKey, list[dict[str, Any]]] = {}
    wanted = set(keys)
    if not db_path or not wanted:
        return found
    from supervisor.store.queries import connect_readonly

    try:
        conn = connect_readonly(db_path, timeout=1.0)
    except (OSError, sqlite3.Error):
        return found
    try:
        if not has_evidence(conn):
            return found
        for key in wanted:
            iteration, phase, suite, nodeid, attempt = key
            rows = _rows(
                conn.execute(
                    f"SELECT {_COLUMNS} FROM evidence e JOIN results r ON r.id = e.result_id"
                    " JOIN iterations i ON i.id = r.iteration_id"
                    " JOIN tests t ON t.id = r.test_id LEFT JOIN phases p ON p.id = r.phase_id"
                    " WHERE i.run_id = ? AND i.seq = ? AND COALESCE(p.seq, 0) = ?"
                    " AND t.suite = ? AND t.nodeid = ? AND r.attempt = ? ORDER BY e.id",
                    (run_id, iteration, phase, suite, nodeid, attempt),
                )
            )
            if rows:
                found[key] = rows
    except sqlite3.Error:
        pass
    finally:
        conn.close()
    return found


def evidence_text(rows: list[dict[str, Any]]) -> str:
    """``history test``'s block: the newest non-pass's evidence (rows of
    :func:`evidence_of_test`), a heading per source and its lines indented."""
    newest = [row for row in rows if row["result_id"] == rows[0]["result_id"]]
    head = newest[0]
    out = [
        f"what the backend said while it ran (iteration {head['iteration']},"
        f" {head['outcome']}, attempt {head['attempt']}):"
    ]
    for row in newest:
        out.append(f"  {describe(row)}")
        out.extend("    " + line for line in row["lines"].splitlines())
    return "\n".join(out)


def describe(row: dict[str, Any]) -> str:
    """The heading of one evidence row: its source, how many lines, from when to when."""
    count = row["lines"].count("\n") + 1 if row["lines"] else 0
    omitted = row.get("omitted") or 0
    count -= 1 if omitted else 0  # the "… N more lines …" marker
    what = f"{count + omitted} line{'s' if count + omitted != 1 else ''}"
    if omitted:
        what += f", {omitted} left out"
    span = ""
    if row.get("first_at") and row.get("last_at"):
        span = f", {_clock(row['first_at'])} – {_clock(row['last_at'])}"
    return f"{row['source']} ({what}{span})"


def _clock(at: str) -> str:
    """``01:42:08.060`` of ``2026-12-01T01:42:08.060+00:00``."""
    return at[11:23] if len(at) >= 23 else at
