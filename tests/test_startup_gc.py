"""The collector is off only while ``run`` starts in its own process (startup_gc)."""

from __future__ import annotations

import gc
import subprocess
import sys

from supervisor import startup_gc


def test_pause_and_resume_freeze_what_start_up_made_and_turn_it_back_on():
    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        startup_gc.pause()
        assert not gc.isenabled()
        made = [[] for _ in range(1000)]  # start-up's objects
        startup_gc.resume()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(made)
        startup_gc.resume()  # a second resume changes nothing
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


def test_resume_leaves_a_collector_someone_else_turned_off_alone():
    gc.disable()
    try:
        startup_gc.pause()  # already off: not ours to turn on again
        startup_gc.resume()
        assert not gc.isenabled()
    finally:
        gc.enable()


PROBE = """
import gc, sys
from supervisor import cli, session, startup_gc
seen, resumed = [], []
real, real_resume = session.Loop.run, startup_gc.resume
def run(self):
    seen.append(gc.isenabled())
    return real(self)
def resume(freeze=True):
    resumed.append(gc.isenabled())  # off: the start-up ran without it
    real_resume(freeze)
session.Loop.run = run
startup_gc.resume = resume
sys.argv = ["netra-supervisor", *sys.argv[1:]]
try:
    cli.main()
except SystemExit:
    pass
print("off", resumed[:1], "loop", seen, "after", gc.isenabled(), "frozen", gc.get_freeze_count() > 0)
"""


def test_the_run_command_runs_its_loop_with_the_collector_on(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_a.py").write_text("def test_a(): pass\n")
    (tmp_path / "netra-supervisor.toml").write_text(
        '[run]\nuntil = "once"\n\n[[suite]]\nname = "s"\nargs = ["tests", "-p", "no:cacheprovider"]\n'
    )
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "run", "--headless"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "off [False] loop [True] after True frozen True" in out.stdout, out.stdout + out.stderr


def test_a_run_that_ends_before_its_loop_turns_the_collector_back_on(tmp_path):
    (tmp_path / "netra-supervisor.toml").write_text("[run]\nuntil = 3\n")  # a bad value
    out = subprocess.run(
        [sys.executable, "-c", PROBE, "run", "--headless"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "off [False] loop [] after True frozen False" in out.stdout, out.stdout + out.stderr
