"""``netra-supervisor run`` in a real terminal: tmux, keys, the screen, the exit code.

CI (``CI`` set) must have tmux (``.ci/run`` installs it): there this test fails rather
than skips. Locally without tmux it is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

TMUX = shutil.which("tmux")


def require_tmux() -> str:
    if TMUX:
        return TMUX
    if os.environ.get("CI"):
        pytest.fail("tmux is missing: .ci/run installs it (apt-get install tmux)")
    pytest.skip("tmux is not installed (required in CI)")


class Tmux:
    """One tmux server of our own (its own socket), so nothing else is touched."""

    def __init__(self, tmux: str, socket: str) -> None:
        self.base = [tmux, "-L", socket]

    def __call__(self, *args: str) -> str:
        out = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=30, check=True
        )
        return out.stdout

    def screen(self) -> str:
        return self("capture-pane", "-p", "-t", "netra")

    def wait_for(self, what, timeout: float = 90.0) -> str:
        end = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if what(screen):
                return screen
            if time.monotonic() > end:
                raise AssertionError(f"not on screen in time:\n{screen}")
            time.sleep(0.2)


def progress(screen: str) -> int | None:
    """Tests done in the active phase (the phases row marked ▶: "done/total")."""
    for line in screen.splitlines():
        if "▶" in line:
            match = re.search(r"(\d+)/(\d+)", line)
            if match:
                return int(match.group(1))
    return None


def test_run_in_tmux_count_grows_q_confirms_exit_130_and_every_result_is_kept(tmp_path):
    tmux = Tmux(require_tmux(), f"netra-test-{os.getpid()}")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_slow.py").write_text(
        textwrap.dedent(
            """
            import time, pytest
            @pytest.mark.parametrize("i", range(60))
            def test_slow(i):
                time.sleep(0.25)
                assert i % 10 != 3, "every tenth fails"
            """
        )
    )
    (tmp_path / "netra-supervisor.toml").write_text(
        textwrap.dedent(
            """
            [run]
            until = "once"
            target = 60
            db = ".netra/history.db"

            [[phase]]
            name = "P1 critical"
            suites = ["slow"]
            impact = "checkout"

            [[suite]]
            name = "slow"
            kind = "pytest"
            args = ["tests"]
            """
        )
    )
    rc_file = tmp_path / "rc"
    command = (
        # COLUMNS/LINES inherited from elsewhere would beat the pane's real size
        f"unset COLUMNS LINES; cd {tmp_path} && {sys.executable} -m supervisor.cli run --no-mouse; "
        f"echo $? > {rc_file}; sleep 600"
    )
    env_path = os.environ.get("PATH", "")
    try:
        tmux(
            "new-session", "-d", "-s", "netra", "-x", "120", "-y", "40",
            "-e", f"PATH={env_path}", "-e", "TERM=xterm-256color", command,
        )  # fmt: skip
        first = progress(tmux.wait_for(lambda s: (progress(s) or 0) >= 2))
        screen = tmux.wait_for(
            lambda s: (progress(s) or 0) > (first or 0) and "tests/test_slow.py::test_" in s
        )  # the count grew; a test in flight shows in the running pane
        assert "passing / target" in screen and "P1 critical" in screen
        assert "running (watchdog)" in screen
        tmux("send-keys", "-t", "netra", "q")
        tmux.wait_for(lambda s: "Quit the run?" in s, timeout=30)
        tmux("send-keys", "-t", "netra", "y")
        end = time.monotonic() + 60
        while not rc_file.exists() or not rc_file.read_text().strip():
            assert time.monotonic() < end, tmux.screen()
            time.sleep(0.2)
        assert rc_file.read_text().strip() == "130"
        after = tmux.wait_for(lambda s: "results recorded:" in s, timeout=10)
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True, timeout=30)
    seen = int(re.search(r"results recorded: (\d+)", after).group(1))
    assert seen >= 3
    conn = sqlite3.connect(f"file:{tmp_path / '.netra/history.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute("select count(*) from results").fetchone()[0]
        status = conn.execute("select status from runs").fetchone()[0]
    finally:
        conn.close()
    assert rows == seen  # every result the run reported is in the database
    assert status == "interrupted"
