"""A supervisor killed outright (SIGKILL) leaves nothing running (issue 12).

Twenty real ``netra-supervisor run --headless`` processes are SIGKILLed at random
moments (while starting, while the early pytest collects, while the ``local`` deploy
backend's server starts, while tests run, while pytest restarts after a hang). Every
test appends the time it finished to a file. After each kill, no test may finish more
than 1 s later, and no process of the run may be alive 2 s later: not pytest, not a
standby, not what tests started (in pytest's group or escaped from it), not the deploy
backend's server. Every process of a run carries a unique mark in its environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cli_helpers import CLI, write
from process_helpers import describe, marked_processes, wait_until_none

from supervisor.runners.pytest.early import STARTER

MARK = "NETRA_KILL_MARK"
KILLS = 20
SEED = 20261130

TESTS = """
import os, subprocess, sys, time
import pytest

FINISHED = os.environ["KILL_FINISHED"]


def finished():
    with open(FINISHED, "a") as fh:
        fh.write(f"{time.time()!r}\\n")


@pytest.mark.parametrize("n", range(400))
def test_many(n):
    if n % 40 == 0:  # some leave a child behind, outside pytest's process group
        subprocess.Popen(["sleep", "600"], start_new_session=True)
    time.sleep(0.01)
    finished()


@pytest.mark.timeout(1)
def test_hangs():  # a restart (on a standby) in the middle of the run
    time.sleep(600)


@pytest.mark.parametrize("n", range(100))
def test_more(n):
    time.sleep(0.01)
    finished()
"""

SERVER = "import time\ntime.sleep(600)\n"


def project(folder: Path, deploy: bool) -> tuple[Path, str]:
    mark = uuid.uuid4().hex
    write(folder / "tests" / "test_many.py", TESTS)
    write(folder / "server.py", SERVER)
    deploy_table = '[deploy]\nbackend = "local"\ncommand = ["python3", "server.py"]\n'
    write(
        folder / "netra-supervisor.toml",
        f"""
        [run]
        env = {{ {MARK} = "{mark}", KILL_FINISHED = "{folder / "finished.txt"}" }}
        until = "once"

        [watchdog]
        grace = "0.5s"

        [[suite]]
        name = "many"
        args = ["-q", "-p", "no:cacheprovider", "tests"]
        """
        + (deploy_table if deploy else ""),
    )
    logs = folder / ".netra" / "logs"
    logs.mkdir(parents=True)
    if not deploy:  # a later run of the project: its first pytest starts early
        write(logs / "early-starts.json", json.dumps({"pytest": STARTER}))
    return folder, mark


def kill_once(folder: Path, deploy: bool, delay: float, mid_tests: bool) -> str:
    """Start a run, SIGKILL its supervisor after ``delay`` (counted from its first
    finished test when ``mid_tests``, so a loaded machine still kills some runs while
    tests run); what went wrong, or ""."""
    folder, mark = project(folder, deploy)
    env = {**os.environ, "NETRA_STRICT_PLUGINS": ""}
    with open(folder / "out.txt", "wb") as out:
        proc = subprocess.Popen(
            CLI + ["run", "--headless"], cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT
        )
        if mid_tests:
            give_up = time.monotonic() + 60
            while not (folder / "finished.txt").exists() and time.monotonic() < give_up:
                if proc.poll() is not None:
                    break
                time.sleep(0.02)
        time.sleep(delay)
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    left = wait_until_none(MARK, mark, within=2.0 - (time.time() - killed_at))
    problems = []
    if left:
        problems.append(f"alive 2 s after the kill: {describe(left)}")
        for p in left:  # do not leave them to the next case
            with contextlib.suppress(Exception):
                p.kill()
    finished_file = folder / "finished.txt"
    times = [float(t) for t in finished_file.read_text().split()] if finished_file.exists() else []
    late = [t - killed_at for t in times if t > killed_at + 1.0]
    if late:
        problems.append(f"{len(late)} test(s) finished up to {max(late):.2f}s after the kill")
    return "; ".join(problems)


def test_twenty_sigkills_leave_nothing_running(tmp_path):
    rng = random.Random(SEED)

    def delay(i: int) -> float:
        if i % 4 >= 2:  # a little after the run's first test ended
            return rng.uniform(0.0, 0.6)
        if i % 8 == 5:  # surely before any test ends: the early pytest still imports
            return rng.uniform(0.0, 0.15)
        return rng.uniform(0.05, 3.5)  # during start-up, a deploy or tests

    # every other run is killed at a random moment counted from its start, the others
    # a little after their first test ended
    cases = [(tmp_path / f"run{i}", i % 2 == 0, delay(i), i % 4 >= 2) for i in range(KILLS)]
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(lambda case: kill_once(*case), cases))
    failures = [
        f"run{i} (deploy={deploy}, killed {delay:.2f}s after {'a test' if mid else 'start'}): {problem}"
        for i, ((_, deploy, delay, mid), problem) in enumerate(zip(cases, outcomes))
        if problem
    ]
    assert not failures, "\n".join(failures)
    # the kills did land at different moments of a run: some while tests were running
    started = sum(1 for folder, _, _, _ in cases if (folder / "finished.txt").exists())
    assert 3 <= started < KILLS, f"{started} of {KILLS} runs had started tests when killed"


def test_the_mark_finds_processes(tmp_path):
    """The check above would pass vacuously if the mark found nothing: it does find."""
    mark = uuid.uuid4().hex
    proc = subprocess.Popen(["sleep", "30"], env={**os.environ, MARK: mark})
    try:
        assert [p.pid for p in marked_processes(MARK, mark)] == [proc.pid]
    finally:
        proc.kill()
        proc.wait()
