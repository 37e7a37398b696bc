"""pytest's output on its way to the log file, and a standby pytest left without a parent.

Real pipes, real files and a real pytest subprocess; no mocks.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from supervisor.redact import Redactor
from supervisor.runners.pytest import protocol
from supervisor.runners.pytest.launch import CHILD_PATH
from supervisor.runners.pytest.output import OutputCopier as _OutputCopier

SECRET = "s3cr3t-token-value-0123456789"


def _copier(tmp_path: Path) -> tuple[int, _OutputCopier, Path]:
    read_end, write_end = os.pipe()
    log = tmp_path / "pytest.log"
    copier = _OutputCopier(os.fdopen(read_end, "rb"), str(log), Redactor([SECRET]))
    return write_end, copier, log


def test_a_secret_split_between_two_reads_is_still_masked(tmp_path: Path) -> None:
    write_end, copier, log = _copier(tmp_path)
    half = len(SECRET) // 2
    os.write(write_end, f"token is {SECRET[:half]}".encode())
    time.sleep(_OutputCopier.PAUSE * 5)  # the copier reads the first half on its own
    assert SECRET[:half] not in log.read_text(encoding="utf-8")  # held back, not written
    os.write(write_end, f"{SECRET[half:]} ok\n".encode())
    os.close(write_end)
    copier.wait(5.0)
    assert log.read_text(encoding="utf-8") == "token is *** ok\n"


def test_an_unfinished_last_line_is_masked_at_the_end(tmp_path: Path) -> None:
    write_end, copier, log = _copier(tmp_path)
    os.write(write_end, f"line one\nlast words {SECRET}".encode())  # no newline: pytest died
    os.close(write_end)
    copier.wait(5.0)
    assert not copier.thread.is_alive()
    assert log.read_text(encoding="utf-8") == "line one\nlast words ***"


@pytest.mark.parametrize("standby", [True, False], ids=["standby", "plain"])
def test_a_pytest_whose_supervisor_is_gone_runs_no_test(tmp_path: Path, standby: bool) -> None:
    """A pytest that cannot reach its supervisor exits instead of running the suite
    unwatched (the supervisor was killed between starting it and its connect)."""
    marker = tmp_path / "ran.txt"
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (tmp_path / "test_one.py").write_text(
        "from pathlib import Path\n\n\ndef test_writes():\n"
        f"    Path({str(marker)!r}).write_text('ran')\n",
        encoding="utf-8",
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = str(CHILD_PATH)
    env[protocol.SOCKET_ENV] = str(tmp_path / "nobody-listens.sock")
    command = [sys.executable, "-m", "pytest", "-p", protocol.PLUGIN_MODULE, "-q"]
    if standby:
        env[protocol.STANDBY_ENV] = "1"
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 4, run.stdout + run.stderr
    assert "cannot reach the supervisor" in run.stderr
    assert not marker.exists()
    # without our socket variable the plugin stays quiet and pytest runs as usual
    del env[protocol.SOCKET_ENV]
    plain = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=60)
    assert plain.returncode == 0, plain.stdout
    assert marker.read_text() == "ran"
