"""A person's requests reach a real run: pause/resume, kill a test, next iteration now.

Real pytest subprocesses through the pytest suite kind and the loop; ``RunControl`` is
the only way in, the same object the TUI's keys call.
"""

from __future__ import annotations

import textwrap
import threading
import time
from pathlib import Path

from supervisor.config import parse_config
from supervisor.core.between import Between
from supervisor.core.control import RunControl
from supervisor.core.events import IterationFinished, TestHung, TestResult, TestStarted
from supervisor.core.kinds import RunContext
from supervisor.core.loop import Loop, LoopSettings
from supervisor.runners.pytest.kind import PytestSuiteKind


def project(tmp_path: Path, tests: str, **run) -> object:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(textwrap.dedent(tests))
    data = {
        "run": run,
        "watchdog": {"test_timeout": "120s", "grace": "5s"},
        "suite": [{"name": "s", "kind": "pytest", "args": ["-q", "tests"]}],
        "phase": [{"name": "P1", "suites": ["s"]}],
    }
    return parse_config(data, tmp_path / "netra-supervisor.toml")


class Recorder:
    """Collects events from the runner thread; ``wait_for`` polls a condition."""

    def __init__(self) -> None:
        self.events: list = []
        self.lock = threading.Lock()

    def __call__(self, event) -> None:
        with self.lock:
            self.events.append(event)

    def of(self, kind) -> list:
        with self.lock:
            return [e for e in self.events if isinstance(e, kind)]

    def in_flight(self) -> set[str]:
        with self.lock:
            started = {e.nodeid for e in self.events if isinstance(e, TestStarted)}
            done = {e.nodeid for e in self.events if isinstance(e, TestResult)}
        return started - done

    def wait_for(self, condition, timeout: float = 60.0) -> None:
        end = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < end, "condition not reached"
            time.sleep(0.05)


def run_suite_in_thread(config, control: RunControl, rec: Recorder) -> threading.Thread:
    ctx = RunContext(
        config=config,
        phase=config.phases[0],
        run_id=1,
        iteration=1,
        phase_seq=1,
        emit=rec,
        stop=control.stop,
        control=control,
    )
    thread = threading.Thread(target=PytestSuiteKind().run, args=(config.suites[0], ctx))
    thread.start()
    return thread


def test_pause_starts_no_new_test_until_resumed(tmp_path):
    config = project(
        tmp_path,
        """
        import time, pytest
        @pytest.mark.parametrize("i", range(12))
        def test_t(i):
            time.sleep(0.1)
        """,
    )
    control, rec = RunControl(), Recorder()
    thread = run_suite_in_thread(config, control, rec)
    rec.wait_for(lambda: len(rec.of(TestResult)) >= 2)
    control.pause()
    # the tests in flight finish; then nothing starts while paused
    rec.wait_for(lambda: not rec.in_flight() and len(rec.of(TestResult)) >= 2)
    started_when_drained = len(rec.of(TestStarted))
    time.sleep(1.5)  # several runner ticks and child heartbeats
    assert len(rec.of(TestStarted)) == started_when_drained
    assert len(rec.of(TestResult)) < 12
    control.resume()
    thread.join(60)
    assert not thread.is_alive()
    results = rec.of(TestResult)
    assert len(results) == 12
    assert {r.outcome for r in results} == {"passed"}


def test_kill_records_the_selected_test_hung_with_a_dump_and_the_rest_runs(tmp_path):
    config = project(
        tmp_path,
        """
        import time
        def test_a_quick():
            pass
        def test_b_stuck():
            time.sleep(100)
        def test_c_after():
            pass
        """,
    )
    control, rec = RunControl(), Recorder()
    thread = run_suite_in_thread(config, control, rec)
    stuck = "tests/test_x.py::test_b_stuck"
    rec.wait_for(lambda: stuck in rec.in_flight())
    control.kill("s", stuck)
    thread.join(60)
    assert not thread.is_alive()
    by_id = {r.nodeid: r for r in rec.of(TestResult)}
    assert by_id[stuck].outcome == "hung"
    assert "killed by the user" in by_id[stuck].message
    assert "time.sleep(100)" in by_id[stuck].dump  # the stack shows where it waited
    assert [h.reason for h in rec.of(TestHung)] == ["killed"]
    assert by_id["tests/test_x.py::test_a_quick"].outcome == "passed"
    assert by_id["tests/test_x.py::test_c_after"].outcome == "passed"  # after a restart
    assert not control.kills_for("s")  # the request was consumed


def test_next_now_ends_a_manual_wait_between_iterations(tmp_path):
    config = project(tmp_path, "def test_ok():\n    pass\n")
    stop = threading.Event()
    between = Between("manual", 0.0, [tmp_path], stop, announce=lambda t: None, poll=0.05)
    control = RunControl(stop, between.next_now)
    rec = Recorder()
    settings = LoopSettings("target", 99, 2, None, config.phases)
    loop = Loop(
        config,
        settings,
        {"pytest": PytestSuiteKind()},
        None,
        rec,
        1,
        stop,
        between,
        control=control,
    )
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(loop.run()))
    thread.start()
    rec.wait_for(lambda: control.waiting)
    assert len(rec.of(IterationFinished)) == 1  # it waits for a person after iteration 1
    control.next_now()
    thread.join(60)
    assert not thread.is_alive()
    assert [e.iteration for e in rec.of(IterationFinished)] == [1, 2]
    assert outcome[0].stop_reason == "max_iterations (2) reached"
    assert not control.waiting


def test_pause_holds_the_loop_before_the_next_iteration_and_stop_releases_it(tmp_path):
    config = project(tmp_path, "def test_ok():\n    pass\n")
    stop = threading.Event()
    between = Between("immediate", 0.0, [tmp_path], stop, announce=lambda t: None)
    control = RunControl(stop, between.next_now)
    rec = Recorder()
    settings = LoopSettings("target", 99, 5, None, config.phases)
    loop = Loop(
        config,
        settings,
        {"pytest": PytestSuiteKind()},
        None,
        rec,
        1,
        stop,
        between,
        control=control,
    )
    control.pause()
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(loop.run()))
    thread.start()
    time.sleep(1.0)
    assert rec.of(TestStarted) == []  # paused: iteration 1 has not begun its tests
    control.request_stop()
    thread.join(60)
    assert not thread.is_alive()
    assert outcome[0].status == "interrupted"
