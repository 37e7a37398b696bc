"""The verify pass (``[run] verify = true``): what the next iteration re-runs first.

After an iteration that left tests not passing, the next one (after its deploy and
health check) first re-runs only those tests, phase by phase with each phase's suites
and deadlines, as one phase named ``verify`` with sequence number 0: the configured
phases keep their numbers 1, 2 …, so ``--resume``'s (phase seq, suite) keys and every
"phase N" stay what they were. This module is the plain planning logic; the loop
runs the plan.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from supervisor.config import PhaseConfig, SuiteConfig
from supervisor.core.events import FAILING_OUTCOMES, VERIFY_NAME, VERIFY_SEQ

#: the verify pass's gate: every test it re-runs must pass
VERIFY_GATE = "all-pass"
#: outcomes that put a test in the next verify pass (what "did not pass" means)
TO_VERIFY = FAILING_OUTCOMES

#: (phase seq, suite) -> nodeid -> latest outcome; seq 0 is the verify pass
Outcomes = Mapping[tuple[int, str], Mapping[str, str]]


@dataclass(frozen=True)
class VerifyPart:
    """One suite's share of the verify pass: its tests to re-run, under the phase
    (``seq``, ``phase``) whose deadlines apply."""

    seq: int
    phase: PhaseConfig
    suite: SuiteConfig
    tests: tuple[str, ...]


class IterationOutcomes:
    """The latest outcome of every test of one iteration, by the configured phase it
    belongs to (a verify result is filed under the phase it re-checked). The loop keeps
    the last iteration that ran tests: it is what the next verify pass re-runs."""

    def __init__(self) -> None:
        self.outcomes: dict[tuple[int, str], dict[str, str]] = {}

    def add(self, seq: int, suite: str, nodeid: str, outcome: str) -> None:
        self.outcomes.setdefault((seq, suite), {})[nodeid] = outcome

    def seed(self, seq: int, suite: str, outcomes: Mapping[str, str]) -> None:
        for nodeid, outcome in outcomes.items():
            self.add(seq, suite, nodeid, outcome)

    def __bool__(self) -> bool:
        return bool(self.outcomes)


def plan(
    previous: Outcomes,
    phases: Sequence[PhaseConfig],
    select: Callable[[tuple[str, ...]], Iterable[SuiteConfig]],
    leave_out: Callable[[str, str], bool] | None = None,
) -> list[VerifyPart]:
    """The verify pass after an iteration with these ``previous`` outcomes.

    Every test whose latest outcome was failed, error, hung or crashed, in the phase
    and suite it ran in, in the order the phases run. A test filed under seq 0 (read
    back from the history, where the verify pass is phase 0), or under a phase that no
    longer runs its suite, belongs to the first phase that runs its suite; a suite no
    phase runs any more is left out. ``select`` is ``Config.select_suites``;
    ``leave_out(suite, nodeid)`` (the quarantine in force) drops tests whose results
    count for nothing.
    """
    suites_of = [tuple(select(phase.suites)) for phase in phases]
    failing: dict[tuple[int, str], dict[str, None]] = {}
    for (seq, name), outcomes in previous.items():
        home = _home(seq, name, suites_of)
        if home is None:
            continue
        ids = failing.setdefault((home, name), {})
        for nodeid, outcome in outcomes.items():
            if outcome in TO_VERIFY and not (leave_out is not None and leave_out(name, nodeid)):
                ids[nodeid] = None
            else:
                ids.pop(nodeid, None)  # a later result of it passed
    parts = []
    for seq, (phase, suites) in enumerate(zip(phases, suites_of), start=1):
        for suite in suites:
            tests = tuple(failing.get((seq, suite.name), ()))
            if tests:
                parts.append(VerifyPart(seq, phase, suite, tests))
    return parts


def _home(seq: int, suite: str, suites_of: list[tuple[SuiteConfig, ...]]) -> int | None:
    """The configured phase (1-based) a test of ``suite`` filed under ``seq`` is in."""
    if 1 <= seq <= len(suites_of) and any(s.name == suite for s in suites_of[seq - 1]):
        return seq
    for index, suites in enumerate(suites_of, start=1):
        if any(s.name == suite for s in suites):
            return index
    return None


def describe(parts: Sequence[VerifyPart], iteration: int) -> str:
    """The verify phase's label (its ``impact``): what it re-runs, and from which
    iteration (0: unknown)."""
    count = sum(len(part.tests) for part in parts)
    tests = "test" if count == 1 else "tests"
    when = f"in iteration {iteration}" if iteration else "last time"
    return f"re-runs {count} {tests} not passing {when}"


__all__ = ["VERIFY_GATE", "VERIFY_NAME", "VERIFY_SEQ", "IterationOutcomes", "VerifyPart", "plan"]
