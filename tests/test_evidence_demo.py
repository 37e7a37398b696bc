"""The demo's failing tests carry what the demo backend logged while they ran.

A real run of the demo project's P1 phase against the real demo backend (``local``
deploy, revision ``buggy``): the backend writes a stamped WARNING where it misbehaves,
to its real log file, and each failing test's evidence holds the line of its request.
"""

from __future__ import annotations

from cli_helpers import query, run_cli

from supervisor.demo import workspace


def test_the_demo_backend_line_is_the_failing_tests_evidence(tmp_path):
    config = workspace.create(tmp_path / "demo")
    secret = "demo-jwt-secret-for-the-evidence-test"
    proc = run_cli(
        ["run", "--headless", "--once", "--phase", "P1 critical", "-c", str(config)],
        config.parent,
        timeout=180,
        env={"NETRA_DEMO_JWT_SECRET": secret},
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    db = config.parent / ".netra/history.db"
    log = config.parent / ".netra/deploy-local.log"
    assert "WARNING POST /api/items: created item" in log.read_text()
    rows = query(
        db,
        "SELECT t.nodeid, r.outcome, e.source, e.lines FROM evidence e"
        " JOIN results r ON r.id = e.result_id JOIN tests t ON t.id = r.test_id",
    )
    by_test = {
        nodeid.split("::")[1]: (outcome, source, lines) for nodeid, outcome, source, lines in rows
    }
    assert set(by_test) == {
        "test_creating_an_item_answers_201_created[pro plan]",
        "test_creating_an_item_answers_201_created[starter plan]",
        "test_creating_an_item_answers_201_created[team plan]",
        "test_the_agent_run_completes",
        "test_the_agent_stream_completes",
    }
    outcome, source, lines = by_test["test_creating_an_item_answers_201_created[starter plan]"]
    assert (outcome, source) == ("failed", f"log:{log}")
    assert "WARNING POST /api/items: created item" in lines and "answered 200, not 201" in lines
    outcome, _, lines = by_test["test_the_agent_run_completes"]
    assert "WARNING agent run for e2e-bot: stopped after tool_completed" in lines
    outcome, _, lines = by_test["test_the_agent_stream_completes"]
    assert outcome == "hung"
    assert "WARNING agent stream: sent 4 events, stopped after tool_completed" in lines
    assert secret not in db.read_bytes().decode("latin-1")
    shown = run_cli(["history", "test", "test_the_agent_stream_completes"], config.parent)
    assert "what the backend said while it ran (iteration 1.1, hung, attempt 1):" in shown.stdout
    assert "WARNING agent stream: sent 4 events" in shown.stdout
