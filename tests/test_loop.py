"""The loop's decisions: phases in order, gates, stop conditions, between-iteration waits.

Suites here are a small in-process suite kind (the same plugin API a team uses), so
each test states exactly which outcomes an iteration produces.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from supervisor.config import parse_config
from supervisor.core.between import Between
from supervisor.core.events import (
    IterationFinished,
    PhaseFinished,
    PhaseStarted,
    SuiteFinished,
    TestResult,
)
from supervisor.core.kinds import RunContext, SuiteKind
from supervisor.core.loop import Loop, LoopSettings, gate_holds


class ScriptedKind(SuiteKind):
    """Emits, for iteration N, the outcomes script[suite][N-1] (last entry repeats)."""

    name = "scripted"

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self.script = script
        self.calls: list[tuple[int, str]] = []

    def run(self, suite, ctx: RunContext) -> None:
        self.calls.append((ctx.iteration, suite.name))
        plan = self.script[suite.name]
        outcomes = plan[min(ctx.iteration, len(plan)) - 1]
        for i, outcome in enumerate(outcomes):
            ctx.emit(TestResult(ctx.iteration, ctx.phase_seq, suite.name, f"t{i}", outcome))
        ctx.emit(SuiteFinished(ctx.iteration, ctx.phase_seq, suite.name, "ok"))


def make_config(tmp_path: Path, phases: list[dict], suites: list[str], **run) -> object:
    data = {
        "run": run,
        "suite": [{"name": s, "kind": "scripted"} for s in suites],
        "phase": phases,
    }
    return parse_config(data, tmp_path / "netra-supervisor.toml")


def run_loop(
    config,
    kind,
    *,
    until="all-pass",
    max_iterations=5,
    target=0,
    max_duration=None,
    between_mode="immediate",
    stop=None,
    clock=time.monotonic,
):
    events = []
    stop = stop or threading.Event()
    between = Between(
        between_mode, 0.0, [config.base_dir], stop, announce=lambda t: None, poll=0.05
    )
    settings = LoopSettings(until, target, max_iterations, max_duration, config.phases)
    loop = Loop(
        config, settings, {"scripted": kind}, None, events.append, 1, stop, between, clock=clock
    )
    return loop.run(), events, between


def test_runs_until_all_pass_and_exits_zero(tmp_path):
    config = make_config(tmp_path, [{"name": "P1", "suites": ["a"]}], ["a"])
    kind = ScriptedKind({"a": [["passed", "failed"], ["passed", "failed"], ["passed", "passed"]]})
    outcome, events, _ = run_loop(config, kind)
    assert outcome.exit_code == 0 and outcome.status == "passed"
    finished = [e for e in events if isinstance(e, IterationFinished)]
    assert [e.status for e in finished] == ["gate-failed", "gate-failed", "passed"]
    assert finished[-1].counts["passed"] == 2


def test_failed_gate_skips_later_phases(tmp_path):
    phases = [{"name": "P1", "suites": ["a"]}, {"name": "P2", "suites": ["b"]}]
    config = make_config(tmp_path, phases, ["a", "b"])
    kind = ScriptedKind({"a": [["failed"]], "b": [["passed"]]})
    outcome, events, _ = run_loop(config, kind, max_iterations=2)
    assert outcome.exit_code == 1
    assert kind.calls == [(1, "a"), (2, "a")]  # b never ran: P1's gate failed both times
    assert outcome.stop_reason.startswith("max_iterations")


def test_gate_none_and_ratio_let_the_iteration_continue(tmp_path):
    phases = [
        {"name": "P1", "suites": ["a"], "gate": "none"},
        {"name": "P2", "suites": ["b"], "gate": 0.5},
        {"name": "P3", "suites": ["c"]},
    ]
    config = make_config(tmp_path, phases, ["a", "b", "c"])
    kind = ScriptedKind({"a": [["failed"]], "b": [["passed", "failed"]], "c": [["passed"]]})
    outcome, events, _ = run_loop(config, kind, until="once")
    assert [c[1] for c in kind.calls] == ["a", "b", "c"]
    gates = {e.name: e.gate_held for e in events if isinstance(e, PhaseFinished)}
    assert gates == {"P1": True, "P2": True, "P3": True}
    # the iteration had failures, so "once" ends with exit 1
    assert outcome.exit_code == 1


def test_gate_holds_rules():
    cfg = parse_config(
        {"suite": [{"name": "a"}], "phase": [{"name": "p", "suites": ["a"], "gate": "90%"}]},
        Path("x.toml"),
    )
    phase = cfg.phases[0]
    assert gate_holds(phase, {"passed": 9, "failed": 1})
    assert not gate_holds(phase, {"passed": 8, "failed": 1, "hung": 1})
    assert gate_holds(phase, {"skipped": 3})


def test_target_stop_condition(tmp_path):
    config = make_config(tmp_path, [{"name": "P1", "suites": ["a"], "gate": "none"}], ["a"])
    kind = ScriptedKind({"a": [["passed"] * 3, ["passed"] * 5 + ["failed"]]})
    outcome, events, _ = run_loop(config, kind, until="target", target=5)
    assert outcome.iterations == 2
    assert outcome.stop_reason == "target 5 reached"
    assert outcome.exit_code == 1  # target met, but one test still fails


def test_max_duration_stops_between_iterations(tmp_path):
    config = make_config(tmp_path, [{"name": "P1", "suites": ["a"]}], ["a"])
    kind = ScriptedKind({"a": [["failed"]]})
    now = [0.0]

    def clock():
        now[0] += 100.0  # every look at the clock is 100 s later
        return now[0]

    outcome, _, _ = run_loop(config, kind, max_iterations=50, max_duration=250.0, clock=clock)
    assert outcome.stop_reason.startswith("max_duration")
    assert outcome.iterations < 50


def test_stop_event_interrupts_with_130(tmp_path):
    config = make_config(
        tmp_path, [{"name": "P1", "suites": ["a"]}, {"name": "P2", "suites": ["b"]}], ["a", "b"]
    )
    stop = threading.Event()

    class StoppingKind(ScriptedKind):
        def run(self, suite, ctx):
            super().run(suite, ctx)
            stop.set()  # as if SIGINT arrived while suite a ran

    kind = StoppingKind({"a": [["passed"]], "b": [["passed"]]})
    outcome, events, _ = run_loop(config, kind, stop=stop)
    assert outcome.exit_code == 130
    assert kind.calls == [(1, "a")]
    assert [e.status for e in events if isinstance(e, IterationFinished)] == ["interrupted"]


def test_tag_selectors_pick_suites(tmp_path):
    data = {
        "suite": [
            {"name": "a", "kind": "scripted", "tags": ["critical"]},
            {"name": "b", "kind": "scripted"},
            {"name": "c", "kind": "scripted", "tags": ["critical"]},
        ],
        "phase": [{"name": "P1", "suites": ["tag:critical"]}],
    }
    config = parse_config(data, tmp_path / "x.toml")
    kind = ScriptedKind({"a": [["passed"]], "b": [["passed"]], "c": [["passed"]]})
    _, events, _ = run_loop(config, kind, until="once")
    started = [e for e in events if isinstance(e, PhaseStarted)]
    assert started[0].suites == ("a", "c")


def test_raising_suite_kind_is_an_error_result_not_a_crash(tmp_path):
    config = make_config(tmp_path, [{"name": "P1", "suites": ["a"]}], ["a"])

    class Broken(SuiteKind):
        name = "scripted"

        def run(self, suite, ctx):
            raise RuntimeError("kaboom")

    outcome, events, _ = run_loop(config, Broken(), until="once")
    results = [e for e in events if isinstance(e, TestResult)]
    assert results[0].outcome == "error" and "kaboom" in results[0].message
    assert outcome.exit_code == 1


def test_settle_runs_at_iteration_edges_only(tmp_path):
    """The session's hook barrier: after IterationStarted (before the deploy and the
    suites) and after IterationFinished (before the wait and the next iteration)."""
    config = make_config(tmp_path, [{"name": "P1", "suites": ["a"]}], ["a"])
    kind = ScriptedKind({"a": [["failed"], ["passed"]]})
    timeline: list[str] = []
    stop = threading.Event()
    between = Between("immediate", 0.0, [config.base_dir], stop, announce=lambda t: None)
    between.wait = lambda: timeline.append("wait") or True
    settings = LoopSettings("all-pass", 0, 5, None, config.phases)
    loop = Loop(
        config,
        settings,
        {"scripted": kind},
        None,
        lambda e: timeline.append(type(e).__name__),
        1,
        stop,
        between,
        settle=lambda: timeline.append("settle"),
    )
    assert loop.run().exit_code == 0
    edges = [t for t in timeline if t in ("settle", "wait") or t.startswith("Iteration")]
    assert edges == [
        "IterationStarted",
        "settle",
        "IterationFinished",
        "settle",
        "wait",
        "IterationStarted",
        "settle",
        "IterationFinished",
        "settle",
    ]
    first_settle = timeline.index("settle")
    assert timeline[first_settle + 1] == "DeployFinished"  # the deploy comes after it


def test_manual_between_waits_for_next_now(tmp_path):
    config = make_config(tmp_path, [{"name": "P1", "suites": ["a"]}], ["a"])
    kind = ScriptedKind({"a": [["failed"], ["passed"]]})
    result = {}

    def go():
        result["out"] = run_loop(config, kind, between_mode="manual")

    holder: dict = {}
    original_init = Between.__init__

    def capture(self, *a, **kw):
        original_init(self, *a, **kw)
        holder["between"] = self

    Between.__init__ = capture
    try:
        thread = threading.Thread(target=go)
        thread.start()
        time.sleep(0.5)
        assert len(kind.calls) == 1  # waiting for a person
        holder["between"].next_now.set()
        thread.join(10)
    finally:
        Between.__init__ = original_init
    assert result["out"][0].exit_code == 0
    assert len(kind.calls) == 2


def test_wait_for_change_notices_a_file_change(tmp_path):
    watched = tmp_path / "src"
    watched.mkdir()
    (watched / "app.py").write_text("x = 1\n")
    stop = threading.Event()
    with Between("wait-for-change", 0.0, [watched], stop, lambda t: None, poll=0.05) as between:
        between.iteration_started()
        done = threading.Event()
        threading.Thread(target=lambda: (between.wait(), done.set()), daemon=True).start()
        time.sleep(0.3)
        assert not done.is_set()
        (watched / "app.py").write_text("x = 2  # fixed\n")
        assert done.wait(5)


@pytest.mark.parametrize("mode", ["interval"])
def test_interval_between_returns_after_interval(tmp_path, mode):
    stop = threading.Event()
    between = Between(mode, 0.2, [tmp_path], stop, announce=lambda t: None, poll=0.05)
    t0 = time.monotonic()
    assert between.wait() is True
    assert time.monotonic() - t0 >= 0.15
    stop.set()
    assert between.wait() is False
