"""One ``run()`` of one pytest suite: its attempts, each watched until it ends.

An *attempt* is one pytest process (with its xdist workers). The loop here starts it
(or adopts a standby), reads its messages until it exits, carries out what the
watchdog (:mod:`supervisor.core.watchdog`) decides — ask a dump, record ``hung`` and
kill — and then asks the watchdog's :func:`~supervisor.core.watchdog.after_attempt`
whether pytest starts again on the tests that had not run. The channel, the message
folding and the processes are parts of their own (``channel.py``, ``messages.py``,
``processes.py``); this module only wires them and records what they find.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor.core import watchdog as wd
from supervisor.core.events import TestCrashed, TestHung
from supervisor.procs import STOP_GRACE
from supervisor.runners.pytest import protocol
from supervisor.runners.pytest.channel import Arrived, Channel, Conn
from supervisor.runners.pytest.hosts import worker_count
from supervisor.runners.pytest.launch import maxfail_of, resolve_python
from supervisor.runners.pytest.messages import Messages
from supervisor.runners.pytest.output import fatal_error, read_tail
from supervisor.runners.pytest.pacing import pause_after_read
from supervisor.runners.pytest.processes import Processes
from supervisor.runners.pytest.state import Attempt, SuiteState

if TYPE_CHECKING:
    from supervisor.config import SuiteConfig
    from supervisor.core.kinds import RunContext

DRAIN_TIMEOUT = 3.0  # after pytest exits, how long to wait for its workers' last lines
#: at least this long for a started pytest to connect: a busy machine can take seconds
#: to start an interpreter, and a false alarm here ends the suite (no restart)
SPAWN_DEADLINE = 30.0
MAX_RESTARTS = 100


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


class SuiteRun:
    """One ``run()`` of one suite: possibly several pytest processes (restarts)."""

    def __init__(self, suite: SuiteConfig, ctx: RunContext, collect_only: bool = False):
        self.suite = suite
        self.ctx = ctx
        self.collect_only = collect_only
        self.state = SuiteState(suite, ctx, collect_only)
        config = ctx.config.watchdog
        self.wd = wd.Watchdog(silence=config.silence_timeout, grace=config.grace)
        default = ctx.deadline_for(suite)
        self.messages = Messages(
            self.state,
            self.wd,
            default_deadline=default,
            stretch_deadline=max(default, config.test_timeout),
            paused=lambda: self.paused,
        )
        self.maxfail = maxfail_of(suite.args)
        self.workers = worker_count(suite.workers, suite.hosts)  # asked at every wake-up
        self.stopped = False  # the user stopped the run
        self.cut = False  # the phase's gate can no longer hold (stop_on_gate)
        self.ending = False  # we are ending the processes: a lost connection is expected
        self.paused = False  # what the child processes were last told (ctx.control)
        self.procs: Processes | None = None
        self.channel: Channel | None = None
        self.cwd = str(ctx.config.resolve(suite.cwd))
        #: the tests to run first (failed-first) that have no result yet
        self._first_left = set(ctx.run_first)

    @property
    def order(self) -> list[str]:
        return self.state.order

    @property
    def startup_message(self) -> str | None:
        return self.state.startup_message

    # -- the run -----------------------------------------------------------------------
    def run(self) -> None:
        python = resolve_python(self.suite.python, self.ctx.config.base_dir)
        if python is None:
            self._startup_error(f"interpreter not found: {self.suite.python}")
            return
        if not Path(self.cwd).is_dir():
            self._startup_error(f"working directory not found: {self.cwd}")
            return
        self.procs = Processes(self.suite, self.ctx, self.collect_only)
        self.procs.python = python
        try:
            self.channel = Channel(self.procs.socket_path, self.wd.track)
            self._attempts()
        finally:
            if self.channel is not None:
                self.channel.shutdown()
            self.procs.close()

    def _attempts(self) -> None:
        assert self.procs is not None
        state = self.state
        # a verify pass runs only the tests it re-checks (those not collected: not run),
        # less those a --resume already recorded (a selection replaces the skip list)
        only = self.ctx.only
        selection: list[str] | None = None if only is None else sorted(only - self.ctx.already_run)
        number = 0
        while True:
            number += 1
            attempt = Attempt(number)
            state.attempt = attempt
            try:
                self._run_attempt(attempt, selection)
            finally:
                if attempt.proc is not None and attempt.proc.poll() is None:
                    self.ending = True
                    self.procs.end_attempt(attempt.proc, number, STOP_GRACE)
                if not self.ctx.log_dir and attempt.log_path:
                    with contextlib.suppress(OSError):
                        os.unlink(attempt.log_path)
            if self.stopped:
                state.finished("interrupted", "stopped by the user")
                return
            if self.cut:
                left = len(state.remaining())
                state.finished(
                    "cut", f"stopped: the phase's gate can no longer hold ({left} not run)"
                )
                return
            if state.startup_message is not None:
                return
            remaining = state.remaining()
            end = wd.AttemptEnd(
                number=number,
                collect_hang=attempt.collect_hang,
                # pytest died or was killed, or xdist gave up replacing workers
                # (--max-worker-restart) and ended the session with tests still unrun
                cut_short=not attempt.main_finished or attempt.worker_losses > 0,
                casualties=attempt.casualties,
                remaining=len(remaining),
                failing=state.failing,
                maxfail=self.maxfail,
            )
            decision = wd.after_attempt(end, MAX_RESTARTS)
            if decision == wd.AGAIN_WITHOUT_FILES:
                selection = remaining if state.order else None
                self._warn(
                    f"restarting pytest without {len(state.ignored)} file(s) that hung "
                    "or died while being collected"
                )
                continue
            if decision == wd.AGAIN_ON_REMAINING:
                selection = remaining
                ready = " (a standby pytest was ready)" if self.procs.standby is not None else ""
                self._warn(
                    f"restarting pytest on the {len(remaining)} tests that had not run{ready}"
                )
                continue
            if decision == wd.STOP_AT_MAXFAIL:
                self._warn(
                    f"not restarting pytest: {state.failing} failing, and the suite's args"
                    f" stop at {self.maxfail} (-x / --maxfail)"
                )
            state.finished(*self._final_status(attempt, remaining))
            return

    def _warn(self, text: str) -> None:
        self.ctx.log("warning", f"pytest:{self.suite.name}", text)

    def _final_status(self, attempt: Attempt, remaining: list[str]) -> tuple[str, str]:
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

    def _startup_error(self, message: str, conftest: str = "", dump: str = "") -> None:
        self.state.startup_message = message
        if self.collect_only:
            return
        where = conftest or self.suite.name
        if conftest:
            with contextlib.suppress(ValueError):
                where = str(Path(conftest).resolve().relative_to(Path(self.cwd).resolve()))
        self.state.result(
            f"{where}::(startup)", "error", file=conftest and where, message=message, dump=dump
        )
        self.state.finished("error", message)

    # -- one attempt -------------------------------------------------------------------
    def _run_attempt(self, attempt: Attempt, selection: list[str] | None) -> None:
        procs, channel = self.procs, self.channel
        assert procs is not None and channel is not None
        self.ending = False
        standby = procs.take_standby(self.state.ignored)
        if standby is None and attempt.number == 1:
            standby = procs.take_early()  # told what to run (a selection too) by "go"
        if standby is not None:
            attempt.log_path, proc = standby.log_path, standby.proc
            channel.add_standby(standby.listener, selection, list(self.ctx.run_first))
        else:
            attempt.log_path = procs.log_path(attempt.number)
            env = procs.env(selection, attempt.number, self.state.ignored)
            try:
                proc = procs.spawn(env, attempt.log_path, attempt.number)
            except OSError as exc:
                self._startup_error(f"cannot start {procs.python}: {exc.strerror or exc}")
                return
        attempt.proc = proc
        attempt.spawn_track = self.wd.track(dumpable=False)
        attempt.spawn_track.other = self.wd.period(
            wd.SPAWN, "", max(self.messages.stretch_deadline, SPAWN_DEADLINE)
        )
        if attempt.number >= 2:
            self._start_standby(attempt.number + 1)
        channel.watch_exit(proc.pid)
        try:
            self._pump(attempt)
            self._drain()
        finally:
            channel.unwatch_exit()
            for conn in channel.close_all():
                self._lost(conn)
            if standby is not None:
                channel.remove_standby(standby.listener)
                procs.release(standby)
            if attempt.spawn_track is not None:
                self.wd.drop(attempt.spawn_track)
                attempt.spawn_track = None
        if not self.ending and (proc.poll() is None or _group_alive(proc.pid)):
            # pytest exited but left processes in its group (or never exited): end them
            self.ending = True
            procs.end_attempt(proc, attempt.number, grace=1.0)
        procs.join_enders()
        attempt.returncode = proc.returncode
        procs.log_synced(proc.pid, 2.0)
        procs.forget_output(proc.pid)
        attempt.tail = read_tail(attempt.log_path)
        rc = proc.returncode
        if self.stopped or self.cut:
            return
        if attempt.stuck is not None:
            self._startup_error(attempt.stuck[0], dump=attempt.stuck[1])
            return
        if (not attempt.session and not attempt.results) or rc == 4:
            conftest, why = protocol.startup_failure(attempt.tail, rc)
            if attempt.number > 1:
                why = f"pytest could not start again after a restart: {why}"
            self._startup_error(why, conftest)

    def _pump(self, attempt: Attempt) -> None:
        """Read messages until the main pytest process exits (or we stop/kill it)."""
        proc, channel = attempt.proc, self.channel
        assert proc is not None and channel is not None and self.procs is not None
        while True:
            if self.ctx.stop.is_set() or self.ctx.cut.is_set():
                self.stopped = self.ctx.stop.is_set()
                self.cut = not self.stopped
                self.ending = True
                self.procs.end_attempt(proc, attempt.number, STOP_GRACE)
                return
            arrived = channel.wait(self.wd.next_due(self._standby_wanted()))
            self._take(arrived)
            if arrived.exited:
                proc.poll()
            self._check_control()
            self._watch(attempt)
            if attempt.hung or proc.poll() is not None:
                return
            if arrived.messages:
                channel.pause_for_more(
                    pause_after_read(
                        arrived.lines,
                        arrived.over,
                        news=self._news_awaited(),
                        at_most=self.wd.next_due(self._standby_wanted()),
                    )
                )

    def _drain(self) -> None:
        """After the exit: take what is still buffered, wait briefly for the workers."""
        channel = self.channel
        assert channel is not None
        channel.unwatch_exit()
        end = time.monotonic() + (0.3 if self.ending else DRAIN_TIMEOUT)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return
            arrived = channel.wait(left if channel.conns else 0.0)
            self._take(arrived)
            if not channel.conns and not (arrived.accepted or arrived.messages or arrived.closed):
                return

    def _take(self, arrived: Arrived) -> None:
        if arrived.messages:
            # what this read brought goes on as one batch of events (one trip through
            # the bus), before a lost connection's crash report
            self.ctx.begin_batch()
            try:
                for conn, messages in arrived.messages:
                    self.messages.handle(conn, messages)
            finally:
                self.ctx.end_batch()
        for conn in arrived.closed:
            self._lost(conn)

    def _news_awaited(self) -> bool:
        """Is a result someone waits for still to come: the tests run first after a
        fix (failed-first), or a run of chosen tests (a verify pass, a retry)?"""
        first = self._first_left
        if first:
            first.difference_update(self.state.done)
            if self.state.known:  # collected: an id it did not collect will not come
                first.intersection_update(self.state.known)
        return bool(first) or self.ctx.only is not None

    # -- what the watchdog decided -----------------------------------------------------
    def _standby_wanted(self) -> bool:
        assert self.procs is not None
        return not self.collect_only and wd.standby_worthwhile(
            maxfail=self.maxfail,
            failing=self.state.failing,
            have_standby=self.procs.standby is not None,
            workers=self.workers,
        )

    def _start_standby(self, number: int) -> None:
        """Start the pytest for a likely restart ahead of need: after a casualty, or
        while a test is past half its deadline."""
        if self._standby_wanted():
            assert self.procs is not None
            self.procs.start_standby(number, self.state.ignored)

    def _check_control(self) -> None:
        """Pass a pause/resume on to every process; a paused process waiting between
        tests is not timed (it is not stuck, it was asked to wait)."""
        control = self.ctx.control
        if control is None:
            return
        paused = control.paused
        assert self.channel is not None
        if paused != self.paused:
            self.paused = paused
            for conn in self.channel.conns.values():
                conn.ask("pause" if paused else "resume")
        if paused:
            self.wd.hold_idle()

    def _watch(self, attempt: Attempt) -> None:
        assert self.channel is not None
        control = self.ctx.control
        kills = control.kills_for(self.suite.name) if control is not None else ()
        for conn in list(self.channel.conns.values()) if kills else ():
            test = conn.track.test
            if test is not None and not test.reason and test.nodeid in kills:
                assert control is not None
                if control.take_kill(self.suite.name, test.nodeid):
                    self.wd.flag(conn.track, "killed")  # a person asked: as if hung
                    self._ask_dump(conn)
        for action in self.wd.check(self._standby_wanted()):
            if isinstance(action, wd.StandbyDue):
                self._start_standby(attempt.number + 1)
            elif isinstance(action, wd.AskDump):
                asked = self._conn_of(action.track)
                if asked is not None:
                    self._ask_dump(asked)
            elif isinstance(action, wd.Expired):
                self._expired(action, attempt)

    def _expired(self, action: wd.Expired, attempt: Attempt) -> None:
        period = action.period
        if period.what == wd.SPAWN:
            self._kill_stuck(
                attempt,
                f"pytest had not started after {period.deadline:g}s "
                "(a conftest or plugin that blocks while being imported?)",
                "",
            )
            return
        conn = self._conn_of(action.track)
        if conn is None:  # its connection ended meanwhile: the loss was recorded then
            self.wd.drop(action.track)
        elif period is action.track.finished:
            self._hung(conn, period, None)
        elif period.is_test:
            self._hung(conn, period, attempt)
        else:
            self._stuck(conn, period, attempt)

    def _controller(self) -> Conn | None:
        assert self.channel is not None
        return next((c for c in self.channel.conns.values() if c.controller), None)

    def _conn_of(self, track: wd.Track) -> Conn | None:
        assert self.channel is not None
        return next((c for c in self.channel.conns.values() if c.track is track), None)

    @staticmethod
    def _ask_dump(conn: Conn) -> None:
        """Ask, then SIGCONT: a stopped process (SIGSTOP) cannot answer until resumed,
        and finds the request waiting when it is."""
        conn.ask("dump")
        if conn.pid > 0 and not conn.remote:  # a remote pid is another machine's
            with contextlib.suppress(OSError):
                os.kill(conn.pid, signal.SIGCONT)

    def _dump_and_message(self, conn: Conn, period: wd.Period, doing: str) -> tuple[str, str, str]:
        """(the dump, the result's message, where it waited: ``core.waiting``)."""
        dump = conn.track.dump
        from supervisor.core.waiting import where_from_answer  # a hang: rare

        where = "" if dump is None else where_from_answer(conn.track.dump_data, period.nodeid)
        message = wd.hang_message(period, self.wd.elapsed(period), self.wd.silence, doing, where)
        return (wd.no_dump(self.wd.grace) if dump is None else dump), message, where

    def _is_worker(self, conn: Conn) -> bool:
        """An xdist worker: it can be ended alone, and xdist replaces it."""
        main = self.state.attempt.main_pid
        return bool(conn.worker) and conn.pid > 0 and (bool(conn.remote) or conn.pid != main)

    def _end_attempt(self, attempt: Attempt) -> None:
        """End the attempt's processes now (after a hang: the restart comes next)."""
        attempt.hung = True
        self.ending = True
        if attempt.proc is not None and self.procs is not None:
            self.procs.end_attempt(attempt.proc, attempt.number, STOP_GRACE)

    def _hung(self, conn: Conn, period: wd.Period, attempt: Attempt | None) -> None:
        """Record a hung test; end its process (``attempt``), unless it finished during
        the grace (``None``: it went on, nothing to end)."""
        dump, message, where = self._dump_and_message(conn, period, "still running")
        if attempt is None:
            message += " (it finished during the grace for its dump)"
        self.ctx.report(
            TestHung,
            self.suite.name,
            nodeid=period.nodeid,
            deadline=period.deadline,
            reason=period.reason,
            dump=dump,
            where=where,
        )
        if attempt is None:
            conn.track.finished = conn.track.dump = None
        else:
            conn.track.test = None
        self.state.result(
            period.nodeid,
            "hung",
            duration=self.wd.elapsed(period),
            started_at=period.started_at,
            message=message,
            dump=dump,
            worker=conn.worker,
        )
        if attempt is None:
            return
        if self._is_worker(conn):
            # only this worker goes; xdist replaces it and hands its tests to the others
            attempt.worker_losses += 1
            assert self.procs is not None
            if conn.remote:
                # closing its connection ends it there, with its process tree (the
                # relay closes its execnet channel: transport.ExecnetTransport.lost)
                self.wd.drop(conn.track)
                assert self.channel is not None
                self.channel.close(conn)
            else:
                self.procs.end_worker(conn.pid, attempt.main_pid, attempt.number)
            self.messages.watch_replacement(self._controller())
            return
        self._end_attempt(attempt)

    def _stuck(self, conn: Conn, period: wd.Period, attempt: Attempt) -> None:
        """A process stuck with no test running: record an error, end the attempt."""
        conn.track.other = None
        if period.what == wd.START or (period.what == wd.COLLECT and not period.nodeid):
            if period.what == wd.START:
                doing = "pytest was still starting up"
            else:
                doing = "pytest was still collecting (no test file being imported)"
            dump, message, _ = self._dump_and_message(conn, period, doing)
            self._kill_stuck(attempt, message, dump)
            return
        if period.what == wd.COLLECT:
            doing = f"still collecting {period.nodeid}"
            dump, message, _ = self._dump_and_message(conn, period, doing)
            self._collect_lost(conn, period, message, dump)
        else:
            doing, where = wd.stuck_doing(period, tests_left=bool(self.state.remaining()))
            dump, message, _ = self._dump_and_message(conn, period, doing)
            nodeid = f"{self.suite.name}::{where}"
            if nodeid not in self.state.done:  # once: the same hang again stops restarts
                self.state.result(
                    nodeid,
                    "error",
                    file="",
                    duration=self.wd.elapsed(period),
                    started_at=period.started_at,
                    message=message,
                    dump=dump,
                    worker=conn.worker,
                )
                attempt.casualties += 1  # the tests still to run (if any) get a new pytest
        self._end_attempt(attempt)

    def _kill_stuck(self, attempt: Attempt, message: str, dump: str) -> None:
        """Stuck before any test or file to blame: a startup error, no restart."""
        attempt.stuck = (message, dump)
        self._end_attempt(attempt)

    def _collect_lost(self, conn: Conn, period: wd.Period, message: str, dump: str) -> None:
        """A file hung (or its process died) while being imported: an error for that
        file, and pytest restarts without it."""
        state = self.state
        if period.path and period.path not in state.ignored:
            state.ignored.append(period.path)
        state.attempt.collect_hang = True
        if period.nodeid in state.done:
            return  # the other xdist worker, importing the same file
        tail = read_tail(state.attempt.log_path, 4000) if not dump else ""
        state.result(
            period.nodeid,
            "error",
            duration=self.wd.elapsed(period),
            started_at=period.started_at,
            message=message,
            longrepr=tail,
            dump=dump,
            worker=conn.worker,
        )

    def _lost(self, conn: Conn) -> None:
        """A connection ended: a test still in flight without ``fin`` died with it."""
        track = conn.track
        if track.finished is not None:  # a flagged test finished, its dump never came
            self._hung(conn, track.finished, None)
        self.wd.drop(track)
        attempt = self.state.attempt
        proc = attempt.proc
        main = proc is not None and conn.pid == proc.pid and not conn.remote
        ending = self.ending or self.stopped or self.cut
        loss = wd.loss(track, main=main, finished=conn.finished, ending=ending)
        test, other = track.test, track.other
        track.test = track.other = None
        if loss == wd.LOSS_COLLECT:
            assert proc is not None and other is not None
            self._wait(proc)
            why = f"pytest died while collecting {other.nodeid}"
            why += f" ({protocol.describe_exit(proc.returncode)})"
            self._log_synced(proc)
            self._collect_lost(conn, other, why, fatal_error(attempt.log_path))
            return
        if loss != wd.LOSS_CRASH or test is None:
            return
        if self._is_worker(conn):
            attempt.worker_losses += 1
            self.messages.watch_replacement(self._controller())
        if main:
            assert proc is not None
            self._wait(proc)
            why = protocol.describe_exit(proc.returncode)
            self._log_synced(proc)
        else:
            who = f"xdist worker {conn.worker}" if conn.worker else "a pytest process"
            why = f"{who} (pid {conn.pid}) died"
        tail = read_tail(attempt.log_path, 4000)
        fatal = fatal_error(attempt.log_path)
        where = _crash_where(why, fatal, test.nodeid)
        self.ctx.report(
            TestCrashed,
            self.suite.name,
            nodeid=test.nodeid,
            cause=why,
            dump=fatal,
            where=where.strip(),
        )
        self.state.result(
            test.nodeid,
            "crashed",
            duration=self.wd.elapsed(test),
            started_at=test.started_at,
            message=f"{why} while running this test{where}",
            longrepr=tail,
            dump=fatal,
            worker=conn.worker,
        )

    @staticmethod
    def _wait(proc: subprocess.Popen) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5.0)

    def _log_synced(self, proc: subprocess.Popen) -> None:
        if self.procs is not None:
            self.procs.log_synced(proc.pid, 1.0)


def _crash_where(why: str, fatal: str, nodeid: str) -> str:
    """`` (SIGSEGV) at tests/a.py:9 in test_x: ctypes.string_at(0)``: the signal when
    ``why`` does not name it, and the test's frame in faulthandler's report."""
    import linecache

    from supervisor.core.waiting import crash_where, signal_name  # a crash: rare

    sig = signal_name(fatal) if not signal_name(why) else ""
    where = crash_where(fatal, nodeid, linecache.getline) if fatal else ""
    return (f" ({sig})" if sig else "") + (f" {where}" if where else "")
