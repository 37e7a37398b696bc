"""Shared by the end-to-end tests: run the real CLI, write project files, read the DB."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

CLI = [sys.executable, "-m", "supervisor.cli"]


def query(db: Path, sql: str, *params) -> list[tuple]:
    """``sql`` on a read-only connection to ``db``: every row."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def write(path: Path, text: str, mode: int | None = None) -> Path:
    """Write the dedented ``text`` to ``path`` (parents made), then chmod it to ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    if mode is not None:
        path.chmod(mode)
    return path


def run_cli(
    args: list[str], cwd: Path, timeout: float = 120, env: dict | None = None
) -> subprocess.CompletedProcess:
    """``netra-supervisor ARGS`` in ``cwd`` with ``env`` over ours; output captured as text.

    Without ``env``, ``NETRA_STRICT_PLUGINS`` is dropped from the environment.
    """
    full_env = {**os.environ, **(env or {})}
    if env is None:
        full_env.pop("NETRA_STRICT_PLUGINS", None)
    return subprocess.run(
        CLI + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env
    )


#: a module for generated suites: ``first_time(name)`` is True on the first call for
#: ``name`` only (a marker file beside the suite remembers it), so a test can fail or
#: hang once and pass when run again (a fix landing, a retry, a flaky backend)
FIRST_TIME = """
import pathlib, time

STATE = pathlib.Path(__file__).resolve().parent.parent / "state"

def first_time(name):
    marker = STATE / name
    if marker.exists():
        return False
    STATE.mkdir(exist_ok=True)
    marker.write_text("ran")
    return True
"""
