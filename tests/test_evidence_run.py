"""Evidence end to end: real ``run --headless`` runs against a real backend process.

The project's backend is a small HTTP server deployed with the ``local`` backend; it
logs each request it serves, stamped, to its output (``deploy-local.log``), and
unstamped to ``logs/app.log``. A failing test's evidence must hold the lines the
backend wrote while that test ran, and only those; a secret in a log line never
reaches the history or the screen; plugins add evidence through
``netra_collect_evidence``, and a stuck one is quarantined without holding anything up.
"""

from __future__ import annotations

import sys

from cli_helpers import query, run_cli, write

from supervisor.demo.workspace import free_ports

SECRET = "tok-SECRET-0123456789"

BACKEND = """
import http.server, os, sys
from datetime import datetime, timezone

APP_LOG = os.environ.get("APP_LOG")


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        if self.path != "/health":
            print(f"{stamp} INFO GET {self.path} {self.headers.get('Authorization')}", flush=True)
        if self.path == "/boom":
            print(f"{stamp} ERROR GET /boom: the handler raised", flush=True)
            print("Traceback (most recent call last):", flush=True)
            print("ValueError: boom", flush=True)
        if APP_LOG and self.path != "/health":
            with open(APP_LOG, "a") as fh:
                fh.write(f"app: served {self.path}\\n")
        self.send_response(500 if self.path == "/boom" else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""

TESTS = """
import os, time, urllib.error, urllib.request


def get(path):
    request = urllib.request.Request(
        os.environ["APP_URL"] + path,
        headers={"Authorization": "Bearer " + os.environ["NETRA_API_TOKEN"]},
    )
    try:
        return urllib.request.urlopen(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_1_fails():
    assert get("/boom") == 200


def test_2_passes_later():
    time.sleep(2)  # outside test_1's window (its end + 1 s) and test_3's (its start - 1 s)
    assert get("/fine") == 200
    time.sleep(2)


def test_3_hangs():
    get("/before-the-hang")
    time.sleep(60)
"""

LOKI = """
from supervisor.hookspecs import hookimpl


@hookimpl
def netra_collect_evidence(result, window):
    name = result.nodeid.split("::")[-1]
    return [("loki", [
        f"{window.start.isoformat()} loki: {name} {result.outcome} from {window.start:%H:%M:%S}",
        "a secret the plugin found: tok-SECRET-0123456789",
    ])]
"""

STUCK = """
import time
from supervisor.hookspecs import hookimpl


@hookimpl
def netra_collect_evidence(result):
    time.sleep(120)
"""


def project(tmp_path, extra: str = "") -> int:
    port = free_ports(1)[0]
    write(tmp_path / "backend.py", BACKEND)
    write(tmp_path / "t/test_app.py", TESTS)
    (tmp_path / "logs").mkdir()
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
        [run]
        env = {{ APP_URL = "http://127.0.0.1:{port}", APP_LOG = "{tmp_path}/logs/app.log" }}

        [deploy]
        backend = "local"
        command = ["{sys.executable}", "backend.py", "{port}"]
        health_url = "http://127.0.0.1:{port}/health"
        health_timeout = "30s"
        {extra}

        [watchdog]
        grace = "1s"

        [[suite]]
        name = "s"
        args = ["t", "-p", "no:randomly"]
        test_timeout = "6s"
        """,
    )
    return port


def evidence_of(db, test: str) -> dict[str, str]:
    rows = query(
        db,
        "SELECT e.source, e.lines FROM evidence e JOIN results r ON r.id = e.result_id"
        " JOIN tests t ON t.id = r.test_id WHERE t.nodeid LIKE ?",
        f"%::{test}",
    )
    return dict(rows)


def test_a_failing_test_gets_the_lines_the_backend_logged_while_it_ran(tmp_path):
    project(tmp_path)
    proc = run_cli(["run", "--headless", "--once"], tmp_path, env={"NETRA_API_TOKEN": SECRET})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    db = tmp_path / ".netra/history.db"
    assert dict(
        (n.split("::")[-1], o)
        for n, o in query(
            db, "SELECT t.nodeid, r.outcome FROM results r JOIN tests t ON t.id = r.test_id"
        )
    ) == {"test_1_fails": "failed", "test_2_passes_later": "passed", "test_3_hangs": "hung"}
    log = f"log:{tmp_path}/.netra/deploy-local.log"  # the local backend's own, by default
    failed = evidence_of(db, "test_1_fails")
    assert list(failed) == [log]
    lines = failed[log].splitlines()
    assert any(line.endswith("INFO GET /boom Bearer ***") for line in lines), lines
    assert any(line.endswith("ERROR GET /boom: the handler raised") for line in lines), lines
    # the traceback's unstamped lines go with the record they continue
    assert lines[-2:] == ["Traceback (most recent call last):", "ValueError: boom"]
    assert "/fine" not in failed[log]  # written 2 s after that test ended
    hung = evidence_of(db, "test_3_hangs")[log]
    assert "GET /before-the-hang" in hung and "/fine" not in hung
    assert evidence_of(db, "test_2_passes_later") == {}  # a pass gets none
    # the secret never reaches the history, nor what history test prints
    assert SECRET not in db.read_bytes().decode("latin-1")
    shown = run_cli(["history", "test", "test_1_fails"], tmp_path, env={})
    assert "what the backend said while it ran (iteration 1.1, failed, attempt 1):" in shown.stdout
    assert "ERROR GET /boom: the handler raised" in shown.stdout
    assert SECRET not in shown.stdout + shown.stderr


def test_hook_netra_collect_evidence(tmp_path):
    """Explicit ``[deploy] logs`` (a glob, unstamped lines matched by when they arrived)
    and two plugins: one returns lines, one never returns (quarantined at the timeout;
    the run and the other plugin's evidence go on)."""
    write(tmp_path / "local_plugins/a_stuck.py", STUCK)
    write(tmp_path / "local_plugins/b_loki.py", LOKI)
    project(
        tmp_path,
        extra='logs = ["logs/*.log"]\n\n        [plugins]\n'
        '        dirs = ["local_plugins"]\n        hook_timeout = "2s"',
    )
    proc = run_cli(["run", "--headless", "--once"], tmp_path, env={"NETRA_API_TOKEN": SECRET})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    db = tmp_path / ".netra/history.db"
    app_log = f"log:{tmp_path}/logs/app.log"
    failed = evidence_of(db, "test_1_fails")
    assert sorted(failed) == [app_log, "plugin:b_loki/loki"]  # not deploy-local.log
    assert failed[app_log] == "app: served /boom"
    loki = failed["plugin:b_loki/loki"].splitlines()
    assert "loki: test_1_fails failed from" in loki[0]
    assert loki[1] == "a secret the plugin found: ***"
    (first_at,) = query(
        db, "SELECT first_at FROM evidence WHERE source = 'plugin:b_loki/loki' LIMIT 1"
    )[0]
    assert first_at is not None and first_at.endswith("+00:00")
    hung = evidence_of(db, "test_3_hangs")
    assert hung[app_log] == "app: served /before-the-hang"
    assert "loki: test_3_hangs hung" in hung["plugin:b_loki/loki"]
    errors = query(db, "SELECT plugin, hook, error FROM plugin_errors")
    assert [(p, h) for p, h, _ in errors] == [("a_stuck", "netra_collect_evidence")]
    assert errors[0][2].startswith("TimeoutError: still running after hook_timeout 2s")
    assert SECRET not in db.read_bytes().decode("latin-1")


def test_deploy_logs_must_be_a_list_of_paths(tmp_path):
    project(tmp_path, extra='logs = "logs/app.log"')
    proc = run_cli(["run", "--headless", "--once"], tmp_path)
    assert proc.returncode == 2
    assert 'deploy.logs: expected a list of strings, write ["logs/app.log"]' in proc.stderr
    project(tmp_path / "b", extra='logs = ["", "x.log"]')
    proc = run_cli(["run", "--headless", "--once"], tmp_path / "b")
    assert proc.returncode == 2
    assert "deploy.logs[0]: an empty path; name a log file or a glob" in proc.stderr
