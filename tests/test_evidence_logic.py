"""Which log lines are a test's evidence, and how many are kept (plain logic, no files)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from supervisor.core.events import TestResult
from supervisor.core.evidence import (
    EVIDENCE_OUTCOMES,
    HEAD_LINES,
    MAX_BYTES,
    MAX_LINE_CHARS,
    MAX_LINES,
    EvidenceWindow,
    bound,
    leading_timestamp,
    result_window,
    select,
    stamped,
)
from supervisor.redact import Redactor

T0 = datetime(2026, 12, 1, 1, 35, 55, 123000, tzinfo=timezone.utc).timestamp()


def window(start: float, end: float) -> EvidenceWindow:
    return EvidenceWindow(
        datetime.fromtimestamp(start, timezone.utc), datetime.fromtimestamp(end, timezone.utc)
    )


def test_leading_timestamps_of_the_common_formats():
    assert leading_timestamp("2026-12-01T01:35:55.123Z ERROR boom") == T0
    assert leading_timestamp("2026-12-01 01:35:55.123+00:00 boom") == T0
    assert leading_timestamp("2026-12-01T03:35:55.123+02:00 boom") == T0
    assert leading_timestamp("[2026-12-01T01:35:55.123Z] boom") == T0
    assert leading_timestamp('{"ts": "2026-12-01T01:35:55.123Z", "msg": "boom"}') == T0
    assert leading_timestamp('127.0.0.1 - - [01/Dec/2026:01:35:55 +0000] "GET /"') is None
    assert leading_timestamp('[01/Dec/2026:01:35:55 +0000] "GET / HTTP/1.1" 500') == int(T0)
    # Python logging's asctime: local time, comma before the milliseconds
    local = datetime(2026, 12, 1, 1, 35, 55, 123000).timestamp()
    assert leading_timestamp("2026-12-01 01:35:55,123 ERROR app: boom") == local
    assert leading_timestamp("Dec  1 01:35:55 host app[12]: boom", year=2026) == int(local)
    for line in (
        "",
        "Traceback (most recent call last):",
        "  File 'x.py', line 3",
        "2026-13-45T00:00:00 x",
    ):
        assert leading_timestamp(line) is None, line


def test_lines_fall_in_the_window_by_their_own_time_or_the_record_they_continue():
    lines = [
        (T0 + 0.0, "2026-12-01T01:35:50.000Z INFO long before"),
        (T0 + 0.1, "2026-12-01T01:35:55.500Z ERROR inside"),
        (T0 + 0.1, "Traceback (most recent call last):"),  # continues the ERROR record
        (T0 + 0.1, "2026-12-01T01:36:30.000Z INFO long after"),
        (T0 + 0.1, "  an unstamped line after a stamped one takes its time"),
    ]
    kept = select(lines, window(T0, T0 + 2))
    assert [line for _, line in kept] == [
        "2026-12-01T01:35:55.500Z ERROR inside",
        "Traceback (most recent call last):",
    ]
    assert kept[0][0] == pytest.approx(T0 + 0.377)


def test_an_unstamped_line_arriving_later_is_placed_by_its_arrival_not_the_last_record():
    """A redeploy's banner (unstamped, seconds later) after the last stamped line of the
    previous iteration is not evidence of a test that ended before it arrived."""
    lines = [
        (T0 + 0.4, "2026-12-01T01:35:55.500Z WARNING agent stream stopped"),
        (T0 + 0.4, "  detail written with it"),
        (T0 + 4.0, "--- iteration 2: deploying"),
    ]
    kept = select(lines, window(T0, T0 + 2))
    assert [line for _, line in kept] == [
        "2026-12-01T01:35:55.500Z WARNING agent stream stopped",
        "  detail written with it",
    ]


def test_unstamped_lines_fall_in_the_window_by_when_they_arrived():
    lines = [(T0 - 5, "before"), (T0 + 0.5, "during"), (T0 + 1.0, "also during"), (T0 + 9, "after")]
    assert [line for _, line in select(lines, window(T0, T0 + 1))] == ["during", "also during"]


def test_result_window_is_the_run_widened_by_the_margin():
    result = TestResult(1, 1, "s", "t::x", "failed", 2.5, "2026-12-01T01:35:55.123+00:00")
    w = result_window(result, now=0.0, margin=1.0)
    assert (w.start_ts, w.end_ts) == (T0 - 1.0, T0 + 3.5)
    assert w.start.tzinfo is not None
    no_start = TestResult(1, 1, "s", "t::y", "error", 0.5)
    w = result_window(no_start, now=T0, margin=1.0)
    assert (w.start_ts, w.end_ts) == (T0 - 1.5, T0 + 1.0)
    assert {"failed", "error", "hung", "crashed", "xpassed"} == EVIDENCE_OUTCOMES


def test_too_many_lines_keep_the_start_and_the_end_and_say_what_was_left_out():
    timed = [(T0 + i, f"line {i}") for i in range(500)]
    kept = bound(timed)
    assert len(kept.lines) == MAX_LINES
    assert kept.omitted == 500 - (MAX_LINES - 1)
    assert kept.lines[:HEAD_LINES] == tuple(f"line {i}" for i in range(HEAD_LINES))
    assert kept.lines[HEAD_LINES] == f"… {kept.omitted} more lines …"
    assert kept.lines[-1] == "line 499"
    assert kept.first_at == "2026-12-01T01:35:55.123+00:00"
    assert kept.last_at == "2026-12-01T01:44:14.123+00:00"


def test_long_lines_are_cut_and_the_bytes_bounded():
    timed = [(None, f"{i:03d} " + "é" * 3000) for i in range(100)]
    kept = bound(timed)
    assert len(kept.text.encode()) <= MAX_BYTES
    assert all(len(line) <= MAX_LINE_CHARS for line in kept.lines)
    assert kept.omitted > 0 and kept.lines[0].startswith("000 ")
    assert kept.first_at is None  # no line had a time
    assert bound([(None, "a"), (None, "b")]).text == "a\nb"


def test_secrets_are_masked_before_any_cut():
    secret = "tok-SECRET-0123456789"
    line = "x" * (MAX_LINE_CHARS - 8) + secret  # the cut would fall inside the secret
    kept = bound([(T0, line), (T0, f"Authorization: Bearer {secret}")], Redactor([secret]))
    assert "tok-SE" not in kept.text and "***" in kept.text


def test_plugin_lines_carry_their_own_times():
    lines = ["2026-12-01T01:35:55.123Z first", "  continued", "no time"]
    assert stamped(lines) == [(T0, lines[0]), (T0, lines[1]), (T0, lines[2])]
    assert stamped(["no time at all"]) == [(None, "no time at all")]
