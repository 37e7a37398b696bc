"""Expected counts and ETAs, from the history's per-test durations.

Before a suite has collected, the count it had last time is the best guess of its
size. While a phase runs, what is left is its tests without a result yet, each at the
median of its last :data:`RECENT` durations (a test without history at the phase's
median), divided by the suite's workers. Plain logic over plain data with an
injectable clock: the session seeds :class:`TestTimes` from the history once, then
the :class:`Estimator` folds the run's events (O(1) per result) and views read it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from supervisor.core.bus import Emitter, many_of
from supervisor.core.events import (
    DeployFinished,
    Event,
    IterationFinished,
    IterationStarted,
    PhaseFinished,
    PhaseStarted,
    TestResult,
    TestsCollected,
    TestStarted,
)

#: how many recent durations of a test its estimate is the median of
RECENT = 5

#: one history row: (suite, nodeid, id of the latest iteration with a result of the
#: test outside a verify pass (None: none), its last RECENT non-skipped durations,
#: newest first)
HistoryRow = tuple[str, str, int | None, tuple[float, ...]]


def median(values: Iterable[float]) -> float | None:
    """The median (None when empty); plain, so the core imports no ``statistics``."""
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        return None
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def format_eta(seconds: float) -> str:
    """Whole seconds under a minute (a ticking tenth is noise), then ``1m20s``, ``2h05m``."""
    whole = math.ceil(round(max(0.0, seconds), 3))  # 80.00000000000006 is 80
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class TestTimes:
    """Per suite, the tests of its latest run and each test's recent durations.

    Not locked: the :class:`Estimator` that owns it is.
    """

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        #: suite -> nodeid -> its last RECENT non-skipped durations, oldest first
        #: (empty: the test has results, every one of them skipped)
        self._recent: dict[str, dict[str, tuple[float, ...]]] = {}
        #: suite -> the nodeids of its latest run (the count it had last time)
        self._expected: dict[str, tuple[str, ...]] = {}
        #: suite -> nodeid -> the median of its recent durations, worked out when first
        #: asked for (a phase start asks for thousands) and forgotten when the test
        #: gets a result: a result costs no sorting, a phase start one per test at most
        self._estimate: dict[str, dict[str, float]] = {}

    def seed(self, rows: Iterable[HistoryRow]) -> None:
        """What the history holds (:data:`HistoryRow`). A suite's expected tests are
        those with a result in the latest iteration it ran in (verify passes aside)."""
        latest: dict[str, int] = {}
        last_of: list[tuple[str, str, int]] = []
        for suite, nodeid, last, durations in rows:
            if last is None and not durations:
                continue
            self._recent.setdefault(suite, {})[nodeid] = tuple(reversed(durations[:RECENT]))
            if last is not None:
                last_of.append((suite, nodeid, last))
                latest[suite] = max(last, latest.get(suite, last))
        expected: dict[str, list[str]] = {}
        for suite, nodeid, last in last_of:
            if last == latest[suite]:
                expected.setdefault(suite, []).append(nodeid)
        self._expected.update((suite, tuple(ids)) for suite, ids in expected.items())

    def add(self, suite: str, nodeid: str, outcome: str, duration: float | None) -> None:
        """One result of this run (skipped results count for nothing but presence)."""
        tests = self._recent.setdefault(suite, {})
        old = tests.get(nodeid, ())
        if outcome == "skipped" or duration is None:
            tests[nodeid] = old
        else:
            tests[nodeid] = (*old[1 - RECENT :], duration)
        known = self._estimate.get(suite)
        if known is not None:
            known.pop(nodeid, None)

    def estimate(self, suite: str, nodeid: str) -> float | None:
        """The median of the test's recent durations; 0 when it only ever skipped;
        None when it has no history."""
        known = self._estimate.setdefault(suite, {})
        value = known.get(nodeid)
        if value is None:
            recent = self._recent.get(suite, {}).get(nodeid)
            if recent is None:
                return None
            value = known[nodeid] = median(recent) or 0.0
        return value

    def phase_median(self, suites: Iterable[str]) -> float | None:
        """The median of the estimates of every test of ``suites`` that ran."""
        values: list[float] = []
        for suite in suites:
            for nodeid, recent in self._recent.get(suite, {}).items():
                if recent:  # a test that only ever skipped: left out
                    values.append(self.estimate(suite, nodeid) or 0.0)
        return median(values)

    def expected(self, suite: str) -> tuple[str, ...]:
        return self._expected.get(suite, ())

    def collected(self, suite: str, nodeids: tuple[str, ...], first: bool) -> None:
        """A suite's collection in this run is its size from now on (``first``: the
        first chunk of this suite's run replaces what was expected)."""
        self._expected[suite] = nodeids if first else self._expected.get(suite, ()) + nodeids


@dataclass(frozen=True)
class PhaseEstimate:
    """What a phases row shows besides its counts."""

    #: tests of the phase's suites that have not collected yet, as many as last time
    expected: int = 0
    #: seconds left (None: no history to tell, or the phase is over)
    eta: float | None = None


class _SuiteLeft:
    """One suite of the running phase: its tests without a result, each at its estimate."""

    __slots__ = ("pending", "left", "unknown", "collected", "size", "workers", "done")

    def __init__(self, workers: int) -> None:
        self.pending: dict[str, float | None] = {}
        self.size = 0  # tests expected before it collects (the count it had last time)
        self.left = 0.0  # the sum of the known estimates in ``pending``
        self.unknown = 0  # pending tests without an estimate
        self.collected = False
        self.workers = max(1, workers)
        self.done: set[str] = set()

    def fill(self, nodeids: Iterable[str], estimate: Callable[[str], float | None]) -> None:
        for nodeid in nodeids:
            if nodeid in self.done or nodeid in self.pending:
                continue
            value = estimate(nodeid)
            self.pending[nodeid] = value
            if value is None:
                self.unknown += 1
            else:
                self.left += value

    def clear(self) -> None:
        self.pending.clear()
        self.left, self.unknown = 0.0, 0

    def finish(self, nodeid: str) -> None:
        """O(1): the test has a result; its estimate leaves the sum."""
        self.done.add(nodeid)
        if nodeid not in self.pending:
            return  # not expected (or a second attempt): nothing was counted for it
        value = self.pending.pop(nodeid)
        if value is None:
            self.unknown -= 1
        elif self.pending:
            self.left -= value
        else:
            self.left = 0.0  # no float drift left behind


class _PhaseLeft:
    def __init__(self, suites: dict[str, _SuiteLeft], typical: float | None, learns: bool):
        self.suites = suites
        self.typical = typical  # the phase's median: the estimate of a test without history
        self.learns = learns  # a planned phase: its collections are its suites' sizes
        self.running: dict[tuple[str, str], float] = {}  # (suite, nodeid) -> started
        self.finished = False

    def expected(self) -> int:
        return sum(s.size for s in self.suites.values() if not s.collected)

    def eta(self, now: float) -> float | None:
        if self.finished:
            return None
        total = 0.0
        for suite in self.suites.values():
            if suite.unknown:
                return None
            total += suite.left / suite.workers
        for (name, nodeid), started in self.running.items():
            suite = self.suites[name]
            # a test past its estimate is "due any moment": never a negative share
            total -= min(now - started, suite.pending.get(nodeid) or 0.0) / suite.workers
        return max(0.0, total)


class Estimator:
    """Expected counts and ETAs of the running iteration; subscribe it to the bus.

    ``plan`` is the iteration's phases in order, (name, suite names); ``workers`` the
    parallelism of each suite (xdist workers); ``deploy`` the typical deploy time (a
    median of the history's, None when unknown). Reads take ``now`` on the same
    monotonic clock as ``TestStarted.at``.
    """

    def __init__(
        self,
        times: TestTimes | None = None,
        plan: Iterable[tuple[str, tuple[str, ...]]] = (),
        workers: Mapping[str, int] | None = None,
        deploy: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.times = times or TestTimes()
        self.plan = tuple((name, tuple(suites)) for name, suites in plan)
        self.workers = dict(workers or {})
        self.deploy = deploy
        self.clock = clock
        self._lock = threading.Lock()
        self._iteration = 0
        self._started: float | None = None  # None: no iteration running
        self._deployed = False
        self._future: list[float | None] = []  # estimates of the plan's phases
        self._cursor = 0  # plan phases started so far in this iteration
        self._phases: dict[int, _PhaseLeft] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            TestResult: self._result,
            TestStarted: self._test_started,
            TestsCollected: self._collected,
            PhaseStarted: self._phase_started,
            PhaseFinished: self._phase_finished,
            DeployFinished: self._deploy_finished,
            IterationStarted: self._iteration_started,
            IterationFinished: self._iteration_finished,
        }

    # ------------------------------------------------------------------ reading

    def iteration_estimate(self) -> float | None:
        """Seconds a fresh iteration should take: the deploy and every planned phase.
        None when a phase's tests have no history."""
        with self._lock:
            return self._total(self._plan_estimates(), (self.deploy or 0.0))

    def phase(self, seq: int, now: float | None = None) -> PhaseEstimate:
        with self._lock:
            return self._phase_estimate(seq, self.clock() if now is None else now)

    def phases(self, now: float | None = None) -> tuple[dict[int, PhaseEstimate], float | None]:
        """Every phase of the iteration and the iteration's ETA, under one lock."""
        now = self.clock() if now is None else now
        with self._lock:
            rows = {seq: self._phase_estimate(seq, now) for seq in self._phases}
            return rows, self._iteration_eta(now)

    def iteration_eta(self, now: float | None = None) -> float | None:
        with self._lock:
            return self._iteration_eta(self.clock() if now is None else now)

    def _phase_estimate(self, seq: int, now: float) -> PhaseEstimate:
        phase = self._phases.get(seq)
        if phase is None or phase.finished:
            return PhaseEstimate()
        return PhaseEstimate(phase.expected(), phase.eta(now))

    def _iteration_eta(self, now: float) -> float | None:
        if self._started is None:
            return None
        deploy = 0.0
        if not self._deployed:
            deploy = max(0.0, (self.deploy or 0.0) - (now - self._started))
        parts = [p.eta(now) for p in self._phases.values() if not p.finished]
        return self._total(parts + self._future[self._cursor :], deploy)

    @staticmethod
    def _total(parts: Iterable[float | None], start: float) -> float | None:
        total = start
        for part in parts:
            if part is None:
                return None
            total += part
        return total

    def _plan_estimates(self) -> list[float | None]:
        """Each planned phase as it would start now (O(its tests))."""
        return [self._start_phase(suites, learns=True).eta(0.0) for _, suites in self.plan]

    def _start_phase(self, suites: tuple[str, ...], learns: bool) -> _PhaseLeft:
        times = self.times
        typical = times.phase_median(suites)
        left: dict[str, _SuiteLeft] = {}
        for name in suites:
            suite = left[name] = _SuiteLeft(self.workers.get(name, 1))
            # a phase outside the plan (a verify pass) runs only some of its suites'
            # tests: its size is what it collects, not what they had last time
            expected = times.expected(name) if learns else ()
            if not expected:
                suite.unknown = 1  # its size is unknown until it collects
                continue

            def estimate(nodeid: str, name: str = name) -> float | None:
                value = times.estimate(name, nodeid)
                return typical if value is None else value

            suite.fill(expected, estimate)
            suite.size = len(expected)
        return _PhaseLeft(left, typical, learns)

    # ------------------------------------------------------------------ folding

    def __call__(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            with self._lock:
                handler(event)

    def many(self, events: list[Event]) -> None:
        """:meth:`__call__` for a batch, under one lock."""
        handlers = self._handlers
        with self._lock:
            for event in events:
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(event)

    def _iteration_started(self, e: IterationStarted) -> None:
        self._iteration = e.iteration
        self._started = self.clock()
        self._deployed = False
        self._future = self._plan_estimates()
        self._cursor = 0
        self._phases = {}

    def _deploy_finished(self, e: DeployFinished) -> None:
        self._deployed = True

    def _iteration_finished(self, e: IterationFinished) -> None:
        self._started = None
        for phase in self._phases.values():
            phase.finished = True

    def _phase_started(self, e: PhaseStarted) -> None:
        names = [name for name, _ in self.plan]
        planned = e.name in names[self._cursor :]
        if planned:
            self._cursor = names.index(e.name, self._cursor) + 1
        self._deployed = True  # phases run after the deploy, whatever it reported
        self._phases[e.phase] = self._start_phase(tuple(e.suites), learns=planned)

    def _phase_finished(self, e: PhaseFinished) -> None:
        phase = self._phases.get(e.phase)
        if phase is not None:
            phase.finished = True
            phase.running.clear()

    def _collected(self, e: TestsCollected) -> None:
        phase = self._phases.get(e.phase) if e.iteration == self._iteration else None
        if phase is None or phase.finished:
            return
        suite = phase.suites.get(e.suite)
        if suite is None:
            suite = phase.suites[e.suite] = _SuiteLeft(self.workers.get(e.suite, 1))
        first = not suite.collected
        if first:  # what it collects replaces what it had last time
            suite.clear()
            suite.collected = True
        if phase.learns:
            self.times.collected(e.suite, e.nodeids, first)
        times, typical = self.times, phase.typical

        def estimate(nodeid: str) -> float | None:
            value = times.estimate(e.suite, nodeid)
            return typical if value is None else value

        suite.fill(e.nodeids, estimate)

    def _test_started(self, e: TestStarted) -> None:
        phase = self._phases.get(e.phase) if e.iteration == self._iteration else None
        if phase is not None and not phase.finished and e.suite in phase.suites:
            phase.running[(e.suite, e.nodeid)] = e.at

    def _result(self, e: TestResult) -> None:
        self.times.add(e.suite, e.nodeid, e.outcome, e.duration)
        phase = self._phases.get(e.phase) if e.iteration == self._iteration else None
        if phase is None or phase.finished:
            return
        phase.running.pop((e.suite, e.nodeid), None)
        suite = phase.suites.get(e.suite)
        if suite is not None and e.nodeid not in suite.done:
            suite.finish(e.nodeid)


def estimating(emit: Callable[[Event], None], estimator: Estimator) -> Emitter:
    """``emit`` that writes the estimate into each ``IterationStarted`` (``eta_s``), so
    the history keeps the estimate made at the start beside the time taken."""

    def emit_estimated(event: Event) -> None:
        if isinstance(event, IterationStarted) and event.eta_s is None:
            estimate = estimator.iteration_estimate()
            if estimate is not None:
                event = replace(event, eta_s=round(estimate, 3))
        emit(event)

    many = many_of(emit)

    def emit_many_estimated(events: list[Event]) -> None:
        if any(type(event) is IterationStarted for event in events):
            for event in events:  # not a runner's batch: rare, one by one
                emit_estimated(event)
        else:
            many(events)

    return Emitter(emit_estimated, emit_many_estimated)
