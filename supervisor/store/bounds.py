"""Caps on the free-text columns of the history, and the full texts kept beside it.

A 20 MB assertion message must not become a 20 MB row (every ``history`` query, the
TUI and Datasette would drag it along), and it must not be lost either. So the writer
stores at most :data:`CAPS` bytes of UTF-8 per capped column, and whenever it cuts a
text it writes the whole (already redacted) text to a file beside the database::

    <database folder>/full/run-<run id>/<table>-<row id>-<column>.txt

and puts a marker where the text was cut that says how much was cut and names that
file, relative to the database's folder::

    [netra cut 20,970,112 of 20,971,536 bytes here; full text: full/run-1/results-3-message.txt]

``results.message`` is first folded onto one line (:func:`supervisor.text.one_line`)
and keeps its head; the other columns keep their head and their tail (the end of a
traceback or of a deploy's output is where the error is) with the marker between.
When the file cannot be written (disk full, read-only folder) the marker says so and
the row is written anyway. Caps count the marker: a stored value never exceeds its cap.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from supervisor.text import ELLIPSIS, clip, one_line, utf8_size

KIB = 1024

#: Bytes of UTF-8 stored per capped column, marker included. Other text columns (names,
#: node ids, timestamps, revisions) are short by nature and stored whole.
CAPS: dict[tuple[str, str], int] = {
    ("results", "message"): 1 * KIB,  # one line
    ("results", "longrepr"): 64 * KIB,  # the traceback and the captured output sections
    ("results", "dump"): 256 * KIB,  # stacks and asyncio tasks of a hung or crashed test
    ("deploys", "message"): 64 * KIB,
    ("logs", "text"): 16 * KIB,
    ("plugin_errors", "error"): 16 * KIB,
}

#: The folder, beside the database, that holds the full texts of cut values.
FULL_DIR = "full"

_ONE_LINE = frozenset({("results", "message")})


class RowId:
    """The id a row is about to get, looked up only when a cut needs it for a file name."""

    __slots__ = ("_lookup", "value")

    def __init__(self, lookup: Callable[[], int]) -> None:
        self._lookup = lookup
        self.value: int | None = None

    def __call__(self) -> int:
        if self.value is None:
            self.value = self._lookup()
        return self.value


class Bounds:
    """Applies :data:`CAPS` for one run of one database (see the module docstring)."""

    def __init__(self, db_path: Path, run_id: int) -> None:
        self.relative = f"{FULL_DIR}/run-{run_id}"
        self.folder = Path(db_path).parent / FULL_DIR / f"run-{run_id}"

    def fit(
        self, table: str, column: str, text: str | None, row_id: RowId, saved: list[Path]
    ) -> str | None:
        """``text`` as the column stores it: whole when within its cap, else cut with a
        marker (the full text saved first, its path appended to ``saved``)."""
        if not text:
            return text
        cap = CAPS.get((table, column))
        if cap is None:
            return text
        if (table, column) in _ONE_LINE:
            line = one_line(text, cap)
            if not line.endswith(ELLIPSIS) or (len(text) <= cap * 4 and line == one_line(text)):
                return line
            return self._cut(text, line[: -len(ELLIPSIS)], None, cap, table, column, row_id, saved)
        if clip(text, cap) is text:
            return text
        return self._cut(text, text, text, cap, table, column, row_id, saved)

    def _cut(
        self,
        text: str,
        head_of: str,
        tail_of: str | None,
        cap: int,
        table: str,
        column: str,
        row_id: RowId,
        saved: list[Path],
    ) -> str:
        """Head of ``head_of`` and a marker (then the tail of ``tail_of``), within ``cap``;
        no ``tail_of``: the head and the marker on one line."""
        name = f"{table}-{row_id()}-{column}.txt"
        data = text.encode("utf-8", "surrogatepass")  # the one copy of a huge text
        total = len(data)
        where = self._save(name, data, saved)
        del data
        one_line_marker = tail_of is None
        # size the marker for the largest number it can show; the real one is no longer
        room = cap - utf8_size(_marker(total, total, where, one_line_marker))
        if tail_of is None:
            head, tail = clip(head_of, max(0, room)).rstrip(), ""
        else:
            head = clip(head_of, max(0, room // 2))
            tail = clip(tail_of, max(0, room - utf8_size(head)), tail=True)
        kept = utf8_size(head) + utf8_size(tail)
        return head + _marker(max(0, total - kept), total, where, one_line_marker) + tail

    def _save(self, name: str, data: bytes, saved: list[Path]) -> str:
        """Write the full text; the marker's words for where it is (or why it is not)."""
        path = self.folder / name
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(data)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(path)
            reason = exc.strerror or type(exc).__name__
            return f"the full text could not be saved ({reason})"
        saved.append(path)
        return f"full text: {self.relative}/{name}"


def _marker(cut: int, total: int, where: str, one_line_marker: bool) -> str:
    text = f"[netra cut {cut:,} of {total:,} bytes here; {where}]"
    return f" {text}" if one_line_marker else f"\n{text}\n"
