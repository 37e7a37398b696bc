"""Pins the order in which lifecycle hooks fire over one real run (tox-style).

A local plugin (``[plugins] dirs``) records every lifecycle hook call to a file; a real
``netra-supervisor run --headless`` runs 2 iterations of 2 phases (P2 has a test that
hangs), with the ``command`` deploy backend. ``netra_results`` may be called more than
once per phase (batches are flushed by size and age), so consecutive ``results``
entries are merged before comparing: the order of everything else is exact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cli_helpers import CLI, write

RECORDER = """
import json, os
from supervisor.hookspecs import hookimpl

OUT = os.environ["LIFECYCLE_OUT"]


def rec(*parts):
    with open(OUT, "a") as fh:
        fh.write(json.dumps(parts) + "\\n")


@hookimpl
def netra_run_started(run_id, config):
    rec("run_started", len(config.phases))


@hookimpl
def netra_iteration_started(run_id, iteration):
    rec("iteration_started", iteration)


@hookimpl
def netra_deploy_finished(run_id, iteration, backend, revision, ok, message):
    rec("deploy_finished", iteration, backend, revision, ok)


@hookimpl
def netra_phase_finished(run_id, iteration, phase, status, counts):
    rec("phase_finished", iteration, phase, status, counts["passed"], counts["hung"])


@hookimpl
def netra_results(batch):
    rec("results", [[r.iteration, r.phase, r.nodeid.split("::")[-1], r.outcome] for r in batch])


@hookimpl
def netra_test_hung(event):
    rec("test_hung", event.iteration, event.nodeid.split("::")[-1], event.reason)


@hookimpl
def netra_iteration_finished(run_id, iteration, status, counts):
    rec("iteration_finished", iteration, status)


@hookimpl
def netra_run_finished(run_id, status, exit_code):
    rec("run_finished", status, exit_code)
"""


def merged(calls: list[list]) -> list[list]:
    out: list[list] = []
    for call in calls:
        if call[0] == "results" and out and out[-1][0] == "results":
            out[-1] = ["results", out[-1][1] + call[1]]
        else:
            out.append(call)
    return out


def iteration(n: int) -> list[list]:
    return [
        ["iteration_started", n],
        ["deploy_finished", n, "command", f"r-{n}", True],
        ["results", [[n, 1, "test_a1", "passed"], [n, 1, "test_a2", "passed"]]],
        ["phase_finished", n, "P1", "passed", 2, 0],
        ["test_hung", n, "test_b_hangs", "deadline"],
        ["results", [[n, 2, "test_b_hangs", "hung"], [n, 2, "test_b_ok", "passed"]]],
        ["phase_finished", n, "P2", "failed", 1, 1],
        ["iteration_finished", n, "failed"],
    ]


EXPECTED = [["run_started", 2], *iteration(1), *iteration(2), ["run_finished", "failed", 1]]


def test_lifecycle_hooks_fire_in_the_pinned_order(tmp_path):
    write(tmp_path / "local_plugins/recorder.py", RECORDER)
    write(
        tmp_path / "a/test_a.py",
        """
        def test_a1(): pass
        def test_a2(): pass
        """,
    )
    write(
        tmp_path / "b/test_b.py",
        """
        import time
        def test_b_hangs(): time.sleep(60)
        def test_b_ok(): pass
        """,
    )
    deploy = [
        sys.executable,
        "-c",
        "import os; print('revision: r-' + os.environ['NETRA_ITERATION'])",
    ]
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [run]
        until = "all-pass"
        max_iterations = 2

        [deploy]
        backend = "command"
        command = {json.dumps(deploy)}

        [watchdog]
        grace = "1s"

        [plugins]
        dirs = ["local_plugins"]

        [[phase]]
        name = "P1"
        suites = ["a"]
        gate = "all-pass"

        [[phase]]
        name = "P2"
        suites = ["b"]
        gate = "none"

        [[suite]]
        name = "a"
        args = ["a"]

        [[suite]]
        name = "b"
        args = ["b"]
        test_timeout = "1s"
        """,
    )
    out = tmp_path / "calls.jsonl"
    env = {k: v for k, v in os.environ.items() if k != "NETRA_STRICT_PLUGINS"}
    env["LIFECYCLE_OUT"] = str(out)
    proc = subprocess.run(
        CLI + ["run", "--headless"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "plugin error" not in proc.stdout, proc.stdout
    calls = [json.loads(line) for line in out.read_text().splitlines()]
    assert merged(calls) == EXPECTED
