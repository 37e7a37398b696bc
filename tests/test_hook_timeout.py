"""Slow plugins and the run (issue 12): real ``netra-supervisor run --headless`` runs.

A ``[plugins] dirs`` plugin whose ``netra_results`` sleeps 120 s used to stop the
whole suite: hooks ran on the runner's thread, where deadlines are checked. Now they
run on their own thread with ``[plugins] hook_timeout``; the loop still waits for the
hooks at iteration edges (barriers), which the demo's developer plugin relies on.
"""

from __future__ import annotations

import json
import sys
import time

from cli_helpers import query, run_cli, write

RECORDER = """
import json, os
from supervisor.hookspecs import hookimpl

OUT = os.environ["LIFECYCLE_OUT"]


def rec(*parts):
    with open(OUT, "a") as fh:
        fh.write(json.dumps(parts) + "\\n")


@hookimpl
def netra_run_started(run_id, config):
    rec("run_started")


@hookimpl
def netra_iteration_started(run_id, iteration):
    rec("iteration_started", iteration)


@hookimpl
def netra_deploy_finished(run_id, iteration, ok):
    rec("deploy_finished", iteration, ok)


@hookimpl
def netra_results(batch):
    rec("results", [[r.nodeid.split("::")[-1], r.outcome] for r in batch])


@hookimpl
def netra_test_hung(event):
    rec("test_hung", event.nodeid.split("::")[-1])


@hookimpl
def netra_phase_finished(phase, status):
    rec("phase_finished", phase, status)


@hookimpl
def netra_iteration_finished(run_id, iteration, status):
    rec("iteration_finished", iteration, status)


@hookimpl
def netra_run_finished(run_id, status, exit_code):
    rec("run_finished", status, exit_code)
"""

# Named a_* so it comes before the recorder: its stuck call holds up the recorder's
# implementation of the same call until the timeout, never longer.
SLOW = """
import time
from supervisor.hookspecs import hookimpl


@hookimpl
def netra_results(batch):
    time.sleep(120)
"""


def merged(calls: list[list]) -> list[list]:
    """Consecutive ``results`` entries merged (batches are cut by size and age)."""
    out: list[list] = []
    for call in calls:
        if call[0] == "results" and out and out[-1][0] == "results":
            out[-1] = ["results", out[-1][1] + call[1]]
        else:
            out.append(call)
    return out


def slow_project(tmp_path, hook_timeout: str = "2s"):
    """One suite: a passing test, one that hangs past its 1 s deadline, two more.

    The conftest's pause before the first test makes the first result's batch due
    (results are batched for about a second), so the slow plugin is stuck in it while
    the next test hangs: the watchdog has to decide without the plugin's thread. (The
    recorder implements ``netra_run_started``, so no pytest is prestarted before the
    batcher's clock starts.)
    """
    write(tmp_path / "local_plugins/a_slow.py", SLOW)
    write(tmp_path / "local_plugins/b_recorder.py", RECORDER)
    write(
        tmp_path / "t/conftest.py",
        """
        import time
        def pytest_collection_finish(session):
            time.sleep(1.2)
        """,
    )
    write(
        tmp_path / "t/test_s.py",
        """
        import time
        def test_1_ok(): pass
        def test_2_hangs(): time.sleep(60)
        def test_3_ok(): pass
        def test_4_ok(): pass
        """,
    )
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [watchdog]
        grace = "1s"

        [plugins]
        dirs = ["local_plugins"]
        hook_timeout = "{hook_timeout}"

        [[suite]]
        name = "s"
        args = ["t"]
        test_timeout = "1s"
        """,
    )


def test_a_plugin_sleeping_120s_delays_no_deadline_and_is_quarantined(tmp_path):
    slow_project(tmp_path)
    out = tmp_path / "calls.jsonl"
    t0 = time.monotonic()
    proc = run_cli(
        ["run", "--headless", "--once"], tmp_path, timeout=110, env={"LIFECYCLE_OUT": str(out)}
    )
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # normal time (a few seconds) + hook_timeout + slack; the plugin alone would take 120 s
    assert elapsed < 60, elapsed
    db = tmp_path / ".netra/history.db"
    rows = dict(
        (nodeid.split("::")[-1], (outcome, duration))
        for nodeid, outcome, duration in query(
            db,
            "SELECT t.nodeid, r.outcome, r.duration FROM results r JOIN tests t ON t.id = r.test_id",
        )
    )
    assert {k: v[0] for k, v in rows.items()} == {
        "test_1_ok": "passed",
        "test_2_hangs": "hung",
        "test_3_ok": "passed",
        "test_4_ok": "passed",
    }
    # hung at its deadline (1 s, then 1 s grace for the dump), not when the plugin let go
    assert rows["test_2_hangs"][1] < 15, rows["test_2_hangs"]
    ((plugin, hook, error),) = query(db, "SELECT plugin, hook, error FROM plugin_errors")
    assert (plugin, hook) == ("a_slow", "netra_results")
    assert error.startswith("TimeoutError: still running after hook_timeout 2s (a_slow.py:")
    assert "[plugin error] a_slow in netra_results: TimeoutError" in proc.stdout
    logs = [text for (text,) in query(db, "SELECT text FROM logs WHERE source = 'plugins'")]
    assert any("hook_timeout 2s" in text and "abandoned" in text for text in logs), logs
    # the other plugin got every hook, in order, every result exactly once
    calls = merged([json.loads(line) for line in out.read_text().splitlines()])
    assert calls == [
        ["run_started"],
        ["iteration_started", 1],
        ["deploy_finished", 1, True],
        ["results", [["test_1_ok", "passed"]]],
        ["test_hung", "test_2_hangs"],
        ["results", [["test_2_hangs", "hung"], ["test_3_ok", "passed"], ["test_4_ok", "passed"]]],
        ["phase_finished", "all", "failed"],
        ["iteration_finished", 1, "failed"],
        ["run_finished", "failed", 1],
    ]


def test_strict_mode_stops_the_run_on_a_hook_timeout(tmp_path):
    slow_project(tmp_path, hook_timeout="1s")
    t0 = time.monotonic()
    proc = run_cli(
        ["run", "--headless"],
        tmp_path,
        timeout=110,
        env={"LIFECYCLE_OUT": str(tmp_path / "calls.jsonl"), "NETRA_STRICT_PLUGINS": "1"},
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert time.monotonic() - t0 < 60
    assert (
        "plugin 'a_slow' (dir local_plugins) failed in netra_results: TimeoutError: still "
        "running after hook_timeout 1s (a_slow.py:"
    ) in proc.stderr
    assert "[stopped because NETRA_STRICT_PLUGINS=1]" in proc.stderr
    assert "Traceback" not in proc.stderr
    db = tmp_path / ".netra/history.db"
    assert query(db, "SELECT plugin, hook FROM plugin_errors") == [("a_slow", "netra_results")]


BARRIERS = """
import os, time
from pathlib import Path
from supervisor.hookspecs import hookimpl

HERE = Path(os.environ["BARRIER_DIR"])


@hookimpl
def netra_iteration_started(run_id, iteration):
    time.sleep(1)  # slower than the deploy; shorter than hook_timeout
    (HERE / "prepared.txt").write_text(str(iteration))


@hookimpl
def netra_iteration_finished(run_id, iteration, status):
    time.sleep(1)  # like the demo's developer committing a fix
    (HERE / "fix.txt").write_text(f"fix-{iteration}")


@hookimpl
def netra_run_finished(run_id, status, exit_code):
    time.sleep(1)
    (HERE / "finished.txt").write_text(status)
"""

DEPLOY = """
import os
from pathlib import Path

here = Path(os.environ["BARRIER_DIR"])
fix = here / "fix.txt"
prepared = (here / "prepared.txt").read_text() if (here / "prepared.txt").exists() else "-"
print("revision: " + (fix.read_text() if fix.exists() else "none") + "+prepared-" + prepared)
"""


def test_hook_barriers_iteration_edges_and_run_end(tmp_path):
    """What a hook writes at an iteration's edge is there for the next deploy and tests."""
    write(tmp_path / "local_plugins/barriers.py", BARRIERS)
    write(tmp_path / "deploy.py", DEPLOY)
    write(
        tmp_path / "t/test_t.py",
        """
        import os
        from pathlib import Path

        def test_sees_what_iteration_started_prepared():
            assert Path(os.environ["BARRIER_DIR"], "prepared.txt").read_text() in ("1", "2")

        def test_fails_so_the_loop_goes_on():
            assert False
        """,
    )
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [run]
        max_iterations = 2

        [deploy]
        backend = "command"
        command = {json.dumps([sys.executable, "deploy.py"])}

        [plugins]
        dirs = ["local_plugins"]
        hook_timeout = "20s"

        [[suite]]
        name = "t"
        args = ["t"]
        """,
    )
    proc = run_cli(["run", "--headless"], tmp_path, env={"BARRIER_DIR": str(tmp_path)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    db = tmp_path / ".netra/history.db"
    revisions = [r for (r,) in query(db, "SELECT revision FROM deploys ORDER BY id")]
    assert revisions == ["none+prepared-1", "fix-1+prepared-2"]
    outcomes = query(
        db,
        "SELECT t.nodeid, r.outcome FROM results r JOIN tests t ON t.id = r.test_id"
        " WHERE t.nodeid LIKE '%prepared' ORDER BY r.id",
    )
    assert [o for _n, o in outcomes] == ["passed", "passed"]
    # netra_run_finished ran to its end before the process exited
    assert (tmp_path / "finished.txt").read_text() == "failed"
    assert query(db, "SELECT count(*) FROM plugin_errors") == [(0,)]
