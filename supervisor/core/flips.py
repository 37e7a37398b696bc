"""Which tests flip between pass and fail, and which quarantined ones pass again.

``quarantine suggest`` and ``[run] auto_quarantine`` decide from this: a test whose
outcome changes from one execution to the next **under one deploy revision** is
flaky (the code did not change; the test did), and the more often it flips, the
stronger the case to quarantine it. A quarantined test that passed its last N
executions could come out. Plain logic over rows the store reads
(:mod:`supervisor.store.quarantine_queries`), tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from supervisor.core.events import FAILING_OUTCOMES
from supervisor.core.quarantine import Entry, QuarantineList

#: Outcomes that take part in a flip: passed against failed, error, hung, crashed
#: (skips and xfails say nothing about the test's stability).
_COUNTED = FAILING_OUTCOMES | {"passed"}


@dataclass(frozen=True)
class Flipping:
    """One test's flips under the revision where it flipped most."""

    suite: str
    nodeid: str
    revision: str
    flips: int  # consecutive executions whose pass/fail differs
    executions: int  # passes and failures under that revision
    failed: int


def count_flips(rows: Iterable[tuple[str, str, str, str]]) -> list[Flipping]:
    """``(suite, nodeid, revision, outcome)`` rows, each test's oldest first → each
    test's revision with the most flips (ties: the later revision), most flips first.
    Tests that never flipped are left out."""
    per: dict[tuple[str, str, str], list[int]] = {}  # key -> [flips, executions, failed, last]
    order: dict[tuple[str, str], list[str]] = {}
    for suite, nodeid, revision, outcome in rows:
        if outcome not in _COUNTED:
            continue
        bad = int(outcome != "passed")
        key = (suite, nodeid, revision)
        state = per.get(key)
        if state is None:
            per[key] = [0, 1, bad, bad]
            order.setdefault((suite, nodeid), []).append(revision)
            continue
        state[0] += int(bad != state[3])
        state[1] += 1
        state[2] += bad
        state[3] = bad
    found = []
    for (suite, nodeid), revisions in order.items():
        best = max(revisions, key=lambda rev: (per[(suite, nodeid, rev)][0], revisions.index(rev)))
        flips, executions, failed, _ = per[(suite, nodeid, best)]
        if flips:
            found.append(Flipping(suite, nodeid, best, flips, executions, failed))
    found.sort(key=lambda f: (-f.flips, f.suite, f.nodeid))
    return found


def not_quarantined(flipping: Iterable[Flipping], quarantine: QuarantineList) -> list[Flipping]:
    """The ones no entry covers yet (what is worth suggesting or adding)."""
    return [f for f in flipping if quarantine.match(f.suite, f.nodeid) is None]


def to_auto_quarantine(
    flipping: Iterable[Flipping], quarantine: QuarantineList, min_flips: int
) -> list[Flipping]:
    """``[run] auto_quarantine``: tests that flipped at least ``min_flips`` times under
    one revision and that no active entry covers."""
    return [f for f in not_quarantined(flipping, quarantine) if f.flips >= min_flips]


def auto_reason(f: Flipping, within: str) -> str:
    """The reason an automatic entry carries: what was measured, so a reviewer can
    judge it."""
    return (
        f"auto: flipped {f.flips} times in {f.executions} runs under revision {f.revision} "
        f"within {within}"
    )


@dataclass(frozen=True)
class ComeOut:
    """A quarantine entry whose every test passed its last ``passes`` executions."""

    entry: Entry
    tests: tuple[tuple[str, str], ...]  # (suite, nodeid) it covers that have results


def could_come_out(
    quarantine: QuarantineList,
    latest: Mapping[tuple[str, str], Sequence[str]],
    passes: int,
) -> list[ComeOut]:
    """Entries whose tests (those in ``latest``: (suite, nodeid) → outcomes, newest
    first) all have at least ``passes`` results and passed each of their last
    ``passes``. An entry matching no test with results is not suggested: nothing
    shows it is healthy."""
    out = []
    for entry in quarantine.entries:
        tests = [key for key in latest if entry.matches(*key)]
        if tests and all(_passed_last(latest[key], passes) for key in tests):
            out.append(ComeOut(entry, tuple(sorted(tests))))
    return out


def _passed_last(outcomes: Sequence[str], passes: int) -> bool:
    recent = outcomes[:passes]
    return len(recent) >= passes and all(o == "passed" for o in recent)
