"""The pytest suite kind against real pytest subprocesses (no mocks).

Each fixture suite lives in tests/fixtures/pytest_suites/NAME with its own pytest.ini,
so the child pytest never reads this project's configuration.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest
from runner_helpers import run_pytest_kind

from supervisor.config import parse_config
from supervisor.core.events import (
    LogLine,
    SuiteFinished,
    TestHung,
    TestResult,
    TestsCollected,
    TestStarted,
)
from supervisor.runners.pytest import protocol
from supervisor.runners.pytest.kind import CollectError, PytestSuiteKind

SUITES = Path(__file__).parent / "fixtures" / "pytest_suites"
QUIET_ENV = {"PYTHONDONTWRITEBYTECODE": "1"}

OUTCOMES = {
    "test_outcomes.py::test_passes": "passed",
    "test_outcomes.py::test_fails": "failed",
    "test_outcomes.py::test_setup_error": "error",
    "test_outcomes.py::test_teardown_error_after_pass": "error",
    "test_outcomes.py::test_teardown_error_after_fail": "failed",
    "test_outcomes.py::test_skipped": "skipped",
    "test_outcomes.py::test_skip_marker": "skipped",
    "test_outcomes.py::test_xfailed": "xfailed",
    "test_outcomes.py::test_xpassed": "xpassed",
    "test_outcomes.py::test_xpass_strict": "failed",
    "test_outcomes.py::test_imperative_xfail": "xfailed",
    "test_outcomes.py::test_own_timeout": "passed",
    "test_outcomes.py::TestClass::test_method": "passed",
}


class Run:
    """The events of one ``run()``, with a few views over them."""

    def __init__(self, events: list) -> None:
        self.events = events

    def of(self, cls: type) -> list:
        return [e for e in self.events if isinstance(e, cls)]

    @property
    def results(self) -> dict[str, TestResult]:
        out: dict[str, TestResult] = {}
        for result in self.of(TestResult):
            assert result.nodeid not in out, f"two results for {result.nodeid}"
            out[result.nodeid] = result
        return out

    @property
    def outcomes(self) -> dict[str, str]:
        return {nodeid: r.outcome for nodeid, r in self.results.items()}

    @property
    def collected(self) -> list[str]:
        return [n for e in self.of(TestsCollected) for n in e.nodeids]

    @property
    def finished(self) -> SuiteFinished:
        finished = self.of(SuiteFinished)
        assert len(finished) == 1 and self.events[-1] is finished[0]
        return finished[0]


def make_config(tmp_path: Path, suite: dict, watchdog: dict | None = None):
    suite = {"name": suite.get("cwd", "s"), **suite}
    data = {"suite": [suite], "watchdog": watchdog or {}}
    # the config file's folder is the fixtures folder, so cwd = "outcomes" etc. resolve
    return parse_config(data, SUITES / "netra-supervisor.toml")


def run_suite(tmp_path: Path, stop: threading.Event | None = None, watchdog=None, **suite):
    config = make_config(tmp_path, suite, watchdog)
    events, ctx = run_pytest_kind(
        config,
        env=dict(QUIET_ENV, **suite.pop("env", {})),
        stop=stop,
        log_dir=str(tmp_path / "logs"),
        iteration=3,
        phase_seq=2,
    )
    return Run(events), ctx


def test_every_outcome_and_the_event_stream(tmp_path):
    run, ctx = run_suite(tmp_path, cwd="outcomes")
    assert run.outcomes == OUTCOMES
    assert run.collected == list(OUTCOMES)
    assert run.finished.status == "ok"

    results = run.results
    assert results["test_outcomes.py::test_fails"].message == "assert 1 == 2"
    assert "some output" in results["test_outcomes.py::test_fails"].longrepr  # captured
    assert "assert 1 == 2" in results["test_outcomes.py::test_fails"].longrepr
    assert results["test_outcomes.py::test_setup_error"].message == (
        "RuntimeError: setup went wrong"
    )
    teardown = results["test_outcomes.py::test_teardown_error_after_pass"]
    assert teardown.message == "RuntimeError: teardown went wrong"
    assert "teardown went wrong" in teardown.longrepr
    both = results["test_outcomes.py::test_teardown_error_after_fail"]
    assert both.message == "AssertionError: call failed"
    assert "teardown went wrong" in both.longrepr
    assert results["test_outcomes.py::test_skipped"].message == "not today"
    assert results["test_outcomes.py::test_skip_marker"].message == "marked skip"
    assert results["test_outcomes.py::test_xfailed"].message == "known bug"
    assert results["test_outcomes.py::test_xpassed"].message == "fixed already"
    assert "XPASS(strict)" in results["test_outcomes.py::test_xpass_strict"].message
    for result in results.values():
        assert (result.iteration, result.phase, result.suite) == (3, 2, "outcomes")
        assert result.file == "test_outcomes.py"
        assert result.duration > 0
        assert result.worker == ""
        assert datetime.fromisoformat(result.started_at).tzinfo is not None

    # every test announced before its result, with its deadline
    started = {e.nodeid: e for e in run.of(TestStarted)}
    assert set(started) == set(OUTCOMES)
    order = [(type(e), getattr(e, "nodeid", "")) for e in run.events]
    for nodeid in OUTCOMES:
        assert order.index((TestStarted, nodeid)) < order.index((TestResult, nodeid))
    assert started["test_outcomes.py::test_own_timeout"].deadline == 7.0
    assert started["test_outcomes.py::test_passes"].deadline == ctx.deadline_for(
        ctx.config.suites[0]
    )
    assert list((tmp_path / "logs").glob("*.log")), "pytest's output is kept in log_dir"


def test_xdist_workers_report_the_same_outcomes(tmp_path):
    run, _ = run_suite(tmp_path, cwd="outcomes", workers=2)
    assert run.outcomes == OUTCOMES
    assert sorted(run.collected) == sorted(OUTCOMES)  # collected once despite two workers
    workers = {r.worker for r in run.of(TestResult)}
    assert workers <= {"gw0", "gw1"} and workers
    assert all(e.worker in ("gw0", "gw1") for e in run.of(TestStarted))
    assert run.finished.status == "ok"


def test_collection_error_is_one_result_and_the_rest_still_runs(tmp_path):
    run, _ = run_suite(tmp_path, cwd="collect_error")
    assert run.outcomes == {
        "test_broken.py": "error",
        "test_modskip.py": "skipped",
        "test_good_a.py::test_a1": "passed",
        "test_good_a.py::test_a2": "passed",
        "test_good_b.py::test_b1": "failed",
    }
    broken = run.results["test_broken.py"]
    assert broken.message == "ModuleNotFoundError: No module named 'module_that_does_not_exist'"
    assert "test_broken.py" in broken.longrepr and broken.file == "test_broken.py"
    assert run.results["test_modskip.py"].message == "whole module skipped"
    assert run.finished.status == "ok"


def test_collection_error_under_xdist_is_reported_once(tmp_path):
    run, _ = run_suite(tmp_path, cwd="collect_error", workers=2)
    assert run.outcomes["test_broken.py"] == "error"
    assert len(run.of(TestResult)) == 5


def test_conftest_that_raises_is_one_startup_error(tmp_path):
    run, _ = run_suite(tmp_path, cwd="conftest_boom")
    results = run.of(TestResult)
    assert len(results) == 1
    (result,) = results
    assert result.nodeid == "conftest.py::(startup)"
    assert result.outcome == "error"
    assert result.message.startswith("ImportError while loading conftest")
    assert result.message.endswith("RuntimeError: boom")
    assert run.finished.status == "error"
    assert "RuntimeError: boom" in run.finished.message


def test_bad_arguments_are_a_startup_error(tmp_path):
    run, _ = run_suite(tmp_path, cwd="outcomes", args=["--no-such-option"])
    (result,) = run.of(TestResult)
    assert result.nodeid == "outcomes::(startup)"
    assert result.outcome == "error"
    assert "unrecognized arguments: --no-such-option" in result.message
    assert run.finished.status == "error"


def test_missing_interpreter_is_a_startup_error(tmp_path):
    run, _ = run_suite(tmp_path, cwd="outcomes", python="no/such/python")
    (result,) = run.of(TestResult)
    assert result.outcome == "error"
    assert "interpreter not found: no/such/python" in result.message
    assert run.finished.status == "error"


WEIRD = [
    "test_weird.py::test_param[a::b]",
    "test_weird.py::test_param[it's]",
    'test_weird.py::test_param[say "hi"]',
    "test_weird.py::test_param[\\xe9 \\xfc \\u4e2d]",  # pytest escapes non-ASCII ids
    "test_weird.py::test_param[back\\\\slash]",
    "test_weird.py::test_param[sp ace]",
    "test_weird.py::test_param[" + "x" * 260 + "]",
    "test_weird.py::test_param[[nested]]",
    "test_weird.py::test_ünïcödé_name",
    "test_weird.py::TestCafé::test_inner[1]",
    "test_weird.py::TestCafé::test_inner[2]",
]


def test_weird_nodeids_round_trip_exactly(tmp_path):
    run, _ = run_suite(tmp_path, cwd="weird_ids")
    assert run.collected == WEIRD
    assert [r.nodeid for r in run.of(TestResult)] == WEIRD
    assert [s.nodeid for s in run.of(TestStarted)] == WEIRD
    assert run.outcomes["test_weird.py::TestCafé::test_inner[2]"] == "failed"
    assert run.results["test_weird.py::test_param[a::b]"].file == "test_weird.py"

    config = make_config(tmp_path, {"cwd": "weird_ids"})
    assert PytestSuiteKind().collect(config.suites[0], config, QUIET_ENV) == WEIRD


def test_crash_mid_suite_is_recorded_and_the_rest_still_runs(tmp_path):
    run, _ = run_suite(tmp_path, cwd="crash")
    assert run.outcomes == {
        "test_crash.py::test_1": "passed",
        "test_crash.py::test_2_dies": "crashed",
        "test_crash.py::test_3": "passed",
        "test_crash.py::test_4": "failed",
        "test_crash.py::test_5_after[a::b[c]]": "passed",
        "test_crash.py::test_5_after[\\xe9]": "passed",
    }
    crashed = run.results["test_crash.py::test_2_dies"]
    assert crashed.message == "pytest exited with code 3 while running this test"
    assert any("restarting pytest" in e.text for e in run.of(LogLine))
    assert run.finished.status == "ok"
    assert "restarted 1 time" in run.finished.message


def test_crash_of_an_xdist_worker(tmp_path):
    run, _ = run_suite(tmp_path, cwd="crash", workers=2)
    outcomes = run.outcomes
    assert outcomes["test_crash.py::test_2_dies"] == "crashed"
    assert "died while running this test" in run.results["test_crash.py::test_2_dies"].message
    assert outcomes["test_crash.py::test_4"] == "failed"
    assert len(outcomes) == 6
    assert run.finished.status == "ok"


def test_deadline_passed_is_hung_with_a_dump_and_the_rest_runs(tmp_path):
    run, _ = run_suite(
        tmp_path, cwd="hang", test_timeout="1s", watchdog={"grace": "2s", "test_timeout": "9s"}
    )
    assert run.outcomes == {
        "test_hang.py::test_before": "passed",
        "test_hang.py::test_hangs": "hung",
        "test_hang.py::test_after": "passed",
    }
    (hung_event,) = run.of(TestHung)
    assert hung_event.reason == "deadline" and hung_event.deadline == 1.0
    hung = run.results["test_hang.py::test_hangs"]
    # past its deadline of 1s, waiting in time.sleep on the test's own line
    assert hung.message.startswith("hung 1s at test_hang.py:"), hung.message
    assert hung.message.endswith(" in test_hangs: time.sleep(600)")
    assert "test_hangs" in hung.dump and "time.sleep(600)" in hung.dump
    assert hung.dump == hung_event.dump
    assert run.finished.status == "ok"


def test_hang_in_a_shared_fixture_teardown_is_blamed_on_the_fixture(tmp_path):
    run, _ = run_suite(tmp_path, cwd="shared_teardown", test_timeout="1s", watchdog={"grace": "2s"})
    assert run.outcomes == {
        "test_a_module.py::test_uses_it": "passed",
        "test_a_module.py::test_last_of_module": "hung",
        "test_b_session.py::test_first": "passed",
        "test_b_session.py::test_last_of_session": "hung",
    }
    module = run.results["test_a_module.py::test_last_of_module"]
    assert "module-scoped fixtures" in module.message
    assert "STUCK module teardown" in module.dump
    session = run.results["test_b_session.py::test_last_of_session"]
    assert "session-scoped fixtures" in session.message
    assert "STUCK session teardown" in session.dump


def test_restarts_after_hangs_use_a_standby_pytest_and_leave_no_process(tmp_path):
    log = tmp_path / "ran.log"
    mark = str(tmp_path)
    run, _ = run_suite(
        tmp_path,
        cwd="hangs3",
        test_timeout="1s",
        watchdog={"grace": "1s"},
        env={"HANGS3_LOG": str(log), "HANGS3_MARK": mark},
    )
    prefix = "test_hangs3.py::test_"
    assert run.outcomes == {
        **{prefix + n: "passed" for n in ("a", "b", "c", "d", "slow_but_fine")},
        **{prefix + f"hang_{i}": "hung" for i in (1, 2, 3)},
    }
    # every test ran exactly once; each restart ran in a new process
    lines = [line.split() for line in log.read_text().splitlines()]
    assert [name for name, _ in lines] == [
        "a", "hang_1", "b", "hang_2", "c", "hang_3", "d", "slow",
    ]  # fmt: skip
    assert len({pid for _, pid in lines}) == 4
    restarts = [e.text for e in run.of(LogLine) if "restarting pytest" in e.text]
    assert len(restarts) == 3
    assert all("a standby pytest was ready" in text for text in restarts), restarts
    assert run.finished.status == "ok"
    # no pytest is left: not the used standbys, not the last one nobody needed
    left = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("HANGS3_MARK") == mark:
                left.append(proc)
        except (psutil.Error, OSError):
            continue
    assert left == []


@pytest.mark.parametrize("stop_args", [["-x"], ["--maxfail=1"], ["--maxfail", "1"]])
def test_exitfirst_is_honoured_across_a_hang(tmp_path, stop_args):
    log = tmp_path / "ran.log"
    run, _ = run_suite(
        tmp_path,
        cwd="hangs3",
        args=stop_args,
        test_timeout="1s",
        watchdog={"grace": "1s"},
        env={"HANGS3_LOG": str(log)},
    )
    # pytest would stop at the first failure; a hang is one, so nothing runs after it
    assert run.outcomes == {
        "test_hangs3.py::test_a": "passed",
        "test_hangs3.py::test_hang_1": "hung",
    }
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["a", "hang_1"]
    assert any("not restarting pytest" in e.text for e in run.of(LogLine))
    assert "6 collected tests did not run" in run.finished.message


def test_maxfail_parsing():
    from supervisor.runners.pytest.launch import maxfail_of as _maxfail

    assert _maxfail(["-q", "tests"]) == 0
    assert _maxfail(["-x"]) == _maxfail(["--exitfirst"]) == 1
    assert _maxfail(["--maxfail=3"]) == _maxfail(["--maxfail", "3"]) == 3
    assert _maxfail(["--maxfail=0"]) == 0  # pytest: no limit
    assert _maxfail(["-xvs"]) == _maxfail(["-vx"]) == 1
    assert _maxfail(["-pxdist"]) == _maxfail(["-kx"]) == 0  # values, not flags


def test_silent_process_is_hung(tmp_path):
    run, _ = run_suite(tmp_path, cwd="silent", watchdog={"silence_timeout": "2s", "grace": "1s"})
    assert run.outcomes == {
        "test_silent.py::test_freezes": "hung",
        "test_silent.py::test_after": "passed",
    }
    (hung_event,) = run.of(TestHung)
    assert hung_event.reason == "silence"
    # a stopped process gets SIGCONT before the dump request, so it answers: the dump
    # holds its threads, and the test counts as hung although it then went on
    frozen = run.results["test_silent.py::test_freezes"]
    assert "did not answer" not in frozen.dump
    assert "Thread MainThread" in frozen.dump
    assert frozen.message.startswith("the test process was silent for more than 2s")


def test_stop_kills_the_group_and_keeps_what_finished(tmp_path):
    stop = threading.Event()
    pidfile = tmp_path / "pids"
    box: dict = {}

    def target() -> None:
        box["run"] = run_suite(tmp_path, stop=stop, cwd="slow", env={"SLOW_PIDFILE": str(pidfile)})

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (pidfile.exists() and pidfile.read_text()):
        time.sleep(0.05)
    time.sleep(1.0)  # let a few tests finish
    stopped_at = time.monotonic()
    stop.set()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 5
    run, _ = box["run"]
    assert run.finished.status == "interrupted"
    outcomes = run.outcomes
    assert 0 < len(outcomes) < 20
    assert set(outcomes.values()) == {"passed"}
    pid = int(pidfile.read_text().split()[0])
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_collect_returns_the_nodeids(tmp_path):
    config = make_config(tmp_path, {"cwd": "outcomes", "workers": 2})
    assert PytestSuiteKind().collect(config.suites[0], config, QUIET_ENV) == list(OUTCOMES)


def test_collect_of_a_suite_that_cannot_start_raises(tmp_path):
    config = make_config(tmp_path, {"cwd": "conftest_boom"})
    with pytest.raises(CollectError, match="RuntimeError: boom"):
        PytestSuiteKind().collect(config.suites[0], config, QUIET_ENV)


def test_builtin_plugin_registers_the_kind():
    from netra_supervisor_plugins import builtin_pytest

    (kind,) = builtin_pytest.netra_register_suite_kinds()
    assert isinstance(kind, PytestSuiteKind) and kind.name == "pytest"


@pytest.mark.parametrize(
    ("phases", "outcome", "message"),
    [
        ([{"w": "setup", "o": "skipped", "d": 0, "x": "later", "m": "m"}], "xfailed", "later"),
        (
            [
                {"w": "setup", "o": "failed", "d": 0, "m": "E1"},
                {"w": "teardown", "o": "failed", "d": 0, "m": "E2"},
            ],
            "error",
            "E1",
        ),  # fmt: skip
        (
            [
                {"w": "setup", "o": "passed", "d": 0},
                {"w": "call", "o": "skipped", "d": 0, "m": "why"},
                {"w": "teardown", "o": "failed", "d": 0, "m": "T"},
            ],
            "error",
            "T",
        ),  # fmt: skip
        (
            [{"w": "setup", "o": "passed", "d": 1}, {"w": "call", "o": "passed", "d": 2}],
            "passed",
            "",
        ),  # fmt: skip
    ],
)
def test_fold_phases(phases, outcome, message):
    folded = protocol.fold_phases(phases)
    assert (folded.outcome, folded.message) == (outcome, message)


def test_startup_failure_messages():
    assert protocol.startup_failure("", -9) == ("", "pytest was killed by SIGKILL")
    text = "/venv/bin/python: No module named pytest\n"
    assert protocol.startup_failure(text, 1) == ("", "/venv/bin/python: No module named pytest")
    assert protocol.startup_failure("ERROR: file or directory not found: x.py\n\n", 4) == (
        "",
        "file or directory not found: x.py",
    )


def test_a_result_lasts_its_setup_call_and_teardown_together(tmp_path):
    run, _ = run_suite(tmp_path, cwd="durations")
    assert run.outcomes == {
        "test_durations.py::test_passes": "passed",
        "test_durations.py::test_fails": "failed",
        "test_durations.py::test_xfails": "xfailed",
    }
    for nodeid, result in run.results.items():
        assert 0.15 <= result.duration < 5, (nodeid, result.duration)
