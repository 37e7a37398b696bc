"""Nothing a test starts outlives the run (issue 12, "reap everything").

Real ``netra-supervisor run --headless`` processes on a project whose tests start
processes that leave pytest's process group: a child in a session of its own, a
classic double-forked daemon, 200 children at once, and a hung test's escaped child
(ended with the test's kill, before the next test runs). Every process of the run
carries a unique mark in its environment (``[run] env``); none may be alive once the
CLI has exited.
"""

from __future__ import annotations

import uuid

import pytest
from cli_helpers import query, run_cli, write
from process_helpers import describe, marked_processes

MARK = "NETRA_ESCAPE_MARK"

TESTS = """
import os, subprocess, sys, time
from pathlib import Path

PIDS = Path(os.environ["ESCAPE_PIDS"])


def note(kind, pid):
    with PIDS.open("a") as fh:
        fh.write(f"{kind} {pid}\\n")


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in "ZX"
    except OSError:
        return False


def test_setsid_child():
    child = subprocess.Popen(["sleep", "600"], start_new_session=True)
    note("setsid", child.pid)


def test_double_forked_daemon():
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        os.setsid()
        if os.fork() == 0:  # the daemon: no parent, no group, no terminal
            os.write(write_end, str(os.getpid()).encode())
            os.closerange(0, 3)
            time.sleep(600)
        os._exit(0)
    os.waitpid(first, 0)
    os.close(write_end)
    note("daemon", int(os.read(read_end, 32)))


def test_two_hundred_children():
    children = [subprocess.Popen(["sleep", "600"]) for _ in range(200)]
    note("many", children[-1].pid)


def test_hangs_with_an_escaped_child():
    child = subprocess.Popen(["sleep", "600"], start_new_session=True)
    note("hung", child.pid)
    time.sleep(600)


def test_after_the_hang_its_child_is_gone():
    hung = [int(line.split()[1]) for line in PIDS.read_text().splitlines() if line.startswith("hung ")]
    assert hung and not alive(hung[-1])
"""


@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "xdist"])
def test_nothing_a_test_starts_outlives_the_run(tmp_path, workers):
    mark = uuid.uuid4().hex
    # one file, one worker, in order: the test after the hang runs after its kill
    dist = ', "--dist", "loadfile"' if workers > 1 else ""
    write(tmp_path / "tests" / "test_escape.py", TESTS)
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [run]
        env = {{ {MARK} = "{mark}", ESCAPE_PIDS = "{tmp_path / "pids.txt"}" }}

        [watchdog]
        test_timeout = "3s"
        grace = "1s"

        [[suite]]
        name = "escape"
        args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests"{dist}]
        workers = {workers}
        """,
    )
    run = run_cli(["run", "--headless", "--once"], tmp_path, timeout=180)
    assert run.returncode == 1, run.stdout + run.stderr  # one test hangs
    outcomes = dict(
        query(
            tmp_path / ".netra" / "history.db",
            "SELECT t.nodeid, r.outcome FROM results r JOIN tests t ON t.id = r.test_id",
        )
    )
    prefix = "tests/test_escape.py::"
    assert outcomes == {
        prefix + "test_setsid_child": "passed",
        prefix + "test_double_forked_daemon": "passed",
        prefix + "test_two_hundred_children": "passed",
        prefix + "test_hangs_with_an_escaped_child": "hung",
        prefix + "test_after_the_hang_its_child_is_gone": "passed",
    }
    noted = {line.split()[0] for line in (tmp_path / "pids.txt").read_text().splitlines()}
    assert noted == {"setsid", "daemon", "many", "hung"}
    left = marked_processes(MARK, mark)
    assert not left, describe(left)
