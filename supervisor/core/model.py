"""The live state of a run, folded from events; what views (TUI, headless) read.

Everything here is bounded: a night-long run of 20 iterations × 1000 tests keeps the
counts and the last iteration's failures, not every result (those are in SQLite).
Views read under :meth:`RunModel.read` or take a :meth:`snapshot`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Protocol

from supervisor.core.changes import IterationChanges
from supervisor.core.eta import Estimator
from supervisor.core.events import (
    FAILING_OUTCOMES,
    FLAKY,
    OUTCOMES,
    VERIFY_SEQ,
    DeployFinished,
    Event,
    IterationFinished,
    IterationStarted,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    PluginFailed,
    RunFinished,
    RunStarted,
    TestCrashed,
    TestHung,
    TestResult,
    TestsCollected,
    TestStarted,
)
from supervisor.core.retries import count_key

MAX_FAILURES = 500
MAX_LOG_LINES = 1000
MAX_RERUN = 200  # tests of a verify pass whose outcome the model keeps for the views


@dataclass
class PhaseState:
    seq: int
    name: str
    gate: str
    impact: str = ""
    status: str = "running"  # running | passed | failed | gate-failed | interrupted
    gate_held: bool | None = None
    discovered: int = 0
    #: each test once, by its latest attempt (a flaky pass under ``flaky``)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((*OUTCOMES, FLAKY), 0))
    #: tests of suites that have not collected yet, as many as they had last time
    expected: int = 0
    eta: float | None = None  # seconds left while it runs (None: no history to tell)
    not_run: int = 0  # tests the phase had but did not run, and why (``note``)
    note: str = ""
    #: the verify pass (seq 0): each re-run test's latest outcome, in first-result order
    rerun: dict[str, str] = field(default_factory=dict)
    #: quarantined tests' results per outcome: apart from ``counts``, they never gate
    quarantined: dict[str, int] = field(default_factory=dict)
    #: (suite, nodeid) -> the latest counted outcome of each quarantined test, so a
    #: retry replaces its earlier attempt (not copied to views)
    quarantined_latest: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    #: (suite, nodeid) -> outcome of the tests whose latest result fails: a retry's
    #: result replaces it in ``counts`` (bounded by the failures; not copied to views)
    failing: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)

    @property
    def done(self) -> int:
        return sum(self.counts.values()) + sum(self.quarantined.values())


def counted_phases(phases: tuple[PhaseState, ...]) -> tuple[PhaseState, ...]:
    """The phases whose results are the iteration's counts: the verify pass's tests run
    again in the full phases, so it counts only when it is all that ran."""
    full = tuple(p for p in phases if p.seq != VERIFY_SEQ)
    return full or phases


@dataclass
class RunningTest:
    suite: str
    nodeid: str
    worker: str
    deadline: float | None
    started: float


@dataclass
class IterationSummary:
    seq: int
    status: str
    counts: dict[str, int]
    duration: float
    quarantined: dict[str, int] = field(default_factory=dict)  # apart from counts


@dataclass(frozen=True)
class ModelView:
    """A consistent copy of what a view shows, taken under the lock in one go.

    ``log`` and ``failures`` hold only what is new since the ``log_seq`` and
    ``failures_seq`` the view passed in (``failures_reset`` says the list started over,
    e.g. a new iteration), so a 10 Hz refresh copies little.
    """

    version: int
    run_id: int
    target: int
    iteration: int
    deploy_state: str
    deploy_revision: str | None
    phases: tuple[PhaseState, ...]
    running: tuple[RunningTest, ...]
    iterations: tuple[IterationSummary, ...]
    log: tuple[LogLine, ...]
    log_seq: int
    failures: tuple[TestResult, ...]  # newest first
    failures_seq: int
    failures_reset: bool
    failures_epoch: int
    plugin_errors: int
    started: float
    until: str
    max_iterations: int
    max_duration: float | None
    stop_reason: str
    exit_code: int | None
    finished: float | None = None  # monotonic time the loop stopped
    eta: float | None = None  # seconds the running iteration has left (None: unknown)
    #: this iteration's tests new / still failing / fixed / flaky so far (core.changes)
    changes: dict[str, int] = field(default_factory=dict)


class ViewSource(Protocol):
    """What a dashboard reads: the live :class:`RunModel`, or a run followed from the
    history database (``supervisor.store.follow``). The panes see only ``ModelView``."""

    run_id: int  # the run shown (a failure's report reads its evidence by it)

    def snapshot(
        self, log_seq: int = 0, failures_seq: int = 0, epoch: int = -1, now: float | None = None
    ) -> ModelView: ...


@dataclass
class RunModel:
    """Live state of one run. ``apply`` is the only writer; call it from the bus."""

    run_id: int = 0
    target: int = 0
    iteration: int = 0
    iteration_started: float = 0.0
    #: deploying | health-check | healthy | skipped | failed (what the header shows)
    deploy_state: str = ""
    deploy_revision: str | None = None
    #: the stop condition, set by the session from the run settings
    until: str = ""
    max_iterations: int = 0
    max_duration: float | None = None
    stop_reason: str = ""
    exit_code: int | None = None
    finished: float | None = None  # monotonic time the loop stopped (elapsed stops)
    results_seen: int = 0  # every result this run reported (the store holds each one)
    log_seq: int = 0  # lines ever appended to ``log`` (views take the new ones)
    failures_seq: int = 0  # failures ever added in this iteration
    failures_epoch: int = 0  # bumped when ``failures`` starts over
    phases: list[PhaseState] = field(default_factory=list)
    running: dict[tuple[str, str], RunningTest] = field(default_factory=dict)
    failures: deque[TestResult] = field(default_factory=lambda: deque(maxlen=MAX_FAILURES))
    log: deque[LogLine] = field(default_factory=lambda: deque(maxlen=MAX_LOG_LINES))
    iterations: list[IterationSummary] = field(default_factory=list)
    plugin_errors: int = 0
    version: int = 0  # bumped on every change, so views can skip identical frames
    started: float = field(default_factory=time.monotonic)
    #: expected counts and ETAs (the session's, fed by the bus); None: none shown
    estimator: Estimator | None = None
    #: new / still / fixed / flaky of the running iteration, each test by its last result
    changes: IterationChanges = field(default_factory=IterationChanges)
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @contextmanager
    def read(self) -> Iterator[RunModel]:
        with self._lock:
            yield self

    def snapshot(
        self, log_seq: int = 0, failures_seq: int = 0, epoch: int = -1, now: float | None = None
    ) -> ModelView:
        """Copy what changed since the view's last ``log_seq``/``failures_seq``; ETAs
        as of ``now`` (monotonic; default: the estimator's clock)."""
        with self._lock:
            reset = epoch != self.failures_epoch
            new_logs = min(self.log_seq - log_seq, len(self.log))
            new_fail = len(self.failures) if reset else self.failures_seq - failures_seq
            new_fail = min(max(new_fail, 0), len(self.failures))
            log = (
                tuple(reversed(tuple(islice(reversed(self.log), new_logs)))) if new_logs > 0 else ()
            )
            fails = tuple(islice(self.failures, new_fail)) if new_fail else ()
            phases = tuple(_copy_phase(p) for p in self.phases)
            eta = None
            if self.estimator is not None:
                estimates, eta = self.estimator.phases(now)
                for phase in phases:
                    estimate = estimates.get(phase.seq)
                    if estimate is not None and phase.status == "running":
                        phase.expected, phase.eta = estimate.expected, estimate.eta
            return ModelView(
                version=self.version,
                run_id=self.run_id,
                target=self.target,
                iteration=self.iteration,
                deploy_state=self.deploy_state,
                deploy_revision=self.deploy_revision,
                phases=phases,
                running=tuple(self.running.values()),
                iterations=tuple(self.iterations),
                log=log,
                log_seq=self.log_seq,
                failures=fails,
                failures_seq=self.failures_seq,
                failures_reset=reset,
                failures_epoch=self.failures_epoch,
                plugin_errors=self.plugin_errors,
                started=self.started,
                until=self.until,
                max_iterations=self.max_iterations,
                max_duration=self.max_duration,
                stop_reason=self.stop_reason,
                exit_code=self.exit_code,
                finished=self.finished,
                eta=eta,
                changes=self.changes.counts(),
            )

    def finish(self, stop_reason: str, exit_code: int) -> None:
        """The session records why the loop stopped (views show it)."""
        with self._lock:
            self.version += 1
            self.stop_reason, self.exit_code = stop_reason, exit_code
            self.finished = time.monotonic()

    # ------------------------------------------------------------------ folding

    def apply(self, event: Event) -> None:
        with self._lock:
            self.version += 1
            handler = _HANDLERS.get(type(event))
            if handler is not None:
                handler(self, event)

    def apply_many(self, events: list[Event]) -> None:
        """:meth:`apply` for a batch, under one lock (a view sees all of it or none)."""
        handlers = _HANDLERS
        with self._lock:
            self.version += len(events)
            for event in events:
                handler = handlers.get(type(event))
                if handler is not None:
                    handler(self, event)

    def _run_started(self, e: RunStarted) -> None:
        self.run_id, self.target = e.run_id, e.target

    def _iteration_started(self, e: IterationStarted) -> None:
        self.iteration = e.iteration
        self.iteration_started = time.monotonic()
        self.phases = []
        self.running.clear()
        self.failures.clear()
        self.failures_seq = 0
        self.failures_epoch += 1
        self.changes.clear()
        self.deploy_state = "deploying"

    def _deploy_finished(self, e: DeployFinished) -> None:
        self.deploy_revision = e.revision
        self.deploy_state = {"ok": "healthy"}.get(e.status, e.status)

    def _phase_started(self, e: PhaseStarted) -> None:
        self.phases.append(PhaseState(seq=e.phase, name=e.name, gate=e.gate, impact=e.impact))

    def _phase_finished(self, e: PhaseFinished) -> None:
        for phase in self.phases:
            if phase.seq == e.phase:
                phase.status, phase.gate_held = e.status, e.gate_held
                phase.not_run, phase.note = e.not_run, e.note

    def _collected(self, e: TestsCollected) -> None:
        phase = self._phase(e.phase)
        if phase is not None:
            phase.discovered += len(e.nodeids)

    def _test_started(self, e: TestStarted) -> None:
        self.running[(e.suite, e.nodeid)] = RunningTest(
            e.suite, e.nodeid, e.worker, e.deadline, e.at
        )

    def _test_result(self, e: TestResult) -> None:
        self.running.pop((e.suite, e.nodeid), None)
        self.results_seen += 1
        phase = self._phase(e.phase)
        key = count_key(e)
        if e.quarantined:  # counted apart, and not a failure to look at
            if phase is not None:
                test = (e.suite, e.nodeid)
                before = phase.quarantined_latest.get(test)
                if before is not None:  # a retry: its earlier attempt stops counting
                    phase.quarantined[before] -= 1
                    if not phase.quarantined[before]:
                        del phase.quarantined[before]
                phase.quarantined_latest[test] = key
                phase.quarantined[key] = phase.quarantined.get(key, 0) + 1
            return
        if phase is not None:
            test = (e.suite, e.nodeid)
            before = phase.failing.pop(test, None) if e.attempt > 1 else None
            if before is not None:  # a retry: the test's earlier attempt stops counting
                phase.counts[before] -= 1
            phase.counts[key] = phase.counts.get(key, 0) + 1
            if e.outcome in FAILING_OUTCOMES:
                phase.failing[test] = e.outcome
            if phase.seq == VERIFY_SEQ and (
                len(phase.rerun) < MAX_RERUN or e.nodeid in phase.rerun
            ):
                phase.rerun[e.nodeid] = key
        self.changes.add(e)
        if e.outcome in FAILING_OUTCOMES or e.flaky:  # the failures pane shows flaky too
            self.failures.appendleft(e)
            self.failures_seq += 1

    def _append_log(self, line: LogLine) -> None:
        """The one way into ``log``: views take the lines past their ``log_seq``."""
        self.log_seq += 1
        self.log.append(line)

    def _test_hung(self, e: TestHung) -> None:
        text = f"hung ({e.reason}, {e.deadline:g}s): {e.nodeid}"
        text += f" {e.where}" if e.where else ""  # the line it waited on
        self._append_log(LogLine(level="warning", source=e.suite, text=text))

    def _test_crashed(self, e: TestCrashed) -> None:
        text = f"crashed ({e.cause}): {e.nodeid}"
        text += f" {e.where}" if e.where else ""
        self._append_log(LogLine(level="warning", source=e.suite, text=text))

    def _log(self, e: LogLine) -> None:
        if e.source == "health" and self.deploy_state == "deploying":
            self.deploy_state = "health-check"
        self._append_log(e)

    def _plugin_failed(self, e: PluginFailed) -> None:
        self.plugin_errors += 1
        text = f"plugin error in {e.hook}: {e.error}"
        self._append_log(LogLine(level="error", source=e.plugin, text=text))

    def _iteration_finished(self, e: IterationFinished) -> None:
        self.running.clear()
        self.iterations.append(
            IterationSummary(
                seq=e.iteration,
                status=e.status,
                counts=dict(e.counts),
                duration=time.monotonic() - self.iteration_started,
                quarantined=dict(e.quarantined),
            )
        )

    def _run_finished(self, e: RunFinished) -> None:
        self.exit_code = e.exit_code

    def _phase(self, seq: int) -> PhaseState | None:
        for phase in reversed(self.phases):
            if phase.seq == seq:
                return phase
        return None


def _copy_phase(phase: PhaseState) -> PhaseState:
    return PhaseState(
        seq=phase.seq,
        name=phase.name,
        gate=phase.gate,
        impact=phase.impact,
        status=phase.status,
        gate_held=phase.gate_held,
        discovered=phase.discovered,
        counts=dict(phase.counts),
        not_run=phase.not_run,
        note=phase.note,
        rerun=dict(phase.rerun),
        quarantined=dict(phase.quarantined),
    )


_HANDLERS: dict[type[Event], Callable[[RunModel, Any], None]] = {
    RunStarted: RunModel._run_started,
    IterationStarted: RunModel._iteration_started,
    DeployFinished: RunModel._deploy_finished,
    PhaseStarted: RunModel._phase_started,
    PhaseFinished: RunModel._phase_finished,
    TestsCollected: RunModel._collected,
    TestStarted: RunModel._test_started,
    TestResult: RunModel._test_result,
    TestHung: RunModel._test_hung,
    TestCrashed: RunModel._test_crashed,
    LogLine: RunModel._log,
    PluginFailed: RunModel._plugin_failed,
    IterationFinished: RunModel._iteration_finished,
    RunFinished: RunModel._run_finished,
}
