"""The history screen (``h``) on real SQLite histories: pilot tests on one written by real
runs, and a snapshot of one written through the real store from scripted events."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from history_db import build_history
from textual.widgets import DataTable, Static, TabbedContent
from tui_helpers import FrozenClock, scripted_model

from supervisor.core.events import (
    IterationFinished,
    IterationStarted,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    TestResult,
    count_outcomes,
)
from supervisor.store.writer import HistoryStore
from supervisor.tui.app import SupervisorApp
from supervisor.tui.history import HistoryApp, HistoryScreen


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    return build_history(tmp_path_factory.mktemp("tui_history"))


def run(coro):
    return asyncio.run(coro)


def rows(table: DataTable) -> list[list[str]]:
    return [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]


def column(table: DataTable, index: int) -> list[str]:
    return [row[index] for row in rows(table)]


def test_runs_iterations_flakiest_slowest_and_a_test(db):
    async def scenario():
        app = HistoryApp(db)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, HistoryScreen)
            runs = screen.query_one("#history-runs", DataTable)
            assert column(runs, 0) == ["2", "1"]  # newest first
            assert column(runs, 5) == ["2 passed, 1 failed", "2 passed, 2 failed"]
            iterations = screen.query_one("#history-iterations", DataTable)
            assert column(iterations, 0) == ["2.1"]  # the newest run's, to begin with
            # Enter on run 1: its two iterations
            await pilot.press("down", "enter")
            await pilot.pause()
            assert column(iterations, 0) == ["1.1", "1.2"]
            assert column(iterations, 5) == ["3 passed, 1 failed", "2 passed, 2 failed"]
            # the flakiest: the test that passed, then failed, under one revision
            await pilot.press("l")
            await pilot.pause()
            flaky = screen.query_one("#history-flaky", DataTable)
            assert column(flaky, 0) == ["api: api/test_api.py::test_alternates"]
            assert rows(flaky)[0][1:3] == ["1", "1"]  # pass, fail
            # the slowest by p95: the test that sleeps
            await pilot.press("s")
            await pilot.pause()
            slowest = screen.query_one("#history-slowest", DataTable)
            assert column(slowest, 0)[0] == "api: api/test_api.py::test_slow"
            assert column(slowest, 1)[0] == "3"  # ran in all three iterations
            # Enter on it: its results, newest first, as `history test` prints them
            await pilot.press("enter")
            await pilot.pause()
            assert screen.query_one(TabbedContent).active == "test"
            head = str(screen.query_one("#test-head", Static).render())
            assert "api: api/test_api.py::test_slow" in head
            assert "3 results in 3 iterations of 2 runs: 3 passed" in head
            results = screen.query_one("#history-test", DataTable)
            assert column(results, 0) == ["2.1", "1.2", "1.1"]
            assert column(results, 4) == ["passed"] * 3
            # a failing test's current streak, as `history test` says it
            await pilot.press("l", "enter")
            await pilot.pause()
            head = str(screen.query_one("#test-head", Static).render())
            assert "test_alternates" in head and "2 passed, 1 failed" in head
            assert column(results, 4) == ["passed", "failed", "passed"]
            assert "AssertionError: odd call 1" in rows(results)[1][7]
            await pilot.press("escape")  # leaving the screen leaves `history browse`
            await pilot.pause()
        return app.return_code

    assert run(scenario()) == 0


def test_h_opens_and_closes_the_history_over_the_live_dashboard(db):
    async def scenario():
        app = SupervisorApp(scripted_model(), clock=FrozenClock(), db_path=db)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("h")
            await pilot.pause()
            assert isinstance(app.screen, HistoryScreen)
            runs = app.screen.query_one("#history-runs", DataTable)
            assert runs.row_count == 2
            await pilot.press("h")  # h closes it too
            await pilot.pause()
            assert not isinstance(app.screen, HistoryScreen)
            await pilot.press("h", "escape")
            await pilot.pause()
            assert not isinstance(app.screen, HistoryScreen)
            # the dashboard's own keys work again: q asks before it quits a live run
            await pilot.press("q")
            await pilot.pause()
            assert type(app.screen).__name__ == "ConfirmQuit"

    run(scenario())


def test_without_a_database_the_screen_says_so(tmp_path):
    async def scenario(path):
        app = SupervisorApp(scripted_model(), clock=FrozenClock(), db_path=path)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("h")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, HistoryScreen)
            return screen.error, screen.query_one("#history-runs", DataTable).row_count

    error, count = run(scenario(None))
    assert "no history database" in error and count == 0
    missing = tmp_path / "none.db"
    error, count = run(scenario(missing))
    assert str(missing) in error and "no history database here yet" in error and count == 0


# ---------------------------------------------------------------------- the snapshot

AT = "2026-11-20T10:{:02d}:00.000+00:00"


def scripted_history(path: Path) -> None:
    """Two runs written by the real store from events with fixed times; the run rows'
    own start (the store stamps it) is set to fixed times too, so the picture holds."""
    for run_no, outcomes in ((1, ("passed", "failed")), (2, ("failed", "failed"))):
        store = HistoryStore.open(path, config_json="{}", git_sha="abc1234", version="0.1.0")
        rid = store.run_id
        for seq, flaky_outcome in enumerate(outcomes, start=1):
            minute = run_no * 20 + seq * 5
            store.put(IterationStarted(rid, seq, AT.format(minute)))
            store.put(
                PhaseStarted(rid, seq, 1, "P1 critical", "all-pass", ("api",), AT.format(minute))
            )
            results = [
                ("tests/test_api.py::test_login", "passed", 0.25, ""),
                ("tests/test_api.py::test_checkout", flaky_outcome, 1.5, "AssertionError: 503"),
                ("tests/test_api.py::test_export", "passed", 7.0, ""),
            ]
            for nodeid, outcome, duration, message in results:
                store.put(
                    TestResult(
                        seq, 1, "api", nodeid, outcome, duration, AT.format(minute + 1),
                        file="tests/test_api.py",
                        message=message if outcome == "failed" else "",
                    )
                )  # fmt: skip
            counts = count_outcomes([o for _, o, _, _ in results])
            store.put(
                PhaseFinished(
                    rid,
                    seq,
                    1,
                    "P1 critical",
                    "all-pass",
                    "failed" if "failed" in counts and counts["failed"] else "passed",
                    True,
                    counts,
                    60.0,
                )
            )
            status = "failed" if counts["failed"] else "passed"
            store.put(
                IterationFinished(
                    rid, seq, AT.format(minute + 2), status, counts, "rev-" + "ab"[seq - 1]
                )
            )
        store.put(RunFinished(rid, AT.format(run_no * 20 + 13), "failed", 1, 2))
        store.close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE runs SET started_at = ? WHERE id = 1", (AT.format(24),))
        conn.execute("UPDATE runs SET started_at = ? WHERE id = 2", (AT.format(44),))
    conn.close()


@pytest.fixture(autouse=True)
def _colours(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)  # textual would draw without colour


@pytest.mark.parametrize("keys", [(), ("s",)], ids=["runs", "slowest"])
def test_snapshot_80x24(snap_compare, tmp_path, monkeypatch, keys):
    scripted_history(tmp_path / "history.db")
    monkeypatch.chdir(tmp_path)  # the title shows the path as given: the same every time

    class Fixed(HistoryApp):
        def on_mount(self) -> None:
            now = datetime(2026, 11, 21, tzinfo=timezone.utc)
            self.push_screen(HistoryScreen(self.db_path, now=lambda: now))

    assert snap_compare(Fixed("history.db"), terminal_size=(80, 24), press=list(keys))
