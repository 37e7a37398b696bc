"""Suites on remote xdist workers (issue 16), over a real sshd on a loopback port.

The "remote" folder is a separate copy of the tests (``chdir=``); the remote
interpreter has nothing of ours installed. What a local run guarantees must hold:
the same outcomes test for test, a hung test dumped and killed with what it started
and the rest run, a crash recorded, and no process left on the remote side after the
supervisor is SIGKILLed. Also over a ``popen`` gateway with another venv's python.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
import sshd_server
from cli_helpers import CLI, query, run_cli, write

TESTS = """
import asyncio, os, subprocess, time
import pytest

@pytest.mark.parametrize("i", range(5))
def test_ok(i):
    pass

def test_fails():
    assert 1 == 2

def test_env():
    assert os.environ.get("APP_ENV") == "staging"

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass
"""

HANGS = """
import asyncio, os, subprocess, sys, time
import pytest

def test_hangs():  # the suite's test_timeout: 2s
    subprocess.Popen(["sleep", "{mark}"])  # its process tree goes with it
    async def waits_for_a_reply_that_never_comes():
        await asyncio.Event().wait()
    asyncio.run(waits_for_a_reply_that_never_comes())

def test_crashes():
    os._exit(9)

@pytest.mark.parametrize("i", range(4))
def test_after(i):
    pass
"""

SLOW = """
import os, time
import pytest

@pytest.mark.parametrize("i", range(50))
def test_slow(i):
    open(os.environ["STARTED"], "a").write("x")  # the suite's env reaches remote workers
    time.sleep(30)
"""


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    sshd_server.require_sshd()
    server = sshd_server.start(tmp_path_factory.mktemp("sshd"))
    yield server
    sshd_server.stop(server.proc)


def _project(
    tmp_path: Path, tests: str, hosts: list[str], workers: int = 0, more: str = ""
) -> Path:
    project = tmp_path / "project"
    write(project / "tests" / "test_remote.py", tests)
    remote = tmp_path / "remote"  # the remote chdir: its own copy of the tests
    shutil.copytree(project / "tests", remote / "tests")
    hosts_toml = ", ".join(f'"{h}"' for h in hosts)
    write(
        project / "netra-supervisor.toml",
        f"""
        [run]
        until = "once"
        env = {{ APP_ENV = "staging" }}
        [[suite]]
        name = "s"
        args = ["tests"]
        workers = {workers}
        hosts = [{hosts_toml}]
        {more}
        """,
    )
    return project


def _outcomes(project: Path) -> dict[str, str]:
    rows = query(
        project / ".netra" / "history.db",
        "select t.nodeid, r.outcome from results r join tests t on t.id = r.test_id",
    )
    return dict(rows)


def test_a_bad_host_spec_is_one_config_error(tmp_path):
    project = _project(tmp_path, TESTS, ["ssh=a//bogus=1"])
    proc = run_cli(["run", "--headless"], project)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "hosts" in lines[0] and "bogus" in lines[0], proc.stderr
    assert not (project / ".netra" / "history.db").exists()


def test_outcomes_over_ssh_equal_a_local_run(tmp_path, sshd):
    local = _project(tmp_path / "local", TESTS, [], workers=1)
    assert run_cli(["run", "--headless"], local).returncode == 1
    remote = _project(
        tmp_path / "ssh", TESTS, [sshd.spec(sys.executable, tmp_path / "ssh" / "remote", 2)]
    )
    listed = run_cli(["suites"], remote)
    assert listed.returncode == 0 and "hosts" in listed.stdout and "127.0.0.1" in listed.stdout
    proc = run_cli(["run", "--headless"], remote)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    expected = _outcomes(local)
    assert expected["tests/test_remote.py::test_env"] == "passed"  # the env went along
    assert _outcomes(remote) == expected
    workers = {w for (w,) in query(remote / ".netra" / "history.db", "select worker from results")}
    assert workers and all(w.endswith(f" on {sshd.user}@127.0.0.1") for w in workers), workers
    assert not sshd.sessions()


def test_a_hung_remote_test_is_dumped_killed_and_the_rest_runs(tmp_path, sshd):
    mark = f"600.{uuid.uuid4().int % 10**6}"
    project = _project(
        tmp_path,
        HANGS.format(mark=mark),
        [sshd.spec(sys.executable, tmp_path / "remote", 2)],
        more='test_timeout = "2s"',
    )
    proc = run_cli(["run", "--headless"], project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    outcomes = _outcomes(project)
    assert outcomes.pop("tests/test_remote.py::test_hangs") == "hung"
    assert outcomes.pop("tests/test_remote.py::test_crashes") == "crashed"
    assert set(outcomes.values()) == {"passed"} and len(outcomes) == 4
    (dump, message) = query(
        project / ".netra" / "history.db",
        "select dump, message from results where outcome = 'hung'",
    )[0]
    assert "waits_for_a_reply_that_never_comes" in dump
    # its waiting line, read on the remote side: the await the test's task waits on
    assert (
        "at tests/test_remote.py:8 in waits_for_a_reply_that_never_comes:"
        " await asyncio.Event().wait()" in message
    ), message
    assert not [p for p in psutil.process_iter(["cmdline"]) if mark in (p.info["cmdline"] or [])]
    assert not sshd.sessions()


def test_sigkill_of_the_supervisor_leaves_nothing_on_the_remote_side(tmp_path, sshd):
    started = tmp_path / "started"
    project = _project(
        tmp_path,
        SLOW,
        [sshd.spec(sys.executable, tmp_path / "remote", 2)],
        more=f'env = {{ STARTED = "{started}" }}',
    )
    sup = subprocess.Popen(
        [*CLI, "run", "--headless"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_read(started)) < 2:
            time.sleep(0.1)
        assert len(_read(started)) >= 2, "the remote tests never started"
        assert sshd.sessions()
    finally:
        sup.send_signal(signal.SIGKILL)
        sup.wait()
    deadline = time.monotonic() + 10
    while sshd.sessions() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sshd.sessions()


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_a_popen_gateway_with_another_venvs_python(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = [p for p in sys.path if p.endswith("site-packages")]
    Path(site, "ours.pth").write_text("\n".join(ours) + "\n")  # pytest and xdist, not us
    project = _project(tmp_path, TESTS, [f"2*popen//python={python}//chdir={tmp_path / 'remote'}"])
    remote_tmp = tmp_path / "remote-tmp"  # where the remote workers make their folders
    remote_tmp.mkdir()
    for _ in range(2):  # the second run sends its failed-first list to the workers
        proc = run_cli(["run", "--headless"], project, env={"TMPDIR": str(remote_tmp)})
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert not [p.name for p in remote_tmp.iterdir() if p.name.startswith("netra-remote-")]
    outcomes = _outcomes(project)
    assert outcomes["tests/test_remote.py::test_fails"] == "failed"
    assert outcomes["tests/test_remote.py::test_env"] == "passed"
    assert sum(o == "passed" for o in outcomes.values()) == 6
    workers = {w for (w,) in query(project / ".netra" / "history.db", "select worker from results")}
    assert all(w.endswith(f" on popen {python}") for w in workers), workers
