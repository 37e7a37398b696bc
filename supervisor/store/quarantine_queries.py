"""What the quarantine decisions read from the history (read-only connections).

What the quarantined tests' latest outcomes are (could they come out), answered by
:mod:`supervisor.core.flips` from these rows. Which tests flipped under one revision
(``quarantine suggest``, ``[run] auto_quarantine``) is ``history flaky``'s own query
(:func:`supervisor.store.triage.flaky`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable


def all_tests(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """Every (suite, nodeid) the history knows (the quarantine's globs match these)."""
    return [(suite, nodeid) for suite, nodeid in conn.execute("SELECT suite, nodeid FROM tests")]


def latest_outcomes(
    conn: sqlite3.Connection, tests: Iterable[tuple[str, str]], newest: int
) -> dict[tuple[str, str], list[str]]:
    """(suite, nodeid) → its last ``newest`` outcomes, newest first, for each of
    ``tests`` the history has (one index seek each)."""
    latest: dict[tuple[str, str], list[str]] = {}
    for suite, nodeid in tests:
        found = conn.execute(
            "SELECT id FROM tests WHERE suite = ? AND nodeid = ?", (suite, nodeid)
        ).fetchone()
        if found is None:
            continue
        latest[(suite, nodeid)] = [
            outcome
            for (outcome,) in conn.execute(
                "SELECT outcome FROM results WHERE test_id = ?"
                " ORDER BY iteration_id DESC, id DESC LIMIT ?",
                (found[0], newest),
            )
        ]
    return latest
