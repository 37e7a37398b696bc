"""``netra-supervisor watch``: the dashboard of a real headless run in another process,
followed from its history database (``WatchApp`` over ``FollowedRun``, Pilot)."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import time
from pathlib import Path

from cli_helpers import CLI, query, run_cli, write
from textual.widgets import Digits
from tui_helpers import screen_text

from supervisor.store.follow import FollowedRun
from supervisor.tui.watch import WatchApp

CONFIG = """
[run]
until = "all-pass"
max_iterations = 2
target = 40
db = ".netra/history.db"

[[phase]]
name = "P1 critical"
suites = ["slow"]

[[suite]]
name = "slow"
kind = "pytest"
args = ["tests"]
"""

SUITE = """
import time, pytest

@pytest.mark.parametrize("i", range(40))
def test_slow(i):
    time.sleep(0.15)
    assert i != 7, "the seventh fails"
"""


def project(root: Path) -> Path:
    write(root / "netra-supervisor.toml", CONFIG)
    write(root / "tests" / "test_slow.py", SUITE)
    return root / ".netra" / "history.db"


def query_ok(db: Path, sql: str) -> bool:
    """``sql`` returns a row (False while the database is not there yet)."""
    if not db.exists():
        return False
    try:
        return bool(query(db, sql))
    except sqlite3.Error:
        return False


def passing(app: WatchApp) -> int:
    return int(app.query_one("#passing", Digits).value)


def test_watch_follows_a_headless_run_to_its_end_and_browses_iterations(tmp_path: Path):
    db = project(tmp_path)
    run = subprocess.Popen(
        [*CLI, "run", "--headless"], cwd=tmp_path, stdout=subprocess.PIPE, text=True
    )
    try:
        end = time.monotonic() + 60
        while not query_ok(db, "SELECT id FROM runs"):
            assert time.monotonic() < end and run.poll() is None, "the run wrote no run row"
            time.sleep(0.1)
        seen: list[int] = []
        in_flight: set[str] = set()  # node ids the running pane showed

        async def scenario() -> WatchApp:
            app = WatchApp(FollowedRun(db))
            async with app.run_test(size=(120, 40)) as pilot:
                # the footer offers no key that acts on the run, and none is bound
                keys = {binding.key for binding in app.BINDINGS}
                assert not keys & {"p", "n", "k"}
                await pilot.press("p", "k", "n")  # nothing happens: not bound
                deadline = time.monotonic() + 90
                while not app.followed.finished:
                    assert time.monotonic() < deadline, screen_text(app)
                    await pilot.pause(0.2)
                    if not seen or passing(app) != seen[-1]:
                        seen.append(passing(app))
                    in_flight.update(t.nodeid for t in app.running_pane._tests.values())
                await pilot.pause(0.6)  # the last refresh after the run's end
                screen = screen_text(app)
                assert "FINISHED · exit 1" in screen and "P1 critical" in screen
                assert "AssertionError: the seventh fails" in screen  # the failures pane
                assert app.followed.iterations == [1, 2]
                assert "iteration 2/2" in screen and passing(app) == 39
                await pilot.press("left_square_bracket")
                await pilot.pause(0.6)
                assert "iteration 1/2" in screen_text(app)
                await pilot.press("q")
            return app

        app = asyncio.run(scenario())
        assert app.return_value == "left"
        # the count grew while the run went (it starts over with iteration 2)
        assert any(n.startswith("tests/test_slow.py::test_slow[") for n in in_flight)
        assert sum(after > before for before, after in zip(seen, seen[1:])) >= 2, seen
        out, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 1  # the watcher changed nothing: the seventh failed twice
    assert "2 iteration(s)" in out


def test_watch_without_a_database_or_run_is_exit_2_with_one_line(tmp_path: Path):
    result = run_cli(["watch", "--db", str(tmp_path / "none.db")], cwd=tmp_path)
    assert result.returncode == 2
    assert "no history database" in result.stderr and "--db" in result.stderr
    db = project(tmp_path)
    assert run_cli(["run", "--headless", "--once"], cwd=tmp_path).returncode == 1
    result = run_cli(["watch", "7", "--db", str(db)], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"netra-supervisor: no run 7 in {db.resolve()} (`netra-supervisor history runs`)"
    ]


def test_a_failures_row_whose_group_changed_is_patched_in_place():
    """A new iteration (or ``[``) brings other groups into the rows already shown: each
    changed cell is updated under its own column (a "change" column that does not
    exist used to take the message cell, and the app crashed)."""
    from textual.app import App, ComposeResult

    from supervisor.core.events import TestResult
    from supervisor.tui.widgets import FailuresPane

    class One(App[None]):
        def compose(self) -> ComposeResult:
            yield FailuresPane(id="failures")

    def failed(nodeid: str, message: str) -> TestResult:
        return TestResult(1, 1, "e2e", nodeid, "failed", message=message)

    async def scenario() -> list[str]:
        app = One()
        async with app.run_test(size=(100, 20)) as pilot:
            pane = app.query_one(FailuresPane)
            pane.show((failed("t.py::a", "AssertionError: one"),), reset=True)
            await pilot.pause()
            pane.show((failed("t.py::b", "AssertionError: two"),), reset=True)
            await pilot.pause()
            return [str(pane.get_cell_at((0, column))) for column in (2, 4)]

    assert asyncio.run(scenario()) == ["AssertionError: two", "t.py::b"]
