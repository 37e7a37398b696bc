"""The watchdog's view: every test in flight, its elapsed time and its countdown.

Rows are reconciled by key (suite + nodeid) on every refresh, so the cursor (the test
``k`` would kill) stays on its test while others come and go.
"""

from __future__ import annotations

from rich.text import Text
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from supervisor.core.model import RunningTest

WARN_SHARE = 0.5  # less than half the deadline left: warning colour
ERROR_SHARE = 0.2  # less than a fifth left (or 5 s): error colour


def row_key(test: RunningTest) -> str:
    return f"{test.suite}\x00{test.nodeid}"


def countdown(test: RunningTest, now: float, killing: bool = False) -> Text:
    """Seconds left before the watchdog calls the test hung, coloured by urgency."""
    if killing:
        return Text("killing…", style="bold red")
    if test.deadline is None:
        return Text("-", style="dim")
    left = test.deadline - (now - test.started)
    if left <= 0:
        return Text("dumping…", style="bold red reverse")
    style = ""
    if left <= max(5.0, test.deadline * ERROR_SHARE):
        style = "bold red"
    elif left <= test.deadline * WARN_SHARE:
        style = "yellow"
    return Text(f"{left:5.1f}s", style=style)


class RunningPane(DataTable):
    """One row per test in flight (one per xdist worker).

    The ``worker`` column is shown only while a test in flight names one (xdist): a
    plain pytest run has one process, and at 80 columns those six cells are the test
    name's.
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self._tests: dict[str, RunningTest] = {}
        self._workers = False
        self._add_columns()

    def _add_columns(self) -> None:
        if self._workers:
            self.add_column("worker", key="worker", width=6)
        self.add_column("elapsed", key="elapsed", width=7)
        self.add_column("left", key="left", width=9)
        self.add_column("test", key="test")

    def selected(self) -> RunningTest | None:
        if not self._tests or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        return self._tests.get(key or "")

    def show(self, running: tuple[RunningTest, ...], now: float, killing=lambda t: False) -> None:
        wanted = {row_key(t): t for t in sorted(running, key=lambda t: (t.worker, t.started))}
        workers = any(t.worker for t in running)
        if wanted and workers != self._workers:  # xdist came or went: rebuild, keep the cursor
            chosen = self.selected()
            self._workers = workers
            self.clear(columns=True)
            self._tests.clear()
            self._add_columns()
            self._fill(wanted, now, killing)
            if chosen is not None and row_key(chosen) in self._tests:
                self.move_cursor(row=self.get_row_index(row_key(chosen)))
            return
        for key in [k for k in self._tests if k not in wanted]:
            self.remove_row(key)
            del self._tests[key]
        self._fill(wanted, now, killing)

    def _fill(self, wanted: dict[str, RunningTest], now: float, killing) -> None:
        for key, test in wanted.items():
            elapsed = f"{now - test.started:6.1f}s"
            left = countdown(test, now, killing(test))
            if key in self._tests:
                self.update_cell(key, "elapsed", elapsed)
                self.update_cell(key, "left", left)
            else:
                # Text, not str: a DataTable parses str cells as markup, and node ids
                # hold brackets (parametrize ids such as [/api/items?limit=3])
                cells: tuple[str | Text, ...] = (elapsed, left, Text(test.nodeid))
                if self._workers:
                    cells = (Text(test.worker or "-"), *cells)
                self.add_row(*cells, key=key)
            self._tests[key] = test
