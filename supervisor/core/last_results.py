"""What each test's latest result was: the order of failed-first, and what to verify.

A team that fixed three failing tests wants to know first whether the fix worked. So
in each suite the tests whose latest result did not pass (failed, error, hung,
crashed, xpassed) run before the others, in the order they last ran. "Latest" spans
runs: the session seeds this fold from the history database, then every result of
the run updates it. Plain data, no database, no clock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from supervisor.core.events import FAILING_OUTCOMES, Event, TestResult

#: outcomes that put a test first next time: not passing, or passing unexpectedly
RUN_FIRST = FAILING_OUTCOMES | {"xpassed"}


class LastResults:
    """The latest outcome of every test, per suite, in the order they happened.

    Subscribe it to the bus (it takes ``TestResult`` events); :meth:`seed` it first
    with what the history holds, oldest first.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: suite -> nodeid -> (position of its latest result, that outcome)
        self._latest: dict[str, dict[str, tuple[int, str]]] = {}
        self._position = 0

    def seed(self, rows: Iterable[tuple[str, str, str]]) -> None:
        """``(suite, nodeid, outcome)`` rows, oldest first: the history's latest result
        per test (the session passes only those that did not pass: the rest would
        not come first anyway)."""
        for suite, nodeid, outcome in rows:
            self._add(suite, nodeid, outcome)

    def __call__(self, event: Event) -> None:
        if isinstance(event, TestResult):
            self._add(event.suite, event.nodeid, event.outcome)

    def many(self, events: list[Event]) -> None:
        """:meth:`__call__` for a batch, under one lock."""
        with self._lock:
            for event in events:
                if type(event) is TestResult:
                    self._position += 1
                    latest = self._latest.get(event.suite)
                    if latest is None:
                        latest = self._latest[event.suite] = {}
                    latest[event.nodeid] = (self._position, event.outcome)

    def _add(self, suite: str, nodeid: str, outcome: str) -> None:
        with self._lock:
            self._position += 1
            self._latest.setdefault(suite, {})[nodeid] = (self._position, outcome)

    def run_first(self, suite: str) -> tuple[str, ...]:
        """The suite's tests whose latest result did not pass, in the order they ran."""
        with self._lock:
            latest = self._latest.get(suite, {})
            failing = [(pos, nodeid) for nodeid, (pos, out) in latest.items() if out in RUN_FIRST]
        return tuple(nodeid for _, nodeid in sorted(failing))

    def outcome(self, suite: str, nodeid: str) -> str | None:
        """The latest outcome of one test (``None``: never seen)."""
        with self._lock:
            entry = self._latest.get(suite, {}).get(nodeid)
        return entry[1] if entry else None
