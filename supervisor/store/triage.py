"""Triage from the history: new / still / fixed, the first bad revision, flaky tests
over a window. Read-only queries returning JSON-ready values (``queries`` holds the
rest of what ``history`` asks; rendering is ``supervisor.history_cli``'s job).

``change`` is not a column: it is computed here from each test's previous result (the
latest in an earlier iteration), so a history written before it existed answers the
same. A run labels its live results the same way (``core.changes``), against the
last 20 iterations it reads as it starts.

A test's **streak** is its unbroken run of non-passing results up to an iteration:
``first_bad_revision`` is the revision of the earliest of them, ``last_good_revision``
the revision of the pass just before (None: it never passed). Skipped results neither
break nor extend a streak. Revisions are named as ``history flaky`` names them
(:data:`supervisor.store.canned.REVISION_SQL`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from supervisor.core.changes import PASSING, label
from supervisor.core.events import FAILING_OUTCOMES
from supervisor.core.quarantine import QuarantineList
from supervisor.store import canned
from supervisor.store.queries import connect_readonly, wilson

_GIT_SHA = re.compile(r"^(?:git:)?([0-9a-f]{7,40})$")


def previous_outcomes(
    conn: sqlite3.Connection, iteration_id: int, test_ids: Iterable[int]
) -> dict[int, str | None]:
    """Each test's latest outcome in an iteration before ``iteration_id`` (None: no
    earlier result). One index seek per test (``idx_results_test_history``)."""
    found: dict[int, str | None] = {}
    for test_id in test_ids:
        if test_id in found:
            continue
        row = conn.execute(
            "SELECT outcome FROM results WHERE test_id = ? AND iteration_id < ?"
            " ORDER BY iteration_id DESC, id DESC LIMIT 1",
            (test_id, iteration_id),
        ).fetchone()
        found[test_id] = None if row is None else str(row[0])
    return found


def changes(
    conn: sqlite3.Connection, iteration_id: int, final: dict[int, str]
) -> dict[int, str | None]:
    """``change`` of each test's final outcome in one iteration (test id -> outcome):
    new / still for a result that did not pass, fixed for a pass after one."""
    before = previous_outcomes(conn, iteration_id, final)
    return {test_id: label(before[test_id], outcome) for test_id, outcome in final.items()}


def annotate_failures(
    conn: sqlite3.Connection, iteration_id: int, groups: list[dict[str, Any]]
) -> None:
    """Add ``change``, the streak's revisions and ``git_range`` to each result of
    ``queries.failures`` groups (in place): what ``history failures`` shows."""
    results = [r for g in groups for r in g["results"]]
    ids = {
        (r["suite"], r["nodeid"]): int(row[0])
        for r in results
        for row in conn.execute(
            "SELECT id FROM tests WHERE suite = ? AND nodeid = ?", (r["suite"], r["nodeid"])
        )
    }
    before = previous_outcomes(conn, iteration_id, ids.values())
    streaks: dict[int, dict[str, Any] | None] = {}
    for r in results:
        test_id = ids[(r["suite"], r["nodeid"])]
        if test_id not in streaks:
            streaks[test_id] = streak(conn, test_id, iteration_id)
        info = streaks[test_id] or {}
        r["change"] = label(before[test_id], r["outcome"])
        for key in ("first_bad_revision", "last_good_revision", "git_range"):
            r[key] = info.get(key)
        r["first_bad_iteration"] = info.get("first_bad_iteration")
        r["last_good_iteration"] = info.get("last_good_iteration")


def label_diff(data: dict[str, Any]) -> dict[str, int]:
    """Add ``change`` to the items of ``queries.diff`` (in place) and count them: a
    failure in B is new unless it did not pass in A; a pass after a failure is fixed.
    Against A, which by default is the iteration just before B."""
    counts = {"new": 0, "still": 0, "fixed": 0}
    for section in ("newly_failing", "still_failing", "fixed", "new", "removed", "changed"):
        for item in data[section]:
            change = label(item["before"], item["after"]) if item["after"] else None
            item["change"] = change
            if change is not None:
                counts[change] += 1
    return counts


def git_range(last_good: str | None, first_bad: str | None) -> str | None:
    """``git log A..B`` when both revisions are git commits (a sha, or ``git:SHA``) and
    differ: the commits that came in between, for a person to read."""
    if not last_good or not first_bad:
        return None
    good, bad = _GIT_SHA.match(last_good), _GIT_SHA.match(first_bad)
    if good is None or bad is None or good.group(1) == bad.group(1):
        return None
    return f"git log {good.group(1)}..{bad.group(1)}"


def streak(
    conn: sqlite3.Connection, test_id: int, upto_iteration_id: int | None = None
) -> dict[str, Any] | None:
    """The test's current streak of non-passes as of ``upto_iteration_id`` (default:
    its latest result), or None when its latest result there is not a failure.

    Reads the test's results newest first and stops at the first pass, so a long
    history costs only the streak's length.
    """
    upto = (1 << 62) if upto_iteration_id is None else upto_iteration_id
    cursor = conn.execute(
        f"SELECT r.outcome, {canned.REVISION_SQL} AS revision, i.run_id, i.seq"
        " FROM results r JOIN iterations i ON i.id = r.iteration_id"
        " JOIN runs ru ON ru.id = i.run_id"
        " WHERE r.test_id = ? AND r.iteration_id <= ?"
        " ORDER BY r.iteration_id DESC, r.id DESC",
        (test_id, upto),
    )
    first_bad: tuple[str, str] | None = None
    last_good: tuple[str, str] | None = None
    failures = 0
    for outcome, revision, run_id, seq in cursor:
        if outcome in FAILING_OUTCOMES:
            first_bad = (str(revision), f"{run_id}.{seq}")
            failures += 1
        elif outcome in PASSING:
            if first_bad is None:
                return None  # its latest result that counts passed: no streak
            last_good = (str(revision), f"{run_id}.{seq}")
            break
    cursor.close()
    if first_bad is None:
        return None
    return {
        "first_bad_revision": first_bad[0],
        "first_bad_iteration": first_bad[1],
        "last_good_revision": last_good[0] if last_good else None,
        "last_good_iteration": last_good[1] if last_good else None,
        "failures_in_streak": failures,
        "git_range": git_range(last_good[0] if last_good else None, first_bad[0]),
    }


def streak_of(conn: sqlite3.Connection, suite: str, nodeid: str) -> dict[str, Any] | None:
    """:func:`streak` of a test named by suite and node id (None: not recorded)."""
    row = conn.execute(
        "SELECT id FROM tests WHERE suite = ? AND nodeid = ?", (suite, nodeid)
    ).fetchone()
    return None if row is None else streak(conn, int(row[0]))


def describe_streaks(
    db_path: str | Path | None, tests: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """:func:`describe_streak` of each ``(suite, nodeid)``, read-only from the history
    at ``db_path`` (the TUI's failure report). A history that cannot be read, or a test
    not written yet, gives no line: the report shows the rest."""
    lines: dict[tuple[str, str], str] = {}
    if not db_path:
        return lines
    try:
        conn = connect_readonly(db_path, timeout=1.0)
    except (OSError, sqlite3.Error):
        return lines
    try:
        for suite, nodeid in tests:
            if (suite, nodeid) not in lines:
                lines[(suite, nodeid)] = describe_streak(streak_of(conn, suite, nodeid))
    except sqlite3.Error:
        pass
    finally:
        conn.close()
    return lines


def describe_streak(info: dict[str, Any] | None) -> str:
    """One line for a person: since when it fails and what to look at."""
    if info is None:
        return ""
    since = f"failing since revision {info['first_bad_revision']}"
    since += f" (iteration {info['first_bad_iteration']}"
    count = info["failures_in_streak"]
    since += f", {count} non-pass{'es' if count != 1 else ''} in a row)"
    if info["last_good_revision"] is None:
        return since + "; never passed in the history"
    good = (
        f"; last passed at revision {info['last_good_revision']}"
        f" (iteration {info['last_good_iteration']})"
    )
    rng = f": {info['git_range']}" if info["git_range"] else ""
    return since + good + rng


def flaky(
    conn: sqlite3.Connection,
    since: str,
    quarantined: QuarantineList | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Tests that passed and failed (or hung) under one revision, among the iterations
    started at or after ``since`` (UTC ISO-8601; "" for all), newest evidence first.

    Per test and revision: the counts, ``flip_rate`` (the share of consecutive
    executions whose pass/fail differs), ``attempts_to_pass`` (over the iterations it
    passed in, the mean attempt number of its first pass: 1.0 means always on the first
    try; ``results.attempt``), the failure rate with its 95 % Wilson interval, and
    ``quarantined`` (an entry in force of the quarantine file names it now: pass the
    file's :meth:`QuarantineList.active` entries).
    """
    cursor = conn.execute(canned.FLAKY_SQL, {"since": since})
    names = [col[0] for col in cursor.description]
    rows: list[dict[str, Any]] = []
    for values in cursor:
        row = dict(zip(names, values))
        row["fail_rate_low"], row["fail_rate_high"] = wilson(row["failed"], row["executions"])
        row["quarantined"] = bool(quarantined and quarantined.match(row["suite"], row["nodeid"]))
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    cursor.close()
    return rows
