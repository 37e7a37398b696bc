"""The screen at fixed sizes with time frozen, compared with SVG snapshots.

pytest-textual-snapshot (the Textual project's own tool) renders the app as the
terminal would show it, colours included, and compares it with the SVG files under
``tests/__snapshots__/test_tui_snapshots/``; a difference fails the test and writes
``snapshot_report.html`` with both screens side by side. After an intended change of
the layout, rewrite them with ``python -m pytest tests/test_tui_snapshots.py
--snapshot-update`` and review the new pictures like any other change.

Deterministic: a scripted run (``tui_helpers.scripted_model``), a frozen clock, fixed
terminal sizes; nothing on the screen depends on the time, a path or a pid.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from tui_helpers import FrozenClock, scripted_model

from supervisor.tui.app import SupervisorApp


@pytest.fixture(autouse=True)
def _colours(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)  # textual would draw without colour


def shot(*keys: str) -> tuple[SupervisorApp, Callable[[Pilot], Awaitable[None]]]:
    """The scripted app, and what to do before the picture: paint, press ``keys``."""
    app = SupervisorApp(scripted_model(), clock=FrozenClock())

    async def before(pilot: Pilot) -> None:
        app.refresh_view()
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        app.refresh_view()
        await pilot.pause()

    return app, before


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)], ids="{0[0]}x{0[1]}".format)
def test_dashboard(snap_compare, size):
    app, before = shot()
    assert snap_compare(app, terminal_size=size, run_before=before)


def test_help_80x24(snap_compare):
    app, before = shot("question_mark")
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_quit_confirmation_80x24(snap_compare):
    app, before = shot("q")
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_failure_report_100x30(snap_compare):
    app, before = shot("f", "down", "enter")
    assert snap_compare(app, terminal_size=(100, 30), run_before=before)
