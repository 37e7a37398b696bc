"""The pytest kind's early start: its first pytest, started before plugins load.

See :mod:`supervisor.prestart` for when. The pytest is started as a *standby* (it
imports and collects, then waits for ``go``), exactly as the runner would start
attempt 1 of the suite, and is adopted only if the command line, working directory
and environment the runner would use then are the same. Its output goes to a file in
the folder of the runs' logs; the runner renames it into the run's folder.

Standard library only (and cheap to import): it runs while the supervisor is still
importing the rest of itself.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from supervisor import procs
from supervisor.config import Config, SuiteConfig
from supervisor.prestart import Early
from supervisor.runners.pytest import protocol
from supervisor.runners.pytest.launch import (
    attempt_tag,
    child_env,
    pytest_command,
    resolve_python,
)

#: what ``PytestSuiteKind.early_start`` names
STARTER = "supervisor.runners.pytest.early:start"


@dataclass
class Prestarted:
    """A pytest started ahead of its suite, waiting after collection for ``go``."""

    command: list[str]
    cwd: str
    env: dict[str, str]  # as started, without the socket variables
    proc: subprocess.Popen
    listener: socket.socket  # the child connects here; the runner accepts and says go
    log_path: str  # next to the run's log folder, so the runner can rename it in
    tmpdir: str = field(default="")

    def matches(self, command: list[str], cwd: str, env: Mapping[str, str]) -> bool:
        return (
            self.command == command
            and self.cwd == cwd
            and self.env == comparable_env(env)
            and self.proc.poll() is None
        )

    def kill(self) -> None:
        """End it (a standby: nothing ran) and what it started, as the runner would."""
        procs.end_group(self.proc, grace=0.5)
        self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)
        self.forget_socket()

    def forget_socket(self) -> None:
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = ""


def comparable_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment without what differs by design between a standby and a start."""
    out = dict(env)
    for name in (protocol.SOCKET_ENV, protocol.STANDBY_ENV, protocol.FIRST_ENV):
        out.pop(name, None)  # the tests to run first ride in the "go" message
    return out


def start(config: Config, suite: SuiteConfig, log_folder: Path) -> Early | None:
    """Start the suite's first pytest as a standby (``None`` when it could not be the
    one the runner starts: xdist workers, a missing interpreter or folder)."""
    if suite.workers > 1 or suite.hosts:
        return None
    python = resolve_python(suite.python, config.base_dir)
    cwd = str(config.resolve(suite.cwd))
    if python is None or not Path(cwd).is_dir():
        return None
    tmpdir = tempfile.mkdtemp(prefix="netra-pre-", dir="/tmp")  # AF_UNIX paths are short
    path = os.path.join(tmpdir, "prestart.sock")
    log_path = str(log_folder / f"prestart-{os.getpid()}.log")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(4)
        listener.setblocking(False)
        command = pytest_command(suite, python)
        env = child_env({**config.run.env, **suite.env}, path)
        env[protocol.STANDBY_ENV] = "1"
        scope = attempt_tag(1, 1, suite.name, 1)
        with open(log_path, "wb") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            proc = procs.popen(
                command, env=env, scope_tag=scope, cwd=cwd, stdout=log, stderr=subprocess.STDOUT
            )
    except OSError:
        listener.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.unlink(log_path)
        raise
    env = procs.tagged_env(env, scope)
    early = Prestarted(command, cwd, comparable_env(env), proc, listener, log_path, tmpdir)
    return Early(suite.name, suite.kind, STARTER, early, early.kill)
