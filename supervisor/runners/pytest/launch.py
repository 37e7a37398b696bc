"""How a supervised pytest is started (interpreter, command line, environment) and ended.

Shared by the runner and by :mod:`prestart` (which starts a run's first pytest before
the runner exists), so both build exactly the same process; a prestarted pytest is used
only when the two agree. Standard library only and cheap to import: the prestart
happens while the rest of the supervisor is still being imported.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.runners.pytest import protocol

if TYPE_CHECKING:
    from supervisor.config import SuiteConfig

#: the folder put on the child's PYTHONPATH: only the shim that loads child_plugin.py
CHILD_PATH = Path(__file__).resolve().with_name("childpath")
STOP_GRACE = 3.0  # seconds from SIGTERM to SIGKILL when stopping pytest


def resolve_python(python: str, base_dir: Path) -> str | None:
    """The interpreter to run: a path (relative to the config), a name on PATH, or ours."""
    if not python:
        return sys.executable
    if "/" in python or os.sep in python:
        path = Path(python).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        return str(path) if path.exists() else None
    return shutil.which(python)


def pytest_command(suite: SuiteConfig, python: str, collect_only: bool = False) -> list[str]:
    """pytest with our plugin and the suite's args (plus ``-n`` for ``workers``)."""
    args = list(suite.args)
    cmd = [python, "-m", "pytest", "-p", protocol.PLUGIN_MODULE]
    if collect_only:
        return [*cmd, *args, "--collect-only", "-q"]
    if "--continue-on-collection-errors" not in args:
        cmd.append("--continue-on-collection-errors")
    if suite.workers > 1 and not any(
        a in ("-n", "--numprocesses") or a.startswith(("-n=", "--numprocesses=")) for a in args
    ):
        cmd += ["-n", str(suite.workers)]
    return [*cmd, *args]


def child_env(extra: Mapping[str, str], socket_path: str) -> dict[str, str]:
    """Our environment, the suite's on top, and what the child plugin needs to report."""
    env = dict(os.environ)
    env.update(extra)
    for key in protocol.SCRUB_ENV:
        env.pop(key, None)
    previous = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(CHILD_PATH) + (os.pathsep + previous if previous else "")
    env[protocol.SOCKET_ENV] = socket_path
    env[protocol.HEARTBEAT_ENV] = "1"
    return env


def kill_group(proc: subprocess.Popen, grace: float = STOP_GRACE) -> None:
    """SIGTERM the whole process group of ``proc``, SIGKILL what is left after ``grace``."""
    pgid = proc.pid  # start_new_session=True: the child leads its own group
    try:
        os.killpg(pgid, signal.SIGTERM)
        os.killpg(pgid, signal.SIGCONT)  # a stopped process only sees SIGTERM once resumed
    except (ProcessLookupError, PermissionError):
        proc.poll()
        return
    end = time.monotonic() + grace
    while time.monotonic() < end:
        proc.poll()
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
