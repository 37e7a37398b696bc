"""The pytest suite kind, parent side.

``PytestSuiteKind.run`` starts ``python -m pytest`` in its own process group with our
child plugin (``-p _netra_child_plugin``, found through ``PYTHONPATH``), listens on a
Unix socket for the JSON lines every pytest process sends (see ``protocol.py``), and
turns them into events. It never parses pytest's terminal output for results; that
output goes to a log file, whose tail only explains a pytest that could not start or
died.

The select loop ticks every :data:`TICK` seconds; each tick checks ``ctx.stop`` and
the deadlines of the tests in flight. A test past its deadline (its own
``@pytest.mark.timeout``, else ``ctx.deadline_for(suite)``) or whose process went
silent (no heartbeat for ``[watchdog] silence_timeout``) is asked for a dump, given
``[watchdog] grace``, then recorded ``hung`` with the dump; the process group is killed
(SIGTERM, then SIGKILL) and pytest starts again on the tests that had not run. Under
xdist only the hung worker (and what it spawned) is killed: xdist replaces it and the
other workers go on. A process that dies in a test is recorded ``crashed`` and pytest
restarts the same way (under xdist, xdist replaces the worker itself and goes on). If
xdist gives up replacing workers (``--max-worker-restart``), pytest is restarted on the
tests that had not run, so none is dropped.

A process with no test running is timed too, against the larger of that deadline and
``[watchdog] test_timeout``: while it starts, while it collects (each file's import: a
file that hangs, or kills pytest, while being imported is an ``error`` for that file and
pytest restarts without it), between tests and after ``fin`` (a hang after the last
test, e.g. a non-daemon thread that never ends, is an ``error`` for
``SUITE::(session teardown)``). A hang before any file is known is a startup error.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from supervisor.core.events import (
    SuiteFinished,
    TestCrashed,
    TestHung,
    TestResult,
    TestsCollected,
    TestStarted,
    utc_now,
)
from supervisor.core.kinds import RunContext, SuiteKind
from supervisor.runners.pytest import prestart, protocol
from supervisor.runners.pytest.launch import (
    STOP_GRACE,
    child_env,
    kill_group,
    pytest_command,
    resolve_python,
)

if TYPE_CHECKING:
    from supervisor.config import Config, SuiteConfig
    from supervisor.core.events import Event

STANDBY_AT = 0.5  # a test past this share of its deadline: start a standby pytest
COALESCE = 0.02  # seconds the parent waits after a read, so reads come in batches
TICK = 0.2  # seconds between stop/deadline checks when nothing arrives
#: Bytes per socket read: 1 MiB cost an allocation and page faults on every read,
#: once per test (bench/overhead.py); 64 KiB holds hundreds of messages.
_RECV_BYTES = 65536
_RECV_ROUNDS = 16  # recv calls per wake-up and connection (up to 1 MiB)
DRAIN_TIMEOUT = 3.0  # after pytest exits, how long to wait for its workers' last lines
MAX_RESTARTS = 100
LOG_TAIL = 64 * 1024


class CollectError(RuntimeError):
    """``collect()`` could not get pytest to collect (the message says why)."""


# --------------------------------------------------------------------------- helpers


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _read_tail(path: str, size: int = LOG_TAIL) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _fatal_error(path: str) -> str:
    """The last faulthandler report in pytest's output (a segfault's stacks), or ""."""
    tail = _read_tail(path)
    start = tail.rfind("Fatal Python error: ")
    return tail[start:].strip() if start >= 0 else ""


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80] or "suite"


@dataclass
class _InFlight:
    """Something a process is doing under a deadline: a test, or a stretch between tests.

    ``what`` is ``test``; ``collect`` (importing the file ``nodeid`` at ``path``, or
    before the first file when ``nodeid`` is empty); ``idle`` (a process running tests
    by itself, between two tests or after the last); ``exit`` (after ``fin``).
    """

    nodeid: str
    t0: float
    started_at: str
    deadline: float
    hang_reason: str = ""
    hang_at: float = 0.0
    what: str = "test"
    path: str = ""
    shared_teardown: str = ""  # a test in a teardown that ends fixtures of this scope


@dataclass
class _Conn:
    sock: socket.socket
    buf: bytes = b""
    pid: int = 0
    worker: str = ""
    controller: bool = False
    session: bool = False
    finished: bool = False
    exitstatus: int | None = None
    current: _InFlight | None = None  # the test running
    other: _InFlight | None = None  # no test running: collecting, idle or exiting
    last_seen: float = field(default_factory=time.monotonic)
    dump: str | None = None

    def ask_dump(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b'{"cmd":"dump"}\n')

    def ask(self, cmd: str) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b'{"cmd":"%s"}\n' % cmd.encode())


@dataclass
class _Attempt:
    number: int
    proc: subprocess.Popen | None = None
    log_path: str = ""
    session: bool = False  # some process of this attempt reached pytest_sessionstart
    main_finished: bool = False  # the main process sent "fin"
    exitstatus: int | None = None
    returncode: int | None = None
    casualties: int = 0  # tests recorded crashed/hung in this attempt
    results: int = 0
    hung: bool = False  # the process group was killed for a hang
    worker_losses: int = 0  # xdist workers killed (hung) or dead (crashed) mid-test
    collect_hang: bool = False  # a file hung while being imported: restart without it
    spawned: float = 0.0  # monotonic time pytest was started
    hello: bool = False  # some process of this attempt connected
    stuck: tuple[str, str] | None = None  # (message, dump): hung before any file/test
    tail: str = ""  # the end of pytest's own output, read once it exited


def _maxfail(args: tuple[str, ...] | list[str]) -> int:
    """pytest's own stop-after-N-failures from the suite's args (-x is 1), else 0."""
    limit = 0
    for i, arg in enumerate(args):
        if arg in ("-x", "--exitfirst") or _short_flags_have_x(arg):
            limit = 1
        elif arg.startswith("--maxfail="):
            value = arg.split("=", 1)[1]
            limit = int(value) if value.isdigit() else limit
        elif arg == "--maxfail" and i + 1 < len(args) and str(args[i + 1]).isdigit():
            limit = int(args[i + 1])
    return limit


#: pytest's short options that take a value: in a group such as ``-vk expr`` the rest
#: of the group after one of them is its value, not more flags.
_SHORT_WITH_VALUE = frozenset("kmpcoWrnP")


def _short_flags_have_x(arg: str) -> bool:
    """Whether a group of short flags (``-xvs``) holds ``-x``."""
    if not arg.startswith("-") or arg.startswith("--") or len(arg) < 3:
        return False
    for letter in arg[1:]:
        if letter == "x":
            return True
        if letter in _SHORT_WITH_VALUE:
            return False
    return False


class _OutputCopier:
    """pytest's output → its log file, masked, so a token a test prints never reaches
    the disk (used when the run has secrets to mask).

    It reads what piled up, then pauses: pytest writes (and flushes) once per test, and
    waking a reader for every write cost ~90 ms per 2000 trivial tests on 2 cores.
    Whole lines are masked; an unfinished one waits for its end (or pytest's).
    """

    PAUSE = 0.02  # seconds after each read
    PIPE_SIZE = 1 << 20  # a larger pipe, so pytest rarely waits for us during the pause

    def __init__(self, pipe, path: str, redact: Callable[[str], str]) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux only; a hint
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, self.PIPE_SIZE)
        self.hurry = threading.Event()  # set by wait(): no more pauses, the end is near
        self.thread = threading.Thread(
            target=self._copy, args=(pipe, path, redact), name="netra-output", daemon=True
        )
        self.thread.start()

    def _copy(self, pipe, path: str, redact: Callable[[str], str]) -> None:
        fd = pipe.fileno()
        pending = b""  # an unfinished line: masked once it is whole (or at the end)
        with pipe, open(path, "ab") as out:
            while chunk := os.read(fd, 1 << 16):
                whole, newline, pending = (pending + chunk).rpartition(b"\n")
                if len(pending) > self.PIPE_SIZE:  # a line without end: do not hoard it
                    whole, newline, pending = whole + newline + pending, b"", b""
                if whole or newline:
                    out.write(self._masked(whole + newline, redact))
                    out.flush()  # a crash dump must be on disk when we read it
                self.hurry.wait(self.PAUSE)
            if pending:
                out.write(self._masked(pending, redact))

    @staticmethod
    def _masked(data: bytes, redact: Callable[[str], str]) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        return redact(text).encode("utf-8", "surrogateescape")

    def wait(self, timeout: float) -> None:
        """Until everything written so far is copied: the pipe's end (all writers gone)."""
        self.hurry.set()
        self.thread.join(timeout)


@dataclass
class _Standby:
    """A pytest started ahead of need: it imports and collects, then waits for ``go``.

    After a first hang or crash in a suite, the next restart is likely; a standby makes
    it cost a message instead of a pytest start-up and collection (bench/hangs.py).
    """

    proc: subprocess.Popen
    log_path: str
    listener: socket.socket
    ignored: tuple[str, ...]  # the files it was told to leave out when it started


# --------------------------------------------------------------------------- the kind


class PytestSuiteKind(SuiteKind):
    """``kind = "pytest"``: run pytest in a subprocess and stream its results."""

    name = "pytest"

    def validate(self, suite: SuiteConfig, config: Config) -> None:
        from supervisor.runners.pytest.suite_options import validate_suite

        validate_suite(suite, config)

    def run(self, suite: SuiteConfig, ctx: RunContext) -> None:
        _SuiteRun(suite, ctx).run()

    def collect(self, suite: SuiteConfig, config: Config, env: Mapping[str, str]) -> list[str]:
        """Run ``pytest --collect-only`` with our plugin; the nodeids come over the channel.

        Raises :class:`CollectError` when pytest cannot start (the message says why).
        """
        from supervisor.config import PhaseConfig

        events: list[Event] = []
        ctx = RunContext(
            config=config,
            phase=PhaseConfig(name="collect", suites=(suite.name,)),
            run_id=0,
            iteration=0,
            phase_seq=0,
            emit=events.append,
            env=dict(env),
        )
        runner = _SuiteRun(suite, ctx, collect_only=True)
        runner.run()
        if runner.startup_message is not None:
            raise CollectError(f"suite {suite.name}: {runner.startup_message}")
        return list(runner.order)


class _SuiteRun:
    """One ``run()`` of one suite: possibly several pytest processes (restarts)."""

    def __init__(self, suite: SuiteConfig, ctx: RunContext, collect_only: bool = False):
        self.suite = suite
        self.ctx = ctx
        self.collect_only = collect_only
        self.order: list[str] = []  # collected nodeids, first-seen order
        self.known: set[str] = set()
        # nodeids (and collectors) with a result; a resumed run starts with the recorded
        self.done: set[str] = set(ctx.already_run)
        self.casualties: set[str] = set()  # those recorded hung or crashed
        self.stopped = False
        self.killing = False
        self.startup_message: str | None = None
        self.tmpdir = ""
        self.listener: socket.socket | None = None
        self.conns: dict[int, _Conn] = {}
        self.selector: selectors.BaseSelector | None = None
        self.attempt: _Attempt | None = None
        self.pidfd: int | None = None
        self.cwd = ""
        self.socket_path = ""
        wd = ctx.config.watchdog
        self.silence = wd.silence_timeout
        self.grace = wd.grace
        self.default_deadline = ctx.deadline_for(suite)
        # importing one file, or the stretch between two tests / before exiting: not a
        # test, so not held to a (possibly tight) per-test deadline, but to the larger
        # of it and [watchdog] test_timeout
        self.session_deadline = max(self.default_deadline, wd.test_timeout)
        self.ignored: list[str] = []  # files that hung (or died) while being imported
        self.reaping: list[tuple[float, list[psutil.Process]]] = []  # (SIGKILL at, procs)
        self.standby: _Standby | None = None
        self.python = ""
        self.copiers: dict[int, _OutputCopier] = {}  # pid → its output copier (masking)
        self.maxfail = _maxfail(suite.args)  # -x / --maxfail=N: 0 when not given
        self.failing = 0  # failed, error, hung and crashed results so far
        self.go: list[str] | None = None  # the selection a standby is told with "go"
        self.paused = False  # what the child processes were last told (ctx.control)

    # -- events ----------------------------------------------------------------------
    def _result(self, nodeid: str, outcome: str, **fields) -> None:
        fields.setdefault("file", protocol.file_of(nodeid))
        self.ctx.report(
            TestResult,
            self.suite.name,
            nodeid=nodeid,
            outcome=outcome,
            **fields,
        )
        self.done.add(nodeid)
        if outcome in ("failed", "error", "crashed", "hung"):
            self.failing += 1
        if outcome in ("crashed", "hung"):
            self.casualties.add(nodeid)
        if self.attempt is not None:
            self.attempt.results += 1
            if outcome in ("crashed", "hung"):
                self.attempt.casualties += 1

    def _finished(self, status: str, message: str = "") -> None:
        if self.collect_only:
            return
        self.ctx.report(
            SuiteFinished,
            self.suite.name,
            status=status,
            message=message,
        )

    def _startup_error(self, message: str, conftest: str = "", dump: str = "") -> None:
        self.startup_message = message
        if self.collect_only:
            return
        where = conftest or self.suite.name
        cwd = self.cwd
        if conftest:
            with contextlib.suppress(ValueError):
                where = str(Path(conftest).resolve().relative_to(Path(cwd).resolve()))
        self._result(
            f"{where}::(startup)", "error", file=conftest and where, message=message, dump=dump
        )
        self._finished("error", message)

    # -- the run ---------------------------------------------------------------------
    def run(self) -> None:
        self.cwd = str(self.ctx.config.resolve(self.suite.cwd))
        python = resolve_python(self.suite.python, self.ctx.config.base_dir)
        if python is None:
            self._startup_error(f"interpreter not found: {self.suite.python}")
            return
        if not Path(self.cwd).is_dir():
            self._startup_error(f"working directory not found: {self.cwd}")
            return
        self.tmpdir = tempfile.mkdtemp(prefix="netra-")
        if len(self.tmpdir) > 80:  # AF_UNIX paths are short
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = tempfile.mkdtemp(prefix="netra-", dir="/tmp")
        try:
            self._listen()
            self._loop(python)
        finally:
            self._close_all()
            shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _loop(self, python: str) -> None:
        selection: list[str] | None = None
        number = 0
        while True:
            number += 1
            attempt = _Attempt(number)
            self.attempt = attempt
            try:
                self._run_attempt(attempt, python, selection)
            finally:
                if attempt.proc is not None and attempt.proc.poll() is None:
                    self.killing = True
                    kill_group(attempt.proc)
                if not self.ctx.log_dir and attempt.log_path:
                    with contextlib.suppress(OSError):
                        os.unlink(attempt.log_path)
            if self.stopped:
                self._finished("interrupted", "stopped by the user")
                return
            if self.startup_message is not None:
                return
            remaining = [n for n in self.order if n not in self.done]
            # cut short: pytest died or was killed, or xdist gave up replacing workers
            # (--max-worker-restart) and ended the session with tests still unrun
            cut_short = not attempt.main_finished or attempt.worker_losses
            if number <= MAX_RESTARTS and attempt.collect_hang:
                selection = remaining if self.order else None
                self.ctx.log(
                    "warning",
                    f"pytest:{self.suite.name}",
                    f"restarting pytest without {len(self.ignored)} file(s) that hung "
                    "or died while being collected",
                )
                continue
            if cut_short and remaining and self.maxfail and self.failing >= self.maxfail:
                self.ctx.log(
                    "warning",
                    f"pytest:{self.suite.name}",
                    f"not restarting pytest: {self.failing} failing, and the suite's args"
                    f" stop at {self.maxfail} (-x / --maxfail)",
                )
            elif cut_short and remaining and attempt.casualties and number <= MAX_RESTARTS:
                selection = remaining
                self.ctx.log(
                    "warning",
                    f"pytest:{self.suite.name}",
                    f"restarting pytest on the {len(remaining)} tests that had not run"
                    + (" (a standby pytest was ready)" if self.standby is not None else ""),
                )
                continue
            self._finished(*self._final_status(attempt, remaining))
            return

    def _final_status(self, attempt: _Attempt, remaining: list[str]) -> tuple[str, str]:
        rc = attempt.returncode
        parts = []
        status = "ok"
        if not attempt.main_finished:
            parts.append(protocol.describe_exit(rc))
            if not attempt.results:
                status = "error"
        elif rc == 5:
            parts.append("no tests collected")
        elif rc not in (0, 1):
            _, why = protocol.startup_failure(attempt.tail, rc)
            parts.append(f"{protocol.describe_exit(rc)}: {why}")
            if rc == 3 or not attempt.results:
                status = "error"
        if remaining:
            parts.append(f"{len(remaining)} collected tests did not run")
        if attempt.number > 1:
            parts.append(f"pytest was restarted {attempt.number - 1} time(s)")
        return status, "; ".join(parts)

    # -- one pytest process ----------------------------------------------------------
    def _listen(self) -> None:
        path = os.path.join(self.tmpdir, "child.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(64)
        listener.setblocking(False)
        self.listener = listener
        self.socket_path = path

    def _command(self, python: str) -> list[str]:
        return pytest_command(self.suite, python, self.collect_only)

    def _env(self, selection: list[str] | None, number: int) -> dict[str, str]:
        env = child_env(self.ctx.env, self.socket_path)
        if selection is not None:
            path = os.path.join(self.tmpdir, f"select-{number}.json")
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(selection, fh)
            env[protocol.SELECT_ENV] = path
        if self.ctx.already_run and selection is None:
            path = os.path.join(self.tmpdir, "skip.json")
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(sorted(self.ctx.already_run), fh)
            env[protocol.SKIP_ENV] = path
        if self.ignored:
            path = os.path.join(self.tmpdir, f"ignore-{number}.json")
            with open(path, "w", encoding="utf-8") as fh:
                json.dump(self.ignored, fh)
            env[protocol.IGNORE_ENV] = path
        return env

    def _log_path(self, number: int) -> str:
        name = f"{_safe(self.suite.name)}-i{self.ctx.iteration}-p{self.ctx.phase_seq}"
        name += "-collect" if self.collect_only else f"-a{number}"
        if self.ctx.log_dir:
            os.makedirs(self.ctx.log_dir, exist_ok=True)
            return os.path.join(self.ctx.log_dir, name + ".log")
        fd, path = tempfile.mkstemp(prefix=f"netra-{name}-", suffix=".log")
        os.close(fd)
        return path

    def _spawn(self, python: str, env: dict[str, str], log_path: str) -> subprocess.Popen | None:
        cmd = self._command(python)
        redact = self.ctx.redact
        try:
            with open(log_path, "ab") as log:
                log.write(f"$ {' '.join(cmd)}\n".encode())
                log.flush()
                proc = subprocess.Popen(
                    cmd,
                    cwd=self.cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log if redact is None else subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            self._startup_error(f"cannot start {python}: {exc.strerror or exc}")
            return None
        if redact is not None:
            self.copiers[proc.pid] = _OutputCopier(proc.stdout, log_path, redact)
        return proc

    def _log_synced(self, pid: int, timeout: float) -> None:
        """Before reading a process's log: let its copier catch up (when masking)."""
        copier = self.copiers.get(pid)
        if copier is not None:
            copier.wait(timeout)

    def _take_standby(self) -> _Standby | None:
        """The waiting standby, if it is still alive and was told the same files to skip."""
        standby, self.standby = self.standby, None
        if standby is None:
            return None
        if standby.proc.poll() is None and standby.ignored == tuple(self.ignored):
            return standby
        self._discard(standby)
        return None

    def _take_prestarted(self, python: str) -> _Standby | None:
        """The pytest ``netra-supervisor run`` started before the runner existed, when it
        is exactly the one this attempt would start (see ``prestart.py``)."""
        if not prestart.pending():
            return None
        if self.collect_only or self.ctx.redact is not None or self.ctx.already_run:
            prestart.discard()  # its output went unmasked to a file / it runs every test
            return None
        early = prestart.take(self.suite.name, self._command(python), self.cwd, self._env(None, 1))
        if early is None:
            return None
        log_path = self._log_path(1)
        try:
            os.replace(early.log_path, log_path)
        except OSError:
            early.kill()
            return None
        return _Standby(early.proc, log_path, early.listener, ())

    def _discard(self, standby: _Standby) -> None:
        kill_group(standby.proc, grace=0.5)
        standby.listener.close()
        if not self.ctx.log_dir:
            with contextlib.suppress(OSError):
                os.unlink(standby.log_path)

    def _wants_standby(self) -> bool:
        if self.maxfail and self.failing + 1 >= self.maxfail:
            return False  # one more failure ends the suite (-x / --maxfail): no restart
        return self.standby is None and self.suite.workers <= 1 and not self.collect_only

    def _start_standby(self, number: int) -> None:
        """Start the pytest for a likely restart ahead of need: after a casualty, or
        while a test is past half its deadline."""
        if not self._wants_standby():
            return
        path = os.path.join(self.tmpdir, f"standby-{number}.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(4)
        listener.setblocking(False)
        env = self._env(None, number)
        env[protocol.SOCKET_ENV] = path
        env[protocol.STANDBY_ENV] = "1"
        log_path = self._log_path(number)
        proc = self._spawn(self.python, env, log_path)
        if proc is None:
            listener.close()
            return
        self.standby = _Standby(proc, log_path, listener, tuple(self.ignored))

    def _run_attempt(self, attempt: _Attempt, python: str, selection: list[str] | None) -> None:
        attempt.tail = ""
        self.killing = False
        standby = self._take_standby()
        if standby is None and attempt.number == 1 and selection is None:
            standby = self._take_prestarted(python)
        self.selector = selectors.DefaultSelector()
        if standby is not None:
            attempt.log_path, proc = standby.log_path, standby.proc
            self.go = selection
            self.selector.register(standby.listener, selectors.EVENT_READ, "go")
        else:
            attempt.log_path = self._log_path(attempt.number)
            spawned = self._spawn(python, self._env(selection, attempt.number), attempt.log_path)
            if spawned is None:
                self.selector.close()
                self.selector = None
                return
            proc = spawned
        attempt.proc = proc
        attempt.spawned = time.monotonic()
        assert self.listener is not None
        self.selector.register(self.listener, selectors.EVENT_READ, "listen")
        self.python = python
        if attempt.number >= 2:
            self._start_standby(attempt.number + 1)
        self.pidfd = None
        if hasattr(os, "pidfd_open"):  # wakes the loop the moment pytest exits
            try:
                self.pidfd = os.pidfd_open(proc.pid)
                self.selector.register(self.pidfd, selectors.EVENT_READ, "exit")
            except OSError:
                self.pidfd = None
        try:
            self._pump(attempt)
            self._drain(attempt)
        finally:
            if self.pidfd is not None:
                self.selector.unregister(self.pidfd)
                os.close(self.pidfd)
                self.pidfd = None
            for conn in list(self.conns.values()):
                self._drop(conn, eof=False)
            self.selector.close()
            self.selector = None
            if standby is not None:
                standby.listener.close()
        if proc.poll() is None or _group_alive(proc.pid):
            # pytest exited but left processes in its group (or never exited): end them
            self.killing = True
            kill_group(proc, grace=1.0)
        for _, procs in self.reaping:  # what is left of killed xdist workers
            for left in procs:
                with contextlib.suppress(psutil.Error):
                    left.kill()
        self.reaping = []
        attempt.returncode = proc.returncode
        self._log_synced(proc.pid, 2.0)
        self.copiers.pop(proc.pid, None)
        attempt.tail = _read_tail(attempt.log_path)
        rc = proc.returncode
        if self.stopped:
            return
        if attempt.stuck is not None:
            self._startup_error(attempt.stuck[0], dump=attempt.stuck[1])
            return
        if (not attempt.session and not attempt.results) or rc == 4:
            conftest, why = protocol.startup_failure(attempt.tail, rc)
            if attempt.number > 1:
                why = f"pytest could not start again after a restart: {why}"
            self._startup_error(why, conftest)

    def _pump(self, attempt: _Attempt) -> None:
        """Read messages until the main pytest process exits (or we stop/kill it)."""
        proc = attempt.proc
        assert proc is not None and self.selector is not None
        while True:
            if self.ctx.stop.is_set():
                self.stopped = self.killing = True
                kill_group(proc)
                return
            read = False
            for key, _ in self.selector.select(self._wait_time()):
                if key.data == "listen":
                    self._accept()
                elif key.data == "go":
                    self._accept(key.fileobj, go=True)
                elif key.data == "exit":
                    proc.poll()
                else:
                    self._read(key.data, attempt)
                    read = True
            self._check_control()
            self._check_deadlines(attempt)
            self._reap()
            if attempt.hung or proc.poll() is not None:
                return
            if read:
                # let a few tests' messages pile up: one wake-up per batch, not per test;
                # but pytest's exit (its pidfd) ends the pause at once
                if self.pidfd is not None:
                    select.select([self.pidfd], [], [], COALESCE)
                else:
                    time.sleep(COALESCE)

    def _drain(self, attempt: _Attempt) -> None:
        """After the exit: take what is still buffered, wait briefly for the workers."""
        assert self.selector is not None
        if self.pidfd is not None:
            self.selector.unregister(self.pidfd)
            os.close(self.pidfd)
            self.pidfd = None
        end = time.monotonic() + (0.3 if self.killing else DRAIN_TIMEOUT)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            events = self.selector.select(left if self.conns else 0.0)
            for key, _ in events:
                if key.data == "listen":
                    self._accept()
                elif key.data == "go":
                    self._accept(key.fileobj, go=True)
                else:
                    self._read(key.data, attempt)
            if not self.conns and not events:
                return

    def _accept(self, listener: object = None, go: bool = False) -> None:
        """Take new connections; from a standby's listener, also tell it to run."""
        listener = listener or self.listener
        assert isinstance(listener, socket.socket) and self.selector is not None
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            if go:  # the selection rides in the message (it was not known at its start)
                line = json.dumps({"cmd": "go", "sel": self.go}, separators=(",", ":"))
                with contextlib.suppress(OSError):
                    sock.sendall(line.encode("ascii") + b"\n")
            sock.setblocking(False)
            conn = _Conn(sock)
            self.conns[sock.fileno()] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _read(self, conn: _Conn, attempt: _Attempt) -> None:
        chunks: list[bytes] = []
        eof = False
        for _ in range(_RECV_ROUNDS):  # what piled up while we waited, within reason
            try:
                chunk = conn.sock.recv(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
            if len(chunk) < _RECV_BYTES:
                break
        if chunks:
            self._lines(conn, b"".join(chunks), attempt)
        if eof and conn.sock.fileno() in self.conns:
            self._drop(conn, eof=True)

    def _lines(self, conn: _Conn, chunk: bytes, attempt: _Attempt) -> None:
        conn.last_seen = time.monotonic()
        data = conn.buf + chunk
        lines = data.split(b"\n")
        conn.buf = lines.pop()
        for line in lines:
            if not line:
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            self._handle(conn, msg, attempt)

    def _drop(self, conn: _Conn, eof: bool) -> None:
        """A connection ended: a test still in flight without ``fin`` died with it."""
        fd = conn.sock.fileno()
        if self.selector is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn.sock)
        self.conns.pop(fd, None)
        conn.sock.close()
        current, conn.current = conn.current, None
        other, conn.other = conn.other, None
        if conn.finished or self.killing or self.stopped:
            return
        proc = self.attempt.proc if self.attempt else None
        main = proc is not None and conn.pid == proc.pid
        if main and current is None and other and other.what == "collect" and other.nodeid:
            # pytest died importing a file (an xdist worker may also be ended by xdist
            # while it collects, so only the main process's death is the file's fault)
            why = f"pytest died while collecting {other.nodeid}"
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
            why += f" ({protocol.describe_exit(proc.returncode)})"
            self._log_synced(proc.pid, 1.0)
            self._collect_lost(conn, other, why, _fatal_error(self.attempt.log_path))
            return
        if current is None:
            return
        if self.attempt is not None and self._is_worker(conn):
            self.attempt.worker_losses += 1
        if main:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
            why = protocol.describe_exit(proc.returncode)
        else:
            who = f"xdist worker {conn.worker}" if conn.worker else "a pytest process"
            why = f"{who} (pid {conn.pid}) died"
        if main:
            self._log_synced(proc.pid, 1.0)
        tail = _read_tail(self.attempt.log_path, 4000) if self.attempt else ""
        fatal = _fatal_error(self.attempt.log_path) if self.attempt else ""
        self.ctx.report(
            TestCrashed,
            self.suite.name,
            nodeid=current.nodeid,
            cause=why,
            dump=fatal,
        )
        self._result(
            current.nodeid,
            "crashed",
            duration=time.monotonic() - current.t0,
            started_at=current.started_at,
            message=f"{why} while running this test",
            longrepr=tail,
            dump=fatal,
            worker=conn.worker,
        )

    # -- messages --------------------------------------------------------------------
    def _handle(self, conn: _Conn, msg: dict, attempt: _Attempt) -> None:
        kind = msg.get("t")
        if kind == "start":
            self._started(conn, msg)
        elif kind == "done":
            self._done(conn, msg)
            self._between(conn, "idle")
        elif kind == "hb":
            pass
        elif kind == "td":
            current = conn.current
            if current is not None and current.nodeid == msg.get("i"):
                current.shared_teardown = str(msg.get("sc") or "")
        elif kind == "cfile":
            if conn.other is not None and conn.other.what == "collect":
                conn.other = self._period(
                    "collect", str(msg.get("i") or ""), path=str(msg.get("f") or "")
                )
        elif kind == "coll":
            conn.other = None
            self._between(conn, "idle")
            new = [n for n in msg.get("ids", ()) if n not in self.known]
            if new:
                self.known.update(new)
                self.order.extend(new)
                if not self.collect_only:
                    self.ctx.report(
                        TestsCollected,
                        self.suite.name,
                        nodeids=tuple(new),
                    )
        elif kind == "cerr":
            nodeid = str(msg.get("i", ""))
            if nodeid not in self.done and not self.collect_only:
                self._result(
                    nodeid,
                    protocol.collect_outcome(str(msg.get("o"))),
                    started_at=utc_now(),
                    message=str(msg.get("m") or ""),
                    longrepr=str(msg.get("l") or ""),
                    worker=conn.worker,
                )
        elif kind == "hello":
            conn.pid = int(msg.get("pid") or 0)
            conn.worker = str(msg.get("w") or "")
            conn.other = self._period("start", "")  # configuring, up to its session start
            attempt.hello = True
            if self.paused:
                conn.ask("pause")
        elif kind == "sess":
            conn.session = attempt.session = True
            conn.controller = bool(msg.get("ctl"))
            # an xdist controller collects nothing itself
            conn.other = None if conn.controller else self._period("collect", "")
        elif kind == "dump":
            conn.dump = str(msg.get("text") or "")
        elif kind == "fin":
            conn.finished = True
            conn.exitstatus = msg.get("s")
            conn.other = None
            if attempt.proc is not None and conn.pid == attempt.proc.pid:
                attempt.main_finished = True
                attempt.exitstatus = conn.exitstatus
                # now it has to exit. (Not timed: an xdist worker after its session,
                # which waits for the controller to end it; xdist's own teardown kills
                # one that does not go within its EXIT_TIMEOUT, 10 s.)
                conn.other = self._period("exit", "")

    def _started(self, conn: _Conn, msg: dict) -> None:
        nodeid = str(msg.get("i", ""))
        own = msg.get("to")
        deadline = float(own) if isinstance(own, (int, float)) and own > 0 else None
        if deadline is None:
            deadline = self.default_deadline
        conn.current = _InFlight(nodeid, time.monotonic(), utc_now(), deadline)
        conn.other = None
        conn.dump = None
        self.ctx.report(
            TestStarted,
            self.suite.name,
            nodeid=nodeid,
            worker=conn.worker,
            deadline=deadline,
        )

    def _done(self, conn: _Conn, msg: dict) -> None:
        nodeid = str(msg.get("i", ""))
        current = conn.current
        started_at = current.started_at if current and current.nodeid == nodeid else utc_now()
        conn.current = None
        if nodeid in self.casualties:
            return  # it finished just as it was recorded hung (or its process died)
        folded = protocol.fold_phases(msg.get("p") or [], msg.get("s"))
        self._result(
            nodeid,
            folded.outcome,
            duration=folded.duration,
            started_at=started_at,
            message=folded.message,
            longrepr=folded.longrepr,
            worker=conn.worker,
        )

    # -- the watchdog's place ----------------------------------------------------------
    def _period(self, what: str, nodeid: str, path: str = "") -> _InFlight:
        return _InFlight(
            nodeid, time.monotonic(), utc_now(), self.session_deadline, what=what, path=path
        )

    def _is_worker(self, conn: _Conn) -> bool:
        """An xdist worker: it can be killed alone, and xdist replaces it."""
        proc = self.attempt.proc if self.attempt else None
        return bool(conn.worker) and conn.pid > 0 and (proc is None or conn.pid != proc.pid)

    def _between(self, conn: _Conn, what: str) -> None:
        """A process running tests by itself (no xdist) is timed between tests too.

        An xdist worker legitimately waits for work, and its controller for workers.
        """
        if conn.worker or conn.controller or conn.finished or self.collect_only:
            return
        conn.other = self._period(what, "")

    def _wait_time(self) -> float:
        """How long the loop may sleep: a tick, or less when a deadline comes sooner
        (so a hang is acted on when it is due, not up to a tick later)."""
        now = time.monotonic()
        wait = TICK
        for conn in self.conns.values():
            current = conn.current or conn.other
            if current is None:
                continue
            if current.hang_reason:
                due = current.hang_at + self.grace
            else:
                due = current.t0 + current.deadline
                if current is conn.current and self._wants_standby():
                    due = min(due, current.t0 + current.deadline * STANDBY_AT)
            wait = min(wait, due - now)
        return max(wait, 0.002)

    def _check_control(self) -> None:
        """Per tick: pass a pause/resume on to every process; a paused process waiting
        between tests is not timed (it is not stuck, it was asked to wait)."""
        control = self.ctx.control
        if control is None:
            return
        paused = control.paused
        if paused != self.paused:
            self.paused = paused
            for conn in self.conns.values():
                conn.ask("pause" if paused else "resume")
        if paused:
            now = time.monotonic()
            for conn in self.conns.values():
                if conn.other is not None and conn.other.what == "idle":
                    conn.other.t0 = now

    def _check_deadlines(self, attempt: _Attempt) -> None:
        """Per tick: a test past its deadline, or a silent process, is hung.

        So is a process stuck with no test running: importing a file, between tests,
        or on its way out after the session finished.
        """
        now = time.monotonic()
        control = self.ctx.control
        kills = control.kills_for(self.suite.name) if control is not None else ()
        if not attempt.hello and now - attempt.spawned > self.session_deadline:
            message = (
                f"pytest had not started after {self.session_deadline:g}s "
                "(a conftest or plugin that blocks while being imported?)"
            )
            self._kill_stuck(attempt, message, "")
            return
        for conn in list(self.conns.values()):
            current = conn.current or conn.other
            if current is None:
                continue
            if not current.hang_reason:
                if (
                    current is conn.current
                    and now - current.t0 >= current.deadline * STANDBY_AT
                    and self._wants_standby()
                ):
                    self._start_standby(attempt.number + 1)
                if (
                    kills
                    and current is conn.current
                    and current.nodeid in kills
                    and control.take_kill(self.suite.name, current.nodeid)
                ):
                    current.hang_reason = "killed"  # a person asked: handled like a hang
                elif now - current.t0 > current.deadline:
                    current.hang_reason = "deadline"
                elif now - conn.last_seen > self.silence:
                    current.hang_reason = "silence"
                else:
                    continue
                current.hang_at = now
                conn.dump = None
                conn.ask_dump()
            elif conn.dump is not None or now - current.hang_at >= self.grace:
                if current is conn.current:
                    self._hung(conn, current, attempt)
                else:
                    self._stuck(conn, current, attempt)
                return

    def _dump_and_message(self, conn: _Conn, current: _InFlight, doing: str) -> tuple[str, str]:
        dump = conn.dump
        if dump is None:
            dump = f"(no dump: the test process did not answer within {self.grace:g}s)"
        if current.hang_reason == "deadline":
            message = f"{doing} after its deadline of {current.deadline:g}s"
        elif current.hang_reason == "killed":
            elapsed = time.monotonic() - current.t0
            message = f"killed by the user after {elapsed:.1f}s (deadline {current.deadline:g}s)"
        else:
            message = f"the test process was silent for more than {self.silence:g}s"
        if current.shared_teardown:
            scope = current.shared_teardown
            message += (
                f", in the teardown after its call, which also ends {scope}-scoped fixtures:"
                f" most likely a {scope} fixture's teardown hangs (see the dump)"
            )
        return dump, message

    def _hung(self, conn: _Conn, current: _InFlight, attempt: _Attempt) -> None:
        dump, message = self._dump_and_message(conn, current, "still running")
        self.ctx.report(
            TestHung,
            self.suite.name,
            nodeid=current.nodeid,
            deadline=current.deadline,
            reason=current.hang_reason,
            dump=dump,
        )
        conn.current = None
        self._result(
            current.nodeid,
            "hung",
            duration=time.monotonic() - current.t0,
            started_at=current.started_at,
            message=message,
            dump=dump,
            worker=conn.worker,
        )
        if self._is_worker(conn):
            # only this worker goes; xdist replaces it and hands its tests to the others
            attempt.worker_losses += 1
            self._kill_tree(conn.pid)
            return
        attempt.hung = True
        self.killing = True
        if attempt.proc is not None:
            kill_group(attempt.proc)

    def _stuck(self, conn: _Conn, period: _InFlight, attempt: _Attempt) -> None:
        """A process stuck with no test running: record an error, kill the group."""
        conn.other = None
        if period.what == "start" or (period.what == "collect" and not period.nodeid):
            if period.what == "start":
                doing = "pytest was still starting up"
            else:
                doing = "pytest was still collecting (no test file being imported)"
            dump, message = self._dump_and_message(conn, period, doing)
            self._kill_stuck(attempt, message, dump)
            return
        if period.what == "collect" and period.nodeid:
            dump, message = self._dump_and_message(
                conn, period, f"still collecting {period.nodeid}"
            )
            self._collect_lost(conn, period, message, dump)
        else:
            remaining = any(n not in self.done for n in self.order)
            if period.what == "exit":
                doing, where = "pytest had not exited", "(session teardown)"
            elif remaining:
                doing, where = "pytest was stuck between two tests", "(between tests)"
            else:
                doing, where = "pytest was stuck after its last test", "(session teardown)"
            dump, message = self._dump_and_message(conn, period, doing)
            nodeid = f"{self.suite.name}::{where}"
            if nodeid not in self.done:  # once: the same hang again stops the restarts
                self._result(
                    nodeid,
                    "error",
                    file="",
                    duration=time.monotonic() - period.t0,
                    started_at=period.started_at,
                    message=message,
                    dump=dump,
                    worker=conn.worker,
                )
                attempt.casualties += 1  # the tests still to run (if any) get a new pytest
        attempt.hung = True
        self.killing = True
        if attempt.proc is not None:
            kill_group(attempt.proc)

    def _kill_stuck(self, attempt: _Attempt, message: str, dump: str) -> None:
        """Stuck before any test or file to blame: a startup error, no restart."""
        attempt.stuck = (message, dump)
        attempt.hung = True
        self.killing = True
        if attempt.proc is not None:
            kill_group(attempt.proc)

    def _collect_lost(self, conn: _Conn, period: _InFlight, message: str, dump: str) -> None:
        """A file hung (or its process died) while being imported: an error for that
        file, and pytest restarts without it."""
        if period.path and period.path not in self.ignored:
            self.ignored.append(period.path)
        if self.attempt is not None:
            self.attempt.collect_hang = True
        if period.nodeid in self.done:
            return  # the other xdist worker, importing the same file
        tail = _read_tail(self.attempt.log_path, 4000) if self.attempt and not dump else ""
        self._result(
            period.nodeid,
            "error",
            duration=time.monotonic() - period.t0,
            started_at=period.started_at,
            message=message,
            longrepr=tail,
            dump=dump,
            worker=conn.worker,
        )

    def _kill_tree(self, pid: int) -> None:
        """SIGTERM one process and its descendants now; SIGKILL the survivors later."""
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.send_signal(signal.SIGTERM)
                proc.send_signal(signal.SIGCONT)
        self.reaping.append((time.monotonic() + STOP_GRACE, procs))

    def _reap(self) -> None:
        now = time.monotonic()
        due = [entry for entry in self.reaping if entry[0] <= now]
        if not due:
            return
        self.reaping = [entry for entry in self.reaping if entry[0] > now]
        for _, procs in due:
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.kill()

    def _close_all(self) -> None:
        if self.standby is not None:  # not needed after all
            self._discard(self.standby)
            self.standby = None
        for conn in list(self.conns.values()):
            with contextlib.suppress(OSError):
                conn.sock.close()
        self.conns.clear()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
