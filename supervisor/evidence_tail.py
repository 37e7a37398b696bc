"""Follows the backend's log files (``[deploy] logs``): when did each byte arrive?

A line without a timestamp of its own can only be placed in time by when the file grew
to hold it. One thread (``netra log tail``) looks at every file's size every
``interval`` (0.1 s: one ``stat`` per file, nothing is read) and records a mark
``(time, size)`` when it grew. The bytes between two marks arrived between their
times. Only when a test did not pass are bytes read: the ones that arrived around
its window (:meth:`LogTail.lines`), which :mod:`supervisor.core.evidence` then sorts.

A file that shrinks or is replaced (log rotation, a redeploy truncating it) starts
over from offset 0; what the old file held is no longer looked at. Globs are expanded
again every ``rescan`` seconds, so a file created later (the ``local`` backend's log
appears at the first deploy) is followed from its first byte.
"""

from __future__ import annotations

import glob
import os
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from supervisor.core.evidence import EvidenceWindow

#: Seconds read beyond the window on each side: a line stamped inside the window may
#: reach the file a little later (buffered writers) or earlier (clock skew).
SLACK = 2.0
#: At most this many bytes are read per file and window (the end of the window is kept:
#: a hang's last words matter most).
MAX_READ = 8 * 1024 * 1024
#: Marks kept per file (16 bytes each): hours of a file growing at every look.
MAX_MARKS = 200_000


@dataclass
class _Followed:
    """One file: its identity and the marks of its current generation."""

    inode: int
    times: array = field(default_factory=lambda: array("d"))
    sizes: array = field(default_factory=lambda: array("q"))

    def mark(self, at: float, size: int) -> None:
        if len(self.times) >= MAX_MARKS:
            half = MAX_MARKS // 2
            del self.times[:half]
            del self.sizes[:half]
        self.times.append(at)
        self.sizes.append(size)


def _has_magic(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


class LogTail:
    """Marks of when each followed file grew; reads the lines of a window on demand.

    ``patterns`` are absolute paths or globs. Thread-safe: the tail thread and
    :meth:`lines` (the evidence thread) share one lock; :meth:`lines` looks at the files
    once more first, so bytes written up to that moment count.
    """

    def __init__(
        self,
        patterns: Sequence[str],
        *,
        interval: float = 0.1,
        rescan: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.patterns = tuple(patterns)
        self.interval = interval
        self.rescan = rescan
        self._clock = clock
        self._files: dict[str, _Followed] = {}
        self._paths: list[str] = []
        self._scanned_at: float | None = None  # None: never (files then are old)
        self._polled_at: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ following

    def start(self) -> LogTail:
        """Look once now (what the files hold already is older than the run), then
        every ``interval`` on the ``netra log tail`` thread."""
        self.poll()
        self._thread = threading.Thread(target=self._run, name="netra log tail", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a file problem must not end the tail
                continue

    def poll(self) -> None:
        """One look at every file: a mark where one grew, a new generation where one
        shrank or was replaced, a first mark for a file that appeared."""
        with self._lock:
            self._poll()

    def _poll(self) -> None:
        now = self._clock()
        first = self._scanned_at is None
        if first or now - (self._scanned_at or 0.0) >= self.rescan:
            self._paths = self._expand()
            since = self._polled_at if self._polled_at is not None else now
            for path in self._paths:
                if path not in self._files:
                    self._start(path, now, since, old=first)
            self._scanned_at = now
        previous = self._polled_at if self._polled_at is not None else now
        for path, followed in list(self._files.items()):
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone for now (being rotated): looked at again next time
            size = st.st_size
            if st.st_ino != followed.inode or size < followed.sizes[-1]:
                fresh = _Followed(st.st_ino)
                fresh.mark(previous, 0)  # the new file's bytes arrived since the last look
                if size:
                    fresh.mark(now, size)
                self._files[path] = fresh
            elif size > followed.sizes[-1]:
                followed.mark(now, size)
        self._polled_at = now

    def _start(self, path: str, now: float, since: float, old: bool) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        followed = _Followed(st.st_ino)
        if old:
            followed.mark(now, st.st_size)  # older than the run: never evidence by arrival
        else:
            followed.mark(since, 0)
            followed.mark(now, st.st_size)
        self._files[path] = followed

    def _expand(self) -> list[str]:
        paths: list[str] = []
        for pattern in self.patterns:
            found = sorted(glob.glob(pattern)) if _has_magic(pattern) else [pattern]
            for path in found:
                if path not in paths and os.path.isfile(path):
                    paths.append(path)
        return paths

    # ------------------------------------------------------------------ reading

    def lines(self, window: EvidenceWindow) -> dict[str, list[tuple[float, str]]]:
        """Per file, the ``(arrival, line)`` of the lines that reached it from
        ``SLACK`` seconds before ``window`` to ``SLACK`` after, in file order.

        ``arrival`` is when the tail first saw the file hold the line (at most
        ``interval`` late). Files with nothing then are left out.
        """
        with self._lock:
            self._poll()
            spans = {
                path: _span(f, window.start_ts - SLACK, window.end_ts + SLACK)
                for path, f in self._files.items()
            }
        out: dict[str, list[tuple[float, str]]] = {}
        for path, span in spans.items():
            if span is None:
                continue
            lines = _read(path, *span)
            if lines:
                out[path] = lines
        return out


def _span(
    followed: _Followed, start: float, end: float
) -> tuple[int, int, array, array, int] | None:
    """The byte range that arrived in ``start .. end``, and a copy of the marks over it."""
    times, sizes = followed.times, followed.sizes
    if not times or times[-1] < start:
        return None
    lo = max(0, bisect_left(times, start) - 1)  # this mark's size arrived before start
    hi = bisect_right(times, end)  # the first mark after end (its bytes may be inside)
    hi = min(hi, len(times) - 1)
    if sizes[hi] <= sizes[lo]:
        return None
    return sizes[lo], sizes[hi], times[lo : hi + 1], sizes[lo : hi + 1], followed.inode


def _read(
    path: str, begin: int, end: int, times: array, sizes: array, inode: int
) -> list[tuple[float, str]]:
    """The lines of bytes ``begin .. end`` of ``path``, each with its arrival time."""
    if end - begin > MAX_READ:
        begin = end - MAX_READ
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_ino != inode:
                return []  # replaced since the marks were taken
            start = max(0, begin - 1)
            fh.seek(start)
            data = fh.read(end - start)
    except OSError:
        return []
    offset = start
    if begin > 0:  # drop a partial first line unless begin is a line's start
        cut = data.find(b"\n")
        if cut < 0:
            return []
        offset, data = start + cut + 1, data[cut + 1 :]
    out: list[tuple[float, str]] = []
    last = len(sizes) - 1
    for raw in data.splitlines(keepends=True):
        offset += len(raw)
        index = min(bisect_left(sizes, offset), last)
        out.append((times[index], raw.decode("utf-8", "replace").rstrip("\r\n")))
    return out
