"""What a person can ask of a running loop: pause, resume, next iteration now, kill a
test, stop.

Views (the TUI's keys, a signal handler) call these methods from any thread; the loop
and the suite runners poll them at their own pace (the pytest runner once per tick),
so nobody reaches into a runner directly. Textual-free, like all of ``core``.
"""

from __future__ import annotations

import threading


class RunControl:
    """Thread-safe requests from a view to the loop and the runners."""

    def __init__(
        self,
        stop: threading.Event | None = None,
        next_now: threading.Event | None = None,
    ) -> None:
        self.stop = stop or threading.Event()
        #: the same event ``Between`` waits on (Enter, SIGUSR1, the TUI's ``n``)
        self.next_event = next_now or threading.Event()
        self._resumed = threading.Event()
        self._resumed.set()
        self._lock = threading.Lock()
        self._kills: set[tuple[str, str]] = set()
        #: set by the loop while it waits between iterations (so ``n`` means something)
        self.waiting = False

    # -- pause -----------------------------------------------------------------------
    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def pause(self) -> None:
        """Let the tests in flight finish; start no new test until :meth:`resume`."""
        self._resumed.clear()

    def resume(self) -> None:
        self._resumed.set()

    def toggle_pause(self) -> bool:
        """Pause when running, resume when paused; returns the new ``paused``."""
        if self.paused:
            self.resume()
        else:
            self.pause()
        return self.paused

    def wait_while_paused(self, poll: float = 0.2) -> bool:
        """Block while paused; False when the run was stopped meanwhile."""
        while not self._resumed.wait(poll):
            if self.stop.is_set():
                return False
        return not self.stop.is_set()

    # -- next iteration, stop ----------------------------------------------------------
    def next_now(self) -> None:
        """Start the next iteration now (``between`` = manual, an interval, or a change)."""
        self.next_event.set()

    def request_stop(self) -> None:
        """Stop the run: runners kill what runs, results so far are kept."""
        self.stop.set()
        self._resumed.set()  # a paused loop must see the stop

    # -- kill one test -----------------------------------------------------------------
    def kill(self, suite: str, nodeid: str) -> None:
        """Ask the runner of ``suite`` to treat ``nodeid`` as hung now (dump, kill)."""
        with self._lock:
            self._kills.add((suite, nodeid))

    def kill_requested(self, suite: str, nodeid: str) -> bool:
        with self._lock:
            return (suite, nodeid) in self._kills

    def take_kill(self, suite: str, nodeid: str) -> bool:
        """True once for a pending kill of this test (the runner acts on it)."""
        with self._lock:
            if (suite, nodeid) in self._kills:
                self._kills.discard((suite, nodeid))
                return True
            return False

    def kills_for(self, suite: str) -> list[str]:
        """Nodeids of ``suite`` with a pending kill request."""
        with self._lock:
            return [n for s, n in self._kills if s == suite]

    def forget_kills(self) -> None:
        """Drop requests for tests that ended before the runner saw them (new iteration)."""
        with self._lock:
            self._kills.clear()
