"""A supervisor killed mid-iteration: its pytest goes too, and ``--resume`` finishes the
iteration in the same run without re-running what was already recorded."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import psutil
from cli_helpers import CLI, query

MARK = "NETRA_RESUME_TEST_MARK"


def marked(mark: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(MARK) == mark and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def make_project(root: Path) -> None:
    (root / "tests").mkdir()
    body = textwrap.dedent(
        """
        import os, pathlib, time

        LOG = pathlib.Path(os.environ["RESUME_LOG"])
        RELEASE = pathlib.Path(os.environ["RESUME_RELEASE"])

        def ran(name):
            with LOG.open("a") as fh:
                fh.write(name + "\\n")

        def test_a(): ran("a")
        def test_b(): ran("b")
        def test_c(): ran("c")

        def test_d_waits():
            ran("d")
            for _ in range(600):
                if RELEASE.exists():
                    return
                time.sleep(0.05)

        def test_e(): ran("e")
        """
    )
    (root / "tests" / "test_flow.py").write_text(body)
    (root / "tests" / "test_second.py").write_text(
        "from test_flow import ran\n\ndef test_f():\n    ran('f')\n"
    )
    (root / "netra-supervisor.toml").write_text(
        textwrap.dedent(
            """
            [run]
            until = "once"

            [[phase]]
            name = "P1"
            suites = ["first"]

            [[phase]]
            name = "P2"
            suites = ["second"]

            [[suite]]
            name = "first"
            args = ["tests/test_flow.py", "-p", "no:cacheprovider"]

            [[suite]]
            name = "second"
            args = ["tests/test_second.py", "-p", "no:cacheprovider"]
            env = { PYTHONPATH = "tests" }
            """
        )
    )


def test_killed_supervisor_takes_pytest_along_and_resume_finishes_the_iteration(tmp_path):
    make_project(tmp_path)
    log, release = tmp_path / "ran.log", tmp_path / "release"
    mark = uuid.uuid4().hex
    env = {**os.environ, "RESUME_LOG": str(log), "RESUME_RELEASE": str(release), MARK: mark}
    db = tmp_path / ".netra" / "history.db"

    first = subprocess.Popen(
        [*CLI, "run", "--headless"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        recorded = 0
        while time.monotonic() < deadline:
            try:
                recorded = query(db, "SELECT count(*) FROM results")[0][0]
            except sqlite3.OperationalError:  # not created yet
                recorded = 0
            if recorded >= 3:
                break
            time.sleep(0.1)
        assert recorded == 3, "the first three results never reached the database"
        assert log.read_text().split() == ["a", "b", "c", "d"]
        first.send_signal(signal.SIGKILL)  # no chance to clean up
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
        first.stdout.close()

    # the pytest it started (its own process group) ends itself when its supervisor dies
    deadline = time.monotonic() + 10
    while marked(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked(mark) == []
    (run_id,) = query(db, "SELECT id FROM runs")[0]
    assert query(db, "SELECT status FROM iterations") == [("running",)]

    release.touch()
    resumed = subprocess.run(
        [*CLI, "run", "--headless", "--resume", str(run_id)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming iteration 1" in resumed.stdout and "3 results" in resumed.stdout
    # a, b and c were not run again; d (cut off mid-test), e and f ran once more / once
    assert log.read_text().split() == ["a", "b", "c", "d", "d", "e", "f"]
    rows = query(
        db,
        "SELECT t.nodeid, r.outcome, p.name FROM results r JOIN tests t ON t.id = r.test_id"
        " JOIN phases p ON p.id = r.phase_id ORDER BY r.id",
    )
    assert [(nodeid.split("::")[1], outcome, phase) for nodeid, outcome, phase in rows] == [
        ("test_a", "passed", "P1"),
        ("test_b", "passed", "P1"),
        ("test_c", "passed", "P1"),
        ("test_d_waits", "passed", "P1"),
        ("test_e", "passed", "P1"),
        ("test_f", "passed", "P2"),
    ]
    assert query(db, "SELECT count(*) FROM runs") == [(1,)]
    assert query(db, "SELECT seq, status, passed FROM iterations") == [(1, "passed", 6)]
    assert query(db, "SELECT name, status, passed FROM phases ORDER BY seq") == [
        ("P1", "passed", 5),
        ("P2", "passed", 1),
    ]
    # the resumed run wrote new log files beside the killed run's, not over them
    logs = sorted(p.name for p in (db.parent / "logs" / f"run-{run_id}").glob("first-*.log"))
    assert logs == ["first-i1-p1-a1.2.log", "first-i1-p1-a1.log"]
    killed_log = (db.parent / "logs" / f"run-{run_id}" / "first-i1-p1-a1.log").read_text()
    assert killed_log.count("\n$ ") + killed_log.startswith("$ ") == 1  # one pytest's output
