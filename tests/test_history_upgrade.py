"""A history written by the previous release (schema of d2a7c85: migrations 0001 and
0002 only) is read as it is by ``history``, upgraded in place by the next ``run``, and
answers the new questions (change, first bad revision, flaky over a window) across
the old and the new rows. The fixture is ``tests/fixtures/history_d2a7c85/history.db``
(``make_db.py`` beside it regenerates it from that commit's schema)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from cli_helpers import query, run_cli, write

from supervisor.store import schema

FIXTURE = Path(__file__).parent / "fixtures" / "history_d2a7c85" / "history.db"

TESTS = """
def test_ok():
    pass


def test_flip():
    pass


def test_broken():
    assert False, "still broken"


def test_new():
    assert False, "broken now"
"""

CONFIG = """
[[suite]]
name = "s"
args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests"]
"""

QUARANTINE = """
[[test]]
nodeid = "tests/test_it.py::test_flip"
reason = "flips under r1"
"""


@pytest.fixture
def project(tmp_path) -> Path:
    write(tmp_path / "tests" / "test_it.py", TESTS)
    write(tmp_path / "netra-supervisor.toml", CONFIG)
    (tmp_path / ".netra").mkdir()
    shutil.copy(FIXTURE, tmp_path / ".netra" / "history.db")
    return tmp_path


def history(root: Path, *args: str):
    proc = run_cli(["history", *args, "--json"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def by_test(groups: list[dict]) -> dict[str, dict]:
    return {r["nodeid"].split("::")[1]: r for g in groups for r in g["results"]}


def test_the_fixture_is_the_previous_release(project):
    db = project / ".netra" / "history.db"
    conn = sqlite3.connect(db)
    try:
        assert schema.applied(conn) == {"0001_initial", "0002_history_indexes"}
        columns = {row[1] for row in conn.execute("PRAGMA table_info(iterations)")}
        assert "eta_s" not in columns
    finally:
        conn.close()


def test_history_reads_the_old_database_as_it_is(project):
    rows = by_test(history(project, "failures", "1.3")["groups"])
    assert set(rows) == {"test_broken"}
    broken = rows["test_broken"]
    assert (broken["change"], broken["first_bad_revision"], broken["last_good_revision"]) == (
        "new",
        "r2",
        "r1",
    )
    assert broken["git_range"] is None  # r1, r2 are no git commits
    write(project / "netra-quarantine.toml", QUARANTINE)
    flaky = history(project, "flaky", "--since", "100000d")
    assert [(r["nodeid"].split("::")[1], r["revision"]) for r in flaky] == [("test_flip", "r1")]
    flip = flaky[0]
    assert (flip["passed"], flip["failed"], flip["executions"], flip["flips"]) == (2, 1, 3, 2)
    assert flip["attempts_to_pass"] == 1.5  # first try in 1.1, second in 1.2
    assert flip["quarantined"] is True
    assert history(project, "flaky", "--since", "1d") == []  # the fixture is older
    # read-only: nothing was migrated
    conn = sqlite3.connect(project / ".netra" / "history.db")
    try:
        assert "0003_iteration_eta" not in schema.applied(conn)
    finally:
        conn.close()


def test_the_next_run_upgrades_it_in_place_and_labels_against_the_old_rows(project):
    db = project / ".netra" / "history.db"
    proc = run_cli(["run", "--headless", "--once"], project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "iteration 1: 1 new · 1 still failing · 0 fixed" in proc.stdout.splitlines()

    conn = sqlite3.connect(db)
    try:
        assert schema.pending(conn) == []
        assert {row[1] for row in conn.execute("PRAGMA table_info(iterations)")} >= {"eta_s"}
    finally:
        conn.close()
    assert query(db, "select count(*) from results where iteration_id <= 3") == [(10,)]

    rows = by_test(history(project, "failures")["groups"])
    assert {name: r["change"] for name, r in rows.items()} == {
        "test_broken": "still",
        "test_new": "new",
    }
    # the streak spans the releases: broken since r2, in the old history
    assert (
        rows["test_broken"]["first_bad_revision"],
        rows["test_broken"]["last_good_revision"],
    ) == (
        "r2",
        "r1",
    )
    assert rows["test_new"]["first_bad_revision"] == "run 2"  # no deploy, no git
    assert rows["test_new"]["last_good_revision"] is None
    streak = history(project, "test", "test_broken")["streak"]
    assert (streak["first_bad_iteration"], streak["failures_in_streak"]) == ("1.3", 2)
    diff = history(project, "diff")
    assert (diff["a"], diff["b"]) == ("1.3", "2.1")
    assert [i["change"] for i in diff["still_failing"]] == ["still"]
