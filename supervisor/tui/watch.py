"""``netra-supervisor watch``: the dashboard of a run, from its history database.

The same panes as the live view (:class:`~supervisor.tui.app.DashboardApp`) over a
:class:`~supervisor.store.follow.FollowedRun`: read-only, in any terminal, while the
run goes on in another process (headless or not) or after it ended. No key acts on
the run: pause, next and kill belong to the process that drives it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from textual.binding import Binding

from supervisor.exitcodes import ExitCode
from supervisor.store.follow import FollowedRun, WatchError
from supervisor.tui.app import DashboardApp

#: The watcher needs no 10 Hz: the writer commits a few times a second.
WATCH_REFRESH = 0.25

WATCH_KEYS = (
    ("q", "leave (the run goes on; nothing here acts on it)"),
    ("[ ]", "previous / next iteration (] past the last follows the run again)"),
    ("f", "focus the failures; Enter: full report, Esc: back"),
    ("tab", "move between running tests and failures"),
    ("h", "history: runs, flakiest, slowest, a test's results"),
    ("?", "this help"),
)


class WatchApp(DashboardApp):
    """A read-only view of one run of the history; exits with ``"left"``."""

    BINDINGS = [
        Binding("q", "leave", "Quit"),
        Binding("ctrl+c", "leave", "Quit", show=False, priority=True),
        Binding("left_square_bracket", "iteration(-1)", "Prev iteration"),
        Binding("right_square_bracket", "iteration(1)", "Next iteration"),
        Binding("f", "focus_failures", "Failures"),
        Binding("h", "history", "History", show=False),  # in the help (room at 80 cols)
        Binding("question_mark", "help", "Help"),
    ]
    HELP_KEYS = WATCH_KEYS

    def __init__(
        self,
        source: FollowedRun,
        clock: Callable[[], float] = time.monotonic,
        refresh_every: float = WATCH_REFRESH,
    ) -> None:
        super().__init__(source, source.path, clock, refresh_every=refresh_every)
        self.followed = source

    def on_mount(self) -> None:
        super().on_mount()
        self.title = f"netra-supervisor · watching run {self.followed.run_id}"

    def run_finished(self) -> bool:
        return self.followed.finished

    def action_leave(self) -> None:
        self.exit("left")

    def action_iteration(self, by: int) -> None:
        shown = self.followed.step(by)
        if shown is None:
            self.notify("no iteration yet")
            return
        following = self.followed.pinned is None
        self.notify(f"iteration {shown}" + (" (following the run)" if following else ""))
        self.refresh_view()


def watch_command(db: Path, run_id: int | None, *, mouse: bool = True) -> int:
    """``watch [RUN] [--db PATH]``: 0 when the person leaves; 2 for a missing run."""
    try:
        source = FollowedRun(db, run_id)
    except WatchError as exc:
        print(f"netra-supervisor: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        WatchApp(source).run(mouse=mouse)
    finally:
        source.close()
    return ExitCode.OK
