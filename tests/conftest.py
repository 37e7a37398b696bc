"""Shared by every test module.

Marks the end-to-end tests: those that drive real runs (a real ``netra-supervisor``
or a real pytest child under the watchdog) rather than one part over plain data.
CI (``.ci/run``) runs the whole suite on the highest supported Python and ``-m e2e``
on the lowest, so what differs between interpreters (the child plugin inside the
user's pytest, process handling, TOML parsing) is exercised on both within CI's time.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from e2e_modules import E2E_MODULES

#: pytest-textual-snapshot (with syrupy, textual and jinja2) is for this suite's TUI
#: snapshots only; every pytest the tests start would load it too (~0.3 s each).
CHILD_ADDOPTS = "-p no:textual-snapshot -p no:syrupy"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in E2E_MODULES:
            item.add_marker(pytest.mark.e2e)


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
