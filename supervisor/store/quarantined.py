"""Which tests are quarantined now, for ``history flaky`` (read-only, never written).

The quarantine file (``netra-quarantine.toml`` beside the config, or ``[run]
quarantine``) belongs to the quarantine feature, which owns its format. This reader
knows only what ``history flaky`` needs, in one function that is easy to swap for
that feature's own reader: ``[[test]]`` entries with a ``nodeid`` (a node id or a
glob) and an optional ``until = "YYYY-MM-DD"`` after which the entry no longer
applies. Anything else in the file is ignored.
"""

from __future__ import annotations

import fnmatch
import sys
from datetime import date, datetime
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

#: The file's name beside the config when ``[run] quarantine`` does not name one.
DEFAULT_FILE = "netra-quarantine.toml"


class QuarantineFileError(ValueError):
    """The quarantine file exists but cannot be read as TOML (one line)."""


def quarantined_now(path: Path, today: date) -> tuple[str, ...]:
    """The node ids and globs of the entries in force on ``today`` (an entry whose
    ``until`` is before today has expired). No file: nothing is quarantined."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return ()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise QuarantineFileError(f"{path}: cannot read the quarantine file ({exc})") from None
    entries = data.get("test", [])
    patterns: list[str] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("nodeid"), str):
            continue
        until = entry.get("until")
        if isinstance(until, str):
            try:
                until = date.fromisoformat(until)
            except ValueError:
                until = None  # not a date: the quarantine feature reports it, not us
        if isinstance(until, datetime):
            until = until.date()
        if isinstance(until, date) and until < today:
            continue
        patterns.append(entry["nodeid"])
    return tuple(patterns)


def matches(nodeid: str, patterns: tuple[str, ...]) -> bool:
    """Whether an entry names ``nodeid``: the same id, or a glob that matches it."""
    return any(nodeid == p or fnmatch.fnmatchcase(nodeid, p) for p in patterns)
