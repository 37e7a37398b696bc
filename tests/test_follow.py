"""The watcher's model, folded from a real history database the real writer fills
(``supervisor.store.follow``), and the rows the writer adds for it (``0007_live``)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from supervisor.core.events import (
    DeployFinished,
    IterationFinished,
    IterationStarted,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    PluginFailed,
    RunFinished,
    TestResult,
    TestsCollected,
    TestStarted,
    utc_now,
)
from supervisor.core.model import RunModel
from supervisor.store.follow import FollowedRun, WatchError
from supervisor.store.rows import RunSettings
from supervisor.store.writer import HistoryStore

SUITE = "e2e"


def start_iteration(store: HistoryStore, model: RunModel, seq: int, tests: int) -> None:
    for event in (
        IterationStarted(store.run_id, seq, utc_now()),
        DeployFinished(store.run_id, seq, "command", f"rev{seq}", utc_now(), 0.1, "ok"),
        PhaseStarted(store.run_id, seq, 1, "P1 critical", "all-pass", (SUITE,), utc_now()),
        TestsCollected(seq, 1, SUITE, tuple(f"t.py::test_{i}" for i in range(tests))),
    ):
        store.put(event)
        model.apply(event)


def both(store: HistoryStore, model: RunModel, *events) -> None:
    """The bus: the live model and the writer get the same events."""
    for event in events:
        model.apply(event)
        store.put(event)


def result(seq: int, i: int, outcome: str = "passed", **kw) -> TestResult:
    return TestResult(seq, 1, SUITE, f"t.py::test_{i}", outcome, 0.5, utc_now(), **kw)


@pytest.fixture
def store(tmp_path: Path):
    store = HistoryStore.open(tmp_path / "history.db", flush_interval=0.05)
    store.put(RunSettings(target=5, until="all-pass", max_iterations=3, max_duration=3600.0))
    yield store
    store.close()


def test_a_run_in_progress_folds_into_the_live_models_view(store: HistoryStore):
    live = RunModel(run_id=store.run_id)
    start_iteration(store, live, 1, 5)
    both(
        store,
        live,
        TestStarted(1, 1, SUITE, "t.py::test_0", "gw0", 30.0),
        result(1, 0),
        TestStarted(1, 1, SUITE, "t.py::test_1", "gw1", 30.0),
        result(1, 1, "failed", message="AssertionError: 500"),
        TestStarted(1, 1, SUITE, "t.py::test_2", "gw0", 30.0),  # still in flight
        LogLine("info", "loop", "iteration 1 started"),
    )
    assert store.flush()
    watched = FollowedRun(store.path, store.run_id)
    view, mine = watched.snapshot(), live.snapshot()

    assert [(p.name, p.status, p.counts, p.discovered) for p in view.phases] == [
        (p.name, p.status, p.counts, p.discovered) for p in mine.phases
    ]
    assert view.phases[0].discovered == 5 and view.phases[0].counts["passed"] == 1
    assert [(t.suite, t.nodeid, t.worker, t.deadline) for t in view.running] == [
        (SUITE, "t.py::test_2", "gw0", 30.0)
    ]
    assert [(f.nodeid, f.outcome, f.message) for f in view.failures] == [
        ("t.py::test_1", "failed", "AssertionError: 500")
    ]
    assert [line.text for line in view.log] == ["iteration 1 started"]
    assert (view.target, view.until, view.max_iterations, view.max_duration) == (
        5,
        "all-pass",
        3,
        3600.0,
    )
    assert (view.iteration, view.deploy_state, view.deploy_revision) == (1, "healthy", "rev1")
    assert not watched.finished
    # the test started 0-1 s ago on the writer's clock: about that on ours
    assert 0 <= time.monotonic() - view.running[0].started < 5


def test_it_follows_new_rows_and_reads_nothing_when_nothing_changed(store: HistoryStore):
    live = RunModel(run_id=store.run_id)
    start_iteration(store, live, 1, 5)
    assert store.flush()
    watched = FollowedRun(store.path, poll_every=0)  # the latest run
    first = watched.snapshot()
    assert watched.run_id == store.run_id and first.phases[0].done == 0
    polls = watched.polls
    assert not watched.poll()  # data_version unchanged: no table read
    assert watched.polls == polls

    both(store, live, result(1, 0), result(1, 1), result(1, 2, "hung", dump="stack"))
    assert store.flush()
    view = watched.snapshot(first.log_seq, first.failures_seq, first.failures_epoch)
    assert view.phases[0].done == 3 and view.phases[0].counts["hung"] == 1
    assert [f.dump for f in view.failures] == ["stack"]  # only the new failure
    assert not view.failures_reset


def test_a_finished_run_shows_its_final_state_and_browses_iterations(store: HistoryStore):
    live = RunModel(run_id=store.run_id)
    for seq, failing in ((1, 2), (2, 0)):
        start_iteration(store, live, seq, 4)
        both(store, live, TestStarted(seq, 1, SUITE, "t.py::test_0", "", None))
        both(
            store, live, *(result(seq, i, "failed" if i < failing else "passed") for i in range(4))
        )
        counts = {"passed": 4 - failing, "failed": failing}
        both(
            store,
            live,
            PhaseFinished(
                store.run_id, seq, 1, "P1 critical", "all-pass", "passed" if not failing else
                "gate-failed", not failing, counts, 1.0,
            ),
            IterationFinished(store.run_id, seq, utc_now(), "passed", counts),
        )  # fmt: skip
    store.put(PluginFailed("acme", "netra_on_result", "boom"))
    store.put(RunFinished(store.run_id, utc_now(), "passed", 0, 2))
    assert store.flush()
    running = sqlite3.connect(store.path).execute("SELECT COUNT(*) FROM running").fetchone()[0]
    assert running == 0  # the run's end empties it

    watched = FollowedRun(store.path, store.run_id, poll_every=0)
    view = watched.snapshot()
    assert watched.finished and view.exit_code == 0 and view.stop_reason == "passed"
    assert view.iteration == 2 and view.phases[0].status == "passed"
    assert view.phases[0].gate_held is True and view.running == ()
    assert [it.counts["passed"] for it in view.iterations] == [2, 4]
    assert view.plugin_errors == 1
    assert any("plugin error in netra_on_result: boom" in line.text for line in view.log)

    assert watched.step(-1) == 1
    back = watched.snapshot(view.log_seq, view.failures_seq, view.failures_epoch)
    assert back.failures_reset and back.iteration == 1
    assert back.phases[0].counts["failed"] == 2 and back.phases[0].gate_held is False
    assert {f.nodeid for f in back.failures} == {"t.py::test_0", "t.py::test_1"}
    assert back.deploy_revision == "rev1"
    assert watched.step(-1) == 1  # the first stays the first
    assert watched.step(1) == 2 and watched.snapshot().iteration == 2


def test_a_test_that_starts_and_ends_in_one_batch_never_reaches_running(tmp_path: Path):
    store = HistoryStore.open(tmp_path / "h.db", flush_interval=60)
    store.put(IterationStarted(store.run_id, 1, utc_now()))
    for i in range(50):
        store.put(TestStarted(1, 1, SUITE, f"t.py::test_{i}", "", 10.0))
        store.put(result(1, i))
    store.put(TestStarted(1, 1, SUITE, "t.py::slow", "gw3", 10.0))
    assert store.flush()
    conn = sqlite3.connect(store.path)
    assert conn.execute("SELECT nodeid, worker FROM running").fetchall() == [("t.py::slow", "gw3")]
    store.put(TestResult(1, 1, SUITE, "t.py::slow", "passed"))
    assert store.flush()
    assert conn.execute("SELECT COUNT(*) FROM running").fetchone()[0] == 0
    store.close()


def test_a_result_deletes_a_running_row_only_where_there_is_one(tmp_path: Path):
    """The writer knows which rows it put in ``running``: the result of a test that
    never got one costs no DELETE; the rows a killed writer left (a resumed run) go
    with their tests' results all the same."""
    store = HistoryStore.open(tmp_path / "h.db", flush_interval=60)
    store.put(IterationStarted(store.run_id, 1, utc_now()))
    store.put(TestStarted(1, 1, SUITE, "t.py::slow", "", 10.0))
    store.put(TestStarted(1, 1, SUITE, "t.py::other", "", 10.0))
    assert store.flush()
    statements: list[str] = []
    store._conn.set_trace_callback(statements.append)
    for i in range(20):
        store.put(result(1, i))
    assert store.flush()
    assert not [s for s in statements if s.startswith("DELETE")]
    store.put(TestResult(1, 1, SUITE, "t.py::slow", "passed"))
    assert store.flush()
    assert [s for s in statements if s.startswith("DELETE FROM running")]
    store._conn.set_trace_callback(None)
    run_id = store.run_id
    store.close()  # as if killed: "other" is still in running

    conn = sqlite3.connect(tmp_path / "h.db")
    assert conn.execute("SELECT nodeid FROM running").fetchall() == [("t.py::other",)]
    resumed = HistoryStore.resume(tmp_path / "h.db", run_id, flush_interval=60)
    resumed.put(TestResult(1, 1, SUITE, "t.py::other", "passed"))
    assert resumed.flush()
    assert conn.execute("SELECT COUNT(*) FROM running").fetchone()[0] == 0
    resumed.close()


def test_the_watcher_never_blocks_the_writer(store: HistoryStore):
    live = RunModel(run_id=store.run_id)
    start_iteration(store, live, 1, 1000)
    watched = FollowedRun(store.path, poll_every=0)
    for i in range(1000):
        both(store, live, result(1, i))
        if i % 100 == 0:
            watched.snapshot()
            assert store.flush(timeout=5)  # a write commits while the watcher reads
    assert store.flush()
    assert watched.snapshot().phases[0].done == 1000
    assert store.last_error is None


def test_a_missing_database_or_run_is_one_clear_error(tmp_path: Path, store: HistoryStore):
    with pytest.raises(WatchError, match="no history database at .*--db"):
        FollowedRun(tmp_path / "nope.db")
    with pytest.raises(WatchError, match="no run 99 in"):
        FollowedRun(store.path, 99)
