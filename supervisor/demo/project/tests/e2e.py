"""Helpers the demo's e2e tests share: addresses, tokens, the agent stream protocol."""

from __future__ import annotations

import json
import os
import time

import jwt

API = os.environ.get("NETRA_DEMO_API", "http://127.0.0.1:8000")
WS = os.environ.get("NETRA_DEMO_WS", "ws://127.0.0.1:8001/ws")
SECRET_ENV = "NETRA_DEMO_JWT_SECRET"
AUDIENCE = "netra-demo"
AGENT_EVENTS = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
]


def mint(secret: str, algorithm: str = "HS256", **overrides: object) -> str:
    """A token like the supervisor's [auth] mints; overrides forge bad ones (None drops)."""
    claims: dict[str, object] = {"sub": "e2e-bot", "aud": AUDIENCE, "exp": int(time.time()) + 3600}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm)


def ask(ws, text: str) -> None:
    ws.send(json.dumps({"type": "user_message", "text": text}))


def events_until_completed(ws, timeout: float | None) -> list[dict]:
    """Read agent events until agent_completed (each recv waits at most ``timeout``)."""
    events: list[dict] = []
    while not events or events[-1]["type"] != "agent_completed":
        events.append(json.loads(ws.recv(timeout=timeout)))
    return events
