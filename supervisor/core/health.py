"""Wait until a fresh deploy answers its health URL, with backoff and a deadline.

Any deploy backend gets this for free: the loop calls it after a successful deploy
when ``[deploy] health_url`` is set, so no test runs against a backend still booting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from supervisor.core.backoff import Backoff

if TYPE_CHECKING:
    import tenacity

#: 0.2 s doubling to 5 s, with jitter; the run's stop Event ends a wait at once.
HEALTH_BACKOFF = Backoff(first=0.2, cap=5.0, jitter=0.1)

_STOPPED = "stopped"


def wait_healthy(
    url: str,
    timeout: float,
    stop: threading.Event,
    progress: Callable[[str], None],
    report_every: float = 5.0,
    backoff: Backoff = HEALTH_BACKOFF,
) -> tuple[bool, str]:
    """Poll ``url`` until it answers 2xx, at most ``timeout`` seconds; (ok, message).

    A progress line goes to ``progress`` every ``report_every`` seconds of waiting;
    setting ``stop`` ends a wait at once.
    """
    import httpx  # imported here: only runs that deploy pay for it
    import tenacity

    started = time.monotonic()
    last_report = started

    def probe(client: httpx.Client) -> str | None:
        """None when healthy, else what is wrong."""
        if stop.is_set():
            return _STOPPED
        try:
            response = client.get(url)
        except httpx.HTTPError as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}"

    def report(state: tenacity.RetryCallState) -> None:
        nonlocal last_report
        now = time.monotonic()
        if now - last_report >= report_every:
            last_report = now
            problem = state.outcome.result() if state.outcome else "no answer yet"
            progress(f"waiting for {url}: {now - started:.0f}s ({problem})")

    retrying = backoff.retrying(
        tenacity.retry_if_result(lambda problem: problem is not None),
        deadline=timeout,
        wake=stop,
        stop_when_woken=True,
        before_sleep=report,
        give_up=lambda state: state.outcome.result() if state.outcome else "no answer yet",
    )
    with httpx.Client(timeout=5.0, follow_redirects=True) as client:
        problem = retrying(probe, client)
    if problem is None:
        return True, f"healthy after {time.monotonic() - started:.1f}s"
    if stop.is_set():
        return False, "interrupted while waiting for the health check"
    return False, f"not healthy after {timeout:g}s ({url}: {problem})"
