"""Shared fixtures of the demo's e2e tests: where the backend is, and how to sign in.

The supervisor passes the deployed backend's addresses in ``NETRA_DEMO_API`` and
``NETRA_DEMO_WS`` (``[run] env`` of the demo's config) and a token in
``NETRA_E2E_TOKEN`` (minted per iteration from ``[auth]``). One HTTP client per test
process keeps a single keep-alive connection, so a test costs one round trip.
"""

from __future__ import annotations

import os

import httpx
import pytest
from e2e import API, SECRET_ENV, WS, mint
from websockets.sync.client import connect


@pytest.fixture(scope="session")
def secret() -> str:
    return os.environ[SECRET_ENV]


@pytest.fixture(scope="session")
def token(secret: str) -> str:
    """The bearer token: the one the supervisor's [auth] exported, else minted here.

    FALLBACK: a supervisor without [auth] support (older than the auth feature) does
    not set NETRA_E2E_TOKEN; then mint the same claims from the same secret.
    """
    return os.environ.get("NETRA_E2E_TOKEN") or mint(secret)


@pytest.fixture(scope="session")
def api(token: str):
    """An authenticated client for the HTTP API."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=API, headers=headers, timeout=5.0) as client:
        yield client


@pytest.fixture(scope="session")
def anon():
    """A client without credentials."""
    with httpx.Client(base_url=API, timeout=5.0) as client:
        yield client


@pytest.fixture
def agent_ws(token: str):
    """A WebSocket to the agent stream, signed in."""
    with connect(WS, additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=5) as ws:
        yield ws
