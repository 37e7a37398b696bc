"""A scripted run for the TUI tests: events folded into a real ``RunModel``, a frozen
clock, and the screen as plain text."""

from __future__ import annotations

import io

from rich.console import Console

from supervisor.core.events import (
    DeployFinished,
    IterationFinished,
    IterationStarted,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    RunStarted,
    TestResult,
    TestsCollected,
    TestStarted,
    count_outcomes,
)
from supervisor.core.model import RunModel

T0 = 1000.0  # the frozen monotonic "now" of the snapshot tests
AT = "2026-01-02T03:04:05.000+00:00"


class FrozenClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def screen_text(app) -> str:
    """What the terminal shows, as text (the same render ``export_screenshot`` uses)."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    render = app.screen._compositor.render_update(
        full=True, screen_stack=app._background_screens, simplify=True
    )
    console.print(render)
    return console.export_text(styles=False)


def scripted_model() -> RunModel:
    """Run 7, iteration 2 of 5: P1 done (one failure), P2 running with two tests in flight."""
    model = RunModel(until="all-pass", max_iterations=5, max_duration=7200.0, started=T0 - 754)
    e = model.apply
    e(RunStarted(7, AT, 10, "netra-supervisor.toml"))
    e(IterationStarted(7, 1, AT))
    e(DeployFinished(7, 1, "command", "abc1234", AT, 1.0, "ok"))
    e(IterationFinished(7, 1, AT, "failed", {**count_outcomes([]), "passed": 6, "failed": 4}))
    e(IterationStarted(7, 2, AT))
    e(LogLine("info", "deploy:command", "deploying revision def5678", at=AT))
    e(DeployFinished(7, 2, "command", "def5678", AT, 2.5, "ok"))
    e(PhaseStarted(7, 2, 1, "P1 critical", "all-pass", ("p1",), AT, "$120K MRR"))
    nodeids = tuple(f"tests/test_p1.py::test_{i}" for i in range(4))
    e(TestsCollected(2, 1, "p1", nodeids))
    for nodeid in nodeids[:3]:
        e(TestResult(2, 1, "p1", nodeid, "passed", 0.1, AT))
    e(
        TestResult(
            2, 1, "p1", nodeids[3], "failed", 0.2, AT,
            message="AssertionError: expected 200, got 503",
            longrepr="def test_3():\n>       assert status == 200\nE       AssertionError",
        )
    )  # fmt: skip
    e(PhaseFinished(7, 2, 1, "P1 critical", "all-pass", "gate-failed", False, {}, 1.5))
    e(PhaseStarted(7, 2, 2, "P2 important", "none", ("p2",), AT, "checkout"))
    p2 = tuple(f"tests/test_p2.py::test_{i}" for i in range(6))
    e(TestsCollected(2, 2, "p2", p2))
    e(TestResult(2, 2, "p2", p2[0], "passed", 0.1, AT))
    e(TestResult(2, 2, "p2", p2[1], "skipped", 0.0, AT, message="no staging key"))
    e(LogLine("warning", "p2", f"hung (deadline, 30s): {p2[2]}", at=AT))
    e(
        TestResult(
            2, 2, "p2", p2[2], "hung", 30.0, AT,
            message="still running after its deadline of 30s",
            dump="Thread MainThread:\n  File test_p2.py, line 9\n    await ws.recv()",
        )
    )  # fmt: skip
    e(TestStarted(2, 2, "p2", p2[3], "gw0", 60.0, at=T0 - 12.0))
    e(TestStarted(2, 2, "p2", p2[4], "gw1", 20.0, at=T0 - 17.0))
    return model
