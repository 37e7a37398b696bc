"""How long the runner lets a pytest's messages pile up after a read.

Every wake-up of the supervisor costs about the same (the read, the watchdog's
checks, a trip through the bus and its consumers), however few tests it brings; on a
loaded machine it also runs with cold caches. So after a read the runner pauses and
lets the next tests' lines collect in the socket, and reads them in one go. How long:

- ``COALESCE`` (50 ms) while someone waits for news: the tests run first after a
  fix (failed-first), a verify pass, a retry. Their verdict is what a person waits
  for, so it is read as soon as it can be.
- Otherwise longer, up to ``COALESCE_QUIET`` (200 ms): results reach the screen and
  the history at most that much later. But never so long that a fast-talking process
  would fill its socket and wait for us: a Unix socket holds about 160 sends (one per
  test) before the sender blocks, so the pause is sized from how fast the busiest
  connection talked since the read before, to leave room for ``QUIET_LINES`` lines
  (about 40 tests), never shorter than ``COALESCE``.

The watchdog's next deadline caps it in every case (``at_most``): a hang is acted on
when it is due, whatever the pace. Plain arithmetic, no clock of its own.
"""

from __future__ import annotations

#: seconds after a read while news is awaited (and the shortest pause)
COALESCE = 0.05
#: seconds after a read at most, when nobody waits for a particular result
COALESCE_QUIET = 0.2
#: lines the busiest connection may send during a pause (a test sends 2-3)
QUIET_LINES = 96


def pause_after_read(lines: int, over: float, *, news: bool, at_most: float) -> float:
    """Seconds to pause after a read whose busiest connection brought ``lines``
    messages, ``over`` seconds after the read before it; ``news``: a result someone
    waits for may come next; ``at_most``: until the watchdog's next deadline."""
    pause = COALESCE
    if not news:
        pause = COALESCE_QUIET
        if lines > 0 and over > 0:
            pause = min(pause, max(COALESCE, QUIET_LINES * over / lines))
    return max(0.0, min(pause, at_most))
