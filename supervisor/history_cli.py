"""``netra-supervisor history``: read the SQLite history (read-only, never the writer).

This version answers ``runs``, ``iterations [RUN]`` and ``failures [ITER]``; flaky,
slowest, diff, test and export are planned (issue 6) and not offered yet.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

from supervisor.config import ConfigError, load_config

_QUERIES = {
    "runs": (
        "select r.id as run, r.started_at, r.finished_at, r.status, r.git_sha, "
        "(select count(*) from iterations i where i.run_id = r.id) as iterations "
        "from runs r order by r.id desc"
    ),
    "iterations": (
        "select seq as iteration, started_at, finished_at, deploy_revision as revision, status, "
        "passed, failed, errors, hung, crashed, skipped from iterations where run_id = ? "
        "order by seq"
    ),
    "failures": (
        "select t.suite, t.nodeid, r.outcome, round(r.duration, 3) as duration, r.message "
        "from results r join tests t on t.id = r.test_id "
        "where r.iteration_id = ? and r.outcome in ('failed', 'error', 'hung', 'crashed') "
        "order by r.id"
    ),
}


def resolve_db(db: str | None, config: str | None) -> Path:
    if db:
        path = Path(db)
    else:
        try:
            cfg = load_config(config)
            path = cfg.resolve(cfg.run.db)
        except ConfigError:
            if config:
                raise
            path = Path(".netra/history.db")
    if not path.exists():
        raise ConfigError(f"{path}: no history database here; pass --db PATH or run first")
    return path


def connect_readonly(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    return conn


def history_command(
    what: str, arg: int | None, db: str | None, config: str | None, as_json: bool, out=None
) -> int:
    out = out or sys.stdout
    conn = connect_readonly(resolve_db(db, config))
    try:
        rows = _rows(conn, what, arg)
    finally:
        conn.close()
    if as_json:
        out.write(json.dumps(rows, indent=2) + "\n")
    else:
        out.write(format_table(rows) + "\n")
    return 0


def _rows(conn: sqlite3.Connection, what: str, arg: int | None) -> list[dict[str, Any]]:
    if what == "runs":
        return [dict(r) for r in conn.execute(_QUERIES["runs"])]
    latest = conn.execute("select max(id) from runs").fetchone()[0]
    if latest is None:
        return []
    if what == "iterations":
        return [dict(r) for r in conn.execute(_QUERIES["iterations"], (arg or latest,))]
    # failures [ITER]: an iteration of the latest run, its last one by default
    seq = (
        arg
        or conn.execute("select max(seq) from iterations where run_id = ?", (latest,)).fetchone()[0]
    )
    row = conn.execute(
        "select id from iterations where run_id = ? and seq = ?", (latest, seq)
    ).fetchone()
    if row is None:
        raise ConfigError(f"history failures: run {latest} has no iteration {seq}")
    return [dict(r) for r in conn.execute(_QUERIES["failures"], (row[0],))]


def format_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(nothing recorded)"
    headers = list(rows[0])
    cells = [
        [("" if r[h] is None else str(r[h])).replace("\n", " ")[:120] for h in headers]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)
