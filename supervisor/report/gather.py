"""What a report holds, read from the history as plain data (no rendering here).

One read-only pass over a run: its iterations with their deploys, phases and gates; its
non-passing results grouped by the one failure signature ``history failures`` uses
(:func:`supervisor.store.signature.signature`), with their evidence when the history
has an ``evidence`` table; its hung and crashed tests with their dumps; the flaky tests
since it started (``history flaky``'s query); and the pass count per iteration toward
the target. Every text goes through ``clean`` (the redactor) as it is read, so the
renderers only escape: a secret cannot reach either output format.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from supervisor.core.waiting import fold_dump
from supervisor.store import queries, triage
from supervisor.store.schema import FAILING_SQL
from supervisor.store.signature import signature

#: A dump shown in a report is cut to this many lines / characters (the stored one is whole).
DUMP_LINES = 200
DUMP_CHARS = 20_000
#: Tests listed under one failure group; results whose evidence is shown per group.
GROUP_TESTS = 25
GROUP_EVIDENCE = 5
#: Evidence lines shown per result (the ``evidence`` table keeps up to 200).
EVIDENCE_LINES = 60
#: Hung and crashed results shown with their dump (the rest are listed).
HUNG_DUMPS = 20


def _shown_dump(dump: str, *, fold: bool = False) -> str:
    """What a person is shown of a dump or traceback: a hang dump (``fold``) folded the
    way the TUI and ``history test`` fold it (the test's own stack first, pytest frames
    counted), then anything bounded with the cut counted."""
    if fold:
        dump = fold_dump(dump)
    lines = dump.rstrip().splitlines()
    if len(lines) > DUMP_LINES:
        head = DUMP_LINES - 20 if fold else 20  # folded: the test's stack comes first
        tail = DUMP_LINES - head
        lines = [
            *lines[:head],
            f"… {len(lines) - DUMP_LINES} lines left out …",
            *lines[-tail:],
        ]
    text = "\n".join(lines)
    if len(text) > DUMP_CHARS:
        text = f"… {len(text) - DUMP_CHARS} characters left out …\n" + text[-DUMP_CHARS:]
    return text


@dataclass(frozen=True)
class Phase:
    name: str
    seq: int
    status: str
    gate: str
    gate_held: bool | None
    passed: int
    failed: int
    hung: int
    crashed: int
    errors: int
    skipped: int
    duration: float | None
    impact: str


@dataclass(frozen=True)
class Deploy:
    backend: str
    status: str
    revision: str
    duration: float | None
    message: str


@dataclass(frozen=True)
class Iteration:
    label: str
    seq: int
    started_at: str
    duration: float | None
    revision: str
    status: str
    counts: dict[str, int]
    deploys: list[Deploy]
    phases: list[Phase]

    @property
    def passed(self) -> int:
        return self.counts.get("passed", 0)

    @property
    def total(self) -> int:
        return sum(self.counts.get(k, 0) for k in ("passed", "failed", "errors", "hung", "crashed"))


@dataclass(frozen=True)
class Evidence:
    source: str
    lines: list[str]
    omitted: int  # lines the store left out, plus those this report leaves out
    first_at: str
    last_at: str


@dataclass(frozen=True)
class Failure:
    result_id: int
    iteration: str
    suite: str
    nodeid: str
    outcome: str
    attempt: int
    passed_on_retry: bool
    message: str
    evidence: list[Evidence] = field(default_factory=list)


@dataclass
class FailureGroup:
    signature: str
    message: str  # the first result's message: where it waited, what it asserted
    longrepr: str
    first_iteration: str
    first_revision: str
    last_iteration: str
    outcomes: dict[str, int] = field(default_factory=dict)
    results: list[Failure] = field(default_factory=list)
    count: int = 0
    tests: set[tuple[str, str]] = field(default_factory=set)


@dataclass(frozen=True)
class Hung:
    iteration: str
    suite: str
    nodeid: str
    outcome: str
    duration: float | None
    message: str
    dump: str  # :func:`_shown_dump` of it; "" when none was taken


@dataclass(frozen=True)
class Flaky:
    suite: str
    nodeid: str
    revision: str
    passed: int
    failed: int
    hung: int
    flip_rate: float | None
    last_outcome: str
    last_iteration: str


@dataclass(frozen=True)
class Report:
    run_id: int
    started_at: str
    finished_at: str
    status: str
    host: str
    git_sha: str
    version: str
    target: int | None
    generated_at: str
    iterations: list[Iteration]
    groups: list[FailureGroup]
    hung: list[Hung]
    hung_total: int
    flaky: list[Flaky]
    has_evidence: bool

    @property
    def duration(self) -> float | None:
        return queries.seconds_between(self.started_at or None, self.finished_at or None)


def gather(
    conn: sqlite3.Connection,
    run: int | None,
    clean: Callable[[str], str],
    now: datetime | None = None,
) -> Report:
    """The report of run ``run`` (None: the latest); ``QueryError`` when there is none."""
    run_id = queries.resolve_run(conn, run)

    def t(value: Any) -> str:
        return "" if value is None else clean(str(value))

    row = conn.execute(
        "SELECT started_at, finished_at, status, host, git_sha, version, config"
        " FROM runs WHERE id = ?",
        (run_id,),
    ).fetchone()
    started, finished, status, host, git_sha, version, config_text = row
    iterations = _iterations(conn, run_id, t)
    has_evidence = _has_table(conn, "evidence")
    groups = _groups(conn, run_id, t)
    if has_evidence:
        _attach_evidence(conn, groups, t)
    hung, hung_total = _hung(conn, run_id, t)
    return Report(
        run_id=run_id,
        started_at=t(started),
        finished_at=t(finished),
        status=t(status),
        host=t(host),
        git_sha=t(git_sha),
        version=t(version),
        target=run_target(config_text),
        generated_at=(now or datetime.now(timezone.utc)).isoformat(timespec="seconds"),
        iterations=iterations,
        groups=groups,
        hung=hung,
        hung_total=hung_total,
        flaky=_flaky(conn, str(started or ""), t),
        has_evidence=has_evidence,
    )


def run_config(config_text: str | None) -> dict[str, Any]:
    """``runs.config`` as data ({} when missing or not JSON)."""
    try:
        data = json.loads(config_text or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def run_target(config_text: str | None) -> int | None:
    """The run's ``[run] target`` as its stored config says (None: no target set)."""
    run = run_config(config_text).get("run")
    target = run.get("target") if isinstance(run, dict) else None
    return target if isinstance(target, int) and target > 0 else None


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def _iterations(conn: sqlite3.Connection, run_id: int, t: Callable[[Any], str]) -> list[Iteration]:
    out: list[Iteration] = []
    for row in queries.iterations(conn, run_id):
        deploys = [
            Deploy(t(backend), t(status), t(revision), duration, t(message))
            for backend, status, revision, duration, message in conn.execute(
                "SELECT backend, status, revision, duration, message FROM deploys"
                " WHERE iteration_id = ? ORDER BY id",
                (row["id"],),
            )
        ]
        phases = [
            Phase(
                name=t(p[0]),
                seq=int(p[1]),
                status=t(p[2]),
                gate=t(p[3]),
                gate_held=None if p[4] is None else bool(p[4]),
                passed=p[5] or 0,
                failed=p[6] or 0,
                hung=p[7] or 0,
                crashed=p[8] or 0,
                errors=p[9] or 0,
                skipped=p[10] or 0,
                duration=p[11],
                impact=t(p[12]),
            )
            for p in conn.execute(
                "SELECT name, seq, status, gate, gate_held, passed, failed, hung, crashed,"
                " errors, skipped, duration, impact FROM phases WHERE iteration_id = ?"
                " ORDER BY seq",
                (row["id"],),
            )
        ]
        counts = {
            k: int(row[k] or 0)
            for k in ("passed", "flaky", "failed", "errors", "hung", "crashed", "skipped")
        }
        out.append(
            Iteration(
                label=t(row["iteration"]),
                seq=int(row["seq"]),
                started_at=t(row["started_at"]),
                duration=row["duration"],
                revision=t(row["revision"]),
                status=t(row["status"]),
                counts=counts,
                deploys=deploys,
                phases=phases,
            )
        )
    return out


def _groups(conn: sqlite3.Connection, run_id: int, t: Callable[[Any], str]) -> list[FailureGroup]:
    """The run's non-passing results by signature, largest group first."""
    flaky = queries.flaky_column(conn, "results", "l")
    passed_later = (
        "0"
        if flaky == "0"
        else "EXISTS (SELECT 1 FROM results l WHERE l.test_id = r.test_id"
        f" AND l.iteration_id = r.iteration_id AND {flaky} = 1 AND l.id > r.id)"
    )
    cursor = conn.execute(
        "SELECT r.id, i.run_id || '.' || i.seq, i.deploy_revision, t.suite, t.nodeid,"
        f" r.outcome, r.attempt, r.message, r.longrepr, {passed_later}"
        " FROM results r JOIN iterations i ON i.id = r.iteration_id"
        " JOIN tests t ON t.id = r.test_id"
        f" WHERE i.run_id = ? AND r.outcome IN {FAILING_SQL} ORDER BY r.id",
        (run_id,),
    )
    groups: dict[str, FailureGroup] = {}
    for rid, label, revision, suite, nodeid, outcome, attempt, message, longrepr, later in cursor:
        key = signature(outcome, t(message))
        group = groups.get(key)
        if group is None:
            group = groups[key] = FailureGroup(
                signature=t(key),
                message=t(message),
                longrepr=_shown_dump(t(longrepr)) if longrepr else "",
                first_iteration=t(label),
                first_revision=t(revision),
                last_iteration=t(label),
            )
        group.count += 1
        group.last_iteration = t(label)
        group.outcomes[outcome] = group.outcomes.get(outcome, 0) + 1
        group.tests.add((suite, nodeid))
        if len(group.results) < GROUP_TESTS:
            group.results.append(
                Failure(
                    result_id=int(rid),
                    iteration=t(label),
                    suite=t(suite),
                    nodeid=t(nodeid),
                    outcome=t(outcome),
                    attempt=int(attempt or 1),
                    passed_on_retry=bool(later),
                    message=t(message),
                )
            )
    return sorted(groups.values(), key=lambda g: (-g.count, g.signature))


def _attach_evidence(
    conn: sqlite3.Connection, groups: list[FailureGroup], t: Callable[[Any], str]
) -> None:
    """The backend log lines of the first few results of each group (bounded)."""
    for group in groups:
        for failure in group.results[:GROUP_EVIDENCE]:
            for source, text, omitted, first_at, last_at in conn.execute(
                "SELECT source, lines, omitted, first_at, last_at FROM evidence"
                " WHERE result_id = ? ORDER BY id",
                (failure.result_id,),
            ):
                lines = _evidence_lines(t(text))
                shown = lines[:EVIDENCE_LINES]
                failure.evidence.append(
                    Evidence(
                        source=t(source),
                        lines=shown,
                        omitted=int(omitted or 0) + len(lines) - len(shown),
                        first_at=t(first_at),
                        last_at=t(last_at),
                    )
                )


def _evidence_lines(text: str) -> list[str]:
    """``evidence.lines``: one log line a line (a JSON list of lines is read too)."""
    if text.startswith("["):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, list) and all(isinstance(x, str) for x in data):
            return list(data)
    return text.splitlines()


def _hung(conn: sqlite3.Connection, run_id: int, t: Callable[[Any], str]) -> tuple[list[Hung], int]:
    """Hung and crashed results, oldest first: the first :data:`HUNG_DUMPS` with their
    dump, the rest without; and how many there are."""
    out: list[Hung] = []
    total = 0
    for label, suite, nodeid, outcome, duration, message, dump in conn.execute(
        "SELECT i.run_id || '.' || i.seq, t.suite, t.nodeid, r.outcome, r.duration,"
        " r.message, r.dump FROM results r JOIN iterations i ON i.id = r.iteration_id"
        " JOIN tests t ON t.id = r.test_id"
        " WHERE i.run_id = ? AND r.outcome IN ('hung', 'crashed') ORDER BY r.id",
        (run_id,),
    ):
        total += 1
        if len(out) >= 100:
            continue
        shown = _shown_dump(t(dump), fold=True) if dump and len(out) < HUNG_DUMPS else ""
        out.append(Hung(t(label), t(suite), t(nodeid), t(outcome), duration, t(message), shown))
    return out, total


def _flaky(conn: sqlite3.Connection, since: str, t: Callable[[Any], str]) -> list[Flaky]:
    """``history flaky`` since the run started (so: in it and any later run)."""
    return [
        Flaky(
            suite=t(row["suite"]),
            nodeid=t(row["nodeid"]),
            revision=t(row["revision"]),
            passed=int(row["passed"]),
            failed=int(row["failed"]),
            hung=int(row["hung"]),
            flip_rate=row["flip_rate"],
            last_outcome=t(row["last_outcome"]),
            last_iteration=t(row["last_iteration"]),
        )
        for row in triage.flaky(conn, since, limit=100)
    ]
