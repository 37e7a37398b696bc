"""The demo's backend: a small JWT-protected HTTP API and a WebSocket agent stream.

``netra-supervisor demo`` deploys this with the ``local`` backend so its e2e tests have
something real to talk to. Standard library (``http.server``) for HTTP, ``websockets``
for the agent stream, ``pyjwt`` for the tokens; every endpoint but ``/health`` wants
``Authorization: Bearer <HS256 JWT>`` signed with the secret in ``NETRA_DEMO_JWT_SECRET``
(audience ``netra-demo``) and answers 401 without one.

It serves one *revision*, read from ``--revision`` or the file ``--revision-file``:

- ``fixed`` behaves.
- ``buggy`` has the two bugs the demo's first iteration finds: ``POST /api/items``
  answers 200 instead of 201, and the agent never sends ``agent_completed`` (over HTTP
  its event list stops early; over the WebSocket it goes silent, so a test waiting on
  ``recv()`` without a timeout hangs until the supervisor's watchdog kills it).

Any other revision refuses to start (exit 2), like a build that does not boot.

Where the buggy revision misbehaves it says so in its log (its output, which the
``local`` deploy backend writes to ``deploy-local.log``), one line stamped with the
UTC time, the way a real backend logs a warning: the supervisor attaches such lines
to the failing test that made the request (its evidence).

    python -m supervisor.demo.backend --port 8000 --ws-port 8001 --revision fixed
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import sys
import threading
import time
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt

SECRET_ENV = "NETRA_DEMO_JWT_SECRET"
AUDIENCE = "netra-demo"
REVISIONS = ("buggy", "fixed")
AGENT_EVENTS = (
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
)


def log(text: str) -> None:
    """One line of the backend's log: ``2026-12-01T01:35:55.123Z WARNING …``."""
    stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    print(f"{stamp.replace('+00:00', 'Z')} {text}", flush=True)


class AuthError(Exception):
    """The request has no valid bearer token."""


class App:
    """The state and rules of the API, shared by the HTTP and WebSocket sides."""

    def __init__(self, revision: str, secret: str) -> None:
        self.revision = revision
        self.secret = secret
        self.items: dict[int, dict[str, Any]] = {}
        self.next_id = 1
        self.lock = threading.Lock()

    @property
    def buggy(self) -> bool:
        return self.revision == "buggy"

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims, or AuthError saying what is wrong with it."""
        if not authorization or not authorization.startswith("Bearer "):
            raise AuthError("missing bearer token")
        token = authorization[len("Bearer ") :].strip()
        try:
            return jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                audience=AUDIENCE,
                options={"require": ["exp", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(f"invalid token: {exc}") from None

    def agent_events(self, text: str) -> list[dict[str, Any]]:
        """The events one agent run produces (the buggy revision never completes)."""
        events: list[dict[str, Any]] = [
            {"type": "agent_started", "input": text},
            {"type": "agent_thinking", "thought": f"the user said {len(text)} characters"},
            {"type": "tool_executing", "tool": "word_count"},
            {"type": "tool_completed", "tool": "word_count", "result": len(text.split())},
            {"type": "agent_completed", "reply": text[::-1], "words": len(text.split())},
        ]
        return events[:-1] if self.buggy else events


# --------------------------------------------------------------------------- HTTP


class Handler(http.server.BaseHTTPRequestHandler):
    """JSON over HTTP/1.1 with keep-alive (one connection serves a whole test session)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each small reply waits ~40 ms for a delayed ACK
    timeout = 60  # an idle keep-alive connection frees its thread after this
    app: App  # set on the subclass built by serve_http

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - base signature
        pass  # one line per request would drown the deploy log

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def _send(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        return json.loads(raw)

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        parts = [p for p in url.path.split("/") if p]
        try:
            body = self._body()
        except (ValueError, UnicodeDecodeError):
            self._send(400, {"error": "the body is not JSON"})
            return
        if parts == ["health"] and method == "GET":
            self._send(200, {"status": "ok", "revision": self.app.revision, "pid": os.getpid()})
            return
        if not parts or parts[0] != "api":
            self._send(404, {"error": f"no route {url.path}"})
            return
        try:
            claims = self.app.claims(self.headers.get("Authorization"))
        except AuthError as exc:
            self._send(401, {"error": str(exc)}, {"WWW-Authenticate": 'Bearer realm="netra-demo"'})
            return
        status, payload = route(self.app, method, parts[1:], parse_qs(url.query), body, claims)
        self._send(status, payload)


def route(
    app: App,
    method: str,
    parts: list[str],
    query: dict[str, list[str]],
    body: Any,
    claims: dict[str, Any],
) -> tuple[int, Any]:
    """The API behind ``/api``: (status, JSON payload or None)."""
    if parts == ["whoami"] and method == "GET":
        return 200, {"sub": claims["sub"], "aud": claims.get("aud")}
    if parts == ["echo"] and method == "POST":
        return 200, {"echo": body}
    if parts == ["agent", "run"] and method == "POST":
        if not isinstance(body, dict) or not isinstance(body.get("text"), str):
            return 422, {"error": "expected {'text': str}"}
        events = app.agent_events(body["text"])
        done = events[-1]["type"] == "agent_completed"
        if not done:
            log(
                f"WARNING agent run for {claims['sub']}: stopped after {events[-1]['type']}; "
                "agent_completed was never produced"
            )
        return 200, {"status": "completed" if done else "running", "events": events}
    if parts and parts[0] == "items":
        return items(app, method, parts[1:], query, body)
    return 404, {"error": f"no route /api/{'/'.join(parts)}"}


def items(
    app: App, method: str, parts: list[str], query: dict[str, list[str]], body: Any
) -> tuple[int, Any]:
    """A small in-memory CRUD resource."""
    if not parts:
        if method == "GET":
            try:
                offset = int(query.get("offset", ["0"])[0])
                limit = int(query.get("limit", ["10"])[0])
            except ValueError:
                return 422, {"error": "offset and limit must be whole numbers"}
            if offset < 0 or not 1 <= limit <= 100:
                return 422, {"error": "offset >= 0 and 1 <= limit <= 100"}
            with app.lock:
                ordered = [app.items[k] for k in sorted(app.items)]
            return 200, {"total": len(ordered), "items": ordered[offset : offset + limit]}
        if method == "POST":
            problem = _item_problem(body)
            if problem:
                return 422, {"error": problem}
            with app.lock:
                new = {"id": app.next_id, "name": body["name"], "price": body.get("price", 0)}
                app.items[app.next_id] = new
                app.next_id += 1
            if app.buggy:
                log(f"WARNING POST /api/items: created item {new['id']} but answered 200, not 201")
                return 200, new
            return 201, new
        return 405, {"error": f"{method} not allowed on /api/items"}
    try:
        item_id = int(parts[0])
    except ValueError:
        return 404, {"error": f"no item {parts[0]!r}"}
    with app.lock:
        item = app.items.get(item_id)
        if item is None or len(parts) > 1:
            return 404, {"error": f"no item {item_id}"}
        if method == "GET":
            return 200, item
        if method == "PUT":
            problem = _item_problem(body)
            if problem:
                return 422, {"error": problem}
            item.update(name=body["name"], price=body.get("price", item["price"]))
            return 200, item
        if method == "DELETE":
            del app.items[item_id]
            return 204, None
    return 405, {"error": f"{method} not allowed on an item"}


def _item_problem(body: Any) -> str:
    if not isinstance(body, dict):
        return "expected a JSON object"
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        return "name: a non-empty string is required"
    if len(name) > 80:
        return "name: at most 80 characters"
    price = body.get("price", 0)
    if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
        return "price: a number >= 0 is required"
    return ""


def serve_http(app: App, host: str, port: int) -> http.server.ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"app": app})
    server = http.server.ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


# --------------------------------------------------------------------------- WebSocket


async def serve(app: App, host: str, port: int, ws_port: int) -> None:
    """The agent stream at ``ws://HOST:WS_PORT/ws``, then the HTTP API at ``HOST:PORT``.

    HTTP (and so ``/health``) starts last: once the health check passes, both listen.
    """
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as serve_websocket
    from websockets.exceptions import ConnectionClosed

    def check(connection: ServerConnection, request: Any) -> Any:
        if urlsplit(request.path).path != "/ws":
            return connection.respond(HTTPStatus.NOT_FOUND, "no such endpoint; use /ws\n")
        try:
            app.claims(request.headers.get("Authorization"))
        except AuthError as exc:
            return connection.respond(HTTPStatus.UNAUTHORIZED, f"{exc}\n")
        return None

    async def session(connection: ServerConnection) -> None:
        try:
            async for raw in connection:
                try:
                    message = json.loads(raw)
                except ValueError:
                    await connection.send(json.dumps({"type": "error", "error": "not JSON"}))
                    continue
                if not isinstance(message, dict) or message.get("type") != "user_message":
                    await connection.send(
                        json.dumps({"type": "error", "error": "send {'type': 'user_message'}"})
                    )
                    continue
                events = app.agent_events(str(message.get("text", "")))
                for event in events:
                    await connection.send(json.dumps(event))
                if events[-1]["type"] != "agent_completed":
                    log(
                        f"WARNING agent stream: sent {len(events)} events, stopped after "
                        f"{events[-1]['type']}; the connection stays open without agent_completed"
                    )
                # buggy: agent_completed never comes and the connection stays open, silent
        except ConnectionClosed:
            pass

    async with serve_websocket(session, host, ws_port, process_request=check):
        serve_http(app, host, port)
        print(f"listening http://{host}:{port} ws://{host}:{ws_port}/ws", flush=True)
        await asyncio.Future()  # until the process is stopped


# --------------------------------------------------------------------------- main


def read_revision(args: argparse.Namespace) -> str:
    if args.revision:
        return args.revision
    path = Path(args.revision_file)
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise SystemExit(
            f"demo backend: cannot read the revision file {path}: {exc.strerror}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supervisor.demo.backend")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("NETRA_DEMO_PORT", 8000)))
    parser.add_argument(
        "--ws-port", type=int, default=int(os.environ.get("NETRA_DEMO_WS_PORT", 8001))
    )
    parser.add_argument("--revision", help="buggy | fixed (wins over the file)")
    parser.add_argument("--revision-file", default="revision.txt")
    parser.add_argument(
        "--boot-delay", type=float, default=0.0, help="seconds to wait before listening"
    )
    args = parser.parse_args(argv)
    revision = read_revision(args)
    print(f"revision: {revision}", flush=True)
    if revision not in REVISIONS:
        print(
            f"demo backend: revision {revision!r} does not start (known: {', '.join(REVISIONS)})",
            flush=True,
        )
        return 2
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        print(f"demo backend: set {SECRET_ENV} to the JWT signing secret", flush=True)
        return 2
    if args.boot_delay:
        print(f"booting for {args.boot_delay:g}s", flush=True)
        time.sleep(args.boot_delay)
    try:
        asyncio.run(serve(App(revision, secret), args.host, args.port, args.ws_port))
    except OSError as exc:  # a port already taken: a deploy that does not start
        print(f"demo backend: cannot listen: {exc}", flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
