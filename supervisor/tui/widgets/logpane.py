"""The bounded tail of the run log; the full text is in the ``logs`` table and log files."""

from __future__ import annotations

from collections.abc import Callable

from textual.widgets import Log

from supervisor.core.events import LogLine

MAX_LINES = 500


def log_text(line: LogLine) -> str:
    at = line.at[11:19] if len(line.at) >= 19 else line.at
    level = "" if line.level == "info" else f"{line.level.upper()} "
    return f"{at} {level}{line.source}: {line.text}"


class LogPane(Log):
    def __init__(self, redact: Callable[[str], str] | None = None, **kwargs) -> None:
        super().__init__(max_lines=MAX_LINES, auto_scroll=True, **kwargs)
        self.redact = redact or (lambda s: s)

    def add(self, lines: tuple[LogLine, ...]) -> None:
        if lines:
            self.write_lines(self.redact(log_text(line)) for line in lines[-MAX_LINES:])
