"""Child messages → events, and what each process is doing for the watchdog.

Every message type of the child protocol (``protocol.py``) is folded here: a test's
start and its phases become ``TestStarted``/``TestResult`` events, collected ids
become ``TestsCollected``, and each message moves the process's watchdog
:class:`~supervisor.core.watchdog.Track` to what it does next (a test, collecting a
file, idle between tests, exiting). Nothing here touches a socket or a process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from supervisor.core import watchdog as wd
from supervisor.core.events import TestsCollected, TestStarted, utc_at, utc_now
from supervisor.runners.pytest import protocol

if TYPE_CHECKING:
    from supervisor.runners.pytest.channel import Conn
    from supervisor.runners.pytest.state import SuiteState


#: at least this long for an xdist controller to go on after losing a worker
REPLACE_DEADLINE = 30.0
#: at least this long for pytest to write its report once its session finished (the
#: failures' tracebacks of a large suite take a while; a test's deadline is no measure)
ENDING_DEADLINE = 30.0


class Messages:
    """Folds one suite run's child messages into events and watchdog periods."""

    def __init__(
        self,
        state: SuiteState,
        watchdog: wd.Watchdog,
        *,
        default_deadline: float,
        stretch_deadline: float,
        paused: Callable[[], bool],
    ) -> None:
        self.state = state
        self.wd = watchdog
        self.default_deadline = default_deadline
        #: importing one file, or the stretch between two tests / before exiting: not
        #: a test, so not held to a (possibly tight) per-test deadline
        self.stretch_deadline = stretch_deadline
        self.paused = paused
        #: the xdist controller's track while it replaces a lost worker (see watching)
        self.replacing: wd.Track | None = None
        #: while a batch is handled: its arrival time as text (one clock read per batch,
        #: not per message) and the processes that went idle in it (their idle period
        #: is made once, at the batch's end, not once per test and thrown away)
        self._stamp: str | None = None
        self._in_batch = False
        self._idle: list[Conn] = []
        #: the starts of this batch, reported at its end for the tests still running
        #: then, when no consumer wants every start (``RunContext.every_start``)
        self._starts: list[tuple[Conn, wd.Period]] = []
        self._handlers: dict[str, Callable[[Conn, dict], None]] = {
            "start": self._start,
            "done": self._done,
            "hb": lambda conn, msg: None,  # being heard is all a heartbeat says
            "td": self._teardown_scope,
            "cfile": self._collecting_file,
            "coll": self._collected,
            "cerr": self._collect_error,
            "hello": self._hello,
            "sess": self._session,
            "dump": self._dump,
            "fin": self._fin,
            "bye": self._bye,
        }

    def handle(self, conn: Conn, messages: list[dict]) -> None:
        """One connection's batch of messages (what one read brought)."""
        self.wd.heard(conn.track)
        handlers = self._handlers
        self._stamp, self._in_batch = None, True
        try:
            for msg in messages:
                handler = handlers.get(msg.get("t"))  # type: ignore[arg-type]
                if handler is not None:
                    handler(conn, msg)
        finally:
            self._stamp, self._in_batch = None, False
            starts, self._starts = self._starts, []
            for started_conn, period in starts:
                if started_conn.track.test is period:  # no result of it came in this read
                    self._report_start(started_conn, period)
            idle, self._idle = self._idle, []
            for went in idle:
                track = went.track
                if track.test is None and track.other is None:  # nothing came after it
                    self.between(went, wd.IDLE)

    def now(self) -> str:
        """UTC text of this batch's arrival (a result's ``started_at`` when its start
        came in the same read): one clock read per batch."""
        stamp = self._stamp
        if stamp is None:
            stamp = utc_now()
            if self._in_batch:
                self._stamp = stamp
        return stamp

    def stretch(self, what: str, nodeid: str = "", path: str = "") -> wd.Period:
        return self.wd.period(what, nodeid, self.stretch_deadline, self.now(), path)

    def watch_replacement(self, controller: Conn | None) -> None:
        """A worker was lost: the controller must go on (some test starts, or its
        session ends) within the stretch deadline, or the attempt is stuck (a process
        holding the lost worker's pipes keeps xdist from noticing, for one)."""
        if controller is not None and controller.track.other is None:
            # generous: ending a worker that ignores SIGTERM takes its grace, and xdist
            # then starts a new interpreter; this only catches a controller that is stuck
            deadline = max(self.stretch_deadline, REPLACE_DEADLINE)
            controller.track.other = self.wd.period(wd.REPLACE, "", deadline, utc_now())
            self.replacing = controller.track

    def _went_on(self) -> None:
        if self.replacing is not None:
            if self.replacing.other is not None and self.replacing.other.what == wd.REPLACE:
                self.replacing.other = None
            self.replacing = None

    def between(self, conn: Conn, what: str) -> None:
        """A process running tests by itself (no xdist) is timed between tests too.

        An xdist worker legitimately waits for work, and its controller for workers.
        """
        if conn.worker or conn.controller or conn.finished or self.state.collect_only:
            return
        if self._in_batch and what == wd.IDLE:
            conn.track.other = None
            self._idle.append(conn)  # made at the batch's end unless a start comes first
            return
        conn.track.other = self.stretch(what)

    # -- the messages ------------------------------------------------------------------
    def _start(self, conn: Conn, msg: dict) -> None:
        nodeid = str(msg.get("i", ""))
        own = msg.get("to")
        deadline = float(own) if isinstance(own, (int, float)) and own > 0 else None
        if deadline is None:
            deadline = self.default_deadline
        track = conn.track
        # when it started, by the child's clock: the batch's arrival is up to a pause
        # (50 ms) later and the same for every test in it (a remote host's clock may
        # differ from ours: its tests get the arrival)
        at = msg.get("at")
        started = utc_at(at) if type(at) is float and not conn.remote else self.now()
        track.test = period = self.wd.period(wd.TEST, nodeid, deadline, started)
        track.other = None
        self._went_on()
        if track.finished is None:  # else the dump awaited is the finished test's
            track.dump = None
        if self._in_batch and not self.state.ctx.every_start:
            self._starts.append((conn, period))
        else:
            self._report_start(conn, period)

    def _report_start(self, conn: Conn, period: wd.Period) -> None:
        state = self.state
        state.ctx.report(
            TestStarted,
            state.suite.name,
            nodeid=period.nodeid,
            worker=conn.worker,
            deadline=period.deadline,
        )

    def _done(self, conn: Conn, msg: dict) -> None:
        nodeid = str(msg.get("i", ""))
        current = conn.track.test
        if current is not None and current.nodeid == nodeid and current.reason:
            # the watchdog had flagged it (past its deadline, silent, a kill asked) and
            # it finished while its dump was awaited: it is recorded hung all the same
            conn.track.finished, conn.track.test = current, None
            self.between(conn, wd.IDLE)
            return
        started_at = current.started_at if current and current.nodeid == nodeid else self.now()
        conn.track.test = None
        if nodeid not in self.state.casualties:  # else: it finished as it was recorded hung
            d = msg.get("d")
            passed_for = float(d) if type(d) is float or type(d) is int else 0.0
            folded = protocol.fold_phases(msg.get("p") or [], msg.get("s"), passed_for)
            self.state.result(
                nodeid,
                folded.outcome,
                duration=folded.duration,
                started_at=started_at,
                message=folded.message,
                longrepr=folded.longrepr,
                worker=conn.worker,
            )
        self.between(conn, wd.IDLE)

    def _teardown_scope(self, conn: Conn, msg: dict) -> None:
        current = conn.track.test
        if current is not None and current.nodeid == msg.get("i"):
            current.shared_teardown = str(msg.get("sc") or "")

    def _collecting_file(self, conn: Conn, msg: dict) -> None:
        other = conn.track.other
        if other is not None and other.what == wd.COLLECT:
            conn.track.other = self.stretch(
                wd.COLLECT, str(msg.get("i") or ""), path=str(msg.get("f") or "")
            )

    def _collected(self, conn: Conn, msg: dict) -> None:
        conn.track.other = None
        self.between(conn, wd.IDLE)
        state = self.state
        new = [n for n in msg.get("ids", ()) if n not in state.known]
        if new:
            state.known.update(new)
            state.order.extend(new)
            if not state.collect_only:
                state.ctx.report(TestsCollected, state.suite.name, nodeids=tuple(new))

    def _collect_error(self, conn: Conn, msg: dict) -> None:
        nodeid = str(msg.get("i", ""))
        if nodeid not in self.state.done and not self.state.collect_only:
            self.state.result(
                nodeid,
                protocol.collect_outcome(str(msg.get("o"))),
                started_at=self.now(),
                message=str(msg.get("m") or ""),
                longrepr=str(msg.get("l") or ""),
                worker=conn.worker,
            )

    def _hello(self, conn: Conn, msg: dict) -> None:
        conn.pid = int(msg.get("pid") or 0)
        conn.worker = str(msg.get("w") or "")
        conn.remote = str(msg.get("r") or "")
        if conn.remote:  # results.worker says where it ran: "gw2 on ci@runner-1"
            conn.worker = f"{conn.worker or '?'} on {conn.remote}"
        conn.track.other = self.stretch(wd.START)  # configuring, up to its session start
        attempt = self.state.attempt
        if attempt.spawn_track is not None:  # it started: the start-up timer is done
            self.wd.drop(attempt.spawn_track)
            attempt.spawn_track = None
        if self.paused():
            conn.ask("pause")

    def _session(self, conn: Conn, msg: dict) -> None:
        conn.session = self.state.attempt.session = True
        conn.controller = bool(msg.get("ctl"))
        # an xdist controller collects nothing itself
        conn.track.other = None if conn.controller else self.stretch(wd.COLLECT)

    def _dump(self, conn: Conn, msg: dict) -> None:
        conn.track.dump = str(msg.get("text") or "")
        conn.track.dump_data = {"stacks": msg.get("stacks"), "roots": msg.get("roots")}

    def _fin(self, conn: Conn, msg: dict) -> None:
        conn.finished = True
        self._went_on()
        status = msg.get("s")
        conn.exitstatus = status if isinstance(status, int) else None
        conn.track.other = None
        attempt = self.state.attempt
        if attempt.proc is not None and conn.pid == attempt.proc.pid and not conn.remote:
            attempt.main_finished = True
            attempt.exitstatus = conn.exitstatus
            # now it writes its report (the terminal summary comes after the session's
            # end) and runs the plugins' last hooks, then ``bye``. (Not timed: an xdist
            # worker after its session, which waits for the controller to end it;
            # xdist's own teardown kills one that does not go within its EXIT_TIMEOUT.)
            deadline = max(self.stretch_deadline, ENDING_DEADLINE)
            conn.track.other = self.wd.period(wd.ENDING, "", deadline, self.now())

    def _bye(self, conn: Conn, msg: dict) -> None:
        """The main process's report is written and its plugins unconfigured: now it
        has only to exit, within the stretch deadline (a non-daemon thread or an
        atexit handler that blocks is the usual culprit)."""
        other = conn.track.other
        if conn.finished and other is not None and other.what == wd.ENDING:
            conn.track.other = self.stretch(wd.EXIT)
