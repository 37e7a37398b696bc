"""A phase's gate: whether it holds, and whether it still can (``stop_on_gate``).

Plain logic over counts and test ids, no threads and no processes, so every verdict
is unit-tested. :class:`PhaseTally` folds what a phase's suites report (collected
ids, results, which suites are done); :func:`gate_lost` decides from it, while the
phase runs, that no outcome of the tests still to run can make the gate hold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping

from supervisor.config import PhaseConfig
from supervisor.core.events import FLAKY, OUTCOMES, TestResult
from supervisor.core.retries import count_key, failing


def gate_holds(phase: PhaseConfig, counts: Mapping[str, int], flaky_fails: bool = False) -> bool:
    """Whether the phase's gate lets the iteration go on. A flaky test (passed on a
    retry) fails it only under ``flaky_counts_as = "fail"`` (``flaky_fails``)."""
    ran = sum(v for k, v in counts.items() if k != "skipped")
    return _holds(phase, ran, failing(counts, flaky_fails))


def _holds(phase: PhaseConfig, ran: int, bad: int) -> bool:
    """The gate's verdict on ``ran`` tests (skipped left out) of which ``bad`` fail it."""
    if phase.gate == "none":
        return True
    if phase.gate == "all-pass":
        return bad <= 0
    if ran == 0:
        return True
    return (ran - bad) / ran >= phase.gate_ratio


def gate_lost(
    phase: PhaseConfig,
    counts: Mapping[str, int],
    remaining: int | None,
    retryable: int = 0,
    flaky_fails: bool = False,
) -> bool:
    """Whether the gate can no longer hold, whatever the ``remaining`` tests do.

    The best case is every remaining test passing; if the gate fails even then, it is
    lost. ``remaining`` is ``None`` while some suite's count is unknown (not started,
    or not collected yet): a ratio could still be reached by enough passing tests, so
    only a failure under ``all-pass`` decides then. ``retryable`` of the failures will
    run again (``retries``): at best they pass then, unless a flaky pass fails the
    gate anyway (``flaky_fails``).
    """
    if phase.gate == "none":
        return False
    ran = sum(v for k, v in counts.items() if k != "skipped")
    bad = failing(counts, flaky_fails)
    if not flaky_fails:
        bad -= retryable
    if remaining is None:
        return phase.gate == "all-pass" and not _holds(phase, ran, bad)
    return not _holds(phase, ran + remaining, bad)


class PhaseTally:
    """What a running phase's suites reported: the latest outcome per test (a re-run
    replaces the first; a flaky pass counts under ``flaky``), the ids each suite
    collected, which suites are done, and the failures a retry may still turn.

    ``emit`` may be called from a kind's own threads, so every method takes the lock.
    """

    def __init__(self, suites: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self.suites = tuple(suites)
        self.outcomes: dict[tuple[str, str], str] = {}
        self._counts = dict.fromkeys((*OUTCOMES, FLAKY), 0)
        #: the results of quarantined tests, per outcome: apart from ``counts``
        self._quarantined: dict[str, int] = {}
        self._quarantined_ids: set[tuple[str, str]] = set()
        self._resulted: dict[str, set[str]] = {}
        #: per suite that reported what it collected: those ids without a result yet
        self._left: dict[str, set[str]] = {}
        self._started: set[str] = set()
        self._done: set[str] = set()
        #: failing results that will run again (``retries``)
        self._retrying: set[tuple[str, str]] = set()

    def add(self, event: TestResult, may_retry: bool = False) -> None:
        """A result; ``may_retry``: it failed, and the suite will run it again."""
        with self._lock:
            self._set(event.suite, event.nodeid, count_key(event), event.quarantined)
            key = (event.suite, event.nodeid)
            if may_retry and not event.quarantined:  # a quarantined failure never gates
                self._retrying.add(key)
            else:
                self._retrying.discard(key)

    def retryable(self) -> int:
        """Failures that will run again: at best they pass then."""
        with self._lock:
            return len(self._retrying)

    def seed(
        self, suite: str, outcomes: Mapping[str, str], quarantined: frozenset[str] = frozenset()
    ) -> None:
        """Outcomes recorded before a ``--resume``: they count as if reported now
        (those of ``quarantined`` tests apart, as quarantined)."""
        with self._lock:
            for nodeid, outcome in outcomes.items():
                self._set(suite, nodeid, outcome, nodeid in quarantined)

    def _set(self, suite: str, nodeid: str, outcome: str, quarantined: bool = False) -> None:
        key = (suite, nodeid)
        before = self.outcomes.get(key)
        if before is not None:
            counts = self._quarantined if key in self._quarantined_ids else self._counts
            counts[before] -= 1
        self.outcomes[key] = outcome
        # a quarantined test's result is counted apart: it never decides the gate
        if quarantined:
            self._quarantined_ids.add(key)
            self._quarantined[outcome] = self._quarantined.get(outcome, 0) + 1
        else:
            self._quarantined_ids.discard(key)
            self._counts[outcome] = self._counts.get(outcome, 0) + 1
        self._resulted.setdefault(suite, set()).add(nodeid)
        self._left.get(suite, set()).discard(nodeid)

    def collected(self, suite: str, nodeids: Iterable[str]) -> None:
        with self._lock:
            done = self._resulted.get(suite, set())
            self._left.setdefault(suite, set()).update(n for n in nodeids if n not in done)

    def started(self, suite: str) -> None:
        with self._lock:
            self._started.add(suite)

    def done(self, suite: str) -> None:
        """The suite's ``run`` returned (retries included): whatever it did not run, it
        will not run, and its failures are final."""
        with self._lock:
            self._done.add(suite)
            self._retrying = {key for key in self._retrying if key[0] != suite}

    def counts(self) -> dict[str, int]:
        """Per outcome (and ``flaky``), every key present; quarantined tests' results
        are not in it."""
        with self._lock:
            return dict(self._counts)

    def quarantined(self) -> dict[str, int]:
        """The quarantined tests' results per outcome (only outcomes that occurred)."""
        with self._lock:
            return {k: v for k, v in self._quarantined.items() if v}

    def remaining(self) -> int | None:
        """Tests collected but without a result in the suites not done; ``None`` while
        a suite not done has not reported what it collected (its count is unknown)."""
        with self._lock:
            left = 0
            for suite in self.suites:
                if suite in self._done:
                    continue
                if suite not in self._left:
                    return None
                left += len(self._left[suite])
            return left

    def not_run(self) -> tuple[int, tuple[str, ...]]:
        """After a cut: (collected tests of the started suites without a result, the
        suites never started)."""
        with self._lock:
            count = sum(len(self._left.get(s, ())) for s in self.suites if s in self._started)
            return count, tuple(s for s in self.suites if s not in self._started)
