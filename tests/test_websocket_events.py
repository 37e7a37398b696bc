"""The websocket-events suite kind against real WebSocket servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from supervisor.config import ConfigError, parse_config
from supervisor.core.events import SuiteFinished, TestResult, TestsCollected, TestStarted
from supervisor.core.kinds import RunContext
from supervisor.plugins import PluginHost
from supervisor.runners.websocket_events import WebSocketEventsKind

AGENT_EVENTS = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
]
SECRET = "ws-test-secret-that-is-long-enough-for-hs256"


class AgentServer:
    """A real WebSocket server; the path picks the scenario, the first message it
    receives is kept in ``received``, headers of each handshake in ``headers``."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.closed_early = threading.Event()  # /first-then-wait: the client hung up first
        self.server: Server = serve(self._handler, "127.0.0.1", 0, process_request=self._check_auth)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def _check_auth(self, connection: ServerConnection, request):
        self.headers.append(dict(request.headers.raw_items()))
        if not request.path.startswith("/secure"):
            return None
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        try:
            jwt.decode(token, SECRET, algorithms=["HS256"], audience="staging")
        except jwt.PyJWTError as exc:
            return connection.respond(401, f"invalid token: {type(exc).__name__}\n")
        return None

    def _handler(self, ws: ServerConnection) -> None:
        path = ws.request.path
        self.received.append(ws.recv(timeout=5))
        send = lambda kind: ws.send(json.dumps({"type": kind, "at": 0}))  # noqa: E731
        if path in ("/ok", "/secure"):
            for kind in AGENT_EVENTS:
                send(kind)
        elif path == "/noisy":  # untyped and unexpected messages between the expected
            send("agent_started")
            ws.send("plain text, not JSON")
            send("heartbeat")
            for kind in AGENT_EVENTS[1:]:
                send(kind)
        elif path == "/missing":  # no tool_completed, then silence with the socket open
            for kind in AGENT_EVENTS:
                if kind != "tool_completed":
                    send(kind)
            try:
                ws.recv(timeout=10)
            except Exception:
                pass
            return
        elif path == "/order":  # tool_completed before tool_executing
            for kind in ["agent_started", "agent_thinking", "tool_completed", "tool_executing"]:
                send(kind)
            send("agent_completed")
        elif path == "/first-then-wait":  # agent_started, then waits for the client
            send("agent_started")
            try:
                ws.recv(timeout=30)  # the client has nothing to say: only its close ends it
            except ConnectionClosed:
                self.closed_early.set()
            except TimeoutError:
                pass
            return
        elif path == "/crash":
            send("agent_started")
            send("agent_thinking")
            ws.close(1011, "agent crashed")
            return
        ws.close()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[AgentServer]:
    srv = AgentServer()
    yield srv
    srv.stop()


def make_config(tmp_path: Path, url: str, timeout: str = "10s", **extra):
    """The config as a run gets it: the suite's keys parsed by the kind's declaration
    (and accepted by its ``validate``), through the plugin host with the built-ins."""
    data = {
        "suite": [
            {
                "name": "ws-events",
                "kind": "websocket-events",
                "url": url,
                "send": {"type": "user_message", "text": "ping"},
                "expect": AGENT_EVENTS,
                "timeout": timeout,
            }
        ],
        **extra,
    }
    config = parse_config(data, tmp_path / "netra-supervisor.toml")
    return PluginHost(config, strict=True).load().validate_suites(config)


def with_options(config, **options):
    """``config`` with its one suite's options changed (already parsed values)."""
    from dataclasses import replace

    suite = config.suites[0]
    return replace(config, suites=(replace(suite, options={**suite.options, **options}),))


def run_kind(config, env: dict | None = None) -> list:
    events: list = []
    ctx = RunContext(
        config=config,
        phase=config.phases[0],
        run_id=1,
        iteration=1,
        phase_seq=1,
        emit=events.append,
        env=env or {},
    )
    WebSocketEventsKind().run(config.suites[0], ctx)
    return events


def results(events: list) -> dict[str, TestResult]:
    return {e.nodeid: e for e in events if isinstance(e, TestResult)}


def test_all_events_in_order_pass_one_result_each(server, tmp_path):
    events = run_kind(make_config(tmp_path, server.url("/ok")))
    got = results(events)
    assert list(got) == [f"ws-events::{k}" for k in AGENT_EVENTS]
    assert {r.outcome for r in got.values()} == {"passed"}
    assert json.loads(server.received[0]) == {"type": "user_message", "text": "ping"}
    # the same events the pytest kind emits, in a sensible order
    assert isinstance(events[0], TestsCollected)
    assert events[0].nodeids == tuple(got)
    starts = [e.nodeid for e in events if isinstance(e, TestStarted)]
    assert starts == list(got)
    assert isinstance(events[-1], SuiteFinished) and events[-1].status == "ok"


def test_other_messages_in_between_are_allowed(server, tmp_path):
    got = results(run_kind(make_config(tmp_path, server.url("/noisy"))))
    assert {r.outcome for r in got.values()} == {"passed"}


def test_string_send_is_sent_as_is(server, tmp_path):
    config = with_options(make_config(tmp_path, server.url("/ok")), send="hello agent")
    run_kind(config)
    assert server.received == ["hello agent"]


def test_missing_event_fails_saying_what_arrived(server, tmp_path):
    got = results(run_kind(make_config(tmp_path, server.url("/missing"), timeout="1s")))
    outcomes = {k.split("::")[1]: r.outcome for k, r in got.items()}
    assert outcomes == {
        "agent_started": "passed",
        "agent_thinking": "passed",
        "tool_executing": "passed",
        "tool_completed": "failed",
        "agent_completed": "failed",
    }
    missing = got["ws-events::tool_completed"].message
    assert "did not arrive within 1s" in missing
    assert "arrived: agent_started, agent_thinking, tool_executing, agent_completed" in missing
    after = got["ws-events::agent_completed"].message
    assert "tool_completed never arrived before it" in after
    assert '"type": "agent_completed"' in got["ws-events::agent_completed"].longrepr


def test_wrong_order_fails_the_early_event(server, tmp_path):
    got = results(run_kind(make_config(tmp_path, server.url("/order"))))
    outcomes = {k.split("::")[1]: r.outcome for k, r in got.items()}
    assert outcomes["agent_started"] == outcomes["agent_thinking"] == "passed"
    # tool_executing came (late) after tool_completed: it is matched; tool_completed is not
    assert outcomes["tool_executing"] == "passed"
    assert outcomes["tool_completed"] == "failed"
    message = got["ws-events::tool_completed"].message
    assert "wrong order" in message and "before tool_executing" in message
    assert "tool_completed, tool_executing" in message  # what arrived, in arrival order


def test_close_code_1011_fails_the_rest_with_the_code(server, tmp_path):
    events = run_kind(make_config(tmp_path, server.url("/crash")))
    got = results(events)
    assert got["ws-events::agent_started"].outcome == "passed"
    assert got["ws-events::agent_thinking"].outcome == "passed"
    message = got["ws-events::tool_executing"].message
    assert got["ws-events::tool_executing"].outcome == "failed"
    assert "1011" in message and "agent crashed" in message
    assert "arrived: agent_started, agent_thinking" in message
    assert got["ws-events::agent_completed"].outcome == "failed"


def test_handshake_refused_without_token_is_a_401_failure(server, tmp_path):
    events = run_kind(make_config(tmp_path, server.url("/secure")))
    got = results(events)
    assert len(got) == 5 and {r.outcome for r in got.values()} == {"failed"}
    message = got["ws-events::agent_started"].message
    assert "handshake refused: HTTP 401" in message
    assert "not sent" in message and "nothing arrived" in message
    assert "Authorization" not in server.headers[-1]
    assert events[-1].status == "error" and "401" in events[-1].message


def test_handshake_refused_with_an_invalid_token(server, tmp_path):
    auth = {"auth": {"secret_env": "X", "claims": {"aud": "staging"}}}
    config = make_config(tmp_path, server.url("/secure"), **auth)
    bad = jwt.encode({"aud": "staging"}, "some-other-secret-also-32-bytes-long!", "HS256")
    got = results(run_kind(config, env={"NETRA_E2E_TOKEN": bad}))
    message = got["ws-events::agent_started"].message
    assert "HTTP 401" in message and "InvalidSignatureError" in message
    assert "was sent" in message
    assert server.headers[-1]["Authorization"] == f"Bearer {bad}"


def test_bearer_token_sent_when_auth_is_set(server, tmp_path):
    auth = {"auth": {"secret_env": "X", "claims": {"aud": "staging"}, "export_as": "MY_TOKEN"}}
    config = make_config(tmp_path, server.url("/secure"), **auth)
    token = jwt.encode({"aud": "staging"}, SECRET, "HS256")
    got = results(run_kind(config, env={"MY_TOKEN": token}))
    assert {r.outcome for r in got.values()} == {"passed"}
    assert server.headers[-1]["Authorization"] == f"Bearer {token}"


def test_nothing_listening_is_a_clear_connection_failure(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    events = run_kind(make_config(tmp_path, f"ws://127.0.0.1:{port}/ws"))
    got = results(events)
    assert {r.outcome for r in got.values()} == {"failed"}
    assert f"cannot connect to ws://127.0.0.1:{port}/ws" in got["ws-events::agent_started"].message
    assert events[-1].status == "error"


def test_collect_returns_ids_without_connecting(tmp_path):
    config = make_config(tmp_path, "ws://127.0.0.1:9/never")
    ids = WebSocketEventsKind().collect(config.suites[0], config, {})
    assert ids == [f"ws-events::{k}" for k in AGENT_EVENTS]


def test_repeated_event_names_get_distinct_ids(tmp_path):
    config = make_config(tmp_path, "ws://127.0.0.1:9/x")
    config = with_options(config, expect=("agent_thinking", "agent_thinking", "done"))
    ids = WebSocketEventsKind().collect(config.suites[0], config, {})
    assert ids == ["ws-events::agent_thinking", "ws-events::agent_thinking[2]", "ws-events::done"]


def test_keys_are_parsed_by_the_kinds_declaration(tmp_path):
    suite = make_config(tmp_path, "ws://127.0.0.1:9/x", timeout="1m30s").suites[0]
    assert suite.options["timeout"] == 90.0
    assert suite.options["expect"] == tuple(AGENT_EVENTS)
    assert suite.options["send"] == {"type": "user_message", "text": "ping"}


def test_validation_names_the_key(tmp_path):
    prefix = r"netra-supervisor\.toml: suite\[0\] \(ws-events\)"
    with pytest.raises(ConfigError, match=prefix + r"\.url: 'http://127.0.0.1:9/x' is not a We"):
        make_config(tmp_path, "http://127.0.0.1:9/x")
    typo = {"name": "ws-events", "kind": "websocket-events", "url": "ws://h/x", "tiemout": "1s"}
    config = parse_config({"suite": [typo]}, tmp_path / "netra-supervisor.toml")
    with pytest.raises(ConfigError, match=prefix + r"\.tiemout: unknown key .*'timeout'"):
        PluginHost(config, strict=True).load().validate_suites(config)
    config = make_config(tmp_path, "ws://h/x")
    with pytest.raises(ConfigError, match=r"^send: expected a table"):
        WebSocketEventsKind().validate(with_options(config, send=[1, 2]).suites[0], config)


# ------------------------------------------------------------------ through the CLI


def test_headless_run_records_ws_results_in_sqlite(server, tmp_path):
    """``netra-supervisor run --headless`` with [auth] and a websocket-events suite in a
    phase: the minted token goes out as the bearer header and the results are stored."""
    (tmp_path / "netra-supervisor.toml").write_text(
        textwrap.dedent(
            f"""
            [run]
            db = "hist.db"
            [auth]
            secret_env = "WS_TEST_JWT_SECRET"
            claims = {{ sub = "e2e-bot", aud = "staging" }}
            ttl = "10m"
            [[phase]]
            name = "P1 stream"
            suites = ["ws-events", "ws-open"]
            gate = "none"
            [[suite]]
            name = "ws-events"
            kind = "websocket-events"
            url = "{server.url("/secure")}"
            send = {{ type = "user_message", text = "ping" }}
            expect = {json.dumps(AGENT_EVENTS)}
            timeout = "20s"
            [[suite]]
            name = "ws-open"
            kind = "websocket-events"
            url = "{server.url("/crash")}"
            send = "go"
            expect = ["agent_started", "agent_completed"]
            timeout = "20s"
            """
        )
    )
    env = {**os.environ, "WS_TEST_JWT_SECRET": SECRET}
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "run", "--headless", "--once"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # ws-open fails (1011)
    conn = sqlite3.connect(f"file:{tmp_path / 'hist.db'}?mode=ro", uri=True)
    rows = conn.execute(
        "select t.suite, t.nodeid, r.outcome, r.message from results r"
        " join tests t on t.id = r.test_id order by r.id"
    ).fetchall()
    phases = conn.execute("select name, passed, failed from phases").fetchall()
    conn.close()
    assert [(s, n, o) for s, n, o, _ in rows[:5]] == [
        ("ws-events", f"ws-events::{k}", "passed") for k in AGENT_EVENTS
    ]
    assert rows[5][1:3] == ("ws-open::agent_started", "passed")
    assert rows[6][1:3] == ("ws-open::agent_completed", "failed")
    assert "1011" in rows[6][3]
    assert phases == [("P1 stream", 6, 1)]
    token = server.headers[0]["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="staging")
    assert claims["sub"] == "e2e-bot"
    assert token not in proc.stdout + proc.stderr


def run_only(config, only: set[str], cut_after: int | None = None) -> list:
    """Run the kind as a verify pass would (``ctx.only``); ``cut_after`` results, set
    ``ctx.cut`` as the loop does when the phase's gate can no longer hold."""
    events: list = []
    cut = threading.Event()

    def emit(event) -> None:
        events.append(event)
        if cut_after is not None and len(results(events)) >= cut_after:
            cut.set()

    ctx = RunContext(
        config=config,
        phase=config.phases[0],
        run_id=1,
        iteration=2,
        phase_seq=0,
        emit=emit,
        only=frozenset(only),
        cut=cut,
    )
    WebSocketEventsKind().run(config.suites[0], ctx)
    return events


def test_a_verify_pass_reports_only_the_ids_it_asks_for(server, tmp_path):
    config = make_config(tmp_path, server.url("/missing"), timeout="1s")
    events = run_only(config, {"ws-events::agent_thinking", "ws-events::tool_completed"})
    collected = [e for e in events if isinstance(e, TestsCollected)]
    assert [c.nodeids for c in collected] == [
        ("ws-events::agent_thinking", "ws-events::tool_completed")
    ]
    starts = [e.nodeid for e in events if isinstance(e, TestStarted)]
    assert starts == ["ws-events::agent_thinking", "ws-events::tool_completed"]
    got = {k.split("::")[1]: r.outcome for k, r in results(events).items()}
    assert got == {"agent_thinking": "passed", "tool_completed": "failed"}
    assert events[-1].status == "ok"


def test_a_verify_pass_stops_listening_after_its_last_id(server, tmp_path):
    # the server sends agent_started, then waits 30 s for the client: asking only for
    # agent_started, the kind hangs up at once (waiting for the rest, it would keep
    # the connection open for its 60 s timeout, and the server's wait would end first)
    config = make_config(tmp_path, server.url("/first-then-wait"), timeout="60s")
    events = run_only(config, {"ws-events::agent_started"})
    got = results(events)
    assert list(got) == ["ws-events::agent_started"]
    assert got["ws-events::agent_started"].outcome == "passed"
    assert events[-1].status == "ok"
    assert server.closed_early.wait(30)


def test_ids_no_longer_expected_are_not_run_and_nothing_connects(server, tmp_path):
    config = make_config(tmp_path, server.url("/ok"))
    events = run_only(config, {"ws-events::agent_renamed", "other::x"})
    assert results(events) == {}
    assert [type(e).__name__ for e in events] == ["SuiteFinished"]
    assert server.received == []  # no connection made


def test_a_cut_stops_the_suite_without_results_for_the_rest(server, tmp_path):
    config = make_config(tmp_path, server.url("/missing"), timeout="10s")
    all_ids = {f"ws-events::{k}" for k in AGENT_EVENTS}
    events = run_only(config, all_ids, cut_after=3)
    # the first three arrive; tool_completed never does: the cut, not the 10 s timeout,
    # ends the wait
    assert len(results(events)) == 3
    last = events[-1]
    assert isinstance(last, SuiteFinished) and last.status == "cut"
    assert last.message == "stopped: the phase's gate can no longer hold (2 not run)"
