"""supervisor.tables: column widths (plain logic) and the two renderings agreeing."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from supervisor.tables import Column, TablePrinter, _build, column_widths, format_table

COLUMNS = [
    Column("run", right=True, long="keep"),
    Column("started"),
    Column("test"),
    Column("message", long="cut"),
]
ROWS = [
    [
        "12",
        "2026-11-30 23:12:11",
        "checkout/test_checkout.py::test_checkout_with_a_saved_card_and_a_coupon",
        "AssertionError: the basket total after the coupon was 10.00, expected 9.00",
    ],
    ["7", "2026-11-29 08:00:00", "search/test_search.py::test_search", ""],
]


def test_natural_widths_when_they_fit():
    assert column_widths(COLUMNS, ROWS, 500) == [3, 19, 71, 74]


@pytest.mark.parametrize("room", [40, 60, 74, 100, 120, 140])
def test_narrower_columns_fit_the_room_and_give_up_the_cheapest_first(room):
    run, started, test, message = widths = column_widths(COLUMNS, ROWS, room)
    assert sum(widths) <= room
    assert run == 3  # keep
    assert started in (19, 10)  # whole, or the date over the time; never folded here
    if room >= 3 + 10 + 71 + 30:  # the message is cut to 30, the date wraps ...
        assert test == 71  # ... before a name folds
    if room >= 3 + 19 + 71 + 30:
        assert started == 19 and message == room - 3 - 19 - 71


def test_a_min_width_column_keeps_it_while_others_can_give():
    dated = [COLUMNS[0], Column("started", min_width=10), *COLUMNS[2:]]
    assert column_widths(COLUMNS, ROWS, 24)[1] < 10  # without it, the date folds too
    widths = column_widths(dated, ROWS, 24)
    assert sum(widths) <= 24 and widths[1] == 10


def test_a_table_that_cannot_fit_still_fits_the_room():
    widths = column_widths(COLUMNS, ROWS, 8)
    assert sum(widths) <= 8 and all(w >= 1 for w in widths)


@pytest.mark.parametrize("width", [40, 80, 200])
def test_plain_text_is_the_styled_table_without_its_rule_and_style(width):
    plain = format_table(COLUMNS, ROWS, width=width).splitlines()
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    console.print(_build(COLUMNS, ROWS, "", width))
    styled = [line.rstrip() for line in console.file.getvalue().splitlines()]
    assert [line for line in styled if set(line) != {"─"}] == plain
    assert max(len(line) for line in plain) <= width


def test_cells_are_text_not_markup(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    TablePrinter(out, width=80).table([Column("a")], [["[bold]x[/bold] :smile:"]])
    assert "[bold]x[/bold] :smile:" in out.getvalue()
    assert "\x1b[1m" in out.getvalue()  # the header is bold in a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    out = Tty()
    TablePrinter(out, width=80).table([Column("a")], [["x"]])
    assert out.getvalue() == "a\nx\n"  # NO_COLOR: plain, even in a terminal
