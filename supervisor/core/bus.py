"""Fan one stream of events out to every consumer, in order.

Runners call :meth:`EventBus.emit` from whatever thread they run in. Consumers are
called synchronously under one lock, so they see events in the order they happened
and must be cheap: the model folds, the store writer and sinks only enqueue, and the
plugin-hook batcher hands plugins lists of results instead of one call per result.

:meth:`EventBus.emit_many` hands on what one read of a runner brought (a hundred
tests' starts and results) under one lock acquisition; a consumer subscribed with a
``many`` callable folds the whole list at once (one lock of its own, one wake-up),
the others get the events one by one, in order either way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from supervisor.core.events import Event, TestResult
from supervisor.emitters import Emitter, many_of

Consumer = Callable[[Event], None]
ManyConsumer = Callable[[list[Event]], None]

__all__ = ["Emitter", "EventBus", "ResultBatcher", "many_of"]


class EventBus:
    """Synchronous, ordered fan-out of events to consumers."""

    def __init__(self) -> None:
        self._consumers: list[Consumer] = []
        self._many: list[ManyConsumer] = []
        self._lock = threading.RLock()

    def subscribe(self, consumer: Consumer, many: ManyConsumer | None = None) -> None:
        """``many`` (optional): the consumer's form for a list of events."""
        with self._lock:
            self._consumers.append(consumer)
            self._many.append(many or many_of(consumer))

    def emit(self, event: Event) -> None:
        with self._lock:
            for consumer in self._consumers:
                consumer(event)

    def emit_many(self, events: list[Event]) -> None:
        """Every event, in order, to every consumer: one lock for the batch."""
        if not events:
            return
        with self._lock:
            for many in self._many:
                many(events)


class ResultBatcher:
    """Collects results and hands them on in batches (for ``netra_results``).

    Flushes when ``max_batch`` results are waiting or ``max_age`` seconds passed since
    the last flush (checked as results arrive), and whenever :meth:`flush` is called
    (the loop does so at every phase end), so plugins never get one call per result.
    """

    def __init__(
        self,
        deliver: Callable[[list[TestResult]], None],
        max_batch: int = 500,
        max_age: float = 1.0,
    ) -> None:
        self._deliver = deliver
        self._max_batch = max_batch
        self._max_age = max_age
        self._pending: list[TestResult] = []
        self._last_flush = time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        if isinstance(event, TestResult):
            self.add_many([event])

    def add_many(self, results: list[TestResult]) -> None:
        """Queue results; hand the batch on if it is full or old. A run of results
        (one read of a runner) takes one lock and one check for all of them."""
        if not results:
            return
        with self._lock:
            self._pending.extend(results)
            due = (
                len(self._pending) >= self._max_batch
                or time.monotonic() - self._last_flush >= self._max_age
            )
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
            self._last_flush = time.monotonic()
        if batch:
            self._deliver(batch)
