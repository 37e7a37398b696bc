"""The TUI's failure report shows each result's evidence, read from the history, redacted."""

from __future__ import annotations

import asyncio

from test_store import open_store, start
from tui_helpers import AT, FrozenClock, screen_text

from supervisor.core.events import Evidence, IterationStarted, RunStarted, TestResult
from supervisor.core.model import RunModel
from supervisor.redact import Redactor
from supervisor.tui.app import SupervisorApp
from supervisor.tui.screens import FailureScreen

SECRET = "tok-SECRET-0123456789"


def test_the_failure_report_shows_what_the_backend_said_without_secrets(tmp_path):
    db = tmp_path / "history.db"
    store = open_store(db)  # no redaction here: the screen must mask on its own
    start(store)
    failed = TestResult(
        1, 1, "s", "tests/test_api.py::test_login", "failed", 0.2, AT, message="AssertionError: 401"
    )
    store.put(failed)
    lines = f"2026-01-02T03:04:05.100Z ERROR login refused: Bearer {SECRET}\n… 3 more lines …"
    store.put(
        Evidence(1, 1, "s", failed.nodeid, 1, "log:/var/log/api.log", lines, omitted=3,
                 first_at="2026-01-02T03:04:05.100+00:00", last_at="2026-01-02T03:04:05.900+00:00")
    )  # fmt: skip
    assert store.close()
    model = RunModel(until="all-pass", max_iterations=5)
    model.apply(RunStarted(store.run_id, AT, 10, "netra-supervisor.toml"))
    model.apply(IterationStarted(store.run_id, 1, AT))
    model.apply(failed)
    app = SupervisorApp(model, db_path=db, clock=FrozenClock(), redact=Redactor([SECRET]))

    async def scenario() -> None:
        async with app.run_test(size=(160, 40)) as pilot:
            app.refresh_view()
            await pilot.pause()
            await pilot.press("f", "enter")
            await pilot.pause()
            assert isinstance(app.screen, FailureScreen)
            report = screen_text(app)
            assert (
                "--- what the backend said: log:/var/log/api.log (4 lines, 3 left out,"
                " 03:04:05.100 – 03:04:05.900) ---" in report
            )
            assert "ERROR login refused: Bearer ***" in report
            assert "… 3 more lines …" in report
            assert SECRET not in report

    asyncio.run(scenario())
