"""What the quarantine decisions read from the history (read-only connections).

Two questions, both answered by :mod:`supervisor.core.flips` from these rows: which
tests flipped between pass and fail under one revision within a window (``quarantine
suggest``, ``[run] auto_quarantine``), and what the quarantined tests' latest outcomes
are (could they come out). A **revision** is what ``history flaky`` groups by (see
:mod:`supervisor.store.canned`): the deploy revision, else the run's git sha, else the run.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from supervisor.store.schema import FAILING_ORDER, FAILING_SQL, sql_list

_REVISION = "COALESCE(i.deploy_revision, 'git:' || ru.git_sha, 'run ' || i.run_id)"


def flip_rows(conn: sqlite3.Connection, since: str) -> list[tuple[str, str, str, str]]:
    """``(suite, nodeid, revision, outcome)`` of every pass or failure, in iterations
    started at or after ``since`` (UTC ISO text), of the tests that did not pass at
    least once there; each test's rows oldest first (what ``count_flips`` reads).

    Starts from the partial index of non-passing results, reads each candidate's
    (iteration, outcome) from the covering test-history index, and names revisions
    and tests in Python (a few hundred iterations, the candidates only): about 0.3 s
    for the whole of a 1 000 000-result history (``bench/history.py``'s mix)."""
    revision = {
        iteration_id: rev
        for iteration_id, rev in conn.execute(
            f"SELECT i.id, {_REVISION} FROM iterations i JOIN runs ru ON ru.id = i.run_id"
            " WHERE i.started_at >= ?",
            (since,),
        )
    }
    if not revision:
        return []
    first = min(revision)
    names = {
        test_id: (suite, nodeid)
        for test_id, suite, nodeid in conn.execute(
            "SELECT t.id, t.suite, t.nodeid FROM tests t WHERE t.id IN"
            f" (SELECT DISTINCT test_id FROM results WHERE outcome IN {FAILING_SQL}"
            " AND iteration_id >= ?)",
            (first,),
        )
    }
    counted = sql_list(("passed", *FAILING_ORDER))
    rows = []
    for test_id, (suite, nodeid) in sorted(names.items()):
        for iteration_id, outcome in conn.execute(
            "SELECT iteration_id, outcome FROM results WHERE test_id = ? AND iteration_id >= ?"
            f" AND outcome IN {counted} ORDER BY iteration_id, id",
            (test_id, first),
        ):
            rev = revision.get(iteration_id)
            if rev is not None:
                rows.append((suite, nodeid, rev, outcome))
    return rows


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
