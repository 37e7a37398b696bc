"""supervisor.text: storable, clip and one_line, the helpers every consumer shares."""

from __future__ import annotations

import pytest

from supervisor.store import signature
from supervisor.text import (
    ELLIPSIS,
    LINE_BREAK,
    clip,
    exception_line,
    one_line,
    storable,
    utf8_size,
)

# every width of UTF-8 character, and a combining mark
MIXED = "aé€😀" * 7 + "e\u0301" + "z"


class _Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _StrNotStr:
    def __str__(self):  # type: ignore[override]
        return 42


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain ascii", "plain ascii"),
        ("lone high \ud800.", "lone high \\ud800."),
        ("lone low \udc00.", "lone low \\udc00."),
        (b"bad \xff byte".decode("utf-8", "surrogateescape"), "bad \\udcff byte"),
        ("pair \ud83d\ude00 as two code points", "pair 😀 as two code points"),
        ("reversed \ude00\ud83d pair", "reversed \\ude00\\ud83d pair"),
        ("nul \x00 and bell \x07 kept", "nul \x00 and bell \x07 kept"),
        ("astral 😀🧪𝔘", "astral 😀🧪𝔘"),
        (b"invalid \xff\xfe\xc3( utf-8", "invalid \ufffd\ufffd\ufffd( utf-8"),
        (bytearray(b"ok \xe2\x82\xac"), "ok €"),
        (None, ""),
        (42, "42"),
        (_Unprintable(), "<unprintable _Unprintable>"),
    ],
)
def test_storable_makes_any_value_text_that_strict_utf8_accepts(value, expected):
    text = storable(value)
    assert text == expected
    text.encode("utf-8")  # strict: raises on a surrogate


def test_storable_falls_back_to_repr_when_str_fails():
    assert storable(_StrNotStr()).startswith("<test_store_text._StrNotStr object at ")


def test_storable_returns_clean_text_itself():
    clean = "déjà vu 😀 " * 1000
    assert storable(clean) is clean


@pytest.mark.parametrize("tail", [False, True])
def test_clip_is_the_longest_cut_on_a_character_boundary(tail):
    for text in (MIXED, "x" * 50, "😀" * 20):
        size = utf8_size(text)
        for limit in range(0, size + 2):
            kept = clip(text, limit, tail=tail)
            assert utf8_size(kept) <= limit
            assert text.endswith(kept) if tail else text.startswith(kept)
            if kept != text:  # one more character would not fit
                longer = text[-len(kept) - 1 :] if tail else text[: len(kept) + 1]
                assert utf8_size(longer) > limit
            else:
                assert kept is text


def test_one_line_folds_breaks_and_keeps_nul():
    text = "  AssertionError: boom\r\n\n   where x = 1\x00\u2028tail\t "
    assert one_line(text) == f"AssertionError: boom{LINE_BREAK}where x = 1\x00{LINE_BREAK}tail"
    assert one_line("short\nenough", 100) == f"short{LINE_BREAK}enough"


def test_one_line_with_a_cap_stays_within_it_and_says_it_cut():
    huge = "é" * (20 * 1024 * 1024)
    line = one_line(huge, 1024)
    assert utf8_size(line) <= 1024 and line.endswith(ELLIPSIS) and line.startswith("éé")
    assert "\n" not in one_line("line\n" * 5000, 64)
    # trailing blanks past the window are not "something dropped"
    assert one_line("ok" + " " * 5000, 16) == "ok"


def test_signature_spells_the_same_line_break_and_groups_folded_messages():
    assert signature.LINE_BREAK == LINE_BREAK
    folded = one_line("AssertionError: user 42 missing\n  details that vary 99")
    assert signature.signature("failed", folded) == signature.signature(
        "failed", "AssertionError: user 7 missing\nother details"
    )


def test_exception_line_names_the_type_and_folds_the_message():
    assert exception_line(ValueError("bad id 12\n  at row 3")) == (
        f"ValueError: bad id 12{LINE_BREAK}at row 3"
    )
    assert exception_line(KeyError()) == "KeyError"
    assert exception_line(RuntimeError("  \n ")) == "RuntimeError"


def test_exception_line_is_bounded_and_never_raises():
    line = exception_line(OSError("x" * 10_000))
    assert utf8_size(line) <= 300 and line.endswith(ELLIPSIS)
    assert exception_line(OSError("é" * 100), max_bytes=None) == "OSError: " + "é" * 100

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert exception_line(Unprintable()).startswith("Unprintable")
