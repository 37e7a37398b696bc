"""A run followed from the history database: the watcher's source of the dashboard.

``netra-supervisor watch`` shows the same panes as the live TUI, from the same
:class:`~supervisor.core.model.ModelView`. The live view folds the bus's events into a
:class:`~supervisor.core.model.RunModel`; here the rows the run's writer commits are
turned back into those events and folded into a ``RunModel`` of our own, so counts,
retries, quarantine and the failures list follow the one set of rules. What the
events do not carry (tests in flight, the stop condition, deploy state, finished
iterations' totals) is set from the rows directly.

Read-only (``mode=ro``) and cheap while nothing changes: :meth:`FollowedRun.poll`
asks ``PRAGMA data_version`` (does not touch a table) and reads only rows past the
ids it has seen, inside one short read transaction, never while the caller waits on
anything else. WAL readers never block the writer.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from supervisor.core.events import (
    FLAKY,
    IterationStarted,
    LogLine,
    PhaseStarted,
    TestResult,
)
from supervisor.core.model import IterationSummary, ModelView, RunModel, RunningTest
from supervisor.store import alive
from supervisor.store.schema import FAILING_SQL

#: Results folded per poll at most: a long iteration opened mid-way catches up over a
#: few polls instead of one long read transaction.
MAX_ROWS_PER_POLL = 20_000
#: Log lines taken when a watcher opens (the pane shows fewer).
FIRST_LOG_LINES = 500
#: Seconds between two looks at the database (the app may ask more often).
POLL_EVERY = 0.2
#: Seconds between two looks at a quiet run's lock (is its supervisor still there?).
ALIVE_EVERY = 1.0

_RESULTS = (
    "SELECT r.id, t.suite, t.nodeid, r.phase_id, r.outcome, r.duration, r.started_at,"
    " r.attempt, r.worker, r.quarantined, r.flaky,"
    # the texts only of what the failures pane lists: most results pass
    f" CASE WHEN r.outcome IN {FAILING_SQL} OR r.flaky THEN r.message END,"
    f" CASE WHEN r.outcome IN {FAILING_SQL} OR r.flaky THEN r.longrepr END,"
    f" CASE WHEN r.outcome IN {FAILING_SQL} OR r.flaky THEN r.dump END"
    " FROM results r JOIN tests t ON t.id = r.test_id"
    " WHERE r.iteration_id = ? AND r.id > ? ORDER BY r.id LIMIT ?"
)

Row = tuple[Any, ...]


class WatchError(ValueError):
    """The database or run to watch is not there (one line for the user)."""


def parse_time(text: str | None) -> float | None:
    """UTC ISO-8601 text (the tables' format) as seconds since the epoch."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


class FollowedRun:
    """One run of a history database, as a dashboard source (``snapshot`` like
    ``RunModel``'s). ``show(seq)`` pins an iteration; ``show(None)`` follows the
    latest."""

    def __init__(
        self,
        path: str | Path,
        run_id: int | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        poll_every: float = POLL_EVERY,
    ) -> None:
        path = Path(path).resolve()
        if not path.is_file():
            raise WatchError(
                f"no history database at {path} (pass --db PATH, or start a run first)"
            )
        self.path = path
        self.clock, self.wall = clock, wall
        self.poll_every = poll_every
        try:
            conn = sqlite3.connect(
                f"{path.as_uri()}?mode=ro", uri=True, timeout=5.0, isolation_level=None
            )
            top = conn.execute("SELECT MAX(id) FROM runs").fetchone()[0]
            if run_id is None:
                run_id = top
            found = (
                run_id is not None
                and conn.execute("SELECT 1 FROM runs WHERE id = ?", (run_id,)).fetchone()
            )
        except sqlite3.Error as exc:
            raise WatchError(f"cannot read history database {path}: {exc}") from exc
        if run_id is None:
            conn.close()
            raise WatchError(f"history database {path} has no run yet")
        if not found:
            conn.close()
            raise WatchError(f"no run {run_id} in {path} (`netra-supervisor history runs`)")
        self.conn = conn
        #: written by a version with ``0007_live`` (else no tests in flight, no target)
        self.live = bool(
            conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'running'").fetchone()
        )
        self.run_id = int(run_id)
        self.model = RunModel(run_id=self.run_id)
        self.finished = False  # the run has ended (its row has finished_at)
        #: its supervisor died without writing the run's end (``store.alive``)
        self.gone = False
        self._next_alive_check = 0.0
        self.iterations: list[int] = []  # the run's iteration numbers, in order
        self.pinned: int | None = None  # the iteration shown; None: the latest
        self.polls = 0  # looks that found a change and read rows (tests, the bench)
        self._version: int | None = None
        self._next_poll = 0.0
        self._shown: int | None = None  # the iteration row folded into the model
        self._result_id = 0
        self._log_id = 0
        self._error_id = 0
        self._phase_seqs: dict[int, int] = {}  # phase row id -> its seq

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------------ the source

    def snapshot(
        self, log_seq: int = 0, failures_seq: int = 0, epoch: int = -1, now: float | None = None
    ) -> ModelView:
        """Look for new rows (at most every ``poll_every``), then the model's delta."""
        if now is None or now >= self._next_poll:
            self.poll()
            self._next_poll = (self.clock() if now is None else now) + self.poll_every
        return self.model.snapshot(log_seq, failures_seq, epoch, now)

    def show(self, seq: int | None) -> None:
        """Pin iteration ``seq`` (``None``: follow the latest); folded at the next poll."""
        self.pinned = seq
        self._version = None
        self._next_poll = 0.0

    def step(self, by: int) -> int | None:
        """Pin the previous (-1) or next (+1) iteration; returns the one now shown."""
        if not self.iterations:
            return None
        current = self.model.iteration
        index = self.iterations.index(current) if current in self.iterations else 0
        index = max(0, min(len(self.iterations) - 1, index + by))
        seq = self.iterations[index]
        self.show(None if seq == self.iterations[-1] and not self.finished else seq)
        return seq

    def poll(self) -> bool:
        """Fold what the writer committed since the last poll; False if nothing."""
        try:
            version = self.conn.execute("PRAGMA data_version").fetchone()[0]
            if version == self._version:
                return self._check_gone()
            self.conn.execute("BEGIN")
            try:
                more = self._read()
            finally:
                self.conn.execute("COMMIT")
        except sqlite3.Error as exc:  # locked for longer than the timeout, a bad file
            self._log("error", "watch", f"reading the history failed: {exc}")
            return False
        # rows left (a long iteration): read again at the next poll whatever changes
        self._version = None if more else version
        self.polls += 1
        return True

    def _check_gone(self) -> bool:
        """Nothing new: if the run has not ended, is its supervisor still there? (At
        most every ``ALIVE_EVERY``.) A dead one ends the run as seen from here, its
        tests in flight with it; True when that changed the model."""
        if self.finished or self.gone:
            return False
        now = self.clock()
        if now < self._next_alive_check:
            return False
        self._next_alive_check = now + ALIVE_EVERY
        if not alive.gone(self.path, self.run_id):
            return False
        ended = self.conn.execute(
            "SELECT finished_at FROM runs WHERE id = ?", (self.run_id,)
        ).fetchone()
        if ended is not None and ended[0] is not None:  # it wrote its end meanwhile
            self._version = None
            return False
        self.gone = self.finished = True
        model = self.model
        with model.read():
            model.version += 1
            model.running.clear()
            model.finished = now
            model.stop_reason = alive.GONE_REASON
        self._log("error", "watch", alive.GONE_REASON)
        return True

    # ------------------------------------------------------------------ folding

    def _read(self) -> bool:
        conn, model, run_id = self.conn, self.model, self.run_id
        settings = "target, until, max_iterations, max_duration" if self.live else "0, '', 0, NULL"
        run = conn.execute(
            f"SELECT started_at, finished_at, status, exit_code, {settings} FROM runs WHERE id = ?",
            (run_id,),
        ).fetchone()
        rows = conn.execute(
            "SELECT id, seq, started_at, finished_at, status, deploy_revision, passed, failed,"
            " hung, crashed, skipped, errors, flaky FROM iterations WHERE run_id = ?"
            " ORDER BY seq",
            (run_id,),
        ).fetchall()
        self.iterations = [row[1] for row in rows]
        wanted = rows[-1] if rows else None
        if self.pinned is not None:
            wanted = next((row for row in rows if row[1] == self.pinned), wanted)
        with model.read():
            model.version += 1
            self._run_row(run)
            model.iterations = [_summary(row) for row in rows if row[3] is not None]
            more = False
            if wanted is not None:
                if wanted[0] != self._shown:
                    self._start_iteration(wanted)
                more = self._fold_iteration(wanted)
            self._fold_logs()
            self._running(wanted)
        return more

    def _run_row(self, run: Row | None) -> None:
        if run is None:
            return
        model = self.model
        started_at, finished_at, status, exit_code, target, until, max_iter, max_dur = run
        model.started = self._monotonic(started_at) or model.started
        model.target = int(target or 0)
        model.until = until or ""
        model.max_iterations = int(max_iter or 0)
        model.max_duration = max_dur
        self.finished = finished_at is not None
        if self.finished:
            model.finished = self._monotonic(finished_at)
            model.exit_code = exit_code
            model.stop_reason = status or ""
        elif self.gone:
            if alive.gone(self.path, self.run_id):
                self.finished = True  # still nobody there: it stays ended as seen from here
            else:  # a --resume of it holds the lock again
                self.gone = False
                model.finished = None
                model.stop_reason = ""

    def _start_iteration(self, row: Row) -> None:
        """A new iteration shown: the model starts it over, as the live one does."""
        self.model.apply(IterationStarted(self.run_id, row[1], row[2] or ""))
        self._shown = row[0]
        self._result_id = 0
        self._phase_seqs = {}

    def _fold_iteration(self, row: Row) -> bool:
        model, conn = self.model, self.conn
        iteration_id, seq = row[0], row[1]
        discovered = "discovered" if self.live else "0"
        phases = conn.execute(
            f"SELECT id, seq, name, gate, status, gate_held, impact, {discovered}, started_at"
            " FROM phases WHERE iteration_id = ? ORDER BY id",
            (iteration_id,),
        ).fetchall()
        for pid, pseq, name, gate, _, _, impact, _, started in phases:
            if pid not in self._phase_seqs:
                self._phase_seqs[pid] = pseq
                model.apply(
                    PhaseStarted(self.run_id, seq, pseq, name, gate or "", (), started or "",
                                 impact or "")
                )  # fmt: skip
        results = conn.execute(_RESULTS, (iteration_id, self._result_id, MAX_ROWS_PER_POLL))
        count = 0
        apply, phase_seqs = model.apply, self._phase_seqs
        for r in results:
            count += 1
            apply(
                TestResult(
                    seq, phase_seqs.get(r[3], 0) if r[3] is not None else 0, r[1], r[2], r[4],
                    r[5] or 0.0, r[6] or "", "", r[11] or "", r[12] or "", r[13] or "",
                    attempt=r[7], worker=r[8] or "", quarantined=bool(r[9]), flaky=bool(r[10]),
                )
            )  # fmt: skip
            self._result_id = r[0]
        by_seq = {p.seq: p for p in model.phases}
        for _, pseq, _, gate, status, gate_held, _, discovered, _ in phases:
            phase = by_seq.get(pseq)
            if phase is None:
                continue
            phase.discovered = int(discovered or 0)
            phase.gate = gate or phase.gate
            if status != "running":
                phase.status = status
                phase.gate_held = None if gate_held is None else bool(gate_held)
        deploy = conn.execute(
            "SELECT status, revision FROM deploys WHERE iteration_id = ? ORDER BY id DESC LIMIT 1",
            (iteration_id,),
        ).fetchone()
        model.iteration = seq
        model.deploy_revision = (deploy[1] if deploy else None) or row[5]
        if deploy is not None:
            model.deploy_state = {"ok": "healthy"}.get(deploy[0], deploy[0] or "")
        elif row[3] is None and not self.finished:
            model.deploy_state = "deploying"
        else:
            model.deploy_state = ""
        return count >= MAX_ROWS_PER_POLL

    def _fold_logs(self) -> None:
        conn, run_id = self.conn, self.run_id
        if not self._log_id:  # opened mid-run: the last lines only
            first = conn.execute(
                "SELECT COALESCE(MAX(id), 0) FROM logs WHERE run_id = ?", (run_id,)
            ).fetchone()[0]
            self._log_id = max(0, first - FIRST_LOG_LINES)
        for row_id, at, level, source, text in conn.execute(
            "SELECT id, at, level, source, text FROM logs WHERE run_id = ? AND id > ?"
            " ORDER BY id LIMIT ?",
            (run_id, self._log_id, MAX_ROWS_PER_POLL),
        ):
            self._log(level or "info", source or "", text or "", at or "")
            self._log_id = row_id
        for row_id, plugin, hook, error, at in conn.execute(
            "SELECT id, plugin, hook, error, at FROM plugin_errors WHERE run_id = ? AND id > ?"
            " ORDER BY id",
            (run_id, self._error_id),
        ):
            self.model.plugin_errors += 1
            self._log("error", plugin or "", f"plugin error in {hook}: {error}", at or "")
            self._error_id = row_id

    def _log(self, level: str, source: str, text: str, at: str = "") -> None:
        self.model.apply(LogLine(level, source, text, at))

    def _running(self, shown: Row | None) -> None:
        """Tests in flight of the iteration shown (none once it or the run ended)."""
        model = self.model
        model.running.clear()
        if shown is None or shown[3] is not None or self.finished or not self.live:
            return
        for suite, nodeid, worker, deadline, started_at in self.conn.execute(
            "SELECT suite, nodeid, worker, deadline, started_at FROM running"
            " WHERE run_id = ? AND iteration = ?",
            (self.run_id, shown[1]),
        ):
            started = self._monotonic(started_at)
            model.running[(suite, nodeid)] = RunningTest(
                suite, nodeid, worker or "", deadline, self.clock() if started is None else started
            )

    def _monotonic(self, text: str | None) -> float | None:
        """A table's timestamp on this process's monotonic clock (what views subtract)."""
        at = parse_time(text)
        if at is None:
            return None
        return self.clock() - (self.wall() - at)


def _summary(row: Row) -> IterationSummary:
    """A finished iteration's totals, from its row."""
    _, seq, started_at, finished_at, status, _, passed, failed, hung, crashed, skipped = row[:11]
    errors, flaky = row[11], row[12]
    counts = {
        "passed": passed,
        "failed": failed,
        "hung": hung,
        "crashed": crashed,
        "skipped": skipped,
        "error": errors,
        FLAKY: flaky,
    }
    start, end = parse_time(started_at), parse_time(finished_at)
    duration = end - start if start is not None and end is not None else 0.0
    return IterationSummary(seq=seq, status=status, counts=counts, duration=duration)
