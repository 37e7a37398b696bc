"""Expected counts and ETAs from a history written by real runs (real pytest, real
SQLite, the real CLI), and the migration that adds ``iterations.eta_s``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from cli_helpers import query, run_cli, write

from supervisor.store import schema

CONFIG = """
    [[phase]]
    name = "P1"
    suites = ["slow"]

    [[phase]]
    name = "P2"
    suites = ["quick"]

    [[suite]]
    name = "slow"
    args = ["test_slow.py", "-p", "no:randomly", "-p", "no:cacheprovider"]

    [[suite]]
    name = "quick"
    args = ["test_quick.py", "-p", "no:cacheprovider"]
    """


def project(root: Path) -> Path:
    write(
        root / "test_slow.py",
        """
        import time, pytest

        @pytest.mark.parametrize("i", range(4))
        def test_slow(i):
            time.sleep(0.1)

        @pytest.mark.skip(reason="never here")
        def test_skipped():
            pass
        """,
    )
    write(root / "test_quick.py", "def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    write(root / "netra-supervisor.toml", CONFIG)
    return root


def history_iterations(root: Path, run: int) -> list[dict]:
    out = run_cli(["history", "iterations", str(run), "--json"], root)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_second_run_expects_last_times_counts_and_keeps_its_estimate(tmp_path):
    root = project(tmp_path)
    first = run_cli(["run", "--headless", "--once"], root)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "expected" not in first.stdout and "ETA" not in first.stdout  # no history yet
    (root / "test_quick.py").write_text("def test_a():\n    pass\n")  # one test fewer now

    second = run_cli(["run", "--headless", "--once"], root)
    assert second.returncode == 0, second.stdout + second.stderr
    lines = second.stdout.splitlines()
    # before each suite collects: the count it had last time (the skipped test too)
    p1 = next(line for line in lines if line.startswith("▶ P1"))
    p2 = next(line for line in lines if line.startswith("▶ P2"))
    assert " · 5 expected · ETA " in p1, second.stdout
    assert " · 2 expected · ETA " in p2, second.stdout
    assert any(line.startswith("── iteration 1 · ETA ") for line in lines), second.stdout
    assert "✔ P2: 1 tests" in second.stdout  # what it ran is what it collected
    finished = next(line for line in lines if line.startswith("iteration 1: passed"))
    assert ", estimated " in finished

    db = root / ".netra/history.db"
    (old,) = history_iterations(root, 1)
    (new,) = history_iterations(root, 2)
    assert old["eta_s"] is None and old["duration"] > 0  # the first run had no history
    assert new["duration"] > 0
    # the estimate made at the start: run 1's deploy and each test's duration (a test
    # with one result is its own median; skipped results count nothing)
    deploy, tests = query(
        db,
        "SELECT (SELECT duration FROM deploys WHERE iteration_id = 1),"
        " (SELECT SUM(duration) FROM results WHERE iteration_id = 1 AND outcome <> 'skipped')",
    )[0]
    assert new["eta_s"] == pytest.approx(deploy + tests, abs=0.002)
    assert new["eta_s"] >= 0.4  # four tests of 0.1 s
    table = run_cli(["history", "iterations", "2"], root)
    assert "estimated" in table.stdout.splitlines()[0], table.stdout


def test_an_older_database_gets_the_column_from_the_next_run(tmp_path, monkeypatch):
    """A history made before ``0003_iteration_eta``: ``history`` reads it as it is (null
    estimates), the next ``run`` adds the column and keeps every old row."""
    root = project(tmp_path)
    db = root / ".netra/history.db"
    db.parent.mkdir()
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])  # the previous set
    conn = sqlite3.connect(db, isolation_level=None)
    assert schema.migrate(conn) == ["0001_initial", "0002_history_indexes"]
    conn.execute(
        "INSERT INTO runs (id, started_at, finished_at, status) VALUES (1, ?, ?, 'passed')",
        ("2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00"),
    )
    conn.execute(
        "INSERT INTO iterations (run_id, seq, started_at, finished_at, status, passed)"
        " VALUES (1, 1, ?, ?, 'passed', 6)",
        ("2026-01-01T00:00:00+00:00", "2026-01-01T00:01:00+00:00"),
    )
    conn.close()
    monkeypatch.undo()

    def columns() -> set[str]:
        return {row[1] for row in query(db, "PRAGMA table_info(iterations)")}

    (old,) = history_iterations(root, 1)
    assert old["eta_s"] is None and old["duration"] == 60.0
    assert "eta_s" not in columns()  # history only reads

    ran = run_cli(["run", "--headless", "--once"], root)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "eta_s" in columns()
    assert ("0003_iteration_eta",) in query(db, "SELECT name FROM _sqlite_migrations")
    assert query(db, "SELECT run_id, seq, passed, eta_s FROM iterations ORDER BY id") == [
        (1, 1, 6, None),
        (2, 1, 6, None),  # the old rows told no test's duration: nothing to estimate from
    ]
