"""The demo backend on its own: a real process on loopback, real HTTP and WebSocket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from supervisor.demo import workspace
from supervisor.demo.backend import AGENT_EVENTS, SECRET_ENV

SECRET = "demo-backend-test-secret-0123456789abcdef"
OTHER_SECRET = "another-secret-0123456789abcdef-xyz"


class Backend:
    def __init__(self, proc: subprocess.Popen, port: int, ws_port: int) -> None:
        self.proc = proc
        self.api = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{ws_port}/ws"

    def token(self, **claims: object) -> str:
        body = {"sub": "tester", "aud": "netra-demo", "exp": int(time.time()) + 60, **claims}
        return jwt.encode(body, SECRET, "HS256")

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}"}


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, int, int]:
    port, ws_port = workspace.free_ports(2)
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor.demo.backend", "--port", str(port)]
        + ["--ws-port", str(ws_port), *args],
        cwd=tmp_path,
        env={**os.environ, SECRET_ENV: SECRET},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return proc, port, ws_port


def wait_listening(proc: subprocess.Popen) -> list[str]:
    """Lines the backend printed up to "listening" (it prints that once both listen)."""
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line.strip())
        if line.startswith("listening"):
            return lines
    raise AssertionError(f"the backend exited with {proc.wait()}: {lines}")


@pytest.fixture(params=["buggy", "fixed"])
def backend(request, tmp_path: Path) -> Iterator[Backend]:
    (tmp_path / "revision.txt").write_text(request.param + "\n")
    proc, port, ws_port = start(tmp_path)
    try:
        lines = wait_listening(proc)
        assert f"revision: {request.param}" in lines
        yield Backend(proc, port, ws_port)
    finally:
        proc.kill()
        proc.wait()


def revision(backend: Backend) -> str:
    return httpx.get(backend.api + "/health").json()["revision"]


def test_health_is_open_and_names_the_revision(backend):
    body = httpx.get(backend.api + "/health").json()
    assert body["status"] == "ok" and body["pid"] == backend.proc.pid
    assert body["revision"] in ("buggy", "fixed")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/whoami"),
        ("GET", "/api/items"),
        ("POST", "/api/echo"),
        ("POST", "/api/agent/run"),
    ],
)
def test_every_api_endpoint_wants_a_valid_token(backend, method, path):
    url = backend.api + path
    missing = httpx.request(method, url, json={"text": "x"})
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    for bad in (
        jwt.encode({"sub": "x", "aud": "netra-demo", "exp": 9e9}, OTHER_SECRET),
        backend.token(exp=int(time.time()) - 10),  # expired
        backend.token(aud="not-the-demo"),
    ):
        refused = httpx.request(
            method, url, json={"text": "x"}, headers={"Authorization": f"Bearer {bad}"}
        )
        assert refused.status_code == 401, bad
    ok = httpx.request(method, url, json={"text": "x"}, headers=backend.auth())
    assert ok.status_code == 200


def test_the_websocket_refuses_a_handshake_without_a_token(backend):
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}):
        with pytest.raises(InvalidStatus) as refused:
            with connect(backend.ws, additional_headers=headers, open_timeout=5):
                pass
        assert refused.value.response.status_code == 401


def test_the_agent_stream(backend):
    """fixed: the five events in order; buggy: agent_completed never comes, the socket
    stays open and silent (what makes a bare recv() hang)."""
    with connect(backend.ws, additional_headers=backend.auth(), open_timeout=5) as ws:
        ws.send(json.dumps({"type": "user_message", "text": "two words"}))
        events = [json.loads(ws.recv(timeout=5)) for _ in range(4)]
        if revision(backend) == "fixed":
            events.append(json.loads(ws.recv(timeout=5)))
            assert [e["type"] for e in events] == list(AGENT_EVENTS)
            assert events[-1]["reply"] == "sdrow owt"
        else:
            assert [e["type"] for e in events] == list(AGENT_EVENTS[:4])
            with pytest.raises(TimeoutError):
                ws.recv(timeout=1.0)
            ws.ping().wait(5)  # silent, but the connection is alive


def test_the_buggy_revision_answers_200_to_a_create(backend):
    created = httpx.post(backend.api + "/api/items", json={"name": "a"}, headers=backend.auth())
    assert created.status_code == (201 if revision(backend) == "fixed" else 200)
    item = created.json()
    got = httpx.get(f"{backend.api}/api/items/{item['id']}", headers=backend.auth())
    assert got.json() == {"id": item["id"], "name": "a", "price": 0}
    ran = httpx.post(backend.api + "/api/agent/run", json={"text": "hi"}, headers=backend.auth())
    assert ran.json()["status"] == ("completed" if revision(backend) == "fixed" else "running")


def test_a_revision_that_does_not_exist_refuses_to_start(tmp_path):
    proc, _, _ = start(tmp_path, "--revision", "broken")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "revision 'broken' does not start (known: buggy, fixed)" in out


def test_without_the_secret_it_refuses_to_start(tmp_path):
    (port,) = workspace.free_ports(1)
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "supervisor.demo.backend",
            "--port",
            str(port),
            "--revision",
            "fixed",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert f"set {SECRET_ENV}" in done.stdout
