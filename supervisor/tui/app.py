"""The live dashboard of a run.

The loop runs in its own thread and folds events into ``RunModel``; this app only
reads it. :class:`DashboardApp` is the view over any ``ViewSource`` (the live model,
or a run followed from the history: ``supervisor.tui.watch``); :class:`SupervisorApp`
adds the keys that act on the run it drives. Ten times a second it takes a snapshot
(the delta since the last one) and applies it to every pane inside one
``batch_update()``: no event reaches a widget, so a burst of results costs one
repaint. A crash here never loses results: the store writer is fed by the bus, not by
the app, and ``run_tui`` reports the crash so the session can finish headless.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from pathlib import Path

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import DataTable, Footer

from supervisor.core.control import RunControl
from supervisor.core.model import RunModel, RunningTest, ViewSource
from supervisor.tui.screens import KEYS, ConfirmQuit, FailureScreen, HelpScreen
from supervisor.tui.widgets import (
    CountPane,
    FailuresPane,
    LogPane,
    PhasesPane,
    RunHeader,
    RunningPane,
    TrendPane,
)
from supervisor.tui.widgets.trend import load_history

REFRESH_EVERY = 0.1  # seconds: the pull rate from the model
#: The lists (failures, log, trend) are applied every Nth pull: re-rendering a table
#: and a log ten times a second is most of the app's CPU under a stream of results,
#: and a person reads them at a glance, not at 10 Hz.
LIST_EVERY = 4


class DashboardApp(App[str]):
    """The panes over a ``ViewSource``; no pane knows where the view comes from.
    Subclasses name their keys (``BINDINGS``) and say when the run is over."""

    CSS_PATH = str(Path(__file__).with_name("app.tcss"))  # subclasses live elsewhere
    TITLE = "netra-supervisor"
    ENABLE_COMMAND_PALETTE = False  # every key is ours; the footer has room for them
    #: what the help screen lists: (key, what it does)
    HELP_KEYS: tuple[tuple[str, str], ...] = KEYS

    def __init__(
        self,
        source: ViewSource,
        db_path: str | Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        redact: Callable[[str], str] | None = None,
        refresh_every: float = REFRESH_EVERY,
    ) -> None:
        super().__init__()
        self.source = source
        self.db_path = db_path
        self.clock = clock
        self.redact = redact or (lambda s: s)
        self.refresh_every = refresh_every
        self._log_seq = 0
        self._fail_seq = 0
        self._epoch = -1
        self._version = -1
        self._ticks = 0
        self.refreshes = 0  # how many deltas were applied (tests, the benchmark)

    def compose(self) -> ComposeResult:
        yield RunHeader(id="header")
        with Horizontal(id="top"):
            yield CountPane(id="count")
            yield TrendPane(load_history(self.db_path), id="trend")
        yield PhasesPane(id="phases")
        with Horizontal(id="middle"):
            yield RunningPane(id="running")
            yield FailuresPane(redact=self.redact, id="failures")
        yield LogPane(redact=self.redact, id="log")
        yield Footer()

    def on_mount(self) -> None:
        # held, not queried per refresh: another screen (a report) may be on top
        self.header_pane = self.query_one(RunHeader)
        self.count_pane = self.query_one(CountPane)
        self.phases_pane = self.query_one(PhasesPane)
        self.trend_pane = self.query_one(TrendPane)
        self.running_pane = self.query_one(RunningPane)
        self.failures_pane = self.query_one(FailuresPane)
        self.log_pane = self.query_one(LogPane)
        self.query_one("#count").border_title = "passing / target"
        self.query_one("#trend").border_title = "trend"
        self.query_one("#phases").border_title = "phases"
        self.query_one("#running").border_title = "running (watchdog)"
        self.query_one("#failures").border_title = "failures"
        self.query_one("#log").border_title = "log"
        self.refresh_view()
        self.set_interval(self.refresh_every, self.refresh_view)
        # Everything built so far (the config, plugins, Textual's DOM and styles) lives
        # as long as the run: leave it out of the collector's full passes, which were
        # the longest event-loop stalls under a stream of results (bench/tui.py).
        gc.freeze()

    # ------------------------------------------------------------------ the pull

    def run_finished(self) -> bool:
        """The run has ended (the header says FINISHED; ``q`` leaves at once)."""
        return False

    def paused_waiting(self) -> tuple[bool, bool]:
        """(paused, waiting between iterations): only a run's own view knows."""
        return False, False

    def killing(self, test: RunningTest) -> bool:
        """A kill of ``test`` was asked for (its countdown says so)."""
        return False

    def refresh_view(self) -> None:
        """Take the delta from the source and apply it to every pane in one batch."""
        now = self.clock()
        view = self.source.snapshot(self._log_seq, self._fail_seq, self._epoch, now=now)
        reset = view.failures_reset
        self._ticks += 1
        lists = reset or self._ticks % LIST_EVERY == 1
        finished = self.run_finished()
        changed = view.version != self._version
        self._version = view.version
        if lists:  # else the delta waits, and grows, until the next list refresh
            self._log_seq, self._fail_seq = view.log_seq, view.failures_seq
            self._epoch = view.failures_epoch
        paused, waiting = self.paused_waiting()
        with self.batch_update():
            self.header_pane.show(view, now, paused=paused, waiting=waiting, finished=finished)
            self.running_pane.show(view.running, now, self.killing)
            self.phases_pane.show(view.phases)  # repaints only when a row's text changed
            if changed:
                self.count_pane.show(view)
            if lists:
                self.trend_pane.show(view)
                self.failures_pane.show(view.failures, reset, view.deploy_revision)
                self.log_pane.add(view.log)
        self.refreshes += 1
        self.refreshed(finished)

    def refreshed(self, finished: bool) -> None:
        """Called after each refresh (the live view leaves when stopped from outside)."""

    # ------------------------------------------------------------------ keys

    def action_focus_failures(self) -> None:
        self.failures_pane.focus()

    def action_history(self) -> None:
        from supervisor.tui.history import HistoryScreen

        if not isinstance(self.screen, HistoryScreen):
            self.push_screen(HistoryScreen(self.db_path))

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.HELP_KEYS))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if isinstance(event.data_table, FailuresPane):
            group = event.data_table.selected()
            if group is not None:
                from supervisor.store.evidence import run_evidence
                from supervisor.store.triage import describe_streaks

                # since which revision each fails: a few index seeks, read-only
                tests = [(r.suite, r.nodeid) for r in group.results[:50]]
                streaks = describe_streaks(self.db_path, tests)
                # what the backend said while each ran (written a second or two later)
                keys = [
                    (r.iteration, r.phase, r.suite, r.nodeid, r.attempt) for r in group.results[:50]
                ]
                evidence = run_evidence(self.db_path, self.source.run_id, keys)
                self.push_screen(FailureScreen(group, self.redact, streaks, evidence))


class SupervisorApp(DashboardApp):
    """The view of the run this process drives. Exits with ``"quit"`` (a person quit,
    the run is stopped) or ``"finished"``."""

    BINDINGS = [
        Binding("q", "quit_run", "Quit"),
        Binding("ctrl+c", "quit_run", "Quit", show=False, priority=True),
        Binding("p", "pause", "Pause/resume"),
        Binding("n", "next_now", "Next iteration"),
        Binding("k", "kill", "Kill test"),
        Binding("f", "focus_failures", "Failures"),
        # in the help, not the footer: at 80 columns the footer has no room left
        Binding("h", "history", "History", show=False),
        Binding("question_mark", "help", "Help"),
    ]

    def __init__(
        self,
        model: RunModel,
        control: RunControl | None = None,
        db_path: str | Path | None = None,
        loop_done: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        redact: Callable[[str], str] | None = None,
        refresh_every: float = REFRESH_EVERY,
    ) -> None:
        self.model = model
        self.control = control or RunControl()
        self.loop_done = loop_done or threading.Event()
        super().__init__(model, db_path, clock, redact, refresh_every)

    def run_finished(self) -> bool:
        return self.loop_done.is_set()

    def paused_waiting(self) -> tuple[bool, bool]:
        return self.control.paused, self.control.waiting

    def killing(self, test: RunningTest) -> bool:
        return self.control.kill_requested(test.suite, test.nodeid)

    def refreshed(self, finished: bool) -> None:
        if finished and self.control.stop.is_set():
            self.exit("quit")  # stopped from outside (SIGTERM): nothing left to watch

    def action_quit_run(self) -> None:
        if self.loop_done.is_set():
            self.exit("finished")
            return
        if isinstance(self.screen, ConfirmQuit):
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.control.request_stop()
                self.exit("quit")

        self.push_screen(ConfirmQuit(), answered)

    def action_pause(self) -> None:
        paused = self.control.toggle_pause()
        self.notify("paused after the tests in flight" if paused else "resumed")
        self.refresh_view()

    def action_next_now(self) -> None:
        self.control.next_now()
        if self.control.waiting:
            self.notify("starting the next iteration")
        else:
            self.notify("n starts the next iteration while the loop waits between iterations")

    def action_kill(self) -> None:
        test = self.running_pane.selected()
        if test is None:
            self.notify("no running test selected", severity="warning")
            return
        self.control.kill(test.suite, test.nodeid)
        self.notify(f"killing {test.nodeid} (it will be recorded as hung, with a dump)")


def run_tui(
    *,
    model: RunModel,
    control: RunControl,
    db_path: str | Path | None,
    loop_done: threading.Event,
    mouse: bool = True,
    redact: Callable[[str], str] | None = None,
    app_class: type[SupervisorApp] = SupervisorApp,
    headless: bool = False,
) -> tuple[str, str]:
    """Run the app until a person quits; returns ``(how, detail)``.

    ``how`` is ``quit``, ``finished`` or ``crashed`` (``detail`` names the error); a
    crash is caught here so the session can go on headless with nothing lost.
    """
    app = app_class(model, control, db_path, loop_done, redact=redact)
    try:
        result = app.run(mouse=mouse, headless=headless)
    except Exception as exc:  # noqa: BLE001 - the UI failing must not end the run
        return "crashed", f"{type(exc).__name__}: {exc}"
    if app.return_code not in (0, None):
        error = getattr(app, "_exception", None)
        detail = f"{type(error).__name__}: {error}" if error is not None else "the TUI ended"
        return "crashed", detail
    return result or "quit", ""
