"""The history screen (``h``): what ``history runs/iterations/flaky/slowest/test`` print,
in the TUI, read-only from the history database.

One screen for every view that has a database path: the live dashboard and ``watch``
push it over themselves, ``history browse`` runs it as its own app (``HistoryApp``),
which ``serve`` can put in a browser tab. It reads through the store's query functions
(no SQL of its own) on a read-only connection opened per question, so it never holds a
lock the run's writer would wait on.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from supervisor.config_values import format_duration

FLAKY_WINDOW = timedelta(days=30)  # as ``history flaky``'s default --since
LIMIT = 20  # rows of the flakiest and slowest tables
TEST_RESULTS = 30  # a test's newest results shown


def _secs(value: Any) -> str:
    return "-" if value is None else format_duration(float(value))


def _when(value: Any) -> str:
    """``2026-11-24T18:41:43.123+00:00`` -> ``11-24 18:41`` (UTC): room for the rest."""
    return str(value or "").replace("T", " ")[5:16]


def _first_line(value: Any) -> str:
    text = str(value or "").strip()
    return text.splitlines()[0] if text else ""


class HistoryScreen(Screen[None]):
    """Runs and their iterations, the flakiest and slowest tests, and one test's results.

    Enter on a run lists its iterations; Enter on a flaky or slow test opens its
    results. Esc or ``h`` closes the screen.
    """

    DEFAULT_CSS = """
    HistoryScreen #history-title { height: auto; padding: 0 1; background: $panel; }
    HistoryScreen #history-tabs { height: 1fr; }
    HistoryScreen TabPane { height: 1fr; padding: 0; }
    HistoryScreen #history-runs, HistoryScreen #history-iterations { height: 1fr; }
    HistoryScreen #history-test { height: 1fr; }
    HistoryScreen #test-head { height: auto; padding: 0 1; }
    HistoryScreen DataTable { border: round $primary; }
    """
    BINDINGS = [
        Binding("escape,h", "close", "Back"),
        Binding("g", "reload", "Reload"),
        Binding("r", "tab('runs')", "Runs"),
        Binding("l", "tab('flaky')", "Flakiest"),
        Binding("s", "tab('slowest')", "Slowest"),
        Binding("t", "tab('test')", "Test"),
    ]

    def __init__(
        self,
        db_path: str | Path | None,
        *,
        run: int | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        super().__init__()
        self.db_path = db_path
        self.first_run = run  # the run whose iterations show first (default: the newest)
        self.now = now
        self.error = ""  # why the history could not be read, shown instead of tables

    def compose(self) -> ComposeResult:
        yield Static("", id="history-title")
        with TabbedContent(initial="runs", id="history-tabs"):
            with TabPane("runs", id="runs"):
                yield DataTable(id="history-runs", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="history-iterations", cursor_type="row")
            with TabPane("flakiest", id="flaky"):
                yield DataTable(id="history-flaky", cursor_type="row")
            with TabPane("slowest", id="slowest"):
                yield DataTable(id="history-slowest", cursor_type="row")
            with TabPane("test", id="test"):
                yield Static(
                    "Enter on a flaky or slow test shows its results here.", id="test-head"
                )
                yield DataTable(id="history-test", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self._tests: dict[str, dict[str, tuple[str, str]]] = {"flaky": {}, "slowest": {}}
        self.load()
        self.query_one("#history-runs", DataTable).focus()

    # ------------------------------------------------------------------ reading

    def _read(self, question: Callable[[sqlite3.Connection], Any]) -> Any:
        """Answer one question on a fresh read-only connection; None (and ``error``
        shown) when the history cannot be read."""
        from supervisor.store.queries import QueryError, connect_readonly

        if not self.db_path:
            self._fail("no history database for this view (pass --db PATH)")
            return None
        try:
            conn = connect_readonly(self.db_path, timeout=1.0)
        except FileNotFoundError:
            self._fail(f"{self.db_path}: no history database here yet")
            return None
        try:
            return question(conn)
        except (sqlite3.Error, QueryError) as exc:
            self._fail(f"{self.db_path}: {exc}")
            return None
        finally:
            conn.close()

    def _fail(self, message: str) -> None:
        self.error = message
        self.query_one("#history-title", Static).update(Text(message, style="bold red"))

    def load(self) -> None:
        """Fill every table (``g`` reads the history anew: a run may be writing it)."""
        from supervisor.store import queries, triage

        since = (self.now() - FLAKY_WINDOW).isoformat(timespec="seconds")

        def everything(conn: sqlite3.Connection) -> tuple[Any, ...]:
            return (
                queries.runs(conn, LIMIT),
                triage.flaky(conn, since, None, LIMIT),
                queries.slowest(conn, LIMIT),
            )

        answer = self._read(everything)
        if answer is None:
            return
        runs, flaky, slowest = answer
        self.query_one("#history-title", Static).update(
            Text.assemble(
                ("history ", "bold"),
                str(self.db_path),
                (
                    f"  ·  {len(runs)} newest runs · Enter: a run's iterations, a test's results"
                    " · r l s t: tabs · Esc: back",
                    "dim",
                ),
            )
        )
        self._fill_runs(runs)
        self._fill_tests("flaky", flaky)
        self._fill_tests("slowest", slowest)
        chosen = (
            self.first_run if self.first_run is not None else (runs[0]["run"] if runs else None)
        )
        if chosen is not None:
            self.show_iterations(int(chosen))

    def _fill_runs(self, rows: list[dict[str, Any]]) -> None:
        table = self.query_one("#history-runs", DataTable)
        table.clear(columns=True)
        table.add_columns("run", "started", "took", "status", "iters", "last iteration's results")
        for row in rows:
            table.add_row(
                Text(str(row["run"]), style="bold"),
                _when(row["started_at"]),
                _secs(row["duration"]),
                row["status"] or "",
                str(row["iterations"]),
                Text(self._counts(row)),
                key=str(row["run"]),
            )
        table.border_title = "runs, newest first"

    @staticmethod
    def _counts(row: dict[str, Any]) -> str:
        from supervisor.store.queries import counts_text

        return counts_text(row)

    def show_iterations(self, run: int) -> None:
        from supervisor.store import queries

        rows = self._read(lambda conn: queries.iterations(conn, run))
        if rows is None:
            return
        table = self.query_one("#history-iterations", DataTable)
        table.clear(columns=True)
        table.add_columns("iter", "started", "took", "revision", "status", "results")
        for row in rows:
            table.add_row(
                row["iteration"],
                _when(row["started_at"]),
                _secs(row["duration"]),
                Text(str(row["revision"] or "")[:12]),
                row["status"] or "",
                Text(queries.counts_text(row)),
                key=row["iteration"],
            )
        table.border_title = f"iterations of run {run}"

    def _fill_tests(self, which: str, rows: list[dict[str, Any]]) -> None:
        table = self.query_one(f"#history-{which}", DataTable)
        table.clear(columns=True)
        names = self._tests[which]
        names.clear()
        if which == "flaky":
            table.add_columns("test", "pass", "fail", "hung", "flips", "fail rate", "last")
            table.border_title = "flakiest: passed and failed under one revision, last 30 days"
        else:
            table.add_columns("test", "runs", "p50", "p95", "max")
            table.border_title = "slowest by p95 duration"
        for i, row in enumerate(rows):
            key = str(i)
            names[key] = (row["suite"], row["nodeid"])
            name = Text(f"{row['suite']}: {row['nodeid']}")
            if which == "flaky":
                rate = f"{row['fail_rate_est']:.0%}"
                table.add_row(
                    name,
                    str(row["passed"]),
                    str(row["failed"]),
                    str(row["hung"]),
                    f"{row['flip_rate']:.0%}",
                    rate,
                    row["last_outcome"] or "",
                    key=key,
                )
            else:
                table.add_row(
                    name,
                    str(row["executions"]),
                    _secs(row["p50"]),
                    _secs(row["p95"]),
                    _secs(row["max"]),
                    key=key,
                )

    def show_test(self, suite: str, nodeid: str) -> None:
        """What ``history test NODEID --suite SUITE`` prints: a summary, the current
        failing streak, the newest results."""
        from supervisor.store import queries, triage

        def question(conn: sqlite3.Connection) -> tuple[dict[str, Any], dict[str, Any] | None]:
            test = queries.find_test(conn, nodeid, suite)
            return queries.test_history(conn, test, TEST_RESULTS), triage.streak(conn, test["id"])

        answer = self._read(question)
        if answer is None:
            return
        data, streak = answer
        s = data["summary"]
        outcomes = ", ".join(f"{n} {outcome}" for outcome, n in s["outcomes"].items())
        head = Text(f"{data['suite']}: {data['nodeid']}\n", style="bold")
        head.append(
            f"{s['results']} results in {s['iterations']} iterations of {s['runs']} runs: "
            f"{outcomes or 'none'}; duration p50 {_secs(s['p50'])} p95 {_secs(s['p95'])}"
            f" max {_secs(s['max'])}"
        )
        line = triage.describe_streak(streak)
        if line:
            head.append(f"\n{line}", style="bold red")
        self.query_one("#test-head", Static).update(head)
        table = self.query_one("#history-test", DataTable)
        table.clear(columns=True)
        table.add_columns(
            "iter", "started", "revision", "phase", "outcome", "took", "try", "message"
        )
        for i, row in enumerate(data["results"]):
            table.add_row(
                row["iteration"],
                _when(row["started_at"]),
                Text(str(row["revision"] or "")[:12]),
                Text(row["phase"] or ""),
                queries.shown_outcome(row),
                _secs(row["duration"]),
                str(row["attempt"]),
                Text(_first_line(row["message"])[:100]),
                key=str(i),
            )
        table.border_title = f"newest {len(data['results'])} results"
        self.action_tab("test")

    # ------------------------------------------------------------------ keys

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # the dashboard under this screen must not see it
        table_id = event.data_table.id or ""
        key = event.row_key.value or ""
        if table_id == "history-runs":
            self.show_iterations(int(key))
            self.query_one("#history-iterations", DataTable).focus()
        elif table_id in ("history-flaky", "history-slowest"):
            which = table_id.removeprefix("history-")
            if key in self._tests[which]:
                self.show_test(*self._tests[which][key])

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """The keys go to the tab's first table: Enter acts on what is shown."""
        self._focus_tab(event.pane)

    def _focus_tab(self, pane: TabPane | None) -> None:
        if pane is not None:
            pane.query(DataTable).first().focus()

    def action_reload(self) -> None:
        self.load()

    def action_tab(self, name: str) -> None:
        tabs = self.query_one(TabbedContent)
        tabs.active = name
        self._focus_tab(tabs.get_pane(name))

    def action_close(self) -> None:
        self.dismiss(None)


class HistoryApp(App[None]):
    """``netra-supervisor history browse``: the history screen on its own, read-only.
    Leaving the screen (Esc, ``h``, ``q``) leaves the app."""

    TITLE = "netra-supervisor history"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("q,ctrl+c", "quit", "Quit", priority=True)]

    def __init__(self, db_path: str | Path, *, run: int | None = None) -> None:
        super().__init__()
        self.db_path = db_path
        self.first_run = run

    def on_mount(self) -> None:
        self.push_screen(HistoryScreen(self.db_path, run=self.first_run), lambda _: self.exit())


def browse(db_path: str | Path, *, run: int | None = None, mouse: bool = True) -> int:
    """Run ``HistoryApp`` until the user leaves; the exit code (0)."""
    HistoryApp(db_path, run=run).run(mouse=mouse)
    return 0
