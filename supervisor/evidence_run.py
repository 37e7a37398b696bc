"""Evidence for every non-pass: the backend's log lines of its window, and plugins'.

:class:`EvidenceCollector` is a bus subscriber. On the runner's thread it only looks
at an event's type and outcome; a result that did not pass becomes a job for the
``netra evidence`` thread, due once its window (and the margin after it) is over.
That thread reads the lines the backend's log files got in the window
(:class:`supervisor.evidence_tail.LogTail`), sorts them (:mod:`supervisor.core.evidence`),
redacts and bounds them, and hands an :class:`Evidence` event per file to the
history writer, which stores it in ``evidence`` in its own transaction: a slow file
or a full disk delays or loses evidence, never the result row.

Plugins' ``netra_collect_evidence`` calls go through a :class:`HookDelivery` of their
own (``netra evidence hooks``), with ``[plugins] hook_timeout`` per implementation: a
stuck query is abandoned and its plugin quarantined; the run's other hooks never wait
behind it.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from supervisor.config import Config
from supervisor.core.events import Event, Evidence, LogLine, TestResult
from supervisor.core.evidence import (
    EVIDENCE_OUTCOMES,
    MARGIN,
    EvidenceWindow,
    Kept,
    bound,
    leading_timestamp,
    result_window,
    select,
    stamped,
)
from supervisor.core.kinds import DeployBackend
from supervisor.evidence_tail import LogTail
from supervisor.hook_delivery import HookDelivery
from supervisor.plugins import COLLECTING_HOOKS, ImplCall, PluginError, PluginHost

HOOK = COLLECTING_HOOKS[0]  # netra_collect_evidence
STAMPS_KEPT = 100_000  # lines whose timestamp is remembered


def log_patterns(config: Config, backend: DeployBackend | None) -> list[str]:
    """``[deploy] logs`` resolved against the config's folder; unset: the backend's."""
    if config.deploy.logs is not None:
        patterns: Sequence[str] = config.deploy.logs
    elif backend is not None:
        patterns = backend.logs(config)
    else:
        patterns = ()
    return [str(config.resolve(p)) for p in patterns]


class EvidenceCollector:
    """Collects evidence off the runner's thread; :meth:`close` before the store's.

    ``put`` receives the :class:`Evidence` events (the history writer's ``put``).
    ``tail`` may be ``None`` (no log files: plugins only); ``host`` ``None`` (no
    plugin implements the hook). ``clock`` is epoch seconds (results carry UTC times).
    """

    def __init__(
        self,
        put: Callable[[Event], None],
        *,
        tail: LogTail | None = None,
        host: PluginHost | None = None,
        redact: Callable[[str], str] = lambda s: s,
        margin: float = MARGIN,
        hook_timeout: float = 30.0,
        report: Callable[[Event], None] = lambda event: None,
        on_fatal: Callable[[PluginError], None] = lambda exc: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._put = put
        self.tail = tail
        self.host = host
        self._redact = redact
        self.margin = margin
        self._clock = clock
        self._report = report
        self.delivery: HookDelivery | None = None
        if host is not None:
            self.delivery = HookDelivery(
                hook_timeout, quarantine=host.quarantine, report=report, on_fatal=on_fatal
            )
        #: after the window ends, wait this long for the tail's next look
        self._settle = 2 * tail.interval if tail is not None else 0.0
        self._jobs: list[tuple[float, int, TestResult, EvidenceWindow]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._closing = False
        self._thread: threading.Thread | None = None
        #: line -> its leading timestamp: the windows of failures close together
        #: overlap, and the tail hands the same line objects out again
        self._stamps: dict[str, float | None] = {}
        #: evidence rows handed to the writer, and jobs whose reading failed
        self.collected = 0
        self.failures = 0

    # ------------------------------------------------------------------ runner side

    def __call__(self, event: Event) -> None:
        """The bus subscriber: cheap for everything but a non-passing result."""
        if type(event) is not TestResult or event.outcome not in EVIDENCE_OUTCOMES:
            return
        now = self._clock()
        window = result_window(event, now, self.margin)
        due = max(now, window.end_ts + self._settle)
        with self._wake:
            if self._closing:
                return
            heapq.heappush(self._jobs, (due, next(self._order), event, window))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="netra evidence", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    # ------------------------------------------------------------------ evidence thread

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    if self._jobs:
                        left = self._jobs[0][0] - self._clock()
                        if left <= 0 or self._closing:  # the run ends: no waiting
                            break
                        self._wake.wait(left)
                    elif self._closing:
                        return
                    else:
                        self._wake.wait()
                _due, _n, result, window = heapq.heappop(self._jobs)
            try:
                self.collect(result, window)
            except Exception as exc:  # noqa: BLE001 - a bad file must not end the thread
                self.failures += 1
                self._report(
                    LogLine(
                        "warning",
                        "evidence",
                        f"no evidence for {result.nodeid}: {type(exc).__name__}: {exc}",
                    )
                )

    def collect(self, result: TestResult, window: EvidenceWindow) -> list[Evidence]:
        """The log files' evidence of ``result`` (handed on, and returned), and the
        plugins' calls queued. Synchronous: the evidence thread calls it when due."""
        made: list[Evidence] = []
        if self.tail is not None:
            for path, lines in self.tail.lines(window).items():
                timed = select(lines, window, self._stamp)
                if timed:
                    made.append(self._evidence(result, f"log:{path}", bound(timed, self._redact)))
        for evidence in made:
            self._put(evidence)
        self.collected += len(made)
        if self.delivery is not None and self.host is not None:
            calls = self.host.lifecycle_calls(HOOK, {"result": result, "window": window})
            self.delivery.submit([self._keeping(call, result) for call in calls])
        return made

    def _stamp(self, line: str) -> float | None:
        stamps = self._stamps
        try:
            return stamps[line]
        except KeyError:
            if len(stamps) >= STAMPS_KEPT:
                stamps.clear()
            stamp = stamps[line] = leading_timestamp(line)
            return stamp

    def _keeping(self, call: ImplCall, result: TestResult) -> ImplCall:
        """``call``, with what it returns turned into evidence rows."""

        def run() -> None:
            returned = call.run()
            if returned is PluginHost.FAILED:
                return  # reported and quarantined by the host
            pairs = _pairs(returned)
            name = call.record.name
            if pairs is None:
                assert self.host is not None
                self.host.quarantine(
                    name,
                    HOOK,
                    f"returned {type(returned).__name__}; expected a list of (source, lines)",
                )
                return
            for source, lines in pairs:
                where = f"plugin:{name}/{source}" if source else f"plugin:{name}"
                kept = bound(stamped(lines), self._redact)
                if kept.lines:
                    self._put(self._evidence(result, where, kept))
                    self.collected += 1

        return ImplCall(call.record, call.hook, run)

    def _evidence(self, result: TestResult, source: str, kept: Kept) -> Evidence:
        return Evidence(
            iteration=result.iteration,
            phase=result.phase,
            suite=result.suite,
            nodeid=result.nodeid,
            attempt=result.attempt,
            source=self._redact(source),
            lines=kept.text,
            omitted=kept.omitted,
            first_at=kept.first_at,
            last_at=kept.last_at,
        )

    # ------------------------------------------------------------------ the end

    def close(self, timeout: float = 10.0) -> None:
        """Collect what is still queued at once (the run is over: the lines written so
        far are what there is; nobody waits out the margin after the last test),
        deliver the plugins' calls (bounded by ``hook_timeout`` each), stop the tail.
        Idempotent."""
        with self._wake:
            self._closing = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if self.delivery is not None:
            self.delivery.close()
        if self.tail is not None:
            self.tail.close()


def _pairs(returned: Any) -> list[tuple[str, list[str]]] | None:
    """A hook's return as ``(source, lines)`` pairs; None when it is not that shape."""
    if returned is None:
        return []
    if not isinstance(returned, (list, tuple)):
        return None
    out: list[tuple[str, list[str]]] = []
    for item in returned:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            return None
        source, lines = item
        if not isinstance(source, str):
            return None
        if isinstance(lines, str):
            lines = lines.splitlines()
        if not isinstance(lines, (list, tuple)) or not all(isinstance(x, str) for x in lines):
            return None
        out.append((source, list(lines)))
    return out


def open_evidence(
    config: Config,
    backend: DeployBackend | None,
    host: PluginHost,
    put: Callable[[Event], None],
    redact: Callable[[str], str],
    *,
    report: Callable[[Event], None],
    on_fatal: Callable[[PluginError], None],
) -> EvidenceCollector | None:
    """The run's collector, its tail started; ``None`` when there is nothing to collect
    from (no log files configured or defaulted, no plugin implementing the hook)."""
    patterns = log_patterns(config, backend)
    hooked = host.implements(HOOK)
    if not patterns and not hooked:
        return None
    return EvidenceCollector(
        put,
        tail=LogTail(patterns).start() if patterns else None,
        host=host if hooked else None,
        redact=redact,
        hook_timeout=config.plugins.hook_timeout,
        report=report,
        on_fatal=on_fatal,
    )
