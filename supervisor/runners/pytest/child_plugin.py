"""The pytest plugin that runs inside the supervised test process (the "child").

STANDARD LIBRARY ONLY (plus pytest, which is there by definition): this file runs in
the interpreter of the project under test, whatever venv that is, where netra-supervisor
is not installed. The parent loads it by path: ``childpath/_netra_child_plugin.py`` (a
shim on ``PYTHONPATH``) executes this file, and pytest is started with
``-p _netra_child_plugin``. xdist hands the same command line to every worker, and the
workers inherit ``PYTHONPATH``, so the plugin is active in each of them too.

Without ``NETRA_CHILD_SOCKET`` in the environment the plugin does nothing. Its
siblings ``child_watch.py`` (ends the run's processes when the supervisor is gone)
and ``child_dump.py`` (thread stacks and asyncio tasks) are loaded the same way.

Wire format: one JSON object per line (ASCII, so any nodeid survives byte for byte),
both ways over one Unix stream socket per process (a remote xdist worker's goes
over an execnet channel the controller relays: ``transport.py``, ``child_remote.py``). Keys are short on purpose; the
parent side (``protocol.py``) documents every message. Messages are buffered and
flushed at test start, on heartbeats and at session end, so a trivial test costs two
lines formatted by hand (no ``json.dumps``) and one ``send``; the ``done`` of a test
that did not simply pass goes out at once (its verdict is news).

Child → parent::

    {"t":"hello","pid":1,"w":"gw0","pt":"8.3.2","py":"3.11.7","r":""}   on pytest_configure
                                         (r: the host of a remote worker, see child_remote.py)
    {"t":"sess","ctl":false}             session start (ctl: an xdist controller)
    {"t":"cfile","i":id,"f":path}        a collector starts (a module is imported, ...)
    {"t":"coll","ids":[...]}             collected nodeids (processes that collect)
    {"t":"cerr","i":id,"o":"failed","m":msg,"l":text}   a collector that failed/skipped
    {"t":"start","i":id,"to":5.0,"at":T} a test starts (to: its timeout marker, or null;
                                         at: time.time() then, its result's started_at)
    {"t":"td","i":id,"sc":"session"}     the coming teardown ends fixtures of this scope
    {"t":"done","i":id,"d":0.002,"p":[{"w":"call","o":"failed","d":0.001,...}]}
                                         (d: the seconds of the phases that simply
                                         passed; p: the others, left out when none)
    {"t":"hb"}                           heartbeat, every NETRA_CHILD_HEARTBEAT seconds
    {"t":"dump","text":"...","stacks":[...],"roots":{...}}   answer to {"cmd":"dump"}
                                         (stacks and roots: see child_dump.dump)
    {"t":"fin","s":0}                    session finished with this exit status
    {"t":"bye"}                          unconfigured (its report written): it exits now

Parent → child::

    {"cmd":"dump"}                       write all thread stacks and asyncio tasks
    {"cmd":"go","sel":[...],"first":[...]}   a standby (NETRA_CHILD_STANDBY=1), which
                                         waits after collection: run these tests now,
                                         those in "first" before the others
    {"cmd":"pause"} / {"cmd":"resume"}   start no new test until resumed (the TUI's p)

    The parent ends a remote worker by closing its connection (``transport.py``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

SOCKET_ENV = "NETRA_CHILD_SOCKET"
SELECT_ENV = "NETRA_CHILD_SELECT"
IGNORE_ENV = "NETRA_CHILD_IGNORE"
SKIP_ENV = "NETRA_CHILD_SKIP"
FIRST_ENV = "NETRA_CHILD_FIRST"
STANDBY_ENV = "NETRA_CHILD_STANDBY"
HEARTBEAT_ENV = "NETRA_CHILD_HEARTBEAT"
REMOTE_ENV = "NETRA_CHILD_REMOTE"
LISTS_DIR_ENV = "NETRA_CHILD_LISTS_DIR"  # a remote worker's folder of the lists above
#: this file's folder: it is run by the shim in ``childpath/``, its siblings are here
_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_dumps = json.JSONEncoder(separators=(",", ":")).encode
# A JSON string literal, ASCII only (the C encoder json.dumps uses): the hot path
# (a start, a passing phase, a done) is formatted by hand around it, which costs a
# fraction of encoding a dict (bench/overhead.py: every test sends these).
_quote = json.encoder.encode_basestring_ascii
_MAX_TEXT = 200_000  # characters of one longrepr / section sent to the parent


class _Channel:
    """The socket to the parent: a buffer, a lock, a heartbeat and a reader thread."""

    def __init__(self, path: str, heartbeat: float) -> None:
        self.sock = _sibling("transport").connect(path)  # Unix socket, or execnet channel
        self.lock = threading.Lock()
        self.buf: list[str] = []
        self.alive = True
        self.lost = False  # the connection broke without us closing it
        self.dumps_asked = 0  # SIGCONTs seen (each follows a dump request)
        self.dumps_answered = 0
        self.closed = threading.Event()
        self.go = threading.Event()  # cleared while the parent asks us to pause
        self.go.set()
        self.run_now = threading.Event()  # a standby's signal to run (with a selection)
        self.run_selection: list | None = None
        self.run_first: list | None = None
        self.heartbeat = heartbeat
        self.pid = os.getpid()
        self.rootdir = ""  # pytest's rootdir: whose code a dumped frame is
        for target in (self._beat, self._read):
            threading.Thread(target=target, name="netra-child", daemon=True).start()

    # -- sending ---------------------------------------------------------------------
    def put(self, msg: dict) -> None:
        """Queue a message; it goes out with the next flush."""
        if self.alive:
            self.put_line(_dumps(msg))

    def put_line(self, line: str) -> None:
        """Queue a message already encoded as one line of JSON (no newline)."""
        if not self.alive:
            return
        with self.lock:  # the heartbeat thread flushes concurrently
            self.buf.append(line)

    def send(self, msg: dict) -> None:
        """Queue a message and flush now."""
        if self.alive:
            self.put_line(_dumps(msg))
            self.flush()

    def send_first(self, msg: dict) -> None:
        """Send a message ahead of what is buffered (a dump goes before the ``done`` of
        the test it describes, which the main thread may have queued meanwhile)."""
        if not self.alive:
            return
        with self.lock:
            self.buf.insert(0, _dumps(msg))
        self.flush()

    def send_line(self, line: str) -> None:
        """Queue an encoded message and flush now."""
        if self.alive:
            self.put_line(line)
            self.flush()

    def flush(self) -> None:
        with self.lock:
            if not self.buf or not self.alive:
                return
            data = ("\n".join(self.buf) + "\n").encode("ascii")
            self.buf.clear()
            try:
                self.sock.sendall(data)
            except OSError:  # the supervisor's end is closed: it is gone, or ending us
                self.alive = False
                self.lost = True
        if self.lost:
            self._parent_gone()

    def close(self) -> None:
        self.flush()
        self.alive = False
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    def forget(self) -> None:
        """After fork: this process is not the one the parent talks to."""
        self.alive = False
        self.buf = []
        try:
            self.sock.close()  # our copy only; the parent's connection stays open
        except OSError:
            pass

    # -- threads ---------------------------------------------------------------------
    def _beat(self) -> None:
        while not self.closed.wait(self.heartbeat):
            if os.getpid() != self.pid:
                return
            self.send({"t": "hb"})

    def _read(self) -> None:
        pending = b""
        while self.alive:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.lost = True
                self._parent_gone()
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                try:
                    cmd = json.loads(line)
                except ValueError:
                    continue
                self._command(cmd)

    def on_sigcont(self, signum: int, frame: object) -> None:
        """The supervisor sends SIGCONT right after each dump request (a stopped
        process could not answer): count it, so the end can wait for the answer."""
        self.dumps_asked += 1

    def answer_pending(self, timeout: float) -> None:
        """Before the process ends: wait for the answers to dumps already asked (the
        main thread of a process resumed by SIGCONT may reach its end before the
        reader thread gets a turn, and the dump would go with the process)."""
        end = time.monotonic() + timeout
        while self.dumps_answered < self.dumps_asked and self.alive:
            if time.monotonic() >= end:
                return
            time.sleep(0.01)

    def _parent_gone(self) -> None:
        """The supervisor's end of our socket closed without us closing ours: it was
        killed, or it is ending this pytest. Either way nobody records or stops what
        would run next: end everything of the run (see ``child_watch.py``)."""
        if self.closed.is_set() or os.getpid() != self.pid:
            return
        self.alive = False
        lost = getattr(self.sock, "lost", None)
        if lost is not None:  # a remote worker: its tree and itself (transport.py)
            lost()
            return
        watch = _sibling("child_watch")
        if watch.supervisor_ends_within(0.3):
            watch.end_everything()  # it was killed: its other processes are orphans too
        else:
            watch.end_own_group()  # it is ending this pytest (keeps its other processes)

    def wait_if_paused(self) -> None:
        """Before a test: while paused, send what is buffered and wait (heartbeats go on)."""
        if self.go.is_set():
            return
        self.flush()
        while not self.go.wait(0.5):
            if not self.alive:
                return

    def _command(self, cmd: dict) -> None:
        if cmd.get("cmd") == "go":
            selection = cmd.get("sel")
            self.run_selection = list(selection) if isinstance(selection, list) else None
            first = cmd.get("first")
            self.run_first = list(first) if isinstance(first, list) else None
            self.run_now.set()
        elif cmd.get("cmd") == "pause":
            self.go.clear()
        elif cmd.get("cmd") == "resume":
            self.go.set()
        elif cmd.get("cmd") == "dump":
            try:
                answer = _sibling("child_dump").dump(self.rootdir)
            except Exception as exc:  # never let a dump kill the reader
                answer = {"text": f"<dump failed: {exc!r}>"}
            self.send_first({"t": "dump", **answer})
            self.dumps_answered += 1


def _sibling(name: str):
    """Load ``<name>.py`` from beside this file as ``_netra_<name>`` (the child has
    only ``childpath/`` on its path, not our package)."""
    full = f"_netra_{name}"
    module = sys.modules.get(full)
    if module is None:
        from importlib.machinery import SourceFileLoader
        from importlib.util import module_from_spec, spec_from_loader

        loader = SourceFileLoader(full, os.path.join(_HERE, f"{name}.py"))
        spec = spec_from_loader(full, loader)
        assert spec is not None
        module = module_from_spec(spec)
        sys.modules[full] = module
        loader.exec_module(module)
    return module


if os.environ.get(SOCKET_ENV):
    # at import (the -p plugin is imported first): watching starts before conftests
    _sibling("child_watch").start_watch()


# ------------------------------------------------------------------------ report text


def _clip(text: str) -> str:
    if len(text) > _MAX_TEXT:
        return text[: _MAX_TEXT // 2] + "\n[... clipped by netra ...]\n" + text[-_MAX_TEXT // 2 :]
    return text


def short_message(longrepr: object) -> str:
    """The one-line reason pytest's short summary would show."""
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # a skip: (path, line, reason)
        reason = str(longrepr[2])
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    crash = getattr(longrepr, "reprcrash", None)
    message = getattr(crash, "message", None)
    if message:
        return str(message).strip().splitlines()[0]
    text = str(longrepr)
    for line in reversed(text.splitlines()):
        if line.startswith("E "):
            return line[1:].strip()
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


def _longrepr_text(report: object) -> str:
    longrepr = getattr(report, "longrepr", None)
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return f"{longrepr[0]}:{longrepr[1]}: {longrepr[2]}"
    try:
        return _clip(report.longreprtext)  # type: ignore[attr-defined]
    except Exception:
        return _clip(str(longrepr))


# ------------------------------------------------------------------------ the plugin


class NetraChildPlugin:
    def __init__(self, channel: _Channel) -> None:
        self.ch = channel
        self.controller = False
        self.phases: list[str] = []  # the current test's phases that did not simply pass
        self.passed_for = 0.0  # seconds of its phases that simply passed (only their time)
        self.phase_failed = False  # one of them failed (its output sections are sent)
        self.phase_news = False  # one of them did not simply pass: its done goes out now
        self.shared_teardown = ""
        self.standby = os.environ.get(STANDBY_ENV) == "1"
        select = os.environ.get(SELECT_ENV)
        self.select: set[str] | None = None
        if select:
            with open(select, encoding="utf-8") as fh:
                self.select = set(json.load(fh))
        skip = os.environ.get(SKIP_ENV)
        self.skip: set[str] = set()
        if skip:  # tests recorded before the supervisor was stopped (--resume)
            with open(skip, encoding="utf-8") as fh:
                self.skip = set(json.load(fh))
        ignore = os.environ.get(IGNORE_ENV)
        self.ignore: set[str] = set()
        if ignore:
            with open(ignore, encoding="utf-8") as fh:
                self.ignore = set(json.load(fh))
        #: the files (as written and resolved) that hold the selection's tests; set()
        #: when some id's file cannot be found (then nothing is left out)
        self.select_files: set[str] | None = None
        first = os.environ.get(FIRST_ENV)
        self.first: list[str] = []
        if first:  # failed-first: what did not pass last time, in the order it last ran
            with open(first, encoding="utf-8") as fh:
                self.first = list(json.load(fh))
        lists_dir = os.environ.pop(LISTS_DIR_ENV, "")
        if os.path.basename(lists_dir).startswith("netra-remote-"):
            import shutil  # remote_agent's folder, read now: a remote host keeps none

            shutil.rmtree(lists_dir, ignore_errors=True)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.controller = session.config.pluginmanager.hasplugin("dsession")
        self.ch.send({"t": "sess", "ctl": self.controller})

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, session: pytest.Session, config: pytest.Config, items: list
    ) -> None:
        if self.standby:
            # started ahead of need: collected, now wait until the supervisor says
            # which tests to run (those a hang or crash left without a result)
            self.ch.run_now.wait()
            if self.ch.run_selection is not None:
                self.select = set(self.ch.run_selection)
            if self.ch.run_first is not None:
                self.first = self.ch.run_first
        if self.first:
            _run_first(items, self.first)
        if self.select is None and not self.skip:
            return
        keep = [
            item
            for item in items
            if (self.select is None or item.nodeid in self.select) and item.nodeid not in self.skip
        ]
        if len(keep) != len(items):
            kept = {id(item) for item in keep}
            dropped = [item for item in items if id(item) not in kept]
            items[:] = keep
            config.hook.pytest_deselected(items=dropped)

    def pytest_ignore_collect(self, collection_path: Path, config: pytest.Config) -> bool | None:
        """Files the parent saw hang while being imported are left out of a restart;
        with a selection (a verify pass, a restart on the tests left), so are the test
        files that hold none of its tests: importing them would only be thrown away."""
        if self.ignore and str(collection_path) in self.ignore:
            return True
        if self.select is None or collection_path.suffix != ".py":
            return None
        if self.select_files is None:
            self.select_files = _files_of(self.select, config.rootpath)
        files = self.select_files
        if (
            not files  # some selected id names no file we can find: collect everything
            or collection_path.name in ("conftest.py", "__init__.py")
            or not collection_path.is_file()
        ):
            return None
        if str(collection_path) in files or os.path.realpath(collection_path) in files:
            return None
        return True

    def pytest_collectstart(self, collector: pytest.Collector) -> None:
        if not self.controller and not isinstance(collector, pytest.Session):
            # a module's import (a directory's conftest) happens next: if it never
            # returns, the parent knows which file (directory) to blame and leave out
            self.ch.send({"t": "cfile", "i": collector.nodeid, "f": str(collector.path)})

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.passed or self.controller:
            return
        self.ch.put(
            {
                "t": "cerr",
                "i": report.nodeid,
                "o": report.outcome,
                "m": short_message(report.longrepr),
                "l": _longrepr_text(report),
            }
        )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        if not self.controller:
            self.ch.send({"t": "coll", "ids": [item.nodeid for item in session.items]})

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: object) -> None:
        timeout = None
        marker = item.get_closest_marker("timeout")
        if marker is not None:
            value = marker.args[0] if marker.args else marker.kwargs.get("timeout")
            try:
                timeout = float(value) if value is not None else None
            except (TypeError, ValueError):
                timeout = None
        self.phases = []
        self.passed_for = 0.0
        self.phase_failed = self.phase_news = False
        self.shared_teardown = _shared_teardown(item, nextitem)
        self.ch.wait_if_paused()
        to = "null" if timeout is None else _dumps(timeout)
        self.ch.send_line(
            f'{{"t":"start","i":{_quote(item.nodeid)},"to":{to},"at":{time.time():.3f}}}'
        )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.controller:
            return  # relayed from an xdist worker, which reports it itself
        outcome = report.outcome
        wasxfail = getattr(report, "wasxfail", None)
        if outcome == "passed" and wasxfail is None:  # the common case: only its time counts
            self.passed_for += report.duration
        else:
            phase: dict = {"w": report.when, "o": outcome, "d": round(report.duration, 6)}
            if wasxfail is not None:
                phase["x"] = wasxfail
            if outcome != "passed":
                phase["m"] = short_message(report.longrepr)
                phase["l"] = _longrepr_text(report)
            self.phases.append(_dumps(phase))
            self.phase_failed = self.phase_failed or outcome == "failed"
            self.phase_news = True
        if (
            report.when != "teardown"
            and self.shared_teardown
            and (report.when == "call" or report.outcome != "passed")
        ):
            # the teardown to come also ends fixtures shared with other tests: say so, so
            # a hang in it is blamed on the fixture, not on this test's own code
            self.ch.send({"t": "td", "i": report.nodeid, "sc": self.shared_teardown})
        if report.when == "teardown":
            # one float format (microseconds, correctly rounded: the value round(d, 6)
            # gives) instead of round() and repr()
            line = f'{{"t":"done","i":{_quote(report.nodeid)},"d":{self.passed_for:.6f}'
            if self.phases:
                line += f',"p":[{",".join(self.phases)}]'
            if self.phase_failed and report.sections:
                sections = [[title, _clip(text)] for title, text in report.sections]
                line += f',"s":{_dumps(sections)}'
            self.phases, self.passed_for = [], 0.0
            if self.phase_news:
                # news (a failure, an error, a skip, an xfail): out now, so its row and
                # its verdict do not wait for the next test's start; a pass waits
                self.ch.send_line(line + "}")
            else:
                self.ch.put_line(line + "}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: object) -> None:
        try:
            status = int(exitstatus)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            status = -1
        self.ch.send({"t": "fin", "s": status})

    @pytest.hookimpl(trylast=True)
    def pytest_unconfigure(self, config: pytest.Config) -> None:
        # Say that the report is written (the terminal summary follows "fin"), but keep
        # the channel (and the heartbeat) until the process exits: a process stuck on
        # its way out (a non-daemon thread, an atexit handler) can still be asked for a
        # dump. The parent sees EOF when the process is gone.
        self.ch.send({"t": "bye"})
        self.ch.answer_pending(timeout=2.0)


def _files_of(nodeids: set[str], rootpath: Path) -> set[str]:
    """The files of ``nodeids`` (relative to pytest's rootdir), each as joined and as
    resolved; empty when one is not an existing file (a package id, --pyargs, a
    plugin's own collector): leaving files out is then not safe."""
    files: set[str] = set()
    for nodeid in nodeids:
        path = os.path.normpath(os.path.join(rootpath, nodeid.split("::", 1)[0]))
        if not os.path.isfile(path):
            return set()
        files.add(path)
        files.add(os.path.realpath(path))
    return files


def _run_first(items: list, first: list[str]) -> None:
    """Move the items named in ``first`` to the front, in that order; the rest keep
    theirs. Every xdist worker does the same, so the lists they compare agree, and the
    scheduler hands the moved tests out first."""
    rank = {nodeid: i for i, nodeid in enumerate(first)}
    front = sorted((item for item in items if item.nodeid in rank), key=lambda i: rank[i.nodeid])
    if front:
        items[:] = front + [item for item in items if item.nodeid not in rank]


def _shared_teardown(item: pytest.Item, nextitem: object) -> str:
    """The widest fixture scope torn down after ``item`` ("" when only its own)."""
    if nextitem is None:
        return "session"
    if getattr(nextitem, "parent", None) is item.parent:
        return ""  # the same module and class: the usual case, and cheap to tell
    if getattr(nextitem, "module", None) is not getattr(item, "module", None):
        return "module"
    if getattr(nextitem, "cls", None) is not getattr(item, "cls", None):
        return "class"
    return ""


def pytest_configure(config: pytest.Config) -> None:
    path = os.environ.get(SOCKET_ENV)
    if not path or config.pluginmanager.has_plugin("netra-child"):
        return
    try:
        channel = _Channel(path, float(os.environ.get(HEARTBEAT_ENV) or 1.0))
    except OSError as exc:
        # the supervisor is gone (it stopped, or was killed, before this pytest got
        # here) or its socket with it: run nothing rather than run unwatched
        sys.stderr.write(f"netra child plugin: cannot reach the supervisor at {path}: {exc}\n")
        sys.stderr.flush()
        os._exit(4)
    os.register_at_fork(after_in_child=channel.forget)
    channel.rootdir = str(config.rootpath)
    if signal.getsignal(signal.SIGCONT) == signal.SIG_DFL:  # a test's own handler stays
        signal.signal(signal.SIGCONT, channel.on_sigcont)
    channel.send(
        {
            "t": "hello",
            "pid": os.getpid(),
            "w": os.environ.get("PYTEST_XDIST_WORKER", ""),
            "pt": pytest.__version__,
            "py": sys.version.split()[0],
            "r": os.environ.get(REMOTE_ENV, ""),
        }
    )
    config.pluginmanager.register(NetraChildPlugin(channel), "netra-child")
    if getattr(config.option, "tx", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        # an xdist controller with --tx workers: some may be remote
        _sibling("child_remote").install(config, path)
