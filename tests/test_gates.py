"""The early gate verdict (``stop_on_gate``) and the verify plan: plain logic, no processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.config import parse_config
from supervisor.core.events import TestResult, count_outcomes
from supervisor.core.gates import PhaseTally, gate_holds, gate_lost
from supervisor.core.verify import IterationOutcomes, describe, plan


def phase_with(gate) -> object:
    config = parse_config(
        {"suite": [{"name": "a"}], "phase": [{"name": "p", "suites": ["a"], "gate": gate}]},
        Path("x.toml"),
    )
    return config.phases[0]


def counts(**kw: int) -> dict[str, int]:
    return {**count_outcomes([]), **kw}


def result(suite: str, nodeid: str, outcome: str) -> TestResult:
    return TestResult(1, 1, suite, nodeid, outcome)


# ----------------------------------------------------------------- gate_lost


def test_all_pass_is_lost_at_the_first_failure_even_with_unknown_suites_left():
    phase = phase_with("all-pass")
    assert not gate_lost(phase, counts(passed=25), remaining=25)
    for outcome in ("failed", "error", "hung", "crashed"):
        assert gate_lost(phase, counts(passed=25, **{outcome: 1}), remaining=24)
        assert gate_lost(phase, counts(passed=25, **{outcome: 1}), remaining=None)
    assert not gate_lost(phase, counts(passed=3, skipped=2, xfailed=1), remaining=None)


def test_gate_none_is_never_lost():
    assert not gate_lost(phase_with("none"), counts(failed=50), remaining=0)


@pytest.mark.parametrize(
    "done, remaining, lost",
    [
        # 0.9 of 20: two failures still leave 18/20 possible; the third makes 17/20
        (counts(passed=4, failed=2), 14, False),
        (counts(passed=3, failed=3), 14, True),
        # skipped tests are not in the ratio (as in gate_holds)
        (counts(passed=1, skipped=5, failed=1), 8, False),  # best 9/10
        (counts(passed=1, skipped=5, failed=1), 7, True),  # best 8/9 < 0.9
        # nothing left: the gate as it stands
        (counts(passed=9, failed=1), 0, False),
        (counts(passed=8, failed=2), 0, True),
    ],
)
def test_a_ratio_is_lost_once_the_remaining_tests_cannot_reach_it(done, remaining, lost):
    assert gate_lost(phase_with(0.9), done, remaining) is lost
    if remaining == 0:  # with nothing left, "lost" is exactly "does not hold"
        assert gate_holds(phase_with(0.9), done) is not lost


def test_a_ratio_is_never_decided_while_a_count_is_unknown():
    assert not gate_lost(phase_with(0.9), counts(failed=100), remaining=None)


# ----------------------------------------------------------------- PhaseTally


def test_remaining_is_unknown_until_every_suite_not_done_reported_its_collection():
    tally = PhaseTally(["a", "b"])
    assert tally.remaining() is None
    tally.started("a")
    tally.collected("a", [f"a{i}" for i in range(5)])
    assert tally.remaining() is None  # b has not started: its size is unknown
    tally.add(result("a", "a0", "passed"))
    tally.add(result("a", "a1", "failed"))
    tally.done("a")
    assert tally.remaining() is None
    tally.started("b")
    tally.collected("b", ["b0", "b1"])
    assert tally.remaining() == 2  # a is done: whatever it did not run, it won't
    tally.collected("b", ["b1", "b2"])  # reported again (an xdist worker): no double count
    assert tally.remaining() == 3
    tally.add(result("b", "b2", "passed"))
    assert tally.remaining() == 2
    assert tally.counts()["passed"] == 2 and tally.counts()["failed"] == 1


def test_a_result_before_the_collection_and_a_rerun_are_counted_once():
    tally = PhaseTally(["a"])
    tally.add(result("a", "x", "failed"))
    tally.collected("a", ["x", "y"])
    assert tally.remaining() == 1
    tally.add(result("a", "x", "passed"))  # a re-run replaces the first outcome
    assert tally.counts()["failed"] == 0 and tally.counts()["passed"] == 1
    tally.add(result("a", "a.py", "error"))  # a collection error: not a collected id
    assert tally.remaining() == 1


def test_seeded_outcomes_count_and_are_not_remaining():
    tally = PhaseTally(["a"])
    tally.seed("a", {"x": "passed", "y": "failed"})
    tally.collected("a", ["z"])  # a resumed pytest collects only what is left
    assert tally.remaining() == 1
    assert tally.counts()["failed"] == 1


def test_not_run_counts_the_started_suites_and_names_the_others():
    tally = PhaseTally(["a", "b", "c"])
    tally.started("a")
    tally.collected("a", [f"t{i}" for i in range(50)])
    for i in range(26):
        tally.add(result("a", f"t{i}", "passed" if i != 25 else "failed"))
    tally.done("a")
    assert tally.not_run() == (24, ("b", "c"))


# ----------------------------------------------------------------- the verify plan


def config_of(tmp_path: Path):
    return parse_config(
        {
            "run": {"verify": True},
            "suite": [{"name": n} for n in ("p1", "p2a", "p2b", "p3")],
            "phase": [
                {"name": "P1", "suites": ["p1"], "test_timeout": "5s"},
                {"name": "P2", "suites": ["p2a", "p2b"]},
                {"name": "P3", "suites": ["p3", "p1"]},  # p1 runs in P1 and in P3
            ],
        },
        tmp_path / "netra-supervisor.toml",
    )


def test_the_plan_is_what_did_not_pass_phase_by_phase(tmp_path):
    config = config_of(tmp_path)
    previous = IterationOutcomes()
    for seq, suite, nodeid, outcome in [
        (2, "p2b", "b::t1", "failed"),
        (1, "p1", "p1::ok", "passed"),
        (1, "p1", "p1::hangs", "hung"),
        (1, "p1", "p1::dies", "crashed"),
        (2, "p2a", "a::t1", "error"),
        (2, "p2a", "a::skip", "skipped"),
        (2, "p2a", "a::xp", "xpassed"),  # green: not re-checked
        (2, "p2a", "a::xf", "xfailed"),
        (3, "p1", "p1::late", "failed"),  # p1 in P3: stays in P3
        (3, "p3", "p3::t", "passed"),
    ]:
        previous.add(seq, suite, nodeid, outcome)
    parts = plan(previous.outcomes, config.phases, config.select_suites)
    assert [(p.seq, p.phase.name, p.suite.name, p.tests) for p in parts] == [
        (1, "P1", "p1", ("p1::hangs", "p1::dies")),
        (2, "P2", "p2a", ("a::t1",)),
        (2, "P2", "p2b", ("b::t1",)),
        (3, "P3", "p1", ("p1::late",)),
    ]
    assert parts[0].phase.test_timeout == 5.0  # its phase's deadlines apply
    assert describe(parts, 4) == "re-runs 5 tests not passing in iteration 4"
    assert describe(parts[1:2], 0) == "re-runs 1 test not passing last time"


def test_a_later_passing_result_takes_a_test_out_of_the_plan(tmp_path):
    config = config_of(tmp_path)
    previous = IterationOutcomes()
    previous.add(1, "p1", "p1::flips", "failed")
    previous.add(1, "p1", "p1::flips", "passed")
    previous.add(1, "p1", "p1::fails", "passed")
    previous.add(1, "p1", "p1::fails", "failed")
    parts = plan(previous.outcomes, config.phases, config.select_suites)
    assert [p.tests for p in parts] == [("p1::fails",)]


def test_history_rows_of_the_verify_phase_and_of_gone_phases_find_their_phase(tmp_path):
    """Read back from the history (``--resume``), the verify pass's results are phase 0:
    each belongs to the first phase that runs its suite; a suite no phase runs is out."""
    config = config_of(tmp_path)
    previous = {
        (0, "p1"): {"p1::still": "failed", "p1::fixed": "passed"},
        (0, "p3"): {"p3::x": "hung"},
        (7, "p2b"): {"b::y": "failed"},  # a phase that is not configured (any more)
        (1, "gone"): {"gone::z": "failed"},
        (0, ""): {"::(suite)": "error"},
    }
    parts = plan(previous, config.phases, config.select_suites)
    assert [(p.seq, p.suite.name, p.tests) for p in parts] == [
        (1, "p1", ("p1::still",)),
        (2, "p2b", ("b::y",)),
        (3, "p3", ("p3::x",)),
    ]


def test_nothing_to_verify_after_a_green_iteration(tmp_path):
    config = config_of(tmp_path)
    previous = IterationOutcomes()
    previous.add(1, "p1", "p1::a", "passed")
    previous.add(2, "p2a", "a::s", "skipped")
    assert plan(previous.outcomes, config.phases, config.select_suites) == []
    assert plan({}, config.phases, config.select_suites) == []


def test_the_quarantine_in_force_leaves_its_tests_out_of_the_plan(tmp_path):
    config = config_of(tmp_path)
    previous = IterationOutcomes()
    previous.add(1, "p1", "p1::quarantined", "hung")
    previous.add(1, "p1", "p1::broken", "failed")
    previous.add(2, "p2a", "a::quarantined", "failed")  # only p1's entry matches
    parts = plan(
        previous.outcomes,
        config.phases,
        config.select_suites,
        lambda suite, nodeid: (suite, nodeid) == ("p1", "p1::quarantined"),
    )
    assert [(p.suite.name, p.tests) for p in parts] == [
        ("p1", ("p1::broken",)),
        ("p2a", ("a::quarantined",)),
    ]
