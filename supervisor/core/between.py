"""What happens between two iterations: go on, wait an interval, wait for a person,
or wait until the code under test changes.

Every wait returns early when the run is stopped or when someone asks for the next
iteration now (Enter on a terminal, ``kill -USR1``, the TUI's ``n`` key).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

#: Folders never worth watching for changes (caches, our own output, virtualenvs).
_IGNORED_DIRS = {".git", ".netra", "__pycache__", ".venv", "venv", "node_modules", ".tox"}
_MAX_WATCHED_FILES = 50_000


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


#: git HEADs (one per path), file count, newest mtime, total size
Fingerprint = tuple[tuple[str | None, ...], int, float, int]


def tree_fingerprint(paths: list[Path]) -> Fingerprint:
    """A cheap summary (git HEADs, file count, newest mtime, total size) of ``paths``."""
    heads = tuple(git_head(p if p.is_dir() else p.parent) for p in paths)
    count, newest, size = 0, 0.0, 0
    for root in paths:
        if root.is_file():
            st = root.stat()
            count, newest, size = count + 1, max(newest, st.st_mtime), size + st.st_size
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in _IGNORED_DIRS]
            for name in filenames:
                try:
                    st = os.stat(os.path.join(dirpath, name))
                except OSError:
                    continue
                count += 1
                newest = max(newest, st.st_mtime)
                size += st.st_size
                if count >= _MAX_WATCHED_FILES:
                    break
    return heads, count, newest, size


class Between:
    """Waits between iterations according to ``[run] between``."""

    def __init__(
        self,
        mode: str,
        interval: float,
        watch: list[Path],
        stop: threading.Event,
        announce: Callable[[str], None],
        poll: float = 1.0,
    ) -> None:
        self.mode = mode
        self.interval = interval
        self.watch = watch
        self.stop = stop
        self.next_now = threading.Event()  # set by Enter, SIGUSR1 or the TUI
        self.announce = announce
        self.poll = poll
        self._fingerprint: Fingerprint | None = None

    def iteration_started(self) -> None:
        """Remember what the watched tree looked like when the iteration began."""
        self.next_now.clear()
        if self.mode == "wait-for-change":
            self._fingerprint = tree_fingerprint(self.watch)

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
            self.announce(
                "waiting for a change under "
                + ", ".join(str(p) for p in self.watch)
                + " (git HEAD or files; Enter or kill -USR1 to go now)"
            )
            before = self._fingerprint
            self._wait_for(lambda: tree_fingerprint(self.watch) != before, timeout=None)
        return not self.stop.is_set()

    def _wait_for(self, changed: Callable[[], bool], timeout: float | None) -> None:
        waited = 0.0
        while not self.stop.is_set() and not self.next_now.is_set():
            if timeout is not None and waited >= timeout:
                return
            step = self.poll if timeout is None else min(self.poll, timeout - waited)
            if self.next_now.wait(step):
                return
            waited += step
            if changed():
                return
