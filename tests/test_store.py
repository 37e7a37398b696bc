"""The history store: schema contract, batched writer, durability, redaction, errors."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from supervisor.core.events import (
    DeployFinished,
    IterationFinished,
    IterationStarted,
    LogLine,
    PhaseFinished,
    PhaseStarted,
    PluginFailed,
    RunFinished,
    TestCrashed,
    TestHung,
    TestResult,
    TestStarted,
    count_outcomes,
    utc_now,
)
from supervisor.store import queries, schema
from supervisor.store.writer import HistoryStore, StoreError

REPO = Path(__file__).resolve().parents[1]

# The "History database contract" table of DESIGN.md, verbatim.
CONTRACT = {
    "runs": "id, started_at, finished_at, status, config, host, git_sha, version",
    "iterations": "id, run_id, seq, started_at, finished_at, deploy_revision, status, passed, failed, hung, crashed, skipped, errors",
    "deploys": "id, iteration_id, backend, revision, started_at, duration, status, message",
    "phases": "id, iteration_id, name, seq, status, gate, passed, failed, started_at, duration",
    "tests": "id, suite, nodeid, file, first_seen",
    "results": "id, iteration_id, phase_id, test_id, attempt, outcome, duration, started_at, message, longrepr, dump",
    "logs": "id, run_id, at, level, source, text",
    "plugin_errors": "id, run_id, plugin, hook, error, at",
    # 0007_live: the tests in flight, for `netra-supervisor watch` (README)
    "running": "run_id, iteration, phase, suite, nodeid, worker, deadline, started_at",
    "evidence": "id, result_id, source, lines, omitted, first_at, last_at",
}
FOREIGN_KEYS = {
    ("iterations", "run_id", "runs"),
    ("deploys", "iteration_id", "iterations"),
    ("phases", "iteration_id", "iterations"),
    ("results", "iteration_id", "iterations"),
    ("results", "phase_id", "phases"),
    ("results", "test_id", "tests"),
    ("logs", "run_id", "runs"),
    ("plugin_errors", "run_id", "runs"),
    ("evidence", "result_id", "results"),
}


def open_store(path: Path, **kwargs) -> HistoryStore:
    kwargs.setdefault("config_json", {"run": {"target": 10}})
    kwargs.setdefault("git_sha", "abc123")
    kwargs.setdefault("version", "0.1.0")
    return HistoryStore.open(path, **kwargs)


def start(store: HistoryStore, iteration: int = 1, phases: int = 1) -> None:
    store.put(IterationStarted(run_id=store.run_id, iteration=iteration, started_at=utc_now()))
    for phase in range(1, phases + 1):
        store.put(
            PhaseStarted(
                run_id=store.run_id,
                iteration=iteration,
                phase=phase,
                name=f"P{phase}",
                gate="all-pass",
                suites=("s",),
                started_at=utc_now(),
            )
        )


def result(i: int, iteration: int = 1, phase: int = 1, outcome: str = "passed", **kw) -> TestResult:
    return TestResult(
        iteration=iteration,
        phase=phase,
        suite="s",
        nodeid=f"tests/test_x.py::test_{i}",
        outcome=outcome,
        duration=0.01,
        started_at=utc_now(),
        file="tests/test_x.py",
        **kw,
    )


def count(path: Path, sql: str, *params) -> int:
    conn = queries.connect_readonly(path)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


# --------------------------------------------------------------------------- schema


def test_schema_matches_the_contract(tmp_path):
    path = tmp_path / "deep" / "er" / "history.db"
    open_store(path).close()
    conn = queries.connect_readonly(path)
    tables = {
        row[0]
        for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not row[0].startswith("sqlite_")
    }
    assert tables - {"_sqlite_migrations", "_netra_migrations"} == set(CONTRACT)
    for table, columns in CONTRACT.items():
        info = {row[1]: row[2] for row in conn.execute(f"PRAGMA table_info({table})")}
        missing = [c for c in columns.split(", ") if c not in info]
        assert missing == [], f"{table} lacks {missing}"
        for column, decl in info.items():
            if column in ("duration",):
                assert decl == "REAL", (table, column)
            if column.endswith("_at") or column == "first_seen" or column == "config":
                assert decl == "TEXT", (table, column)
    fks = set()
    for table in CONTRACT:
        for row in conn.execute(f"PRAGMA foreign_key_list({table})"):
            fks.add((table, row[3], row[2]))
    assert FOREIGN_KEYS <= fks

    def indexes(table):
        out = {}
        for row in conn.execute(f"PRAGMA index_list({table})"):
            cols = tuple(r[2] for r in conn.execute(f"PRAGMA index_info({row[1]})"))
            out[cols] = bool(row[2])
        return out

    assert indexes("tests")[("suite", "nodeid")] is True
    assert ("test_id",) in indexes("results")
    assert ("iteration_id",) in indexes("results")
    assert any(cols[0] == "run_id" for cols in indexes("iterations"))
    assert ("result_id",) in indexes("evidence")
    conn.close()


def test_wal_mode(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(path)
    try:
        other = sqlite3.connect(path)
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        other.close()
    finally:
        store.close()


def test_migrations_are_idempotent(tmp_path):
    path = tmp_path / "h.db"
    first = open_store(path)
    first.close()
    second = open_store(path)
    second.close()
    assert (first.run_id, second.run_id) == (1, 2)
    conn = sqlite3.connect(path)
    assert schema.pending(conn) == []
    names = [
        row[0]
        for row in conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", (schema.MIGRATION_SET,)
        )
    ]
    assert names == [name for name, _ in schema.MIGRATIONS]
    assert schema.migrate(conn) == []
    conn.close()


def test_fallback_migrations_without_sqlite_utils_helper(tmp_path, monkeypatch):
    path = tmp_path / "h.db"
    conn = sqlite3.connect(path, isolation_level=None)
    monkeypatch.setitem(sys.modules, "sqlite_utils.migrations", None)  # import fails
    every = [name for name, _ in schema.MIGRATIONS]
    assert schema.migrate(conn) == every
    assert conn.execute(f"SELECT COUNT(*) FROM {schema.FALLBACK_TABLE}").fetchone()[0] == len(every)
    monkeypatch.delitem(sys.modules, "sqlite_utils.migrations")
    assert schema.migrate(conn) == []  # the real helper sees it as applied
    conn.close()
    open_store(path).close()


def test_up_to_date_database_does_not_import_sqlite_utils(tmp_path):
    path = tmp_path / "h.db"
    open_store(path).close()
    code = textwrap.dedent(
        f"""
        import sys
        import supervisor.store.writer as w
        assert "sqlite_utils" not in sys.modules, "writer import pulled sqlite_utils"
        w.HistoryStore.open({str(path)!r}).close()
        assert "sqlite_utils" not in sys.modules, "migrated db pulled sqlite_utils"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=30)


# --------------------------------------------------------------------------- writing


def test_batching_and_tests_rows_reused_across_iterations(tmp_path):
    path = tmp_path / "h.db"
    n = 1200
    store = open_store(path)
    run = store.run_id
    for iteration in (1, 2):
        start(store, iteration)
        outcomes = []
        for i in range(n):
            outcome = "failed" if iteration == 2 and i % 100 == 0 else "passed"
            outcomes.append(outcome)
            store.put(TestStarted(iteration=iteration, phase=1, suite="s", nodeid=f"x{i}"))
            store.put(
                result(i, iteration, outcome=outcome, message="boom" if outcome == "failed" else "")
            )
        counts = count_outcomes(outcomes)
        store.put(
            PhaseFinished(
                run_id=run,
                iteration=iteration,
                phase=1,
                name="P1",
                gate="all-pass",
                status="passed" if counts["failed"] == 0 else "gate-failed",
                gate_held=counts["failed"] == 0,
                counts=counts,
                duration=12.5,
            )
        )
        store.put(
            IterationFinished(
                run_id=run,
                iteration=iteration,
                finished_at=utc_now(),
                status="passed" if counts["failed"] == 0 else "failed",
                counts=counts,
                deploy_revision=f"rev{iteration}",
            )
        )
    assert store.flush()
    store.close()

    conn = queries.connect_readonly(path)
    assert conn.execute("SELECT COUNT(*) FROM tests").fetchone()[0] == n
    assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 2 * n
    assert conn.execute("SELECT COUNT(DISTINCT test_id) FROM results").fetchone()[0] == n
    its = queries.iterations(conn, run)
    assert [(i["seq"], i["status"], i["passed"], i["failed"], i["revision"]) for i in its] == [
        (1, "passed", n, 0, "rev1"),
        (2, "failed", n - 12, 12, "rev2"),
    ]
    rows = list(queries.iteration_results(conn, queries.resolve_iteration(conn, "2")).values())
    assert len(rows) == n
    assert rows[0]["suite"] == "s" and rows[0]["nodeid"] == "tests/test_x.py::test_0"
    assert rows[0]["outcome"] == "failed" and rows[0]["message"] == "boom"
    assert rows[0]["phase"] == "P1" and rows[1]["outcome"] == "passed"
    phase = conn.execute(
        "SELECT p.status, p.passed, p.failed, p.duration FROM phases p"
        " JOIN iterations i ON i.id = p.iteration_id WHERE i.run_id = ? AND i.seq = 2",
        (run,),
    ).fetchone()
    assert tuple(phase) == ("gate-failed", n - 12, 12, 12.5)
    assert queries.runs(conn)[0]["iterations"] == 2
    conn.close()


def test_every_event_kind_lands_in_its_table(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(path, config_json='{"a": 1}')
    run = store.run_id
    start(store)
    store.put(
        DeployFinished(
            run_id=run,
            iteration=1,
            backend="command",
            revision="deadbeef",
            started_at=utc_now(),
            duration=3.5,
            status="ok",
            message="deployed",
        )
    )
    store.put(
        TestHung(iteration=1, phase=1, suite="s", nodeid="t::hang", deadline=60, reason="deadline")
    )
    store.put(
        TestResult(
            iteration=1,
            phase=1,
            suite="s",
            nodeid="t::hang",
            outcome="hung",
            dump="Thread 1 ...",
            worker="gw0",
        )
    )
    store.put(TestCrashed(iteration=1, phase=1, suite="s", nodeid="t::boom", cause="exit code 3"))
    store.put(LogLine(level="info", source="loop", text="hello"))
    store.put(PluginFailed(plugin="p", hook="netra_results", error="ValueError: x"))
    store.put(
        RunFinished(run_id=run, finished_at=utc_now(), status="failed", exit_code=1, iterations=1)
    )
    store.close()

    conn = queries.connect_readonly(path)
    deploy = dict(conn.execute("SELECT * FROM deploys").fetchone())
    assert (deploy["backend"], deploy["revision"], deploy["duration"], deploy["status"]) == (
        "command",
        "deadbeef",
        3.5,
        "ok",
    )
    assert queries.iterations(conn, run)[0]["revision"] == "deadbeef"
    logs = [dict(r) for r in conn.execute("SELECT level, source, text FROM logs ORDER BY id")]
    assert logs[0]["source"] == "watchdog" and "t::hang" in logs[0]["text"]
    assert logs[1]["source"] == "watchdog" and "t::boom" in logs[1]["text"]
    assert "crashed (exit code 3)" in logs[1]["text"]
    assert logs[2] == {"level": "info", "source": "loop", "text": "hello"}
    assert tuple(conn.execute("SELECT plugin, hook, error FROM plugin_errors").fetchone()) == (
        "p",
        "netra_results",
        "ValueError: x",
    )
    hung = conn.execute("SELECT outcome, dump, worker FROM results").fetchone()
    assert tuple(hung) == ("hung", "Thread 1 ...", "gw0")
    runrow = dict(conn.execute("SELECT * FROM runs").fetchone())
    assert (runrow["status"], runrow["exit_code"], runrow["config"]) == ("failed", 1, '{"a": 1}')
    assert runrow["finished_at"] and runrow["host"]
    assert queries.latest_run(conn) == run
    conn.close()


def test_results_without_started_events_still_get_rows(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(path)
    store.put(result(1, iteration=3, phase=2))
    store.put(result(2, iteration=3, phase=0))
    store.close()
    conn = queries.connect_readonly(path)
    rows = conn.execute(
        "SELECT p.name, p.seq FROM results r LEFT JOIN phases p ON p.id = r.phase_id"
        " JOIN iterations i ON i.id = r.iteration_id WHERE i.seq = 3 ORDER BY r.id"
    ).fetchall()
    assert [tuple(r) for r in rows] == [("phase 2", 2), (None, None)]
    conn.close()


def test_written_within_a_second_without_flush(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(path)
    try:
        start(store)
        store.put(result(1))
        time.sleep(1.5)
        assert count(path, "SELECT COUNT(*) FROM results") == 1
    finally:
        store.close()


def test_a_result_that_did_not_pass_is_written_before_the_interval(tmp_path):
    """News first: a failure wakes the writer (a passing result waits for the interval)."""
    path = tmp_path / "h.db"
    store = open_store(path, flush_interval=60)
    try:
        start(store)
        store.put(result(1))  # passed: waits
        time.sleep(0.3)
        assert count(path, "SELECT COUNT(*) FROM results") == 0
        store.put(result(2, outcome="failed"))  # takes the queued one along
        deadline = time.monotonic() + 5
        while count(path, "SELECT COUNT(*) FROM results") < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert count(path, "SELECT COUNT(*) FROM results") == 2
    finally:
        store.close()


def test_a_full_batch_is_written_before_the_interval(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(path, flush_interval=60, max_batch=100)
    try:
        start(store)
        for i in range(150):
            store.put(result(i))
        deadline = time.monotonic() + 5
        while count(path, "SELECT COUNT(*) FROM results") < 100 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert count(path, "SELECT COUNT(*) FROM results") >= 100
    finally:
        store.close()
    assert count(path, "SELECT COUNT(*) FROM results") == 150


def test_batches_reach_the_database_file_while_the_run_goes_on(tmp_path):
    """The WAL is copied into the database while the run goes on (at most every
    CHECKPOINT_GAP seconds), not only at close (where the user would wait for it): a
    copy of the main file alone soon has the rows, with nothing written after them."""
    path = tmp_path / "h.db"
    store = open_store(path, flush_interval=0.05)
    try:
        start(store)
        copy = tmp_path / "main-file-only.db"

        def rows_in_main_file(want: int) -> int:
            deadline = time.monotonic() + 5
            rows = 0
            while rows < want and time.monotonic() < deadline:
                shutil.copyfile(path, copy)  # without h.db-wal: only what was checkpointed
                conn = sqlite3.connect(copy)
                try:
                    rows = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
                finally:
                    conn.close()
                copy.unlink()
                time.sleep(0.05)
            return rows

        for i in range(300):
            store.put(result(i))
        assert store.flush()
        assert rows_in_main_file(300) == 300
        # written right after a copy: the next one waits for the gap, then comes
        # with a later wake-up although nothing more is written
        for i in range(300, 350):
            store.put(result(i))
        assert store.flush()
        assert rows_in_main_file(350) == 350
    finally:
        store.close()


KILL_CHILD = """
import sys, time
from supervisor.core.events import IterationStarted, PhaseStarted, TestResult, utc_now
from supervisor.store.writer import HistoryStore

store = HistoryStore.open(sys.argv[1])
store.put(IterationStarted(run_id=store.run_id, iteration=1, started_at=utc_now()))
store.put(PhaseStarted(run_id=store.run_id, iteration=1, phase=1, name="P1", gate="none",
                       suites=("s",), started_at=utc_now()))
print("ready", flush=True)
i = 0
while True:
    store.put(TestResult(iteration=1, phase=1, suite="s", nodeid=f"t::{i}", outcome="passed"))
    print(i, flush=True)
    i += 1
    time.sleep(0.005)
"""


def test_sigkill_loses_at_most_the_last_second(tmp_path):
    path = tmp_path / "h.db"
    script = tmp_path / "child.py"
    script.write_text(KILL_CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    seen: list[tuple[int, float]] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                ready.set()
            else:
                seen.append((int(line), time.monotonic()))

    reader_thread = threading.Thread(target=read, daemon=True)
    reader_thread.start()
    try:
        assert ready.wait(20), "child did not start"
        time.sleep(2.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(10)
    reader_thread.join(5)
    safe = {i for i, at in seen if at < killed_at - 1.0}
    assert len(safe) > 50
    conn = queries.connect_readonly(path)
    stored = {int(r[0].split("::")[1]) for r in conn.execute("SELECT nodeid FROM tests")}
    assert conn.execute("SELECT COUNT(*) FROM results").fetchone()[0] == len(stored)
    conn.close()
    assert safe - stored == set()


SECRET = "s3cr3t-T0KEN"


def test_redaction_applies_to_every_text_column(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(
        path,
        config_json={"auth": {"token": SECRET}},
        host=f"host-{SECRET}",
        git_sha=SECRET,
        version=SECRET,
        redact=lambda text: text.replace(SECRET, "***"),
    )
    run = store.run_id
    store.put(IterationStarted(run_id=run, iteration=1, started_at=utc_now()))
    store.put(
        PhaseStarted(
            run_id=run,
            iteration=1,
            phase=1,
            name=f"P1 {SECRET}",
            gate=SECRET,
            suites=("s",),
            started_at=utc_now(),
            impact=SECRET,
        )
    )
    store.put(
        DeployFinished(
            run_id=run,
            iteration=1,
            backend=SECRET,
            revision=SECRET,
            started_at=utc_now(),
            duration=1.0,
            status="ok",
            message=f"Authorization: Bearer {SECRET}",
        )
    )
    store.put(
        TestResult(
            iteration=1,
            phase=1,
            suite=f"s-{SECRET}",
            nodeid=f"t::test[{SECRET}]",
            outcome="failed",
            file=SECRET,
            message=SECRET,
            longrepr=f"assert token == '{SECRET}'",
            dump=f"locals: token={SECRET}",
            worker=SECRET,
        )
    )
    store.put(
        TestHung(iteration=1, phase=1, suite=SECRET, nodeid=SECRET, deadline=1, reason="deadline")
    )
    store.put(LogLine(level="info", source=SECRET, text=f"minted {SECRET}"))
    store.put(PluginFailed(plugin=SECRET, hook=SECRET, error=f"KeyError: {SECRET}"))
    store.put(
        PhaseFinished(
            run_id=run,
            iteration=1,
            phase=1,
            name=SECRET,
            gate=SECRET,
            status=SECRET,
            gate_held=False,
            counts={"failed": 1},
            duration=1.0,
        )
    )
    store.put(
        IterationFinished(
            run_id=run,
            iteration=1,
            finished_at=utc_now(),
            status=SECRET,
            counts={"failed": 1},
            deploy_revision=SECRET,
        )
    )
    store.put(
        RunFinished(run_id=run, finished_at=utc_now(), status=SECRET, exit_code=1, iterations=1)
    )
    store.close()

    conn = queries.connect_readonly(path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    masked = 0
    for table in tables:
        for row in conn.execute(f"SELECT * FROM {table}"):
            for value in tuple(row):
                if isinstance(value, str):
                    assert SECRET not in value, (table, value)
                    masked += "***" in value
    assert masked >= 20
    assert conn.execute("SELECT longrepr FROM results").fetchone()[0] == "assert token == '***'"
    conn.close()
    assert SECRET.encode() not in path.read_bytes()


# --------------------------------------------------------------------------- lifecycle


def test_close_is_idempotent_and_thread_safe(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(path)
    start(store)
    for i in range(500):
        store.put(result(i))
    threads = [threading.Thread(target=store.close) for _ in range(4)]
    for t in threads:
        t.start()
    assert store.close() is True
    for t in threads:
        t.join(10)
    assert store.close() is True
    assert store.closed
    assert count(path, "SELECT COUNT(*) FROM results") == 500
    store.put(result(999))  # late: not written, but reported instead of raising
    assert store.late_events == 1 and "after the store was closed" in store.last_error
    assert store.flush() is True


def test_close_from_a_signal_handler_during_close(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(path)
    start(store)
    store.put(result(1))
    previous = signal.signal(signal.SIGUSR1, lambda *a: store.close())
    try:
        signal.raise_signal(signal.SIGUSR1)  # handler closes
        store.close()  # and the normal path closes again
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert count(path, "SELECT COUNT(*) FROM results") == 1


def test_resume_reuses_the_run_and_its_iterations(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(path)
    start(store)
    store.put(result(1))
    store.put(
        RunFinished(
            run_id=store.run_id,
            finished_at=utc_now(),
            status="interrupted",
            exit_code=130,
            iterations=1,
        )
    )
    store.close()

    again = HistoryStore.resume(path, store.run_id)
    assert again.run_id == store.run_id
    start(again, 1)  # the interrupted iteration again: same rows
    again.put(result(2))
    start(again, 2)
    again.put(result(1, iteration=2))
    again.close()

    conn = queries.connect_readonly(path)
    assert [i["seq"] for i in queries.iterations(conn, store.run_id)] == [1, 2]
    one = queries.resolve_iteration(conn, f"{store.run_id}.1")
    assert (
        conn.execute("SELECT COUNT(*) FROM results WHERE iteration_id = ?", (one.id,)).fetchone()[0]
        == 2
    )
    assert conn.execute("SELECT COUNT(*) FROM phases").fetchone()[0] == 2
    assert queries.runs(conn)[0]["status"] == "running"
    conn.close()
    with pytest.raises(StoreError, match="no such run"):
        HistoryStore.resume(path, 99)
    with pytest.raises(StoreError, match="no history database"):
        HistoryStore.resume(tmp_path / "missing.db", 1)


def test_open_reports_an_unusable_file(tmp_path):
    bad = tmp_path / "h.db"
    bad.write_text("this is not a database" * 100)
    with pytest.raises(StoreError, match=str(bad)):
        open_store(bad)


# --------------------------------------------------------------------------- errors


def test_locked_database_keeps_events_and_recovers(tmp_path):
    path = tmp_path / "h.db"
    errors: list[str] = []
    recovered: list[str] = []
    store = open_store(
        path,
        busy_timeout=0.1,
        flush_interval=0.1,
        on_error=errors.append,
        on_recover=recovered.append,
    )
    start(store)
    assert store.flush()

    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        for i in range(1500):
            store.put(result(i))
        deadline = time.monotonic() + 5
        while not errors and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.last_error and "locked" in store.last_error
        assert store.flush(timeout=5) is False
        time.sleep(1.5)  # still locked: more retries happen, still one message
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert store.flush(timeout=10) is True
    assert len(errors) == 1 and "kept in memory" in errors[0]
    assert recovered and store.last_error is None
    assert store.close()
    assert count(path, "SELECT COUNT(*) FROM results") == 1500


def test_locked_briefly_waits_without_losing(tmp_path):
    path = tmp_path / "h.db"
    store = open_store(path)  # default busy timeout
    start(store)
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    release = threading.Timer(2.0, lambda: (locker.execute("ROLLBACK"), locker.close()))
    release.start()
    for i in range(1200):
        store.put(result(i))
    release.join()
    assert store.close()
    assert count(path, "SELECT COUNT(*) FROM results") == 1200


def test_disk_full_keeps_events_until_space_returns(tmp_path):
    path = tmp_path / "h.db"
    errors: list[str] = []
    store = open_store(path, flush_interval=0.1, on_error=errors.append)
    start(store)
    assert store.flush()
    # The writer is idle (nothing queued): simulate a full disk on its connection.
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    for i in range(300):
        store.put(result(i, longrepr="x" * 2000))
    assert store.flush(timeout=5) is False
    assert errors and "full" in errors[0]
    assert count(path, "SELECT COUNT(*) FROM results") == 0
    store._conn.execute("PRAGMA max_page_count = 1073741823")  # space is back
    assert store.flush(timeout=10) is True
    assert store.close()
    assert count(path, "SELECT COUNT(*) FROM results") == 300


def test_a_later_run_reuses_the_tests_rows_even_after_a_rolled_back_batch(tmp_path):
    """A run reads a suite's known tests once; a batch that SQLite refused (a full
    disk) is rolled back with the tests rows it added, and its retry adds them again."""
    path = tmp_path / "h.db"
    first = open_store(path)
    start(first)
    for i in range(5):
        first.put(result(i))
    assert first.close()
    known = dict(queries.connect_readonly(path).execute("SELECT nodeid, id FROM tests"))

    errors: list[str] = []
    second = open_store(path, flush_interval=0.1, on_error=errors.append)
    start(second)
    assert second.flush()
    pages = second._conn.execute("PRAGMA page_count").fetchone()[0]
    second._conn.execute(f"PRAGMA max_page_count = {pages}")
    for i in range(3, 300):  # 3 and 4 are known, the rest are new
        second.put(result(i, longrepr="x" * 2000))
    assert second.flush(timeout=5) is False and errors
    assert count(path, "SELECT COUNT(*) FROM tests") == 5  # the new rows went with it
    second._conn.execute("PRAGMA max_page_count = 1073741823")
    assert second.close()

    conn = queries.connect_readonly(path)
    try:
        assert conn.execute("SELECT COUNT(*) FROM tests").fetchone()[0] == 300
        rows = conn.execute(
            "SELECT t.nodeid, t.id FROM results r JOIN tests t ON t.id = r.test_id"
            " WHERE r.iteration_id IN (SELECT id FROM iterations WHERE run_id = ?)",
            (second.run_id,),
        ).fetchall()
    finally:
        conn.close()
    assert len(rows) == 297  # every result names a tests row that exists
    assert {nodeid: row_id for nodeid, row_id in rows if nodeid in known} == {
        n: known[n] for n in ("tests/test_x.py::test_3", "tests/test_x.py::test_4")
    }


def test_a_rejected_event_is_reported_not_fatal(tmp_path):
    path = tmp_path / "h.db"
    errors: list[str] = []
    store = open_store(path, on_error=errors.append)
    start(store)
    store.put(result(1))
    store.put(result(2, attempt=object()))  # SQLite cannot bind this
    store.put(result(3))
    store.close()
    assert store.dropped == 1 and len(errors) == 1 and "test_result" in errors[0]
    assert count(path, "SELECT COUNT(*) FROM results") == 2
