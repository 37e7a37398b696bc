"""The screen at fixed sizes with time frozen, compared with text snapshots.

The snapshots are plain text (what a person sees, without colours) under
``tests/snapshots/``; after an intended change of the layout, rewrite them with
``NETRA_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_tui_snapshots.py`` and review
the diff like any other change.
"""

from __future__ import annotations

import asyncio
import difflib
import os
from pathlib import Path

import pytest
from tui_helpers import FrozenClock, screen_text, scripted_model

from supervisor.tui.app import SupervisorApp

SNAPSHOTS = Path(__file__).parent / "snapshots"


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    text = "\n".join(line.rstrip() for line in text.splitlines()) + "\n"
    if os.environ.get("NETRA_UPDATE_SNAPSHOTS") == "1":
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path}; create it with NETRA_UPDATE_SNAPSHOTS=1"
    expected = path.read_text(encoding="utf-8")
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), text.splitlines(True), "expected", "actual"
            )
        )
        pytest.fail(f"screen differs from {path.name}:\n{diff}")


def shoot(size: tuple[int, int], *keys: str) -> str:
    async def scenario() -> str:
        app = SupervisorApp(scripted_model(), clock=FrozenClock())
        async with app.run_test(size=size) as pilot:
            app.refresh_view()
            await pilot.pause()
            for key in keys:
                await pilot.press(key)
                await pilot.pause()
            app.refresh_view()
            await pilot.pause()
            return screen_text(app)

    return asyncio.run(scenario())


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 50)])
def test_dashboard(size):
    check(f"dashboard_{size[0]}x{size[1]}", shoot(size))


def test_help_80x24():
    check("help_80x24", shoot((80, 24), "question_mark"))


def test_quit_confirmation_80x24():
    check("quit_80x24", shoot((80, 24), "q"))


def test_failure_report_100x30():
    check("failure_report_100x30", shoot((100, 30), "f", "down", "enter"))
