"""Start a run's first pytest while the supervisor itself is still starting.

Before its first test, a run pays for the supervisor's start-up (imports, plugins, the
history database: about 0.13 s) and then for pytest's (its imports, the suite's
collection). The two need not wait for each other when nothing that happens before the
first suite can change what pytest sees: no deploy, no ``[auth]`` token, not a
``--resume``, no plugin hook that runs before the first test, no secret to mask in
pytest's output. Then ``netra-supervisor run`` starts that pytest right after reading
the config, before importing the rest of itself, as a *standby* (see the runner): it
imports and collects, then waits for ``go``. Its output goes to a file in the folder of
the runs' logs, which it does not create: the first run in a project does without.

The runner adopts it when the suite starts, and only if its command line, working
directory and environment are exactly those it would use then, and its output needs no
masking. Anything else and it is killed and a fresh pytest started: a wrong guess costs
CPU, never a wrong result. ``NETRA_NO_PRESTART=1`` turns this off.

One per process, kept at module level because it is started before the plugins that
hold the suite kinds are loaded.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from supervisor.config import Config, SuiteConfig, load_config, select_phases
from supervisor.redact import secrets_from_environment
from supervisor.runners.pytest import protocol
from supervisor.runners.pytest.launch import child_env, kill_group, pytest_command, resolve_python

OFF_ENV = "NETRA_NO_PRESTART"


@dataclass
class Prestarted:
    """A pytest started ahead of its suite, waiting after collection for ``go``."""

    suite: str
    command: list[str]
    cwd: str
    env: dict[str, str]  # as started, without the socket variables
    proc: subprocess.Popen
    listener: socket.socket  # the child connects here; the runner accepts and says go
    log_path: str  # next to the run's log folder, so the runner can rename it in

    def kill(self) -> None:
        """End the process group (a standby: nothing ran), as the runner ends its own."""
        kill_group(self.proc, grace=0.5)
        self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log_path)


_waiting: Prestarted | None = None
_tmpdirs: list[str] = []  # the sockets' folders, removed by finish()


def comparable_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment without what differs by design between a standby and a start."""
    out = dict(env)
    out.pop(protocol.SOCKET_ENV, None)
    out.pop(protocol.STANDBY_ENV, None)
    return out


def first_suite(config: Config, phase_names: Sequence[str]) -> SuiteConfig | None:
    """The suite a run of ``config`` starts with, as far as the config file tells."""
    phases = select_phases(config, phase_names)
    if not phases:
        return None
    # only the first selector: with a tag, a suite a plugin registers may come first,
    # and then the runner simply does not adopt this one
    chosen = config.select_suites(phases[0].suites[:1])
    return chosen[0] if chosen else None


def start_for_run(
    config_path: str | None, phase_names: Sequence[str], resume: bool, db: str | None
) -> bool:
    """Start the first suite's pytest now, when nothing before it can change what it sees.

    Never raises: any problem only means no prestart (the run reports it properly).
    """
    global _waiting
    if os.environ.get(OFF_ENV) == "1" or resume or _waiting is not None:
        return False
    try:
        config = load_config(config_path)
        suite = first_suite(config, phase_names)
        if config.deploy.backend != "none" or config.auth is not None:
            return False
        if secrets_from_environment(os.environ) or any(s.kind == "webhook" for s in config.sinks):
            return False  # pytest's output will be masked: it goes through the runner's copier
        if suite is None or suite.kind != "pytest" or suite.workers > 1:
            return False
        log_folder = (Path(db) if db else config.resolve(config.run.db)).parent / "logs"
        _waiting = _start(config, suite, log_folder)
    except Exception:  # ConfigError, OSError, a bad TOML byte: the run itself will say
        return False
    return _waiting is not None


def _start(config: Config, suite: SuiteConfig, log_folder: Path) -> Prestarted | None:
    python = resolve_python(suite.python, config.base_dir)
    cwd = str(config.resolve(suite.cwd))
    if python is None or not Path(cwd).is_dir():
        return None
    if not log_folder.is_dir():
        return None  # a project's first run: a run that then fails leaves no folders
    tmpdir = tempfile.mkdtemp(prefix="netra-pre-", dir="/tmp")  # AF_UNIX paths are short
    _tmpdirs.append(tmpdir)
    path = os.path.join(tmpdir, "prestart.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    log_path = str(log_folder / f"prestart-{os.getpid()}.log")
    try:
        listener.bind(path)
        listener.listen(4)
        listener.setblocking(False)
        command = pytest_command(suite, python)
        env = child_env({**config.run.env, **suite.env}, path)
        env[protocol.STANDBY_ENV] = "1"
        with open(log_path, "wb") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                command,
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
    except OSError:
        listener.close()
        with contextlib.suppress(OSError):
            os.unlink(log_path)
        raise
    return Prestarted(suite.name, command, cwd, comparable_env(env), proc, listener, log_path)


def pending() -> bool:
    """A prestarted pytest is waiting to be taken."""
    return _waiting is not None


def take(suite: str, command: list[str], cwd: str, env: Mapping[str, str]) -> Prestarted | None:
    """The prestarted pytest, if it is exactly the one asked for; the first call (from
    whichever suite runs first) ends any other."""
    global _waiting
    waiting, _waiting = _waiting, None
    if waiting is None:
        return None
    if (
        waiting.suite == suite
        and waiting.command == command
        and waiting.cwd == cwd
        and waiting.env == comparable_env(env)
        and waiting.proc.poll() is None
    ):
        return waiting
    waiting.kill()
    return None


def discard() -> None:
    """Kill a prestarted pytest nobody took (the run ended, or changed what it needs)."""
    global _waiting
    waiting, _waiting = _waiting, None
    if waiting is not None:
        waiting.kill()


def finish() -> None:
    """At the end of the run: discard what was not taken, remove the sockets' folders."""
    discard()
    while _tmpdirs:
        shutil.rmtree(_tmpdirs.pop(), ignore_errors=True)
