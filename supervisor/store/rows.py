"""Events folded into rows: what each event the history records writes, and where.

:class:`RowFolder` runs on the writer thread inside the writer's transaction (see
:mod:`supervisor.store.writer`): each handler adds to a :class:`Batch` (results, logs
and plugin errors are inserted together at the end) or writes its row at once. Events
name iterations and phases by sequence number; the folder maps them to row ids,
creating a missing iteration or phase row on the fly so no result is dropped.

Every text value goes through :func:`stored_text`: redacted first (on the whole text,
so a cut can never leave part of a secret unmasked), then made storable
(:func:`supervisor.text.storable`); the free-text columns are then held to their caps
(:mod:`supervisor.store.bounds`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.core.events import (
    FLAKY,
    DeployFinished,
    Evidence,
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
    TestsCollected,
    TestStarted,
    utc_now,
    utc_of_monotonic,
)
from supervisor.core.evidence import EVIDENCE_OUTCOMES
from supervisor.store.bounds import Bounds, RowId
from supervisor.text import storable

Redactor = Callable[[str], str]

# Rows name their id: None lets SQLite pick the next one; a row with a cut text names
# the id its file was named after (see _next_id).
_INSERT_RESULT = (
    "INSERT INTO results (id, iteration_id, phase_id, test_id, attempt, outcome, duration,"
    " started_at, message, longrepr, dump, worker, quarantined, flaky)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_LOG = "INSERT INTO logs (id, run_id, at, level, source, text) VALUES (?, ?, ?, ?, ?, ?)"
_INSERT_PLUGIN_ERROR = (
    "INSERT INTO plugin_errors (id, run_id, plugin, hook, error, at) VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_EVIDENCE = (
    "INSERT INTO evidence (result_id, source, lines, omitted, first_at, last_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
_FIND_RESULT = (
    "SELECT r.id FROM results r JOIN iterations i ON i.id = r.iteration_id"
    " JOIN tests t ON t.id = r.test_id LEFT JOIN phases p ON p.id = r.phase_id"
    " WHERE i.run_id = ? AND i.seq = ? AND COALESCE(p.seq, 0) = ? AND t.suite = ?"
    " AND t.nodeid = ? AND r.attempt = ? ORDER BY r.id DESC LIMIT 1"
)
_INSERT_TEST = (
    "INSERT INTO tests (suite, nodeid, file, first_seen) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (suite, nodeid) DO NOTHING"
)
_INSERT_ITERATION = (
    "INSERT INTO iterations (run_id, seq, started_at, status, eta_s)"
    " VALUES (?, ?, ?, 'running', ?) ON CONFLICT (run_id, seq) DO NOTHING"
)
_INSERT_PHASE = (
    "INSERT INTO phases (iteration_id, name, seq, status, gate, started_at, impact)"
    " VALUES (?, ?, ?, 'running', ?, ?, ?) ON CONFLICT (iteration_id, seq) DO NOTHING"
)
_FINISH_ITERATION = (
    "UPDATE iterations SET finished_at = ?, status = ?,"
    " deploy_revision = COALESCE(?, deploy_revision), passed = ?, failed = ?, hung = ?,"
    " crashed = ?, skipped = ?, errors = ?, flaky = ? WHERE id = ?"
)
_FINISH_PHASE = (
    "UPDATE phases SET status = ?, gate = ?, gate_held = ?, passed = ?, failed = ?,"
    " hung = ?, crashed = ?, errors = ?, skipped = ?, duration = ?, flaky = ? WHERE id = ?"
)
_INSERT_RUNNING = (
    "INSERT OR REPLACE INTO running (run_id, iteration, phase, suite, nodeid, worker, deadline,"
    " started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_DELETE_RUNNING = "DELETE FROM running WHERE run_id = ? AND suite = ? AND nodeid = ?"
_ADD_DISCOVERED = "UPDATE phases SET discovered = discovered + ? WHERE id = ?"
_INSERT_DEPLOY = (
    "INSERT INTO deploys (id, iteration_id, backend, revision, started_at, duration, status,"
    " message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class RunSettings:
    """The run's stop condition, for a watcher's header (``runs.target`` …). Not an
    event of the bus: the session hands it to the store once, beside ``RunStarted``."""

    target: int
    until: str
    max_iterations: int
    max_duration: float | None


class Batch:
    """What one transaction accumulates. :meth:`insert` writes the queued rows;
    :meth:`revert` (after a rollback) forgets the row ids cached meanwhile and removes
    the full-text files written for rows that were not written.

    ``started`` holds the tests started in this batch and not finished in it: a test
    that starts and ends within one batch (most of them) never reaches ``running``."""

    __slots__ = (
        "results",
        "logs",
        "plugin_errors",
        "undo",
        "saved",
        "started",
        "ended",
        "clear_running",
        "collected",
        "running_row",
        "evidence",
    )

    def __init__(self) -> None:
        self.results: list[tuple[Any, ...]] = []
        self.evidence: list[tuple[Any, ...]] = []
        self.logs: list[tuple[Any, ...]] = []
        self.plugin_errors: list[tuple[Any, ...]] = []
        self.undo: list[tuple[dict[Any, Any], Any]] = []
        self.saved: list[Path] = []
        #: (suite, nodeid) -> its TestStarted; made a row only if still in flight at the end
        self.started: dict[tuple[str, str], TestStarted] = {}
        self.running_row: Callable[[TestStarted], tuple[Any, ...]] | None = None
        #: (suite, nodeid) -> the DELETE's parameters for a test whose running row goes
        self.ended: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.clear_running: int | None = None  # a run id: its running rows all go
        self.collected: dict[int, int] = {}  # phase row id -> tests collected

    def insert(self, conn: sqlite3.Connection) -> None:
        # running: an iteration's end empties it, then the tests that ended since go,
        # then the ones still in flight are written
        if self.clear_running is not None:
            conn.execute("DELETE FROM running WHERE run_id = ?", (self.clear_running,))
        if self.ended:
            conn.executemany(_DELETE_RUNNING, self.ended.values())
        if self.started and self.running_row is not None:
            conn.executemany(_INSERT_RUNNING, map(self.running_row, self.started.values()))
        if self.collected:
            conn.executemany(_ADD_DISCOVERED, [(n, i) for i, n in self.collected.items()])
        if self.results:
            conn.executemany(_INSERT_RESULT, self.results)
        if self.logs:
            conn.executemany(_INSERT_LOG, self.logs)
        if self.plugin_errors:
            conn.executemany(_INSERT_PLUGIN_ERROR, self.plugin_errors)
        if self.evidence:  # after the results they name
            conn.executemany(_INSERT_EVIDENCE, self.evidence)

    def revert(self) -> None:
        for cache, key in reversed(self.undo):
            cache.pop(key, None)
        for saved in self.saved:
            with contextlib.suppress(OSError):
                saved.unlink()


class RowFolder:
    """Folds the events of one run into rows on the writer's connection."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        run_id: int,
        redact: Redactor | None = None,
        iteration_ids: dict[int, int] | None = None,
        phase_ids: dict[tuple[int, int], int] | None = None,
    ) -> None:
        self.run_id = run_id
        self._conn = conn
        self._redact = redact
        self._bounds = Bounds(path, run_id)
        self._iteration_ids: dict[int, int] = dict(iteration_ids or {})
        self._phase_ids: dict[tuple[int, int], int] = dict(phase_ids or {})
        self._test_ids: dict[tuple[str, str], int] = {}
        #: stored suite name -> its tests' stored nodeids -> tests.id, read in one query
        #: the first time the run writes a result of the suite: a test the history
        #: knows then costs no statement (most of a run's tests, from its second run on)
        self._suite_tests: dict[str, dict[str, int]] = {}
        #: (iteration, phase, suite, nodeid, attempt) -> results.id of a result that may get
        #: evidence (one that did not pass); evidence comes a second or two later
        self._evidence_of: dict[tuple[int, int, str, str, int], int] = {}
        #: (suite, nodeid) of the rows this writer has in ``running`` (committed): a
        #: result of any other test deletes nothing, so it costs no statement (most
        #: tests start and end between two writes and never get a row)
        self._in_running: set[tuple[str, str]] = set()
        #: the run has rows in ``running`` from before this writer (a resumed run):
        #: every result deletes, until the iteration's end clears them all
        self._stale_running = (
            conn.execute("SELECT 1 FROM running WHERE run_id = ? LIMIT 1", (run_id,)).fetchone()
            is not None
        )
        #: The event types the history records, each with its handler.
        self.handlers: dict[type, Callable[[Any, Batch], None]] = {
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
            TestStarted: self._on_started,
            TestsCollected: self._on_collected,
            RunSettings: self._on_settings,
            Evidence: self._on_evidence,
        }

    def _r(self, value: Any) -> str | None:
        return stored_text(value, self._redact)

    def _fit(self, table: str, column: str, value: Any, row_id: RowId, batch: Batch) -> Any:
        """A free-text value as stored: :meth:`_r`, then held to its cap (bounds).
        Empty (a pass's message, longrepr, dump): NULL at once."""
        if not value:
            return None
        return self._bounds.fit(table, column, self._r(value), row_id, batch.saved)

    def _next_id(self, table: str, pending: int) -> int:
        """The id SQLite will give the next row of ``table`` after the ``pending`` rows
        queued in this batch: the writer holds the write lock (BEGIN IMMEDIATE) and
        rows are inserted in queue order, so it is MAX(id) + 1 + pending."""
        (top,) = self._conn.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()
        return int(top) + 1 + pending

    def _iteration_id(
        self, seq: int, batch: Batch, started_at: str | None = None, eta_s: float | None = None
    ) -> int:
        row_id = self._iteration_ids.get(seq)
        if row_id is not None:
            return row_id
        conn = self._conn
        cur = conn.execute(
            _INSERT_ITERATION, (self.run_id, seq, self._r(started_at or utc_now()), eta_s)
        )
        if cur.rowcount == 1 and cur.lastrowid is not None:
            row_id = cur.lastrowid
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
        batch: Batch,
        *,
        name: str = "",
        gate: str = "",
        started_at: str | None = None,
        impact: str = "",
    ) -> int | None:
        if not phase and not name:  # seq 0 is the verify pass, once it started;
            return None  # before that, a result of phase 0 belongs to no phase
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
        if cur.rowcount == 1 and cur.lastrowid is not None:
            row_id = cur.lastrowid
        else:
            row_id = conn.execute(
                "SELECT id FROM phases WHERE iteration_id = ? AND seq = ?", (iteration_id, phase)
            ).fetchone()[0]
        self._phase_ids[key] = row_id
        batch.undo.append((self._phase_ids, key))
        return row_id

    def _test_id(self, event: TestResult, batch: Batch) -> int:
        key = (event.suite, event.nodeid)
        r = self._r
        suite, nodeid = r(event.suite) or "", r(event.nodeid) or ""
        conn = self._conn
        known = self._suite_tests.get(suite)
        if known is None:
            known = self._suite_tests[suite] = dict(
                conn.execute("SELECT nodeid, id FROM tests WHERE suite = ?", (suite,))
            )
            # read inside this batch's transaction: a rollback must forget it too
            batch.undo.append((self._suite_tests, suite))
        row_id = known.get(nodeid)
        if row_id is None:
            cur = conn.execute(
                _INSERT_TEST, (suite, nodeid, r(event.file), r(event.started_at or utc_now()))
            )
            if cur.rowcount == 1 and cur.lastrowid is not None:
                row_id = cur.lastrowid
            else:  # another writer added it since
                row_id = conn.execute(
                    "SELECT id FROM tests WHERE suite = ? AND nodeid = ?", (suite, nodeid)
                ).fetchone()[0]
        self._test_ids[key] = row_id
        batch.undo.append((self._test_ids, key))
        return row_id

    def _on_result(self, ev: TestResult, batch: Batch) -> None:
        iteration_id = self._iteration_ids.get(ev.iteration)
        if iteration_id is None:
            iteration_id = self._iteration_id(ev.iteration, batch)
        phase_id = self._phase_ids.get((ev.iteration, ev.phase))
        if phase_id is None:
            phase_id = self._phase_id(ev.iteration, ev.phase, batch)
        test_id = self._test_ids.get((ev.suite, ev.nodeid))
        if test_id is None:
            test_id = self._test_id(ev, batch)
        self._ended(ev.suite, ev.nodeid, batch)
        r, fit = self._r, self._fit
        row_id = RowId(lambda: self._next_id("results", len(batch.results)))
        message = fit("results", "message", ev.message, row_id, batch)
        longrepr = fit("results", "longrepr", ev.longrepr, row_id, batch)
        dump = fit("results", "dump", ev.dump, row_id, batch)
        evidence = ev.outcome in EVIDENCE_OUTCOMES
        if evidence:
            row_id()  # its evidence, a second or two later, names this row
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
                int(ev.quarantined),
                int(ev.flaky),
            )
        )
        if evidence:
            key = (ev.iteration, ev.phase, ev.suite, ev.nodeid, ev.attempt)
            self._evidence_of[key] = row_id()
            batch.undo.append((self._evidence_of, key))

    def _on_started(self, ev: TestStarted, batch: Batch) -> None:
        batch.started[(ev.suite, ev.nodeid)] = ev
        batch.running_row = self._running_row

    def _running_row(self, ev: TestStarted) -> tuple[Any, ...]:
        r = self._r
        return (
            self.run_id,
            ev.iteration,
            ev.phase,
            r(ev.suite) or "",
            r(ev.nodeid) or "",
            r(ev.worker),
            ev.deadline,
            utc_of_monotonic(ev.at),
        )

    def _ended(self, suite: str, nodeid: str, batch: Batch) -> None:
        """A test's result (or its iteration's end): its ``running`` row goes."""
        key = (suite, nodeid)
        if batch.started.pop(key, None) is None and (
            key in self._in_running or self._stale_running
        ):
            batch.ended[key] = (self.run_id, self._r(suite) or "", self._r(nodeid) or "")

    def _clear_running(self, batch: Batch) -> None:
        batch.started.clear()
        batch.ended.clear()
        batch.clear_running = self.run_id

    def committed(self, batch: Batch) -> None:
        """After ``batch`` was committed: which rows ``running`` now holds, in the
        order :meth:`Batch.insert` changed it (cleared, ended, then the started)."""
        if batch.clear_running is not None:
            self._in_running.clear()
            self._stale_running = False
        self._in_running.difference_update(batch.ended)
        if batch.running_row is not None:
            self._in_running.update(batch.started)

    def _on_collected(self, ev: TestsCollected, batch: Batch) -> None:
        phase_id = self._phase_ids.get((ev.iteration, ev.phase))
        if phase_id is None:
            phase_id = self._phase_id(ev.iteration, ev.phase, batch)
        if phase_id is not None:
            batch.collected[phase_id] = batch.collected.get(phase_id, 0) + len(ev.nodeids)

    def _on_settings(self, ev: RunSettings, batch: Batch) -> None:
        self._conn.execute(
            "UPDATE runs SET target = ?, until = ?, max_iterations = ?, max_duration = ?"
            " WHERE id = ?",
            (ev.target, self._r(ev.until), ev.max_iterations, ev.max_duration, self.run_id),
        )

    def _on_iteration_started(self, ev: IterationStarted, batch: Batch) -> None:
        row_id = self._iteration_ids.get(ev.iteration)
        if row_id is None:
            self._iteration_id(ev.iteration, batch, ev.started_at, ev.eta_s)
        else:  # resumed run repeating an iteration number: reuse its row
            self._conn.execute(
                "UPDATE iterations SET status = ?, finished_at = NULL, eta_s = ? WHERE id = ?",
                (self._r("running"), ev.eta_s, row_id),
            )

    def _on_iteration_finished(self, ev: IterationFinished, batch: Batch) -> None:
        self._clear_running(batch)
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
                counts.get(FLAKY, 0),
                row_id,
            ),
        )

    def _on_phase_started(self, ev: PhaseStarted, batch: Batch) -> None:
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

    def _on_phase_finished(self, ev: PhaseFinished, batch: Batch) -> None:
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
                counts.get(FLAKY, 0),
                row_id,
            ),
        )

    def _on_deploy(self, ev: DeployFinished, batch: Batch) -> None:
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

    def _on_hung(self, ev: TestHung, batch: Batch) -> None:
        text = (
            f"{ev.nodeid} [{ev.suite}] hung ({ev.reason}, deadline {ev.deadline:g}s) "
            f"in iteration {ev.iteration}, phase {ev.phase}"
        )
        self._log(batch, utc_now(), "warning", "watchdog", text)

    def _on_crashed(self, ev: TestCrashed, batch: Batch) -> None:
        text = (
            f"{ev.nodeid} [{ev.suite}] crashed ({ev.cause}) "
            f"in iteration {ev.iteration}, phase {ev.phase}"
        )
        self._log(batch, utc_now(), "warning", "watchdog", text)

    def _on_log(self, ev: LogLine, batch: Batch) -> None:
        self._log(batch, ev.at, ev.level, ev.source, ev.text)

    def _log(self, batch: Batch, at: Any, level: Any, source: Any, text: Any) -> None:
        r = self._r
        row_id = RowId(lambda: self._next_id("logs", len(batch.logs)))
        text = self._fit("logs", "text", text, row_id, batch)
        batch.logs.append((row_id.value, self.run_id, r(at), r(level), r(source), text))

    def _on_plugin_failed(self, ev: PluginFailed, batch: Batch) -> None:
        r = self._r
        row_id = RowId(lambda: self._next_id("plugin_errors", len(batch.plugin_errors)))
        error = self._fit("plugin_errors", "error", ev.error, row_id, batch)
        batch.plugin_errors.append(
            (row_id.value, self.run_id, r(ev.plugin), r(ev.hook), error, r(ev.at))
        )

    def _on_evidence(self, ev: Evidence, batch: Batch) -> None:
        key = (ev.iteration, ev.phase, ev.suite, ev.nodeid, ev.attempt)
        result_id = self._evidence_of.get(key)
        if result_id is None:  # a resumed run: the result was written by an earlier one
            row = self._conn.execute(
                _FIND_RESULT,
                (
                    self.run_id,
                    ev.iteration,
                    ev.phase,
                    self._r(ev.suite),
                    self._r(ev.nodeid),
                    ev.attempt,
                ),
            ).fetchone()
            if row is None:
                raise LookupError(f"no result of {ev.nodeid} (attempt {ev.attempt}) to attach to")
            result_id = row[0]
        r = self._r
        batch.evidence.append(
            (
                result_id,
                r(ev.source) or "",
                r(ev.lines) or "",
                ev.omitted,
                r(ev.first_at),
                r(ev.last_at),
            )
        )

    def _on_run_finished(self, ev: RunFinished, batch: Batch) -> None:
        self._clear_running(batch)
        r = self._r
        self._conn.execute(
            "UPDATE runs SET finished_at = ?, status = ?, exit_code = ? WHERE id = ?",
            (r(ev.finished_at), r(ev.status), ev.exit_code, self.run_id),
        )


def stored_text(value: Any, redact: Redactor | None) -> str | None:
    """One text value as the history stores it: redacted (on the whole text), then
    storable; empty → NULL. Never raises, whatever the value.

    Called for every text of every row: ASCII text with no secret to mask (nearly all
    of it) is passed on after one C-speed check."""
    if type(value) is str:
        if not value:
            return None
        if value.isascii() and (redact is None or not getattr(redact, "active", True)):
            return value
    elif value is None:
        return None
    text = value if isinstance(value, str) else storable(value)
    if not text:
        return None
    if redact is not None:
        text = redact(text)
    return storable(text) or None
