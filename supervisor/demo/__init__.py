"""The bundled example: ``netra-supervisor demo``.

Writes a small example project into a new temporary folder: a real JWT-protected
backend (:mod:`supervisor.demo.backend`) deployed on free loopback ports with the
``local`` deploy backend, and ~1000 e2e tests in priority phases. The first deploy is
the buggy revision; a local plugin plays the developer and commits the fix; the loop
redeploys and converges to all green. The folder (and its history database) stays so
the run can be queried afterwards.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

WS_KIND = "websocket-events"


def run_demo(headless: bool = True, no_mouse: bool = False) -> int:
    """Run the demo loop; returns the run's exit code (0 once it converged)."""
    from supervisor.demo import workspace
    from supervisor.demo.backend import SECRET_ENV

    workdir = Path(tempfile.mkdtemp(prefix="netra-demo-"))
    with_ws = WS_KIND in _suite_kinds()
    config = workspace.create(workdir, with_ws_events=with_ws)
    db = workdir / ".netra" / "history.db"
    print(f"demo project: {workdir}")
    print(f"demo history: {db}")
    print(
        "demo: iteration 1 deploys the buggy revision (watch P1 fail and a streaming test "
        "hang); then the fix is committed and redeployed until every test passes"
    )
    if not with_ws:
        print(
            f"note: no {WS_KIND!r} suite kind is installed; the WebSocket events phase is left out"
        )
    # A fresh signing secret per run: the backend verifies with it and [auth] mints
    # the tests' token from it. It is never printed (the redactor masks it anyway).
    saved = {k: os.environ.get(k) for k in (SECRET_ENV, "NETRA_E2E_TOKEN")}
    os.environ[SECRET_ENV] = secrets.token_urlsafe(32)
    os.environ.pop("NETRA_E2E_TOKEN", None)  # a token of the user's own project is not ours
    try:
        return _start(config, headless, no_mouse)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        print(f"query it: netra-supervisor history iterations --db {db}")


def _start(config: Path, headless: bool, no_mouse: bool) -> int:
    """The one place that picks the view: the TUI in a terminal, else plain lines."""
    from supervisor.session import RunOptions, run_supervisor

    options = RunOptions(config=str(config), headless=headless, verbose=True, no_mouse=no_mouse)
    return run_supervisor(options, out=sys.stdout if headless else None)


def _suite_kinds() -> set[str]:
    """Suite kinds this installation's plugins register."""
    from supervisor.plugins import PluginHost

    host = PluginHost(None, on_error=lambda event: None)
    host.load()
    return set(host.suite_kinds())
