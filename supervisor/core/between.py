"""What happens between two iterations: go on, wait an interval, wait for a person,
or wait until the code under test changes.

Every wait returns early when the run is stopped or when someone asks for the next
iteration now (Enter on a terminal, ``kill -USR1``, the TUI's ``n`` key).
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a wait for a change starts: most runs never do
    from supervisor.core.tree_watch import TreeWatch, WatchFn


def git_head(path: Path) -> str | None:
    """The commit checked out at ``path``, or None outside a git work tree."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


class Between:
    """Waits between iterations according to ``[run] between``.

    ``wait-for-change`` watches from the first :meth:`iteration_started` until
    :meth:`close` (see :mod:`supervisor.core.tree_watch`): a change made while an
    iteration runs ends the next wait at once. ``poll`` is how often a wait looks at
    ``stop`` and at the watcher's flag (``next_now`` wakes it at once).
    """

    def __init__(
        self,
        mode: str,
        interval: float,
        watch: list[Path],
        stop: threading.Event,
        announce: Callable[[str], None],
        poll: float = 0.1,
        ignore: Sequence[Path] = (),
        watch_fn: WatchFn | None = None,
    ) -> None:
        self.mode = mode
        self.interval = interval
        self.watch = watch
        self.stop = stop
        self.next_now = threading.Event()  # set by Enter, SIGUSR1 or the TUI
        self.announce = announce
        self.poll = poll
        #: the supervisor's own output (history database, logs, sinks): never a change
        self.ignore = tuple(ignore)
        self._watch_fn = watch_fn
        self._changed = threading.Event()
        self._tree: TreeWatch | None = None

    def iteration_started(self) -> None:
        """From now on a change counts for the next wait."""
        self.next_now.clear()
        if self.mode == "wait-for-change":
            self._watch_from_now()

    def wait(self) -> bool:
        """Block until the next iteration may start; False when the run was stopped."""
        if self.mode == "immediate":
            return not self.stop.is_set()
        if self.mode == "interval":
            self.announce(f"next iteration in {self.interval:g}s (or press Enter / kill -USR1)")
            self._wait_for(lambda: False, timeout=self.interval)
        elif self.mode == "manual":
            self.announce(
                f"waiting: press Enter (or `kill -USR1 {os.getpid()}`) to start the next iteration"
            )
            self._wait_for(lambda: False, timeout=None)
        elif self.mode == "wait-for-change":
            tree = self._tree or self._watch_from_now()
            self.announce(
                f"waiting for a change under {tree.plan.describe()} ({tree.describe()};"
                " Enter or kill -USR1 to go now)"
            )
            self._wait_for(self._changed.is_set, timeout=None)
        return not self.stop.is_set()

    def close(self) -> None:
        """Stop watching and join the watcher's threads (the run is over)."""
        if self._tree is not None:
            self._tree.close()
            self._tree = None

    def __enter__(self) -> Between:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _watch_from_now(self) -> TreeWatch:
        """Forget earlier changes; (re)start the watcher when what to watch changed."""
        from supervisor.core.tree_watch import TreeWatch
        from supervisor.core.watch_plan import plan_watch

        plan = plan_watch(self.watch, self.ignore)
        tree = self._tree
        if tree is not None and tree.plan == plan:
            self._changed.clear()
            return tree
        polling = None
        if tree is not None:
            polling = tree.polling or None  # a fallback to polling holds for the run
            tree.close()
        self._changed.clear()
        self._tree = TreeWatch(
            plan,
            self._changed,
            self.announce,
            self.stop,
            watch_fn=self._watch_fn,
            force_polling=polling,
        )
        self._tree.start()
        return self._tree

    def _wait_for(self, changed: Callable[[], bool], timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self.stop.is_set() or self.next_now.is_set() or changed()):
            step = self.poll
            if deadline is not None:
                step = min(step, deadline - time.monotonic())
                if step <= 0:
                    return
            self.next_now.wait(step)
