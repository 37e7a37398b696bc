"""Lifecycle hooks off the run's threads: one delivery thread, a bounded queue, a timeout.

The event bus calls the session's ``HookBridge`` under its lock, from the runner's
thread, where the watchdog checks deadlines too: a plugin's hook must never run
there (issue 12: a ``netra_results`` sleeping 120 s stalled the whole suite).
:meth:`HookDelivery.submit` only appends the call to a queue; the ``netra hooks``
thread calls the implementations one at a time, in the order they were submitted
(the order of the events), each implementation on its own.

**Timeouts.** Python cannot kill a thread. A watcher thread notices an implementation
running longer than ``hook_timeout``: its plugin is quarantined (the host's
quarantine: ``PluginFailed`` → the log, ``plugin_errors``, ``netra-supervisor
plugins``), the stuck thread is abandoned (a daemon; whatever it does when it returns
is ignored) and a fresh delivery thread goes on with the next implementation. A slow
plugin therefore costs the hooks at most one ``hook_timeout``, and the run's
deadlines nothing.

**Barriers.** :meth:`HookDelivery.settle` waits until everything submitted has been
delivered (or timed out). The loop calls it at iteration boundaries, so a hook that
prepares the next deploy (the demo's developer commits a fix in
``netra_iteration_finished``) has finished before that deploy.

**A full queue** (only while a hook is stuck, or plugins are much slower than the
tests): the oldest queued ``netra_results`` batch is dropped, counted and reported as
a warning. Other lifecycle calls are few (per run, iteration, deploy, phase, hang) and
are never dropped, even beyond the bound.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from supervisor.config import Config
from supervisor.core.bus import ResultBatcher
from supervisor.core.changes import CHANGE_KEYS
from supervisor.core.events import (
    DeployFinished,
    Event,
    IterationFinished,
    IterationStarted,
    LogLine,
    PhaseFinished,
    RunFinished,
    RunStarted,
    TestHung,
    TestResult,
    TestStarted,
)
from supervisor.plugins import ImplCall, PluginError, PluginHost

QUEUE_SIZE = 1000  # hook calls waiting before the oldest netra_results batch is dropped
SOURCE = "plugins"  # the log source of what the delivery reports


@dataclass
class _Pending:
    """One submitted hook call: the implementations still to call, in order."""

    calls: deque[ImplCall]
    results: int  # > 0: a netra_results batch of that many results (may be dropped)


@dataclass(frozen=True)
class _Running:
    """The implementation being called now, by which delivery thread, until when."""

    call: ImplCall
    deadline: float
    generation: int
    thread: int


class HookDelivery:
    """Calls lifecycle hook implementations on their own thread, with a timeout each.

    ``quarantine(plugin, hook, error)`` is the host's (it reports the failure, and
    raises :class:`PluginError` in strict mode, which goes to ``on_fatal``);
    ``report`` takes the warnings (``LogLine`` events). No thread is started before
    the first :meth:`submit`: a run whose plugins implement no lifecycle hook costs
    nothing.
    """

    def __init__(
        self,
        timeout: float,
        *,
        quarantine: Callable[[str, str, str], object],
        report: Callable[[Event], None] = lambda event: None,
        on_fatal: Callable[[PluginError], None] = lambda exc: None,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.timeout = timeout
        self.queue_size = max(1, queue_size)
        self._quarantine = quarantine
        self._report = report
        self._on_fatal = on_fatal
        self.dropped_batches = 0
        self.dropped_results = 0
        self.timed_out: list[str] = []  # "plugin: hook" per abandoned call
        self._reported_drops = 0
        self._queue: deque[_Pending] = deque()
        self._current: _Pending | None = None
        self._running: _Running | None = None
        self._handling = False  # the watcher is quarantining a stuck call
        self._generation = 0  # the live delivery thread's; older ones are abandoned
        self._started = False
        self._closed = False
        self._watcher_idle = False
        lock = threading.Lock()
        self._lock = lock
        self._has_work = threading.Condition(lock)  # the delivery thread waits here
        self._watch = threading.Condition(lock)  # the watcher waits here
        self._settled = threading.Condition(lock)  # settle() waits here

    # ------------------------------------------------------------------ producer side

    def submit(self, calls: list[ImplCall], results: int = 0) -> None:
        """Queue one hook call (its implementations, in order); never blocks on plugins.

        ``results`` is the size of a ``netra_results`` batch: such calls are the ones
        dropped when the queue is full. Nothing happens for an empty ``calls``.
        """
        if not calls:
            return
        with self._lock:
            if self._closed:
                return
            if len(self._queue) >= self.queue_size and not self._make_room(results):
                return
            self._queue.append(_Pending(deque(calls), results))
            if not self._started:
                self._started = True
                self._start_worker()
                threading.Thread(
                    target=self._watch_loop, name="netra hooks watch", daemon=True
                ).start()
            self._has_work.notify()

    def _make_room(self, results: int) -> bool:
        """Drop the oldest queued results batch (or this one); False: drop this call."""
        victim = next((p for p in self._queue if p.results), None)
        if victim is not None:
            self._queue.remove(victim)
            self._count_drop(victim.results)
            return True
        if results:
            self._count_drop(results)
            return False
        return True  # a lifecycle call other than results is kept, beyond the bound

    def _count_drop(self, results: int) -> None:
        self.dropped_batches += 1
        self.dropped_results += results

    # ------------------------------------------------------------------ barriers

    def _idle(self) -> bool:
        return (
            not self._queue
            and (self._current is None or not self._current.calls)
            and self._running is None
            and not self._handling
        )

    def settle(self) -> None:
        """Wait until every submitted call has been delivered, or timed out.

        Bounded by ``hook_timeout`` per stuck implementation (each stuck plugin is
        quarantined, so it cannot stall a later barrier). Returns at once when idle.
        """
        with self._lock:
            while not self._idle():
                self._settled.wait()

    def close(self) -> None:
        """Settle, then let the threads end; later submits are ignored. Idempotent."""
        self.settle()
        with self._lock:
            self._closed = True
            self._has_work.notify_all()
            self._watch.notify_all()
        self._report_drops()

    # ------------------------------------------------------------------ delivery thread

    def _start_worker(self) -> None:
        """A fresh delivery thread for the current generation (lock held)."""
        threading.Thread(
            target=self._work, args=(self._generation,), name="netra hooks", daemon=True
        ).start()

    def _next(self, generation: int) -> ImplCall | None:
        """The next implementation to call (lock held); None: this thread should end."""
        while True:
            if generation != self._generation:
                return None
            if self._current is not None and self._current.calls:
                return self._current.calls.popleft()
            self._current = None
            if self._queue:
                self._current = self._queue.popleft()
                continue
            if self._idle():
                self._settled.notify_all()
            if self._closed:
                return None
            self._has_work.wait()

    def _work(self, generation: int) -> None:
        while True:
            with self._lock:
                call = self._next(generation)
                if call is None:
                    return
                deadline = time.monotonic() + self.timeout
                self._running = _Running(call, deadline, generation, threading.get_ident())
                if self._watcher_idle:
                    self._watch.notify()
            try:
                self._report_drops()
                call.run()  # isolated by the host: a plugin's exception quarantines it
            except PluginError as exc:  # strict mode: the run stops, the CLI exits 2
                self._on_fatal(exc)
            except Exception as exc:  # noqa: BLE001 - reporting failed; keep delivering
                print(f"netra-supervisor: hook delivery: {exc!r}", file=sys.stderr)
            with self._lock:
                if generation != self._generation:
                    return  # abandoned while the call ran: deliver nothing more
                self._running = None

    def _report_drops(self) -> None:
        with self._lock:
            new = self.dropped_batches - self._reported_drops
            self._reported_drops = self.dropped_batches
            batches, results = self.dropped_batches, self.dropped_results
        if new:
            self._report(
                LogLine(
                    "warning",
                    SOURCE,
                    f"plugin hooks fell behind: {batches} netra_results batch(es) "
                    f"({results} results) dropped so far, the oldest first",
                )
            )

    # ------------------------------------------------------------------ watcher thread

    def _watch_loop(self) -> None:
        while True:
            stuck = self._wait_for_overrun()
            if stuck is None:
                return
            self._abandon(stuck)

    def _wait_for_overrun(self) -> _Running | None:
        """Block until a call passes its deadline (returned, its thread abandoned)."""
        with self._lock:
            while True:
                running = self._running
                if running is None:
                    if self._closed:
                        return None
                    self._watcher_idle = True
                    self._watch.wait()
                    self._watcher_idle = False
                    continue
                left = running.deadline - time.monotonic()
                if left > 0:
                    self._watch.wait(left)
                    continue
                self._generation += 1
                self._running = None
                self._handling = True
                return running

    def _abandon(self, stuck: _Running) -> None:
        """Quarantine the stuck call's plugin, then a fresh thread takes the queue on."""
        call = stuck.call
        name = call.record.name
        where = _stuck_at(stuck.thread, call.record.file)
        limit = f"{self.timeout:g}s"  # as configured: "2s", "0.5s", "30s"
        try:
            self._quarantine(
                name, call.hook, f"TimeoutError: still running after hook_timeout {limit}{where}"
            )
            self._report(
                LogLine(
                    "error",
                    SOURCE,
                    f"plugin {name!r}: {call.hook} ran longer than hook_timeout {limit}: "
                    "the call is abandoned, the other plugins' hooks go on",
                )
            )
        except PluginError as exc:  # strict mode
            self._on_fatal(exc)
        except Exception as exc:  # noqa: BLE001 - reporting failed; the watcher must go on
            print(f"netra-supervisor: hook timeout: {exc!r}", file=sys.stderr)
        finally:
            with self._lock:
                self.timed_out.append(f"{name}: {call.hook}")
                self._handling = False
                self._start_worker()  # after the quarantine: it skips the stuck plugin
                if self._idle():
                    self._settled.notify_all()


def _stuck_at(thread: int, file: str) -> str:
    """`` (file.py:12)``: where the stuck thread is, in the plugin's own file if it can."""
    frame = sys._current_frames().get(thread)
    innermost = frame
    while frame is not None:
        if file and os.path.abspath(frame.f_code.co_filename) == os.path.abspath(file):
            break
        frame = frame.f_back
    frame = frame or innermost
    if frame is None:
        return ""
    return f" ({os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno})"


class HookBridge:
    """Turns events into lifecycle hook calls, delivered off the emitting thread.

    Called by the bus under its lock, often from a runner's thread where deadlines
    are checked: it only queues the calls (:class:`HookDelivery`, one thread, in event
    order, ``[plugins] hook_timeout`` per implementation). Results go to plugins in
    batches. The loop waits for :meth:`settle` at iteration boundaries.
    """

    def __init__(
        self,
        host: PluginHost,
        config: Config,
        stop: threading.Event,
        report: Callable[[Event], None] = lambda event: None,
    ) -> None:
        self.host = host
        self.config = config
        self.stop = stop
        #: a strict-mode plugin error: the run stops, and the CLI exits 2 with it
        self.fatal: PluginError | None = None
        self.delivery = HookDelivery(
            config.plugins.hook_timeout,
            quarantine=host.quarantine,
            report=report,
            on_fatal=self._fatal,
        )
        self.batcher = ResultBatcher(
            lambda batch: self._call("netra_results", len(batch), batch=batch)
        )
        self.settle = self.delivery.settle
        self.close = self.delivery.close

    def strict_failure(self, exc: PluginError) -> None:
        """A plugin failed under ``NETRA_STRICT_PLUGINS=1`` (also in another delivery,
        the evidence hooks'): the run stops, and the CLI exits 2 with the first one."""
        self._fatal(exc)

    def _fatal(self, exc: PluginError) -> None:
        # NETRA_STRICT_PLUGINS=1: remember the first error, stop the run cleanly; the
        # session re-raises it at the end (exit 2).
        if self.fatal is None:
            self.fatal = exc
        self.stop.set()

    def _call(self, hook: str, results: int = 0, **kwargs: object) -> None:
        self.delivery.submit(self.host.lifecycle_calls(hook, kwargs), results)

    def many(self, events: list[Event]) -> None:
        """:meth:`__call__` for a batch: each run of results to the batcher at once,
        the other events one by one, in order (a phase's end flushes what came before)."""
        results: list[TestResult] = []
        for event in events:
            kind = type(event)
            if kind is TestResult:
                results.append(event)  # type: ignore[arg-type]
            elif kind is not TestStarted:
                if results:
                    self.batcher.add_many(results)
                    results = []
                self(event)
        self.batcher.add_many(results)

    def __call__(self, event: Event) -> None:
        kind = type(event)
        if kind is TestResult:  # nearly every event: batched, no hook per result
            self.batcher(event)
            return
        if kind is TestStarted:  # no hook
            return
        call = self._call
        if isinstance(event, RunStarted):
            call("netra_run_started", run_id=event.run_id, config=self.config)
        elif isinstance(event, IterationStarted):
            call("netra_iteration_started", run_id=event.run_id, iteration=event.iteration)
        elif isinstance(event, DeployFinished):
            call(
                "netra_deploy_finished",
                run_id=event.run_id,
                iteration=event.iteration,
                backend=event.backend,
                revision=event.revision,
                ok=event.status != "failed",
                message=event.message,
            )
        elif isinstance(event, PhaseFinished):
            self.batcher.flush()
            call(
                "netra_phase_finished",
                run_id=event.run_id,
                iteration=event.iteration,
                phase=event.name,
                status=event.status,
                counts=dict(event.counts),
            )
        elif isinstance(event, TestHung):
            call("netra_test_hung", event=event)
        elif isinstance(event, IterationFinished):
            self.batcher.flush()
            call(
                "netra_iteration_finished",
                run_id=event.run_id,
                iteration=event.iteration,
                status=event.status,
                counts=dict(event.counts),
                changes={**dict.fromkeys(CHANGE_KEYS, 0), **(event.changes or {})},
            )
        elif isinstance(event, RunFinished):
            self.batcher.flush()
            call(
                "netra_run_finished",
                run_id=event.run_id,
                status=event.status,
                exit_code=event.exit_code,
            )
