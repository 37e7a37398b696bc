"""Failed-first (issue 13): what did not pass last time runs first, across runs.

Real ``netra-supervisor run --headless`` subprocesses, real pytest, real SQLite: the
order tests ran in is the order of their ``results`` rows (one pytest process at a
time), and under xdist the order their ``started_at`` says.
"""

from __future__ import annotations

import pytest
from cli_helpers import query, run_cli, write

from supervisor.core.events import TestResult
from supervisor.core.last_results import LastResults

TESTS = """
import os, time
import pytest

FIXED = os.environ.get("FIXED") == "1"


@pytest.mark.parametrize("n", range(20))
def test_passes(n):
    time.sleep(0.01)


def test_y_fails():
    assert FIXED, "still broken"


def test_y_hangs():
    if not FIXED:
        time.sleep(60)


def test_z_fails():
    assert FIXED, "still broken"
"""

CONFIG = """
[watchdog]
test_timeout = "1s"
grace = "0.5s"

[[suite]]
name = "s"
args = ["-q", "-p", "no:cacheprovider", "-p", "no:timeout", "tests"]
"""

LATE = ["tests/test_it.py::test_y_fails", "tests/test_it.py::test_y_hangs",
        "tests/test_it.py::test_z_fails"]  # fmt: skip


def project(tmp_path) -> None:
    write(tmp_path / "tests" / "test_it.py", TESTS)
    write(tmp_path / "netra-supervisor.toml", CONFIG)


def ran(tmp_path, run_id: int, by: str = "r.id") -> list[tuple[str, str]]:
    """(nodeid, outcome) of one run's results, in the order they ran."""
    return query(
        tmp_path / ".netra" / "history.db",
        "SELECT t.nodeid, r.outcome FROM results r JOIN tests t ON t.id = r.test_id"
        f" JOIN iterations i ON i.id = r.iteration_id WHERE i.run_id = ? ORDER BY {by}",
        run_id,
    )


def run_once(tmp_path, fixed: bool = False) -> None:
    env = {"FIXED": "1"} if fixed else {"FIXED": "0"}
    proc = run_cli(["run", "--headless", "--once"], tmp_path, env=env)
    assert proc.returncode == (0 if fixed else 1), proc.stdout + proc.stderr


def test_what_did_not_pass_runs_first_in_the_next_run_and_a_restart_keeps_the_order(tmp_path):
    project(tmp_path)
    run_once(tmp_path)
    first = ran(tmp_path, 1)
    assert [n for n, _ in first[-3:]] == LATE  # collection order: the failures come last
    assert [o for _, o in first[-3:]] == ["failed", "hung", "failed"]

    run_once(tmp_path, fixed=True)
    second = ran(tmp_path, 2)
    # the three run first, in the order they ran last time, although the hang's restart
    # (a new pytest) came between them; then the rest in collection order
    assert [n for n, _ in second[:3]] == LATE
    assert [o for _, o in second] == ["passed"] * 23
    assert [n for n, _ in second[3:]] == [n for n, _ in first[:20]]


def test_as_collected_keeps_the_file_order(tmp_path):
    write(tmp_path / "tests" / "test_it.py", TESTS)
    write(tmp_path / "netra-supervisor.toml", '[run]\norder = "as-collected"\n' + CONFIG)
    run_once(tmp_path)
    run_once(tmp_path, fixed=True)
    assert [n for n, _ in ran(tmp_path, 2)[-3:]] == LATE


def test_a_suite_can_keep_its_own_order(tmp_path):
    write(tmp_path / "tests" / "test_it.py", TESTS)
    write(
        tmp_path / "netra-supervisor.toml",
        CONFIG.replace('name = "s"', 'name = "s"\norder = "as-collected"'),
    )
    run_once(tmp_path)
    run_once(tmp_path, fixed=True)
    assert [n for n, _ in ran(tmp_path, 2)[-3:]] == LATE


def test_under_xdist_the_failures_are_handed_out_first(tmp_path):
    write(tmp_path / "tests" / "test_it.py", TESTS)
    write(
        tmp_path / "netra-supervisor.toml", CONFIG.replace('name = "s"', 'name = "s"\nworkers = 2')
    )
    run_once(tmp_path)
    run_once(tmp_path, fixed=True)
    started = [n for n, _ in ran(tmp_path, 2, by="r.started_at")]
    # each worker starts with the first tests handed out: the three are among the
    # first few to start, not the last (as collection order would have them)
    assert max(started.index(n) for n in LATE) < 8, started


def result(suite: str, nodeid: str, outcome: str) -> TestResult:
    return TestResult(1, 1, suite, nodeid, outcome)


def test_the_latest_outcome_of_each_test_decides_in_the_order_they_ran():
    last = LastResults()
    last.seed([("s", "a", "failed"), ("s", "b", "passed"), ("s", "c", "hung"), ("o", "x", "error")])
    assert last.run_first("s") == ("a", "c")
    last(result("s", "a", "passed"))  # fixed: no longer first
    last(result("s", "b", "xpassed"))  # an unexpected pass is looked at first too
    last(result("s", "d", "skipped"))
    last(result("s", "c", "crashed"))  # ran again, later: now after b
    assert last.run_first("s") == ("b", "c")
    assert last.run_first("o") == ("x",) and last.run_first("nobody") == ()
    assert last.outcome("s", "a") == "passed" and last.outcome("s", "zz") is None


@pytest.mark.parametrize("outcome", ["failed", "error", "hung", "crashed", "xpassed"])
def test_each_not_passing_outcome_runs_first(outcome):
    last = LastResults()
    last(result("s", "t", outcome))
    assert last.run_first("s") == ("t",)


@pytest.mark.parametrize("outcome", ["passed", "skipped", "xfailed"])
def test_a_passing_outcome_does_not(outcome):
    last = LastResults()
    last(result("s", "t", outcome))
    assert last.run_first("s") == ()
