"""One row per phase: progress bar, counts, gate and whether it held, impact label."""

from __future__ import annotations

from rich.table import Table
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


class PhasesPane(Static):
    """The phases of the current iteration; the one running stands out."""

    def show(self, phases: tuple[PhaseState, ...]) -> None:
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(width=1)
        table.add_column(ratio=2, no_wrap=True, overflow="ellipsis")  # name
        table.add_column(width=BAR)
        table.add_column(justify="right", no_wrap=True)  # done/total
        table.add_column(justify="right", no_wrap=True)  # ✔
        table.add_column(justify="right", no_wrap=True)  # ✖
        table.add_column(justify="right", no_wrap=True)  # ⏱
        table.add_column(justify="right", no_wrap=True)  # ☠
        table.add_column(justify="right", no_wrap=True)  # ↷
        table.add_column(no_wrap=True)  # gate
        table.add_column(ratio=1, no_wrap=True, overflow="ellipsis")  # impact
        if not phases:
            self.update(Text("no phase started yet", style="dim"))
            return
        for phase in phases:
            c = phase.counts
            active = phase.status == "running"
            failed = c.get("failed", 0) + c.get("error", 0)
            total = max(phase.discovered, phase.done)
            table.add_row(
                "▶" if active else ("✔" if phase.status == "passed" else "✖"),
                phase.name,
                progress_bar(phase.done, total),
                f"{phase.done}/{total}",
                Text(f"✔{c.get('passed', 0)}", style="green"),
                Text(f"✖{failed}", style="red" if failed else "dim"),
                Text(f"⏱{c.get('hung', 0)}", style="magenta" if c.get("hung") else "dim"),
                Text(f"☠{c.get('crashed', 0)}", style="red" if c.get("crashed") else "dim"),
                Text(f"↷{c.get('skipped', 0)}", style="dim"),
                gate_text(phase),
                Text(phase.impact, style="italic"),
                style="bold reverse" if active else None,
            )
        self.update(table)
