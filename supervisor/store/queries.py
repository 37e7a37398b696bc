"""The questions ``netra-supervisor history`` answers, as plain data (dicts and lists).

Everything here reads through a read-only connection (:func:`connect_readonly`, safe
while a run is writing: WAL) and returns JSON-ready values;
rendering is ``supervisor.history_cli``'s job. The SQL that Datasette users get too
lives in :mod:`supervisor.store.canned`.

Iterations are named on the command line as ``SEQ`` (iteration SEQ of the latest run),
``RUN.SEQ`` (iteration SEQ of run RUN) or ``latest``; :func:`resolve_iteration` turns
such a name into an :class:`Iteration`, or raises :class:`QueryError` with one line
saying what exists.
"""

from __future__ import annotations

import heapq
import math
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.core.events import FAILING_OUTCOMES, GREEN_OUTCOMES
from supervisor.store.schema import FAILING_SQL
from supervisor.store.signature import signature

if TYPE_CHECKING:
    from supervisor.core.eta import HistoryRow

_PASSING = GREEN_OUTCOMES - {"skipped"}  # what ``diff`` calls fixed


class QueryError(ValueError):
    """The question names something the database does not have (one line)."""


@dataclass(frozen=True)
class Iteration:
    """One row of ``iterations``, named ``RUN.SEQ`` to people."""

    id: int
    run_id: int
    seq: int

    @property
    def label(self) -> str:
        return f"{self.run_id}.{self.seq}"


def connect_readonly(path: str | Path, *, timeout: float = 5.0) -> sqlite3.Connection:
    """Open ``path`` read-only (``mode=ro``, rows as :class:`sqlite3.Row`); everyone
    but the writer reads this way. Raises ``FileNotFoundError`` when it does not exist."""
    path = Path(path).resolve()
    if not path.exists():
        raise FileNotFoundError(f"no history database at {path}")
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout)
    conn.row_factory = sqlite3.Row
    return conn


def _dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    names = [col[0] for col in cursor.description]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


# ---------------------------------------------------------------------- naming


_ITER_NAME = re.compile(r"^(?:(\d+)\.)?(\d+)$")


def latest_run(conn: sqlite3.Connection) -> int | None:
    row = conn.execute("SELECT MAX(id) FROM runs").fetchone()
    return None if row[0] is None else int(row[0])


def resolve_run(conn: sqlite3.Connection, run: int | None) -> int:
    """``run``, checked to exist; the latest run when None."""
    if run is None:
        latest = latest_run(conn)
        if latest is None:
            raise QueryError("no run recorded in this database yet; run first")
        return latest
    if conn.execute("SELECT 1 FROM runs WHERE id = ?", (run,)).fetchone() is None:
        latest = latest_run(conn)
        known = f"runs are 1..{latest}" if latest else "no run is recorded yet"
        raise QueryError(f"no run {run} in this database ({known}; see `history runs`)")
    return run


def resolve_iteration(conn: sqlite3.Connection, name: str | None) -> Iteration:
    """The iteration ``name`` means: ``latest`` / None, ``SEQ`` or ``RUN.SEQ``."""
    if name is None or name.strip().lower() in ("", "latest", "last"):
        row = conn.execute("SELECT id, run_id, seq FROM iterations ORDER BY id DESC LIMIT 1")
        found = row.fetchone()
        if found is None:
            raise QueryError("no iteration recorded in this database yet; run first")
        return Iteration(*found)
    match = _ITER_NAME.match(name.strip())
    if match is None:
        raise QueryError(
            f"{name!r} is not an iteration: write SEQ (in the latest run), RUN.SEQ or latest"
        )
    run = int(match.group(1)) if match.group(1) else resolve_run(conn, None)
    if match.group(1):
        resolve_run(conn, run)
    seq = int(match.group(2))
    found = conn.execute(
        "SELECT id, run_id, seq FROM iterations WHERE run_id = ? AND seq = ?", (run, seq)
    ).fetchone()
    if found is None:
        low, high = conn.execute(
            "SELECT MIN(seq), MAX(seq) FROM iterations WHERE run_id = ?", (run,)
        ).fetchone()
        has = f"it has iterations {low}..{high}" if low is not None else "it has no iteration"
        raise QueryError(f"no iteration {seq} in run {run} ({has}; see `history iterations`)")
    return Iteration(*found)


def previous_iteration(conn: sqlite3.Connection, it: Iteration) -> Iteration:
    """The iteration recorded just before ``it`` (maybe in an earlier run)."""
    found = conn.execute(
        "SELECT id, run_id, seq FROM iterations WHERE id < ? ORDER BY id DESC LIMIT 1", (it.id,)
    ).fetchone()
    if found is None:
        raise QueryError(f"iteration {it.label} is the first one recorded; name two to compare")
    return Iteration(*found)


# ---------------------------------------------------------------------- runs, iterations


def runs(conn: sqlite3.Connection, limit: int | None = None) -> list[dict[str, Any]]:
    """Newest run first: when, status, git, and the counts of its last iteration."""
    rows = _dicts(
        conn.execute(
            "SELECT r.id AS run, r.started_at, r.finished_at, r.status, r.exit_code,"
            " r.host, r.git_sha, r.version,"
            " (SELECT COUNT(*) FROM iterations i WHERE i.run_id = r.id) AS iterations,"
            " li.run_id || '.' || li.seq AS last_iteration, li.deploy_revision AS revision,"
            " (SELECT group_concat(p.name, ', ') FROM phases p"
            "  WHERE p.iteration_id = li.id) AS phases,"
            " li.passed, li.failed, li.errors, li.hung, li.crashed, li.skipped,"
            f" {flaky_column(conn, 'iterations', 'li')} AS flaky"
            " FROM runs r LEFT JOIN iterations li"
            " ON li.id = (SELECT MAX(id) FROM iterations WHERE run_id = r.id)"
            " ORDER BY r.id DESC LIMIT ?",
            (-1 if limit is None else limit,),
        )
    )
    for row in rows:
        row["duration"] = seconds_between(row["started_at"], row["finished_at"])
    return rows


def iterations(conn: sqlite3.Connection, run_id: int) -> list[dict[str, Any]]:
    """The iterations of one run, in order, with their revision, phases and counts, and
    ``eta_s``, the estimate made as each started (None in a database no ``run`` has
    migrated to ``0003_iteration_eta`` yet: ``history`` only reads)."""
    eta = "i.eta_s" if _has_column(conn, "iterations", "eta_s") else "NULL"
    rows = _dicts(
        conn.execute(
            "SELECT i.run_id || '.' || i.seq AS iteration, i.id, i.run_id AS run, i.seq,"
            f" i.started_at, i.finished_at, {eta} AS eta_s,"
            " i.deploy_revision AS revision, i.status,"
            " i.passed, i.failed, i.errors, i.hung, i.crashed, i.skipped,"
            f" {flaky_column(conn, 'iterations', 'i')} AS flaky,"
            " (SELECT group_concat(p.name, ', ') FROM phases p"
            "  WHERE p.iteration_id = i.id) AS phases"
            " FROM iterations i WHERE i.run_id = ? ORDER BY i.seq",
            (run_id,),
        )
    )
    for row in rows:
        row["duration"] = seconds_between(row["started_at"], row["finished_at"])
    return rows


def counts_text(row: dict[str, Any]) -> str:
    """An iteration's counts in one cell (``5 passed, 2 failed, 1 hung``): one column
    that wraps instead of six that cannot, so a table fits 80 columns (``history
    runs``/``iterations`` and the TUI's history screen)."""
    if row.get("passed") is None:  # a run without an iteration
        return ""
    return ", ".join(
        f"{row[key]} {key}"
        for key in ("passed", "flaky", "failed", "errors", "hung", "crashed", "skipped")
        if row.get(key) or key in ("passed", "failed")
    )


def _has_column(conn: sqlite3.Connection, table: str, column: str) -> bool:
    return any(row[1] == column for row in conn.execute(f"PRAGMA table_info({table})"))


def flaky_column(conn: sqlite3.Connection, table: str, alias: str) -> str:
    """SQL for ``alias.flaky`` (``0005_flaky``), or 0 in a database not migrated yet
    (``history`` only reads)."""
    return f"{alias}.flaky" if _has_column(conn, table, "flaky") else "0"


def seconds_between(start: str | None, end: str | None) -> float | None:
    from datetime import datetime

    if not start or not end:
        return None
    try:
        return round(
            (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3
        )
    except ValueError:
        return None


# ---------------------------------------------------------------------- one test


def find_test(conn: sqlite3.Connection, text: str, suite: str | None = None) -> dict[str, Any]:
    """The one test whose node id is ``text``, or uniquely contains it."""
    where_suite = " AND suite = ?" if suite else ""
    extra = (suite,) if suite else ()
    cols = "SELECT id, suite, nodeid, file, first_seen FROM tests WHERE "
    found = _dicts(conn.execute(cols + "nodeid = ?" + where_suite + " ORDER BY id", (text, *extra)))
    if not found:
        found = _dicts(
            conn.execute(
                cols + "instr(nodeid, ?) > 0" + where_suite + " ORDER BY suite, nodeid",
                (text, *extra),
            )
        )
    in_suite = f" in suite {suite!r}" if suite else ""
    if not found:
        raise QueryError(f"no test{in_suite} matches {text!r} (give part of its pytest node id)")
    if len(found) > 1:
        names = ", ".join(f"{t['suite']}: {t['nodeid']}" for t in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        raise QueryError(
            f"{text!r} matches {len(found)} tests{in_suite} ({names}{more});"
            " give more of the node id, or --suite NAME"
        )
    return found[0]


def test_history(
    conn: sqlite3.Connection, test: dict[str, Any], limit: int | None = None
) -> dict[str, Any]:
    """Every result of one test, newest first, with a summary across runs."""
    results = _dicts(
        conn.execute(
            "SELECT i.run_id || '.' || i.seq AS iteration, i.run_id AS run, i.seq,"
            " i.deploy_revision AS revision, p.name AS phase, r.attempt, r.outcome,"
            f" {flaky_column(conn, 'results', 'r')} AS flaky, r.duration, r.started_at, r.message"
            " FROM results r JOIN iterations i ON i.id = r.iteration_id"
            " LEFT JOIN phases p ON p.id = r.phase_id"
            " WHERE r.test_id = ? ORDER BY r.iteration_id DESC, r.id DESC LIMIT ?",
            (test["id"], -1 if limit is None else limit),
        )
    )
    counts = dict(
        conn.execute(
            f"SELECT CASE WHEN {flaky_column(conn, 'results', 'results')} THEN 'flaky' ELSE outcome END,"
            " COUNT(*) FROM results WHERE test_id = ? GROUP BY 1 ORDER BY 2 DESC",
            (test["id"],),
        ).fetchall()
    )
    durations = sorted(
        d
        for (d,) in conn.execute(
            "SELECT duration FROM results WHERE test_id = ? AND duration IS NOT NULL"
            " AND outcome <> 'skipped'",
            (test["id"],),
        )
    )
    span = conn.execute(
        "SELECT COUNT(DISTINCT i.run_id), COUNT(DISTINCT i.id) FROM results r"
        " JOIN iterations i ON i.id = r.iteration_id WHERE r.test_id = ?",
        (test["id"],),
    ).fetchone()
    summary = {
        "results": sum(counts.values()),
        "runs": span[0],
        "iterations": span[1],
        "outcomes": counts,
        "p50": percentile(durations, 50),
        "p95": percentile(durations, 95),
        "max": durations[-1] if durations else None,
    }
    info = {k: test[k] for k in ("suite", "nodeid", "file", "first_seen")}
    return {**info, "summary": summary, "results": results}


def newest_dump(conn: sqlite3.Connection, test_id: int) -> dict[str, Any] | None:
    """The test's newest result with a dump (a hang's stacks, a crash's report):
    ``{"iteration", "outcome", "text"}``, or None."""
    row = conn.execute(
        "SELECT i.run_id || '.' || i.seq, r.outcome, r.dump FROM results r"
        " JOIN iterations i ON i.id = r.iteration_id"
        " WHERE r.test_id = ? AND r.dump IS NOT NULL AND r.dump <> ''"
        " ORDER BY r.iteration_id DESC, r.id DESC LIMIT 1",
        (test_id,),
    ).fetchone()
    return None if row is None else {"iteration": row[0], "outcome": row[1], "text": row[2]}


# ---------------------------------------------------------------------- flaky


def wilson(failures: int, total: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a failure rate; honest for small counts."""
    if total == 0:
        return 0.0, 1.0
    p = failures / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    return round(max(0.0, centre - half), 3), round(min(1.0, centre + half), 3)


# ``history flaky`` itself (a window, attempts to pass, quarantine) is in
# ``supervisor.store.triage``.


# ---------------------------------------------------------------------- failures


def failures(conn: sqlite3.Connection, it: Iteration) -> list[dict[str, Any]]:
    """Non-passing results of one iteration grouped by signature, largest group first."""
    rows = _dicts(
        conn.execute(
            "SELECT t.suite, t.nodeid, r.outcome, r.duration, r.attempt, r.message,"
            f" {_passed_later(conn)} AS flaky"
            " FROM results r JOIN tests t ON t.id = r.test_id"
            f" WHERE r.iteration_id = ? AND r.outcome IN {FAILING_SQL} ORDER BY r.id",
            (it.id,),
        )
    )
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = signature(row["outcome"], row["message"])
        group = groups.setdefault(
            key,
            {
                "signature": key,
                "count": 0,
                "outcomes": {},
                "example": row["message"],
                "results": [],
            },
        )
        group["count"] += 1
        group["outcomes"][row["outcome"]] = group["outcomes"].get(row["outcome"], 0) + 1
        group["results"].append(row)
    return sorted(groups.values(), key=lambda g: (-g["count"], g["signature"]))


def _passed_later(conn: sqlite3.Connection) -> str:
    """SQL: 1 when result ``r``'s test passed on a later attempt in its iteration (the
    failure was flaky), else 0."""
    if not _has_column(conn, "results", "flaky"):
        return "0"
    return (
        "EXISTS (SELECT 1 FROM results l WHERE l.test_id = r.test_id"
        " AND l.iteration_id = r.iteration_id AND l.flaky = 1 AND l.id > r.id)"
    )


# ---------------------------------------------------------------------- slowest


def percentile(sorted_values: list[float], pct: float) -> float | None:
    """Linear-interpolated percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    value = sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)
    return round(value, 4)


def slowest(conn: sqlite3.Connection, limit: int = 20) -> list[dict[str, Any]]:
    """The ``limit`` tests with the highest p95 duration (skipped results left out).

    One pass over the covering index gives each test's max; tests are then examined
    from the largest max down, and the search stops once no remaining max can beat the
    ``limit``-th best p95 (p95 <= max), so only a few tests' durations are read.
    """
    maxima = conn.execute(
        "SELECT test_id, MAX(duration) FROM results"
        " WHERE duration IS NOT NULL AND outcome <> 'skipped' GROUP BY test_id"
    ).fetchall()
    maxima.sort(key=lambda row: row[1], reverse=True)
    best: list[tuple[float, int, dict[str, Any]]] = []  # min-heap on p95
    for test_id, top in maxima:
        if len(best) >= limit and top <= best[0][0]:
            break
        durations = sorted(
            d
            for (d,) in conn.execute(
                "SELECT duration FROM results WHERE test_id = ? AND duration IS NOT NULL"
                " AND outcome <> 'skipped'",
                (test_id,),
            )
        )
        row = {
            "test_id": test_id,
            "executions": len(durations),
            "p50": percentile(durations, 50),
            "p95": percentile(durations, 95),
            "max": round(top, 4),
            "mean": round(sum(durations) / len(durations), 4),
        }
        item = (row["p95"], -test_id, row)
        if len(best) < limit:
            heapq.heappush(best, item)
        elif item > best[0]:
            heapq.heapreplace(best, item)
    ranked = [row for _, _, row in sorted(best, key=lambda x: (x[0], x[1]), reverse=True)]
    names = _test_names(conn, [row["test_id"] for row in ranked])
    return [{**names[row.pop("test_id")], **row} for row in ranked]


def _test_names(conn: sqlite3.Connection, ids: list[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    marks = ", ".join("?" for _ in ids)
    return {
        row[0]: {"suite": row[1], "nodeid": row[2]}
        for row in conn.execute(f"SELECT id, suite, nodeid FROM tests WHERE id IN ({marks})", ids)
    }


# ---------------------------------------------------------------------- diff, one iteration


def iteration_results(conn: sqlite3.Connection, it: Iteration) -> dict[int, dict[str, Any]]:
    """Each test's last result in one iteration (a later attempt replaces an earlier)."""
    final: dict[int, dict[str, Any]] = {}
    cursor = conn.execute(
        "SELECT t.id AS test_id, t.suite, t.nodeid, t.file, r.outcome, r.duration, r.attempt,"
        " r.started_at, r.message, r.longrepr, r.dump, p.name AS phase,"
        f" {flaky_column(conn, 'results', 'r')} AS flaky"
        " FROM results r JOIN tests t ON t.id = r.test_id"
        " LEFT JOIN phases p ON p.id = r.phase_id"
        " WHERE r.iteration_id = ? ORDER BY r.id",
        (it.id,),
    )
    for row in _dicts(cursor):
        final[row["test_id"]] = row
    return final


def diff(conn: sqlite3.Connection, a: Iteration, b: Iteration) -> dict[str, Any]:
    """What changed from iteration ``a`` to ``b``.

    newly_failing: not failing in A, failing in B; fixed: failing in A, passing in B;
    new / removed: run in only one of them (a gate that stops an iteration early makes
    the tests of later phases "removed"); changed: any other outcome change.
    """
    before, after = iteration_results(conn, a), iteration_results(conn, b)

    def item(test_id: int) -> dict[str, Any]:
        old, new = before.get(test_id), after.get(test_id)
        base = new or old
        assert base is not None
        return {
            "suite": base["suite"],
            "nodeid": base["nodeid"],
            "before": shown_outcome(old) if old else None,
            "after": shown_outcome(new) if new else None,
            "message": (new or {}).get("message") or "",
        }

    out: dict[str, Any] = {
        "a": a.label,
        "b": b.label,
        "newly_failing": [],
        "fixed": [],
        "still_failing": [],
        "new": [],
        "removed": [],
        "changed": [],
    }
    for test_id in sorted(set(before) | set(after), key=lambda t: _name_key(before, after, t)):
        old, new = before.get(test_id), after.get(test_id)
        if old is None:
            out["new"].append(item(test_id))
        elif new is None:
            out["removed"].append(item(test_id))
        else:
            was_bad = old["outcome"] in FAILING_OUTCOMES
            is_bad = new["outcome"] in FAILING_OUTCOMES
            if is_bad and not was_bad:
                out["newly_failing"].append(item(test_id))
            elif was_bad and new["outcome"] in _PASSING:
                out["fixed"].append(item(test_id))
            elif was_bad and is_bad:
                out["still_failing"].append(item(test_id))
            elif old["outcome"] != new["outcome"]:
                out["changed"].append(item(test_id))
    return out


def shown_outcome(row: dict[str, Any]) -> str:
    """A result row's outcome as people read it: ``flaky`` for a retry that passed."""
    return "flaky" if row.get("flaky") else str(row["outcome"])


def _name_key(
    before: dict[int, dict[str, Any]], after: dict[int, dict[str, Any]], test_id: int
) -> tuple[str, str]:
    row = after.get(test_id) or before[test_id]
    return row["suite"], row["nodeid"]


def recent_outcomes(conn: sqlite3.Connection, iterations: int = 20) -> list[tuple[str, str, str]]:
    """``(suite, nodeid, outcome)`` of each test whose latest result in the last
    ``iterations`` iterations (of any run) did not pass, oldest first: what runs first
    (failed-first). Grouped in SQL over the test-history index: ~0.08 s on a
    1 000 000-result history, where folding every row in Python took ~0.5 s."""
    row = conn.execute(
        "SELECT min(id) FROM (SELECT id FROM iterations ORDER BY id DESC LIMIT ?)",
        (iterations,),
    ).fetchone()
    if row is None or row[0] is None:
        return []
    not_passing = sorted(FAILING_OUTCOMES | {"xpassed"})
    marks = ", ".join("?" * len(not_passing))
    return [
        (suite, nodeid, outcome)
        for suite, nodeid, outcome in conn.execute(
            "WITH latest AS (SELECT test_id, max(id) AS id FROM results"
            " WHERE iteration_id >= ? GROUP BY test_id)"
            " SELECT t.suite, t.nodeid, r.outcome FROM latest"
            " JOIN results r ON r.id = latest.id JOIN tests t ON t.id = r.test_id"
            f" WHERE r.outcome IN ({marks}) ORDER BY r.id",
            (row[0], *not_passing),
        )
    ]


def recent_test_times(conn: sqlite3.Connection, suites: list[str]) -> list[HistoryRow]:
    """What expected counts and ETAs start from (``core.eta.HistoryRow``): for every
    test of ``suites``, the latest iteration with a result of it outside a verify pass,
    and its last 5 non-skipped durations, newest first.

    Two index seeks per test on ``idx_results_test_history``, no scan of ``results``:
    about 0.06 s for 10 000 tests over 1 000 000 results (``bench/history.py``).
    """
    if not suites:
        return []
    marks = ", ".join("?" for _ in suites)
    rows = conn.execute(
        "SELECT t.suite, t.nodeid,"
        " (SELECT r.iteration_id FROM results r WHERE r.test_id = t.id"
        "  AND coalesce(r.phase_id, 0) NOT IN (SELECT id FROM phases WHERE name = 'verify')"
        "  ORDER BY r.iteration_id DESC LIMIT 1),"
        " (SELECT group_concat(d) FROM (SELECT r.duration AS d FROM results r"
        "  WHERE r.test_id = t.id AND r.outcome <> 'skipped' AND r.duration IS NOT NULL"
        "  ORDER BY r.iteration_id DESC LIMIT 5))"
        f" FROM tests t WHERE t.suite IN ({marks})",
        suites,
    )
    return [
        (suite, nodeid, last, tuple(float(d) for d in recent.split(",")) if recent else ())
        for suite, nodeid, last, recent in rows
    ]


def deploy_time(conn: sqlite3.Connection) -> float | None:
    """The median duration of the last 5 deploys that did not fail (health check
    included; a skipped deploy is one too): an iteration's first part."""
    durations = sorted(
        d
        for (d,) in conn.execute(
            "SELECT duration FROM deploys WHERE status <> 'failed' AND duration IS NOT NULL"
            " ORDER BY id DESC LIMIT 5"
        )
    )
    return percentile(durations, 50)
