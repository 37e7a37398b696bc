"""Marks the end-to-end tests: those that drive real runs (a real ``netra-supervisor``
or a real pytest child under the watchdog) rather than one part over plain data.

CI (``.ci/run``) runs the whole suite on the highest supported Python and ``-m e2e``
on the lowest, so what differs between interpreters (the child plugin inside the
user's pytest, process handling, TOML parsing) is exercised on both within CI's time.
"""

from __future__ import annotations

import pytest
from e2e_modules import E2E_MODULES


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in E2E_MODULES:
            item.add_marker(pytest.mark.e2e)
