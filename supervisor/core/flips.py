"""Which tests flip between pass and fail, and which quarantined ones pass again.

``quarantine suggest`` and ``[run] auto_quarantine`` decide from this: a test whose
outcome changes from one execution to the next **under one deploy revision** is
flaky (the code did not change; the test did), and the more often it flips, the
stronger the case to quarantine it. A quarantined test that passed its last N
executions could come out. Plain logic over rows the store reads (``history flaky``'s rows,
:mod:`supervisor.store.quarantine_queries`), tested without a database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from supervisor.core.quarantine import Entry, QuarantineList


@dataclass(frozen=True)
class Flipping:
    """One test's flips under the revision where it flipped most."""

    suite: str
    nodeid: str
    revision: str
    flips: int  # consecutive executions whose pass/fail differs
    executions: int  # passes and failures under that revision
    failed: int


def most_flipped(rows: Iterable[Mapping[str, Any]]) -> list[Flipping]:
    """``history flaky`` rows (one per test and revision, newest evidence first; keys
    ``suite``, ``nodeid``, ``revision``, ``flips``, ``executions``, ``failed``) → each
    test's revision with the most flips (ties: the newer one), most flips first. Tests
    that never flipped are left out. The flips are counted once, by the history's own
    query (:data:`supervisor.store.canned.FLAKY_SQL`)."""
    best: dict[tuple[str, str], Flipping] = {}
    for row in rows:
        key = (str(row["suite"]), str(row["nodeid"]))
        flips = int(row["flips"])
        if flips and (key not in best or flips > best[key].flips):
            best[key] = Flipping(
                key[0],
                key[1],
                str(row["revision"]),
                flips,
                int(row["executions"]),
                int(row["failed"]),
            )
    return sorted(best.values(), key=lambda f: (-f.flips, f.suite, f.nodeid))


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
