"""The plain-line reporter, used with ``--headless`` and whenever stdout is no terminal.

One line per phase start and finish, a progress line at most every few seconds in a
long phase, the count toward the target after each iteration, hung tests with the top
of their dump, and a line per iteration at the end. Lines only, no cursor tricks, so the
output reads the same in CI logs, ``tee`` and ``tmux`` scrollback.

Whatever a test produced is printable: free text (messages, errors, log text) is shown
on one line of at most :data:`SHOWN_BYTES` (the full text is in the history), lone
surrogates are escaped, and a character stdout cannot encode (an ASCII or strict UTF-8
stream) is written as a backslash escape instead of losing the line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from supervisor.config import format_duration
from supervisor.core.changes import format_changes
from supervisor.core.eta import Estimator, format_eta
from supervisor.core.events import (
    GREEN_OUTCOMES,
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
    SuiteFinished,
    TestCrashed,
    TestHung,
    TestResult,
    TestsCollected,
    TestStarted,
)
from supervisor.core.model import IterationSummary
from supervisor.core.quarantine import quarantine_text
from supervisor.text import clip, one_line, storable

_SHOWN_OUTCOMES = ("passed", "flaky", "failed", "error", "hung", "crashed", "skipped")
_DUMP_LINES = 12
#: what the run waits for, and what it runs again (retries), a person must see
_ALWAYS_SHOWN = ("loop", "health", "retries")

#: UTF-8 bytes of one message, error or log text shown on a line.
SHOWN_BYTES = 1024


def format_counts(
    counts: dict[str, int],
    always: tuple[str, ...] = ("passed", "failed"),
    quarantined: dict[str, int] | None = None,
) -> str:
    """``5 passed · 1 failed``, then ``· 3 quarantined: 2 failed, 1 passed`` if any."""
    parts = [f"{counts.get(k, 0)} {k}" for k in _SHOWN_OUTCOMES if counts.get(k) or k in always]
    apart = quarantine_text(quarantined or {})
    return " · ".join(parts + [apart] if apart else parts)


def dump_digest(dump: str, max_lines: int = _DUMP_LINES) -> list[str]:
    """The useful part of a hang dump: the innermost frames of each thread (where it
    is stuck, not how pytest got there) and the pending asyncio tasks' await lines."""
    threads: list[list[str]] = []
    tasks: list[str] = []
    section = None
    for line in dump.splitlines():
        if line.startswith(("Thread ", "Current thread ")):
            section = "thread"
            threads.append([line])
        elif line.startswith("asyncio tasks"):
            section = "tasks"
            tasks.append(line)
        elif section == "thread" and line.strip():
            threads[-1].append(line)
        elif section == "tasks" and line.strip():
            tasks.append(line)
    if not threads and not tasks:
        return dump.strip().splitlines()[:max_lines]
    out: list[str] = []
    for block in threads:
        out.append(block[0])
        out.extend(block[1:][-4:])  # innermost frames: file line + source line pairs
    out.extend(tasks[:6])
    return out[:max_lines] if len(out) <= max_lines else out[: max_lines - 6] + out[-6:]


def _change(result: TestResult) -> str:
    """`` (new)``, `` (still)``, `` (fixed)`` after the outcome; empty without one."""
    return f" ({result.change})" if result.change else ""


class HeadlessReporter:
    """Prints a run as plain lines; subscribe it to the event bus."""

    def __init__(
        self,
        out: TextIO | None = None,
        progress_every: float = 5.0,
        verbose: bool = False,
        redact: Callable[[str], str] | None = None,
        estimator: Estimator | None = None,
    ) -> None:
        self.out = out or sys.stdout
        #: expected counts and ETAs (subscribed to the bus before this reporter)
        self.estimator = estimator
        self.redact = redact  # masks secrets: the screen never shows one
        self.progress_every = progress_every
        self.verbose = verbose
        self.target = 0
        self.iterations: list[IterationSummary] = []
        self._phase_name = ""
        self._phase_total = 0
        self._phase_done = 0
        self._phase_failing = 0
        self._phase_started = 0.0
        self._iteration_started = 0.0
        self._iteration_estimate: float | None = None
        self._phase_seq = 0
        self._last_progress = 0.0
        self._handlers: dict[type, Callable[[Any], None] | None] = {}

    def __call__(self, event: Event) -> None:
        # one dict lookup per event (most are test starts, which print nothing): no
        # name built and no failed attribute lookup per result
        kind = type(event)
        try:
            handler = self._handlers[kind]
        except KeyError:
            handler = self._handlers[kind] = getattr(self, "_on_" + event.kind, None)
        if handler is not None:
            handler(event)

    def line(self, text: str) -> None:
        if self.redact is not None:
            text = self.redact(text)
        text = storable(text) + "\n"
        try:
            try:
                self.out.write(text)
            except UnicodeEncodeError:  # an ASCII or strict stdout: escape, keep the line
                encoding = getattr(self.out, "encoding", None) or "ascii"
                self.out.write(text.encode(encoding, "backslashreplace").decode(encoding))
            self.out.flush()
        except (OSError, ValueError, LookupError):  # a closed pipe must not stop the run
            pass

    # ------------------------------------------------------------------ handlers

    def _on_run_started(self, e: RunStarted) -> None:
        self.target = e.target
        verb = "resuming" if e.resumed else "run"
        self.line(f"netra-supervisor {verb} {e.run_id} · config {e.config_path}")

    def _on_iteration_started(self, e: IterationStarted) -> None:
        self._iteration_started = time.monotonic()
        self._iteration_estimate = e.eta_s
        eta = "" if e.eta_s is None else f" · ETA {format_eta(e.eta_s)}"
        self.line(f"── iteration {e.iteration}{eta} ──")

    def _on_deploy_finished(self, e: DeployFinished) -> None:
        if e.status == "skipped":
            return
        rev = f" revision {e.revision}" if e.revision else ""
        msg = f": {self._shown(e.message)}" if e.message else ""
        self.line(f"deploy {e.backend}: {e.status}{rev} ({e.duration:.1f}s){msg}")

    def _on_phase_started(self, e: PhaseStarted) -> None:
        self._phase_name, self._phase_seq = e.name, e.phase
        self._phase_total = self._phase_done = self._phase_failing = 0
        self._phase_started = self._last_progress = time.monotonic()
        impact = f" · {e.impact}" if e.impact else ""
        expected = ""
        if self.estimator is not None:
            estimate = self.estimator.phase(e.phase)
            if estimate.expected:
                expected += f" · {estimate.expected} expected"
            if estimate.eta is not None:
                expected += f" · ETA {format_eta(estimate.eta)}"
        self.line(f"▶ {e.name}: suites {', '.join(e.suites)} · gate {e.gate}{impact}{expected}")

    def _on_tests_collected(self, e: TestsCollected) -> None:
        self._phase_total += len(e.nodeids)

    def many(self, events: list[Event]) -> None:
        """A batch (one read of a runner): each result counted and printed as it
        would be alone, the progress line looked at once per batch, not per result."""
        results = 0
        for event in events:
            if type(event) is TestResult:
                self._count_result(event)
                results += 1
            elif type(event) is not TestStarted:  # a start prints nothing
                self(event)
        if results:
            self._maybe_progress()

    def _on_test_result(self, e: TestResult) -> None:
        self._count_result(e)
        self._maybe_progress()

    def _count_result(self, e: TestResult) -> None:
        failing = e.outcome not in GREEN_OUTCOMES and not e.quarantined
        if e.attempt == 1:
            self._phase_done += 1
            self._phase_failing += failing
        elif e.outcome in GREEN_OUTCOMES and not e.quarantined:
            self._phase_failing -= 1  # a retry: the test counted as failing so far
        apart = " (quarantined)" if e.quarantined else ""
        if e.flaky:
            self.line(f"  ≈ flaky{apart} {e.nodeid}: {self._shown(e.message)}")
        elif e.phase == VERIFY_SEQ:  # the verify pass: the verdict on each re-run test
            green = e.outcome in GREEN_OUTCOMES
            why = f": {self._shown(e.message)}" if e.message and not green else ""
            self.line(f"  {'✔' if green else '✖'} {e.outcome}{apart} {e.nodeid}{why}")
        elif e.outcome not in GREEN_OUTCOMES:
            if e.outcome in ("error", "crashed") and e.nodeid.endswith(("(startup)", "(suite)")):
                self.line(f"  ✖ {e.suite}: {self._shown(e.message)}")
            elif self.verbose:
                self.line(
                    f"  ✖ {e.outcome}{_change(e)}{apart} {e.nodeid}: {self._shown(e.message)}"
                )

    def _maybe_progress(self) -> None:
        now = time.monotonic()
        if now - self._last_progress >= self.progress_every:
            self._last_progress = now
            self.line(self._progress(now))

    def _progress(self, now: float) -> str:
        """``… P1: 4/200 done · 0 not passing · 12.0s · ETA 1m20s (iteration 5m02s)``;
        ``4/200 expected`` while a suite has not collected (its count of last time)."""
        total, done, eta = self._phase_total, "done", ""
        if self.estimator is not None:
            estimates, iteration = self.estimator.phases(now)
            estimate = estimates.get(self._phase_seq)
            if estimate is not None and estimate.expected:
                total, done = total + estimate.expected, "expected"
            if estimate is not None and estimate.eta is not None:
                eta = f" · ETA {format_eta(estimate.eta)}"
                if iteration is not None and iteration > estimate.eta:
                    eta += f" (iteration {format_eta(iteration)})"
        shown = f"/{total}" if total else ""
        return (
            f"  … {self._phase_name}: {self._phase_done}{shown} {done} · "
            f"{self._phase_failing} not passing · "
            f"{format_duration(now - self._phase_started)}{eta}"
        )

    def _on_test_hung(self, e: TestHung) -> None:
        why = {"silence": "silent (no heartbeat)", "killed": "killed by the user"}.get(
            e.reason, "past its deadline"
        )
        where = f", waiting {self._shown(e.where)}" if e.where else ""  # "at FILE:LINE …"
        self.line(f"  ⏱ HUNG {e.nodeid}: {why} (deadline {e.deadline:g}s){where}")
        self._digest(e.dump)

    def _on_test_crashed(self, e: TestCrashed) -> None:
        where = f" {self._shown(e.where)}" if e.where else ""
        self.line(f"  💥 CRASHED {e.nodeid}: {e.cause}{where}")
        self._digest(e.dump)

    def _shown(self, value: object) -> str:
        """Free text from an event as one printable line: masked before it is cut, so a
        cut never leaves part of a secret behind."""
        text = storable(value)
        if self.redact is not None:
            text = self.redact(text)
        return one_line(text, SHOWN_BYTES)

    def _digest(self, dump: str) -> None:
        dump = storable(dump)
        if self.redact is not None:
            dump = self.redact(dump)
        for dump_line in dump_digest(dump):
            kept = clip(dump_line, SHOWN_BYTES)
            self.line(f"      {kept}" if kept is dump_line else f"      {kept}…")

    def _on_suite_finished(self, e: SuiteFinished) -> None:
        if e.status == "error" and e.message:
            self.line(f"  suite {e.suite} could not run: {self._shown(e.message)}")

    def _on_phase_finished(self, e: PhaseFinished) -> None:
        held = "held" if e.gate_held else "FAILED"
        mark = "✔" if e.status == "passed" else "✖"
        total = sum(e.counts.values()) + sum(e.quarantined.values())
        not_run = f" · {e.not_run} not run ({e.note})" if e.not_run or e.note else ""
        self.line(
            f"{mark} {e.name}: {total} tests · {format_counts(e.counts, quarantined=e.quarantined)} · "
            f"gate {e.gate} {held} ({format_duration(e.duration)}){not_run}"
        )

    def _on_iteration_finished(self, e: IterationFinished) -> None:
        duration = time.monotonic() - self._iteration_started
        self.iterations.append(
            IterationSummary(e.iteration, e.status, dict(e.counts), duration, dict(e.quarantined))
        )
        passing = e.counts.get("passed", 0)
        target = f" / target {self.target}" if self.target else ""
        estimate = self._iteration_estimate
        estimated = "" if estimate is None else f", estimated {format_duration(estimate)}"
        self.line(
            f"iteration {e.iteration}: {e.status} · passing {passing}{target} · "
            f"{format_counts(e.counts, quarantined=e.quarantined)} "
            f"({format_duration(duration)}{estimated})"
        )
        changes = format_changes(e.changes)
        if changes:  # iteration 3: 2 new · 1 still failing · 3 fixed · 1 flaky
            self.line(f"iteration {e.iteration}: {changes}")

    def _on_log(self, e: LogLine) -> None:
        if e.level in ("warning", "error") or e.source in _ALWAYS_SHOWN or self.verbose:
            self.line(f"  [{e.level}] {e.source}: {self._shown(e.text)}")

    def _on_plugin_error(self, e: PluginFailed) -> None:
        self.line(f"  [plugin error] {e.plugin} in {e.hook}: {self._shown(e.error)} (quarantined)")

    def _on_run_finished(self, e: RunFinished) -> None:
        for line in self.summary_lines():
            self.line(line)
        self.line(
            f"run {e.run_id} {e.status} after {e.iterations} iteration(s) → exit {e.exit_code}"
        )

    def summary_lines(self) -> list[str]:
        """The run's iterations, one line each. Lines, not a table: a headless run loads
        no table library (rich), and a line reads the same in any width of log."""
        if not self.iterations:
            return []
        return ["── summary ──"] + [
            f"iteration {it.seq}: {it.status} · "
            f"{format_counts(it.counts, quarantined=it.quarantined)} ({format_duration(it.duration)})"
            for it in self.iterations
        ]
