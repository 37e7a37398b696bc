"""Deploying the demo backend with the ``local`` backend when things go wrong.

Real runs of the CLI, the real demo backend on loopback ports, real pytest suites
against it: a deploy that does not start, one that never becomes healthy, and a
backend that dies in the middle of a phase. (The ``command`` backend's failures are
covered in test_deploy.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli_helpers import CLI, query, write

from supervisor.demo import workspace
from supervisor.demo.backend import SECRET_ENV

SECRET = "demo-deploy-test-secret-0123456789abcdef"

TOKEN = """
import os, time, jwt
TOKEN = jwt.encode(
    {"sub": "t", "aud": "netra-demo", "exp": int(time.time()) + 600},
    os.environ["NETRA_DEMO_JWT_SECRET"],
    "HS256",
)
AUTH = {"Authorization": "Bearer " + TOKEN}
API = os.environ["NETRA_DEMO_API"]
"""

FIX_AFTER_A_FAILED_DEPLOY = """
import pathlib
import pluggy

hookimpl = pluggy.HookimplMarker("netra_supervisor")
ROOT = pathlib.Path(__file__).resolve().parent.parent

@hookimpl
def netra_iteration_finished(run_id, iteration, status, counts):
    if status == "deploy-failed":
        (ROOT / "revision.txt").write_text("fixed\\n")
"""


def project(
    root: Path,
    revision: str,
    tests: str,
    run: str = 'until = "all-pass"\nmax_iterations = 3',
    backend_args: tuple[str, ...] = (),
    health_timeout: str = "20s",
    plugin: str = "",
) -> tuple[Path, int]:
    """A project deploying the demo backend locally; returns (folder, its HTTP port)."""
    port, ws_port = workspace.free_ports(2)
    (root / "revision.txt").write_text(revision + "\n")
    write(root / "t/helpers.py", TOKEN)
    write(root / "t/test_api.py", tests)
    if plugin:
        write(root / "plugins/fixer.py", plugin)
    command = [sys.executable, "-m", "supervisor.demo.backend", "--port", str(port)]
    command += ["--ws-port", str(ws_port), "--revision-file", "revision.txt", *backend_args]
    write(
        root / "netra-supervisor.toml",
        f"""
        [run]
        {run}
        env = {{ NETRA_DEMO_API = "http://127.0.0.1:{port}" }}

        [deploy]
        backend = "local"
        command = {json.dumps(command)}
        health_url = "http://127.0.0.1:{port}/health"
        health_timeout = "{health_timeout}"

        [plugins]
        dirs = ["plugins"]

        [[suite]]
        name = "api"
        args = ["t", "-p", "no:cacheprovider"]
        """,
    )
    (root / "plugins").mkdir(exist_ok=True)
    return root, port


def run(folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, SECRET_ENV: SECRET}
    return subprocess.run(
        [*CLI, "run", "--headless", "-v"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def backend_processes(port: int) -> str:
    """Demo backends still running on ``port`` (there must be none after a run)."""
    found = subprocess.run(
        ["pgrep", "-f", f"supervisor.demo.backend --port {port} "], capture_output=True, text=True
    )
    return found.stdout.strip()


def test_a_deploy_that_does_not_start_fails_and_the_loop_goes_on(tmp_path):
    folder, port = project(
        tmp_path,
        "broken",
        """
        import httpx
        from helpers import API
        def test_up():
            assert httpx.get(API + "/health").json()["revision"] == "fixed"
        """,
        health_timeout="5s",
        plugin=FIX_AFTER_A_FAILED_DEPLOY,
    )
    proc = run(folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    db = folder / ".netra/history.db"
    assert query(db, "select seq, status from iterations order by seq") == [
        (1, "deploy-failed"),
        (2, "passed"),
    ]
    assert query(db, "select status from deploys order by id") == [("failed",), ("ok",)]
    # no test ran against the broken deploy
    assert query(
        db,
        "select i.seq, count(*) from results r join iterations i on i.id = r.iteration_id "
        "group by i.seq",
    ) == [(2, 1)]
    message = query(db, "select message from deploys order by id limit 1")[0][0]
    # Caught at once (exit code) or, on a slow machine, by the health check: either way
    # failed, and the backend's own reason is in its log.
    assert "exited at once with code 2" in message or "not healthy after 5s" in message
    log = (folder / ".netra/deploy-local.log").read_text()
    assert "revision 'broken' does not start (known: buggy, fixed)" in log
    assert "deploy local: failed" in proc.stdout
    assert backend_processes(port) == ""


def test_a_backend_that_never_becomes_healthy_is_a_failed_deploy(tmp_path):
    folder, port = project(
        tmp_path,
        "fixed",
        """
        def test_never_runs():
            raise AssertionError("no test may run against an unhealthy deploy")
        """,
        run='until = "once"',
        backend_args=("--boot-delay", "120"),
        health_timeout="1s",
    )
    proc = run(folder)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    db = folder / ".netra/history.db"
    assert query(db, "select status from iterations") == [("deploy-failed",)]
    assert query(db, "select count(*) from results") == [(0,)]
    message = query(db, "select message from deploys")[0][0]
    assert f"not healthy after 1s (http://127.0.0.1:{port}/health: ConnectError" in message
    assert "not healthy after 1s" in proc.stdout
    assert "booting for 120s" in (folder / ".netra/deploy-local.log").read_text()
    assert backend_processes(port) == ""  # the still-booting backend was stopped


def test_a_backend_that_dies_mid_phase_fails_its_tests_and_is_redeployed(tmp_path):
    folder, port = project(
        tmp_path,
        "fixed",
        """
        import os, pathlib, signal
        import httpx, pytest
        from helpers import API, AUTH

        KILLED = pathlib.Path(__file__).resolve().parent.parent / "killed-once"

        def test_1_before():
            assert httpx.get(API + "/api/whoami", headers=AUTH).status_code == 200

        def test_2_the_backend_dies():
            pid = httpx.get(API + "/health").json()["pid"]
            if not KILLED.exists():  # only the first deploy dies
                KILLED.write_text(str(pid))
                os.kill(pid, signal.SIGKILL)

        @pytest.mark.parametrize("n", range(4))
        def test_3_after(n):
            assert httpx.get(API + "/api/whoami", headers=AUTH).json()["sub"] == "t"
        """,
    )
    proc = run(folder)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    db = folder / ".netra/history.db"
    assert query(db, "select seq, status, passed, failed from iterations order by seq") == [
        (1, "failed", 2, 4),
        (2, "passed", 6, 0),
    ]
    failures = query(
        db,
        "select t.nodeid, r.message from results r join tests t on t.id = r.test_id "
        "where r.outcome = 'failed' order by t.nodeid",
    )
    assert [nodeid for nodeid, _ in failures] == [
        f"t/test_api.py::test_3_after[{n}]" for n in range(4)
    ]
    for _, message in failures:
        assert "ConnectError" in message and "Connection refused" in message, message
    assert query(db, "select status from deploys order by id") == [("ok",), ("ok",)]
    log = (folder / ".netra/deploy-local.log").read_text()
    assert log.count("listening") == 2  # redeployed for iteration 2
    assert backend_processes(port) == ""
