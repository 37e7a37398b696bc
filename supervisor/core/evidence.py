"""What the backend said while a test ran: which log lines belong to a test's window.

Plain logic over plain data (no files, no threads): :mod:`supervisor.evidence_tail`
reads the bytes and knows when they arrived; :mod:`supervisor.evidence_run` wires it
into a run. A line belongs to a window by its own leading timestamp when it has one
(ISO-8601, the Apache/nginx common log format, syslog), by the timestamp of the line
it continues (a traceback under a log record), else by when the file grew to hold it.
What is kept is bounded (:data:`MAX_LINES` lines, :data:`MAX_BYTES`), the cut
summarised in one line, so a chatty backend cannot bloat the history.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from supervisor.core.events import OUTCOMES, TestResult

#: Outcomes that get evidence: everything but a pass, a skip and an expected failure.
EVIDENCE_OUTCOMES = frozenset(OUTCOMES) - {"passed", "skipped", "xfailed"}

#: Seconds added before a test's start and after its end: a request logged just
#: before the test's clock started, an error logged as the connection closed.
MARGIN = 1.0
#: Seconds after a stamped line within which an unstamped one still continues its
#: record (a traceback is written at once); later, it is placed by when it arrived (a
#: redeploy's unstamped banner must not take the time of the last line before it).
CONTINUES_WITHIN = 0.5
#: At most this many lines and bytes (UTF-8) per result and source.
MAX_LINES = 200
MAX_BYTES = 64 * 1024
#: A longer line is cut (a JSON blob on one line must not eat the whole budget).
MAX_LINE_CHARS = 2000
#: Lines kept from the start of the window when it holds too many; the rest of the
#: budget goes to its end, where the failure usually is.
HEAD_LINES = 40
HEAD_BYTES = 12 * 1024

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?"
    r" ?(Z|UTC|[+-]\d{2}(?::?\d{2})?)?"
)
_CLF = re.compile(r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-]\d{2})(\d{2})")
_SYSLOG = re.compile(r"([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}):(\d{2}):(\d{2})\b")
_LEADING = frozenset(" \t[<(")  # up to three of these may come before a leading time
_JSON_HEAD = 120  # a JSON log line: its first ISO timestamp within this many characters


@dataclass(frozen=True)
class EvidenceWindow:
    """The time a test ran, as UTC datetimes: ``start``/``end`` include the margin.

    What :func:`supervisor.hookspecs.netra_collect_evidence` receives: query your log
    store for ``start`` .. ``end``.
    """

    start: datetime
    end: datetime
    margin: float = MARGIN

    @property
    def start_ts(self) -> float:
        return self.start.timestamp()

    @property
    def end_ts(self) -> float:
        return self.end.timestamp()

    def __contains__(self, ts: float) -> bool:
        return self.start_ts <= ts <= self.end_ts


def result_window(result: TestResult, now: float, margin: float = MARGIN) -> EvidenceWindow:
    """The window of ``result``: ``started_at`` .. + ``duration``, widened by ``margin``.

    A result without a readable ``started_at`` (a collection error) ends ``now`` (the
    epoch seconds it arrived) and lasted ``duration``.
    """
    duration = max(0.0, result.duration or 0.0)
    start = _parse_iso(result.started_at) if result.started_at else None
    begin = start if start is not None else now - duration
    return EvidenceWindow(_utc(begin - margin), _utc(begin + duration + margin), margin)


@dataclass(frozen=True)
class Kept:
    """Lines of one source for one result, bounded: what an ``evidence`` row holds."""

    lines: tuple[str, ...]
    omitted: int = 0
    first_at: str | None = None
    last_at: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def leading_timestamp(line: str, year: int | None = None) -> float | None:
    """The epoch seconds a log line says it was written, when it starts with a time.

    ISO-8601 (``2026-12-01T01:35:55.123Z``, ``2026-12-01 01:35:55,123``, with an
    offset or without), the common log format (``[01/Dec/2026:01:35:55 +0000]``) and
    syslog (``Dec  1 01:35:55``, in ``year``, default this one) are recognised at the
    start of the line (after up to three spaces or brackets), and in a JSON line
    (``{"ts": "2026-…"``) the first ISO time near its start. Without an offset a time
    is local, the way Python's ``logging`` writes ``asctime``. ``None``: no time.
    """
    at = 0
    while at < 3 and line[at : at + 1] in _LEADING:
        at += 1
    first = line[at : at + 1]
    if first.isdigit():
        match = _ISO.match(line, at)
        if match:
            return _iso_seconds(match)
        match = _CLF.match(line, at)
        if match:
            day, mon, yr, hh, mm, ss, oh, om = match.groups()
            month = _MONTHS.get(mon)
            if month is None:
                return None
            sign = -1 if oh.startswith("-") else 1
            tz = timezone(sign * timedelta(hours=abs(int(oh)), minutes=int(om)))
            return _seconds(int(yr), month, int(day), int(hh), int(mm), int(ss), 0, tz)
        return None
    if first == "{":
        match = _ISO.search(line, at, at + _JSON_HEAD)
        return _iso_seconds(match) if match else None
    if first.isupper():
        match = _SYSLOG.match(line, at)
        if match:
            mon, day, hh, mm, ss = match.groups()
            month = _MONTHS.get(mon)
            if month is None:
                return None
            yr = year or datetime.now().year
            return _seconds(yr, month, int(day), int(hh), int(mm), int(ss), 0, None)
    return None


def select(
    lines: Iterable[tuple[float, str]],
    window: EvidenceWindow,
    stamp: Callable[[str], float | None] = leading_timestamp,
) -> list[tuple[float, str]]:
    """The ``(time, line)`` of ``lines`` (``(arrival, line)`` in file order) that fall
    in ``window``: by the line's own timestamp, else the one of the last stamped line
    before it when it arrived with it (a traceback continues its record), else by its
    arrival time."""
    start, end = window.start_ts, window.end_ts
    out: list[tuple[float, str]] = []
    inherited: float | None = None
    inherited_arrival = 0.0
    for arrival, line in lines:
        own = stamp(line)
        if own is not None:
            inherited, inherited_arrival = own, arrival
            at = own
        elif inherited is not None and arrival - inherited_arrival <= CONTINUES_WITHIN:
            at = inherited
        else:
            at = arrival
        if start <= at <= end:
            out.append((at, line))
    return out


def bound(
    timed: Sequence[tuple[float | None, str]],
    redact: Callable[[str], str] = lambda s: s,
    max_lines: int = MAX_LINES,
    max_bytes: int = MAX_BYTES,
) -> Kept:
    """Redact each line (before any cut, so no part of a secret survives), then keep
    at most ``max_lines`` / ``max_bytes``: the first :data:`HEAD_LINES` and as many of
    the last as fit, with ``… N more lines …`` where the rest was."""
    cleaned = [(at, _cut_line(redact(line.rstrip("\r\n")))) for at, line in timed]
    sizes = [len(line.encode("utf-8", "replace")) + 1 for _, line in cleaned]
    if len(cleaned) <= max_lines and sum(sizes) <= max_bytes:
        return _kept(cleaned, 0)
    budget_lines, budget_bytes = max_lines - 1, max_bytes - 64  # room for the marker
    head = 0
    used = 0
    head_lines = min(HEAD_LINES, budget_lines // 4)
    head_bytes = min(HEAD_BYTES, budget_bytes // 4)
    while head < len(cleaned) and head < head_lines and used + sizes[head] <= head_bytes:
        used += sizes[head]
        head += 1
    tail = 0
    while (
        head + tail < len(cleaned)
        and head + tail < budget_lines
        and used + sizes[len(cleaned) - 1 - tail] <= budget_bytes
    ):
        used += sizes[len(cleaned) - 1 - tail]
        tail += 1
    omitted = len(cleaned) - head - tail
    marker = (None, f"… {omitted} more line{'s' if omitted != 1 else ''} …")
    kept = [*cleaned[:head], marker, *cleaned[len(cleaned) - tail :]]
    return _kept(kept, omitted)


def _kept(lines: list[tuple[float | None, str]], omitted: int) -> Kept:
    times = [at for at, _ in lines if at is not None]
    return Kept(
        tuple(line for _, line in lines),
        omitted,
        iso(times[0]) if times else None,
        iso(times[-1]) if times else None,
    )


def stamped(lines: Iterable[str]) -> list[tuple[float | None, str]]:
    """Lines a plugin returned, each with its own (or inherited) timestamp if any."""
    out: list[tuple[float | None, str]] = []
    inherited: float | None = None
    for line in lines:
        own = leading_timestamp(line)
        inherited = own if own is not None else inherited
        out.append((inherited, line))
    return out


def iso(ts: float) -> str:
    """Epoch seconds as the history's UTC ISO-8601 text."""
    return _utc(ts).isoformat(timespec="milliseconds")


def _cut_line(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return line[: MAX_LINE_CHARS - 1] + "…"


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, timezone.utc)


def _parse_iso(text: str) -> float | None:
    match = _ISO.match(text.strip())
    return _iso_seconds(match) if match else None


def _iso_seconds(match: re.Match[str]) -> float | None:
    """Seconds of an ISO match; the part down to the second is looked up (a log's lines
    share their seconds, and building a datetime per line is most of the cost)."""
    frac, zone = match.group(7, 8)
    key = (match.string[match.start(1) : match.end(6)], zone)
    whole = _WHOLE.get(key)
    if whole is None and key not in _WHOLE:
        whole = _iso_whole(match)
        if len(_WHOLE) >= 4096:
            _WHOLE.clear()
        _WHOLE[key] = whole
    if whole is None:
        return None
    if frac:
        digits = str(frac)[:6]
        return whole + int(digits) / float(10 ** len(digits))
    return whole


_WHOLE: dict[tuple[str, str | None], float | None] = {}


def _iso_whole(match: re.Match[str]) -> float | None:
    yr, mo, dd, hh, mm, ss, _frac, zone = match.groups()
    tz: timezone | None
    if zone is None:
        tz = None
    elif zone in ("Z", "UTC"):
        tz = timezone.utc
    else:
        sign = -1 if zone.startswith("-") else 1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0)))
    return _seconds(int(yr), int(mo), int(dd), int(hh), int(mm), int(ss), 0, tz)


def _seconds(
    yr: int, mo: int, dd: int, hh: int, mm: int, ss: int, micro: int, tz: timezone | None
) -> float | None:
    try:
        moment = datetime(yr, mo, dd, hh, mm, ss, micro, tzinfo=tz)
    except ValueError:  # 2026-13-45: not a time after all
        return None
    return moment.timestamp()  # naive: local time, as logging's asctime writes it
