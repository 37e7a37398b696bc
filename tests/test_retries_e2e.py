"""Retries end to end (``retries = N``, ``flaky_counts_as``): the real CLI (``run
--headless``), real pytest subprocesses, a real SQLite history."""

from __future__ import annotations

import json
import sqlite3
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_helpers import FIRST_TIME, query, run_cli, write

from supervisor.store import schema

TESTS = """
import time
from helpers import first_time

def test_a(): pass
def test_b(): assert not first_time("b"), "backend briefly down"
def test_c(): pass
"""


def project(tmp_path: Path, tests: str, run: str = "", suite: str = "") -> Path:
    write(tmp_path / "tests_e2e/helpers.py", FIRST_TIME)
    write(tmp_path / "tests_e2e/test_e2e.py", tests)
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [run]
        until = "all-pass"
        max_iterations = 1
        between = "immediate"
        {run}

        [watchdog]
        grace = "1s"

        [[phase]]
        name = "P1"
        suites = ["e2e"]
        gate = "all-pass"
        test_timeout = "2s"

        [[suite]]
        name = "e2e"
        args = ["tests_e2e", "-p", "no:cacheprovider"]
        {suite}
        """,
    )
    return tmp_path / ".netra/history.db"


def results(db: Path) -> list[tuple]:
    """(test name, attempt, outcome, flaky) of every result, in the order recorded."""
    rows = query(
        db,
        "SELECT t.nodeid, r.attempt, r.outcome, r.flaky FROM results r"
        " JOIN tests t ON t.id = r.test_id ORDER BY r.id",
    )
    return [(nodeid.split("::")[-1], *rest) for nodeid, *rest in rows]


def test_a_test_that_passes_on_its_retry_is_flaky_and_the_all_pass_gate_holds(tmp_path):
    db = project(tmp_path, TESTS, run="retries = 1")
    with (tmp_path / "netra-supervisor.toml").open("a") as config:
        config.write('[[sink]]\nkind = "jsonl"\npath = "events.jsonl"\n')
    proc = run_cli(["run", "--headless"], tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    sunk = [
        (e["nodeid"].split("::")[-1], e["attempt"], e["outcome"], e["flaky"])
        for e in events
        if e["event"] == "test_result"
    ]
    assert sunk[-1] == ("test_b", 2, "passed", True)  # sinks carry the flaky field
    finished = [e for e in events if e["event"] == "iteration_finished"]
    assert finished[0]["counts"]["flaky"] == 1
    rows = results(db)
    # attempt 1 of every test first; then, after the rest of the suite, test_b again
    assert rows[:3] == [
        ("test_a", 1, "passed", 0),
        ("test_b", 1, "failed", 0),
        ("test_c", 1, "passed", 0),
    ]
    assert rows[3:] == [("test_b", 2, "passed", 1)]
    iteration = query(db, "SELECT status, passed, failed, flaky FROM iterations")
    assert iteration == [("passed", 2, 0, 1)]  # each test counted once: b is flaky
    phase = query(db, "SELECT status, gate_held, passed, failed, flaky FROM phases")
    assert phase == [("passed", 1, 2, 0, 1)]
    assert "≈ flaky tests_e2e/test_e2e.py::test_b" in out
    assert "attempt 1 failed: AssertionError: backend briefly down" in out
    assert "2 passed · 1 flaky" in out
    assert "3 tests" in out  # the phase line: b is not counted twice
    history_shows_the_flaky_test(tmp_path, db)


def history_shows_the_flaky_test(root: Path, db: Path) -> None:
    """``history`` and the junit export say flaky where a retry passed."""
    test = run_cli(["history", "test", "test_b", "--json"], root)
    data = json.loads(test.stdout)
    assert data["summary"]["outcomes"] == {"failed": 1, "flaky": 1}
    assert [(r["attempt"], r["outcome"], r["flaky"]) for r in data["results"]] == [
        (2, "passed", 1),
        (1, "failed", 0),
    ]
    table = run_cli(["history", "test", "test_b"], root).stdout
    newest, oldest = [line for line in table.splitlines() if line.startswith("1.1 ")]
    assert " flaky " in newest and " failed " in oldest
    iterations = json.loads(run_cli(["history", "iterations", "--json"], root).stdout)
    assert [(i["passed"], i["failed"], i["flaky"]) for i in iterations] == [(2, 0, 1)]
    failures = json.loads(run_cli(["history", "failures", "1", "--json"], root).stdout)
    [group] = failures["groups"]
    assert [(r["nodeid"].split("::")[-1], r["flaky"]) for r in group["results"]] == [("test_b", 1)]
    assert (
        "(flaky: passed on a retry)"
        in run_cli(["history", "failures", "1"], root, env={"COLUMNS": "400"}).stdout
    )
    junit = root / "junit.xml"
    export = run_cli(["history", "export", "--junit", str(junit), "1"], root)
    assert export.returncode == 0, export.stdout + export.stderr
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("3", "0")
    flaky = [c for c in suite.iter("testcase") if c.find("flakyFailure") is not None]
    assert [c.get("name") for c in flaky] == ["test_b"]
    assert "attempt 1 failed" in (flaky[0].find("flakyFailure").get("message") or "")


def test_with_flaky_counts_as_fail_the_flaky_test_fails_the_gate(tmp_path):
    db = project(tmp_path, TESTS, run='retries = 1\nflaky_counts_as = "fail"')
    proc = run_cli(["run", "--headless"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert results(db)[3:] == [("test_b", 2, "passed", 1)]
    assert query(db, "SELECT status, gate_held, flaky FROM phases") == [("gate-failed", 0, 1)]
    assert query(db, "SELECT status, flaky FROM iterations") == [("gate-failed", 1)]


def test_without_retries_nothing_runs_again(tmp_path):
    db = project(tmp_path, TESTS)
    proc = run_cli(["run", "--headless"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert [r[:3] for r in results(db)] == [
        ("test_a", 1, "passed"),
        ("test_b", 1, "failed"),
        ("test_c", 1, "passed"),
    ]


ALWAYS_AND_HANG = """
import time
from helpers import first_time

def test_always(): assert False, "really broken"
def test_hangs_once():
    if first_time("hang"):
        time.sleep(60)  # hangs until the watchdog kills it (the phase's 2s deadline)
def test_ok(): pass
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_a_broken_test_is_retried_n_times_and_a_hung_one_is_retried_too(tmp_path, workers):
    # retries on the suite beat the phase's and [run]'s: the most specific wins
    db = project(
        tmp_path,
        ALWAYS_AND_HANG,
        run="retries = 5",
        suite=f"retries = 2\nworkers = {workers}",
    )
    proc = run_cli(["run", "--headless"], tmp_path, timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = results(db)
    by_test: dict[str, list[tuple]] = {}
    for name, attempt, outcome, flaky in rows:
        by_test.setdefault(name, []).append((attempt, outcome, flaky))
    assert by_test["test_always"] == [(1, "failed", 0), (2, "failed", 0), (3, "failed", 0)]
    assert by_test["test_hangs_once"] == [(1, "hung", 0), (2, "passed", 1)]
    assert by_test["test_ok"] == [(1, "passed", 0)]
    counts = query(db, "SELECT passed, failed, hung, flaky FROM iterations")
    assert counts == [(1, 1, 0, 1)]  # the hang was replaced by its passing retry
    assert "retries: e2e: attempt 2: 2 test(s) that did not pass run again" in proc.stdout
    assert "retries: e2e: attempt 3: 1 test(s) that did not pass run again" in proc.stdout


def test_a_negative_or_fractional_retries_is_a_config_error(tmp_path):
    project(tmp_path, TESTS, run="retries = -1")
    proc = run_cli(["run", "--headless"], tmp_path)
    assert proc.returncode == 2
    assert "run.retries: must not be negative, got -1" in proc.stderr
    project(tmp_path, TESTS, suite="retries = 1.5")
    proc = run_cli(["run", "--headless"], tmp_path)
    assert proc.returncode == 2
    assert "suite[0] (e2e).retries: expected an integer, got a number" in proc.stderr
    project(tmp_path, TESTS, run='flaky_counts_as = "maybe"')
    proc = run_cli(["run", "--headless"], tmp_path)
    assert proc.returncode == 2
    assert "run.flaky_counts_as: 'maybe' is not one of pass, fail" in proc.stderr


def test_a_database_of_the_previous_release_is_upgraded_in_place(tmp_path, monkeypatch):
    """A history made before ``0005_flaky``: ``history`` reads it as it is (no flaky
    column: nothing is flaky), the next ``run`` adds the columns and keeps the rows."""
    db = project(tmp_path, TESTS, run="retries = 1")
    db.parent.mkdir()
    previous = tuple(m for m in schema.MIGRATIONS if m[0] < "0004")  # through 0003
    monkeypatch.setattr(schema, "MIGRATIONS", previous)
    conn = sqlite3.connect(db, isolation_level=None)
    schema.migrate(conn)
    conn.execute("INSERT INTO runs (id, started_at, status) VALUES (1, '2026-01-01', 'failed')")
    conn.execute("INSERT INTO iterations (id, run_id, seq, status) VALUES (1, 1, 1, 'failed')")
    conn.execute("INSERT INTO tests (id, suite, nodeid) VALUES (1, 'e2e', 'old.py::test_old')")
    conn.execute("INSERT INTO results (iteration_id, test_id, outcome) VALUES (1, 1, 'failed')")
    conn.close()
    monkeypatch.undo()

    def columns(table: str) -> set[str]:
        return {row[1] for row in query(db, f"PRAGMA table_info({table})")}

    old = json.loads(run_cli(["history", "test", "test_old", "--json"], tmp_path).stdout)
    assert [(r["outcome"], r["flaky"]) for r in old["results"]] == [("failed", 0)]
    assert "flaky" not in columns("results")  # history only reads

    proc = run_cli(["run", "--headless"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for table in ("results", "iterations", "phases"):
        assert "flaky" in columns(table)
    assert query(db, "SELECT outcome, flaky FROM results WHERE test_id = 1") == [("failed", 0)]
    assert ("test_b", 2, "passed", 1) in results(db)
    conn = sqlite3.connect(db)
    schema.m0005_flaky(conn)  # idempotent: the columns are there already
    conn.close()
