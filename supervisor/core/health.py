"""Wait until a fresh deploy answers its health URL, with backoff and a deadline.

Any deploy backend gets this for free: the loop calls it after a successful deploy
when ``[deploy] health_url`` is set, so no test runs against a backend still booting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_healthy(
    url: str,
    timeout: float,
    stop: threading.Event,
    progress: Callable[[str], None],
    report_every: float = 5.0,
) -> tuple[bool, str]:
    """Poll ``url`` until it answers 2xx; (ok, message). Backoff 0.2 s doubling to 5 s."""
    import httpx  # imported here: only runs that deploy pay for it

    started = time.monotonic()
    delay, last_report, last_problem = 0.2, started, "no answer yet"
    with httpx.Client(timeout=5.0, follow_redirects=True) as client:
        while not stop.is_set():
            try:
                response = client.get(url)
                if 200 <= response.status_code < 300:
                    return True, f"healthy after {time.monotonic() - started:.1f}s"
                last_problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last_problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            elapsed = time.monotonic() - started
            if elapsed >= timeout:
                return False, f"not healthy after {timeout:g}s ({url}: {last_problem})"
            if time.monotonic() - last_report >= report_every:
                last_report = time.monotonic()
                progress(f"waiting for {url}: {elapsed:.0f}s ({last_problem})")
            stop.wait(min(delay, max(0.0, timeout - elapsed)))
            delay = min(delay * 2, 5.0)
    return False, "interrupted while waiting for the health check"
