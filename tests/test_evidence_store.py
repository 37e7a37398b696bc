"""The ``evidence`` table: written by the history writer, beside (never instead of) results."""

from __future__ import annotations

import sqlite3

from cli_helpers import query, run_cli
from test_store import open_store, result, start

from supervisor.core.events import Evidence, TestResult
from supervisor.redact import Redactor
from supervisor.store import schema
from supervisor.store.evidence import evidence_of_test, evidence_text, run_evidence

SECRET = "tok-SECRET-0123456789"


def evidence(r: TestResult, lines: str, source: str = "log:/var/log/app.log", **kw) -> Evidence:
    return Evidence(r.iteration, r.phase, r.suite, r.nodeid, r.attempt, source, lines, **kw)


def test_evidence_names_its_result_row_and_is_redacted(tmp_path):
    db = tmp_path / "h.db"
    store = open_store(db, redact=Redactor([SECRET]))
    start(store, phases=2)
    failed = result(1, outcome="failed")
    same_test_later = result(1, phase=2, outcome="hung")  # same test, another phase
    store.put(result(0))
    store.put(failed)
    store.put(same_test_later)
    store.put(evidence(failed, f"ERROR auth failed for Bearer {SECRET}", omitted=3))
    store.put(
        evidence(same_test_later, "WARNING still waiting", first_at="2026-12-01T01:00:00.000+00:00")
    )
    store.put(evidence(same_test_later, "from loki", source="plugin:loki"))
    assert store.close()
    rows = query(
        db,
        "SELECT p.seq, r.outcome, e.source, e.lines, e.omitted, e.first_at FROM evidence e"
        " JOIN results r ON r.id = e.result_id JOIN phases p ON p.id = r.phase_id ORDER BY e.id",
    )
    assert rows == [
        (1, "failed", "log:/var/log/app.log", "ERROR auth failed for Bearer ***", 3, None),
        (2, "hung", "log:/var/log/app.log", "WARNING still waiting", 0, "2026-12-01T01:00:00.000+00:00"),
        (2, "hung", "plugin:loki", "from loki", 0, None),
    ]  # fmt: skip
    assert SECRET not in db.read_bytes().decode("latin-1")


def test_evidence_that_cannot_be_attached_never_costs_a_result(tmp_path):
    db = tmp_path / "h.db"
    problems: list[str] = []
    store = open_store(db, on_error=problems.append)
    start(store)
    ghost = result(9, outcome="failed")  # its result was never put
    store.put(result(1, outcome="failed"))
    store.put(evidence(ghost, "lost"))
    store.put(result(2, outcome="error"))
    store.close()
    assert query(db, "SELECT COUNT(*) FROM results") == [(2,)]
    assert query(db, "SELECT COUNT(*) FROM evidence") == [(0,)]
    assert len(problems) == 1 and "evidence" in problems[0]


def test_a_resumed_run_attaches_evidence_to_a_result_written_before(tmp_path):
    from supervisor.store.writer import HistoryStore

    db = tmp_path / "h.db"
    store = open_store(db)
    start(store)
    failed = result(1, outcome="failed")
    store.put(failed)
    store.close()
    again = HistoryStore.resume(db, store.run_id)
    again.put(evidence(failed, "late words"))
    again.close()
    assert query(db, "SELECT lines FROM evidence") == [("late words",)]
    found = run_evidence(db, store.run_id, [(1, 1, "s", failed.nodeid, 1), (1, 1, "s", "nope", 1)])
    assert list(found) == [(1, 1, "s", failed.nodeid, 1)]
    assert found[(1, 1, "s", failed.nodeid, 1)][0]["lines"] == "late words"


def test_history_test_shows_the_newest_non_pass_evidence(tmp_path):
    db = tmp_path / ".netra" / "history.db"
    store = open_store(db)
    start(store)
    first = result(1, outcome="failed")
    store.put(first)
    store.put(evidence(first, "first words"))
    start(store, iteration=2)
    second = result(1, iteration=2, outcome="hung")
    store.put(second)
    store.put(
        evidence(
            second,
            "2026-12-01T01:00:00.000Z ERROR a\n… 5 more lines …\nlast",
            omitted=5,
            first_at="2026-12-01T01:00:00.000+00:00",
            last_at="2026-12-01T01:00:09.500+00:00",
        )
    )
    store.close()
    proc = run_cli(["history", "test", "test_1", "--db", str(db)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "what the backend said while it ran (iteration 1.2, hung, attempt 1):" in out
    assert "log:/var/log/app.log (7 lines, 5 left out, 01:00:00.000 – 01:00:09.500)" in out
    assert "    … 5 more lines …" in out and "first words" not in out
    proc = run_cli(["history", "test", "test_1", "--db", str(db), "--json"], tmp_path)
    import json

    data = json.loads(proc.stdout)
    assert [row["lines"] for row in data["evidence"]] == [
        "2026-12-01T01:00:00.000Z ERROR a\n… 5 more lines …\nlast",
        "first words",
    ]
    conn = sqlite3.connect(db)
    rows = evidence_of_test(conn, 1, results=1)
    assert evidence_text(rows).splitlines()[0].endswith("(iteration 1.2, hung, attempt 1):")


def test_a_history_from_before_0006_reads_as_no_evidence(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    for name, migrate in schema.MIGRATIONS:
        if name != "0006_evidence":
            migrate(conn)
    assert evidence_of_test(conn, 1) == []
    conn.close()
    assert run_evidence(db, 1, [(1, 1, "s", "t", 1)]) == {}
