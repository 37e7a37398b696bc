"""New / still / fixed as plain logic (``core.changes``), the quarantine reader and the
git range: no process, no database."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from supervisor.core.changes import (
    ChangeLabeller,
    IterationChanges,
    format_changes,
    label,
    labelling,
)
from supervisor.core.events import Event, IterationFinished, IterationStarted, TestResult
from supervisor.store.triage import describe_streak, git_range

AT = "2026-11-30T12:00:00+00:00"


def result(nodeid: str, outcome: str, it: int = 1, suite: str = "s", **kw) -> TestResult:
    return TestResult(it, 1, suite, nodeid, outcome, **kw)


@pytest.mark.parametrize(
    ("previous", "outcome", "change"),
    [
        (None, "failed", "new"),  # no history
        ("passed", "failed", "new"),
        ("passed", "hung", "new"),
        ("skipped", "error", "new"),
        ("failed", "crashed", "still"),
        ("hung", "failed", "still"),
        ("failed", "passed", "fixed"),
        ("crashed", "xfailed", "fixed"),
        ("failed", "skipped", None),  # skipped is no verdict
        ("passed", "passed", None),
        (None, "passed", None),
        ("xpassed", "failed", "new"),  # an unexpected pass still passed
    ],
)
def test_label(previous, outcome, change):
    assert label(previous, outcome) == change


def run_through(labeller: ChangeLabeller, events: list[Event], batch: int = 0) -> list[Event]:
    """Each event through ``labelling``: one by one, or ``batch`` at a time (a runner's
    reads) through its ``many`` form."""
    seen: list[Event] = []
    emit = labelling(seen.append, labeller)
    if batch:
        for start in range(0, len(events), batch):
            emit.many(events[start : start + batch])
        return seen
    for event in events:
        emit(event)
    return seen


@pytest.mark.parametrize("batch", [0, 1, 3, 100])
def test_labeller_compares_with_the_result_before_the_iteration(batch):
    labeller = ChangeLabeller()
    labeller.seed([("s", "t_old", "failed"), ("other", "t_a", "failed")])  # history
    seen = run_through(
        labeller,
        [
            IterationStarted(1, 1, AT),
            result("t_a", "failed"),  # failed in another suite only: new here
            result("t_old", "failed"),  # still
            result("t_b", "passed"),
            IterationFinished(1, 1, AT, "failed", {}),
            IterationStarted(1, 2, AT),
            result("t_a", "passed", 2),  # fixed
            result("t_old", "failed", 2),  # still
            result("t_b", "hung", 2),  # new
            IterationFinished(1, 2, AT, "failed", {}),
        ],
        batch,
    )
    changes = [(e.nodeid, e.iteration, e.change) for e in seen if isinstance(e, TestResult)]
    assert changes == [
        ("t_a", 1, "new"),
        ("t_old", 1, "still"),
        ("t_b", 1, None),
        ("t_a", 2, "fixed"),
        ("t_old", 2, "still"),
        ("t_b", 2, "new"),
    ]
    finished = [e.changes for e in seen if isinstance(e, IterationFinished)]
    assert finished == [
        {"new": 1, "still": 1, "fixed": 0, "flaky": 0},
        {"new": 1, "still": 1, "fixed": 1, "flaky": 0},
    ]


def test_every_attempt_in_an_iteration_is_compared_with_the_same_baseline():
    """A verify pass, then the full phase: both against the last iteration, and the
    test counts once, by its last result."""
    labeller = ChangeLabeller()
    labeller.seed([("s", "t", "failed")])
    seen = run_through(
        labeller,
        [
            IterationStarted(1, 1, AT),
            result("t", "failed"),  # verify pass: still failing
            result("t", "passed"),  # full phase: fixed (not "fixed" of the one just before)
            IterationFinished(1, 1, AT, "passed", {}),
        ],
    )
    assert [e.change for e in seen if isinstance(e, TestResult)] == ["still", "fixed"]
    assert seen[-1].changes == {"new": 0, "still": 0, "fixed": 1, "flaky": 0}


@dataclass(frozen=True, slots=True)
class Retried(TestResult):
    """A result as the retries carry it (their ``flaky`` field)."""

    flaky: bool = False


def test_a_pass_on_retry_counts_as_flaky_not_fixed():
    tally = IterationChanges()
    tally.add(result("t", "failed", change="new"))
    tally.add(Retried(1, 1, "s", "t", "passed", attempt=2, flaky=True))
    tally.add(result("u", "failed", change="still"))
    assert tally.counts() == {"new": 0, "still": 1, "fixed": 0, "flaky": 1}


def test_a_change_already_set_is_kept():
    labeller = ChangeLabeller()
    (event,) = run_through(labeller, [result("t", "failed", change="still")])
    assert isinstance(event, TestResult) and event.change == "still"


def test_format_changes():
    assert format_changes({"new": 2, "still": 1, "fixed": 3, "flaky": 1}) == (
        "2 new · 1 still failing · 3 fixed · 1 flaky"
    )
    assert format_changes({"new": 0, "still": 1, "fixed": 0, "flaky": 0}) == (
        "0 new · 1 still failing · 0 fixed"
    )
    assert format_changes({"new": 0, "still": 0, "fixed": 0, "flaky": 0}) == ""
    assert format_changes(None) == ""


# ---------------------------------------------------------------------- revisions


def test_git_range_only_between_two_different_commits():
    a, b = "1" * 40, "abcdef0"
    assert git_range(a, b) == f"git log {a}..{b}"
    assert git_range(f"git:{a}", f"git:{'2' * 40}") == f"git log {a}..{'2' * 40}"
    assert git_range("r1", "r2") is None  # not git revisions
    assert git_range(a, a) is None
    assert git_range(None, b) is None


def test_describe_streak():
    info = {
        "first_bad_revision": "r2",
        "first_bad_iteration": "1.2",
        "last_good_revision": "r1",
        "last_good_iteration": "1.1",
        "failures_in_streak": 1,
        "git_range": None,
    }
    assert describe_streak(info) == (
        "failing since revision r2 (iteration 1.2, 1 non-pass in a row);"
        " last passed at revision r1 (iteration 1.1)"
    )
    assert describe_streak({**info, "last_good_revision": None}).endswith(
        "never passed in the history"
    )
    assert describe_streak(None) == ""
