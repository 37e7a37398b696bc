"""Deadlines, silence, grace and escalation: when a test is hung, and what then.

Plain logic over plain data and an injectable clock: no sockets, no processes, no
threads. A runner keeps one :class:`Track` per process it hears from (a pytest
process, an xdist worker), records in it what the process is doing as a
:class:`Period` (a test, or a stretch with no test: starting, collecting a file,
idle between tests, exiting), and calls :meth:`Watchdog.check` whenever it wakes. The
answer says what to do now:

* :class:`AskDump` — a period just went past its deadline, or its process went silent
  for ``silence`` seconds, or a person asked to kill it: ask the process for a dump
  (thread stacks, asyncio await chains). Escalation has begun.
* :class:`Expired` — the dump arrived, or ``grace`` passed without one: record the
  period (``hung``, or an error for a stretch) and kill.
* :class:`StandbyDue` — a test passed ``standby_at`` of its deadline: a restart is
  likely, start a standby pytest ahead of need.

:meth:`Watchdog.next_due` tells the runner how long it may sleep, so a deadline is
acted on when it is due, not a tick later. The functions at the end decide what a
lost process means and whether pytest is started again; the runner only carries out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

#: a test past this share of its deadline: a standby pytest is worth starting
STANDBY_AT = 0.5
#: how long a runner sleeps at most when nothing is due (stop requests, pauses)
TICK = 0.2

#: what a process can be doing under a deadline
TEST, SPAWN, START, COLLECT, IDLE, EXIT = "test", "spawn", "start", "collect", "idle", "exit"
REPLACE, ENDING = "replace", "ending"


@dataclass
class Period:
    """Something a process is doing under a deadline.

    ``what`` is :data:`TEST` (``nodeid`` runs), :data:`SPAWN` (pytest was started and
    has not connected yet: nothing to ask for a dump), :data:`START` (configuring, up
    to its session start), :data:`COLLECT` (importing the file ``nodeid`` at ``path``,
    or before the first file when ``nodeid`` is empty), :data:`IDLE` (running tests by
    itself, between two of them), :data:`ENDING` (its session finished: pytest writes
    its report and runs the plugins' last hooks), :data:`EXIT` (all that is done: the
    process has only to exit) or :data:`REPLACE` (an xdist controller that lost a
    worker: it must go on, a test starting somewhere, before the deadline).
    """

    what: str
    nodeid: str
    t0: float
    deadline: float
    started_at: str = ""
    path: str = ""
    #: a test whose coming teardown ends fixtures of this scope (a hang there is theirs)
    shared_teardown: str = ""
    #: why it is being acted on: "" (not yet), deadline, silence, killed
    reason: str = ""
    flagged_at: float = 0.0

    @property
    def is_test(self) -> bool:
        return self.what == TEST


@dataclass
class Track:
    """What the watchdog knows of one process: its period and when it was last heard."""

    test: Period | None = None
    other: Period | None = None  # no test running: starting, collecting, idle, exiting
    #: a flagged test that finished while its dump was awaited: still hung, and
    #: recorded once the dump arrives or the grace is over (its process went on)
    finished: Period | None = None
    last_seen: float = 0.0
    dump: str | None = None  # the answer to the last dump request
    #: the same answer's stacks as data (``{"stacks", "roots"}``; see ``core.waiting``)
    dump_data: dict[str, object] | None = None
    dumpable: bool = True  # a process we can talk to (a pytest not yet connected cannot)

    @property
    def active(self) -> Period | None:
        return self.test or self.other


@dataclass(frozen=True)
class AskDump:
    track: Track
    period: Period


@dataclass(frozen=True)
class Expired:
    track: Track
    period: Period


@dataclass(frozen=True)
class StandbyDue:
    track: Track
    period: Period


Action = AskDump | Expired | StandbyDue


@dataclass
class Watchdog:
    """Decides, from the tracks and the clock, which process is hung and when to act."""

    silence: float
    grace: float
    clock: Callable[[], float] = time.monotonic
    standby_at: float = STANDBY_AT
    tracks: list[Track] = field(default_factory=list)

    # -- what the runner tells it ------------------------------------------------------
    def track(self, dumpable: bool = True) -> Track:
        """A new process to watch (heard from now)."""
        track = Track(last_seen=self.clock(), dumpable=dumpable)
        self.tracks.append(track)
        return track

    def drop(self, track: Track) -> None:
        """The process is gone (or no longer ours to watch)."""
        if track in self.tracks:
            self.tracks.remove(track)

    def period(
        self, what: str, nodeid: str, deadline: float, started_at: str = "", path: str = ""
    ) -> Period:
        """A period that starts now."""
        return Period(what, nodeid, self.clock(), deadline, started_at, path)

    def heard(self, track: Track) -> None:
        """A message arrived from the process: it is not silent."""
        track.last_seen = self.clock()

    def flag(self, track: Track, reason: str) -> AskDump | None:
        """Begin the escalation of the track's period now (a person's kill request)."""
        period = track.active
        if period is None or period.reason:
            return None
        return self._flag(track, period, reason)

    def hold_idle(self) -> None:
        """While paused, a process waiting between tests is not timed."""
        now = self.clock()
        for track in self.tracks:
            if track.other is not None and track.other.what == IDLE:
                track.other.t0 = now

    # -- what the watchdog answers -----------------------------------------------------
    def check(self, standby_wanted: bool = False) -> list[Action]:
        """What to do now. At most one :class:`Expired` per call: acting on it (a
        kill) changes what the others are doing."""
        now = self.clock()
        actions: list[Action] = []
        for track in list(self.tracks):
            done = track.finished
            if done is not None and (track.dump is not None or now - done.flagged_at >= self.grace):
                return [*actions, Expired(track, done)]
            period = track.active
            if period is None:
                continue
            if not period.reason:
                if (
                    standby_wanted
                    and period.is_test
                    and now - period.t0 >= period.deadline * self.standby_at
                ):
                    actions.append(StandbyDue(track, period))
                    standby_wanted = False
                if now - period.t0 > period.deadline:
                    reason = "deadline"
                elif track.dumpable and now - track.last_seen > self.silence:
                    reason = "silence"
                else:
                    continue
                action = self._flag(track, period, reason)
                if not track.dumpable:
                    return [*actions, Expired(track, period)]
                actions.append(action)
            elif track.dump is not None or now - period.flagged_at >= self.grace:
                return [*actions, Expired(track, period)]
        return actions

    def next_due(self, standby_wanted: bool = False) -> float:
        """Seconds until the next thing could be due (at most :data:`TICK`)."""
        now = self.clock()
        wait = TICK
        for track in self.tracks:
            if track.finished is not None:
                wait = min(wait, track.finished.flagged_at + self.grace - now)
            period = track.active
            if period is None:
                continue
            if period.reason:
                due = period.flagged_at + self.grace
            else:
                due = period.t0 + period.deadline
                if standby_wanted and period.is_test:
                    due = min(due, period.t0 + period.deadline * self.standby_at)
                if track.dumpable:
                    due = min(due, track.last_seen + self.silence)
            wait = min(wait, due - now)
        return max(wait, 0.002)

    def elapsed(self, period: Period) -> float:
        return self.clock() - period.t0

    def _flag(self, track: Track, period: Period, reason: str) -> AskDump:
        period.reason = reason
        period.flagged_at = self.clock()
        track.dump = None
        return AskDump(track, period)


# --------------------------------------------------------------------------- texts


def hang_message(
    period: Period, elapsed: float, silence: float, doing: str = "", where: str = ""
) -> str:
    """The one-line ``results.message`` of a hung test or a stuck stretch; ``where``
    (``at tests/a.py:9 in test_x: ws.recv() → …``, see ``core.waiting``) names the
    line it waited on: a test past its deadline reads ``hung 5s at …``."""
    doing = doing or "still running"
    if period.reason == "killed":
        message = f"killed by the user after {elapsed:.1f}s (deadline {period.deadline:g}s)"
    elif period.reason == "silence":
        message = f"the test process was silent for more than {silence:g}s"
    elif where and period.is_test:
        message = f"hung {period.deadline:g}s"
    else:
        message = f"{doing} after its deadline of {period.deadline:g}s"
    if where:
        message += f" {where}"
    if period.shared_teardown:
        scope = period.shared_teardown
        message += (
            f", in the teardown after its call, which also ends {scope}-scoped fixtures:"
            f" most likely a {scope} fixture's teardown hangs (see the dump)"
        )
    return message


def no_dump(grace: float) -> str:
    return f"(no dump: the test process did not answer within {grace:g}s)"


def stuck_doing(period: Period, tests_left: bool) -> tuple[str, str]:
    """(what pytest was doing, the pseudo test id's suffix) for a stuck stretch that is
    neither a test nor a file's import."""
    if period.what == EXIT:
        return "pytest had not exited", "(session teardown)"
    if period.what == ENDING:
        return (
            "pytest was still ending its session (its terminal summary, or a plugin's"
            " sessionfinish or unconfigure hook)",
            "(session teardown)",
        )
    if period.what == REPLACE:
        return "xdist had not gone on after losing a worker", "(between tests)"
    if tests_left:
        return "pytest was stuck between two tests", "(between tests)"
    return "pytest was stuck after its last test", "(session teardown)"


# --------------------------------------------------------------------------- decisions

#: what a lost connection means
LOSS_NONE, LOSS_COLLECT, LOSS_CRASH = "none", "collect", "crash"


def loss(track: Track, *, main: bool, finished: bool, ending: bool) -> str:
    """What the end of a process's connection means.

    A process that said its session finished, or that we are ending, lost nothing.
    The main pytest process dying while importing a file blames the file (an xdist
    worker may be ended by xdist while it collects, so only the main one). A process
    that dies in a test crashed it.
    """
    if finished or ending:
        return LOSS_NONE
    other = track.other
    if main and track.test is None and other and other.what == COLLECT and other.nodeid:
        return LOSS_COLLECT
    return LOSS_CRASH if track.test is not None else LOSS_NONE


#: what happens after a pytest process ended
AGAIN_WITHOUT_FILES, STOP_AT_MAXFAIL, AGAIN_ON_REMAINING, FINISH = (
    "without-files",
    "maxfail",
    "remaining",
    "finish",
)


@dataclass(frozen=True)
class AttemptEnd:
    """How one pytest process ended, as far as the restart decision needs."""

    number: int
    collect_hang: bool  # a file hung or killed pytest while being imported
    cut_short: bool  # pytest died or was killed, or xdist gave up replacing workers
    casualties: int  # tests (or stretches) recorded hung or crashed in it
    remaining: int  # collected tests still without a result
    failing: int  # failed, error, hung, crashed results so far in the suite
    maxfail: int  # -x / --maxfail=N in the suite's args (0: none)


def after_attempt(end: AttemptEnd, max_restarts: int) -> str:
    """Start pytest again (without the files that hung, or on the tests that had not
    run), stop because pytest itself would have (``-x``/``--maxfail``), or finish."""
    if end.number <= max_restarts and end.collect_hang:
        return AGAIN_WITHOUT_FILES
    if not (end.cut_short and end.remaining):
        return FINISH
    if end.maxfail and end.failing >= end.maxfail:
        return STOP_AT_MAXFAIL
    if end.casualties and end.number <= max_restarts:
        return AGAIN_ON_REMAINING
    return FINISH


def standby_worthwhile(*, maxfail: int, failing: int, have_standby: bool, workers: int) -> bool:
    """A standby pytest can take over after a hang: not when one more failure ends the
    suite anyway (``-x``/``--maxfail``), not under xdist (it replaces workers itself)."""
    if maxfail and failing + 1 >= maxfail:
        return False
    return not have_standby and workers <= 1
