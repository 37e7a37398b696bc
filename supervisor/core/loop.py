"""The test-deploy loop: iterations of deploy → phases → gates, until a stop condition.

The loop knows nothing about any suite kind or backend: it asks the registered kinds
to run suites, and everything it learns arrives as events it forwards to ``emit``.
It runs in a plain thread (never a Textual worker) so a UI crash cannot lose results.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from supervisor.config import Config, PhaseConfig, SuiteConfig, format_duration
from supervisor.core.between import Between, git_head
from supervisor.core.control import RunControl
from supervisor.core.events import (
    GREEN_OUTCOMES,
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
    count_outcomes,
    utc_now,
)
from supervisor.core.health import wait_healthy
from supervisor.core.kinds import DeployBackend, RunContext, SuiteKind
from supervisor.core.last_results import LastResults
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

    @property
    def count(self) -> int:
        return sum(len(tests) for tests in self.recorded.values())


class _PhaseTally:
    """Latest outcome per test of the running phase (a re-run replaces the first)."""

    def __init__(self) -> None:
        self.outcomes: dict[tuple[str, str], str] = {}

    def add(self, event: TestResult) -> None:
        self.outcomes[(event.suite, event.nodeid)] = event.outcome

    def seed(self, suite: str, outcomes: Mapping[str, str]) -> None:
        for nodeid, outcome in outcomes.items():
            self.outcomes[(suite, nodeid)] = outcome

    def counts(self) -> dict[str, int]:
        return count_outcomes(list(self.outcomes.values()))


def gate_holds(phase: PhaseConfig, counts: Mapping[str, int]) -> bool:
    """Whether the phase's gate lets the iteration go on."""
    if phase.gate == "none":
        return True
    failing = sum(v for k, v in counts.items() if k not in GREEN_OUTCOMES)
    if phase.gate == "all-pass":
        return failing == 0
    ran = sum(v for k, v in counts.items() if k != "skipped")
    if ran == 0:
        return True
    return (ran - failing) / ran >= phase.gate_ratio


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
    ) -> None:
        self.config = config
        self.settings = settings
        self.kinds = kinds
        self.deploy_backend = deploy_backend
        self.emit = emit
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
        self._tally = _PhaseTally()
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
            self.emit(IterationStarted(self.run_id, iteration, utc_now()))
            self.settle()
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
                    self.run_id, iteration, utc_now(), last_status, last_counts, revision
                )
            )
            self.settle()
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
        if s.until == "target" and counts.get("passed", 0) >= s.target:
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
        totals = count_outcomes([])
        status = "passed"
        for seq, phase in enumerate(self.settings.phases, start=1):
            if self.stop.is_set():
                return "interrupted", totals
            counts, held, phase_status = self._run_phase(iteration, seq, phase)
            for key, value in counts.items():
                totals[key] += value
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
        self.emit(
            PhaseStarted(
                self.run_id,
                iteration,
                seq,
                phase.name,
                self._gate_text(phase),
                tuple(s.name for s in suites),
                utc_now(),
                phase.impact,
            )
        )
        t0 = time.monotonic()
        self._tally = _PhaseTally()
        for suite in suites:
            self._tally.seed(suite.name, self._recorded(iteration, seq, suite))
        interrupted = False
        for suite in suites:
            if self.control is not None:
                self.control.wait_while_paused()
            if self.stop.is_set():
                interrupted = True
                break
            self._run_suite(iteration, seq, phase, suite)
        interrupted = interrupted or self.stop.is_set()
        counts = self._tally.counts()
        held = gate_holds(phase, counts)
        failing = sum(v for k, v in counts.items() if k not in GREEN_OUTCOMES)
        if interrupted:
            status = "interrupted"
        elif not held:
            status = "gate-failed"
        else:
            status = "failed" if failing else "passed"
        self.emit(
            PhaseFinished(
                self.run_id,
                iteration,
                seq,
                phase.name,
                self._gate_text(phase),
                status,
                held,
                counts,
                time.monotonic() - t0,
            )
        )
        return counts, held, status

    def _run_suite(self, iteration: int, seq: int, phase: PhaseConfig, suite: SuiteConfig) -> None:
        kind = self.kinds.get(suite.kind)
        self.emit(SuiteStarted(iteration, seq, suite.name, suite.kind))
        if kind is None:  # validated at start; a quarantined plugin can still remove it
            self._suite_error(iteration, seq, suite, f"no suite kind {suite.kind!r} is loaded")
            return
        ctx = RunContext(
            config=self.config,
            phase=phase,
            run_id=self.run_id,
            iteration=iteration,
            phase_seq=seq,
            emit=self._emit_from_runner,
            env={**self.config.run.env, **self._iteration_env, **suite.env},
            stop=self.stop,
            log_dir=self.log_dir,
            already_run=frozenset(self._recorded(iteration, seq, suite)),
            control=self.control,
            redact=self.redactor if self.redactor is not None and self.redactor.active else None,
            run_first=self._run_first(suite),
        )
        t0 = time.time()
        try:
            kind.run(suite, ctx)
        except Exception as exc:  # plugin code: quarantine-worthy, never fatal to the run
            self._plugin_failed("suite kind", suite.kind, "run", exc)
            self._suite_error(
                iteration, seq, suite, f"suite kind {suite.kind!r} raised: {exception_line(exc)}"
            )
        finally:
            self._redact_logs(t0)

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
        if isinstance(event, TestResult):
            self._tally.add(event)
        self.emit(event)

    @staticmethod
    def _gate_text(phase: PhaseConfig) -> str:
        return f"{phase.gate_ratio:g}" if phase.gate == "ratio" else phase.gate


__all__ = ["OUTCOMES", "Loop", "LoopOutcome", "LoopSettings", "ResumePoint", "gate_holds"]
