"""One row per phase: progress bar, counts, gate and whether it held, impact label."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from supervisor.core.model import PhaseState

BAR = 12


def progress_bar(done: int, total: int, width: int = BAR) -> Text:
    if total <= 0:
        return Text("·" * width, style="dim")
    filled = min(width, round(width * done / total))
    return Text("█" * filled, style="green") + Text("░" * (width - filled), style="dim")


def gate_text(phase: PhaseState) -> Text:
    if phase.gate_held is None:
        return Text(f"{phase.gate} …", style="dim")
    if phase.gate_held:
        return Text(f"{phase.gate} held", style="green")
    return Text(f"{phase.gate} FAILED", style="bold red")


def _cell(text: str, width: int, style: str = "", right: bool = False) -> Text:
    text = text[:width]
    return Text(text.rjust(width) if right else text.ljust(width), style=style)


class PhasesPane(Static):
    """The phases of the current iteration; the one running stands out.

    Plain ``Text`` rows with fixed columns (a Rich ``Table`` measured every row at
    every refresh, which was the app's costliest render under a stream of results).
    """

    _last: tuple = ()

    def show(self, phases: tuple[PhaseState, ...]) -> None:
        key = tuple(
            (p.seq, p.name, p.status, p.gate_held, p.discovered, tuple(p.counts.values()))
            for p in phases
        )
        if key == self._last:
            return  # unchanged: no repaint
        self._last = key
        if not phases:
            self.update(Text("no phase started yet", style="dim"))
            return
        name_width = min(24, max(len(p.name) for p in phases))
        totals = [max(p.discovered, p.done) for p in phases]
        count_width = max(len(f"{p.done}/{t}") for p, t in zip(phases, totals))
        lines = []
        for phase, total in zip(phases, totals):
            c = phase.counts
            active = phase.status == "running"
            failed = c.get("failed", 0) + c.get("error", 0)
            hung, crashed = c.get("hung", 0), c.get("crashed", 0)
            mark = "▶" if active else ("✔" if phase.status == "passed" else "✖")
            line = Text.assemble(
                f"{mark} ",
                _cell(phase.name, name_width),
                " ",
                progress_bar(phase.done, total),
                " ",
                _cell(f"{phase.done}/{total}", count_width, right=True),
                " ",
                Text(f"✔{c.get('passed', 0)}", style="green"),
                " ",
                Text(f"✖{failed}", style="red" if failed else "dim"),
                " ",
                Text(f"⏱{hung}", style="magenta" if hung else "dim"),
                " ",
                Text(f"☠{crashed}", style="red" if crashed else "dim"),
                " ",
                Text(f"↷{c.get('skipped', 0)}", style="dim"),
                " ",
                gate_text(phase),
                " ",
                Text(phase.impact, style="italic"),
                no_wrap=True,
                overflow="ellipsis",
            )
            if active:
                line.stylize("bold")
            lines.append(line)
        self.update(Text("\n", no_wrap=True, overflow="ellipsis").join(lines))
