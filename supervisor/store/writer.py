"""The one writer of the history database.

:class:`HistoryStore` owns the SQLite connection. ``put(event)`` only appends to a
queue (thread-safe, never blocks, never touches SQLite); a single writer thread folds
the events into rows and commits them in batches: whatever is queued is written at
least every ``flush_interval`` (0.5 s by default) and as soon as ``WAKE_AT`` (256)
events are waiting, one transaction per batch of at most ``max_batch`` (1000) events.
A killed supervisor therefore loses at most the last second of events; committed rows
survive a SIGKILL (WAL, ``synchronous=NORMAL``).

After each write while the run goes on, the writer also copies the WAL into the
database (a passive checkpoint, which never waits for readers). SQLite checkpoints
whatever is left when the last connection closes, and that happens when the run ends,
while the user waits: done on the way, the close only has the last batch to copy.

Events name iterations and phases by sequence number; the writer maps them to row ids
as ``IterationStarted`` / ``PhaseStarted`` arrive. A result naming an iteration or a
phase the writer has not seen yet still gets a row (the iteration / phase row is
created on the fly), so nothing is dropped because of an event missing upstream.

When SQLite refuses a write (``sqlite3.OperationalError``: database locked, disk full,
I/O error) the run goes on: the transaction is rolled back, the events stay in memory,
the write is retried with backoff, ``last_error`` holds one clear message and
``on_error`` is called once per failure episode (``on_recover`` when writes succeed
again). An event SQLite rejects for any other reason (a bug, a constraint) is written
on its own so it cannot take its batch with it, and is reported, never dropped
silently.

Secrets: ``redact`` (``str -> str``) is applied to every text value before it is
written, in every table. Then every text is made storable (:func:`supervisor.text.storable`:
lone surrogates escaped, never an exception), and the free-text columns are held to
their caps (:mod:`supervisor.store.bounds`: a cut text is saved whole in a file beside
the database and the stored value says so). Redaction comes first, on the whole text,
so a cut can never leave part of a secret unmasked.
"""

from __future__ import annotations

import atexit
import contextlib
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from supervisor.core.events import (
    DeployFinished,
    Event,
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
    utc_now,
)
from supervisor.store import schema
from supervisor.store.bounds import Bounds, RowId
from supervisor.text import storable

Redactor = Callable[[str], str]
Reporter = Callable[[str], None]

# Backoff between attempts while SQLite refuses writes (seconds), then the last value.
_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)

# Rows name their id: None lets SQLite pick the next one; a row with a cut text names
# the id its file was named after (see _next_id).
_INSERT_RESULT = (
    "INSERT INTO results (id, iteration_id, phase_id, test_id, attempt, outcome, duration,"
    " started_at, message, longrepr, dump, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_LOG = "INSERT INTO logs (id, run_id, at, level, source, text) VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_PLUGIN_ERROR = (
    "INSERT INTO plugin_errors (id, run_id, plugin, hook, error, at) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_TEST = (
    "INSERT INTO tests (suite, nodeid, file, first_seen) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (suite, nodeid) DO NOTHING"
)
_INSERT_ITERATION = (
    "INSERT INTO iterations (run_id, seq, started_at, status) VALUES (?, ?, ?, 'running')"
    " ON CONFLICT (run_id, seq) DO NOTHING"
)
_INSERT_PHASE = (
    "INSERT INTO phases (iteration_id, name, seq, status, gate, started_at, impact)"
    " VALUES (?, ?, ?, 'running', ?, ?, ?) ON CONFLICT (iteration_id, seq) DO NOTHING"
)
_FINISH_ITERATION = (
    "UPDATE iterations SET finished_at = ?, status = ?,"
    " deploy_revision = COALESCE(?, deploy_revision), passed = ?, failed = ?, hung = ?,"
    " crashed = ?, skipped = ?, errors = ? WHERE id = ?"
)
_FINISH_PHASE = (
    "UPDATE phases SET status = ?, gate = ?, gate_held = ?, passed = ?, failed = ?,"
    " hung = ?, crashed = ?, errors = ?, skipped = ?, duration = ? WHERE id = ?"
)
_INSERT_DEPLOY = (
    "INSERT INTO deploys (id, iteration_id, backend, revision, started_at, duration, status,"
    " message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class StoreError(RuntimeError):
    """The history database cannot be opened (one line, shown to the user)."""


#: Queued events that wake the writer before its interval is up: small batches keep
#: the last one, written while the run ends, short.
WAKE_AT = 256


class _FlushRequest:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


class _Batch:
    """What one transaction accumulates; ``undo`` reverts the id caches on rollback and
    the full-text files named ``saved`` are removed then (their rows were not written)."""

    __slots__ = ("results", "logs", "plugin_errors", "undo", "saved")

    def __init__(self) -> None:
        self.results: list[tuple] = []
        self.logs: list[tuple] = []
        self.plugin_errors: list[tuple] = []
        self.undo: list[tuple[dict, Any]] = []
        self.saved: list[Path] = []


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
    # check_same_thread=False: created here, then used only by the writer thread.
    return sqlite3.connect(
        str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )


def _retrying(what: str, path: Path, fn: Callable[[], Any], attempts: int = 4) -> Any:
    """Run a synchronous setup step, retrying while SQLite is busy or full."""
    for attempt in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if attempt == attempts - 1:
                raise StoreError(f"cannot {what} history database {path}: {exc}") from exc
            time.sleep(_BACKOFF[min(attempt + 2, len(_BACKOFF) - 1)])
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot {what} history database {path}: {exc} "
                "(move the file away or pass another --db)"
            ) from exc
    raise AssertionError("unreachable")  # pragma: no cover


class HistoryStore:
    """The single batched writer of one run's history. Create with :meth:`open` or
    :meth:`resume`; then ``put`` events from any thread and ``close`` at the end."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        run_id: int,
        *,
        redact: Redactor | None = None,
        on_error: Reporter | None = None,
        on_recover: Reporter | None = None,
        flush_interval: float = 0.5,
        max_batch: int = 1000,
        iteration_ids: dict[int, int] | None = None,
        phase_ids: dict[tuple[int, int], int] | None = None,
    ) -> None:
        self.path = path
        self.run_id = run_id
        #: One clear message while writes are failing (or events were lost); else None.
        self.last_error: str | None = None
        #: Events SQLite rejected outright (each one reported through ``on_error``).
        self.dropped = 0
        #: Events still unwritten when ``close`` gave up (each reported).
        self.unsaved = 0
        #: Events ``put`` after ``close`` (not written; reported in ``last_error``).
        self.late_events = 0
        self._conn = conn
        self._redact = redact
        self._bounds = Bounds(path, run_id)
        self._on_error = on_error
        self._on_recover = on_recover
        self._interval = flush_interval
        self._max_batch = max_batch
        self._wake_at = min(max_batch, WAKE_AT)
        self._iteration_ids: dict[int, int] = dict(iteration_ids or {})
        self._phase_ids: dict[tuple[int, int], int] = dict(phase_ids or {})
        self._test_ids: dict[tuple[str, str], int] = {}
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._close_deadline = float("inf")
        self._failures = 0
        self._handlers: dict[type, Callable[[Any, _Batch], None]] = {
            TestResult: self._on_result,
            IterationStarted: self._on_iteration_started,
            IterationFinished: self._on_iteration_finished,
            PhaseStarted: self._on_phase_started,
            PhaseFinished: self._on_phase_finished,
            DeployFinished: self._on_deploy,
            TestHung: self._on_hung,
            TestCrashed: self._on_crashed,
            LogLine: self._on_log,
            PluginFailed: self._on_plugin_failed,
            RunFinished: self._on_run_finished,
        }
        self._thread = threading.Thread(target=self._run, name="netra-history-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # ------------------------------------------------------------------ construction

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        config_json: str | Mapping[str, Any] = "{}",
        host: str | None = None,
        git_sha: str | None = None,
        version: str | None = None,
        redact: Redactor | None = None,
        on_error: Reporter | None = None,
        on_recover: Reporter | None = None,
        flush_interval: float = 0.5,
        max_batch: int = 1000,
        busy_timeout: float = 2.0,
    ) -> HistoryStore:
        """Create the parent folders, migrate, insert this run's ``runs`` row
        (synchronously: ``run_id`` is known on return) and start the writer thread.

        Raises :class:`StoreError` when the file cannot be opened or stays locked.
        """
        path = Path(path)
        if host is None:
            import socket

            host = socket.gethostname()
        if version is None:
            from supervisor import __version__ as version
        if isinstance(config_json, str):
            config = config_json
        else:
            import json

            config = json.dumps(config_json, default=str)
        red = _text(redact)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder of history database {path}: {exc}") from exc
        conn = _retrying("open", path, lambda: _connect(path, busy_timeout))
        try:
            _retrying("migrate", path, lambda: schema.migrate(conn))

            def insert_run() -> int:
                cur = conn.execute(
                    "INSERT INTO runs (started_at, status, config, host, git_sha, version)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        red(utc_now()),
                        red("running"),
                        red(config),
                        red(host),
                        red(git_sha),
                        red(version),
                    ),
                )
                return int(cur.lastrowid)

            run_id = _retrying("write to", path, insert_run)
        except BaseException:
            conn.close()
            raise
        return cls(
            conn,
            path,
            run_id,
            redact=redact,
            on_error=on_error,
            on_recover=on_recover,
            flush_interval=flush_interval,
            max_batch=max_batch,
        )

    @classmethod
    def resume(
        cls,
        path: str | Path,
        run_id: int,
        *,
        redact: Redactor | None = None,
        on_error: Reporter | None = None,
        on_recover: Reporter | None = None,
        flush_interval: float = 0.5,
        max_batch: int = 1000,
        busy_timeout: float = 2.0,
    ) -> HistoryStore:
        """Reopen an existing run: its iteration and phase numbers keep mapping to their
        rows (an ``IterationStarted`` for a known number reuses the row), and the run
        is marked ``running`` again. Raises :class:`StoreError` if there is no such run.
        """
        path = Path(path)
        if not path.exists():
            raise StoreError(f"cannot resume run {run_id}: no history database at {path}")
        conn = _retrying("open", path, lambda: _connect(path, busy_timeout))
        try:
            _retrying("migrate", path, lambda: schema.migrate(conn))
            if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone() is None:
                raise StoreError(f"cannot resume run {run_id}: no such run in {path}")
            iteration_ids = {
                seq: row_id
                for seq, row_id in conn.execute(
                    "SELECT seq, id FROM iterations WHERE run_id = ?", (run_id,)
                )
            }
            phase_ids = {
                (iseq, pseq): row_id
                for iseq, pseq, row_id in conn.execute(
                    "SELECT i.seq, p.seq, p.id FROM phases p"
                    " JOIN iterations i ON i.id = p.iteration_id WHERE i.run_id = ?",
                    (run_id,),
                )
            }
            red = _text(redact)
            _retrying(
                "write to",
                path,
                lambda: conn.execute(
                    "UPDATE runs SET status = ?, finished_at = NULL WHERE id = ?",
                    (red("running"), run_id),
                ),
            )
        except BaseException:
            conn.close()
            raise
        return cls(
            conn,
            path,
            run_id,
            redact=redact,
            on_error=on_error,
            on_recover=on_recover,
            flush_interval=flush_interval,
            max_batch=max_batch,
            iteration_ids=iteration_ids,
            phase_ids=phase_ids,
        )

    # ------------------------------------------------------------------ public API

    def put(self, event: Event) -> None:
        """Queue an event for writing. Thread-safe, never blocks, never raises.
        Event types the history does not record are ignored here, for free."""
        if type(event) not in self._handlers:
            return
        if self._closing:
            self.late_events += 1
            self.last_error = (
                f"history database {self.path}: {self.late_events} event(s) arrived "
                "after the store was closed and were not written"
            )
            return
        queue = self._queue
        queue.append(event)
        if len(queue) >= self._wake_at:
            self._wake.set()

    def flush(self, timeout: float | None = 30.0) -> bool:
        """Write everything queued so far now; True once it is committed.

        False if SQLite refused the write (see ``last_error``) or ``timeout`` passed.
        """
        if threading.current_thread() is self._thread:
            return False
        if not self._thread.is_alive():
            return not self._queue and self.unsaved == 0
        request = _FlushRequest()
        self._queue.append(request)
        self._wake.set()
        if not request.done.wait(timeout):
            return False
        return request.ok

    def close(self, timeout: float = 10.0) -> bool:
        """Write everything queued, stop the writer thread, close the connection.

        Idempotent and safe from any thread or a signal handler; never waits much
        longer than ``timeout`` (if SQLite keeps refusing, the unwritten events are
        counted in ``unsaved`` and reported). True when everything was written.
        """
        if not self._closing:
            self._close_deadline = time.monotonic() + timeout
            self._closing = True
        self._wake.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(max(0.0, self._close_deadline - time.monotonic()) + 5.0)
            try:
                atexit.unregister(self.close)
            except Exception:  # pragma: no cover - interpreter shutting down
                pass
        return self.unsaved == 0 and self.dropped == 0 and not self._thread.is_alive()

    @property
    def closed(self) -> bool:
        return self._closing and not self._thread.is_alive()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writer thread

    def _run(self) -> None:
        pending: list[Any] = []
        waiters: list[_FlushRequest] = []
        next_attempt = 0.0
        queue = self._queue
        try:
            while True:
                now = time.monotonic()
                if self._failures:
                    wait = max(0.0, next_attempt - now)
                else:
                    wait = self._interval
                if not self._closing:
                    self._wake.wait(wait)
                elif pending and self._failures:
                    # closing while SQLite refuses writes: keep trying until the deadline
                    time.sleep(min(wait, max(0.0, self._close_deadline - now)))
                self._wake.clear()
                closing = self._closing
                while True:
                    try:
                        item = queue.popleft()
                    except IndexError:
                        break
                    if type(item) is _FlushRequest:
                        waiters.append(item)
                    else:
                        pending.append(item)
                if pending and (
                    not self._failures or waiters or closing or time.monotonic() >= next_attempt
                ):
                    self._write(pending)
                    if not closing and not self._failures:
                        self._checkpoint()
                    if self._failures:
                        delay = _BACKOFF[min(self._failures - 1, len(_BACKOFF) - 1)]
                        next_attempt = time.monotonic() + delay
                if waiters:
                    ok = not pending
                    for request in waiters:
                        request.ok = ok
                        request.done.set()
                    waiters.clear()
                if closing and not queue:
                    if not pending or time.monotonic() >= self._close_deadline:
                        break
        except BaseException as exc:  # pragma: no cover - a bug in this module
            self._report(f"history writer stopped unexpectedly: {exc!r}")
        finally:
            pending.extend(item for item in queue if type(item) is not _FlushRequest)
            for item in queue:
                if type(item) is _FlushRequest:
                    waiters.append(item)
            queue.clear()
            if pending:
                self.unsaved = len(pending)
                self._report(
                    f"history database {self.path}: {len(pending)} event(s) could not be "
                    f"written and are lost ({self.last_error or 'writer stopped'})"
                )
            for request in waiters:
                request.ok = not pending
                request.done.set()
            try:
                self._conn.close()
            except sqlite3.Error:  # pragma: no cover
                pass

    def _write(self, pending: list[Any]) -> None:
        """Commit ``pending`` in transactions of at most ``max_batch`` events; remove
        what was committed. On OperationalError stop and keep the rest for a retry."""
        size = self._max_batch
        while pending:
            chunk = pending[:size]
            try:
                self._transaction(chunk)
            except sqlite3.OperationalError as exc:
                self._failed(exc, len(pending))
                return
            except Exception:
                # Something in this batch SQLite will never accept: write one event per
                # transaction so the bad one cannot take the others with it.
                for index, event in enumerate(chunk):
                    try:
                        self._transaction([event])
                    except sqlite3.OperationalError as exc:
                        del pending[:index]
                        self._failed(exc, len(pending))
                        return
                    except Exception as exc:
                        self.dropped += 1
                        self._report(
                            f"history database {self.path}: could not record a "
                            f"{getattr(event, 'kind', type(event).__name__)} event: {exc!r}"
                        )
            del pending[: len(chunk)]
            if self._failures:
                self._recovered()

    def _checkpoint(self) -> None:
        """Copy the WAL into the database now, so closing has little left to copy."""
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # only an optimisation: SQLite checkpoints on its own as well

    def _transaction(self, events: list[Any]) -> None:
        conn = self._conn
        batch = _Batch()
        handlers = self._handlers
        conn.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                handlers[type(event)](event, batch)
            if batch.results:
                conn.executemany(_INSERT_RESULT, batch.results)
            if batch.logs:
                conn.executemany(_INSERT_LOG, batch.logs)
            if batch.plugin_errors:
                conn.executemany(_INSERT_PLUGIN_ERROR, batch.plugin_errors)
            conn.execute("COMMIT")
        except BaseException:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            for cache, key in reversed(batch.undo):
                cache.pop(key, None)
            for saved in batch.saved:
                with contextlib.suppress(OSError):
                    saved.unlink()
            raise

    def _failed(self, exc: sqlite3.OperationalError, waiting: int) -> None:
        self._failures += 1
        message = (
            f"history database {self.path}: writes failing ({exc}); "
            f"{waiting} event(s) kept in memory, retrying"
        )
        self.last_error = message
        if self._failures == 1 and self._on_error is not None:
            try:
                self._on_error(message)
            except Exception:
                pass

    def _recovered(self) -> None:
        self._failures = 0
        self.last_error = None
        if self._on_recover is not None:
            try:
                self._on_recover(f"history database {self.path}: writes recovered")
            except Exception:
                pass

    def _report(self, message: str) -> None:
        self.last_error = message
        if self._on_error is not None:
            try:
                self._on_error(message)
            except Exception:
                pass

    # ------------------------------------------------------------------ folding

    def _r(self, value: Any) -> str | None:
        """One text value as stored: redacted, then storable (empty → NULL)."""
        if value is None:
            return None
        text = value if isinstance(value, str) else storable(value)
        if not text:
            return None
        if self._redact is not None:
            text = self._redact(text)
        return storable(text) or None

    def _fit(self, table: str, column: str, value: Any, row_id: RowId, batch: _Batch) -> Any:
        """A free-text value as stored: :meth:`_r`, then held to its cap (bounds)."""
        return self._bounds.fit(table, column, self._r(value), row_id, batch.saved)

    def _next_id(self, table: str, pending: int) -> int:
        """The id SQLite will give the next row of ``table`` after the ``pending`` rows
        queued in this batch: the writer holds the write lock (BEGIN IMMEDIATE) and
        rows are inserted in queue order, so it is MAX(id) + 1 + pending."""
        (top,) = self._conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
        return int(top) + 1 + pending

    def _iteration_id(self, seq: int, batch: _Batch, started_at: str | None = None) -> int:
        row_id = self._iteration_ids.get(seq)
        if row_id is not None:
            return row_id
        conn = self._conn
        cur = conn.execute(_INSERT_ITERATION, (self.run_id, seq, self._r(started_at or utc_now())))
        if cur.rowcount == 1:
            row_id = int(cur.lastrowid)
        else:  # the row exists (another writer, or a resume that did not load it)
            row_id = conn.execute(
                "SELECT id FROM iterations WHERE run_id = ? AND seq = ?", (self.run_id, seq)
            ).fetchone()[0]
        self._iteration_ids[seq] = row_id
        batch.undo.append((self._iteration_ids, seq))
        return row_id

    def _phase_id(
        self,
        iteration: int,
        phase: int,
        batch: _Batch,
        *,
        name: str = "",
        gate: str = "",
        started_at: str | None = None,
        impact: str = "",
    ) -> int | None:
        if not phase:
            return None
        key = (iteration, phase)
        row_id = self._phase_ids.get(key)
        if row_id is not None:
            return row_id
        iteration_id = self._iteration_id(iteration, batch)
        r = self._r
        conn = self._conn
        cur = conn.execute(
            _INSERT_PHASE,
            (
                iteration_id,
                r(name or f"phase {phase}"),
                phase,
                r(gate),
                r(started_at or utc_now()),
                r(impact),
            ),
        )
        if cur.rowcount == 1:
            row_id = int(cur.lastrowid)
        else:
            row_id = conn.execute(
                "SELECT id FROM phases WHERE iteration_id = ? AND seq = ?", (iteration_id, phase)
            ).fetchone()[0]
        self._phase_ids[key] = row_id
        batch.undo.append((self._phase_ids, key))
        return row_id

    def _test_id(self, event: TestResult, batch: _Batch) -> int:
        key = (event.suite, event.nodeid)
        r = self._r
        suite, nodeid = r(event.suite) or "", r(event.nodeid) or ""
        conn = self._conn
        cur = conn.execute(
            _INSERT_TEST, (suite, nodeid, r(event.file), r(event.started_at or utc_now()))
        )
        if cur.rowcount == 1:
            row_id = int(cur.lastrowid)
        else:
            row_id = conn.execute(
                "SELECT id FROM tests WHERE suite = ? AND nodeid = ?", (suite, nodeid)
            ).fetchone()[0]
        self._test_ids[key] = row_id
        batch.undo.append((self._test_ids, key))
        return row_id

    def _on_result(self, ev: TestResult, batch: _Batch) -> None:
        iteration_id = self._iteration_ids.get(ev.iteration)
        if iteration_id is None:
            iteration_id = self._iteration_id(ev.iteration, batch)
        phase_id = self._phase_ids.get((ev.iteration, ev.phase))
        if phase_id is None:
            phase_id = self._phase_id(ev.iteration, ev.phase, batch)
        test_id = self._test_ids.get((ev.suite, ev.nodeid))
        if test_id is None:
            test_id = self._test_id(ev, batch)
        r, fit = self._r, self._fit
        row_id = RowId(lambda: self._next_id("results", len(batch.results)))
        message = fit("results", "message", ev.message, row_id, batch)
        longrepr = fit("results", "longrepr", ev.longrepr, row_id, batch)
        dump = fit("results", "dump", ev.dump, row_id, batch)
        batch.results.append(
            (
                row_id.value,
                iteration_id,
                phase_id,
                test_id,
                ev.attempt,
                r(ev.outcome) or "",
                ev.duration,
                r(ev.started_at),
                message,
                longrepr,
                dump,
                r(ev.worker),
            )
        )

    def _on_iteration_started(self, ev: IterationStarted, batch: _Batch) -> None:
        row_id = self._iteration_ids.get(ev.iteration)
        if row_id is None:
            self._iteration_id(ev.iteration, batch, ev.started_at)
        else:  # resumed run repeating an iteration number: reuse its row
            self._conn.execute(
                "UPDATE iterations SET status = ?, finished_at = NULL WHERE id = ?",
                (self._r("running"), row_id),
            )

    def _on_iteration_finished(self, ev: IterationFinished, batch: _Batch) -> None:
        row_id = self._iteration_id(ev.iteration, batch)
        counts = ev.counts
        r = self._r
        self._conn.execute(
            _FINISH_ITERATION,
            (
                r(ev.finished_at),
                r(ev.status),
                r(ev.deploy_revision),
                counts.get("passed", 0),
                counts.get("failed", 0),
                counts.get("hung", 0),
                counts.get("crashed", 0),
                counts.get("skipped", 0),
                counts.get("error", 0),
                row_id,
            ),
        )

    def _on_phase_started(self, ev: PhaseStarted, batch: _Batch) -> None:
        row_id = self._phase_ids.get((ev.iteration, ev.phase))
        if row_id is None:
            self._phase_id(
                ev.iteration,
                ev.phase,
                batch,
                name=ev.name,
                gate=ev.gate,
                started_at=ev.started_at,
                impact=ev.impact,
            )
        else:
            self._conn.execute(
                "UPDATE phases SET status = ?, name = ?, gate = ? WHERE id = ?",
                (self._r("running"), self._r(ev.name) or "", self._r(ev.gate), row_id),
            )

    def _on_phase_finished(self, ev: PhaseFinished, batch: _Batch) -> None:
        row_id = self._phase_id(ev.iteration, ev.phase, batch, name=ev.name, gate=ev.gate)
        if row_id is None:
            return
        counts = ev.counts
        r = self._r
        self._conn.execute(
            _FINISH_PHASE,
            (
                r(ev.status),
                r(ev.gate),
                int(bool(ev.gate_held)),
                counts.get("passed", 0),
                counts.get("failed", 0),
                counts.get("hung", 0),
                counts.get("crashed", 0),
                counts.get("error", 0),
                counts.get("skipped", 0),
                ev.duration,
                row_id,
            ),
        )

    def _on_deploy(self, ev: DeployFinished, batch: _Batch) -> None:
        iteration_id = self._iteration_id(ev.iteration, batch)
        r = self._r
        revision = r(ev.revision)
        row_id = RowId(lambda: self._next_id("deploys", 0))
        message = self._fit("deploys", "message", ev.message, row_id, batch)
        self._conn.execute(
            _INSERT_DEPLOY,
            (
                row_id.value,
                iteration_id,
                r(ev.backend),
                revision,
                r(ev.started_at),
                ev.duration,
                r(ev.status),
                message,
            ),
        )
        if revision and ev.status == "ok":
            self._conn.execute(
                "UPDATE iterations SET deploy_revision = ? WHERE id = ?", (revision, iteration_id)
            )

    def _on_hung(self, ev: TestHung, batch: _Batch) -> None:
        text = (
            f"{ev.nodeid} [{ev.suite}] hung ({ev.reason}, deadline {ev.deadline:g}s) "
            f"in iteration {ev.iteration}, phase {ev.phase}"
        )
        self._log(batch, utc_now(), "warning", "watchdog", text)

    def _on_crashed(self, ev: TestCrashed, batch: _Batch) -> None:
        text = (
            f"{ev.nodeid} [{ev.suite}] crashed ({ev.cause}) "
            f"in iteration {ev.iteration}, phase {ev.phase}"
        )
        self._log(batch, utc_now(), "warning", "watchdog", text)

    def _on_log(self, ev: LogLine, batch: _Batch) -> None:
        self._log(batch, ev.at, ev.level, ev.source, ev.text)

    def _log(self, batch: _Batch, at: Any, level: Any, source: Any, text: Any) -> None:
        r = self._r
        row_id = RowId(lambda: self._next_id("logs", len(batch.logs)))
        text = self._fit("logs", "text", text, row_id, batch)
        batch.logs.append((row_id.value, self.run_id, r(at), r(level), r(source), text))

    def _on_plugin_failed(self, ev: PluginFailed, batch: _Batch) -> None:
        r = self._r
        row_id = RowId(lambda: self._next_id("plugin_errors", len(batch.plugin_errors)))
        error = self._fit("plugin_errors", "error", ev.error, row_id, batch)
        batch.plugin_errors.append(
            (row_id.value, self.run_id, r(ev.plugin), r(ev.hook), error, r(ev.at))
        )

    def _on_run_finished(self, ev: RunFinished, batch: _Batch) -> None:
        r = self._r
        self._conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, exit_code = ? WHERE id = ?",
            (r(ev.finished_at), r(ev.status), ev.exit_code, self.run_id),
        )


def _text(redact: Redactor | None) -> Callable[[Any], Any]:
    """Redact, then make storable, one value of the ``runs`` row (None stays NULL)."""

    def apply(value: Any) -> Any:
        if value is None:
            return None
        text = value if isinstance(value, str) else storable(value)
        return storable(redact(text) if redact is not None else text)

    return apply
