"""Retries (``retries = N``): what runs again at the end of a suite, and what is flaky.

A suite's tests that failed, errored, hung or crashed (and are not quarantined: their
results count for nothing) run again once the rest of the suite has run (a backend that was briefly down has had time to recover), in a fresh
run of the suite limited to them (``RunContext.only``, the verify pass's mechanism),
up to N more times. Each run is an *attempt*: ``results.attempt`` 1 for the first,
2, 3 … for the retries. A test that did not pass on attempt 1 and passes on a later
one is **flaky** in this iteration: its passing result carries ``flaky = True`` and
counts under :data:`~supervisor.core.events.FLAKY`, not ``passed``.

Plain logic over plain data, no processes: the loop feeds it results and runs the
rounds it asks for.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Mapping

from supervisor.config import PhaseConfig, RunConfig, SuiteConfig
from supervisor.core.events import FAILING_OUTCOMES, FLAKY, GREEN_OUTCOMES, TestResult

#: the ids a run reports for a suite that could not run at all (not tests: a retry
#: limited to them would run nothing)
_NOT_TESTS = ("::(suite)", "::(startup)")


def retries_for(run: RunConfig, phase: PhaseConfig, suite: SuiteConfig) -> int:
    """``retries`` of the suite, else of the phase, else of ``[run]`` (default 0)."""
    for value in (suite.retries, phase.retries):
        if value is not None:
            return value
    return run.retries


def retryable(nodeid: str, outcome: str) -> bool:
    """Whether a result asks for a retry: it did not pass, and it is a test."""
    return outcome in FAILING_OUTCOMES and not nodeid.endswith(_NOT_TESTS)


def count_key(event: TestResult) -> str:
    """The key a result counts under: its outcome, or :data:`FLAKY`."""
    return FLAKY if event.flaky else event.outcome


def failing(counts: Mapping[str, int], flaky_fails: bool = False) -> int:
    """How many counted tests fail a gate: the non-green outcomes, and the flaky ones
    when ``flaky_counts_as = "fail"`` (``flaky_fails``)."""
    return sum(
        value
        for key, value in counts.items()
        if key not in GREEN_OUTCOMES and (key != FLAKY or flaky_fails)
    )


class SuiteAttempts:
    """One suite's results in one phase, across its attempts.

    ``mark`` stamps each result with its attempt (and ``flaky`` when it is a retry that
    passed); ``next_round`` says which tests run again, if any. A test that was retried
    and passed is not retried again; one that keeps failing is retried until
    ``retries`` more attempts have run. A kind may report from its own threads, so
    every method takes the lock.
    """

    def __init__(self, retries: int) -> None:
        self._lock = threading.Lock()
        self.retries = retries
        self.attempt = 1
        #: tests that did not pass on attempt 1: nodeid -> that outcome and message
        self.first: dict[str, tuple[str, str]] = {}
        #: the latest outcome of every test that reported in this suite run
        self.latest: dict[str, str] = {}

    def mark(self, event: TestResult) -> TestResult:
        """``event`` as recorded: with its attempt number, and ``flaky`` (and a message
        saying what attempt 1 was) for a retry that passed."""
        with self._lock:
            return self._mark(event)

    def _mark(self, event: TestResult) -> TestResult:
        if self.attempt == 1:
            # a quarantined test's result counts for nothing: running it again would
            # only cost time (a hang: a deadline per retry)
            if retryable(event.nodeid, event.outcome) and not event.quarantined:
                self.first[event.nodeid] = (event.outcome, event.message)
            self.latest[event.nodeid] = event.outcome
            return event
        self.latest[event.nodeid] = event.outcome
        first = self.first.get(event.nodeid)
        flaky = first is not None and event.outcome in GREEN_OUTCOMES
        message = event.message
        if flaky and first is not None and not message:
            outcome, why = first
            line = why.strip().splitlines()[0] if why.strip() else ""
            message = f"passed on attempt {self.attempt}; attempt 1 {outcome}" + (
                f": {line}" if line else ""
            )
        return dataclasses.replace(event, attempt=self.attempt, flaky=flaky, message=message)

    def next_round(self) -> frozenset[str] | None:
        """The tests to run again now (and the attempt moves on), or ``None``: no
        retries left, or nothing left to retry."""
        with self._lock:
            return self._next_round()

    def _next_round(self) -> frozenset[str] | None:
        if self.attempt > self.retries:
            return None
        again = frozenset(
            nodeid for nodeid in self.first if retryable(nodeid, self.latest.get(nodeid, "passed"))
        )
        if not again:
            return None
        self.attempt += 1
        return again

    def may_retry(self, nodeid: str, outcome: str, quarantined: bool = False) -> bool:
        """Whether this result of the current attempt will get another attempt (the
        early gate verdict must not count it as a final failure yet)."""
        return (
            self.attempt <= self.retries
            and not quarantined
            and retryable(nodeid, outcome)
            and (self.attempt == 1 or nodeid in self.first)
        )


__all__ = ["SuiteAttempts", "count_key", "failing", "retries_for", "retryable"]
