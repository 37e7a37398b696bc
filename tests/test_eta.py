"""Expected counts and ETAs: plain logic over plain data, with a fake clock."""

from __future__ import annotations

import pytest

from supervisor.core.eta import (
    Estimator,
    PhaseEstimate,
    TestTimes,
    estimating,
    format_eta,
    median,
)
from supervisor.core.events import (
    DeployFinished,
    IterationFinished,
    IterationStarted,
    PhaseFinished,
    PhaseStarted,
    TestResult,
    TestsCollected,
    TestStarted,
)


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def times(*rows) -> TestTimes:
    t = TestTimes()
    t.seed(rows)
    return t


# (suite, nodeid, latest iteration id, last durations newest first)
HISTORY = (
    ("p1", "a", 9, (10.0, 1.0, 2.0, 3.0, 4.0)),  # median of the last 5: 3
    ("p1", "b", 9, (5.0,)),
    ("p1", "c", 9, ()),  # skipped every time: counts 0
    ("p1", "gone", 4, (7.0, 7.0)),  # not in p1's latest iteration: not expected
    ("p2", "x", 8, (20.0, 20.0, 20.0)),
    ("p2", "y", 8, (40.0,)),
)


def start(est: Estimator, iteration: int = 1) -> None:
    est(IterationStarted(1, iteration, "now"))
    est(DeployFinished(1, iteration, "none", None, "now", 0.0, "skipped"))


def phase(est: Estimator, seq: int, name: str, suites: tuple[str, ...], iteration: int = 1):
    est(PhaseStarted(1, iteration, seq, name, "all-pass", suites, "now"))


def result(suite, nodeid, duration, outcome="passed", phase=1, iteration=1) -> TestResult:
    return TestResult(iteration, phase, suite, nodeid, outcome, duration)


def test_median_and_format():
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert [format_eta(s) for s in (0.0, 0.2, 59.0, 80.0, 3600 * 2 + 300)] == [
        "0s", "1s", "59s", "1m20s", "2h05m",
    ]  # fmt: skip


def test_history_gives_each_test_the_median_of_its_last_five_and_each_suite_its_last_size():
    t = times(*HISTORY)
    assert t.estimate("p1", "a") == 3.0  # of 10, 1, 2, 3, 4
    assert t.estimate("p1", "c") == 0.0  # only ever skipped
    assert t.estimate("p1", "new") is None
    assert t.expected("p1") == ("a", "b", "c")  # "gone" ran in an older iteration only
    assert t.expected("p2") == ("x", "y")
    assert t.phase_median(["p1"]) == 5.0  # of 3, 5, 7 ("c" only ever skipped: out)
    # this run's results fold in: the oldest (4, then 3) leave; skipped results don't count
    t.add("p1", "a", "passed", 100.0)
    t.add("p1", "a", "passed", 100.0)
    assert t.estimate("p1", "a") == 10.0  # of 2, 1, 10, 100, 100
    t.add("p1", "a", "skipped", 0.0)
    assert t.estimate("p1", "a") == 10.0
    assert t.phase_median(["p1"]) == 7.0  # of 10, 5, 7
    t.add("p1", "d", "passed", 1.0)  # a new test's first result
    assert t.estimate("p1", "d") == 1.0 and t.phase_median(["p1"]) == 6.0


def test_before_collection_a_phase_expects_last_times_count_then_what_it_collects():
    est = Estimator(times(*HISTORY), plan=[("P1", ("p1",))], clock=Clock())
    start(est)
    phase(est, 1, "P1", ("p1",))
    assert est.phase(1) == PhaseEstimate(expected=3, eta=8.0)  # 3 + 5 + 0
    est(TestsCollected(1, 1, "p1", ("a", "b", "c", "new")))
    # collected: nothing is "expected" any more; "new" has no history, so it counts at
    # the phase's median (of a 3, b 5, gone 7: 5)
    assert est.phase(1) == PhaseEstimate(expected=0, eta=13.0)


def test_remaining_work_shrinks_as_results_arrive_and_a_phase_ends_without_eta():
    est = Estimator(times(*HISTORY), plan=[("P1", ("p1",))], clock=Clock())
    start(est)
    phase(est, 1, "P1", ("p1",))
    est(TestsCollected(1, 1, "p1", ("a", "b", "c")))
    etas = [est.phase(1).eta]
    for nodeid, took in (("b", 6.0), ("a", 2.0), ("c", 0.0)):
        est(result("p1", nodeid, took))
        etas.append(est.phase(1).eta)
    assert etas == [8.0, 3.0, 0.0, 0.0]
    est(result("p1", "b", 9.0, "failed"))  # a re-run: nothing left to take off
    assert est.phase(1).eta == 0.0
    est(PhaseFinished(1, 1, 1, "P1", "all-pass", "passed", True, {}, 8.0))
    assert est.phase(1) == PhaseEstimate()


def test_a_running_test_counts_what_it_has_left_and_an_overrun_counts_nothing():
    clock = Clock(100.0)
    est = Estimator(times(*HISTORY), plan=[("P2", ("p2",))], clock=clock)
    start(est)
    phase(est, 1, "P2", ("p2",))
    est(TestsCollected(1, 1, "p2", ("x", "y")))
    est(TestStarted(1, 1, "p2", "y", at=100.0))
    assert est.phase(1).eta == 60.0  # x 20 + y 40
    clock.now = 130.0
    assert est.phase(1).eta == 30.0  # y has 10 s left
    clock.now = 500.0  # y runs far past its estimate: due any moment, never negative
    assert est.phase(1).eta == 20.0
    est(result("p2", "y", 400.0))
    assert est.phase(1).eta == 20.0


def test_workers_share_the_remaining_work():
    est = Estimator(times(*HISTORY), plan=[("P2", ("p2",))], workers={"p2": 2}, clock=Clock())
    start(est)
    phase(est, 1, "P2", ("p2",))
    assert est.phase(1).eta == 30.0


def test_the_iteration_adds_the_deploy_and_the_phases_still_to_come():
    clock = Clock(100.0)
    plan = [("P1", ("p1",)), ("P2", ("p2",))]
    est = Estimator(times(*HISTORY), plan=plan, deploy=12.0, clock=clock)
    assert est.iteration_estimate() == 12.0 + 8.0 + 60.0
    est(IterationStarted(1, 1, "now"))
    clock.now = 104.0
    assert est.iteration_eta() == 8.0 + 8.0 + 60.0  # 8 s of the deploy left
    clock.now = 130.0
    assert est.iteration_eta() == 68.0  # the deploy overran: nothing left of it
    est(DeployFinished(1, 1, "command", "r1", "now", 30.0, "ok"))
    phase(est, 1, "P1", ("p1",))
    est(TestsCollected(1, 1, "p1", ("a", "b", "c")))
    est(result("p1", "b", 5.0))
    assert est.iteration_eta() == 3.0 + 60.0
    est(PhaseFinished(1, 1, 1, "P1", "all-pass", "passed", True, {}, 8.0))
    phase(est, 2, "P2", ("p2",))
    assert est.iteration_eta() == 60.0
    est(IterationFinished(1, 1, "now", "passed", {}))
    assert est.iteration_eta() is None


def test_no_history_no_eta_then_the_run_learns_from_its_own_results():
    clock = Clock()
    est = Estimator(TestTimes(), plan=[("P1", ("p1",))], clock=clock)
    assert est.iteration_estimate() is None
    start(est)
    phase(est, 1, "P1", ("p1",))
    assert est.phase(1) == PhaseEstimate(expected=0, eta=None)
    est(TestsCollected(1, 1, "p1", ("a", "b")))
    assert est.phase(1).eta is None  # collected, but nothing tells how long they take
    est(result("p1", "a", 2.0))
    est(result("p1", "b", 4.0))
    est(IterationFinished(1, 1, "now", "passed", {}))
    # the next iteration knows the suite's size and its tests' times
    assert est.iteration_estimate() == 6.0
    start(est, 2)
    phase(est, 1, "P1", ("p1",), iteration=2)
    assert est.phase(1) == PhaseEstimate(expected=2, eta=6.0)


def test_a_phase_outside_the_plan_does_not_change_a_suites_size():
    """A verify pass re-runs a few tests of a suite: that is not the suite's size."""
    est = Estimator(times(*HISTORY), plan=[("P1", ("p1",))], clock=Clock())
    start(est)
    phase(est, 1, "verify", ("p1",))
    assert est.phase(1) == PhaseEstimate(expected=0, eta=None)  # its size: what it collects
    est(TestsCollected(1, 1, "p1", ("a",)))
    assert est.phase(1).eta == 3.0
    assert est.iteration_eta() == 3.0 + 8.0  # P1 is still to come, at its full size
    est(PhaseFinished(1, 1, 1, "verify", "all-pass", "passed", True, {}, 3.0))
    phase(est, 2, "P1", ("p1",))
    assert est.phase(2).expected == 3


def test_a_suite_without_history_makes_the_eta_unknown_until_it_is_known():
    est = Estimator(times(*HISTORY), plan=[("P", ("p1", "p3"))], clock=Clock())
    start(est)
    phase(est, 1, "P", ("p1", "p3"))
    assert est.phase(1) == PhaseEstimate(expected=3, eta=None)  # p3's size is unknown
    est(TestsCollected(1, 1, "p3", ("z",)))
    assert est.phase(1) == PhaseEstimate(expected=3, eta=8.0 + 5.0)  # z at the median


@pytest.mark.parametrize("known", [True, False])
def test_the_estimate_goes_into_iteration_started(known):
    est = Estimator(times(*HISTORY) if known else None, plan=[("P1", ("p1",))], clock=Clock())
    seen = []
    estimating(seen.append, est)(IterationStarted(1, 1, "now"))
    assert seen == [IterationStarted(1, 1, "now", eta_s=8.0 if known else None)]
