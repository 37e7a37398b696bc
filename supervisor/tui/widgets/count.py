"""The count toward the target in large digits, with discovered/executed and the best."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits, Static

from supervisor.core.model import ModelView, counted_phases
from supervisor.core.quarantine import add_counts, quarantine_text

_SLASH = "  ╱\n ╱ \n╱  "


def totals(view: ModelView) -> tuple[int, int, int]:
    """(passing, discovered, executed) of the current iteration."""
    passing = discovered = executed = 0
    for phase in counted_phases(view.phases):
        passing += phase.counts.get("passed", 0)
        discovered += phase.discovered
        executed += phase.done
    return passing, discovered, executed


class CountPane(Vertical):
    """``passing / target`` for the current iteration."""

    def compose(self) -> ComposeResult:
        # held, not queried per refresh (see TrendPane.compose)
        self._passing = Digits("0", id="passing")
        self._target = Digits("0", id="target")
        self._info = Static("", id="count-info")
        with Horizontal(id="count-digits"):
            yield self._passing
            yield Static(_SLASH, id="slash")
            yield self._target
        yield self._info

    _last: tuple = ()

    def show(self, view: ModelView) -> None:
        passing, discovered, executed = totals(view)
        apart: dict[str, int] = {}
        for phase in counted_phases(view.phases):
            add_counts(apart, phase.quarantined)
        quarantined = quarantine_text(apart)
        key = (passing, discovered, executed, view.target, len(view.iterations), quarantined)
        if key == self._last:
            return  # unchanged: no repaint
        self._last = key
        self._passing.update(str(passing))
        self._target.update(str(view.target or discovered))
        best = max(view.iterations, key=lambda it: it.counts.get("passed", 0), default=None)
        best_text = (
            f"best: iteration {best.seq} ({best.counts.get('passed', 0)})" if best else "best: -"
        )
        info = f"discovered {discovered} · executed {executed} · {best_text}"
        if quarantined:  # counted apart: never in the passing count or a gate
            info += f" · {quarantined}"
        self._info.update(info)
