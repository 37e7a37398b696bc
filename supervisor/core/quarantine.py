"""The quarantine: tests that still run and are recorded, but never fail a gate.

A team that knows a test is broken for reasons outside the deploy under test (a
third-party sandbox, a known race) should not lose every iteration's gate to it, nor
stop running it. The quarantine file (``netra-quarantine.toml`` beside the config,
``[run] quarantine``) lists such tests, each with a reason, who and when, and an
optional expiry date, and is reviewed like code. This module is the plain logic: the
entries, whether one matches a result, which have expired as of a given day, and what
a run applies (:class:`RunQuarantine`, with injected loading and clock). Reading and
writing the file is :mod:`supervisor.quarantine_file`.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from supervisor.config_values import ConfigError, did_you_mean, type_name
from supervisor.core.events import OUTCOMES, Event, LogLine, TestResult

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: The keys of one ``[[test]]`` entry and what each holds.
ENTRY_KEYS = {
    "nodeid": "the pytest node id, or a glob (* any text, ? one character)",
    "reason": "why it is quarantined",
    "added_by": "who quarantined it",
    "added": "the day it was quarantined, YYYY-MM-DD",
    "until": "the last day it applies, YYYY-MM-DD (optional)",
    "suite": "only results of this [[suite]] (optional)",
}


@dataclass(frozen=True)
class Entry:
    """One ``[[test]]`` of the quarantine file; ``line`` is where its header is (0:
    unknown), so a message can point at it."""

    nodeid: str
    reason: str
    added_by: str = ""
    added: date | None = None
    until: date | None = None
    suite: str = ""
    line: int = 0
    _pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if "*" in self.nodeid or "?" in self.nodeid:
            object.__setattr__(self, "_pattern", glob_pattern(self.nodeid))

    @property
    def is_glob(self) -> bool:
        return self._pattern is not None

    def matches(self, suite: str, nodeid: str) -> bool:
        if self.suite and self.suite != suite:
            return False
        if self._pattern is None:
            return nodeid == self.nodeid
        return self._pattern.fullmatch(nodeid) is not None

    def expired(self, today: date) -> bool:
        """``until`` is the last day the entry applies."""
        return self.until is not None and today > self.until

    def label(self) -> str:
        """How messages name it: ``tests/x.py::test_y`` or ``tests/x.py::test_y [api]``."""
        return f"{self.nodeid} [{self.suite}]" if self.suite else self.nodeid


def glob_pattern(text: str) -> re.Pattern[str]:
    """``*`` any text (``/`` and ``::`` too), ``?`` one character; everything else is
    literal, brackets included, so a parametrized id (``test_x[a-b]``) matches as written
    (``fnmatch`` would read ``[a-b]`` as a character class)."""
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class QuarantineList:
    """The entries of one quarantine file, in file order."""

    entries: tuple[Entry, ...] = ()

    def active(self, today: date) -> QuarantineList:
        return QuarantineList(tuple(e for e in self.entries if not e.expired(today)))

    def expired(self, today: date) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.expired(today))

    def match(self, suite: str, nodeid: str) -> Entry | None:
        """The first entry that applies to this test (expiry is not looked at: call
        :meth:`active` first)."""
        for entry in self.entries:
            if entry.matches(suite, nodeid):
                return entry
        return None

    def find(self, nodeid: str, suite: str = "") -> list[Entry]:
        """Entries written with exactly this ``nodeid`` (and ``suite``, when given)."""
        return [e for e in self.entries if e.nodeid == nodeid and (not suite or e.suite == suite)]

    def __len__(self) -> int:
        return len(self.entries)


# --------------------------------------------------------------------------- parsing


def parse_quarantine(text: str, source: str) -> QuarantineList:
    """The entries of a quarantine file's ``text``; any problem is one
    :class:`ConfigError` line naming ``source`` and the line (exit 2 at start-up)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        found = re.search(r"\(at line (\d+), column \d+\)", message)
        where = f"line {found.group(1)}: " if found else ""
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
        raise ConfigError(f"{source}: {where}not valid TOML: {message}") from None
    headers = _entry_lines(text)
    for key in data:
        if key != "test":
            raise ConfigError(
                f"{source}: {key}: unknown key; the file holds [[test]] entries"
                + did_you_mean(key, ["test"])
            )
    tests = data.get("test", [])
    if not isinstance(tests, list) or not all(isinstance(t, dict) for t in tests):
        raise ConfigError(f"{source}: test: expected [[test]] entries, got {type_name(tests)}")
    entries = []
    for index, table in enumerate(tests):
        line = headers[index] if index < len(headers) else 0
        entries.append(_entry(table, index, line, source, text))
    return QuarantineList(tuple(entries))


def _entry_lines(text: str) -> list[int]:
    """1-based line numbers of the ``[[test]]`` headers, in order."""
    header = re.compile(r"^\s*\[\[\s*test\s*\]\]")
    return [n for n, line in enumerate(text.splitlines(), start=1) if header.match(line)]


def _entry(table: Mapping[str, Any], index: int, line: int, source: str, text: str) -> Entry:
    def fail(key: str, problem: str) -> ConfigError:
        at = _key_line(text, line, key) if key else line
        where = f"line {at}: " if at else ""
        name = f"test[{index}].{key}" if key else f"test[{index}]"
        return ConfigError(f"{source}: {where}{name}: {problem}")

    for key in table:
        if key not in ENTRY_KEYS:
            raise fail(key, "unknown key" + did_you_mean(key, ENTRY_KEYS))
    values: dict[str, Any] = {}
    for key in ("nodeid", "reason", "added_by", "suite"):
        value = table.get(key, "")
        if not isinstance(value, str):
            raise fail(key, f"expected a string, got {type_name(value)}")
        values[key] = value.strip()
    if not values["nodeid"]:
        raise fail("nodeid" if "nodeid" in table else "", 'every [[test]] needs a nodeid = "..."')
    if not values["reason"]:
        raise fail("reason" if "reason" in table else "", 'every [[test]] needs a reason = "..."')
    for key in ("added", "until"):
        if key in table:
            try:
                values[key] = parse_day(table[key])
            except ValueError as exc:
                raise fail(key, str(exc)) from None
    return Entry(line=line, **values)


def _key_line(text: str, header: int, key: str) -> int:
    """The line of ``key = …`` in the entry whose header is on line ``header``."""
    if not header:
        return 0
    pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
    lines = text.splitlines()
    for number in range(header + 1, len(lines) + 1):
        current = lines[number - 1]
        if re.match(r"^\s*\[", current):
            break
        if pattern.match(current):
            return number
    return header


def parse_day(value: Any) -> date:
    """A TOML date (``2026-12-31``) or the text ``"2026-12-31"``; else ValueError."""
    if isinstance(value, date) and not hasattr(value, "hour"):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f'{value!r} is not a date; write YYYY-MM-DD, e.g. "2026-12-31"')


# --------------------------------------------------------------------------- counting


def quarantine_text(counts: Mapping[str, int]) -> str:
    """``3 quarantined: 2 failed, 1 passed`` (failing outcomes first), or ``""``."""
    total = sum(counts.values())
    if not total:
        return ""
    order = [o for o in OUTCOMES if o != "passed"] + ["passed"]
    order += [o for o in counts if o not in order]
    parts = [f"{counts[o]} {o}" for o in order if counts.get(o)]
    return f"{total} quarantined: {', '.join(parts)}"


def add_counts(into: dict[str, int], counts: Mapping[str, int]) -> None:
    for outcome, n in counts.items():
        if n:
            into[outcome] = into.get(outcome, 0) + n


# --------------------------------------------------------------------------- in a run


class RunQuarantine:
    """What one run applies: the file's entries that have not expired.

    The file is read again as each iteration starts (``load``; a team may quarantine a
    test while the loop runs), and the entries are checked against ``today`` then; an
    entry that expired is announced once per run. A file broken mid-run is reported
    and the last good entries stay in force: a typo must not end a 20-hour run (at
    start-up the session reads it first, and a broken file is exit 2).

    ``auto`` (``[run] auto_quarantine``) is called after each iteration that ran tests;
    it returns the lines to announce (the entries it added).
    """

    def __init__(
        self,
        load: Callable[[], QuarantineList],
        today: Callable[[], date] = date.today,
        auto: Callable[[], Sequence[str]] | None = None,
        source: str = "quarantine",
    ) -> None:
        self._load = load
        self._today = today
        self._auto = auto
        self.source = source
        self._lock = threading.Lock()
        self._active = QuarantineList()
        self._announced: set[tuple[str, str, date | None]] = set()

    def start_iteration(self, emit: Callable[[Event], None]) -> None:
        try:
            entries = self._load()
        except ConfigError as exc:
            emit(LogLine("error", self.source, f"{exc}; the entries read before stay in force"))
            return
        today = self._today()
        for entry in entries.expired(today):
            key = (entry.nodeid, entry.suite, entry.until)
            if key not in self._announced:
                self._announced.add(key)
                emit(LogLine("warning", self.source, _expired_text(entry)))
        with self._lock:
            self._active = entries.active(today)

    @property
    def active(self) -> QuarantineList:
        with self._lock:
            return self._active

    def applies(self, suite: str, nodeid: str) -> bool:
        active = self.active
        # most runs quarantine nothing: no match to look for (every result asks)
        return bool(active.entries) and active.match(suite, nodeid) is not None

    def mark(self, result: TestResult) -> TestResult:
        """The result, flagged ``quarantined`` when an active entry matches it."""
        if result.quarantined or not self.applies(result.suite, result.nodeid):
            return result
        return replace(result, quarantined=True)

    def quarantined_of(self, suite: str, nodeids: Iterable[str]) -> frozenset[str]:
        """Which of ``nodeids`` (of ``suite``) the active entries cover."""
        active = self.active
        return frozenset(n for n in nodeids if active.match(suite, n) is not None)

    def end_iteration(self, emit: Callable[[Event], None]) -> None:
        if self._auto is None:
            return
        try:
            lines = self._auto()
        except (ConfigError, OSError) as exc:  # the file or the history: say it, go on
            emit(LogLine("error", self.source, f"auto_quarantine: {exc}"))
            return
        for line in lines:
            emit(LogLine("warning", self.source, line))


def _expired_text(entry: Entry) -> str:
    where = f" (line {entry.line})" if entry.line else ""
    return (
        f"quarantine of {entry.label()}{where} expired (until {entry.until}): it can fail "
        "the run again; remove the entry or give it a later until"
    )
