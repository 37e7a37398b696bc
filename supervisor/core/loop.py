"""The test-deploy loop: iterations of deploy → phases → gates, until a stop condition.

The loop knows nothing about any suite kind or backend: it asks the registered kinds
to run suites, and everything it learns arrives as events it forwards to ``emit``.
It runs in a plain thread (never a Textual worker) so a UI crash cannot lose results.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from supervisor.config import Config, PhaseConfig, SuiteConfig
from supervisor.config_values import format_duration
from supervisor.core import retries, verify
from supervisor.core.between import Between, git_head
from supervisor.core.bus import many_of
from supervisor.core.control import RunControl
from supervisor.core.events import (
    OUTCOMES,
    DeployFinished,
    Event,
    IterationFinished,
    IterationStarted,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    PluginFailed,
    SuiteFinished,
    SuiteStarted,
    TestResult,
    TestsCollected,
    count_outcomes,
    utc_now,
)
from supervisor.core.gates import PhaseTally, gate_holds, gate_lost
from supervisor.core.health import wait_healthy
from supervisor.core.kinds import DeployBackend, RunContext, SuiteKind
from supervisor.core.last_results import LastResults
from supervisor.core.quarantine import RunQuarantine, add_counts
from supervisor.exitcodes import ExitCode
from supervisor.redact import Redactor, redact_file
from supervisor.text import exception_line


@dataclass(frozen=True)
class LoopOutcome:
    status: str  # passed | failed | interrupted
    exit_code: ExitCode
    iterations: int
    stop_reason: str


@dataclass(frozen=True)
class LoopSettings:
    """The run settings after command-line overrides."""

    until: str
    target: int
    max_iterations: int
    max_duration: float | None
    phases: tuple[PhaseConfig, ...]


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run continues (``--resume``): its unfinished iteration.

    ``recorded`` maps (phase seq, suite name) to the outcome of every test already
    recorded in that iteration: those count toward the phase's gate and are not run again.
    """

    iteration: int
    recorded: Mapping[tuple[int, str], Mapping[str, str]]
    #: the outcomes, keyed the same way, of the run's last iteration before it that
    #: ran tests, and its seq: what a verify pass re-runs first (``[run] verify``)
    previous: Mapping[tuple[int, str], Mapping[str, str]] = field(default_factory=dict)
    previous_iteration: int = 0

    @property
    def count(self) -> int:
        return sum(len(tests) for tests in self.recorded.values())


class Loop:
    """Runs iterations until a stop condition; every observation goes to ``emit``."""

    def __init__(
        self,
        config: Config,
        settings: LoopSettings,
        kinds: Mapping[str, SuiteKind],
        deploy_backend: DeployBackend | None,
        emit: Callable[[Event], None],
        run_id: int,
        stop: threading.Event,
        between: Between,
        log_dir: str = "",
        clock: Callable[[], float] = time.monotonic,
        plugin_failed: Callable[[str, str, str, BaseException], None] | None = None,
        resume: ResumePoint | None = None,
        iteration_env: Callable[[int], Mapping[str, str]] | None = None,
        redactor: Redactor | None = None,
        control: RunControl | None = None,
        settle: Callable[[], None] | None = None,
        last: LastResults | None = None,
        quarantine: RunQuarantine | None = None,
        every_start: bool = True,
    ) -> None:
        self.config = config
        self.settings = settings
        self.kinds = kinds
        self.deploy_backend = deploy_backend
        self.emit = emit
        self._emit_many = many_of(emit)  # a runner's batches stay batches
        self.run_id = run_id
        self.stop = stop
        self.between = between
        self.log_dir = log_dir
        self.resume = resume
        #: ``--resume`` continues the run's unfinished (or next) iteration
        self.first_iteration = resume.iteration if resume else 1
        self.clock = clock
        self._plugin_failed = plugin_failed or self._report_plugin_failure
        #: fresh environment per iteration for every suite (the [auth] token)
        self.iteration_env = iteration_env
        self._iteration_env: dict[str, str] = {}
        #: masks secrets in the log files suites write under ``log_dir``
        self.redactor = redactor
        self.control = control  # pause / next now / kill requests from a view
        #: waits until what was emitted has been handled (the session: plugin hooks);
        #: called after IterationStarted and IterationFinished, never during a suite
        self.settle = settle or (lambda: None)
        #: the latest outcome of every test (failed-first reads it); None: keep order
        self.last = last
        #: the quarantine file's entries in force: their tests' results never gate
        self.quarantine = quarantine
        #: some consumer wants the start of a test that ended in the same batch
        self.every_start = every_start
        self._quarantined: dict[str, int] = {}  # this iteration's quarantined results
        self._tally = PhaseTally()
        #: the running suite's attempts (``retries``)
        self._attempts = retries.SuiteAttempts(0)
        #: ``flaky_counts_as = "fail"``: a test that passed only on a retry fails gates
        self._flaky_fails = config.run.flaky_counts_as == "fail"
        #: the running phase's: set once its gate can no longer hold (``stop_on_gate``)
        self._cut = threading.Event()
        self._watch_gate: PhaseConfig | None = None  # the running phase, if stop_on_gate
        self._filed_under = 0  # the configured phase (seq) results are filed under
        self._phase_t0 = 0.0
        #: this iteration's outcomes, and the last iteration's that ran tests (verify)
        self._outcomes = verify.IterationOutcomes()
        self._previous: verify.Outcomes = resume.previous if resume else {}
        self._previous_iteration = resume.previous_iteration if resume else 0
        self._deployed_head: str | None = None
        self._last_revision: str | None = None

    def _report_plugin_failure(self, what: str, name: str, hook: str, exc: BaseException) -> None:
        """Default: report it; the session replaces this with the host's quarantine."""
        self.emit(PluginFailed(plugin=f"{what} {name}", hook=hook, error=exception_line(exc)))

    # ------------------------------------------------------------------ the loop

    def run(self) -> LoopOutcome:
        started = self.clock()
        iteration = self.first_iteration - 1
        last_status, last_counts = "failed", count_outcomes([])
        deployed_once = False
        while True:
            iteration += 1
            if self.control is not None:
                self.control.wait_while_paused()
                self.control.forget_kills()
            self.between.iteration_started()
            self._outcomes = verify.IterationOutcomes()
            self.emit(IterationStarted(self.run_id, iteration, utc_now()))
            self.settle()
            self._quarantined = {}
            if self.quarantine is not None:
                self.quarantine.start_iteration(self.emit)
            revision, deploy_ok = self._deploy(iteration, deployed_once)
            deployed_once = deployed_once or deploy_ok
            if deploy_ok and self.iteration_env is not None:
                self._iteration_env = dict(self.iteration_env(iteration))
            if deploy_ok:
                last_status, last_counts = self._run_phases(iteration, started)
            else:
                last_status, last_counts = "deploy-failed", count_outcomes([])
            self.emit(
                IterationFinished(
                    self.run_id, iteration, utc_now(), last_status, last_counts, revision,
                    quarantined=dict(self._quarantined),
                )
            )  # fmt: skip
            self.settle()
            if self._outcomes:  # a deploy-failed iteration ran nothing: keep the last
                self._previous, self._previous_iteration = self._outcomes.outcomes, iteration
                if self.quarantine is not None and not self.stop.is_set():
                    self.quarantine.end_iteration(self.emit)  # [run] auto_quarantine
            reason = self._stop_reason(iteration, started, last_status, last_counts)
            if reason:
                break
            if not self._wait_between():
                reason = "interrupted"
                break
        if reason == "interrupted":
            return LoopOutcome("interrupted", ExitCode.INTERRUPTED, iteration, reason)
        passed = last_status == "passed"
        return LoopOutcome(
            "passed" if passed else "failed",
            ExitCode.OK if passed else ExitCode.FAILED,
            iteration - self.first_iteration + 1,
            reason,
        )

    def _wait_between(self) -> bool:
        if self.control is None:
            return self.between.wait()
        self.control.waiting = True
        try:
            return self.between.wait()
        finally:
            self.control.waiting = False

    def _stop_reason(
        self, iteration: int, started: float, status: str, counts: Mapping[str, int]
    ) -> str:
        s = self.settings
        done = iteration - self.first_iteration + 1
        if self.stop.is_set() or status == "interrupted":
            return "interrupted"
        if s.until == "once":
            return "once"
        if s.until == "all-pass" and status == "passed":
            return "all tests pass"
        if s.until == "target" and counts.get("passed", 0) >= s.target:  # flaky is no pass
            return f"target {s.target} reached"
        if done >= s.max_iterations:
            return f"max_iterations ({s.max_iterations}) reached"
        if s.max_duration is not None and self.clock() - started >= s.max_duration:
            return f"max_duration ({format_duration(s.max_duration)}) reached"
        return ""

    # ------------------------------------------------------------------ deploy

    def _deploy(self, iteration: int, deployed_once: bool) -> tuple[str | None, bool]:
        """Deploy per ``[deploy] when``, then wait for ``health_url``; (revision, ok)."""
        backend = self.deploy_backend
        deploy = self.config.deploy
        head = git_head(self.config.base_dir) if deploy.when == "on-change" else None
        skip = backend is None or (
            deployed_once
            and (
                deploy.when == "first"
                or (deploy.when == "on-change" and head == self._deployed_head)
            )
        )
        started_at, t0 = utc_now(), time.monotonic()
        if skip:
            revision, ok, message, status = self._last_revision, True, "", "skipped"
        else:
            revision, ok, message = self._run_backend(iteration)
            status = "ok" if ok else "failed"
            if ok:
                self._deployed_head, self._last_revision = head, revision
        if ok and deploy.health_url:
            ok, health = wait_healthy(
                deploy.health_url,
                deploy.health_timeout,
                self.stop,
                lambda text: self.emit(LogLine("info", "health", text)),
            )
            self.emit(LogLine("info" if ok else "error", "health", health))
            if not ok:
                status, message = "failed", health
        self.emit(
            DeployFinished(
                self.run_id, iteration, deploy.backend, revision, started_at,
                time.monotonic() - t0, status, message,
            )
        )  # fmt: skip
        return revision, ok

    def _run_backend(self, iteration: int) -> tuple[str | None, bool, str]:
        backend = self.deploy_backend
        assert backend is not None

        def log(text: str) -> None:
            self.emit(LogLine(level="info", source=f"deploy:{backend.name}", text=text))

        try:
            outcome = backend.deploy(self.config, iteration, log)
        except Exception as exc:  # a backend is plugin code: report, don't crash the run
            self._plugin_failed("deploy backend", backend.name, "deploy", exc)
            return None, False, exception_line(exc)
        return outcome.revision, outcome.ok, outcome.message

    # ------------------------------------------------------------------ phases

    def _run_phases(self, iteration: int, started: float) -> tuple[str, dict[str, int]]:
        parts = self._verify_plan()
        if parts:
            counts, status = self._run_verify(iteration, parts)
            if status != "passed":
                self._quarantined = self._tally.quarantined()
                return ("interrupted" if status == "interrupted" else "verify-failed"), counts
        totals = count_outcomes([])
        status = "passed"
        for seq, phase in enumerate(self.settings.phases, start=1):
            if self.stop.is_set():
                return "interrupted", totals
            counts, held, phase_status = self._run_phase(iteration, seq, phase)
            for key, value in counts.items():
                totals[key] += value
            add_counts(self._quarantined, self._tally.quarantined())
            if phase_status == "interrupted":
                return "interrupted", totals
            if phase_status != "passed":
                status = "failed"
            if not held:
                return "gate-failed", totals
        return status, totals

    def _run_phase(
        self, iteration: int, seq: int, phase: PhaseConfig
    ) -> tuple[dict[str, int], bool, str]:
        suites = self.config.select_suites(phase.suites)
        started = PhaseStarted(
            self.run_id, iteration, seq, phase.name, self._gate_text(phase),
            tuple(s.name for s in suites), utc_now(), phase.impact,
        )  # fmt: skip
        self._begin_phase(started, phase if phase.stop_on_gate else None)
        for suite in suites:
            self._seed(iteration, seq, seq, suite)
        interrupted = self._run_suites(iteration, seq, [(seq, phase, s, None) for s in suites])
        counts = self._tally.counts()
        held = gate_holds(phase, counts, self._flaky_fails)
        failing = retries.failing(counts, self._flaky_fails)
        not_run, note = 0, ""
        if interrupted:
            status = "interrupted"
        elif not held:
            status = "gate-failed"
            if self._cut.is_set():
                not_run, note = self._cut_short(phase)
        else:
            status = "failed" if failing else "passed"
        self._end_phase(started, status, held, counts, not_run, note)
        return counts, held, status

    def _begin_phase(self, started: PhaseStarted, watch: PhaseConfig | None) -> None:
        """Announce the phase; fresh per-phase state (the tally, the cut, the gate to
        watch for ``stop_on_gate``)."""
        self.emit(started)
        self._tally = PhaseTally(started.suites)
        self._cut = threading.Event()
        self._watch_gate = watch
        self._filed_under = started.phase
        self._phase_t0 = time.monotonic()

    def _end_phase(
        self,
        started: PhaseStarted,
        status: str,
        held: bool,
        counts: dict[str, int],
        not_run: int = 0,
        note: str = "",
    ) -> None:
        self._watch_gate = None
        s = started
        self.emit(
            PhaseFinished(
                s.run_id, s.iteration, s.phase, s.name, s.gate, status, held, counts,
                time.monotonic() - self._phase_t0, not_run, note, self._tally.quarantined(),
            )
        )  # fmt: skip

    def _run_suites(
        self,
        iteration: int,
        seq: int,
        runs: Sequence[tuple[int, PhaseConfig, SuiteConfig, frozenset[str] | None]],
    ) -> bool:
        """Run ``(filed under, phase, suite, only)`` in order, until the run is stopped
        (True: interrupted) or the phase is cut (its later suites don't start)."""
        for filed_under, phase, suite, only in runs:
            if self.control is not None:
                self.control.wait_while_paused()
            if self.stop.is_set():
                return True
            if self._cut.is_set():
                break
            self._filed_under = filed_under
            self._run_suite(iteration, seq, phase, suite, only)
        return self.stop.is_set()

    def _cut_short(self, phase: PhaseConfig) -> tuple[int, str]:
        """What ``stop_on_gate`` left out of the phase (not results: not run), logged."""
        count, unstarted = self._tally.not_run()
        note = "the gate can no longer hold"
        if unstarted:
            note += f"; not started: {', '.join(unstarted)}"
        self.emit(LogLine("info", "gate", f"{phase.name}: {count} tests not run ({note})"))
        return count, note

    # ------------------------------------------------------------------ verify pass

    def _verify_plan(self) -> list[verify.VerifyPart]:
        if not self.config.run.verify or not self._previous:
            return []
        quarantined = self.quarantine.applies if self.quarantine is not None else None
        return verify.plan(
            self._previous, self.settings.phases, self.config.select_suites, quarantined
        )

    def _run_verify(
        self, iteration: int, parts: list[verify.VerifyPart]
    ) -> tuple[dict[str, int], str]:
        """The verify pass (phase seq 0): each suite on only its tests that did not pass
        last time, under the deadlines of the phase they belong to. Every one runs (no
        early stop: each verdict is worth seeing). Status passed, gate-failed (one still
        does not pass) or interrupted."""
        seq = verify.VERIFY_SEQ
        names = tuple(dict.fromkeys(part.suite.name for part in parts))
        started = PhaseStarted(
            self.run_id, iteration, seq, verify.VERIFY_NAME, verify.VERIFY_GATE, names,
            utc_now(), verify.describe(parts, self._previous_iteration),
        )  # fmt: skip
        self._begin_phase(started, None)
        for part in {part.suite.name: part for part in reversed(parts)}.values():
            self._seed(iteration, seq, part.seq, part.suite)  # a suite in two phases: once
        runs = [(p.seq, p.phase, p.suite, frozenset(p.tests)) for p in parts]
        interrupted = self._run_suites(iteration, seq, runs)
        counts = self._tally.counts()
        held = retries.failing(counts, self._flaky_fails) == 0
        status = "interrupted" if interrupted else ("passed" if held else "gate-failed")
        not_run, note = (0, "") if interrupted else self._not_collected(parts)
        self._end_phase(started, status, held, counts, not_run, note)
        return counts, status

    def _not_collected(self, parts: list[verify.VerifyPart]) -> tuple[int, str]:
        """Tests the verify pass asked for that got no result: their suite no longer
        collects them (renamed, deleted). Not run, not failures; logged."""
        missing = [
            nodeid
            for part in parts
            for nodeid in part.tests
            if (part.suite.name, nodeid) not in self._tally.outcomes
        ]
        if not missing:
            return 0, ""
        more = f" … ({len(missing) - 5} more)" if len(missing) > 5 else ""
        text = f"{len(missing)} no longer collected, not run: {', '.join(missing[:5])}{more}"
        self.emit(LogLine("info", "verify", text))
        return len(missing), "no longer collected"

    # ------------------------------------------------------------------ suites

    def _seed(self, iteration: int, seq: int, filed_under: int, suite: SuiteConfig) -> None:
        """A resumed iteration's recorded outcomes count as if they had just come in."""
        recorded = self._recorded(iteration, seq, suite)
        if recorded:
            q = self.quarantine
            kept = q.quarantined_of(suite.name, recorded) if q is not None else frozenset()
            self._tally.seed(suite.name, recorded, kept)
            self._outcomes.seed(filed_under, suite.name, recorded)

    def _run_suite(
        self,
        iteration: int,
        seq: int,
        phase: PhaseConfig,
        suite: SuiteConfig,
        only: frozenset[str] | None = None,
    ) -> None:
        kind = self.kinds.get(suite.kind)
        self._attempts = retries.SuiteAttempts(retries.retries_for(self.config.run, phase, suite))
        self.emit(SuiteStarted(iteration, seq, suite.name, suite.kind))
        self._tally.started(suite.name)
        if kind is None:  # validated at start; a quarantined plugin can still remove it
            self._suite_error(iteration, seq, suite, f"no suite kind {suite.kind!r} is loaded")
            self._tally.done(suite.name)
            return
        ctx = RunContext(
            config=self.config,
            phase=phase,
            run_id=self.run_id,
            iteration=iteration,
            phase_seq=seq,
            emit=self._emit_from_runner,
            emit_many=self._emit_many_from_runner,
            env={**self.config.run.env, **self._iteration_env, **suite.env},
            stop=self.stop,
            log_dir=self.log_dir,
            already_run=frozenset(self._recorded(iteration, seq, suite)),
            control=self.control,
            redact=self.redactor if self.redactor is not None and self.redactor.active else None,
            run_first=self._run_first(suite),
            only=only,
            cut=self._cut,
            every_start=self.every_start,
        )
        t0 = time.time()
        try:
            kind.run(suite, ctx)
            self._retry(kind, suite, ctx)
        except Exception as exc:  # plugin code: quarantine-worthy, never fatal to the run
            self._plugin_failed("suite kind", suite.kind, "run", exc)
            self._suite_error(
                iteration, seq, suite, f"suite kind {suite.kind!r} raised: {exception_line(exc)}"
            )
        finally:
            self._tally.done(suite.name)
            self._redact_logs(t0)

    def _retry(self, kind: SuiteKind, suite: SuiteConfig, ctx: RunContext) -> None:
        """``retries``: the suite's tests that did not pass run again, in a fresh run of
        the suite limited to them, until they pass or no retry is left."""
        while not self.stop.is_set() and not self._cut.is_set():
            again = self._attempts.next_round()
            if again is None:
                return
            attempt = self._attempts.attempt
            text = f"{suite.name}: attempt {attempt}: {len(again)} test(s) that did not pass"
            self.emit(LogLine("info", "retries", text + " run again"))
            kind.run(suite, replace(ctx, only=again, already_run=frozenset(), run_first=()))

    def _run_first(self, suite: SuiteConfig) -> tuple[str, ...]:
        """Failed-first: the suite's tests whose latest result did not pass."""
        if self.last is None or (suite.order or self.config.run.order) != "failed-first":
            return ()
        return self.last.run_first(suite.name)

    def _redact_logs(self, since: float) -> None:
        """Mask secrets in what the suite wrote under ``log_dir`` (pytest's own output:
        a test that prints the token). Every kind's files, so plugin kinds are covered."""
        if self.redactor is None or not self.redactor.active or not self.log_dir:
            return
        for folder, _dirs, files in os.walk(self.log_dir):
            for name in files:
                path = os.path.join(folder, name)
                try:
                    fresh = os.stat(path).st_mtime >= since - 2.0  # coarse mtime clocks
                except OSError:
                    continue
                if fresh:
                    redact_file(path, self.redactor)

    def _recorded(self, iteration: int, seq: int, suite: SuiteConfig) -> Mapping[str, str]:
        """Outcomes recorded for this suite before a ``--resume`` (else nothing)."""
        if self.resume is None or iteration != self.resume.iteration:
            return {}
        return self.resume.recorded.get((seq, suite.name), {})

    def _suite_error(self, iteration: int, seq: int, suite: SuiteConfig, message: str) -> None:
        self._emit_from_runner(
            TestResult(
                iteration=iteration,
                phase=seq,
                suite=suite.name,
                nodeid=f"{suite.name}::(suite)",
                outcome="error",
                message=message,
                started_at=utc_now(),
            )
        )
        self.emit(SuiteFinished(iteration, seq, suite.name, "error", message))

    def _emit_from_runner(self, event: Event) -> None:
        folded = self._fold_runner_event(event)
        if folded is None:
            return
        self.emit(folded)
        if self._watch_gate is not None and isinstance(folded, (TestResult, TestsCollected)):
            self._check_gate(self._watch_gate)

    def _emit_many_from_runner(self, events: list[Event]) -> None:
        """A runner's batch (what one read brought): folded like single events, handed
        on as one list, the gate checked once at its end."""
        fold = self._fold_runner_event
        out = [folded for folded in map(fold, events) if folded is not None]
        self._emit_many(out)
        if self._watch_gate is not None and any(
            isinstance(e, (TestResult, TestsCollected)) for e in out
        ):
            self._check_gate(self._watch_gate)

    def _fold_runner_event(self, event: Event) -> Event | None:
        """Quarantine and retry marks, tallies; ``None``: not to be passed on."""
        kind = type(event)
        if kind is TestResult:
            assert isinstance(event, TestResult)
            if self.quarantine is not None:
                event = self.quarantine.mark(event)
            event = self._attempts.mark(event)
            again = self._attempts.may_retry(event.nodeid, event.outcome, event.quarantined)
            self._tally.add(event, may_retry=again)
            self._outcomes.add(self._filed_under, event.suite, event.nodeid, event.outcome)
        elif kind is TestsCollected:
            assert isinstance(event, TestsCollected)
            if self._attempts.attempt > 1:
                return None  # a retry collects tests counted already
            self._tally.collected(event.suite, event.nodeids)
        return event

    def _check_gate(self, phase: PhaseConfig) -> None:
        """``stop_on_gate``: cut the phase once no outcome of the tests still to run
        can make its gate hold (the kind stops; the phase's later suites don't start)."""
        tally = self._tally
        if not self._cut.is_set() and gate_lost(
            phase, tally.counts(), tally.remaining(), tally.retryable(), self._flaky_fails
        ):
            self._cut.set()

    @staticmethod
    def _gate_text(phase: PhaseConfig) -> str:
        return f"{phase.gate_ratio:g}" if phase.gate == "ratio" else phase.gate


__all__ = ["OUTCOMES", "Loop", "LoopOutcome", "LoopSettings", "ResumePoint", "gate_holds"]
