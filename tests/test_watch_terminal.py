"""The done-when of ``watch``: the demo runs headless in one tmux window, ``watch``
follows it in another (120x40); the phases and a growing count show while it runs,
the final state when it ends, ``q`` leaves with exit 0 and the demo's exit code is
its own. CI must have tmux (fails there without it); locally it is skipped."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from test_tui_terminal import Tmux, progress, require_tmux

PYTHON = sys.executable


def wait_for_file(path: Path, pattern: str, timeout: float = 120.0) -> re.Match[str]:
    end = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        match = re.search(pattern, text)
        if match:
            return match
        assert time.monotonic() < end, f"{pattern!r} not in {path}:\n{text}"
        time.sleep(0.2)


def test_watch_in_tmux_follows_the_headless_demo_to_its_end(tmp_path: Path):
    tmux = Tmux(require_tmux(), f"netra-watch-{os.getpid()}")
    demo_out, demo_rc, watch_rc = tmp_path / "demo.out", tmp_path / "demo.rc", tmp_path / "watch.rc"
    env_path = os.environ.get("PATH", "")
    common = ["-x", "120", "-y", "40", "-e", f"PATH={env_path}", "-e", "TERM=xterm-256color"]
    demo = (
        f"unset COLUMNS LINES; cd {tmp_path} && TMPDIR={tmp_path} {PYTHON} -m supervisor.cli "
        f"demo --headless > {demo_out} 2>&1; echo $? > {demo_rc}; sleep 600"
    )
    samples: list[tuple[str, int]] = []  # (the ▶ phase row's name, its done count)
    try:
        tmux("new-session", "-d", "-s", "demo", *common, demo)
        db = wait_for_file(demo_out, r"demo history: (\S+)").group(1)
        watch = (
            f"unset COLUMNS LINES; cd {tmp_path} && {PYTHON} -m supervisor.cli watch "
            f"--db {db} --no-mouse; echo $? > {watch_rc}; sleep 600"
        )
        tmux("new-session", "-d", "-s", "netra", *common, watch)
        end = time.monotonic() + 240
        while True:
            screen = tmux.screen()
            if "FINISHED" in screen:
                break
            assert time.monotonic() < end, screen
            done = progress(screen)
            row = next((line for line in screen.splitlines() if "▶" in line), "")
            if done is not None:
                samples.append((row.split("▶")[1].split()[0], done))
            time.sleep(0.15)
        final = tmux.wait_for(lambda s: "FINISHED · exit 0" in s and "P4 payloads" in s, 30)
        assert "passing / target" in final and "P1 critical" in final
        assert "q Quit" in final and "Pause" not in final and "Kill" not in final
        tmux("send-keys", "-t", "netra", "q")
        wait_for_file(watch_rc, r"\d")
        wait_for_file(demo_rc, r"\d", timeout=120)
    finally:
        subprocess.run([*tmux.base, "kill-server"], capture_output=True, timeout=30)
    assert watch_rc.read_text().strip() == "0"
    assert demo_rc.read_text().strip() == "0", demo_out.read_text()  # the run converged
    # the phases and a count that grew while the run went
    grew = [a[0] == b[0] and b[1] > a[1] for a, b in zip(samples, samples[1:])]
    assert any(grew), samples
