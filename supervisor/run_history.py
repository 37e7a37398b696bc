"""What a run reads from the history as it starts (read-only, a few queries).

Each recent test's latest outcome (failed-first), per-test durations and expected
counts (ETA), and where ``--resume`` continues. Kept apart from the session, which
only wires these into the loop and the views.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from supervisor.config import Config
from supervisor.core.changes import ChangeLabeller
from supervisor.core.eta import Estimator, TestTimes
from supervisor.core.last_results import LastResults
from supervisor.core.loop import LoopSettings, ResumePoint
from supervisor.store import queries


def recent_outcomes(db_path: Path) -> list[tuple[str, str, str]]:
    """``(suite, nodeid, outcome)`` of each recent test whose latest result did not
    pass, oldest first (read-only). A history that cannot be read gives none: no
    failed-first order, and every failure is new, until results come in."""
    try:
        conn = queries.connect_readonly(db_path)
        try:
            return queries.recent_outcomes(conn)
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        return []


def latest_results(db_path: Path, rows: list[tuple[str, str, str]] | None = None) -> LastResults:
    """Each recent test's latest outcome (failed-first), from ``rows`` or the history."""
    last = LastResults()
    last.seed(recent_outcomes(db_path) if rows is None else rows)
    return last


def change_labeller(rows: list[tuple[str, str, str]]) -> ChangeLabeller:
    """New / still / fixed against the same rows: a test not among them passed last
    time or has no history, and either way a failure of it is new."""
    labeller = ChangeLabeller()
    labeller.seed(rows)
    return labeller


def history_estimator(db_path: Path, config: Config, settings: LoopSettings) -> Estimator:
    """Expected counts and ETAs, from the history (read-only, once: a few index seeks
    per test). A history that cannot be read only means no ETA until this run's own
    results tell."""
    plan = [
        (p.name, tuple(s.name for s in config.select_suites(p.suites))) for p in settings.phases
    ]
    suites = sorted({name for _, names in plan for name in names})
    times, deploy = TestTimes(), None
    try:
        conn = queries.connect_readonly(db_path)
        try:
            times.seed(queries.recent_test_times(conn, suites))
            deploy = queries.deploy_time(conn)
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        pass
    workers = {s.name: s.workers for s in config.suites}
    return Estimator(times, plan, workers, deploy)


def resume_point(db_path: Path, run_id: int) -> ResumePoint:
    """Where ``--resume`` continues: the last iteration if it never finished, with the
    outcomes already recorded in it, else the iteration after it; and the outcomes of
    the last iteration before that which ran tests (a verify pass re-runs what did not
    pass there). Read-only queries."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT id, seq, status, finished_at FROM iterations WHERE run_id = ?"
            " ORDER BY seq DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        if row is None:
            return ResumePoint(1, {})
        iteration_id, seq, status, finished_at = row
        if finished_at is None or status in ("running", "interrupted"):
            recorded = _outcomes_of(conn, iteration_id)
        else:
            seq, recorded = seq + 1, {}
        before = conn.execute(
            "SELECT i.id, i.seq FROM iterations i WHERE i.run_id = ? AND i.seq < ?"
            " AND EXISTS (SELECT 1 FROM results r WHERE r.iteration_id = i.id)"
            " ORDER BY i.seq DESC LIMIT 1",
            (run_id, seq),
        ).fetchone()
        previous = _outcomes_of(conn, before[0]) if before else {}
    finally:
        conn.close()
    return ResumePoint(seq, recorded, previous, before[1] if before else 0)


def _outcomes_of(
    conn: sqlite3.Connection, iteration_id: int
) -> dict[tuple[int, str], dict[str, str]]:
    """(phase seq, suite) -> nodeid -> latest outcome of one iteration (``flaky`` for a
    retry that passed: it counts so again); phase 0 is its verify pass (and results
    outside any phase)."""
    flaky = queries.flaky_column(conn, "results", "r")
    outcomes: dict[tuple[int, str], dict[str, str]] = {}
    for phase_seq, suite, nodeid, outcome in conn.execute(
        "SELECT coalesce(p.seq, 0), t.suite, t.nodeid,"
        f" CASE WHEN {flaky} THEN 'flaky' ELSE r.outcome END FROM results r"
        " JOIN tests t ON t.id = r.test_id LEFT JOIN phases p ON p.id = r.phase_id"
        " WHERE r.iteration_id = ? ORDER BY r.id",
        (iteration_id,),
    ):
        outcomes.setdefault((phase_seq, suite), {})[nodeid] = outcome
    return outcomes
