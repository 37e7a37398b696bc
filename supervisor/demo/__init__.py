"""The bundled example: ``netra-supervisor demo``.

Copies a small example project (e2e-style tests in priority phases) into a temporary
folder and runs the loop on it, writing its history database there and saying where.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).parent / "project"


def run_demo(headless: bool = True, no_mouse: bool = False) -> int:
    """Run the demo project once through every phase; returns the run's exit code.

    The folder stays (under the system's temporary folder) so its history can be queried.
    """
    from supervisor.session import RunOptions, run_supervisor

    workdir = Path(tempfile.mkdtemp(prefix="netra-demo-"))
    shutil.copytree(
        PROJECT, workdir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
    )
    config = workdir / "netra-supervisor.toml"
    print(f"demo project: {workdir}")
    print(f"demo history: {workdir / '.netra' / 'history.db'}")
    try:
        options = RunOptions(config=str(config), headless=headless, no_mouse=no_mouse)
        return run_supervisor(options, out=None if not headless else sys.stdout)
    finally:
        db = workdir / ".netra" / "history.db"
        print(f"query it: netra-supervisor history iterations --db {db}")
