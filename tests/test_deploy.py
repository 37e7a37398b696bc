"""The ``command`` deploy backend and the health check: real scripts, a real local server."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cli_helpers import CLI, query, write


def project(tmp_path: Path, deploy: str, run: str = 'until = "once"') -> Path:
    write(tmp_path / "t/test_app.py", "def test_app(): pass\n")
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [run]
        {run}

        [deploy]
        {deploy}

        [[suite]]
        name = "t"
        args = ["t"]
        """,
    )
    return tmp_path


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, "run", "--headless", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_deploy_revision_is_recorded_and_tests_run(tmp_path):
    write(tmp_path / "deploy.sh", "#!/bin/sh\necho building\necho 'revision: abc123'\n", 0o755)
    proj = project(tmp_path, 'backend = "command"\ncommand = ["./deploy.sh"]')
    proc = run(proj, "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    db = proj / ".netra/history.db"
    assert query(db, "select backend, revision, status from deploys") == [
        ("command", "abc123", "ok")
    ]
    assert query(db, "select deploy_revision from iterations") == [("abc123",)]
    assert "building" in proc.stdout  # deploy output reaches the log (-v shows it)
    assert query(db, "select count(*) from logs where text = 'building'") == [(1,)]


def test_failed_deploy_runs_no_tests_and_the_loop_goes_on(tmp_path):
    write(
        tmp_path / "deploy.sh",
        "#!/bin/sh\necho 'kubectl: cluster unreachable' >&2\nexit 3\n",
        0o755,
    )
    proj = project(
        tmp_path,
        'backend = "command"\ncommand = ["./deploy.sh"]',
        run="max_iterations = 2",
    )
    proc = run(proj)
    assert proc.returncode == 1
    db = proj / ".netra/history.db"
    assert query(db, "select status from iterations") == [("deploy-failed",), ("deploy-failed",)]
    assert query(db, "select count(*) from results") == [(0,)]
    message = query(db, "select message from deploys limit 1")[0][0]
    assert "code 3" in message and "cluster unreachable" in message
    assert "deploy command: failed" in proc.stdout


def test_deploy_timeout_kills_the_script(tmp_path):
    marker = f"netra-deploy-sleeper-{os.getpid()}"
    sleeper = f"{sys.executable} -c 'import time; time.sleep(60)' {marker}"
    write(tmp_path / "deploy.sh", f"#!/bin/sh\necho starting\n{sleeper}\n", 0o755)
    proj = project(tmp_path, 'backend = "command"\ncommand = ["./deploy.sh"]\ntimeout = "1s"')
    proc = run(proj)
    assert proc.returncode == 1
    message = query(proj / ".netra/history.db", "select message from deploys")[0][0]
    assert "timed out after 1s" in message
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_missing_deploy_command_is_a_failed_deploy(tmp_path):
    proj = project(tmp_path, 'backend = "command"\ncommand = ["./nope.sh"]')
    proc = run(proj)
    assert proc.returncode == 1
    message = query(proj / ".netra/history.db", "select message from deploys")[0][0]
    assert "cannot start './nope.sh'" in message


def test_when_first_deploys_once(tmp_path):
    write(tmp_path / "deploy.sh", "#!/bin/sh\necho x >> deploys.log\n", 0o755)
    proj = project(
        tmp_path,
        'backend = "command"\ncommand = ["./deploy.sh"]\nwhen = "first"',
        run='until = "target"\ntarget = 99\nmax_iterations = 3',
    )
    run(proj)
    assert (proj / "deploys.log").read_text().count("x") == 1
    statuses = query(proj / ".netra/history.db", "select status from deploys order by id")
    assert statuses == [("ok",), ("skipped",), ("skipped",)]


class _Flaky(http.server.BaseHTTPRequestHandler):
    """503 for the first ``unhealthy`` requests, then 200."""

    unhealthy = 2
    seen = 0

    def do_GET(self):  # noqa: N802 - http.server's naming
        type(self).seen += 1
        self.send_response(503 if type(self).seen <= type(self).unhealthy else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    _Flaky.seen = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_health_check_waits_until_healthy(tmp_path, health_server):
    url = f"http://127.0.0.1:{health_server.server_address[1]}/health"
    write(tmp_path / "deploy.sh", "#!/bin/sh\nexit 0\n", 0o755)
    proj = project(
        tmp_path,
        f'backend = "command"\ncommand = ["./deploy.sh"]\nhealth_url = "{url}"\n'
        'health_timeout = "20s"',
    )
    proc = run(proj)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert _Flaky.seen >= 3
    assert "healthy after" in proc.stdout


def test_never_healthy_is_a_failed_deploy(tmp_path, health_server):
    _Flaky.unhealthy = 10_000
    try:
        url = f"http://127.0.0.1:{health_server.server_address[1]}/health"
        proj = project(tmp_path, f'health_url = "{url}"\nhealth_timeout = "1s"')
        proc = run(proj)
    finally:
        _Flaky.unhealthy = 2
    assert proc.returncode == 1
    db = proj / ".netra/history.db"
    assert query(db, "select status from iterations") == [("deploy-failed",)]
    message = query(db, "select message from deploys")[0][0]
    assert "not healthy after 1s" in message and "HTTP 503" in message
    assert query(db, "select count(*) from results") == [(0,)]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_local_backend_serves_the_tests_and_is_stopped_at_the_end(tmp_path):
    port = _free_port()
    marker = f"netra-local-backend-{os.getpid()}-{port}"
    write(
        tmp_path / "server.py",
        f"""
        import http.server, sys, os
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.end_headers()
                self.wfile.write(("iteration " + os.environ["NETRA_ITERATION"]).encode())
            def log_message(self, *a):
                pass
        print("listening", flush=True)
        http.server.HTTPServer(("127.0.0.1", {port}), H).serve_forever()
        """,
    )
    write(
        tmp_path / "t/test_api.py",
        f"""
        import urllib.request
        def test_api_answers():
            body = urllib.request.urlopen("http://127.0.0.1:{port}/x", timeout=5).read()
            assert body.startswith(b"iteration ")
        """,
    )
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [run]
        until = "target"
        target = 99
        max_iterations = 2
        [deploy]
        backend = "local"
        command = ["{sys.executable}", "server.py", "{marker}"]
        health_url = "http://127.0.0.1:{port}/health"
        health_timeout = "20s"
        [[suite]]
        name = "t"
        args = ["t"]
        """,
    )
    proc = subprocess.run(
        [*CLI, "run", "--headless"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr  # every test passed
    db = tmp_path / ".netra/history.db"
    assert query(db, "select outcome from results") == [("passed",), ("passed",)]
    assert query(db, "select status from deploys") == [("ok",), ("ok",)]
    assert (tmp_path / ".netra/deploy-local.log").read_text().count("listening") == 2
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == ""  # the backend was stopped when the run ended
