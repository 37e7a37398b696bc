"""Expected counts and ETAs where a person sees them: the TUI (Pilot) and headless lines."""

from __future__ import annotations

import asyncio
import io

from tui_helpers import AT, T0, FrozenClock, screen_text

from supervisor.core.eta import Estimator, TestTimes
from supervisor.core.events import (
    DeployFinished,
    IterationStarted,
    PhaseStarted,
    RunStarted,
    TestResult,
    TestsCollected,
)
from supervisor.core.model import RunModel
from supervisor.headless import HeadlessReporter
from supervisor.tui.app import SupervisorApp

P1 = tuple(f"tests/test_p1.py::test_{i}" for i in range(200))
P2 = tuple(f"tests/test_p2.py::test_{i}" for i in range(10))


def history() -> TestTimes:
    """Last time p1 had 200 tests of 0.4 s (median of 0.3, 0.4, 0.9), p2 ten of 3 s."""
    times = TestTimes()
    times.seed([("p1", n, 5, (0.9, 0.4, 0.3)) for n in P1] + [("p2", n, 5, (3.0,)) for n in P2])
    return times


def estimator(clock: FrozenClock) -> Estimator:
    plan = [("P1 critical", ("p1",)), ("P2 important", ("p2",))]
    return Estimator(history(), plan, {"p1": 1, "p2": 1}, deploy=10.0, clock=clock)


def line_with(text: str, needle: str) -> str:
    return next(line for line in text.splitlines() if needle in line)


def test_tui_phase_rows_and_header_show_expected_counts_and_etas():
    clock = FrozenClock()
    est = estimator(clock)
    model = RunModel(until="all-pass", max_iterations=5, started=T0 - 30, estimator=est)

    def feed(*events) -> None:
        for event in events:
            est(event)
            model.apply(event)

    async def scenario():
        app = SupervisorApp(model, clock=clock)
        async with app.run_test(size=(140, 40)) as pilot:

            async def screen() -> str:
                app.refresh_view()
                await pilot.pause()
                return screen_text(app)

            feed(RunStarted(7, AT, 0, "netra-supervisor.toml"), IterationStarted(7, 1, AT))
            # deploying: the deploy's typical 10 s, then 80 s of P1 and 30 s of P2
            assert "iteration ETA 2m00s" in await screen()
            clock.now = T0 + 4.0  # the header ticks with the clock, without any event
            assert "iteration ETA 1m56s" in await screen()
            feed(DeployFinished(7, 1, "command", "abc", AT, 10.0, "ok"))
            feed(PhaseStarted(7, 1, 1, "P1 critical", "all-pass", ("p1",), AT))
            text = await screen()
            p1 = line_with(text, "P1 critical")
            assert "0/200 expected" in p1 and "ETA 1m20s" in p1  # before it collected
            assert "iteration ETA 1m50s" in text
            feed(TestsCollected(1, 1, "p1", P1))
            feed(*(TestResult(1, 1, "p1", n, "passed", 0.5, AT) for n in P1[:50]))
            text = await screen()
            p1 = line_with(text, "P1 critical")
            assert "50/200" in p1 and "expected" not in p1 and "ETA 1m00s" in p1
            assert "iteration ETA 1m30s" in text

    asyncio.run(scenario())


def test_tui_without_history_shows_no_eta_and_plain_counts():
    clock = FrozenClock()
    est = Estimator(TestTimes(), [("P1", ("p1",))], clock=clock)
    model = RunModel(estimator=est)
    for event in (
        IterationStarted(1, 1, AT),
        PhaseStarted(1, 1, 1, "P1", "all-pass", ("p1",), AT),
        TestsCollected(1, 1, "p1", P1[:3]),
    ):
        est(event)
        model.apply(event)

    async def scenario():
        app = SupervisorApp(model, clock=clock)
        async with app.run_test(size=(120, 30)) as pilot:
            app.refresh_view()
            await pilot.pause()
            text = screen_text(app)
            assert "0/3" in line_with(text, "P1") and "ETA" not in text

    asyncio.run(scenario())


def test_headless_lines_show_expected_counts_and_etas():
    clock = FrozenClock()
    est = estimator(clock)
    out = io.StringIO()
    reporter = HeadlessReporter(out=out, progress_every=0.0, estimator=est)

    def feed(*events) -> None:
        for event in events:
            est(event)
            reporter(event)

    feed(IterationStarted(7, 1, AT, eta_s=120.0), DeployFinished(7, 1, "x", None, AT, 0, "ok"))
    feed(PhaseStarted(7, 1, 1, "P1 critical", "all-pass", ("p1",), AT))
    # a suite kind that reports results without a collection first: still "expected"
    feed(TestResult(1, 1, "p1", P1[0], "passed", 0.4, AT))
    feed(TestsCollected(1, 1, "p1", P1))
    feed(TestResult(1, 1, "p1", P1[1], "passed", 0.4, AT))
    lines = out.getvalue().splitlines()
    assert "── iteration 1 · ETA 2m00s ──" in lines
    assert "▶ P1 critical: suites p1 · gate all-pass · 200 expected · ETA 1m20s" in lines
    progress = [line for line in lines if line.startswith("  … ")]
    assert progress[0].startswith("  … P1 critical: 1/200 expected · 0 not passing")
    assert progress[0].endswith("· ETA 1m20s (iteration 1m50s)")
    assert progress[1].startswith("  … P1 critical: 2/200 done · 0 not passing")
    assert progress[1].endswith("· ETA 1m20s (iteration 1m50s)")
