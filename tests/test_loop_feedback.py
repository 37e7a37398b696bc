"""The loop's verify pass and early gate verdict, with an in-process suite kind that
honours ``RunContext.only`` and ``RunContext.cut`` the way the built-in kinds do."""

from __future__ import annotations

import threading
from pathlib import Path

from test_loop import run_loop

from supervisor.config import parse_config
from supervisor.core.between import Between
from supervisor.core.events import (
    IterationFinished,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    SuiteFinished,
    TestResult,
    TestsCollected,
)
from supervisor.core.kinds import DeployBackend, DeployOutcome, RunContext, SuiteKind
from supervisor.core.loop import Loop, LoopSettings, ResumePoint


class Suites(SuiteKind):
    """``script[suite][N-1]`` is ``{nodeid: outcome}`` for iteration N (the last
    repeats). Runs only ``ctx.only`` when set; stops when ``ctx.cut`` is set."""

    name = "scripted"

    def __init__(self, script: dict[str, list[dict[str, str]]]) -> None:
        self.script = script
        self.calls: list[tuple[int, int, str, str, frozenset[str] | None]] = []
        self.cuts: list[tuple[str, int]] = []  # (suite, tests not run) when cut

    def run(self, suite, ctx: RunContext) -> None:
        self.calls.append((ctx.iteration, ctx.phase_seq, ctx.phase.name, suite.name, ctx.only))
        plan = self.script[suite.name]
        tests = plan[min(ctx.iteration, len(plan)) - 1]
        ids = [n for n in tests if (ctx.only is None or n in ctx.only)]
        ids = [n for n in ids if n not in ctx.already_run]
        ctx.report(TestsCollected, suite.name, nodeids=tuple(ids))
        for index, nodeid in enumerate(ids):
            if ctx.cut.is_set():
                self.cuts.append((suite.name, len(ids) - index))
                ctx.report(SuiteFinished, suite.name, status="cut")
                return
            ctx.report(TestResult, suite.name, nodeid=nodeid, outcome=tests[nodeid])
        ctx.report(SuiteFinished, suite.name, status="ok")


def config_of(tmp_path: Path, phases: list[dict], suites: list[str], **run):
    data = {
        "run": run,
        "suite": [{"name": s, "kind": "scripted"} for s in suites],
        "phase": phases,
    }
    return parse_config(data, tmp_path / "netra-supervisor.toml")


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def statuses(events) -> list[str]:
    return [e.status for e in of(events, IterationFinished)]


def ok(*names: str, fail: tuple[str, ...] = (), outcome: str = "failed") -> dict[str, str]:
    return {n: (outcome if n in fail else "passed") for n in names}


# ------------------------------------------------------------------ the verify pass

TWO_PHASES = [
    {"name": "P1", "suites": ["a"], "gate": "none", "test_timeout": "7s"},
    {"name": "P2", "suites": ["b", "c"], "gate": "all-pass"},
]


def test_the_next_iteration_re_runs_the_failures_first_then_everything(tmp_path):
    config = config_of(tmp_path, TWO_PHASES, ["a", "b", "c"], verify=True)
    kind = Suites(
        {
            "a": [ok("a1", "a2", "a3", fail=("a2",)), ok("a1", "a2", "a3")],
            "b": [ok("b1", "b2", fail=("b1",), outcome="hung"), ok("b1", "b2")],
            "c": [ok("c1")],
        }
    )
    outcome, events, _ = run_loop(config, kind)
    assert outcome.exit_code == 0 and statuses(events) == ["gate-failed", "passed"]
    second = [c for c in kind.calls if c[0] == 2]
    assert second == [
        # the verify pass: phase seq 0, each suite under its own phase (its deadlines)
        (2, 0, "P1", "a", frozenset({"a2"})),
        (2, 0, "P2", "b", frozenset({"b1"})),
        # then the full iteration, phases numbered as always
        (2, 1, "P1", "a", None),
        (2, 2, "P2", "b", None),
        (2, 2, "P2", "c", None),
    ]
    started = [(e.iteration, e.phase, e.name, e.gate) for e in of(events, PhaseStarted)]
    assert started[-3:] == [
        (2, 0, "verify", "all-pass"),
        (2, 1, "P1", "none"),
        (2, 2, "P2", "all-pass"),
    ]
    verify_started = of(events, PhaseStarted)[-3]
    assert verify_started.suites == ("a", "b")
    assert verify_started.impact == "re-runs 2 tests not passing in iteration 1"
    verify_done = [e for e in of(events, PhaseFinished) if e.phase == 0]
    assert [(e.status, e.gate_held, e.counts["passed"]) for e in verify_done] == [
        ("passed", True, 2)
    ]
    # the iteration's counts are the full phases' (the verify results are not counted twice)
    assert of(events, IterationFinished)[-1].counts["passed"] == 6


def test_a_failure_left_ends_the_iteration_verify_failed_and_the_loop_goes_on(tmp_path):
    config = config_of(tmp_path, TWO_PHASES, ["a", "b", "c"], verify=True)
    kind = Suites(
        {
            "a": [ok("a1", "a2", "a3", fail=("a1", "a2")), ok("a1", "a2", "a3", fail=("a2",))],
            "b": [ok("b1")],
            "c": [ok("c1")],
        }
    )
    outcome, events, _ = run_loop(config, kind, max_iterations=3)
    assert outcome.exit_code == 1 and outcome.stop_reason.startswith("max_iterations")
    assert statuses(events) == ["failed", "verify-failed", "verify-failed"]
    # no full phase after a verify pass that failed; the next one re-runs only what
    # still failed (a1 passed in iteration 2's verify pass)
    assert [c for c in kind.calls if c[0] > 1] == [
        (2, 0, "P1", "a", frozenset({"a1", "a2"})),
        (3, 0, "P1", "a", frozenset({"a2"})),
    ]
    finished = of(events, IterationFinished)
    # a verify-failed iteration counts what it ran: the verify pass
    assert (finished[1].counts["passed"], finished[1].counts["failed"]) == (1, 1)
    assert [(e.iteration, e.name, e.status, e.gate_held) for e in of(events, PhaseFinished)][
        -2:
    ] == [(2, "verify", "gate-failed", False), (3, "verify", "gate-failed", False)]


def test_without_verify_or_after_a_green_iteration_there_is_no_verify_pass(tmp_path):
    script = {"a": [ok("a1", fail=("a1",)), ok("a1")], "b": [ok("b1")], "c": [ok("c1")]}
    config = config_of(tmp_path, TWO_PHASES, ["a", "b", "c"])  # verify = false
    kind = Suites(script)
    _, events, _ = run_loop(config, kind, max_iterations=2)
    assert all(seq != 0 for _, seq, *_ in kind.calls)
    config = config_of(tmp_path, TWO_PHASES, ["a", "b", "c"], verify=True)
    kind = Suites({"a": [ok("a1")], "b": [ok("b1")], "c": [ok("c1", fail=("c1",)), ok("c1")]})
    _, events, _ = run_loop(config, kind, until="target", target=99, max_iterations=3)
    assert [c[:2] for c in kind.calls if c[1] == 0] == [(2, 0)]  # after 1 only; 2 was green


def test_a_deploy_failed_iteration_keeps_what_to_verify(tmp_path):
    config = config_of(tmp_path, TWO_PHASES, ["a", "b", "c"], verify=True)
    kind = Suites({"a": [ok("a1", fail=("a1",)), ok("a1")], "b": [ok("b1")], "c": [ok("c1")]})
    events: list = []
    stop = threading.Event()

    class FailsSecond(DeployBackend):
        name = "flaky"

        def deploy(self, config, iteration, log):
            return DeployOutcome(ok=iteration != 2)

    between = Between("immediate", 0.0, [tmp_path], stop, announce=lambda t: None)
    settings = LoopSettings("all-pass", 0, 5, None, config.phases)
    loop = Loop(
        config, settings, {"scripted": kind}, FailsSecond(), events.append, 1, stop, between
    )
    assert loop.run().exit_code == 0
    assert statuses(events) == ["failed", "deploy-failed", "passed"]
    verify = [e for e in of(events, PhaseStarted) if e.phase == 0]
    assert [(e.iteration, e.impact) for e in verify] == [
        (3, "re-runs 1 test not passing in iteration 1")
    ]


def test_tests_no_longer_collected_are_not_run_and_do_not_fail_the_verify_pass(tmp_path):
    config = config_of(tmp_path, TWO_PHASES, ["a", "b", "c"], verify=True)
    kind = Suites(
        {
            "a": [ok("a1", "gone", fail=("a1", "gone")), ok("a1")],  # "gone" was deleted
            "b": [ok("b1")],
            "c": [ok("c1")],
        }
    )
    _, events, _ = run_loop(config, kind)
    assert statuses(events) == ["failed", "passed"]
    verify = next(e for e in of(events, PhaseFinished) if e.phase == 0)
    assert (verify.status, verify.not_run, verify.note) == ("passed", 1, "no longer collected")
    assert verify.counts["passed"] == 1
    logs = [e.text for e in of(events, LogLine) if e.source == "verify"]
    assert logs == ["1 no longer collected, not run: gone"]


def test_a_verify_pass_interrupted_ends_the_run_interrupted(tmp_path):
    config = config_of(tmp_path, TWO_PHASES, ["a", "b", "c"], verify=True)
    stop = threading.Event()

    class StopsInVerify(Suites):
        def run(self, suite, ctx):
            super().run(suite, ctx)
            if ctx.phase_seq == 0:
                stop.set()  # Ctrl-C while the verify pass runs

    kind = StopsInVerify(
        {"a": [ok("a1", fail=("a1",))], "b": [ok("b1", fail=("b1",))], "c": [ok("c1")]}
    )
    outcome, events, _ = run_loop(config, kind, stop=stop)
    assert outcome.exit_code == 130
    assert statuses(events) == ["gate-failed", "interrupted"]
    assert [c for c in kind.calls if c[0] == 2] == [(2, 0, "P1", "a", frozenset({"a1"}))]
    last = of(events, PhaseFinished)[-1]
    assert (last.name, last.status) == ("verify", "interrupted")


def test_a_resumed_run_verifies_the_iteration_before_and_skips_what_it_recorded(tmp_path):
    config = config_of(tmp_path, TWO_PHASES, ["a", "b", "c"], verify=True)
    kind = Suites({"a": [ok("a1", "a2", "a3")], "b": [ok("b1")], "c": [ok("c1")]})
    resume = ResumePoint(
        iteration=4,
        recorded={(0, "a"): {"a1": "passed"}},  # iteration 4's verify pass had begun
        previous={(1, "a"): {"a1": "failed", "a2": "hung", "a3": "passed"}},
        previous_iteration=3,
    )
    events: list = []
    stop = threading.Event()
    between = Between("immediate", 0.0, [tmp_path], stop, announce=lambda t: None)
    settings = LoopSettings("all-pass", 0, 5, None, config.phases)
    loop = Loop(
        config, settings, {"scripted": kind}, None, events.append, 1, stop, between, resume=resume
    )
    assert loop.run().exit_code == 0
    assert kind.calls[0] == (4, 0, "P1", "a", frozenset({"a1", "a2"}))
    verify = of(events, PhaseFinished)[0]
    assert (verify.name, verify.counts["passed"]) == ("verify", 2)  # a1 recorded + a2 now
    assert [r.nodeid for r in of(events, TestResult) if r.phase == 0] == ["a2"]


# ------------------------------------------------------------------ stop_on_gate


def fifty(fail_at: int) -> dict[str, str]:
    return {f"t{i:02d}": ("failed" if i == fail_at else "passed") for i in range(50)}


def test_all_pass_with_stop_on_gate_stops_at_the_first_failure(tmp_path):
    phases = [
        {"name": "P1", "suites": ["a", "b"], "stop_on_gate": True},
        {"name": "P2", "suites": ["c"]},
    ]
    config = config_of(tmp_path, phases, ["a", "b", "c"])
    kind = Suites({"a": [fifty(25)], "b": [ok("b1")], "c": [ok("c1")]})
    outcome, events, _ = run_loop(config, kind, until="once")
    assert outcome.exit_code == 1 and statuses(events) == ["gate-failed"]
    results = of(events, TestResult)
    assert len(results) == 26 and results[-1].outcome == "failed"
    assert kind.cuts == [("a", 24)]
    assert [c[3] for c in kind.calls] == ["a"]  # b (same phase) and P2 never start
    p1 = of(events, PhaseFinished)[0]
    assert (p1.status, p1.gate_held, p1.not_run) == ("gate-failed", False, 24)
    assert p1.note == "the gate can no longer hold; not started: b"
    assert sum(p1.counts.values()) == 26  # the tests not run are not results
    log = [e.text for e in of(events, LogLine) if e.source == "gate"]
    assert log == ["P1: 24 tests not run (the gate can no longer hold; not started: b)"]


def test_a_ratio_gate_stops_only_once_the_rest_cannot_reach_it(tmp_path):
    phases = [{"name": "P1", "suites": ["a"], "gate": 0.9, "stop_on_gate": True}]
    config = config_of(tmp_path, phases, ["a"])
    tests = {f"t{i:02d}": ("failed" if i in (1, 3, 5) else "passed") for i in range(20)}
    kind = Suites({"a": [tests]})
    _, events, _ = run_loop(config, kind, until="once")
    results = of(events, TestResult)
    # two failures leave 18/20 possible; the third (t05) makes 17/20 < 0.9
    assert [r.nodeid for r in results][-1] == "t05" and len(results) == 6
    p1 = of(events, PhaseFinished)[0]
    assert (p1.status, p1.not_run) == ("gate-failed", 14)


def test_a_ratio_is_not_decided_while_a_later_suite_is_unknown(tmp_path):
    phases = [{"name": "P1", "suites": ["a", "b"], "gate": 0.5, "stop_on_gate": True}]
    config = config_of(tmp_path, phases, ["a", "b"])
    kind = Suites({"a": [ok("a1", "a2", "a3", fail=("a1", "a2", "a3"))], "b": [ok("b1")]})
    _, events, _ = run_loop(config, kind, until="once")
    # 0/3 after a, but b might have been large: a runs to its end and b starts
    assert [c[3] for c in kind.calls] == ["a", "b"]
    # once b says it has one test, 1/4 can no longer reach 0.5: b is cut before it
    assert kind.cuts == [("b", 1)]
    p1 = of(events, PhaseFinished)[0]
    assert (p1.status, p1.gate_held, p1.not_run) == ("gate-failed", False, 1)


def test_without_stop_on_gate_the_phase_runs_to_its_end(tmp_path):
    config = config_of(tmp_path, [{"name": "P1", "suites": ["a", "b"]}], ["a", "b"])
    kind = Suites({"a": [fifty(25)], "b": [ok("b1")]})
    _, events, _ = run_loop(config, kind, until="once")
    assert len(of(events, TestResult)) == 51 and kind.cuts == []
    p1 = of(events, PhaseFinished)[0]
    assert (p1.not_run, p1.note) == (0, "")
