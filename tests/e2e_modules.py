"""The end-to-end test modules: those whose tests run real supervisors, real pytest
children or real servers (``tests/conftest.py`` marks them ``e2e``; CI runs them on the
lowest supported Python too)."""

from __future__ import annotations

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
        "test_remote_hosts",
        "test_resume",
        "test_supervisor_killed",
        "test_third_party_suites",
        "test_tui_terminal",
        "test_waiting_e2e",
        "test_websocket_events",
    }
)
