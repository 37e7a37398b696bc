"""The tables the command line prints (``history``, ``suites``, ``plugins``), on rich.

One place decides how a table looks, so every command behaves alike:

- it fits the terminal's width, 80 columns included: long columns wrap (nothing is
  lost) or, for one-line messages, end in "…";
- in a terminal it has a header rule and a bold header; when the output is no terminal
  (a pipe, a file, a CI log) or ``NO_COLOR`` is set it is plain text: columns two
  spaces apart, no colour, no box characters, no escape codes, no trailing blanks.

rich is imported inside the functions that print: ``--help`` and a headless run never
load it (tests/test_startup_imports.py).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TextIO

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table


@dataclass(frozen=True)
class Column:
    """One column: its header, alignment and what happens when the table is too wide.

    ``long="wrap"``: the column narrows, its values wrap at spaces and long words fold
    (names, paths: every character is kept). ``"cut"``: it narrows, each value stays one
    line ending in "…" (messages, whose whole text is in the history). ``"keep"``: it
    keeps its width while the others narrow (numbers, durations, short labels).
    ``min_width``: it never narrows below this (a date stays whole: 10).
    """

    header: str
    right: bool = False  # numbers and durations
    long: Literal["wrap", "cut", "keep"] = "wrap"
    max_width: int | None = None
    min_width: int = 1


def is_styled(out: TextIO) -> bool:
    """Rules and bold only for a terminal, and never with ``NO_COLOR`` (no-color.org)."""
    isatty = getattr(out, "isatty", None)
    return bool(isatty is not None and isatty()) and not os.environ.get("NO_COLOR")


class TablePrinter:
    """Prints tables and text to ``out``, styled in a terminal and plain elsewhere."""

    def __init__(self, out: TextIO, width: int | None = None) -> None:
        self.out = out
        self.styled = is_styled(out)
        self._width = width
        self._console: Console | None = None

    def table(
        self, columns: Sequence[Column], rows: Sequence[Sequence[str]], title: str = ""
    ) -> None:
        if self.styled:
            self.console.print(_build(columns, rows, title, self.console.width))
        else:
            self.out.write(format_table(columns, rows, title, self._width) + "\n")

    def text(self, text: str) -> None:
        """A paragraph wrapped to the width like the tables (a path longer than a line is
        folded rather than running past the edge)."""
        from rich.text import Text

        if self.styled:
            self.console.print(Text(text))
        else:
            console = _plain_console(self._width)
            console.print(Text(text))
            self.out.write(_plain_text(console) + "\n")

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(
                file=self.out, width=self._width, highlight=False, markup=False, emoji=False
            )
        return self._console


def format_table(
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    title: str = "",
    width: int | None = None,
) -> str:
    """The plain text of a table (no final newline), ``width`` defaulting to the terminal's
    (``COLUMNS``, else the size of stdin, stdout or stderr, else 80).

    The same widths and wrapping as the styled table, put together line by line: rich's
    Table renders a cell in about a millisecond, and ``history flaky`` on a big history
    prints thousands of rows into a pipe (bench/history.py).
    """
    from rich.cells import cell_len
    from rich.text import Text

    console = _plain_console(width)
    widths = column_widths(columns, rows, _room(console.width, len(columns)))

    def cell(text: str, column: Column, width: int) -> list[str]:
        one_line = column.long != "wrap"
        if "\n" not in text and text.isascii() and text.isprintable():  # without rich:
            if len(text) <= width:  # the common case
                return [text]
            if one_line:
                return [text[: width - 1] + "…"]
            if " " not in text:  # a long name folds
                return [text[i : i + width] for i in range(0, len(text), width)]
        lines = Text(text).wrap(
            console, width, overflow="ellipsis" if one_line else "fold", no_wrap=one_line
        )
        return [line.plain.rstrip() for line in lines]

    def block(cells: list[list[str]], bottom: bool) -> list[str]:
        height = max(len(c) for c in cells)
        out = []
        for k in range(height):
            parts = []
            for lines, column, w in zip(cells, columns, widths):
                at = k - (height - len(lines)) if bottom else k  # headers sit on the rule
                text = lines[at] if 0 <= at < len(lines) else ""
                pad = " " * (w - (len(text) if text.isascii() else cell_len(text)))
                parts.append(pad + text if column.right else text + pad)
            out.append("  ".join(parts).rstrip())
        return out

    lines = (
        [line.plain.rstrip() for line in Text(title).wrap(console, console.width)] if title else []
    )
    lines += block([cell(c.header, c, w) for c, w in zip(columns, widths)], bottom=True)
    for row in rows:
        lines += block([cell(text, c, w) for text, c, w in zip(row, columns, widths)], False)
    return "\n".join(lines)


def _room(width: int, n_columns: int) -> int:
    """The width left for the columns' text: they stand two spaces apart."""
    return max(width - 2 * (n_columns - 1), n_columns)


def column_widths(columns: Sequence[Column], rows: Sequence[Sequence[str]], room: int) -> list[int]:
    """Each column's width, together at most ``room`` when it can be done.

    Natural widths when they fit. Else the widest column narrows first: down to its
    longest word (a date, a name), each step to the width its values then wrap to, so
    ``2026-11-30 23:12:11`` goes straight to two lines of 10 (a cut column, a message,
    narrows to :data:`CUT_FLOOR`); then words fold, the columns narrowing in proportion
    (rows as short as can be) and none below :data:`FOLD_FLOOR` while another can give;
    ``keep`` columns narrow last.
    rich's own fitting narrows every wide column alike and folds dates and headers
    sooner than needed, so the widths are decided here and handed to rich.
    """
    from rich.cells import cell_len

    texts = [[column.header, *(row[i] for row in rows)] for i, column in enumerate(columns)]
    # per column, each distinct text as its lines' word lengths
    shapes = [
        [
            [[cell_len(word) for word in line.split()] for line in text.splitlines()]
            for text in set(t)
        ]
        for t in texts
    ]
    natural = [
        min(
            max((cell_len(line.rstrip()) for t in set(ts) for line in t.splitlines()), default=1)
            or 1,
            column.max_width or room,
        )
        for column, ts in zip(columns, texts)
    ]
    longest_word = [max((n for c in cells for w in c for n in w), default=1) for cells in shapes]
    words = [
        nat if column.long == "keep" else min(nat, CUT_FLOOR if column.long == "cut" else word)
        for column, nat, word in zip(columns, natural, longest_word)
    ]

    def rewrap(i: int, width: int) -> int:  # the width column i's values wrap to
        if columns[i].long != "wrap":
            return width
        return max(_wrapped_width(cell, width) for cell in shapes[i])

    def same(i: int, width: int) -> int:
        return width

    widths = _narrow(natural, words, room, rewrap)
    # then fold long words, each column in proportion to its width (rows as short as
    # can be), none below FOLD_FLOOR: a date, a status, a short name stay whole
    wide = list(widths)
    folded = [
        w if column.long == "keep" else min(w, FOLD_FLOOR) for column, w in zip(columns, wide)
    ]
    widths = _narrow(widths, folded, room, same, key=lambda i, width: (width / wide[i], width))
    return _narrow(widths, [column.min_width for column in columns], room, same)


#: A cut column (a message) gives up width down to this before names start to fold.
CUT_FLOOR = 30
#: Folding words takes no column below this while a wider one can give.
FOLD_FLOOR = 10


def _narrow(
    widths: list[int],
    floors: list[int],
    room: int,
    rewrap: Callable[[int, int], int],
    key: Callable[[int, int], tuple[float, int]] = lambda i, width: (width, 0),
) -> list[int]:
    """Narrow the column that ``key`` ranks first (the widest) above its floor, one
    step at a time, until all fit."""
    widths = list(widths)
    while sum(widths) > room:
        movable = [i for i, width in enumerate(widths) if width > floors[i]]
        if not movable:
            break
        first = max(movable, key=lambda i: key(i, widths[i]))
        widths[first] = max(floors[first], rewrap(first, widths[first] - 1))
    return widths


def _wrapped_width(lines: list[list[int]], width: int) -> int:
    """The widest line of a text (as word lengths) wrapped greedily at ``width``."""
    widest = 0
    for words in lines:
        current = -1  # nothing on the line yet
        for length in words:
            if current >= 0 and current + 1 + length <= width:
                current += 1 + length
                continue
            widest = max(widest, current)
            current = length if length <= width else (length % width or width)
            if length > width:
                widest = width
        widest = max(widest, current)
    return widest


def _build(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], title: str, width: int
) -> Table:
    """The styled table: a bold header over a rule, no edges."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=title or None,
        title_justify="left",
        title_style="italic",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),  # with the rule's blank column: two spaces, as in plain text
    )
    room = _room(width, len(columns))
    for column, column_width in zip(columns, column_widths(columns, rows, room)):
        table.add_column(
            column.header,
            justify="right" if column.right else "left",
            width=column_width,
            no_wrap=column.long != "wrap",
            overflow="fold" if column.long == "wrap" else "ellipsis",
        )
    for row in rows:  # Text, not str: no markup, no emoji codes in test names
        table.add_row(*(Text(cell) for cell in row))
    return table


def _plain_console(width: int | None) -> Console:
    """A console writing to memory: no colour, no escape codes, whatever the environment."""
    from rich.console import Console

    return Console(
        file=io.StringIO(),
        width=width,
        color_system=None,
        force_terminal=False,
        force_jupyter=False,
        force_interactive=False,
        no_color=True,
        highlight=False,
        markup=False,
        emoji=False,
        legacy_windows=False,
    )


def _plain_text(console: Console) -> str:
    """What ``console`` (from :func:`_plain_console`) printed, lines right-stripped."""
    buffer = console.file
    assert isinstance(buffer, io.StringIO)
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines())
