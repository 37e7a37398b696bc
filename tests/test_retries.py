"""Retries as plain logic (what runs again, how often, what is flaky, what a gate makes
of it) and in the loop with an in-process suite kind; no processes."""

from __future__ import annotations

from pathlib import Path

from test_loop import run_loop
from test_loop_feedback import config_of, of

from supervisor.config import PhaseConfig, RunConfig, SuiteConfig
from supervisor.core.events import (
    FLAKY,
    IterationFinished,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    SuiteFinished,
    TestResult,
    TestsCollected,
    count_outcomes,
)
from supervisor.core.gates import PhaseTally, gate_holds, gate_lost
from supervisor.core.kinds import RunContext, SuiteKind
from supervisor.core.model import RunModel
from supervisor.core.retries import SuiteAttempts, failing, retries_for, retryable


def result(nodeid: str, outcome: str, suite: str = "a", **kw) -> TestResult:
    return TestResult(iteration=1, phase=1, suite=suite, nodeid=nodeid, outcome=outcome, **kw)


# ------------------------------------------------------------------ settings


def test_the_most_specific_retries_wins():
    run, phase, suite = RunConfig(retries=3), PhaseConfig("P", ("a",)), SuiteConfig("a")
    assert retries_for(run, phase, suite) == 3
    assert retries_for(run, PhaseConfig("P", ("a",), retries=1), suite) == 1
    assert retries_for(run, PhaseConfig("P", ("a",), retries=1), SuiteConfig("a", retries=0)) == 0
    assert retries_for(RunConfig(), phase, suite) == 0


def test_what_is_retryable():
    assert retryable("t.py::test_x", "failed")
    assert all(retryable("t.py::x", o) for o in ("error", "hung", "crashed"))
    assert not any(retryable("t.py::x", o) for o in ("passed", "skipped", "xfailed", "xpassed"))
    # a suite that could not run at all is no test a retry could select
    assert not retryable("a::(suite)", "error")
    assert not retryable("conftest.py::(startup)", "error")


# ------------------------------------------------------------------ attempts


def test_a_failure_that_passes_on_its_retry_is_flaky():
    attempts = SuiteAttempts(2)
    assert attempts.mark(result("x", "passed")) == result("x", "passed")
    attempts.mark(result("y", "failed", message="AssertionError: down\nmore"))
    attempts.mark(result("z", "hung"))
    assert attempts.next_round() == frozenset({"y", "z"})
    assert attempts.attempt == 2
    y = attempts.mark(result("y", "passed"))
    assert (y.attempt, y.flaky) == (2, True)
    assert y.message == "passed on attempt 2; attempt 1 failed: AssertionError: down"
    z = attempts.mark(result("z", "hung", message="deadline"))
    assert (z.attempt, z.flaky, z.message) == (2, False, "deadline")
    assert attempts.next_round() == frozenset({"z"})  # y passed: not run again
    z = attempts.mark(result("z", "passed"))
    assert (z.attempt, z.flaky) == (3, True)
    assert attempts.next_round() is None


def test_a_broken_test_gets_n_more_attempts_then_none():
    attempts = SuiteAttempts(2)
    attempts.mark(result("x", "failed"))
    rounds = []
    while (again := attempts.next_round()) is not None:
        rounds.append(again)
        marked = attempts.mark(result("x", "failed"))
        assert not marked.flaky and marked.attempt == attempts.attempt
    assert rounds == [frozenset({"x"})] * 2
    assert attempts.attempt == 3


def test_no_retries_and_nothing_to_retry_make_no_round():
    attempts = SuiteAttempts(0)
    attempts.mark(result("x", "failed"))
    assert attempts.next_round() is None
    assert not attempts.may_retry("x", "failed")
    attempts = SuiteAttempts(3)
    attempts.mark(result("x", "passed"))
    attempts.mark(result("a::(suite)", "error"))
    assert attempts.next_round() is None


def test_may_retry_says_which_failures_are_not_final_yet():
    attempts = SuiteAttempts(1)
    assert attempts.may_retry("x", "failed")
    assert not attempts.may_retry("x", "passed")
    attempts.mark(result("x", "failed"))
    attempts.next_round()
    assert not attempts.may_retry("x", "failed")  # the last attempt's failure is final


# ------------------------------------------------------------------ gates


def counts(**kw) -> dict[str, int]:
    return {**count_outcomes([]), **kw}


def test_a_flaky_test_fails_a_gate_only_when_it_counts_as_fail():
    all_pass = PhaseConfig("P", ("a",))
    assert gate_holds(all_pass, counts(passed=5, flaky=1))
    assert not gate_holds(all_pass, counts(passed=5, flaky=1), flaky_fails=True)
    ratio = PhaseConfig("P", ("a",), gate="ratio", gate_ratio=0.8)
    assert gate_holds(ratio, counts(passed=4, flaky=1), flaky_fails=True)  # 4/5
    assert not gate_holds(ratio, counts(passed=3, flaky=2), flaky_fails=True)  # 3/5
    assert failing(counts(failed=1, hung=1, flaky=2)) == 2
    assert failing(counts(failed=1, hung=1, flaky=2), flaky_fails=True) == 4


def test_the_early_verdict_waits_for_failures_a_retry_may_turn():
    all_pass = PhaseConfig("P", ("a",))
    seen = counts(passed=3, failed=1)
    assert gate_lost(all_pass, seen, None)
    assert gate_lost(all_pass, seen, 5)
    assert not gate_lost(all_pass, seen, None, retryable=1)
    assert not gate_lost(all_pass, seen, 5, retryable=1)
    # a flaky pass fails the gate anyway: a retry cannot save it
    assert gate_lost(all_pass, seen, 5, retryable=1, flaky_fails=True)
    ratio = PhaseConfig("P", ("a",), gate="ratio", gate_ratio=0.9)
    assert gate_lost(ratio, counts(passed=7, failed=3), 0)
    assert gate_lost(ratio, counts(passed=7, failed=3), 0, retryable=1)  # 8/10 at best
    assert not gate_lost(ratio, counts(passed=7, failed=3), 0, retryable=2)  # 9/10


def test_the_tally_counts_each_test_once_by_its_latest_attempt():
    tally = PhaseTally(("a",))
    tally.collected("a", ("x", "y"))
    tally.add(result("x", "failed"), may_retry=True)
    tally.add(result("y", "hung"), may_retry=True)
    assert tally.retryable() == 2 and tally.remaining() == 0
    tally.add(result("x", "passed", attempt=2, flaky=True))
    tally.add(result("y", "hung", attempt=2))
    assert tally.counts() == counts(flaky=1, hung=1)
    assert tally.retryable() == 0
    tally.add(result("z", "failed", suite="b"), may_retry=True)
    tally.done("b")  # its retries are over: what still fails is final
    assert tally.retryable() == 0


# ------------------------------------------------------------------ the model


def test_the_model_counts_a_retried_test_once_and_lists_the_flaky_pass():
    model = RunModel()
    model.apply(PhaseStarted(1, 1, 1, "P1", "all-pass", ("a",), "now"))
    model.apply(result("x", "failed"))
    model.apply(result("y", "passed"))
    model.apply(result("x", "passed", attempt=2, flaky=True, message="passed on attempt 2"))
    view = model.snapshot()
    phase = view.phases[0]
    assert (phase.counts["passed"], phase.counts["failed"], phase.counts[FLAKY]) == (1, 0, 1)
    assert phase.done == 2
    assert [(f.nodeid, f.outcome, f.flaky) for f in view.failures] == [
        ("x", "passed", True),
        ("x", "failed", False),
    ]


def test_a_retried_quarantined_test_is_counted_once_by_its_latest_attempt():
    model = RunModel()
    model.apply(PhaseStarted(1, 1, 1, "P1", "all-pass", ("a",), "now"))
    model.apply(result("q", "failed", quarantined=True))
    model.apply(result("q", "failed", attempt=2, quarantined=True))
    model.apply(result("q", "passed", attempt=3, flaky=True, quarantined=True))
    phase = model.snapshot().phases[0]
    assert phase.quarantined == {FLAKY: 1}
    assert phase.done == 1 and not any(phase.counts.values())


# ------------------------------------------------------------------ the loop


class Attempts(SuiteKind):
    """``script[suite][nodeid]`` lists a test's outcomes, one per run of the suite
    that selects it (the last repeats). Honours ``only``, ``already_run`` and ``cut``."""

    name = "scripted"

    def __init__(self, script: dict[str, dict[str, list[str]]]) -> None:
        self.script = script
        self.runs: dict[tuple[str, str], int] = {}
        self.calls: list[tuple[str, frozenset[str] | None]] = []

    def run(self, suite, ctx: RunContext) -> None:
        self.calls.append((suite.name, ctx.only))
        tests = self.script[suite.name]
        ids = [n for n in tests if ctx.only is None or n in ctx.only]
        ids = [n for n in ids if n not in ctx.already_run]  # recorded before a --resume
        ctx.report(TestsCollected, suite.name, nodeids=tuple(ids))
        for nodeid in ids:
            if ctx.cut.is_set():
                ctx.report(SuiteFinished, suite.name, status="cut")
                return
            done = self.runs.get((suite.name, nodeid), 0)
            self.runs[(suite.name, nodeid)] = done + 1
            outcomes = tests[nodeid]
            outcome = outcomes[min(done, len(outcomes) - 1)]
            ctx.report(TestResult, suite.name, nodeid=nodeid, outcome=outcome)
        ctx.report(SuiteFinished, suite.name, status="ok")


def test_the_loop_retries_at_the_end_of_the_suite_and_the_gate_holds(tmp_path: Path):
    config = config_of(tmp_path, [{"name": "P1", "suites": ["a"]}], ["a"], retries=2)
    kind = Attempts({"a": {"x": ["failed", "passed"], "y": ["passed"], "z": ["error"]}})
    outcome, events, _ = run_loop(config, kind, max_iterations=1)
    assert kind.calls == [("a", None), ("a", frozenset({"x", "z"})), ("a", frozenset({"z"}))]
    got = [(e.nodeid, e.attempt, e.outcome, e.flaky) for e in of(events, TestResult)]
    assert got == [
        ("x", 1, "failed", False),
        ("y", 1, "passed", False),
        ("z", 1, "error", False),
        ("x", 2, "passed", True),
        ("z", 2, "error", False),
        ("z", 3, "error", False),
    ]
    # a retry's collection is not announced: the tests were counted already
    assert [e.nodeids for e in of(events, TestsCollected)] == [("x", "y", "z")]
    phase = of(events, PhaseFinished)[0]
    assert (phase.counts["passed"], phase.counts[FLAKY], phase.counts["error"]) == (1, 1, 1)
    assert sum(phase.counts.values()) == 3
    assert any("attempt 2: 2 test(s)" in e.text for e in of(events, LogLine))
    assert outcome.exit_code == 1  # z stays broken


def test_flaky_counts_as_decides_the_gate_and_the_exit_code(tmp_path: Path):
    script = {"a": {"x": ["failed", "passed"], "y": ["passed"]}}
    config = config_of(tmp_path, [{"name": "P1", "suites": ["a"]}], ["a"], retries=1)
    outcome, events, _ = run_loop(config, Attempts(script), max_iterations=1)
    assert outcome.exit_code == 0
    assert [e.status for e in of(events, IterationFinished)] == ["passed"]
    assert of(events, IterationFinished)[0].counts[FLAKY] == 1
    config = config_of(
        tmp_path, [{"name": "P1", "suites": ["a"]}], ["a"], retries=1, flaky_counts_as="fail"
    )
    outcome, events, _ = run_loop(config, Attempts(script), max_iterations=1)
    assert outcome.exit_code == 1
    assert [e.status for e in of(events, IterationFinished)] == ["gate-failed"]


def test_stop_on_gate_does_not_cut_a_phase_for_a_failure_a_retry_may_turn(tmp_path: Path):
    phases = [{"name": "P1", "suites": ["a", "b"], "stop_on_gate": True}]
    script = {"a": {"x": ["failed", "passed"], "y": ["passed"]}, "b": {"w": ["passed"]}}
    config = config_of(tmp_path, phases, ["a", "b"], retries=1)
    kind = Attempts(script)
    outcome, events, _ = run_loop(config, kind, max_iterations=1)
    assert outcome.exit_code == 0
    assert [c[0] for c in kind.calls] == ["a", "a", "b"]  # a's failure was retried, b ran
    assert of(events, PhaseFinished)[0].not_run == 0
    # once the retry fails too, the failure is final: the phase is cut there
    script["a"]["x"] = ["failed"]
    kind = Attempts(script)
    outcome, events, _ = run_loop(config, kind, max_iterations=1)
    assert outcome.exit_code == 1
    assert [c[0] for c in kind.calls] == ["a", "a"]  # b never started
    assert of(events, PhaseFinished)[0].status == "gate-failed"


# ------------------------------------------------------------------ the TUI's panes


def test_the_failures_pane_groups_a_flaky_pass_apart():
    from supervisor.tui.widgets.failures import FailureGroups
    from supervisor.tui.widgets.phases import rerun_line

    groups = FailureGroups()
    groups.add_newest_first(
        (
            result("x", "passed", attempt=2, flaky=True, message="passed on attempt 2"),
            result("x", "failed", message="AssertionError"),
        )
    )
    assert [(g.outcome, g.count) for g in groups.newest_first()] == [("flaky", 1), ("failed", 1)]
    model = RunModel()
    model.apply(PhaseStarted(1, 1, 0, "verify", "all-pass", ("a",), "now"))
    model.apply(TestResult(iteration=1, phase=0, suite="a", nodeid="t.py::x", outcome="failed"))
    model.apply(
        TestResult(
            iteration=1, phase=0, suite="a", nodeid="t.py::x", outcome="passed", attempt=2,
            flaky=True,
        )
    )  # fmt: skip
    assert "now pass: x (flaky)" in rerun_line(model.snapshot().phases[0]).plain


def test_a_resumed_iteration_counts_a_recorded_flaky_test_as_flaky(tmp_path: Path):
    import threading

    from supervisor.core.between import Between
    from supervisor.core.loop import Loop, LoopSettings, ResumePoint

    for rule, exit_code in (("pass", 0), ("fail", 1)):
        config = config_of(
            tmp_path, [{"name": "P1", "suites": ["a"]}], ["a"], retries=1, flaky_counts_as=rule
        )
        kind = Attempts({"a": {"x": ["failed"], "y": ["passed"]}})
        resume = ResumePoint(iteration=2, recorded={(1, "a"): {"x": "flaky"}})
        events: list = []
        stop = threading.Event()
        between = Between("immediate", 0.0, [tmp_path], stop, announce=lambda t: None)
        settings = LoopSettings("once", 0, 1, None, config.phases)
        loop = Loop(
            config, settings, {"scripted": kind}, None, events.append, 1, stop, between,
            resume=resume,
        )  # fmt: skip
        assert loop.run().exit_code == exit_code
        assert kind.calls == [("a", None)]  # x is recorded: not run, not retried
        counted = of(events, PhaseFinished)[0].counts
        assert (counted["passed"], counted[FLAKY]) == (1, 1)


def test_a_quarantined_failure_is_not_retried():
    attempts = SuiteAttempts(retries=2)
    q = attempts.mark(result("t::q", "hung", quarantined=True))
    attempts.mark(result("t::x", "failed"))
    assert not attempts.may_retry(q.nodeid, q.outcome, q.quarantined)
    assert attempts.may_retry("t::x", "failed")
    assert attempts.next_round() == frozenset({"t::x"})
