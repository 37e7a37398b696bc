"""The verify pass and the early gate verdict end to end: the real CLI (``run
--headless``), real pytest subprocesses, a real SQLite history."""

from __future__ import annotations

import re
from pathlib import Path

from cli_helpers import FIRST_TIME, query, run_cli, write


def two_phase_project(tmp_path: Path, p1: str, p2: str, run: str = "") -> Path:
    write(tmp_path / "tests_p1/helpers_p1.py", FIRST_TIME)
    write(tmp_path / "tests_p2/helpers_p2.py", FIRST_TIME)
    write(tmp_path / "tests_p1/test_p1.py", p1)
    write(tmp_path / "tests_p2/test_p2.py", p2)
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [run]
        until = "all-pass"
        max_iterations = 3
        between = "immediate"
        verify = true
        {run}

        [watchdog]
        grace = "1s"

        [[phase]]
        name = "P1"
        suites = ["p1"]
        gate = "none"

        [[phase]]
        name = "P2"
        suites = ["p2"]
        gate = "all-pass"
        test_timeout = "2s"

        [[suite]]
        name = "p1"
        args = ["tests_p1", "-p", "no:cacheprovider"]

        [[suite]]
        name = "p2"
        args = ["tests_p2", "-p", "no:cacheprovider"]
        """,
    )
    return tmp_path / ".netra/history.db"


def phases_of(db: Path, iteration: int) -> list[tuple]:
    return query(
        db,
        "SELECT p.name, p.seq, p.status, p.gate, p.gate_held, p.passed, p.failed, p.hung"
        " FROM phases p JOIN iterations i ON i.id = p.iteration_id WHERE i.seq = ?"
        " ORDER BY p.seq",
        iteration,
    )


def results_in(db: Path, iteration: int, phase: str) -> dict[str, tuple[str, str]]:
    rows = query(
        db,
        "SELECT t.nodeid, r.outcome, r.message FROM results r JOIN tests t ON t.id = r.test_id"
        " JOIN phases p ON p.id = r.phase_id JOIN iterations i ON i.id = r.iteration_id"
        " WHERE i.seq = ? AND p.name = ? ORDER BY r.id",
        iteration,
        phase,
    )
    return {nodeid.split("::")[1]: (outcome, message) for nodeid, outcome, message in rows}


def section(out: str, iteration: int) -> str:
    """The headless output of one iteration (its header may carry an ETA)."""
    start = re.search(rf"── iteration {iteration}( ·[^\n]*)? ──", out).start()
    end = out.find("── iteration", start + 1)
    return out[start : end if end > 0 else len(out)]


def test_a_verify_pass_that_passes_is_followed_by_the_full_iteration(tmp_path):
    db = two_phase_project(
        tmp_path,
        """
        from helpers_p1 import first_time
        def test_a(): pass
        def test_b(): assert not first_time("b"), "not fixed yet"
        def test_c(): pass
        """,
        """
        import time
        from helpers_p2 import first_time
        def test_d(): pass
        def test_e(): assert not first_time("e"), "not fixed yet"
        def test_f():
            if first_time("f"):
                time.sleep(60)  # hangs until the watchdog kills it (P2's 2s deadline)
        """,
    )
    proc = run_cli(["run", "--headless"], tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    iterations = query(db, "SELECT seq, status, passed, failed, hung FROM iterations ORDER BY seq")
    # iteration 2 counts its full phases: the verify results are not counted twice
    assert iterations == [(1, "gate-failed", 3, 2, 1), (2, "passed", 6, 0, 0)]

    # the phases table: iteration 1 has the configured phases; iteration 2 has the
    # verify pass as phase 0 before them, and they keep their numbers
    assert [row[:3] for row in phases_of(db, 1)] == [("P1", 1, "failed"), ("P2", 2, "gate-failed")]
    assert phases_of(db, 2) == [
        ("verify", 0, "passed", "all-pass", 1, 3, 0, 0),
        ("P1", 1, "passed", "none", 1, 3, 0, 0),
        ("P2", 2, "passed", "all-pass", 1, 3, 0, 0),
    ]
    # the verify pass re-ran exactly what did not pass in iteration 1 (failed, hung)
    assert results_in(db, 1, "P2")["test_f"][0] == "hung"
    assert {k: v[0] for k, v in results_in(db, 2, "verify").items()} == {
        "test_b": "passed",
        "test_e": "passed",
        "test_f": "passed",
    }

    # headless: the verify pass is its own phase, first, with each re-run test's verdict
    second = section(out, 2)
    assert second.index("▶ verify: suites p1, p2 · gate all-pass · re-runs 3 tests not passing in iteration 1") < second.index("▶ P1")  # fmt: skip
    for line in (
        "  ✔ passed tests_p1/test_p1.py::test_b",
        "  ✔ passed tests_p2/test_p2.py::test_e",
        "  ✔ passed tests_p2/test_p2.py::test_f",
        "✔ verify: 3 tests · 3 passed · 0 failed · gate all-pass held",
    ):
        assert line in second, second
    assert "▶ verify" not in section(out, 1)


def test_a_verify_pass_that_fails_ends_the_iteration_and_the_loop_goes_on(tmp_path):
    db = two_phase_project(
        tmp_path,
        """
        from helpers_p1 import first_time
        def test_a(): pass
        def test_b(): assert False, "still broken"
        def test_c(): assert not first_time("c"), "not fixed yet"
        """,
        """
        import time
        def test_d(): pass
        def test_hangs(): time.sleep(60)
        """,
    )
    proc = run_cli(["run", "--headless"], tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    iterations = query(db, "SELECT seq, status, passed, failed, hung FROM iterations ORDER BY seq")
    assert iterations == [
        (1, "gate-failed", 2, 2, 1),
        # a verify-failed iteration counts what it ran: its verify pass
        (2, "verify-failed", 1, 1, 1),
        (3, "verify-failed", 0, 1, 1),
    ]
    # no full phase after a failed verify pass
    assert phases_of(db, 2) == [("verify", 0, "gate-failed", "all-pass", 0, 1, 1, 1)]
    assert [row[:3] for row in phases_of(db, 3)] == [("verify", 0, "gate-failed")]
    verify2 = results_in(db, 2, "verify")
    assert {k: v[0] for k, v in verify2.items()} == {
        "test_b": "failed",
        "test_c": "passed",
        "test_hangs": "hung",
    }
    # under its own phase's deadline (P2: 2s), not the watchdog's default (120s)
    assert verify2["test_hangs"][1].startswith("hung 2s at tests_p2/test_p2.py:")
    # the next verify pass re-runs what still failed, not test_c (it passed in 2)
    assert set(results_in(db, 3, "verify")) == {"test_b", "test_hangs"}

    second = section(out, 2)
    assert "▶ P1" not in second and "▶ P2" not in second
    assert "  ✖ failed tests_p1/test_p1.py::test_b: AssertionError: still broken" in second
    assert "  ✔ passed tests_p1/test_p1.py::test_c" in second
    assert "  ✖ hung tests_p2/test_p2.py::test_hangs: hung 2s at tests_p2/test_p2.py:" in second  # fmt: skip
    assert "✖ verify: 3 tests · 1 passed · 1 failed · 1 hung · gate all-pass FAILED" in second
    assert "iteration 2: verify-failed" in second
    assert "max_iterations (3) reached" in out


def stop_on_gate_project(
    tmp_path: Path, gate: str, failing: tuple[int, ...], count: int, suites: str
) -> Path:
    write(
        tmp_path / "t_main/test_main.py",
        f"""
        import time, pytest
        FAILING = {failing!r}
        LAST = max(FAILING)

        @pytest.mark.parametrize("i", range({count}))
        def test_n(i):
            if i > LAST:
                time.sleep(0.3)  # the rest takes long enough for the cut to land first
            assert i not in FAILING, f"test {{i}} fails"
        """,
    )
    write(tmp_path / "t_more/test_more.py", "def test_more(): pass\n")
    write(tmp_path / "t_later/test_later.py", "def test_later(): pass\n")
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [run]
        until = "once"

        [[phase]]
        name = "P1 critical"
        suites = {suites}
        gate = {gate}
        stop_on_gate = true

        [[phase]]
        name = "P2"
        suites = ["later"]

        [[suite]]
        name = "main"
        args = ["t_main", "-p", "no:cacheprovider"]

        [[suite]]
        name = "more"
        args = ["t_more"]

        [[suite]]
        name = "later"
        args = ["t_later"]
        """,
    )
    return tmp_path / ".netra/history.db"


def recorded(db: Path) -> dict[str, str]:
    rows = query(
        db, "SELECT t.suite, t.nodeid, r.outcome FROM results r JOIN tests t ON t.id = r.test_id"
    )
    return {f"{suite}:{nodeid.split('::')[1]}": outcome for suite, nodeid, outcome in rows}


def test_stop_on_gate_all_pass_stops_at_the_failure_in_the_middle(tmp_path):
    db = stop_on_gate_project(tmp_path, '"all-pass"', (25,), 50, suites='["main", "more"]')
    proc = run_cli(["run", "--headless"], tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    results = recorded(db)
    assert results["main:test_n[25]"] == "failed"
    assert all(results[f"main:test_n[{i}]"] == "passed" for i in range(25))
    ran = len(results)
    assert 26 <= ran < 50  # the rest were not run: no results for them
    assert set(results.values()) == {"passed", "failed"}  # none recorded as anything else
    not_run = 50 - ran
    # the phase's other suite and the later phase never started
    assert query(db, "SELECT name FROM phases ORDER BY seq") == [("P1 critical",)]
    assert query(db, "SELECT seq, status FROM iterations") == [(1, "gate-failed")]
    assert query(db, "SELECT status, gate_held, passed + failed FROM phases") == [
        ("gate-failed", 0, ran)
    ]
    line = next(ln for ln in out.splitlines() if ln.startswith("✖ P1 critical:"))
    assert line.endswith(f" · {not_run} not run (the gate can no longer hold; not started: more)")
    assert f"{ran} tests · {ran - 1} passed · 1 failed · gate all-pass FAILED" in line
    logged = query(db, "SELECT text FROM logs WHERE source = 'gate'")
    assert logged == [
        (f"P1 critical: {not_run} tests not run (the gate can no longer hold; not started: more)",)
    ]


def test_stop_on_gate_with_a_ratio_stops_once_the_rest_cannot_reach_it(tmp_path):
    # 0.9 of 20: after two failures 18/20 is still possible; the third makes it 17/20.
    # (A ratio is decided only when every suite's size is known: here the phase has
    # one suite; with a suite still to start, the cut could come in the last one only.)
    db = stop_on_gate_project(tmp_path, "0.9", (1, 3, 5), 20, suites='["main"]')
    proc = run_cli(["run", "--headless"], tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    results = recorded(db)
    assert [results[f"main:test_n[{i}]"] for i in range(6)] == ["passed", "failed"] * 3
    ran = len(results)
    assert 6 <= ran < 20
    assert query(db, "SELECT name FROM phases") == [("P1 critical",)]
    line = next(ln for ln in out.splitlines() if ln.startswith("✖ P1 critical:"))
    assert "gate 0.9 FAILED" in line
    assert line.endswith(f" · {20 - ran} not run (the gate can no longer hold)")


def test_a_resumed_run_verifies_the_failures_of_its_last_iteration_from_the_history(tmp_path):
    db = two_phase_project(
        tmp_path,
        """
        from helpers_p1 import first_time
        def test_a(): pass
        def test_b(): assert not first_time("b"), "not fixed yet"
        """,
        """
        from helpers_p2 import first_time
        def test_d(): pass
        def test_e(): assert not first_time("e"), "not fixed yet"
        """,
    )
    first = run_cli(["run", "--headless", "--once"], tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    resumed = run_cli(["run", "--headless", "--resume", "1"], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert query(db, "SELECT seq, status FROM iterations ORDER BY seq") == [
        (1, "gate-failed"),
        (2, "passed"),
    ]
    assert [row[:3] for row in phases_of(db, 2)] == [
        ("verify", 0, "passed"),
        ("P1", 1, "passed"),
        ("P2", 2, "passed"),
    ]
    assert set(results_in(db, 2, "verify")) == {"test_b", "test_e"}
    assert "re-runs 2 tests not passing in iteration 1" in resumed.stdout


def test_a_verify_pass_imports_only_the_files_of_the_tests_it_reruns(tmp_path):
    """The selection's other test files are left out of collection (their import would
    be thrown away): the verify pass here does not import test_other.py again, and its
    failing test still runs and fails."""
    imports = tmp_path / "imports.txt"
    write(
        tmp_path / "tests/test_other.py",
        f"""
        with open({str(imports)!r}, "a") as fh:
            fh.write("imported\\n")
        def test_fine(): pass
        """,
    )
    write(tmp_path / "tests/test_broken.py", "def test_broken(): assert False, 'broken'\n")
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        until = "all-pass"
        max_iterations = 2
        between = "immediate"
        verify = true

        [[suite]]
        name = "s"
        args = ["tests", "-p", "no:cacheprovider"]
        """,
    )
    db = tmp_path / ".netra/history.db"
    proc = run_cli(["run", "--headless"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert query(db, "SELECT seq, status FROM iterations ORDER BY seq") == [
        (1, "failed"),
        (2, "verify-failed"),
    ]
    assert results_in(db, 2, "verify") == {"test_broken": ("failed", "AssertionError: broken")}
    assert imports.read_text().splitlines() == ["imported"]  # iteration 1 only
