"""Reading and editing the quarantine file (``[run] quarantine``).

The file belongs to the team: it is reviewed like code, and its comments say things
the entries cannot. So an edit touches only the entry it adds or removes: a new entry
is rendered by tomlkit (quoting and escaping as TOML wants) and appended; a removed
entry's lines (its header, its keys, the comment lines right above it) are cut out.
Every other byte stays as it was, and the result is parsed again before it replaces
the file (atomically), so an edit can never leave a broken file behind. An edit holds
a lock on the file's folder from its read to its rename, so two edits at once (a
person's ``quarantine add`` while a run auto-quarantines) both land. The rules about
entries are in :mod:`supervisor.core.quarantine`.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

from supervisor.config import Config, ConfigError
from supervisor.core.quarantine import Entry, QuarantineList, parse_quarantine

#: What a file this command creates starts with.
HEADER = """\
# Quarantined tests: they still run and are recorded (results.quarantined = 1), but
# never fail a phase gate or the exit code. Review changes to this file like code.
# Each [[test]]: nodeid (or a glob: * any text, ? one character), reason, added_by,
# added, and optionally until (the last day it applies) and suite.
# Edit it by hand or with: netra-supervisor quarantine add | list | remove | suggest
"""

_HEADER_LINE = re.compile(r"^\s*\[")
_TEST_HEADER = re.compile(r"^\s*\[\[\s*test\s*\]\]")


def quarantine_path(config: Config) -> Path:
    """The configured file, relative to the config's folder."""
    return config.resolve(config.run.quarantine)


def read_text(path: Path) -> str:
    """The file's text; ``""`` when it does not exist (no test is quarantined)."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; [run] quarantine names a file") from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 (save the file as UTF-8)") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def read_quarantine(path: Path) -> QuarantineList:
    """The entries of the file at ``path`` (none when it does not exist); a broken
    file is a :class:`ConfigError` naming the file and the line."""
    return parse_quarantine(read_text(path), str(path))


def add_entries(path: Path, entries: Sequence[Entry]) -> None:
    """Append ``entries`` to the file (made, with a header, when missing)."""
    if not entries:
        return
    with _locked(path, make=True):
        _append(path, entries)


def _append(path: Path, entries: Sequence[Entry]) -> None:
    import tomlkit

    text = read_text(path)
    before = parse_quarantine(text, str(path))
    doc = tomlkit.document()
    tables = tomlkit.aot()
    for entry in entries:
        table = tomlkit.table()
        table.add("nodeid", entry.nodeid)
        if entry.suite:
            table.add("suite", entry.suite)
        table.add("reason", entry.reason)
        table.add("added_by", entry.added_by)
        if entry.added is not None:
            table.add("added", entry.added.isoformat())
        if entry.until is not None:
            table.add("until", entry.until.isoformat())
        tables.append(table)
    doc.append("test", tables)
    block = re.sub(r"\n(?=\[\[test\]\])", "\n\n", tomlkit.dumps(doc))  # one blank between
    new = (text.rstrip("\n") + "\n\n" if text.strip() else HEADER + "\n") + block
    after = parse_quarantine(new, str(path))
    if [_key(e) for e in after.entries] != [_key(e) for e in before.entries + tuple(entries)]:
        raise ConfigError(f"{path}: could not add the entry safely; edit the file by hand")
    _replace(path, new)


def remove_entries(path: Path, nodeid: str, suite: str = "") -> list[Entry]:
    """Remove the entries written with exactly ``nodeid`` (and ``suite``, if given);
    returns them (empty: none matched, the file is untouched)."""
    with _locked(path):
        return _cut(path, nodeid, suite)


def _cut(path: Path, nodeid: str, suite: str) -> list[Entry]:
    text = read_text(path)
    before = parse_quarantine(text, str(path))
    gone = before.find(nodeid, suite)
    if not gone:
        return []
    lines = text.splitlines(keepends=True)
    headers = [n for n, line in enumerate(lines) if _TEST_HEADER.match(line)]
    if len(headers) != len(before.entries):  # inline tables (test = [{...}])
        raise ConfigError(f"{path}: write each entry as [[test]] to remove it with this command")
    cut: list[tuple[int, int]] = []
    for index, entry in enumerate(before.entries):
        if entry in gone:
            cut.append(_block(lines, headers[index]))
    for start, end in reversed(cut):
        del lines[start:end]
        blank = start < len(lines) and not lines[start].strip()
        if blank and (start == 0 or not lines[start - 1].strip()):
            del lines[start]  # the blank line that separated it goes too
    new = "".join(lines)
    new = new.rstrip("\n") + "\n" if new.strip() else ""
    kept = [e for e in before.entries if e not in gone]
    after = parse_quarantine(new, str(path))
    if [_key(e) for e in after.entries] != [_key(e) for e in kept]:
        raise ConfigError(f"{path}: could not remove the entry safely; edit the file by hand")
    _replace(path, new)
    return gone


def _block(lines: list[str], header: int) -> tuple[int, int]:
    """The lines of the entry whose header is ``lines[header]``: the comment lines
    right above it, its header and keys; not the comments right above the next header
    (they describe the next entry)."""
    start = header
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    end = header + 1
    while end < len(lines) and not _HEADER_LINE.match(lines[end]):
        end += 1
    if end < len(lines):  # the next entry's own comments stay with it
        while end - 1 > header and lines[end - 1].lstrip().startswith("#"):
            end -= 1
    return start, end


def _key(entry: Entry) -> tuple[str, str, str, str, date | None, date | None]:
    return (entry.nodeid, entry.suite, entry.reason, entry.added_by, entry.added, entry.until)


@contextlib.contextmanager
def _locked(path: Path, make: bool = False) -> Iterator[None]:
    """An exclusive ``flock`` on the file's folder (no lock file is left in the
    team's repository), made first with ``make`` (an add); where the folder cannot be
    opened or locked, no lock."""
    import fcntl

    try:
        if make:
            path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``:
    a reader (the run, at an iteration's start) sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
