"""The demo's folder: a copy of the example project with free ports filled in, kept
in a small git repository so every deploy records the commit it shipped."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from string import Template

PROJECT = Path(__file__).parent / "project"
TEMPLATE = "netra-supervisor.toml.template"
WS_BLOCK = ("# -- websocket-events: begin", "# -- websocket-events: end")
FIXES = {"buggy": "fixed"}  # revision -> the revision that fixes it


def free_ports(count: int = 2) -> list[int]:
    """Distinct loopback ports nobody listens on right now (held open together while
    picked, so the kernel cannot hand out the same one twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def config_text(api_port: int, ws_port: int, with_ws_events: bool = True) -> str:
    """The demo's config with its ports filled in (without the websocket-events blocks
    when this installation has no such suite kind)."""
    text = (PROJECT / TEMPLATE).read_text()
    if not with_ws_events:
        text = drop_blocks(text, *WS_BLOCK)
    return Template(text).substitute(
        api_port=api_port, ws_port=ws_port, python=json.dumps(sys.executable)
    )


def drop_blocks(text: str, begin: str, end: str) -> str:
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.strip() == begin:
            skipping = True
        elif line.strip() == end:
            skipping = False
        elif not skipping:
            kept.append(line)
    return "".join(kept)


def create(folder: Path, with_ws_events: bool = True) -> Path:
    """Write the demo project into ``folder``; returns its config file."""
    shutil.copytree(
        PROJECT,
        folder,
        dirs_exist_ok=True,
        ignore=shutil.ignore_patterns("__pycache__", TEMPLATE),
    )
    config = folder / "netra-supervisor.toml"
    api_port, ws_port = free_ports(2)
    config.write_text(config_text(api_port, ws_port, with_ws_events))
    if git(folder, "init", "-q"):
        commit(folder, "the demo backend, revision buggy")
    return config


def land_fix(folder: Path) -> bool:
    """Replace a buggy revision with its fix and commit it; False when nothing to fix."""
    path = folder / "revision.txt"
    fix = FIXES.get(path.read_text().strip())
    if fix is None:
        return False
    path.write_text(fix + "\n")
    commit(folder, f"fix: deploy revision {fix}")
    return True


def commit(folder: Path, message: str) -> bool:
    return git(folder, "add", "-A") and git(folder, "commit", "-q", "-m", message)


def git(folder: Path, *args: str) -> bool:
    """Run git isolated from the user's own git config (no signing, no hooks).

    Without git the demo still works; its deploys just record no revision.
    """
    env = {
        **os.environ,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_AUTHOR_NAME": "netra demo",
        "GIT_AUTHOR_EMAIL": "demo@netra.invalid",
        "GIT_COMMITTER_NAME": "netra demo",
        "GIT_COMMITTER_EMAIL": "demo@netra.invalid",
    }
    try:
        done = subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null", *args],
            cwd=folder,
            env=env,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0
