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
import itertools
import os
import threading
import time
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from supervisor.core.evidence import EvidenceWindow

#: Seconds read beyond the window: after it, a line stamped inside the window may
#: reach the file later (a buffered writer); before it, only a clock a little ahead of
#: ours (a line arrives after it was written, so what arrived earlier is older).
SLACK_AFTER = 2.0
SLACK_BEFORE = 0.5
#: At most this many bytes are read per file and window (the end of the window is kept:
#: a hang's last words matter most).
MAX_READ = 8 * 1024 * 1024
#: Marks kept per file (16 bytes each): hours of a file growing at every look.
MAX_MARKS = 200_000


_GENERATIONS = itertools.count(1)  # the identity of each file generation


@dataclass
class _Followed:
    """One file: its identity and the marks of its current generation."""

    inode: int
    #: this generation's identity (a truncated file keeps its inode, not its bytes)
    generation: int = field(default_factory=lambda: next(_GENERATIONS))
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
        self._kept: dict[str, _Kept] = {}  # per file: the lines read last (lines())

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
        ``SLACK_BEFORE`` seconds before ``window`` to ``SLACK_AFTER`` after, in file
        order.

        ``arrival`` is when the tail first saw the file hold the line (at most
        ``interval`` late). Files with nothing then are left out. Called from one
        thread (the evidence thread): the lines read last time are kept, so the
        overlapping windows of failures close together read each byte once.
        """
        with self._lock:
            self._poll()
            spans = {
                path: _span(f, window.start_ts - SLACK_BEFORE, window.end_ts + SLACK_AFTER)
                for path, f in self._files.items()
            }
        out: dict[str, list[tuple[float, str]]] = {}
        for path, span in spans.items():
            if span is None:
                continue
            lines = self._read(path, span)
            if lines:
                out[path] = lines
        return out

    def _read(self, path: str, span: _Span) -> list[tuple[float, str]]:
        """The complete lines of ``span``: from the kept ones where they cover it,
        the rest read from the file (and kept for the next window)."""
        begin, end = span.begin, span.end
        if end - begin > MAX_READ:
            begin = end - MAX_READ
        kept = self._kept.get(path)
        if kept is None or kept.generation != span.generation or not kept.covers(begin):
            kept = _Kept(span.generation, begin, begin)
            self._kept[path] = kept
        kept.forget_before(begin)
        partial: list[tuple[float, str]] = []
        if end > kept.end:
            start, ends, lines, unfinished = _read(path, kept.end, end, span)
            kept.extend(start, ends, lines)
            if unfinished is not None and kept.end >= begin:
                partial.append(unfinished)  # shown now, read again once it is complete
        return kept.between(begin, end) + partial


@dataclass
class _Span:
    """A byte range of one file generation, with the marks over it."""

    begin: int
    end: int
    times: array
    sizes: array
    inode: int
    generation: int


@dataclass
class _Kept:
    """Complete lines read from one file generation: ``start`` .. ``end`` (bytes)."""

    generation: int
    start: int
    end: int
    ends: list[int] = field(default_factory=list)  # each line's end offset
    lines: list[tuple[float, str]] = field(default_factory=list)

    def covers(self, begin: int) -> bool:
        return self.start <= begin <= self.end

    def forget_before(self, begin: int) -> None:
        """Drop the lines that end before ``begin`` (windows move forward)."""
        cut = bisect_right(self.ends, begin)
        if cut:
            self.start = self.ends[cut - 1]
            del self.ends[:cut]
            del self.lines[:cut]

    def extend(self, start: int, ends: list[int], lines: list[tuple[float, str]]) -> None:
        if start != self.end:  # the bytes in between could not be read: start over
            self.start, self.ends, self.lines = start, [], []
        self.ends.extend(ends)
        self.lines.extend(lines)
        self.end = ends[-1] if ends else start

    def between(self, begin: int, end: int) -> list[tuple[float, str]]:
        """Lines starting at or after ``begin`` and ending by ``end``."""
        first = bisect_left(self.ends, begin + 1)  # a line ending at begin is before it
        if first < len(self.ends) and (self.ends[first - 1] if first else self.start) < begin:
            first += 1  # it started before begin: a partial line of the window
        last = bisect_right(self.ends, end)
        return self.lines[first:last]


def _span(followed: _Followed, start: float, end: float) -> _Span | None:
    """The byte range that arrived in ``start .. end``, and a copy of the marks over it."""
    times, sizes = followed.times, followed.sizes
    if not times or times[-1] < start:
        return None
    lo = max(0, bisect_left(times, start) - 1)  # this mark's size arrived before start
    hi = bisect_right(times, end)  # the first mark after end (its bytes may be inside)
    hi = min(hi, len(times) - 1)
    if sizes[hi] <= sizes[lo]:
        return None
    return _Span(
        sizes[lo],
        sizes[hi],
        times[lo : hi + 1],
        sizes[lo : hi + 1],
        followed.inode,
        followed.generation,
    )


def _read(
    path: str, begin: int, end: int, span: _Span
) -> tuple[int, list[int], list[tuple[float, str]], tuple[float, str] | None]:
    """The complete lines of bytes ``begin .. end`` of ``path`` that start at or after
    ``begin`` (a partial first line is dropped): ``(where the first starts, each one's
    end offset, (arrival, text) of each, the unfinished last line or None)``."""
    times, sizes = span.times, span.sizes
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_ino != span.inode:
                return begin, [], [], None  # replaced since the marks were taken
            start = max(0, begin - 1)
            fh.seek(start)
            data = fh.read(end - start)
    except OSError:
        return begin, [], [], None
    offset = start
    if begin > 0:  # drop a partial first line unless begin is a line's start
        cut = data.find(b"\n")
        if cut < 0:
            return begin, [], [], None
        offset, data = start + cut + 1, data[cut + 1 :]
    first = offset
    pieces = data.split(b"\n")
    rest = pieces.pop()  # after the last newline: b"" or an unfinished line
    ends: list[int] = []
    lines: list[tuple[float, str]] = []
    last = len(sizes) - 1
    for raw in pieces:
        offset += len(raw) + 1
        ends.append(offset)
        at = min(bisect_left(sizes, offset), last)
        lines.append((times[at], raw.decode("utf-8", "replace").rstrip("\r")))
    unfinished = None
    if rest:
        unfinished = (times[last], rest.decode("utf-8", "replace").rstrip("\r"))
    return first, ends, lines, unfinished
