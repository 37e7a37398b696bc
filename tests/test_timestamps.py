"""The history's timestamp text (``events.utc_at``) is made without ``datetime`` on
its hot path: it must stay exactly what ``datetime`` gives."""

from __future__ import annotations

import random
import time
from datetime import datetime, timezone

from supervisor.core.events import utc_at, utc_now


def _by_datetime(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")


def test_utc_at_is_what_datetime_writes_for_any_reading():
    rng = random.Random(18)
    now = time.time()
    readings = [now + rng.uniform(-3e8, 3e8) for _ in range(20_000)]
    readings += [1_764_575_000 + k / 1e6 for k in range(0, 1_000_000, 97)]  # every ms
    # microseconds that round into the next millisecond, second, minute, year
    readings += [1.9999995, 1.0000005, 1_764_575_000.9999995, 1_764_575_000.0004995]
    readings += [1_767_225_599.9999996, 0.0, 1e-7, 59.9999999, -0.5, -1_000.25]
    assert [utc_at(w) for w in readings] == [_by_datetime(w) for w in readings]


def test_utc_now_is_now_in_the_same_format():
    before = _by_datetime(time.time())
    text = utc_now()
    after = _by_datetime(time.time())
    assert before <= text <= after
    assert len(text) == len("2026-12-01T08:23:55.827+00:00") and text.endswith("+00:00")
