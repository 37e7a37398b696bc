"""A run whose supervisor was SIGKILLed is told apart from one that runs (store.alive).

The killed supervisor cannot write its run's end, so its ``runs`` row says ``running``
forever; the lock it held in the run's log folder tells ``watch`` and ``history runs``
that nobody is there any more. A real ``run --headless`` is killed with SIGKILL while
a test sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

from cli_helpers import CLI, query, run_cli, write

from supervisor.store import alive
from supervisor.store.follow import FollowedRun


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_lock_is_held_while_its_holder_lives(tmp_path):
    db = tmp_path / "history.db"
    (tmp_path / "logs" / "run-3").mkdir(parents=True)
    assert not alive.gone(db, 3)  # no lock file: cannot tell, so not gone
    fd = alive.hold(db, 3)
    assert fd is not None
    assert alive.lock_path(db, 3).is_file()
    assert not alive.gone(db, 3)  # held (by another open file: flock tells them apart)
    assert alive.hold(db, 3) is None  # a second holder cannot take it
    alive.release(fd)
    assert alive.gone(db, 3)


def one_running(db: Path) -> bool:
    try:
        return db.exists() and query(db, "SELECT count(*) FROM running") == [(1,)]
    except sqlite3.Error:  # the schema is still being made
        return False


def wait_for(check, within: float = 60.0) -> None:
    end = time.monotonic() + within
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


def test_a_killed_supervisors_run_ends_in_watch_and_history(tmp_path):
    write(tmp_path / "tests/test_a.py", "import time\n\ndef test_sleeps():\n    time.sleep(60)\n")
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        until = "once"

        [[suite]]
        name = "s"
        args = ["tests", "-p", "no:cacheprovider"]
        """,
    )
    db = tmp_path / ".netra/history.db"
    env = {**os.environ, "NETRA_STRICT_PLUGINS": ""}
    proc = subprocess.Popen(
        CLI + ["run", "--headless"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: one_running(db))
        clock = Clock()
        run = FollowedRun(db, clock=clock, poll_every=0.0)
        run.snapshot()
        clock.now += 5
        view = run.snapshot()
        assert not run.gone and not run.finished  # it runs: the lock is held
        assert [t.nodeid for t in view.running] == ["tests/test_a.py::test_sleeps"]
        assert (
            json.loads(run_cli(["history", "runs", "--json"], tmp_path).stdout)[0]["gone"] is False
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    wait_for(lambda: alive.gone(db, 1), within=10)  # the kernel let its lock go
    assert query(db, "SELECT status, finished_at FROM runs") == [("running", None)]
    clock.now += 5
    view = run.snapshot()
    assert run.gone and run.finished
    assert view.finished is not None and view.stop_reason == alive.GONE_REASON
    assert view.running == ()  # its tests are not shown running any more
    run.close()

    text = run_cli(["history", "runs"], tmp_path).stdout
    assert "gone" in text.split("\n")[1], text
    (row,) = json.loads(run_cli(["history", "runs", "--json"], tmp_path).stdout)
    assert row["status"] == "running" and row["gone"] is True  # the stored status stays


def test_a_run_that_ended_is_not_gone(tmp_path):
    write(tmp_path / "tests/test_a.py", "def test_ok():\n    pass\n")
    write(
        tmp_path / "netra-supervisor.toml",
        '[run]\nuntil = "once"\n\n[[suite]]\nname = "s"\nargs = ["tests", "-p", "no:cacheprovider"]\n',
    )
    assert run_cli(["run", "--headless"], tmp_path).returncode == 0
    db = tmp_path / ".netra/history.db"
    assert alive.lock_path(db, 1).is_file() and alive.gone(db, 1)  # released at its end
    run = FollowedRun(db, poll_every=0.0)
    view = run.snapshot()
    assert run.finished and not run.gone and view.stop_reason == "passed"
    run.close()
    (row,) = json.loads(run_cli(["history", "runs", "--json"], tmp_path).stdout)
    assert row["status"] == "passed" and row["gone"] is False
    assert Path(db).exists()
