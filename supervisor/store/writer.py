"""The one writer of the history database.

:class:`HistoryStore` owns the SQLite connection. ``put(event)`` only appends to a
queue (thread-safe, never blocks, never touches SQLite); a single writer thread folds
the events into rows and commits them in batches: whatever is queued is written at
least every ``flush_interval`` (0.5 s by default) and as soon as ``WAKE_AT`` (256)
events are waiting, one transaction per batch of at most ``max_batch`` (1000) events.
News comes first: a result that did not pass wakes the writer at once (writes at
most every ``URGENT_GAP`` seconds then, so a run of failures is still batched), so a person or a script watching the database for a fix's
verdict sees it within milliseconds, not at the next interval.
A killed supervisor therefore loses at most the last second of events; committed rows
survive a SIGKILL (WAL, ``synchronous=NORMAL``).

While the run goes on, the writer also copies the WAL into the database (a passive
checkpoint, which never waits for readers) at most every ``CHECKPOINT_GAP`` seconds,
at the first wake-up after a write once that much time has passed (each copy writes
back and syncs every page changed since the last: after every write, it cost a slow
suite's run about as much CPU as the writes themselves). SQLite checkpoints whatever
is left when the last connection closes, and that happens when the run ends, while
the user waits: done on the way, the close only has the last second to copy.

What each event writes is :mod:`supervisor.store.rows`' job: it maps iteration and
phase numbers to row ids (a result naming an iteration or a phase not seen yet still
gets a row), and every text value is redacted, made storable and held to its cap there.

When SQLite refuses a write (``sqlite3.OperationalError``: database locked, disk full,
I/O error) the run goes on: the transaction is rolled back, the events stay in memory,
the write is retried with backoff, ``last_error`` holds one clear message and
``on_error`` is called once per failure episode (``on_recover`` when writes succeed
again). An event SQLite rejects for any other reason (a bug, a constraint) is written
on its own so it cannot take its batch with it, and is reported, never dropped
silently.

Secrets: ``redact`` (``str -> str``) is applied to every text value before it is
written, in every table, before any cut (see :mod:`supervisor.store.rows`).
"""

from __future__ import annotations

import atexit
import functools
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from supervisor.core.backoff import Backoff, retry_after_failure
from supervisor.core.events import FAILING_OUTCOMES, Event, TestResult, utc_now
from supervisor.store import schema
from supervisor.store.rows import Batch, Redactor, RowFolder, RunSettings, stored_text

Reporter = Callable[[str], None]
T = TypeVar("T")

#: Between write attempts while SQLite refuses writes: 50 ms doubling to 2 s, with jitter.
WRITE_BACKOFF = Backoff(first=0.05, cap=2.0, jitter=0.05)

#: Opening, migrating, inserting the run's row: 4 tries, 0.2 s, 0.4 s, 0.8 s apart.
SETUP_BACKOFF = Backoff(first=0.2, cap=1.0, jitter=0.05, attempts=4)


class StoreError(RuntimeError):
    """The history database cannot be opened (one line, shown to the user)."""


#: Seconds between two wake-ups for a non-passing result (a run of failures is
#: still written in batches).
URGENT_GAP = 0.05

#: Seconds between two copies of the WAL into the database file while the run goes on
#: (each copy writes back and syncs every page changed since the last one).
CHECKPOINT_GAP = 1.0

#: Queued events that wake the writer before its interval is up: small batches keep
#: the last one, written while the run ends, short.
WAKE_AT = 256


class _FlushRequest:
    __slots__ = ("done", "ok")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.ok = False


def _connect(path: Path, busy_timeout: float) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
    # check_same_thread=False: created here, then used only by the writer thread.
    return sqlite3.connect(
        str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
    )


def _retrying(what: str, path: Path, fn: Callable[[], T]) -> T:
    """Run a synchronous setup step, retrying (``SETUP_BACKOFF``) while SQLite is busy
    or full. The first try loads no retry machinery: it nearly always succeeds."""
    try:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            return retry_after_failure(fn, exc, SETUP_BACKOFF, sqlite3.OperationalError)
    except sqlite3.OperationalError as exc:
        raise StoreError(f"cannot {what} history database {path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise StoreError(
            f"cannot {what} history database {path}: {exc} "
            "(move the file away or pass another --db)"
        ) from exc


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
        self._folder = RowFolder(conn, path, run_id, redact, iteration_ids, phase_ids)
        self._on_error = on_error
        self._on_recover = on_recover
        self._interval = flush_interval
        self._max_batch = max_batch
        self._wake_at = min(max_batch, WAKE_AT)
        self._urgent = False  # a result that did not pass is queued
        self._last_write = 0.0  # monotonic time of the last write
        self._last_checkpoint = 0.0  # ... and of the last copy of the WAL (CHECKPOINT_GAP)
        self._unchecked = False  # written since that copy
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._close_deadline = float("inf")
        self._failures = 0
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
        red = functools.partial(stored_text, redact=redact)
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
                if cur.lastrowid is None:  # sqlite3 sets it after every INSERT
                    raise sqlite3.DatabaseError("the new run got no id")
                return cur.lastrowid

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
            red = functools.partial(stored_text, redact=redact)
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

    def put(self, event: Event | RunSettings) -> None:
        """Queue an event for writing. Thread-safe, never blocks, never raises.
        Event types the history does not record are ignored here, for free."""
        if type(event) not in self._folder.handlers:
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
        wake = self._wake
        if len(queue) >= self._wake_at:
            if not wake.is_set():  # set() takes a lock and notifies: once is enough
                wake.set()
        elif type(event) is TestResult and event.outcome in FAILING_OUTCOMES:
            self._urgent = True  # news: the writer comes at once (at most every URGENT_GAP)
            if not wake.is_set():
                wake.set()

    def put_many(self, events: list[Event]) -> None:
        """:meth:`put` for a batch (a runner's read): one queue extend, one wake-up."""
        handlers = self._folder.handlers
        if self._closing:
            for event in events:
                self.put(event)  # counted as late, one by one
            return
        kept = [event for event in events if type(event) in handlers]
        if not kept:
            return
        queue = self._queue
        queue.extend(kept)
        wake = self._wake
        if len(queue) >= self._wake_at:
            if not wake.is_set():
                wake.set()
        elif any(type(event) is TestResult and event.outcome in FAILING_OUTCOMES for event in kept):
            self._urgent = True  # news: the writer comes at once (at most every URGENT_GAP)
            if not wake.is_set():
                wake.set()

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
                    # (close() set the Event; it is clear again after the first attempt)
                    self._wake.wait(min(wait, max(0.0, self._close_deadline - now)))
                if self._urgent and not self._closing:
                    # news is written now, but a run of failures still in batches
                    gap = self._last_write + URGENT_GAP - time.monotonic()
                    if gap > 0:
                        time.sleep(gap)
                self._wake.clear()
                self._urgent = False
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
                    self._last_write = time.monotonic()
                    self._unchecked = True
                    if self._failures:
                        next_attempt = time.monotonic() + WRITE_BACKOFF.delay(self._failures)
                if (
                    self._unchecked
                    and not closing
                    and not self._failures
                    and time.monotonic() - self._last_checkpoint >= CHECKPOINT_GAP
                ):
                    self._checkpoint()  # or at the next wake-up (flush_interval at most)
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
        self._unchecked, self._last_checkpoint = False, time.monotonic()
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # only an optimisation: SQLite checkpoints on its own as well

    def _transaction(self, events: list[Any]) -> None:
        conn = self._conn
        batch = Batch()
        handlers = self._folder.handlers
        conn.execute("BEGIN IMMEDIATE")
        try:
            for event in events:
                handlers[type(event)](event, batch)
            batch.insert(conn)
            conn.execute("COMMIT")
        except BaseException:
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            batch.revert()
            raise
        self._folder.committed(batch)

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
