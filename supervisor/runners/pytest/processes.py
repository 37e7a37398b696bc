"""The pytest processes of one suite run: started, kept in standby, adopted, ended.

Every pytest is started through :func:`supervisor.procs.popen`, in its own session and
process group, carrying the run tag of its attempt, so that ending an attempt ends
what its tests started too, in the group or escaped from it. Its output goes to a log
file (through a masking copier when the run has secrets). A *standby* is a pytest
started ahead of need: it imports and collects, then waits to be told which tests to
run; the early start of a run (:mod:`early`) is adopted as the standby of attempt 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from supervisor import prestart, procs
from supervisor.runners.pytest import protocol
from supervisor.runners.pytest.channel import Channel
from supervisor.runners.pytest.early import Prestarted
from supervisor.runners.pytest.launch import attempt_tag, child_env, pytest_command
from supervisor.runners.pytest.output import OutputCopier

if TYPE_CHECKING:
    import psutil

    from supervisor.config import SuiteConfig
    from supervisor.core.kinds import RunContext


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "suite"


@dataclass
class Standby:
    """A pytest waiting after collection for ``go`` (the restart after a hang or crash
    costs a message instead of a start-up and collection: bench/hangs.py)."""

    proc: subprocess.Popen
    log_path: str
    listener: socket.socket
    ignored: tuple[str, ...]  # the files it was told to leave out when it started
    early: Prestarted | None = None  # the run's early start, adopted


class Processes:
    """Starts and ends the pytest processes of one suite run."""

    def __init__(self, suite: SuiteConfig, ctx: RunContext, collect_only: bool) -> None:
        self.suite = suite
        self.ctx = ctx
        self.collect_only = collect_only
        self.cwd = str(ctx.config.resolve(suite.cwd))
        self.python = ""
        self.tmpdir = tempfile.mkdtemp(prefix="netra-")
        if len(self.tmpdir) > 80:  # AF_UNIX paths are short
            os.rmdir(self.tmpdir)
            self.tmpdir = tempfile.mkdtemp(prefix="netra-", dir="/tmp")
        self.socket_path = os.path.join(self.tmpdir, "child.sock")
        self.standby: Standby | None = None
        self._copiers: dict[int, OutputCopier] = {}
        self._enders: list[threading.Thread] = []  # xdist workers being ended

    # -- what a pytest is started with ---------------------------------------------------
    def command(self) -> list[str]:
        return pytest_command(self.suite, self.python, self.collect_only)

    def scope(self, number: int | None = None) -> str:
        """The run tag of attempt ``number`` (``None``: every attempt of this suite run)."""
        if self.collect_only:
            return procs.tag("collect", self.suite.name)
        return attempt_tag(self.ctx.iteration, self.ctx.phase_seq, self.suite.name, number)

    def env(self, selection: list[str] | None, number: int, ignored: list[str]) -> dict[str, str]:
        env = child_env(self.ctx.env, self.socket_path, remote=bool(self.suite.hosts))
        if selection is not None:
            env[protocol.SELECT_ENV] = self._file(f"select-{number}.json", selection)
        if self.ctx.already_run and selection is None:
            env[protocol.SKIP_ENV] = self._file("skip.json", sorted(self.ctx.already_run))
        if ignored:
            env[protocol.IGNORE_ENV] = self._file(f"ignore-{number}.json", ignored)
        if self.ctx.run_first:
            env[protocol.FIRST_ENV] = self._file("first.json", list(self.ctx.run_first))
        return env

    def _file(self, name: str, data: object) -> str:
        path = os.path.join(self.tmpdir, name)
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        return path

    def log_path(self, number: int) -> str:
        """A new log file for attempt ``number`` (never one an earlier run wrote: a
        ``--resume`` continues the same run folder)."""
        name = f"{safe_name(self.suite.name)}-i{self.ctx.iteration}-p{self.ctx.phase_seq}"
        name += "-collect" if self.collect_only else f"-a{number}"
        if not self.ctx.log_dir:
            fd, path = tempfile.mkstemp(prefix=f"netra-{name}-", suffix=".log")
            os.close(fd)
            return path
        os.makedirs(self.ctx.log_dir, exist_ok=True)
        path = os.path.join(self.ctx.log_dir, name + ".log")
        again = 2
        while os.path.exists(path):
            path = os.path.join(self.ctx.log_dir, f"{name}.{again}.log")
            again += 1
        return path

    # -- starting ------------------------------------------------------------------------
    def spawn(self, env: dict[str, str], log_path: str, number: int) -> subprocess.Popen:
        """Start pytest (raises ``OSError`` when the interpreter cannot be run)."""
        cmd = self.command()
        redact = self.ctx.redact
        with open(log_path, "ab") as log:
            log.write(f"$ {' '.join(cmd)}\n".encode())
            log.flush()
            proc = procs.popen(
                cmd,
                env=env,
                scope_tag=self.scope(number),
                cwd=self.cwd,
                stdout=log if redact is None else subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        if redact is not None:
            assert proc.stdout is not None
            self._copiers[proc.pid] = OutputCopier(proc.stdout, log_path, redact)
        return proc

    def log_synced(self, pid: int, timeout: float) -> None:
        """Before reading a process's log: let its copier catch up (when masking)."""
        copier = self._copiers.get(pid)
        if copier is not None:
            copier.wait(timeout)

    def forget_output(self, pid: int) -> None:
        self._copiers.pop(pid, None)

    def start_standby(self, number: int, ignored: list[str]) -> None:
        """Start the pytest of a likely restart (attempt ``number``) ahead of need."""
        path = os.path.join(self.tmpdir, f"standby-{number}.sock")
        listener = Channel.listen(path)
        env = self.env(None, number, ignored)
        env[protocol.SOCKET_ENV] = path
        env[protocol.STANDBY_ENV] = "1"
        log_path = self.log_path(number)
        try:
            proc = self.spawn(env, log_path, number)
        except OSError:
            listener.close()
            return
        self.standby = Standby(proc, log_path, listener, tuple(ignored))

    def take_standby(self, ignored: list[str]) -> Standby | None:
        """The waiting standby, if it is alive and was told the same files to skip."""
        standby, self.standby = self.standby, None
        if standby is None:
            return None
        if standby.proc.poll() is None and standby.ignored == tuple(ignored):
            return standby
        self.discard(standby)
        return None

    def take_early(self) -> Standby | None:
        """The run's early pytest (see :mod:`supervisor.prestart`), when it is exactly
        the one attempt 1 would start."""
        if not prestart.pending():
            return None
        if self.collect_only or self.ctx.redact is not None or self.ctx.already_run:
            prestart.discard()  # its output went unmasked to a file / it runs every test
            return None
        early = prestart.take(self.suite.name, self.suite.kind)
        if not isinstance(early, Prestarted):
            return None
        env = procs.tagged_env(self.env(None, 1, []), self.scope(1))
        if not early.matches(self.command(), self.cwd, env):
            early.kill()
            return None
        log_path = self.log_path(1)
        try:
            os.replace(early.log_path, log_path)
        except OSError:
            early.kill()
            return None
        return Standby(early.proc, log_path, early.listener, (), early)

    def discard(self, standby: Standby) -> None:
        """End a standby nobody needs."""
        procs.end_group(standby.proc, grace=0.5)
        self.release(standby)
        if not self.ctx.log_dir:
            with contextlib.suppress(OSError):
                os.unlink(standby.log_path)

    @staticmethod
    def release(standby: Standby) -> None:
        """Its listener and socket folder (once it runs, it talks over its connection)."""
        standby.listener.close()
        if standby.early is not None:
            standby.early.forget_socket()

    # -- ending --------------------------------------------------------------------------
    def end_attempt(self, proc: subprocess.Popen, number: int, grace: float) -> None:
        """End attempt ``number``'s process group, and every process it started that
        carries its tag (escaped from the group or not). Waits for all of them."""
        procs.end_group(proc, grace=grace)
        self.join_enders()
        procs.sweep(self.scope(number))

    def end_worker(self, pid: int, main: int, number: int) -> None:
        """End one xdist worker, its descendants and what it forked that left the tree
        but holds its pipes (its controller would wait for their end), without waiting
        here: the other workers go on and are watched meanwhile."""
        members: list[psutil.Process] = procs.tree(pid)
        if members:
            live = procs.tree(main)
            inside = {p.pid for p in live} | {p.pid for p in members}
            escaped = [p for p in procs.tagged(self.scope(number)) if p.pid not in inside]
            peers = [p for p in live if p.pid not in (main, pid) and p not in members]
            members += procs.pipe_holders(pid, escaped, peers)
            ender = threading.Thread(
                target=procs.end, args=(members,), name="netra-end-worker", daemon=True
            )
            ender.start()
            self._enders.append(ender)

    def join_enders(self) -> None:
        for ender in self._enders:
            ender.join()
        self._enders.clear()

    def close(self) -> None:
        """At the end of the suite run: end the standby and every process of the suite."""
        if self.standby is not None:
            self.discard(self.standby)
            self.standby = None
        self.join_enders()
        procs.sweep(self.scope())
        shutil.rmtree(self.tmpdir, ignore_errors=True)
