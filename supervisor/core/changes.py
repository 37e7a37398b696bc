"""New, still failing, fixed: each result against the same test's previous result.

After an iteration a person asks which failures are new, which were failing before,
and which the deploy fixed. The answer is a comparison with each test's latest result
*before the iteration began* (same suite; across runs, as the history holds it):

- a result that did not pass (failed, error, hung, crashed) is ``new`` when the test
  passed last time or has no history, ``still`` when it did not pass last time;
- a passing result (passed, xfailed, xpassed) of a test that did not pass last time
  is ``fixed``;
- anything else (a pass after a pass, skipped, xfailed ...) has no label.

Every attempt and re-run of a test within one iteration (retries, the verify pass)
is compared with the same baseline, so a test is new, still or fixed once per
iteration, whatever ran in between. Plain data, no clock, no database: the session
seeds the baseline from the history's latest results (the same rows as failed-first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import replace

from supervisor.core.bus import Emitter, many_of
from supervisor.core.events import (
    FAILING_OUTCOMES,
    GREEN_OUTCOMES,
    Event,
    IterationFinished,
    IterationStarted,
    TestResult,
)

NEW, STILL, FIXED = "new", "still", "fixed"
#: The keys of an iteration's change counts, in the order they are shown.
CHANGE_KEYS = ("new", "still", "fixed", "flaky")
#: What "passes now" means for ``fixed`` (``history diff`` too): green, not skipped.
PASSING = GREEN_OUTCOMES - {"skipped"}


def label(previous: str | None, outcome: str) -> str | None:
    """The change of one result, given the test's previous outcome (None: no history)."""
    was_bad = previous is not None and previous in FAILING_OUTCOMES
    if outcome in FAILING_OUTCOMES:
        return STILL if was_bad else NEW
    if outcome in PASSING and was_bad:
        return FIXED
    return None


class IterationChanges:
    """Counts of new / still / fixed / flaky tests in one iteration, by each test's last
    result (a test that failed, then passed on retry, counts once, as flaky)."""

    def __init__(self) -> None:
        #: (suite, nodeid) -> the key the test counts under (None: under none)
        self._final: dict[tuple[str, str], str | None] = {}

    def add(self, result: TestResult) -> None:
        key: str | None = result.change
        if result.outcome in PASSING and result.flaky:
            key = "flaky"
        self._final[(result.suite, result.nodeid)] = key

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CHANGE_KEYS, 0)
        for key in self._final.values():
            if key is not None:
                counts[key] += 1
        return counts

    def clear(self) -> None:
        self._final.clear()


def format_changes(counts: dict[str, int] | None) -> str:
    """``2 new · 1 still failing · 3 fixed · 1 flaky`` (flaky only when some are;
    empty when nothing changed and nothing still fails)."""
    if not counts or not any(counts.get(k) for k in CHANGE_KEYS):
        return ""
    parts = [
        f"{counts.get('new', 0)} new",
        f"{counts.get('still', 0)} still failing",
        f"{counts.get('fixed', 0)} fixed",
    ]
    if counts.get("flaky"):
        parts.append(f"{counts['flaky']} flaky")
    return " · ".join(parts)


class ChangeLabeller:
    """Labels each ``TestResult`` of a run against the test's previous result.

    :meth:`seed` it with the history's latest outcome per test, oldest first (rows
    ``(suite, nodeid, outcome)``; passing tests may be left out: no history and a pass
    label alike). Then :meth:`apply` each event in order: an ``IterationStarted``
    moves the last iteration's results into the baseline, a ``TestResult`` comes back
    with ``change`` set, an ``IterationFinished`` with ``changes``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._baseline: dict[tuple[str, str], str] = {}
        self._current: dict[tuple[str, str], str] = {}
        self._tally = IterationChanges()

    def seed(self, rows: Iterable[tuple[str, str, str]]) -> None:
        with self._lock:
            for suite, nodeid, outcome in rows:
                self._baseline[(suite, nodeid)] = outcome

    def previous(self, suite: str, nodeid: str) -> str | None:
        """The test's outcome before this iteration (None: no history)."""
        with self._lock:
            return self._baseline.get((suite, nodeid))

    def apply(self, event: Event) -> Event:
        with self._lock:
            return self._apply(event)

    def apply_many(self, events: list[Event]) -> list[Event]:
        """:meth:`apply` for a runner's batch, under one lock."""
        apply = self._apply
        with self._lock:
            return [apply(event) for event in events]

    def _apply(self, event: Event) -> Event:
        """One event; the caller holds the lock."""
        if isinstance(event, IterationStarted):
            self._baseline.update(self._current)
            self._current.clear()
            self._tally.clear()
        elif isinstance(event, TestResult):
            key = (event.suite, event.nodeid)
            if event.change is None:
                change = label(self._baseline.get(key), event.outcome)
                if change is not None:  # most results: a pass after a pass, no copy
                    event = replace(event, change=change)
            self._current[key] = event.outcome
            self._tally.add(event)
        elif isinstance(event, IterationFinished) and event.changes is None:
            event = replace(event, changes=self._tally.counts())
        return event


def labelling(emit: Callable[[Event], None], labeller: ChangeLabeller) -> Emitter:
    """``emit`` behind :meth:`ChangeLabeller.apply`: every consumer sees the labels."""
    apply, apply_many, many = labeller.apply, labeller.apply_many, many_of(emit)

    def emit_labelled(event: Event) -> None:
        emit(apply(event))

    def emit_many_labelled(events: list[Event]) -> None:
        many(apply_many(events))

    return Emitter(emit_labelled, emit_many_labelled)
