"""The history writer against hostile text: every row stored, valid UTF-8, within its cap,
and whatever was cut kept whole in the file its marker names (issue 12)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from supervisor.core.events import (
    DeployFinished,
    IterationFinished,
    IterationStarted,
    LogLine,
    PhaseStarted,
    PluginFailed,
    TestHung,
    TestResult,
    count_outcomes,
    utc_now,
)
from supervisor.redact import Redactor
from supervisor.store.bounds import CAPS
from supervisor.store.writer import HistoryStore

MIB = 1024 * 1024
SECRET = "Zq9vX2kLw7Pq"
MARKER = re.compile(
    r"\[netra cut ([\d,]+) of ([\d,]+) bytes here; "
    r"(?:full text: (full/run-\d+/(\w+)-(\d+)-(\w+)\.txt)|the full text could not be saved \(.+?\))\]"
)

# hostile text -> what the database must hold (and what a cut's file must hold)
SMALL = {
    "lone high \ud800 surrogate": "lone high \\ud800 surrogate",
    "lone low \udc00 surrogate": "lone low \\udc00 surrogate",
    b"decoded \xff byte".decode("utf-8", "surrogateescape"): "decoded \\udcff byte",
    "nul \x00 kept": "nul \x00 kept",
    "controls \x07 \x1b[31mred\x1b[0m \x7f \t": "controls \x07 \x1b[31mred\x1b[0m \x7f \t",
    "astral 😀🧪𝔘": "astral 😀🧪𝔘",
    b"invalid \xff\xfe\xc3( utf-8": "invalid \ufffd\ufffd\ufffd( utf-8",
}
BIG_MIXED = "\udcff\x00😀" + "é" * (3 * MIB) + "\ud800 end"
BIG_MIXED_STORED = "\\udcff\x00😀" + "é" * (3 * MIB) + "\\ud800 end"


def open_store(path: Path, **kwargs) -> HistoryStore:
    kwargs.setdefault("flush_interval", 60.0)  # everything below lands in one batch
    return HistoryStore.open(path, config_json={}, git_sha="abc", version="0", **kwargs)


def result(i: int, outcome: str = "failed", **kw) -> TestResult:
    kw.setdefault("nodeid", f"tests/test_x.py::test_{i}")
    return TestResult(iteration=1, phase=1, suite="s", outcome=outcome, started_at=utc_now(), **kw)


def start(store: HistoryStore) -> None:
    store.put(IterationStarted(run_id=store.run_id, iteration=1, started_at=utc_now()))
    store.put(
        PhaseStarted(
            run_id=store.run_id,
            iteration=1,
            phase=1,
            name="P1",
            gate="none",
            suites=("s",),
            started_at=utc_now(),
        )
    )


def finish(store: HistoryStore, results: list[TestResult]) -> dict[str, int]:
    counts = count_outcomes([r.outcome for r in results])
    store.put(
        IterationFinished(
            run_id=store.run_id, iteration=1, finished_at=utc_now(), status="failed", counts=counts
        )
    )
    return counts


def rows(db: Path, sql: str, *params) -> list[tuple]:
    """Rows with text as raw bytes: what is really in the file, decoded by the caller."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.text_factory = bytes
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def text_of(cell: bytes | None) -> str | None:
    return None if cell is None else cell.decode("utf-8")  # strict: must be valid UTF-8


def every_text_cell(db: Path) -> list[tuple[str, str, int, str]]:
    """(table, column, row id, text) of every text value of every table, strictly decoded."""
    out = []
    for (table,) in rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'"):
        table = table.decode()
        if table.startswith(("sqlite_", "_")):
            continue
        columns = [c[1].decode() for c in rows(db, f"PRAGMA table_info({table})")]
        for row in rows(db, f"SELECT * FROM {table}"):
            for column, cell in zip(columns, row):
                if isinstance(cell, bytes):
                    out.append((table, column, row[0], text_of(cell)))
    return out


def full_text(db: Path, stored: str, table: str, column: str, row_id: int) -> str:
    """The text a marker's file holds, after checking the marker's numbers and name."""
    found = MARKER.search(stored)
    assert found, f"no marker in {table}.{column} of row {row_id}: {stored[-200:]!r}"
    cut, total = (int(n.replace(",", "")) for n in found.group(1, 2))
    assert found.group(3), f"the full text was not saved: {found.group(0)}"
    assert (found.group(4), int(found.group(5)), found.group(6)) == (table, row_id, column)
    data = (db.parent / found.group(3)).read_bytes()
    assert len(data) == total and 0 < cut <= total
    return data.decode("utf-8")


def assert_capped(db: Path) -> None:
    for table, column, row_id, text in every_text_cell(db):
        cap = CAPS.get((table, column))
        if cap is not None:
            assert len(text.encode()) <= cap, (table, column, row_id)
        if (table, column) == ("results", "message"):
            assert "\n" not in text and "\r" not in text


def test_every_kind_of_hostile_text_is_stored_in_every_table(tmp_path):
    db = tmp_path / "h.db"
    store = open_store(db)
    start(store)
    results = [
        result(i, message=raw, longrepr=raw, dump=raw, worker=raw) for i, raw in enumerate(SMALL)
    ]
    results += [
        result(100, nodeid="tests/test_x.py::test_\udcff[\x00]", message="in the node id"),
        result(101, message="x" * (20 * MIB)),
        result(102, outcome="error", longrepr="y" * (5 * MIB)),
        result(103, outcome="hung", dump="Thread 1:\n  File 'x.py', line 1\n" * 100_000),
        result(104, message=BIG_MIXED, longrepr=BIG_MIXED, dump=BIG_MIXED),
        result(105, outcome="passed"),
    ]
    for index, event in enumerate(results):
        store.put(event)
        if index % 3 == 0:  # watchdog and log rows interleaved with results in the batch
            store.put(TestHung(1, 1, "s", event.nodeid, 60.0, "deadline", dump=BIG_MIXED))
    for raw in [*SMALL, BIG_MIXED]:
        store.put(LogLine(level="warning", source=raw, text=raw))
        store.put(PluginFailed(plugin=raw, hook="netra_results", error=raw))
        store.put(
            DeployFinished(store.run_id, 1, "command", raw, utc_now(), 1.0, "failed", message=raw)
        )
    counts = finish(store, results)
    assert store.close(), store.last_error
    assert (store.dropped, store.unsaved) == (0, 0)

    # every row is there, and the iteration's counts match its rows
    stored = {
        outcome.decode(): n
        for outcome, n in rows(db, "SELECT outcome, COUNT(*) FROM results GROUP BY outcome")
    }
    assert stored == {k: v for k, v in counts.items() if v}
    (iteration,) = rows(db, "SELECT passed, failed, hung, errors FROM iterations")
    assert iteration == (counts["passed"], counts["failed"], counts["hung"], counts["error"])
    hung_logs = sum(1 for i in range(len(results)) if i % 3 == 0)
    assert rows(db, "SELECT COUNT(*) FROM logs") == [(len(SMALL) + 1 + hung_logs,)]
    assert rows(db, "SELECT COUNT(*) FROM plugin_errors") == [(len(SMALL) + 1,)]
    assert rows(db, "SELECT COUNT(*) FROM deploys") == [(len(SMALL) + 1,)]

    # valid UTF-8 everywhere (every_text_cell decodes strictly), caps hold
    assert_capped(db)

    # small hostile texts are stored as they should read, in every column
    by_id = dict(rows(db, "SELECT r.id, t.nodeid FROM results r JOIN tests t ON t.id = r.test_id"))
    cells = {(t, c, i): v for t, c, i, v in every_text_cell(db)}
    for i, expected in enumerate(SMALL.values()):
        row_id = next(k for k, v in by_id.items() if v.decode() == f"tests/test_x.py::test_{i}")
        for column in ("longrepr", "dump", "worker"):
            assert cells["results", column, row_id] == expected
        assert cells["results", "message", row_id] == expected.strip()
    assert rows(
        db, "SELECT COUNT(*) FROM tests WHERE nodeid = ?", "tests/test_x.py::test_\\udcff[\x00]"
    ) == [(1,)]
    for column in ("text", "source"):
        assert {v for (v,) in rows(db, f"SELECT {column} FROM logs WHERE level = 'warning'")} >= {
            e.encode() for e in SMALL.values()
        }

    # every cut text: its marker names the file that holds the whole text
    def full(table: str, column: str, row_id: int) -> str:
        return full_text(db, cells[table, column, row_id], table, column, row_id)

    huge = next(k for k, v in by_id.items() if v.endswith(b"test_101"))
    assert full("results", "message", huge) == "x" * (20 * MIB)
    assert cells["results", "message", huge].startswith("x" * 800)
    long = next(k for k, v in by_id.items() if v.endswith(b"test_102"))
    assert full("results", "longrepr", long) == "y" * (5 * MIB)
    assert cells["results", "longrepr", long].endswith("y" * 1000)  # head and tail kept
    dumped = next(k for k, v in by_id.items() if v.endswith(b"test_103"))
    assert full("results", "dump", dumped) == "Thread 1:\n  File 'x.py', line 1\n" * 100_000
    mixed = next(k for k, v in by_id.items() if v.endswith(b"test_104"))
    for column in ("message", "longrepr", "dump"):
        assert full("results", column, mixed) == BIG_MIXED_STORED
    for table, column in (("logs", "text"), ("plugin_errors", "error"), ("deploys", "message")):
        (row_id,) = [
            i for (t, c, i), v in cells.items() if (t, c) == (table, column) and len(v) > 5000
        ]
        assert full(table, column, row_id) == BIG_MIXED_STORED
    saved = sorted(p.name for p in (tmp_path / "full").rglob("*.txt"))
    assert len(saved) == 9  # exactly the cut values, no leftovers


def test_a_secret_is_never_split_by_a_cut(tmp_path):
    """Secrets packed edge to edge: every place a cap can cut falls inside one of them."""
    db = tmp_path / "h.db"
    store = open_store(db, redact=Redactor([SECRET]))
    start(store)
    packed = (SECRET + " ") * 80_000  # masked, still 320 KB: over every cap
    results = [result(1, message=packed, longrepr=packed, dump=packed)]
    for event in results:
        store.put(event)
    store.put(LogLine(level="error", source="loop", text=packed))
    store.put(PluginFailed(plugin="p", hook="h", error=packed))
    store.put(DeployFinished(store.run_id, 1, "command", None, utc_now(), 1.0, "ok", packed))
    finish(store, results)
    assert store.close(), store.last_error

    pieces = {SECRET[i : i + 4] for i in range(len(SECRET) - 3)}
    texts = [text for *_, text in every_text_cell(db)]
    texts += [p.read_text("utf-8") for p in (tmp_path / "full").rglob("*.txt")]
    assert len(texts) > 20 and sum("netra cut" in t for t in texts) == 6
    for text in texts:
        assert not any(piece in text for piece in pieces), text[:200]
    assert_capped(db)
    (message,) = rows(db, "SELECT message FROM results")
    assert message[0].decode().startswith("*** *** ***")


def test_unwritable_full_folder_still_stores_the_row_and_says_so(tmp_path):
    db = tmp_path / "h.db"
    (tmp_path / "full").write_text("a file where the folder should be")
    store = open_store(db)
    start(store)
    results = [result(1, message="x" * (20 * MIB), longrepr="y" * MIB), result(2)]
    for event in results:
        store.put(event)
    finish(store, results)
    assert store.close(), store.last_error
    stored = rows(db, "SELECT message, longrepr FROM results ORDER BY id")
    message, longrepr = (text_of(c) for c in stored[0])
    for text in (message, longrepr):
        found = MARKER.search(text)
        assert found and found.group(3) is None and "could not be saved" in found.group(0)
    assert len(message.encode()) <= 1024 and message.startswith("x" * 800)
    assert rows(db, "SELECT failed FROM iterations") == [(2,)]


def test_a_cut_result_keeps_its_file_when_its_batch_is_retried_event_by_event(tmp_path):
    """A bad event makes the batch roll back: the files it had written go, the rows are
    written one by one, and each cut row's file is written again under its id."""
    db = tmp_path / "h.db"
    store = open_store(db)
    start(store)
    store.put(result(1, message="a" * 5000))
    store.put(result(2, message="b" * 5000, attempt=[1]))  # SQLite cannot bind a list
    store.put(result(3, message="c" * 5000))
    assert store.close() is False and store.dropped == 1
    stored = rows(db, "SELECT id, message FROM results ORDER BY id")
    assert [row_id for row_id, _ in stored] == [1, 2]
    assert full_text(db, text_of(stored[0][1]), "results", "message", 1) == "a" * 5000
    assert full_text(db, text_of(stored[1][1]), "results", "message", 2) == "c" * 5000
    names = sorted(p.name for p in (tmp_path / "full").rglob("*.txt"))
    assert names == ["results-1-message.txt", "results-2-message.txt"]


@pytest.mark.parametrize("resumed", [False, True])
def test_cut_rows_get_the_id_their_file_names_after_earlier_rows(tmp_path, resumed):
    db = tmp_path / "h.db"
    store = open_store(db)
    start(store)
    store.put(result(1))
    store.put(LogLine("info", "loop", "before"))
    assert store.flush()
    if resumed:
        store.close()
        store = HistoryStore.resume(db, store.run_id, flush_interval=60.0)
    store.put(result(2, message="m" * 3000))
    store.put(LogLine("info", "loop", "l" * (20 * 1024)))
    store.put(result(3))
    store.put(LogLine("info", "loop", "after"))
    assert store.close()
    assert [r[0] for r in rows(db, "SELECT id FROM results ORDER BY id")] == [1, 2, 3]
    (message,) = rows(db, "SELECT message FROM results WHERE id = 2")
    assert full_text(db, text_of(message[0]), "results", "message", 2) == "m" * 3000
    (text,) = rows(db, "SELECT text FROM logs WHERE id = 2")
    assert full_text(db, text_of(text[0]), "logs", "text", 2) == "l" * (20 * 1024)
    assert rows(db, "SELECT text FROM logs WHERE id = 3") == [(b"after",)]
