"""Modal screens: the quit confirmation, the help, a failure's full report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from supervisor.core.waiting import fold_dump
from supervisor.store.evidence import ResultKey, describe
from supervisor.tui.widgets.failures import FailureGroup

KEYS = (
    ("q", "quit (asks; results are kept, running tests stop)"),
    ("p", "pause after the tests in flight / resume"),
    ("n", "next iteration now (when it waits between them)"),
    ("k", "kill the selected running test (hung, with a dump)"),
    ("f", "focus the failures; Enter: full report, Esc: back"),
    ("tab", "move between running tests and failures"),
    ("h", "history: runs, flakiest, slowest, a test's results"),
    ("?", "this help"),
)


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes, quit"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                "Quit the run?\n\nResults so far are kept in the history database;\n"
                "running tests are stopped.\n\n[b]y[/b] quit    [b]n[/b] / Escape: keep running",
                id="question",
            )

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, keys: tuple[tuple[str, str], ...] = KEYS) -> None:
        super().__init__()
        self.keys = keys  # the view's own keys (a watcher has no p, n or k)

    def compose(self) -> ComposeResult:
        text = Text("Keys\n\n", style="bold")
        for key, what in self.keys:
            text.append(f"  {key:<5}", style="bold")
            text.append(f" {what}\n")
        text.append("\nEscape closes this help.", style="dim")
        with Vertical(id="dialog"):
            yield Static(text, id="help")

    def action_close(self) -> None:
        self.dismiss(None)


class FailureScreen(Screen[None]):
    """Every test of one failure group, the newest's full report first, each with what
    the backend logged while it ran (its evidence) beside its message."""

    BINDINGS = [Binding("escape", "close", "Back")]

    def __init__(
        self,
        group: FailureGroup,
        redact: Callable[[str], str] | None = None,
        streaks: dict[tuple[str, str], str] | None = None,
        evidence: dict[ResultKey, list[dict[str, Any]]] | None = None,
    ) -> None:
        super().__init__()
        self.group = group
        self.redact = redact or (lambda s: s)
        #: (suite, nodeid) -> "failing since revision … ; last passed at …: git log A..B"
        self.streaks = streaks or {}
        #: (iteration, phase, suite, nodeid, attempt) -> evidence rows: the backend's log
        #: lines of each result's window (supervisor.store.evidence)
        self.evidence = evidence or {}

    def compose(self) -> ComposeResult:
        r = self.redact
        with VerticalScroll(id="report"):
            head = Text(f"{self.group.count} × {self.group.outcome}: ", style="bold")
            head.append(r(self.group.message))
            first = self.group.first_seen_text()
            if first:  # this signature's first sighting in the run: iteration @ revision
                head.append(f"\nfirst seen in iteration {first}", style="dim")
            yield Static(head, id="report-title")
            for result in self.group.results[:50]:
                body = Text()
                flaky = " (FLAKY: passed on a retry)" if result.flaky else ""
                style = "bold yellow" if result.flaky else "bold red"
                body.append(f"\n{result.outcome.upper()}{flaky} ", style=style)
                body.append(f"{result.suite} · {result.nodeid}\n", style="bold")
                if result.change:
                    body.append(f"{result.change} · ", style="bold")
                body.append(f"duration {result.duration:.2f}s · attempt {result.attempt}")
                if result.worker:
                    body.append(f" · worker {result.worker}")
                body.append("\n")
                streak = self.streaks.get((result.suite, result.nodeid))
                if streak:
                    body.append(streak + "\n", style="bold")
                if result.message:
                    body.append(r(result.message) + "\n")
                key = (result.iteration, result.phase, result.suite, result.nodeid, result.attempt)
                for row in self.evidence.get(key, ()):
                    body.append(
                        f"\n--- what the backend said: {r(describe(row))} ---\n", style="dim"
                    )
                    body.append(r(row["lines"]) + "\n")
                if result.longrepr:
                    body.append("\n--- report (longrepr, captured output) ---\n", style="dim")
                    body.append(r(result.longrepr) + "\n")
                if result.dump:  # folded: the history keeps it whole (history test --dump)
                    body.append("\n--- hang dump (pytest's frames folded) ---\n", style="dim")
                    body.append(r(fold_dump(result.dump)) + "\n")
                yield Static(body, classes="report-body")
        yield Footer()

    def action_close(self) -> None:
        self.dismiss(None)
