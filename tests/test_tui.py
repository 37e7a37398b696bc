"""The TUI as a view over a real ``RunModel``, driven by scripted events (Pilot)."""

from __future__ import annotations

import asyncio
import io

import pytest
from textual.widgets import Digits, Static
from tui_helpers import AT, T0, FrozenClock, screen_text, scripted_model

from supervisor.core.control import RunControl
from supervisor.core.events import (
    IterationFinished,
    IterationStarted,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    TestResult,
    TestsCollected,
    TestStarted,
    count_outcomes,
)
from supervisor.core.model import RunModel, RunningTest
from supervisor.tui.app import SupervisorApp
from supervisor.tui.screens import ConfirmQuit, FailureScreen, HelpScreen
from supervisor.tui.widgets import FailuresPane, RunningPane
from supervisor.tui.widgets.running import countdown


def run(coro):
    return asyncio.run(coro)


def make_app(model=None, **kwargs) -> SupervisorApp:
    kwargs.setdefault("clock", FrozenClock())
    return SupervisorApp(model or scripted_model(), **kwargs)


async def settle(app, pilot) -> None:
    app.refresh_view()
    await pilot.pause()


def digits(app, name: str) -> str:
    return app.query_one(f"#{name}", Digits).value


def test_every_pane_shows_the_scripted_run():
    async def scenario():
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            # header
            assert "run 7" in text and "iteration 2/5" in text
            assert "deploy def5678 healthy" in text
            assert "elapsed 12m34s" in text and "budget left 1h47m" in text
            assert "until all pass · max 5 iter" in text
            # the count toward the target
            assert digits(app, "passing") == "4" and digits(app, "target") == "10"
            info = str(app.query_one("#count-info", Static).render())
            assert "discovered 10 · executed 7 · best: iteration 1 (6)" in info
            # phases: counts, gate, impact; the active one is marked
            p1 = next(line for line in text.splitlines() if "P1 critical" in line)
            assert "4/4" in p1 and "✔3" in p1 and "✖1" in p1
            assert "all-pass FAILED" in p1 and "$120K MRR" in p1
            p2 = next(line for line in text.splitlines() if "P2 important" in line)
            assert "▶" in p2 and "3/6" in p2 and "⏱1" in p2 and "↷1" in p2
            # running, with countdowns
            running = app.query_one(RunningPane)
            assert running.row_count == 2
            assert "48.0s" in text and "3.0s" in text  # 60-12 and 20-17
            # failures, newest first; the log tail
            failures = app.query_one(FailuresPane)
            assert [g.outcome for g in failures.model.newest_first()] == ["hung", "failed"]
            assert "AssertionError: expected 200, got 503" in text
            assert "hung (deadline, 30s)" in text

    run(scenario())


def test_a_refresh_tick_while_the_app_ends_does_not_crash_it():
    """The refresh timer may fire once more while the app tears its DOM down (seen in a
    full test run): the panes then update the widgets they hold, and query nothing."""

    async def scenario():
        model = scripted_model()
        app = make_app(model)
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(app, pilot)
        assert not app.trend_pane.children  # the DOM is gone
        model.apply(TestResult(2, 2, "p2", "t.py::late", "passed", 0.1, AT))
        view = model.snapshot(0, 0, 0, now=T0)
        app.trend_pane.show(view)
        app.count_pane.show(view)

    run(scenario())


def test_the_view_follows_the_model_through_a_run():
    async def scenario():
        model = scripted_model()
        app = make_app(model)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            before = int(digits(app, "passing"))
            # a burst between two refreshes: applied in one go
            for i in range(3, 6):
                nodeid = f"tests/test_p2.py::test_{i}"
                model.apply(TestResult(2, 2, "p2", nodeid, "passed", 0.1, AT))
            await settle(app, pilot)
            assert int(digits(app, "passing")) == before + 3
            assert app.query_one(RunningPane).row_count == 0  # both in-flight tests ended
            model.apply(PhaseFinished(7, 2, 2, "P2 important", "none", "passed", True, {}, 3.0))
            counts = {**count_outcomes([]), "passed": 7, "failed": 1}
            model.apply(IterationFinished(7, 2, AT, "failed", counts, "def5678"))
            model.apply(IterationStarted(7, 3, AT))
            model.apply(PhaseStarted(7, 3, 1, "P1 critical", "all-pass", ("p1",), AT))
            model.apply(TestsCollected(3, 1, "p1", ("a", "b")))
            model.apply(TestStarted(3, 1, "p1", "a", "", 30.0, at=T0 - 1))
            await settle(app, pilot)
            text = screen_text(app)
            assert "iteration 3/5" in text and "deploying" in text
            assert digits(app, "passing") == "0"
            assert app.query_one(FailuresPane).row_count == 0  # a new iteration starts over
            assert "passing per iteration (3): 6 → 7 → 0" in text
            assert "best: iteration 2 (7)" in str(app.query_one("#count-info", Static).render())
            assert app.query_one(RunningPane).row_count == 1

    run(scenario())


def test_failures_are_grouped_by_message_and_enter_opens_the_full_report():
    async def scenario():
        model = scripted_model()
        for i in range(3):
            model.apply(
                TestResult(
                    2, 2, "p2", f"tests/test_p2.py::test_ws_{i}", "failed", 0.1, AT,
                    # one signature (history failures' key): only the numbers differ
                    message=f"TimeoutError: no agent_completed event after {i + 1}.5s",
                    longrepr=f"captured stdout: connecting {i}\nE   TimeoutError",
                )
            )  # fmt: skip
        app = make_app(model)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            failures = app.query_one(FailuresPane)
            groups = failures.model.newest_first()
            assert groups[0].message == "TimeoutError: no agent_completed event after 1.5s"
            assert groups[0].count == 3
            assert groups[0].first_seen_text() == "2 @ def5678"  # iteration @ revision
            assert groups[0].results[0].nodeid.endswith("test_ws_2")  # newest first
            assert failures.row_count == 3  # 3 groups: timeout, hung, assertion
            await pilot.press("f")
            assert app.focused is failures
            await pilot.press("enter")
            await pilot.pause()
            assert isinstance(app.screen, FailureScreen)
            report = screen_text(app)
            assert "3 × failed: TimeoutError: no agent_completed event" in report
            assert "captured stdout: connecting 2" in report
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, FailureScreen)
            # the hung group's report carries the dump
            await pilot.press("down", "enter")
            await pilot.pause()
            assert "await ws.recv()" in screen_text(app)

    run(scenario())


def test_keys_pause_next_kill_help_and_quit_reach_the_control():
    async def scenario():
        control = RunControl()
        app = make_app(control=control)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(app, pilot)
            await pilot.press("p")
            assert control.paused
            await settle(app, pilot)
            assert "PAUSED" in screen_text(app)
            await pilot.press("p")
            assert not control.paused
            await pilot.press("n")
            assert control.next_event.is_set()
            # k kills the selected running test
            app.query_one(RunningPane).focus()
            await pilot.press("down")  # second row: gw1
            await pilot.press("k")
            assert control.kill_requested("p2", "tests/test_p2.py::test_4")
            assert not control.kill_requested("p2", "tests/test_p2.py::test_3")
            await settle(app, pilot)
            assert "killing…" in screen_text(app)
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            assert "kill the selected running test" in screen_text(app)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("q")
            assert isinstance(app.screen, ConfirmQuit)
            await pilot.press("n")  # no: keeps running
            assert not isinstance(app.screen, ConfirmQuit) and not control.stop.is_set()
            await pilot.press("q")
            await pilot.press("y")
            await pilot.pause()
        assert control.stop.is_set()
        assert app.return_value == "quit"

    run(scenario())


def test_a_finished_run_says_so_and_q_leaves_without_asking():
    async def scenario():
        model = scripted_model()
        model.finish("all tests pass", 0)
        model.finished = T0 - 4  # the loop stopped 4 s before "now": elapsed stops there
        control = RunControl()
        app = make_app(model, control=control)
        app.loop_done.set()
        async with app.run_test(size=(140, 30)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            assert "FINISHED · exit 0" in text and "stopped: all tests pass" in text
            assert "elapsed 12m30s" in text
            await pilot.press("q")
            await pilot.pause()
        assert app.return_value == "finished"
        assert not control.stop.is_set()

    run(scenario())


def test_secrets_never_reach_the_screen():
    async def scenario():
        model = scripted_model()
        model.apply(LogLine("error", "deploy:command", "auth failed for token s3cr3t-t0k3n", AT))
        model.apply(
            TestResult(2, 2, "p2", "t::x", "failed", 0.1, AT, message="bad token s3cr3t-t0k3n")
        )
        app = make_app(model, redact=lambda s: s.replace("s3cr3t-t0k3n", "***"))
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            assert "auth failed for token ***" in text and "bad token ***" in text
            assert "s3cr3t" not in text

    run(scenario())


def test_brackets_in_node_ids_and_messages_are_text_not_markup():
    # parametrize ids such as [/api/items?limit=3-x] once crashed the running pane
    nodeid = "t.py::test_refused[/api/items?limit=3-x]"

    async def scenario():
        model = scripted_model()
        model.apply(TestStarted(2, 2, "p2", nodeid, worker="gw0", deadline=30.0, at=T0))
        model.apply(
            TestResult(2, 2, "p2", "t.py::test_b[/x]", "failed", 0.1, AT, message="[/red] [b]no")
        )
        app = make_app(model)
        async with app.run_test(size=(200, 40)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            assert "test_refused[/api/items?limit=3-x]" in text
            assert "[/red] [b]no" in text and "test_b[/x]" in text

    run(scenario())


@pytest.mark.parametrize(
    ("elapsed", "deadline", "expected", "style"),
    [
        (1.0, 60.0, "59.0s", ""),
        (35.0, 60.0, "25.0s", "yellow"),
        (50.0, 60.0, "10.0s", "bold red"),
        (61.0, 60.0, "dumping…", "bold red reverse"),
    ],
)
def test_countdown_turns_warning_then_error_colours(elapsed, deadline, expected, style):
    test = RunningTest("s", "t", "gw0", deadline, T0 - elapsed)
    text = countdown(test, T0)
    assert text.plain.strip() == expected
    assert str(text.style) == style


def test_model_snapshot_hands_out_only_the_delta():
    model = RunModel()
    model.apply(IterationStarted(1, 1, AT))
    for i in range(5):
        model.apply(LogLine("info", "x", f"line {i}", AT))
    model.apply(PhaseStarted(1, 1, 1, "P", "none", ("s",), AT))
    model.apply(TestResult(1, 1, "s", "a", "failed", message="m"))
    first = model.snapshot()
    assert [line.text for line in first.log] == [f"line {i}" for i in range(5)]
    assert [f.nodeid for f in first.failures] == ["a"] and first.failures_reset
    model.apply(LogLine("info", "x", "line 5", AT))
    model.apply(TestResult(1, 1, "s", "b", "hung", message="m"))
    second = model.snapshot(first.log_seq, first.failures_seq, first.failures_epoch)
    assert [line.text for line in second.log] == ["line 5"]
    assert [f.nodeid for f in second.failures] == ["b"] and not second.failures_reset
    model.apply(IterationStarted(1, 2, AT))
    third = model.snapshot(second.log_seq, second.failures_seq, second.failures_epoch)
    assert third.failures_reset and third.failures == () and third.log == ()
    with model.read() as m:
        assert m.results_seen == 2  # the session prints it when a view ends


def test_the_tui_opens_only_in_a_terminal_without_headless():
    from supervisor.session import RunOptions, wants_tui

    assert not wants_tui(RunOptions(headless=True))
    assert not wants_tui(RunOptions(headless=False), out=io.StringIO())  # a pipe, a test


def test_the_verify_pass_is_a_phase_row_with_each_re_run_tests_verdict():
    """Phase 0 (``verify``) is shown above the configured phases, with a line of what
    still fails and what passes now; it does not count twice toward passing; a cut
    phase says how many tests it did not run and why."""

    async def scenario():
        model = RunModel(until="all-pass", max_iterations=5)
        e = model.apply
        e(IterationStarted(7, 2, AT))
        e(PhaseStarted(7, 2, 0, "verify", "all-pass", ("p1",), AT, "re-runs 3 tests not passing in iteration 1"))  # fmt: skip
        e(TestsCollected(2, 0, "p1", ("t.py::test_a", "t.py::test_b[x]", "t.py::test_c")))
        e(TestResult(2, 0, "p1", "t.py::test_a", "passed", 0.1, AT))
        e(TestResult(2, 0, "p1", "t.py::test_b[x]", "hung", 5.0, AT))
        e(TestResult(2, 0, "p1", "t.py::test_c", "passed", 0.1, AT))
        counts = {**count_outcomes([]), "passed": 2, "hung": 1}
        e(PhaseFinished(7, 2, 0, "verify", "all-pass", "gate-failed", False, counts, 5.2))
        app = make_app(model)
        async with app.run_test(size=(120, 30)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            row = next(line for line in text.splitlines() if "verify" in line)
            assert "✖ verify" in row and "3/3" in row and "all-pass FAILED" in row
            assert "re-runs 3 tests not passing in iteration 1" in row
            assert "✖ 1 still failing: test_b[x] (hung) · ✔ 2 now pass: test_a, test_c" in text
            assert digits(app, "passing") == "2"  # all that ran: the verify pass counts
            e(PhaseStarted(7, 2, 1, "P1 critical", "all-pass", ("p1",), AT))
            e(TestsCollected(2, 1, "p1", tuple(f"t{i}" for i in range(50))))
            for i in range(26):
                e(TestResult(2, 1, "p1", f"t{i}", "failed" if i == 25 else "passed", 0.1, AT))
            counts = {**count_outcomes([]), "passed": 25, "failed": 1}
            e(
                PhaseFinished(
                    7, 2, 1, "P1 critical", "all-pass", "gate-failed", False, counts, 3.0,
                    not_run=24, note="the gate can no longer hold",
                )
            )  # fmt: skip
            await settle(app, pilot)
            text = screen_text(app)
            lines = text.splitlines()
            verify_at = next(i for i, line in enumerate(lines) if "✖ verify" in line)
            p1 = next(i for i, line in enumerate(lines) if "P1 critical" in line)
            assert verify_at < p1  # the verify pass comes first, as it ran
            assert "26/50" in lines[p1]
            assert "24 not run: the gate can no longer hold" in lines[p1]
            assert digits(app, "passing") == "25"  # the full phases' count, not 27

    run(scenario())


def test_quarantined_results_are_counted_apart_in_the_phases_pane_and_the_count_line():
    """Issue 14: a quarantined test's result is not passing, not failing, not in the
    failures pane; the phase row and the count line say how many and how they ended."""

    async def scenario():
        model = RunModel(until="all-pass", max_iterations=5)
        e = model.apply
        e(IterationStarted(7, 1, AT))
        e(PhaseStarted(7, 1, 1, "P1 critical", "all-pass", ("p1",), AT))
        e(TestsCollected(1, 1, "p1", ("t.py::ok", "t.py::q1", "t.py::q2", "t.py::q3")))
        e(TestResult(1, 1, "p1", "t.py::ok", "passed", 0.1, AT))
        e(TestResult(1, 1, "p1", "t.py::q1", "failed", 0.1, AT, quarantined=True))
        e(TestResult(1, 1, "p1", "t.py::q2", "failed", 0.1, AT, quarantined=True))
        e(TestResult(1, 1, "p1", "t.py::q3", "passed", 0.1, AT, quarantined=True))
        app = make_app(model)
        async with app.run_test(size=(160, 30)) as pilot:
            await settle(app, pilot)
            text = screen_text(app)
            row = next(line for line in text.splitlines() if "P1 critical" in line)
            assert "4/4" in row and "✔1" in row and "✖0" in row
            assert "3 quarantined: 2 failed, 1 passed" in row
            info = str(app.query_one("#count-info", Static).render())
            assert "executed 4" in info and "3 quarantined: 2 failed, 1 passed" in info
            assert digits(app, "passing") == "1"
            assert "t.py::q1" not in text  # not a failure to look at

    run(scenario())
