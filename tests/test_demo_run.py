"""``netra-supervisor demo --headless`` end to end, and the demo's config template."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil
from cli_helpers import CLI, query
from process_helpers import describe, marked_processes, wait_until_none

from supervisor.config import load_config
from supervisor.demo import workspace


def test_the_demo_converges_headless(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "NETRA_E2E_TOKEN": "a-stale-token-of-mine"}
    proc = subprocess.run(
        [*CLI, "demo", "--headless"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    line = next(ln for ln in out.splitlines() if ln.startswith("query it:"))
    assert line.startswith("query it: netra-supervisor history iterations --db ")
    db = Path(line.split("--db ", 1)[1].strip())
    assert db.is_relative_to(tmp_path) and db.exists()

    iterations = query(db, "select id, seq, status, passed, hung from iterations order by seq")
    assert len(iterations) in (2, 3)  # converges in the second (or third) iteration
    first, last = iterations[0], iterations[-1]
    assert last[2] == "passed" and last[3] >= 1000
    assert query(db, f"select count(*) from results where iteration_id = {last[0]} "
                 "and outcome != 'passed'") == [(0,)]  # fmt: skip

    # The first deploy is the buggy revision: a few P1 failures and one hang with a dump.
    assert first[2] == "gate-failed" and first[4] == 1
    bad = query(
        db,
        "select t.nodeid, r.outcome, r.dump from results r join tests t on t.id = r.test_id "
        f"where r.iteration_id = {first[0]} and r.outcome != 'passed' order by t.nodeid",
    )
    outcomes = {nodeid.split("::")[1]: outcome for nodeid, outcome, _ in bad}
    assert outcomes == {
        "test_creating_an_item_answers_201_created[pro plan]": "failed",
        "test_creating_an_item_answers_201_created[starter plan]": "failed",
        "test_creating_an_item_answers_201_created[team plan]": "failed",
        "test_the_agent_run_completes": "failed",
        "test_the_agent_stream_completes": "hung",
    }
    dump = next(d for _, outcome, d in bad if outcome == "hung")
    assert "recv" in dump  # the dump shows where the test waited
    assert "⏱ HUNG tests/test_p1_critical.py::test_the_agent_stream_completes" in out
    # ... and its message names that line and the library call under it (issue 15)
    source = (workspace.PROJECT / "tests" / "test_p1_critical.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "agent_ws.recv()" in text)
    (message,) = query(
        db,
        f"select r.message from results r where r.outcome = 'hung' and r.iteration_id = {first[0]}",
    )[0]
    waiting = (
        f"at tests/test_p1_critical.py:{line} in test_the_agent_stream_completes:"
        " agent_ws.recv() → websockets/sync/messages.py:"
    )
    assert message.startswith(f"hung 5s {waiting}"), message
    assert f"HUNG tests/test_p1_critical.py::test_the_agent_stream_completes: past its deadline (deadline 5s), waiting {waiting}" in out  # fmt: skip

    # Iteration 2 first re-ran those five (the verify pass, phase 0), then everything.
    second = iterations[1]
    assert query(db, f"select name, seq, status from phases where iteration_id = {second[0]} "
                 "order by seq limit 2") == [("verify", 0, "passed"), ("P1 critical", 1, "passed")]  # fmt: skip
    rerun = query(
        db,
        "select t.nodeid, r.outcome from results r join tests t on t.id = r.test_id "
        f"join phases p on p.id = r.phase_id where r.iteration_id = {second[0]} "
        "and p.name = 'verify'",
    )
    assert {nodeid.split("::")[1]: outcome for nodeid, outcome in rerun} == dict.fromkeys(
        outcomes, "passed"
    )
    shown = out[out.index("── iteration 2 ──") :]
    assert shown.index("▶ verify: suites p1 · gate all-pass · re-runs 5 tests") < shown.index(
        "▶ P1 critical"
    )
    assert "  ✔ passed tests/test_p1_critical.py::test_the_agent_stream_completes" in shown

    # Every deploy is the local backend; the fix is a new commit, so a new revision.
    deploys = query(db, "select backend, status, revision from deploys order by id")
    assert [(b, s) for b, s, _ in deploys] == [("local", "ok")] * len(iterations)
    if deploys[0][2] is not None:  # git is installed
        assert deploys[0][2] != deploys[1][2]
    assert "demo developer: iteration 1 gate-failed; committed the fix" in out
    log = (db.parent / "deploy-local.log").read_text()
    assert log.count("revision: buggy") == 1 and "revision: fixed" in log

    # Phases P1..P6 and the agents ran in the last iteration.
    phases = [
        name for (name,) in query(db, f"select name from phases where iteration_id = {last[0]}")
    ]
    for name in ("P1 critical", "P2 items", "P3 validation", "P4 payloads", "P5 listing",
                 "P6 auth matrix", "Agents"):  # fmt: skip
        assert name in phases

    # No token reached the database (a JWT starts with base64 '{"': eyJ).
    blob = db.read_bytes() + b"".join(p.read_bytes() for p in db.parent.glob("*-wal"))
    assert b"eyJ" not in blob and b"a-stale-token-of-mine" not in blob

    history = subprocess.run(
        [*CLI, "history", "iterations", "--db", str(db)], capture_output=True, text=True
    )
    assert history.returncode == 0 and "passed" in history.stdout


def test_the_template_is_a_valid_config_with_and_without_websocket_events(tmp_path):
    for with_ws in (True, False):
        path = tmp_path / "netra-supervisor.toml"
        path.write_text(workspace.config_text(41001, 41002, with_ws_events=with_ws))
        config = load_config(str(path))
        names = [p.name for p in config.phases]
        assert names[:6] == [
            "P1 critical",
            "P2 items",
            "P3 validation",
            "P4 payloads",
            "P5 listing",
            "P6 auth matrix",
        ]
        assert ("WebSocket events" in names) is with_ws
        assert config.run.target == 1000 and config.deploy.backend == "local"
        assert config.run.verify is True  # iteration 2 first re-runs iteration 1's failures
        assert config.deploy.health_url == "http://127.0.0.1:41001/health"
        assert config.auth is not None and config.auth.export_as == "NETRA_E2E_TOKEN"
        assert config.auth.secret_env == "NETRA_DEMO_JWT_SECRET"
        if with_ws:
            ws = config.suite("ws-events")
            # the kind's own keys, as written (the kind parses them once plugins load)
            assert ws.kind == "websocket-events"
            assert ws.options["url"] == "ws://127.0.0.1:41002/ws"
            assert ws.options["expect"][-1] == "agent_completed"


def _commits(folder: Path) -> int:
    done = subprocess.run(
        ["git", "rev-list", "--count", "HEAD"], cwd=folder, capture_output=True, text=True
    )
    return int(done.stdout.strip() or 0)


def test_the_demo_folder_is_a_git_repo_and_the_fix_is_a_commit(tmp_path):
    config = workspace.create(tmp_path)
    assert config == tmp_path / "netra-supervisor.toml"
    assert "$api_port" not in config.read_text() and "$120K MRR" in config.read_text()
    assert (tmp_path / "revision.txt").read_text() == "buggy\n"
    assert _commits(tmp_path) == 1
    assert workspace.land_fix(tmp_path) is True
    assert (tmp_path / "revision.txt").read_text() == "fixed\n"
    assert _commits(tmp_path) == 2
    assert workspace.land_fix(tmp_path) is False  # nothing left to fix
    assert _commits(tmp_path) == 2


def test_without_git_the_demo_folder_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-such-bin"))
    workspace.create(tmp_path)
    assert not (tmp_path / ".git").exists()
    assert workspace.land_fix(tmp_path) is True
    assert (tmp_path / "revision.txt").read_text() == "fixed\n"


def test_a_killed_demo_takes_its_backend_along(tmp_path):
    """The demo's backend (the ``local`` deploy backend's server) used to keep listening
    after its supervisor was SIGKILLed; now it, and every process of the run (found by
    its run tag), is gone within 2 s."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with open(tmp_path / "out.txt", "w") as out:
        proc = subprocess.Popen([*CLI, "demo", "--headless"], cwd=tmp_path, env=env, stdout=out)
        try:
            deadline = time.monotonic() + 60
            while "deploy local: ok" not in (tmp_path / "out.txt").read_text():
                assert time.monotonic() < deadline and proc.poll() is None, "never deployed"
                time.sleep(0.05)
            time.sleep(0.5)  # some tests run too
            (workdir,) = [p for p in tmp_path.iterdir() if p.name.startswith("netra-demo-")]
            (backend,) = [
                p for p in psutil.process_iter(["cmdline", "cwd"])
                if "supervisor.demo.backend" in " ".join(p.info["cmdline"] or ())
                and p.info["cwd"] == str(workdir)
            ]  # fmt: skip
            token = backend.environ()["NETRA_RUN_TAG"].split("/")[0] + "/"
            assert len(marked_processes("NETRA_RUN_TAG", token, prefix=True)) >= 2  # + pytest
            killed_at = time.monotonic()
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait()
    left = wait_until_none("NETRA_RUN_TAG", token, within=2.0 - (time.monotonic() - killed_at),
                           prefix=True)  # fmt: skip
    assert not left, describe(left)
