"""Log sinks at run time: one bounded queue and one thread per ``[[sink]]``.

The event bus calls :class:`SinkSet` for every event; that only appends to each sink's
queue (a few microseconds), so a slow or failing sink never slows the run. Each
sink's own thread drains its queue in batches into the handle its kind's ``open``
returned. When a queue is full the oldest event is dropped and counted; a sink whose
``write`` raises ``max_failures`` times in a row is quarantined (reported like a
failing plugin: the log, ``plugin_errors``) and gets no more events. At the end of the
run every sink gets :data:`CLOSE_GRACE` seconds to deliver what is queued; drops and
undelivered events are reported then.

Which events a sink gets: ``[[sink]] events = [...]`` (event type names, e.g.
``iteration_finished``, ``test_hung``), else the kind's ``default_events``, else all.
A kind may tune its worker with class attributes ``queue_size``, ``batch_size`` and
``max_failures``, and may define ``validate(sink, config)`` (raise ``OptionError``;
called here, after its declared ``keys`` were parsed into ``sink.options``),
``secrets(sink)`` (values to mask everywhere) and, on its handle, ``hurry()`` (called
when the run ends: stop waiting between retries).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from supervisor.config import Config, ConfigError, did_you_mean, sink_label
from supervisor.core import events as events_module
from supervisor.core.events import Event, LogLine, PluginFailed, utc_at, utc_of_monotonic
from supervisor.text import exception_line

if TYPE_CHECKING:
    from supervisor.plugins import PluginHost

QUEUE_SIZE = 10_000  # events waiting per sink before the oldest is dropped
BATCH_SIZE = 500  # events per write() call
MAX_FAILURES = 5  # consecutive failed writes before a sink is quarantined
CLOSE_GRACE = 5.0  # seconds the end of the run waits for every sink to drain

Report = Callable[[Event], None]


def _event_kinds() -> frozenset[str]:
    """Every event type name (``Event.kind``) a sink can select."""
    kinds = set()
    for obj in vars(events_module).values():
        if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event:
            kinds.add(obj.kind)
    return frozenset(kinds)


EVENT_KINDS = _event_kinds()


def event_record(event: Event) -> dict[str, Any]:
    """A JSON-ready dict of an event: ``event`` (its type name), ``time`` and its fields.

    ``time`` is the event's own timestamp when it has one, else now (UTC ISO-8601). A
    monotonic ``at`` (``TestStarted``) is turned into wall-clock ISO-8601 text.
    """
    record: dict[str, Any] = {"event": event.kind, "time": ""}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if f.name == "at" and isinstance(value, float):
            value = utc_of_monotonic(value)
        elif isinstance(value, tuple):
            value = list(value)
        record[f.name] = value
    for key in ("at", "started_at", "finished_at"):
        if isinstance(record.get(key), str) and record[key]:
            record["time"] = record[key]
            break
    else:
        record["time"] = utc_at(time.time())
    return record


def redact_event(event: Event, redact: Callable[[str], str]) -> Event:
    """The event with every secret masked in its text fields (itself when clean)."""
    changes = {}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(value, str) and value:
            masked = redact(value)
            if masked != value:
                changes[f.name] = masked
    return dataclasses.replace(event, **changes) if changes else event


class SinkWorker:
    """One sink: its queue, its thread, its counters."""

    def __init__(
        self,
        label: str,
        plugin: str,
        handle: Any,
        *,
        kinds: frozenset[str] | None = None,
        queue_size: int = QUEUE_SIZE,
        batch_size: int = BATCH_SIZE,
        max_failures: int = MAX_FAILURES,
    ) -> None:
        self.label, self.plugin, self.handle = label, plugin, handle
        self.kinds = kinds
        self.queue_size = max(1, queue_size)
        self.batch_size = max(1, batch_size)
        self.max_failures = max(1, max_failures)
        self.dropped = 0  # queue full: oldest event dropped
        self.delivered = 0
        self.failed = 0  # events in writes that raised
        self.undelivered = 0  # left behind at quarantine or when the run ended
        self.quarantined = ""
        self._queue: deque[Event] = deque()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._cancel = threading.Event()
        self._failures = 0
        self._report: Report = lambda event: None
        self._redact: Callable[[str], str] = lambda text: text
        self._thread = threading.Thread(target=self._run, name=f"netra {label}", daemon=True)

    def start(self, report: Report, redact: Callable[[str], str]) -> None:
        self._report, self._redact = report, redact
        self._thread.start()

    def put(self, event: Event) -> None:
        """Queue an event (drops the oldest when full). Cheap; never blocks on the sink."""
        if self.kinds is not None and event.kind not in self.kinds:
            return
        if self.quarantined or self._closing.is_set():
            return
        with self._lock:
            waiting = len(self._queue)
            if waiting >= self.queue_size:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(event)
        if not waiting:  # the thread drains until empty: wake it only when it may sleep
            self._wake.set()

    def _take(self) -> list[Event]:
        with self._lock:
            n = min(self.batch_size, len(self._queue))
            return [self._queue.popleft() for _ in range(n)]

    def _run(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            while not self.quarantined:
                batch = self._take()
                if not batch:
                    break
                if self._cancel.is_set():
                    with self._lock:
                        self.undelivered += len(batch)
                    continue
                self._deliver(batch)
            if self.quarantined or (self._closing.is_set() and not self._queue):
                break
        self._close_handle()

    def _deliver(self, batch: list[Event]) -> None:
        batch = [redact_event(event, self._redact) for event in batch]
        try:
            self.handle.write(batch)
        except Exception as exc:  # noqa: BLE001 - a sink's failure is counted, never raised
            self.failed += len(batch)
            self._failures += 1
            if self._failures >= self.max_failures:
                self._quarantine(self._redact(exception_line(exc)))
            return
        self._failures = 0
        self.delivered += len(batch)

    def _quarantine(self, last_error: str) -> None:
        with self._lock:
            self.undelivered += len(self._queue)
            self._queue.clear()
            self.quarantined = (
                f"{self._failures} consecutive failed writes, the last: {last_error}; "
                "no more events go to this sink in this run"
            )
        self._report(
            PluginFailed(plugin=self.plugin, hook=f"{self.label}.write", error=self.quarantined)
        )

    def _close_handle(self) -> None:
        try:
            self.handle.close()
        except Exception as exc:  # noqa: BLE001 - closing: report and go on
            self._report(
                LogLine("warning", "sinks", f"{self.label}: close failed: {exception_line(exc)}")
            )

    def begin_close(self) -> None:
        """No more events; deliver what is queued without waiting between retries."""
        self._closing.set()
        hurry = getattr(self.handle, "hurry", None)
        if callable(hurry):
            try:
                hurry()
            except Exception:  # noqa: BLE001 - optional courtesy call
                pass
        self._wake.set()

    def finish_close(self, deadline: float) -> None:
        """Wait until ``deadline`` (monotonic) for the queue to drain, then abandon it."""
        if self._thread.is_alive():
            self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            self._cancel.set()
            self._wake.set()
            self._thread.join(0.2)  # a request in flight may still hang; the thread is a daemon
        if self._thread.is_alive():  # abandoned: whatever it says later, nobody listens
            self._report = lambda event: None
        with self._lock:
            self.undelivered += len(self._queue)
            self._queue.clear()

    def summary(self) -> str:
        """One line about what went wrong, or ``""`` when every event was delivered."""
        parts = []
        if self.dropped:
            parts.append(f"{self.dropped} event(s) dropped because its queue was full")
        if self.failed:
            parts.append(f"{self.failed} event(s) in failed writes")
        if self.undelivered:
            parts.append(f"{self.undelivered} event(s) not delivered")
        if not parts:
            return ""
        state = " (quarantined)" if self.quarantined else ""
        return f"{self.label}{state}: " + ", ".join(parts) + f"; {self.delivered} delivered"


class SinkSet:
    """Every sink of a run; subscribe it to the bus, ``start`` it, ``close`` it at the end."""

    def __init__(self, workers: Iterable[SinkWorker] = (), secrets: Iterable[str] = ()) -> None:
        self.workers = list(workers)
        self.secrets = [s for s in secrets if s]
        self._report: Report = lambda event: None
        self._closed = False

    def __call__(self, event: Event) -> None:
        for worker in self.workers:
            worker.put(event)

    def wants(self, kind: str) -> bool:
        """Whether some sink gets events of type ``kind`` (``test_started``)."""
        return any(worker.kinds is None or kind in worker.kinds for worker in self.workers)

    def start(self, report: Report, redact: Callable[[str], str] = lambda text: text) -> None:
        self._report = report
        for worker in self.workers:
            worker.start(report, redact)

    def close(self, grace: float = CLOSE_GRACE) -> list[str]:
        """Drain every sink (together, at most ``grace`` seconds); report what was lost.

        Returns the report lines (also emitted as warnings); idempotent.
        """
        if self._closed:
            return []
        self._closed = True
        for worker in self.workers:
            worker.begin_close()
        deadline = time.monotonic() + grace
        for worker in self.workers:
            worker.finish_close(deadline)
        lines = [line for line in (w.summary() for w in self.workers) if line]
        for line in lines:
            self._report(LogLine("warning", "sinks", line))
        return lines


def open_sinks(
    host: PluginHost, config: Config, on_error: Callable[[PluginFailed], None]
) -> SinkSet:
    """Validate every ``[[sink]]`` and open it; nothing is started yet.

    Raises :class:`ConfigError` (exit 2, before anything runs) for an unknown kind or
    key, an unknown event name, what the kind's ``validate`` rejects, and an ``OSError``
    from ``open`` (a path that cannot be written). Any other exception from ``open`` is
    a plugin failure: reported through ``on_error`` (a :class:`PluginError` in strict
    mode) and the sink is left out. Kinds get their ``sink.options`` parsed.
    """
    config = host.validate_sinks(config)
    workers: list[SinkWorker] = []
    try:
        return _open_each(host, config, on_error, workers)
    except BaseException:
        for worker in workers:  # a later sink was refused: release the earlier ones
            try:
                worker.handle.close()
            except Exception:  # noqa: BLE001 - already failing with a clearer error
                pass
        raise


def _open_each(
    host: PluginHost,
    config: Config,
    on_error: Callable[[PluginFailed], None],
    workers: list[SinkWorker],
) -> SinkSet:
    from supervisor.plugins import PluginError

    kinds = host.sink_kinds()
    secrets: list[str] = []
    for index, sink in enumerate(config.sinks):
        label = sink_label(index, sink)
        where = f"{config.path}: {label}"
        for name in sink.events:
            if name not in EVENT_KINDS:
                raise ConfigError(
                    f"{where}.events: no event type {name!r}"
                    + did_you_mean(name, EVENT_KINDS, "known")
                )
        kind = kinds.get(sink.kind)
        if kind is None:  # its plugin failed in validate and was quarantined (reported)
            continue
        plugin = host.provider("sink kind", sink.kind) or "?"
        try:
            secrets_of = getattr(kind, "secrets", None)
            if callable(secrets_of):
                secrets.extend(secrets_of(sink) or ())
            handle = kind.open(sink, config)
        except ConfigError:
            raise
        except OSError as exc:
            raise ConfigError(
                f"{where}: cannot open: {exc.strerror or exc}"
                + (f" ({exc.filename})" if exc.filename else "")
                + "; fix the path or its permissions"
            ) from None
        except Exception as exc:  # noqa: BLE001 - a plugin bug: report, leave the sink out
            error = exception_line(exc)
            on_error(PluginFailed(plugin=plugin, hook=f"{label}.open", error=error))
            if host.strict:
                raise PluginError(plugin, f"{label}.open", error) from None
            continue
        selected = frozenset(sink.events) if sink.events else None
        default_events = getattr(kind, "default_events", None)
        if selected is None and default_events:
            selected = frozenset(default_events)
        workers.append(
            SinkWorker(
                label,
                plugin,
                handle,
                kinds=selected,
                queue_size=int(getattr(kind, "queue_size", QUEUE_SIZE)),
                batch_size=int(getattr(kind, "batch_size", BATCH_SIZE)),
                max_failures=int(getattr(kind, "max_failures", MAX_FAILURES)),
            )
        )
    return SinkSet(workers, secrets)
