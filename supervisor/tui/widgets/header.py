"""Header: run, iteration, deploy state, elapsed and remaining budget, stop condition."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from supervisor.config import format_duration
from supervisor.core.changes import format_changes
from supervisor.core.eta import format_eta
from supervisor.core.model import ModelView

_DEPLOY_STYLE = {
    "deploying": "yellow",
    "health-check": "yellow",
    "healthy": "green",
    "skipped": "dim",
    "failed": "bold red",
}


def stop_condition(view: ModelView) -> str:
    """``until`` in words, with the iteration and time limits."""
    until = {
        "all-pass": "until all pass",
        "once": "one iteration",
        "target": f"until {view.target} pass",
    }.get(view.until, view.until or "-")
    parts = [until]
    if view.until != "once" and view.max_iterations:
        parts.append(f"max {view.max_iterations} iter")
    if view.max_duration is not None and view.until != "once":
        parts.append(f"max {format_duration(view.max_duration)}")
    return " · ".join(parts)


class RunHeader(Static):
    """Two lines; re-rendered only when the text changes (elapsed ticks per second).

    Each line is cut with an ellipsis, never wrapped (``app.tcss``): a wrapped first
    line pushed the second off the header. So what a person must see comes first: the
    run's state and its key (FINISHED · exit 1  q leaves) sit right after the run id,
    and why it stopped opens the second line; the iteration's details may be cut.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__("", **kwargs)
        self._last = ""

    def show(
        self,
        view: ModelView,
        now: float,
        *,
        paused: bool = False,
        waiting: bool = False,
        finished: bool = False,
    ) -> None:
        line1 = Text()
        line1.append(" netra-supervisor ", style="bold reverse")
        line1.append(f" run {view.run_id} ", style="bold")
        if finished:
            code = "" if view.exit_code is None else f" · exit {view.exit_code}"
            line1.append(f" FINISHED{code} ", style="bold reverse green")
            line1.append(" q leaves ")
        elif paused:
            line1.append(" PAUSED ", style="bold reverse yellow")
            line1.append(" p resumes ")
        elif waiting:
            line1.append(" WAITING ", style="bold reverse cyan")
            line1.append(" n starts the next iteration ")
        of = f"/{view.max_iterations}" if view.max_iterations and view.until != "once" else ""
        line1.append(f"· iteration {view.iteration or '-'}{of} ")
        changes = format_changes(view.changes)
        if changes:  # the iteration so far: 2 new · 1 still failing · 3 fixed · 1 flaky
            line1.append(f"({changes}) ", style="bold")
        if view.deploy_state:
            rev = f" {view.deploy_revision[:12]}" if view.deploy_revision else ""
            line1.append("· deploy")
            line1.append(rev)
            line1.append(" ")
            line1.append(view.deploy_state, style=_DEPLOY_STYLE.get(view.deploy_state, ""))
            line1.append(" ")
        end = view.finished if view.finished is not None else now
        elapsed = max(0.0, end - view.started)
        line2 = Text(" ")
        if finished and view.stop_reason:
            line2.append(f"stopped: {view.stop_reason}", style="bold")
            line2.append(" · ")
        line2.append(f"elapsed {format_duration(elapsed)}")
        if view.eta is not None and not finished:
            line2.append(f" · iteration ETA {format_eta(view.eta)}", style="bold")
        if view.max_duration is not None and not finished:
            left = max(0.0, view.max_duration - elapsed)
            line2.append(f" · budget left {format_duration(left)}")
        line2.append(f" · {stop_condition(view)}")
        if view.plugin_errors:
            line2.append(f" · {view.plugin_errors} plugin error(s)", style="red")
        text = Text("\n", no_wrap=True, overflow="ellipsis").join([line1, line2])
        key = text.markup
        if key != self._last:
            self._last = key
            self.update(text)
