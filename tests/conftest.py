"""Marks the end-to-end tests: those that drive real runs (a real ``netra-supervisor``
or a real pytest child under the watchdog) rather than one part over plain data.

CI (``.ci/run``) runs the whole suite on the highest supported Python and ``-m e2e``
on the lowest, so what differs between interpreters (the child plugin inside the
user's pytest, process handling, TOML parsing) is exercised on both within CI's time.
"""

from __future__ import annotations

import pytest

#: Test modules whose tests run real supervisors, real pytest children or real servers.
E2E_MODULES = frozenset(
    {
        "test_child_messages",
        "test_child_output",
        "test_cli_feedback",
        "test_cli_run",
        "test_demo_run",
        "test_deploy",
        "test_escapes",
        "test_failed_first",
        "test_hang_zoo",
        "test_loop_feedback",
        "test_prestart",
        "test_pytest_only_cut",
        "test_pytest_runner",
        "test_resume",
        "test_supervisor_killed",
        "test_third_party_suites",
        "test_tui_terminal",
        "test_websocket_events",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.stem in E2E_MODULES:
            item.add_marker(pytest.mark.e2e)
