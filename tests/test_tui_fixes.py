"""Live TUI fixes found by trying it as a new user would (issue 17, point 5): the
header at 120 columns once the run finishes, crash lines in the log pane, and the
``worker`` column only under xdist."""

from __future__ import annotations

import asyncio
import threading

from tui_helpers import AT, T0, FrozenClock, screen_text, scripted_model

from supervisor.core.events import (
    IterationStarted,
    PhaseStarted,
    TestCrashed,
    TestResult,
    TestsCollected,
    TestStarted,
)
from supervisor.core.model import RunModel
from supervisor.tui.app import SupervisorApp
from supervisor.tui.widgets import LogPane, RunningPane


def finished_app() -> SupervisorApp:
    """The scripted run, ended by max_iterations with changes to report: the longest header."""
    model = scripted_model()
    for i in range(3):
        model.apply(TestResult(2, 2, "p2", f"x.py::t{i}", "failed", 0.1, AT, change="new"))
    model.apply(TestResult(2, 2, "p2", "x.py::s", "failed", 0.1, AT, change="still"))
    model.apply(TestResult(2, 2, "p2", "x.py::f", "passed", 0.1, AT, change="fixed"))
    model.finish("max_iterations (5) reached", 1)
    done = threading.Event()
    done.set()
    return SupervisorApp(model, clock=FrozenClock(), loop_done=done)


def test_the_finished_header_keeps_to_its_two_lines_at_120_and_80_columns():
    async def scenario(width: int) -> list[str]:
        app = finished_app()
        async with app.run_test(size=(width, 40)) as pilot:
            app.refresh_view()
            await pilot.pause()
            return screen_text(app).splitlines()

    for width in (120, 80):
        lines = asyncio.run(scenario(width))
        first, second, third = lines[0], lines[1], lines[2]
        assert "FINISHED · exit 1" in first and "q leaves" in first, (width, first)
        # the second line is the header's own, not the first one wrapped
        assert second.startswith(" stopped: max_iterations (5) reached · elapsed"), second
        assert third.startswith("╭─ passing / target"), third  # the panes start on line 3
        if width == 80:  # what does not fit is cut, not wrapped
            assert first.rstrip().endswith("…"), first


def test_a_crash_line_reaches_the_log_pane():
    async def scenario() -> tuple[list[str], list[str]]:
        model = scripted_model()
        app = SupervisorApp(model, clock=FrozenClock())
        async with app.run_test(size=(120, 40)) as pilot:
            app.refresh_view()
            await pilot.pause()
            before = list(app.query_one(LogPane).lines)
            model.apply(TestCrashed(2, 2, "p2", "tests/test_p2.py::test_3", "signal SIGSEGV"))
            for _ in range(4):  # the log is applied every LIST_EVERY-th pull
                app.refresh_view()
            await pilot.pause()
            return before, list(app.query_one(LogPane).lines)

    before, after = asyncio.run(scenario())
    line = "p2: crashed (signal SIGSEGV): tests/test_p2.py::test_3"
    assert not any(line in text for text in before)
    assert any(text.endswith(line) and "WARNING" in text for text in after), after


def _one_test_model(worker: str) -> RunModel:
    model = RunModel(until="all-pass", max_iterations=5, started=T0 - 10)
    model.apply(IterationStarted(7, 1, AT))
    model.apply(PhaseStarted(7, 1, 1, "P1", "all-pass", ("p1",), AT))
    model.apply(TestsCollected(1, 1, "p1", ("a",)))
    nodeid = "tests/test_checkout.py::test_payment_is_captured"
    model.apply(TestStarted(1, 1, "p1", nodeid, worker, 60.0, at=T0 - 2.0))
    return model


def _columns(pane: RunningPane) -> list[str]:
    return [str(column.label) for column in pane.ordered_columns]


def test_the_worker_column_shows_only_under_xdist():
    async def scenario() -> tuple[list[str], str, list[str], str, list[str]]:
        model = _one_test_model(worker="")
        app = SupervisorApp(model, clock=FrozenClock())
        async with app.run_test(size=(80, 24)) as pilot:
            app.refresh_view()
            await pilot.pause()
            pane = app.query_one(RunningPane)
            plain, plain_text = _columns(pane), screen_text(app)
            # an xdist phase: two workers in flight, the cursor kept on its test
            model.apply(TestStarted(1, 1, "p1", "tests/t.py::b", "gw1", 60.0, at=T0 - 1.0))
            model.apply(TestStarted(1, 1, "p1", "tests/t.py::c", "gw0", 60.0, at=T0 - 1.0))
            app.refresh_view()
            await pilot.pause()
            xdist, xdist_text = _columns(pane), screen_text(app)
            chosen = pane.selected()
            assert chosen is not None
            model.apply(TestResult(1, 1, "p1", "tests/t.py::b", "passed", 0.1, AT))
            model.apply(TestResult(1, 1, "p1", "tests/t.py::c", "passed", 0.1, AT))
            model.apply(TestResult(1, 1, "p1", chosen.nodeid, "passed", 0.1, AT))
            model.apply(TestStarted(1, 1, "p1", "tests/t.py::d", "", 60.0, at=T0 - 1.0))
            app.refresh_view()
            await pilot.pause()
            return plain, plain_text, xdist, xdist_text, _columns(pane)

    plain, plain_text, xdist, xdist_text, back = asyncio.run(scenario())
    assert plain == ["elapsed", "left", "test"]
    # at 80 columns the six cells went to the name: more of it is on the screen
    running_row = next(line for line in plain_text.splitlines() if "58.0s" in line)
    assert "tests/test_checko" in running_row, running_row
    assert xdist == ["worker", "elapsed", "left", "test"]
    assert "gw0" in xdist_text and "gw1" in xdist_text
    assert back == ["elapsed", "left", "test"]  # a plain pytest phase after the xdist one
