"""One row per phase: progress bar, counts, gate and whether it held, impact label.

A phase that did not run some of its tests says how many and why; the verify pass
(phase 0) gets a second line with the verdict of each test it re-ran.
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from supervisor.core.eta import format_eta
from supervisor.core.events import FAILING_OUTCOMES, FLAKY, VERIFY_SEQ
from supervisor.core.model import PhaseState
from supervisor.core.quarantine import quarantine_text

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


def count_text(phase: PhaseState) -> str:
    """``done/total``; before its suites collected, ``0/200 expected``: the count they
    had last time stands in for the one they will collect."""
    total = max(phase.discovered + phase.expected, phase.done)
    return f"{phase.done}/{total} expected" if phase.expected else f"{phase.done}/{total}"


def quarantined_text(phase: PhaseState) -> Text:
    """``3 quarantined: 2 failed, 1 passed`` (never part of the gate), or nothing."""
    text = quarantine_text(phase.quarantined)
    return Text(f"{text} ", style="yellow") if text else Text("")


def not_run_text(phase: PhaseState) -> Text:
    """``24 not run: the gate can no longer hold``, or nothing."""
    if not phase.not_run and not phase.note:
        return Text("")
    return Text(f"{phase.not_run} not run: {phase.note} ", style="yellow")


def _short(nodeid: str) -> str:
    """The test's name without its file (``test_x[a]``, ``Class::test_y``)."""
    return nodeid.split("::", 1)[-1]


def rerun_line(phase: PhaseState) -> Text:
    """The verify pass's verdicts: what still fails (with how, when not ``failed``),
    then what passes now; one line, cut at the pane's edge."""
    failing = [(n, o) for n, o in phase.rerun.items() if o in FAILING_OUTCOMES]
    passing = [(n, o) for n, o in phase.rerun.items() if o not in FAILING_OUTCOMES]
    line = Text("    ", no_wrap=True, overflow="ellipsis")
    if failing:
        names = ", ".join(_short(n) + ("" if o == "failed" else f" ({o})") for n, o in failing)
        line.append(f"✖ {len(failing)} still failing: {names}", style="red")
    if passing:
        line.append(" · " if failing else "")
        names = ", ".join(_short(n) + (" (flaky)" if o == FLAKY else "") for n, o in passing)
        line.append(f"✔ {len(passing)} now pass: {names}", style="green")
    if not failing and not passing:
        line.append("no result yet", style="dim")
    return line


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
        etas = [f"ETA {format_eta(p.eta)}" if p.eta is not None else "" for p in phases]
        key = tuple(
            (p.seq, p.name, p.status, p.gate_held, p.discovered, p.expected, eta)
            + tuple(p.counts.values())
            + (p.not_run, p.note, tuple(p.rerun.items()), tuple(p.quarantined.items()))
            for p, eta in zip(phases, etas)
        )
        if key == self._last:
            return  # unchanged: no repaint
        self._last = key
        if not phases:
            self.update(Text("no phase started yet", style="dim"))
            return
        name_width = min(24, max(len(p.name) for p in phases))
        counts = [count_text(p) for p in phases]
        count_width = max(len(text) for text in counts)
        eta_width = max(len(eta) for eta in etas)
        lines = []
        for phase, count, eta in zip(phases, counts, etas):
            c = phase.counts
            active = phase.status == "running"
            failed = c.get("failed", 0) + c.get("error", 0)
            hung, crashed = c.get("hung", 0), c.get("crashed", 0)
            mark = "▶" if active else ("✔" if phase.status == "passed" else "✖")
            line = Text.assemble(
                f"{mark} ",
                _cell(phase.name, name_width),
                " ",
                progress_bar(phase.done, max(phase.discovered + phase.expected, phase.done)),
                " ",
                _cell(count, count_width, right=True),
                " ",
                *((_cell(eta, eta_width, style="cyan"), " ") if eta_width else ()),
                Text(f"✔{c.get('passed', 0)}", style="green"),
                " ",
                *((Text(f"≈{c[FLAKY]} flaky", style="yellow"), " ") if c.get(FLAKY) else ()),
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
                quarantined_text(phase),
                not_run_text(phase),
                Text(phase.impact, style="italic"),
                no_wrap=True,
                overflow="ellipsis",
            )
            if active:
                line.stylize("bold")
            lines.append(line)
            if phase.seq == VERIFY_SEQ:
                lines.append(rerun_line(phase))
        self.update(Text("\n", no_wrap=True, overflow="ellipsis").join(lines))
