"""Shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

#: pytest-textual-snapshot (with syrupy, textual and jinja2) is for this suite's TUI
#: snapshots only; every pytest the tests start would load it too (~0.3 s each).
CHILD_ADDOPTS = "-p no:textual-snapshot -p no:syrupy"


@pytest.fixture(autouse=True, scope="session")
def _child_pytests_skip_the_snapshot_plugin() -> Iterator[None]:
    """Set for the processes the tests start, once this process is configured (a
    session fixture runs in the process that runs the tests, never in an xdist
    controller, whose workers still need the plugin)."""
    before = os.environ.get("PYTEST_ADDOPTS")
    os.environ["PYTEST_ADDOPTS"] = f"{CHILD_ADDOPTS} {before or ''}".strip()
    yield
    if before is None:
        os.environ.pop("PYTEST_ADDOPTS", None)
    else:
        os.environ["PYTEST_ADDOPTS"] = before
