"""``run`` with the TUI: the loop in its own thread, the app in this one.

Real pytest suites, a real SQLite file and the real app (headless Textual driver).
A crash of the UI must not lose results: the run goes on headless to the end.
"""

from __future__ import annotations

import io
import re
import sqlite3
import textwrap
from pathlib import Path

import psutil
from test_cli_feedback import two_phase_project
from tui_helpers import screen_text

from supervisor.session import RunOptions, run_supervisor
from supervisor.tui.app import SupervisorApp, run_tui
from supervisor.tui.widgets import PhasesPane


def project(tmp_path: Path, count: int, sleep: float) -> Path:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        textwrap.dedent(
            f"""
            import time, pytest
            @pytest.mark.parametrize("i", range({count}))
            def test_t(i):
                time.sleep({sleep})
                assert i != 1, "one failure"
            """
        )
    )
    config = tmp_path / "netra-supervisor.toml"
    config.write_text(
        textwrap.dedent(
            """
            [run]
            until = "once"
            target = 10
            db = ".netra/history.db"

            [[phase]]
            name = "P1"
            suites = ["s"]

            [[suite]]
            name = "s"
            kind = "pytest"
            args = ["tests"]
            """
        )
    )
    return config


def db_count(tmp_path: Path) -> int:
    conn = sqlite3.connect(f"file:{tmp_path / '.netra/history.db'}?mode=ro", uri=True)
    try:
        return conn.execute("select count(*) from results").fetchone()[0]
    finally:
        conn.close()


def recorded(out: str) -> int:
    match = re.search(r"results recorded: (\d+)", out)
    assert match, out
    return int(match.group(1))


def test_a_widget_that_raises_leaves_the_run_going_headless_with_every_result(
    tmp_path, monkeypatch
):
    config = project(tmp_path, 6, 0.1)
    original = PhasesPane.show

    def exploding(self, phases):
        if any(phase.done for phase in phases):
            raise RuntimeError("widget exploded")
        original(self, phases)

    monkeypatch.setattr(PhasesPane, "show", exploding)

    def ui(**kwargs):
        how, detail = run_tui(**kwargs, headless=True)
        assert how == "crashed" and "widget exploded" in detail
        return how, detail

    out = io.StringIO()
    code = run_supervisor(RunOptions(config=str(config), headless=False), out=out, ui=ui)
    text = out.getvalue()
    assert "the TUI crashed (RuntimeError: widget exploded); going on headless" in text
    assert code == 1  # the run went on to its end: one test fails
    assert "run 1 failed after 1 iteration(s) → exit 1" in text
    assert db_count(tmp_path) == 6 == recorded(text)


class QuitsAfterThreeResults(SupervisorApp):
    """Presses q, then answers y, once three results are in (as a person would)."""

    asked = False

    def refresh_view(self) -> None:
        super().refresh_view()
        if not self.asked and self.model.results_seen >= 3:
            self.asked = True
            self.action_quit_run()
            self.set_timer(0.05, lambda: self.screen.action_answer(True))


def test_quit_stops_the_run_keeps_every_result_and_exits_130(tmp_path):
    config = project(tmp_path, 40, 0.2)
    out = io.StringIO()
    code = run_supervisor(
        RunOptions(config=str(config), headless=False),
        out=out,
        ui=lambda **kw: run_tui(**kw, app_class=QuitsAfterThreeResults, headless=True),
    )
    text = out.getvalue()
    assert code == 130
    assert "quitting: stopping the tests in flight" in text
    seen = recorded(text)
    assert 3 <= seen < 40
    assert db_count(tmp_path) == seen  # every result the view saw is in the database
    leftovers = [
        p
        for p in psutil.Process().children(recursive=True)
        if p.status() != psutil.STATUS_ZOMBIE and "pytest" in " ".join(p.cmdline())
    ]
    assert leftovers == []  # child processes stopped


class CapturesWhenDone(SupervisorApp):
    """Keeps what the screen shows once the loop is done (after one more refresh, so
    the last state is painted), then leaves."""

    screens: list[str] = []
    _after = 0

    def refresh_view(self) -> None:
        super().refresh_view()
        if self.loop_done.is_set():
            self._after += 1
            if self._after == 3:
                type(self).screens.append(screen_text(self))
                self.exit("finished")


def test_the_tui_shows_the_verify_pass_as_a_phase_row_before_the_full_run(tmp_path):
    two_phase_project(
        tmp_path,
        """
        from helpers_p1 import first_time
        def test_a(): pass
        def test_b(): assert not first_time("b"), "not fixed yet"
        """,
        """
        from helpers_p2 import first_time
        def test_d(): pass
        def test_e(): assert not first_time("e"), "not fixed yet"
        """,
    )
    CapturesWhenDone.screens = []
    out = io.StringIO()
    code = run_supervisor(
        RunOptions(config=str(tmp_path / "netra-supervisor.toml"), headless=False),
        out=out,
        ui=lambda **kw: run_tui(**kw, app_class=CapturesWhenDone, headless=True),
    )
    assert code == 0, out.getvalue()
    (screen,) = CapturesWhenDone.screens
    lines = screen.splitlines()
    verify = next(i for i, line in enumerate(lines) if "✔ verify" in line)
    assert "2/2" in lines[verify] and "all-pass held" in lines[verify]
    assert "re-runs 2 tests" in lines[verify]  # (cut at 80 columns)
    assert "✔ 2 now pass: test_b, test_e" in lines[verify + 1]
    p1 = next(i for i, line in enumerate(lines) if "✔ P1" in line)
    p2 = next(i for i, line in enumerate(lines) if "✔ P2" in line)
    assert verify < p1 < p2
