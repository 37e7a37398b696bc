"""Failed, hung and crashed tests of this iteration, newest first, grouped by message;
and the flaky ones (passed on a retry after they did not pass: ``retries``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import DataTable

from supervisor.core.events import FLAKY, TestResult
from supervisor.core.retries import count_key

MAX_GROUPS = 200  # rows shown; the rest are in the history database
MAX_PER_GROUP = 200
_OUTCOME_STYLE = {
    "failed": "red",
    "error": "red",
    "hung": "magenta",
    "crashed": "bold red",
    FLAKY: "yellow",
}


def group_key(result: TestResult) -> str:
    first = (result.message or "").strip().splitlines()
    return f"{count_key(result)}: {first[0] if first else '(no message)'}"


@dataclass
class FailureGroup:
    key: str
    outcome: str
    message: str
    results: list[TestResult] = field(default_factory=list)  # newest first
    count: int = 0
    #: new / still: how many of the group's results are which (``TestResult.change``)
    changes: dict[str, int] = field(default_factory=dict)

    def change_text(self) -> str:
        """``new``, ``still``, or ``2 new 1 still`` for a mixed group."""
        if len(self.changes) == 1:
            return next(iter(self.changes))
        return " ".join(f"{n} {k}" for k, n in sorted(self.changes.items()))


class FailureGroups:
    """Groups by identical outcome + first message line; the newest group first."""

    def __init__(self) -> None:
        self.groups: dict[str, FailureGroup] = {}  # insertion order: oldest first

    def clear(self) -> None:
        self.groups.clear()

    def add_newest_first(self, results: tuple[TestResult, ...]) -> None:
        for result in reversed(results):  # oldest of the delta first
            key = group_key(result)
            group = self.groups.pop(key, None)
            if group is None:
                first = (result.message or "").strip().splitlines()
                group = FailureGroup(key, count_key(result), first[0] if first else "")
            group.results.insert(0, result)
            del group.results[MAX_PER_GROUP:]
            group.count += 1
            if result.change:
                group.changes[result.change] = group.changes.get(result.change, 0) + 1
            self.groups[key] = group  # re-inserted: now the newest
        while len(self.groups) > MAX_GROUPS * 2:
            self.groups.pop(next(iter(self.groups)))

    def newest_first(self) -> list[FailureGroup]:
        return list(reversed(self.groups.values()))

    @property
    def total(self) -> int:
        return sum(g.count for g in self.groups.values())

    def change_total(self, change: str) -> int:
        return sum(g.changes.get(change, 0) for g in self.groups.values())


def _message_cell(group: FailureGroup, message: str) -> Text:
    """The message (``Text``: messages are not markup), after the group's change:
    ``new · AssertionError: …``, ``still · …``, ``2 new 1 still · …``."""
    cell = Text()
    if group.changes:
        cell.append(group.change_text(), style="bold" if "new" in group.changes else "dim")
        cell.append(" · ")
    cell.append(message)
    return cell


class FailuresPane(DataTable):
    """Enter on a row opens the full report of that group (``FailureScreen``).

    Rows are keyed by position (row ``i`` shows the ``i``-th newest group) and only
    cells whose text changed are updated: under a stream of failures the table is
    patched in place instead of being cleared and rebuilt a few times a second.
    """

    def __init__(self, redact: Callable[[str], str] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.redact = redact or (lambda s: s)
        self.model = FailureGroups()
        self._shown: list[FailureGroup] = []
        self._cells: list[tuple] = []

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_column("×", key="n", width=3)
        self.add_column("outcome", key="outcome", width=7)
        self.add_column("message", key="message")
        self.add_column("latest test", key="test")

    def selected(self) -> FailureGroup | None:
        if 0 <= self.cursor_row < min(self.row_count, len(self._shown)):
            return self._shown[self.cursor_row]
        return None

    def show(self, new: tuple[TestResult, ...], reset: bool) -> None:
        if reset:
            self.model.clear()
        if not new and not reset:
            return
        self.model.add_newest_first(new)
        groups = self.model.newest_first()[:MAX_GROUPS]
        if len(groups) < self.row_count:  # a new iteration: start over
            self.clear()
            self._cells = []
        for i, group in enumerate(groups):
            cells = (
                str(group.count),
                Text(group.outcome, style=_OUTCOME_STYLE.get(group.outcome, "")),
                _message_cell(group, self.redact(group.message)),
                Text(group.results[0].nodeid),
            )
            if i >= len(self._cells):
                self.add_row(*cells, key=f"r{i}")
                self._cells.append(cells)
                continue
            old = self._cells[i]
            for column, before, after in zip(("n", "outcome", "message", "test"), old, cells):
                if before != after:
                    self.update_cell(f"r{i}", column, after)
            self._cells[i] = cells
        self._shown = groups
        flaky = sum(g.count for g in self.model.groups.values() if g.outcome == FLAKY)
        fresh, still = self.model.change_total("new"), self.model.change_total("still")
        changes = f" · {fresh} new · {still} still" if fresh or still else ""
        shown = f"{self.model.total - flaky} not passing{changes}"
        self.border_subtitle = shown + (f" · {flaky} flaky" if flaky else "")
