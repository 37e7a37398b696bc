"""Built-in deploy backends: ``command`` (run the team's deploy script) and ``local``
(keep a local process running as the deployed backend).

``[deploy] command`` runs with ``cwd``, ``env`` and ``timeout``; each output line goes
to the run log as it arrives; a line ``revision: X`` names the deployed revision (else
the git HEAD of the config folder). A non-zero exit or a timeout is a failed deploy:
the loop records the iteration as ``deploy-failed`` and runs no tests against it.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pluggy

from supervisor import procs
from supervisor.config import Config
from supervisor.core.between import git_head
from supervisor.core.kinds import DeployBackend, DeployOutcome, Key

hookimpl = pluggy.HookimplMarker("netra_supervisor")

#: the run tag of every process a deploy starts (the guard ends them if we die)
DEPLOY_TAG = partial(procs.tag, "deploy")
_REVISION_LINE = re.compile(r"^\s*revision:\s*(\S+)\s*$", re.IGNORECASE)
_TAIL_LINES = 5

#: the [deploy] keys both backends own (the host checks and converts them)
_KEYS: dict[str, Key] = {
    "command": Key("strlist", required=True, example='command = ["./scripts/deploy.sh"]'),
    "cwd": Key("str", default="."),
    "env": Key("strmap", default={}),
}


@dataclass(frozen=True)
class _Keys:
    """A backend's ``[deploy]`` keys, as the host parsed them from ``config.deploy.options``."""

    command: tuple[str, ...]
    cwd: str
    env: Mapping[str, str]
    timeout: float = 0.0  # command only

    @classmethod
    def of(cls, config: Config) -> _Keys:
        return cls(**config.deploy.options)


class CommandBackend(DeployBackend):
    """Runs ``[deploy] command`` as a subprocess in its own process group."""

    name = "command"
    keys = {**_KEYS, "timeout": Key("duration", default="10m")}  # then it is killed

    def deploy(self, config: Config, iteration: int, log: Callable[[str], None]) -> DeployOutcome:
        deploy = _Keys.of(config)
        cwd = config.resolve(deploy.cwd)
        env = {**os.environ, **config.run.env, **deploy.env, "NETRA_ITERATION": str(iteration)}
        try:
            proc = procs.popen(
                deploy.command,
                env=env,
                scope_tag=DEPLOY_TAG(),
                cwd=cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
            )
        except OSError as exc:
            return DeployOutcome(False, None, f"cannot start {deploy.command[0]!r}: {exc.strerror}")
        revision: str | None = None
        tail: list[str] = []

        def read() -> None:
            nonlocal revision
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                log(line)
                tail.append(line)
                del tail[:-_TAIL_LINES]
                match = _REVISION_LINE.match(line)
                if match:
                    revision = match.group(1)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            code = proc.wait(timeout=deploy.timeout)
        except subprocess.TimeoutExpired:
            procs.end_group(proc)
            reader.join(2)
            return DeployOutcome(False, revision, f"deploy timed out after {deploy.timeout:g}s")
        reader.join(5)
        if code != 0:
            last = next((t for t in reversed(tail) if t.strip()), "")
            detail = f": {last.strip()}" if last else ""
            return DeployOutcome(False, revision, f"deploy exited with code {code}{detail}")
        return DeployOutcome(True, revision or git_head(config.base_dir), "")


class LocalBackend(DeployBackend):
    """Runs ``[deploy] command`` as a long-lived local process: "the deployed backend".

    Each deploy stops the previous process group and starts a fresh one; its output
    goes to ``deploy-local.log`` beside the history database (the run's evidence
    source unless ``[deploy] logs`` names others); the run's end (also
    Ctrl-C or a crash of the loop) stops it. Pair it with ``health_url`` so tests wait
    until it listens.
    """

    name = "local"
    keys = _KEYS

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def logs(self, config: Config) -> list[str]:
        """Its own log (the server's output): evidence unless ``[deploy] logs`` says."""
        return [str(self._log_path(config))]

    @staticmethod
    def _log_path(config: Config) -> Path:
        return config.resolve(config.run.db).parent / "deploy-local.log"

    def deploy(self, config: Config, iteration: int, log: Callable[[str], None]) -> DeployOutcome:
        deploy = _Keys.of(config)
        self.stop()
        log_path = self._log_path(config)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **config.run.env, **deploy.env, "NETRA_ITERATION": str(iteration)}
        with open(log_path, "ab") as out:
            out.write(f"--- iteration {iteration}: {' '.join(deploy.command)}\n".encode())
            out.flush()
            try:
                proc = procs.popen(
                    deploy.command,
                    env=env,
                    scope_tag=DEPLOY_TAG(),
                    cwd=config.resolve(deploy.cwd),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            except OSError as exc:
                return DeployOutcome(
                    False, None, f"cannot start {deploy.command[0]!r}: {exc.strerror}"
                )
        with self._lock:
            self._proc = proc
        time.sleep(0.2)  # a process that dies at once (bad flag, port taken) is a failed deploy
        if proc.poll() is not None:
            return DeployOutcome(
                False, None, f"exited at once with code {proc.returncode}; see {log_path}"
            )
        log(f"started pid {proc.pid}; output in {log_path}")
        return DeployOutcome(True, git_head(config.base_dir), "")

    def stop(self) -> None:
        """End the server's process group and whatever it started (it carries the
        deploy's run tag, so what left the group is found too)."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            procs.end_group(proc)
            procs.sweep(DEPLOY_TAG())


@hookimpl
def netra_register_deploy_backends() -> list[DeployBackend]:
    return [CommandBackend(), LocalBackend()]
