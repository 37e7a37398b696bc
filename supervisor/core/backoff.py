"""How the supervisor waits between retries: exponential backoff with jitter and a cap.

Each retry policy is stated once, where it is used, as a :class:`Backoff` (plain data:
the health check in :mod:`supervisor.core.health`, the webhook sink, the history
writer); tenacity runs it. tenacity rather than stamina (the friendlier wrapper over
it): stamina's synchronous retries sleep with ``time.sleep``, and a stopped run must
not sit in a 5 s health-check wait. tenacity takes the sleep as a parameter (an
``Event.wait`` here), and its wait strategy can be asked for a single delay, which the
history writer needs: its thread keeps taking events while SQLite refuses writes, so
it schedules its next attempt itself.

tenacity is imported only when something is retried: a run without a health URL or a
webhook, whose database answers, never loads it (tests/test_startup_imports.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import tenacity

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Wait ``first`` seconds before the first retry, twice as long before each next one,
    plus up to ``jitter`` seconds at random (so that retries from many runs do not fall
    into step), never longer than ``cap`` seconds in all."""

    first: float
    cap: float
    jitter: float
    #: Tries in all, the first one included; None: until a deadline or a stop.
    attempts: int | None = None

    def wait(self) -> tenacity.wait.wait_base:
        """The tenacity wait strategy for this policy."""
        import tenacity

        return tenacity.wait_exponential(
            multiplier=self.first, max=max(0.0, self.cap - self.jitter)
        ) + tenacity.wait_random(0, self.jitter)

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed attempts in a row (1: after the first
        one), for a loop that does its own waiting."""
        import tenacity

        state = tenacity.RetryCallState(tenacity.Retrying(), fn=None, args=(), kwargs={})
        state.attempt_number = max(1, failures)
        return float(self.wait()(state))

    def retrying(
        self,
        retry: tenacity.retry_base,
        *,
        deadline: float | None = None,
        wake: threading.Event | None = None,
        stop_when_woken: bool = False,
        before_sleep: Callable[[tenacity.RetryCallState], None] | None = None,
        give_up: Callable[[tenacity.RetryCallState], Any] | None = None,
    ) -> tenacity.Retrying:
        """A tenacity ``Retrying`` that retries what ``retry`` says under this policy.

        ``deadline``: seconds in all; the last wait is cut to end at it, and no attempt
        starts after it. ``wake``: an Event that, once set, ends every wait at once (and
        with ``stop_when_woken`` allows no further attempt). ``give_up(state)`` makes
        the value returned when retrying stops without success; without it the last
        exception is raised again (for a retried result: tenacity's RetryError).
        """
        import time

        import tenacity

        stops: list[tenacity.stop.stop_base] = []
        if self.attempts is not None:
            stops.append(tenacity.stop_after_attempt(self.attempts))
        if deadline is not None:
            stops.append(tenacity.stop_after_delay(deadline))
        if wake is not None and stop_when_woken:
            stops.append(tenacity.stop_when_event_set(wake))
        backoff = self.wait()

        def wait(state: tenacity.RetryCallState) -> float:
            seconds = float(backoff(state))
            if deadline is not None:
                seconds = min(seconds, max(0.0, deadline - (state.seconds_since_start or 0.0)))
            return seconds

        def sleep(seconds: float) -> None:
            if wake is None:
                time.sleep(seconds)
            else:
                wake.wait(seconds)

        return tenacity.Retrying(
            retry=retry,
            stop=tenacity.stop_any(*stops) if stops else tenacity.stop_never,
            wait=wait,
            sleep=sleep,
            before_sleep=before_sleep,
            retry_error_callback=give_up,
            reraise=True,
        )


def retry_after_failure(
    fn: Callable[[], T],
    failed: BaseException,
    policy: Backoff,
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
) -> T:
    """``fn`` just raised ``failed`` on its first try: call it again under ``policy``
    (that try counts, so the first retry waits the first backoff). Lets a path that
    nearly always succeeds try once without loading tenacity. Raises the last error
    when the attempts are spent."""
    import tenacity

    spent = [failed]

    def attempt() -> T:
        if spent:
            raise spent.pop()
        return fn()

    result: T = policy.retrying(tenacity.retry_if_exception_type(retry_on))(attempt)
    return result
