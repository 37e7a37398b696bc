"""New / still / fixed and the first bad revision (issue 14), from real runs.

A small git repository with three commits; the ``command`` deploy backend checks out
commit N for iteration N and prints it as the revision, and the tests read the
checked-out ``state.txt``. One real ``run`` of three iterations (real pytest, real
SQLite, a real ``jsonl`` sink), then the ``history`` commands on what it wrote:

======== ===== ===== ===== =============================================
test      it 1  it 2  it 3  what iteration 3 says
======== ===== ===== ===== =============================================
test_a    pass  fail  fail  still; first bad c2, last good c1
test_b    fail  fail  pass  fixed
test_c    pass  pass  fail  new; first bad c3, last good c2
test_d    fail  fail  fail  still; first bad c1, never passed
test_e    pass  pass  pass  -
======== ===== ===== ===== =============================================
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_helpers import run_cli, write

TESTS = """
import pathlib

STATE = int((pathlib.Path(__file__).parent.parent / "state.txt").read_text())


def test_a():
    assert STATE == 1, f"broken since 2 (state {STATE})"


def test_b():
    assert STATE == 3, f"fixed in 3 (state {STATE})"


def test_c():
    assert STATE != 3, f"broken in 3 (state {STATE})"


def test_d():
    assert False, "never passes"


def test_e():
    pass
"""

CONFIG = """
[run]
max_iterations = 3
until = "all-pass"

[deploy]
backend = "command"
command = ["./deploy.sh"]

[[suite]]
name = "s"
args = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "tests"]

[plugins]
dirs = ["plugins"]

[[sink]]
kind = "jsonl"
path = "events.jsonl"
events = ["test_result", "iteration_finished"]
"""

# a team's plugin: what the hooks get
PLUGIN = """
import json, pathlib

OUT = pathlib.Path(__file__).parent.parent / "hooks.jsonl"


def _write(record):
    with OUT.open("a") as fh:
        fh.write(json.dumps(record) + "\\n")


def netra_results(batch):
    for r in batch:
        _write({"hook": "results", "iteration": r.iteration, "nodeid": r.nodeid,
                "change": r.change})


def netra_iteration_finished(iteration, changes):
    _write({"hook": "iteration_finished", "iteration": iteration, "changes": changes})
"""

# iteration N checks out the Nth commit listed in revs.txt and says so
DEPLOY = """#!/bin/sh
set -e
rev=$(sed -n "${NETRA_ITERATION}p" revs.txt)
git checkout -q "$rev"
echo "revision: $rev"
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, list[str], subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("triage")
    git(root, "init", "-q")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    shas = []
    for state in (1, 2, 3):
        (root / "state.txt").write_text(str(state))
        git(root, "add", "state.txt")
        git(root, "commit", "-q", "-m", f"state {state}")
        shas.append(git(root, "rev-parse", "HEAD"))
    # untracked, so every checkout keeps them
    write(root / "tests" / "test_it.py", TESTS)
    write(root / "netra-supervisor.toml", CONFIG)
    write(root / "deploy.sh", DEPLOY, 0o755)
    write(root / "plugins" / "record_changes.py", PLUGIN)
    (root / "revs.txt").write_text("\n".join(shas) + "\n")
    proc = run_cli(["run", "--headless"], root, timeout=180)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    return root, shas, proc


#: a wide terminal: the text checks below read whole lines (tables fit the width)
WIDE = {"COLUMNS": "400"}


def history(root: Path, *args: str) -> dict | list:
    proc = run_cli(["history", *args, "--json"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout)


def failing(root: Path, iteration: str) -> dict[str, dict]:
    """test name -> its row of ``history failures --json``."""
    groups = history(root, "failures", iteration)["groups"]
    return {r["nodeid"].split("::")[1]: r for g in groups for r in g["results"]}


def test_headless_lines_count_new_still_fixed(project):
    _root, _shas, proc = project
    lines = proc.stdout.splitlines()
    assert "iteration 1: 2 new · 0 still failing · 0 fixed" in lines
    assert "iteration 2: 1 new · 2 still failing · 0 fixed" in lines
    assert "iteration 3: 1 new · 2 still failing · 1 fixed" in lines


def test_history_failures_labels_each_iteration(project):
    root, _shas, _proc = project
    assert {n: r["change"] for n, r in failing(root, "1").items()} == {
        "test_b": "new",
        "test_d": "new",
    }
    assert {n: r["change"] for n, r in failing(root, "2").items()} == {
        "test_a": "new",
        "test_b": "still",
        "test_d": "still",
    }
    assert {n: r["change"] for n, r in failing(root, "3").items()} == {
        "test_a": "still",
        "test_c": "new",
        "test_d": "still",
    }


def test_history_failures_names_the_first_bad_revision(project):
    root, (c1, c2, c3), _proc = project
    rows = failing(root, "latest")
    assert (rows["test_a"]["first_bad_revision"], rows["test_a"]["last_good_revision"]) == (c2, c1)
    assert rows["test_a"]["git_range"] == f"git log {c1}..{c2}"
    assert (rows["test_c"]["first_bad_revision"], rows["test_c"]["last_good_revision"]) == (c3, c2)
    assert (rows["test_d"]["first_bad_revision"], rows["test_d"]["last_good_revision"]) == (
        c1,
        None,
    )
    assert rows["test_d"]["git_range"] is None
    # as of iteration 2, test_a's streak had just begun: the same first bad revision
    assert failing(root, "2")["test_a"]["first_bad_revision"] == c2
    # the range names exactly the commit that broke it
    assert git(root, "log", "--format=%H", f"{c1}..{c2}") == c2
    # plain text says it too
    text = run_cli(["history", "failures"], root, env=WIDE).stdout
    assert f"[still, failing since {c2}; last passed at {c1}: git log {c1}..{c2}]" in text


def test_history_test_shows_the_streak(project):
    root, (c1, c2, _c3), _proc = project
    data = history(root, "test", "test_a")
    assert data["streak"]["first_bad_revision"] == c2
    assert data["streak"]["last_good_revision"] == c1
    assert data["streak"]["failures_in_streak"] == 2
    assert history(root, "test", "test_b")["streak"] is None  # its latest result passed
    text = run_cli(["history", "test", "test_a"], root, env=WIDE).stdout
    assert f"failing since revision {c2} (iteration 1.2, 2 non-passes in a row)" in text
    assert f"git log {c1}..{c2}" in text


def test_history_diff_labels_changes(project):
    root, _shas, _proc = project
    data = history(root, "diff", "1.2", "1.3")
    assert [(i["nodeid"].split("::")[1], i["change"]) for i in data["fixed"]] == [
        ("test_b", "fixed")
    ]
    assert [(i["nodeid"].split("::")[1], i["change"]) for i in data["newly_failing"]] == [
        ("test_c", "new")
    ]
    assert sorted(i["nodeid"].split("::")[1] for i in data["still_failing"]) == [
        "test_a",
        "test_d",
    ]
    assert all(i["change"] == "still" for i in data["still_failing"])
    text = run_cli(["history", "diff", "1.2", "1.3"], root, env=WIDE).stdout
    assert "in 1.3: 1 new · 2 still failing · 1 fixed" in text


def test_sink_events_carry_the_change(project):
    root, _shas, _proc = project
    records = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    results = [r for r in records if r["event"] == "test_result"]
    assert len(results) == 15
    third = {r["nodeid"].split("::")[1]: r["change"] for r in results if r["iteration"] == 3}
    assert third == {
        "test_a": "still",
        "test_b": "fixed",
        "test_c": "new",
        "test_d": "still",
        "test_e": None,
    }
    finished = [r["changes"] for r in records if r["event"] == "iteration_finished"]
    assert finished == [
        {"new": 2, "still": 0, "fixed": 0, "flaky": 0},
        {"new": 1, "still": 2, "fixed": 0, "flaky": 0},
        {"new": 1, "still": 2, "fixed": 1, "flaky": 0},
    ]


def test_tui_report_names_change_and_first_bad_revision(project):
    """The live TUI over a model fed like a run's (results carry their change), with
    the run's history: Enter on a failure says since which revision it fails."""
    import asyncio

    from tui_helpers import AT, FrozenClock, screen_text

    from supervisor.core.events import IterationStarted, TestResult
    from supervisor.core.model import RunModel
    from supervisor.tui.app import SupervisorApp
    from supervisor.tui.screens import FailureScreen
    from supervisor.tui.widgets import FailuresPane, RunHeader

    root, (c1, c2, _c3), _proc = project
    model = RunModel(until="all-pass", max_iterations=5)
    model.apply(IterationStarted(2, 1, AT))
    model.apply(
        TestResult(1, 1, "s", "tests/test_it.py::test_a", "failed", 0.1, AT,
                   message="AssertionError: broken since 2", change="still")
    )  # fmt: skip
    model.apply(
        TestResult(1, 1, "s", "tests/test_it.py::test_b", "passed", 0.1, AT, change="fixed")
    )
    app = SupervisorApp(model, db_path=root / ".netra/history.db", clock=FrozenClock())

    async def scenario() -> None:
        async with app.run_test(size=(160, 40)) as pilot:
            app.refresh_view()
            await pilot.pause()
            header = str(app.query_one(RunHeader).render())
            assert "(0 new · 1 still failing · 1 fixed)" in header
            failures = app.query_one(FailuresPane)
            assert failures.border_subtitle == "1 not passing · 0 new · 1 still"
            assert "still · AssertionError" in screen_text(app)
            await pilot.press("f", "enter")
            await pilot.pause()
            assert isinstance(app.screen, FailureScreen)
            report = screen_text(app)
            assert f"failing since revision {c2}" in report
            assert f"git log {c1}..{c2}" in report

    asyncio.run(scenario())


def test_hooks_get_the_change(project):
    root, _shas, _proc = project
    records = [json.loads(line) for line in (root / "hooks.jsonl").read_text().splitlines()]
    second = {
        r["nodeid"].split("::")[1]: r["change"]
        for r in records
        if r["hook"] == "results" and r["iteration"] == 2
    }
    assert second == {
        "test_a": "new",
        "test_b": "still",
        "test_c": None,
        "test_d": "still",
        "test_e": None,
    }
    assert [r["changes"] for r in records if r["hook"] == "iteration_finished"][-1] == {
        "new": 1,
        "still": 2,
        "fixed": 1,
        "flaky": 0,
    }
