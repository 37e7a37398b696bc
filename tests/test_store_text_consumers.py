"""Hostile text at the other consumers of an event: the redacting wrapper runner events
pass through, the headless reporter on an ASCII or strict UTF-8 stdout, and the trend
pane reading the history (issue 12)."""

from __future__ import annotations

import dataclasses
import io

import pytest

from supervisor.core.events import (
    DeployFinished,
    IterationFinished,
    IterationStarted,
    LogLine,
    PluginFailed,
    SuiteFinished,
    TestHung,
    TestResult,
    TestsCollected,
    count_outcomes,
    utc_now,
)
from supervisor.headless import SHOWN_BYTES, HeadlessReporter
from supervisor.redact import Redactor, redacting
from supervisor.store.writer import HistoryStore
from supervisor.tui.widgets.trend import load_history

SECRET = "Zq9vX2kLw7Pq"
ESCAPED = b"bad \xff byte".decode("utf-8", "surrogateescape")


def hostile_events() -> list:
    huge = "AssertionError: " + "x" * (20 * 1024 * 1024)
    return [
        DeployFinished(1, 1, "command", "rev\udcff", utc_now(), 1.0, "failed", "out \x00 😀"),
        TestResult(1, 1, "s", "t::surrogate", "failed", message=f"AssertionError: {ESCAPED}"),
        TestResult(1, 1, "s", "t::nul", "failed", message="nul \x00 here\nsecond line"),
        TestResult(1, 1, "s", "t::huge", "failed", message=huge),
        TestResult(1, 1, "s", "t::bytes", "failed", message=b"raw \xff\xfe"),  # type: ignore[arg-type]
        TestHung(1, 1, "s", "t::hang\ud800", 5.0, "deadline", dump=f"Thread 1:\n  {ESCAPED}\n"),
        SuiteFinished(1, 1, "s", "error", "could not start: \udc80 😀"),
        LogLine("warning", "loop", f"log {ESCAPED} \x00"),
        PluginFailed("p\udcff", "netra_results", "ValueError: " + "e" * 100_000),
    ]


@pytest.mark.parametrize("encoding", ["ascii", "utf-8"])
def test_headless_prints_every_hostile_event_on_a_strict_stdout(encoding):
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding=encoding, errors="strict", write_through=True)
    reporter = HeadlessReporter(out=out, verbose=True)
    for event in hostile_events():
        reporter(event)
    text = raw.getvalue().decode(encoding)  # strict: what reached stdout is clean
    lines = text.splitlines()
    for wanted in ("t::surrogate", "t::nul", "t::huge", "t::bytes", "HUNG", "could not run"):
        assert wanted in text, wanted
    assert "bad \\udcff byte" in text and "[plugin error]" in text and "deploy command" in text
    assert "nul \x00 here" in text and "second line" in text  # one line, nothing lost
    assert max(len(line.encode()) for line in lines) < SHOWN_BYTES + 200  # cut, not 20 MB
    if encoding == "utf-8":
        assert "😀" in text
    else:
        assert "\\U0001f600" in text


def test_headless_masks_a_secret_before_cutting_the_line():
    out = io.StringIO()
    reporter = HeadlessReporter(out=out, verbose=True, redact=Redactor([SECRET]))
    packed = (SECRET + " ") * 2000
    reporter(TestResult(1, 1, "s", "t", "failed", message=packed))
    reporter(LogLine("error", "loop", packed))
    pieces = {SECRET[i : i + 4] for i in range(len(SECRET) - 3)}
    assert "*** ***" in out.getvalue()
    assert not any(piece in out.getvalue() for piece in pieces)


def test_redacting_makes_runner_text_storable_even_without_secrets():
    emitted: list = []
    emit = redacting(emitted.append, Redactor())
    for event in hostile_events():
        emit(event)
    emit(TestsCollected(1, 1, "s", ("t::ok", "t::\udcff")))
    clean = TestResult(1, 1, "s", "t::clean", "passed", message="fine 😀")
    emit(clean)
    assert emitted[-1] is clean  # nothing to change: the same object, no copy
    for event in emitted:
        for field in dataclasses.fields(event):
            value = getattr(event, field.name)
            texts = value if isinstance(value, tuple) else (value,)
            for text in texts:
                assert not isinstance(text, bytes)
                if isinstance(text, str):
                    text.encode("utf-8")  # strict
    assert emitted[1].message == "AssertionError: bad \\udcff byte"
    assert emitted[4].message == "raw \ufffd\ufffd"
    assert emitted[-2].nodeids == ("t::ok", "t::\\udcff")


def test_redacting_masks_before_making_storable():
    """A secret read from the environment may itself hold a surrogate."""
    secret = f"tok{ESCAPED}en-value"
    emitted: list = []
    redacting(emitted.append, Redactor([secret]))(
        TestResult(1, 1, "s", "t", "failed", message=f"sent {secret}")
    )
    assert emitted[0].message == "sent ***"


def test_trend_pane_reads_the_history_through_queries(tmp_path):
    db = tmp_path / "h.db"
    store = HistoryStore.open(db, config_json={}, git_sha="abc", version="0")
    for seq, passed in ((1, 3), (2, 5)):
        store.put(IterationStarted(run_id=store.run_id, iteration=seq, started_at=utc_now()))
        counts = count_outcomes(["passed"] * passed)
        store.put(IterationFinished(store.run_id, seq, utc_now(), "passed", counts))
    assert store.close()
    assert load_history(db) == [(store.run_id, 1, 3), (store.run_id, 2, 5)]
    assert load_history(tmp_path / "missing.db") == []
