"""``netra-supervisor history``: read the SQLite history (read-only, never the writer).

Subcommands: ``runs``, ``iterations [RUN]``, ``test NODEID``, ``flaky``,
``failures [ITER]``, ``slowest``, ``diff [A [B]]``, ``export --junit FILE [ITER]``;
``browse [RUN]`` runs the TUI's history screen (``supervisor.cli`` starts it: this
module does not import the TUI).
An ITER is ``SEQ`` (iteration SEQ of the latest run), ``RUN.SEQ`` or ``latest`` (the
default). Output: a rich table in a terminal, aligned plain text when piped, JSON with
``--json``. The queries themselves are in :mod:`supervisor.store.queries`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from supervisor.argtypes import positive_int
from supervisor.exitcodes import ExitCode

if TYPE_CHECKING:
    import sqlite3
    from datetime import date

    from supervisor.core.quarantine import QuarantineList
    from supervisor.tables import TablePrinter

# supervisor.config and supervisor.store.queries are imported inside the functions:
# ``supervisor.cli`` builds this parser for every command, and --help stays instant.

# A column: (key, header, format). Formats: text, lines (one value a line), num, secs,
# time, rate, msg (its first line), sha, rev.
Column = tuple[str, str, str]


def resolve_db(db: str | None, config: str | None) -> Path:
    """``--db``, else the config's ``[run] db``, else ``.netra/history.db``; must exist."""
    from supervisor.config import ConfigError, load_config

    if db:
        path = Path(db)
    else:
        try:
            cfg = load_config(config)
            path = cfg.resolve(cfg.run.db)
        except ConfigError:
            if config:
                raise
            path = Path(".netra/history.db")
    if not path.exists():
        raise ConfigError(f"{path}: no history database here; pass --db PATH or run first")
    return path


def connect_readonly(path: Path) -> sqlite3.Connection:
    import sqlite3

    from supervisor.config import ConfigError

    conn = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=10)
    try:
        conn.execute("SELECT 1 FROM results LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise ConfigError(
            f"{path}: not a netra-supervisor history database ({exc}); pass another --db"
        ) from None
    return conn


def history_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Answer one ``history`` subcommand; QueryError / bad database -> ConfigError (exit 2)."""
    from supervisor.config import ConfigError
    from supervisor.store.queries import QueryError

    out = out or sys.stdout
    conn = connect_readonly(resolve_db(args.db, args.config))
    try:
        return _COMMANDS[args.what](conn, args, _Output(out, args.json))
    except QueryError as exc:
        raise ConfigError(f"history {args.what}: {exc}") from None
    except BrokenPipeError:  # `history flaky | head`: the reader has all it wanted
        _silence_stdout(out)
        return ExitCode.OK
    finally:
        conn.close()


def _silence_stdout(out: TextIO) -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail too."""
    import os

    if out is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


# ---------------------------------------------------------------------- subcommands


def _runs(conn: sqlite3.Connection, args: argparse.Namespace, o: _Output) -> int:
    from supervisor.store import alive, queries

    rows = queries.runs(conn, args.limit)
    db = conn.execute("PRAGMA database_list").fetchone()[2]
    for row in rows:
        # a run whose supervisor was killed still says running: tell it by its lock
        row["gone"] = bool(db) and row["status"] == "running" and alive.gone(db, row["run"])
        if not o.as_json:
            row["results"] = queries.counts_text(row)
            if row["gone"]:
                row["status"] = "gone"  # killed: it never wrote its end
    columns: list[Column] = [
        ("run", "run", "num"),
        ("started_at", "started", "time"),
        ("duration", "took", "secs"),
        ("status", "status", "text"),
        ("iterations", "iters", "num"),
        ("revision", "last revision", "rev"),
        ("phases", "phases", "text"),
        ("results", "results", "text"),
        ("git_sha", "git", "sha"),
    ]
    return o.table(
        rows, columns, "runs, newest first; results are those of each run's last iteration"
    )


def _iterations(conn: sqlite3.Connection, args: argparse.Namespace, o: _Output) -> int:
    from supervisor.store import queries

    run = queries.resolve_run(conn, args.run)
    rows = queries.iterations(conn, run)
    if not o.as_json:
        for row in rows:
            row["results"] = queries.counts_text(row)
    columns: list[Column] = [
        ("iteration", "iter", "text"),
        ("started_at", "started", "time"),
        ("duration", "took", "secs"),
        ("eta_s", "estimated", "secs"),
        ("revision", "revision", "rev"),
        ("status", "status", "text"),
        ("results", "results", "text"),
        ("phases", "phases", "text"),
    ]
    return o.table(rows, columns, f"iterations of run {run}")


def _test(conn: sqlite3.Connection, args: argparse.Namespace, o: _Output) -> int:
    from supervisor.store import queries, triage
    from supervisor.store.evidence import evidence_of_test, evidence_text

    test = queries.find_test(conn, args.nodeid, args.suite)
    data = queries.test_history(conn, test, args.limit)
    data["streak"] = triage.streak(conn, test["id"])  # None: its latest result passed
    data["dump"] = queries.newest_dump(conn, test["id"])  # whole, also in JSON
    data["evidence"] = evidence_of_test(conn, test["id"])  # what the backend said
    if o.as_json:
        return o.json(data)
    s = data["summary"]
    outcomes = ", ".join(f"{n} {outcome}" for outcome, n in s["outcomes"].items())
    o.line(f"{data['suite']}: {data['nodeid']}")
    o.line(
        f"  {s['results']} results in {s['iterations']} iterations of {s['runs']} runs: "
        f"{outcomes or 'none'}; duration p50 {secs_text(s['p50'])} p95 {secs_text(s['p95'])}"
        f" max {secs_text(s['max'])}; first seen {time_text(data['first_seen'])}"
    )
    if data["streak"] is not None:
        o.line(f"  {triage.describe_streak(data['streak'])}")
    for row in data["results"]:  # a retry that passed after attempt 1 did not
        row["shown"] = queries.shown_outcome(row)
    columns: list[Column] = [
        ("iteration", "iter", "text"),
        ("started_at", "started", "time"),
        ("revision", "revision", "rev"),
        ("phase", "phase", "text"),
        ("shown", "outcome", "text"),
        ("duration", "took", "secs"),
        ("attempt", "try", "num"),
        ("message", "message", "msg"),
    ]
    o.table(data["results"], columns, "newest first")
    if data["evidence"]:
        o.line(evidence_text(data["evidence"]))
    return _show_dump(data["dump"], args.dump, o)


def _show_dump(dump: dict[str, Any] | None, whole: bool, o: _Output) -> int:
    """The newest hang or crash dump: folded (pytest's own frames as one line, the
    test's thread or task first), or as stored with ``--dump``."""
    if dump is None:
        return ExitCode.OK
    from supervisor.core.waiting import fold_dump

    how = "as stored" if whole else "folded; --dump prints it whole"
    o.line(f"dump of the newest {dump['outcome']} result (iteration {dump['iteration']}, {how}):")
    for line in (dump["text"] if whole else fold_dump(dump["text"])).splitlines():
        o.out.write(f"  {line}\n")  # as it is: a wrapped stack line reads worse
    return ExitCode.OK


def _flaky(conn: sqlite3.Connection, args: argparse.Namespace, o: _Output) -> int:
    from datetime import datetime, timedelta, timezone

    from supervisor.store import triage

    now = datetime.now(timezone.utc)
    since = (now - timedelta(seconds=args.since)).isoformat(timespec="seconds")
    rows = triage.flaky(conn, since, _quarantined(args, now.date()), args.limit)
    for row in rows:
        row["estimate"] = (
            f"{row['fail_rate_est']:.0%} ({row['fail_rate_low']:.0%}-{row['fail_rate_high']:.0%})"
        )
        row["quarantine"] = "yes" if row["quarantined"] else ""
    columns: list[Column] = [
        ("suite", "suite", "text"),
        ("nodeid", "test", "text"),
        ("revision", "revision", "rev"),
        ("passed", "pass", "num"),
        ("failed", "fail", "num"),
        ("hung", "hung", "num"),
        ("flip_rate", "flips", "rate"),
        ("attempts_to_pass", "tries to pass", "num"),
        ("estimate", "fail rate est (95%)", "text"),
        ("quarantine", "quarantined", "text"),
        ("last_outcome", "last", "text"),
        ("last_iteration", "last iter", "text"),
    ]
    if o.as_json:
        for row in rows:
            del row["estimate"], row["quarantine"]
    return o.table(
        rows,
        columns,
        f"passed and failed (or hung) under one revision since {time_text(since)} UTC;"
        " newest evidence first",
    )


def _quarantined(args: argparse.Namespace, today: date) -> QuarantineList:
    """The quarantine file's entries in force: ``[run] quarantine`` of the config (read
    as written, unchecked), else ``netra-quarantine.toml`` beside it or here. Read by
    the same parser as a run's, so both agree on globs, suites and expiry."""
    from supervisor.config import QUARANTINE_FILENAME, ConfigError, find_config
    from supervisor.quarantine_file import read_quarantine

    try:
        config_path, data = find_config(args.config)
        folder = config_path.parent
        named = data.get("run", {}).get("quarantine") if isinstance(data, dict) else None
    except ConfigError:
        if args.config:
            raise
        folder, named = Path.cwd(), None
    path = folder / (named if isinstance(named, str) and named else QUARANTINE_FILENAME)
    try:
        return read_quarantine(path).active(today)
    except ConfigError as exc:
        raise ConfigError(f"history flaky: {exc}; fix it or move it away") from None


def _failures(conn: sqlite3.Connection, args: argparse.Namespace, o: _Output) -> int:
    from supervisor.store import queries, triage

    it = queries.resolve_iteration(conn, args.iter)
    groups = queries.failures(conn, it)
    triage.annotate_failures(conn, it.id, groups)
    if o.as_json:
        return o.json({"iteration": it.label, "groups": groups})
    total = sum(g["count"] for g in groups)
    o.line(
        f"iteration {it.label}: {total} non-passing results in {len(groups)} groups, largest first"
    )
    rows = [
        {
            "count": g["count"],
            "outcomes": ", ".join(f"{n} {k}" for k, n in g["outcomes"].items()),
            # the group's tests under its signature: one wide column, not two narrow ones
            "group": "\n".join([g["signature"], *(f"  {t}" for t in _tests_list(g["results"]))]),
        }
        for g in groups
    ]
    return o.table(
        rows,
        [
            ("count", "n", "num"),
            ("outcomes", "outcomes", "text"),
            ("group", "signature, then its tests", "lines"),
        ],
        "",
    )


def _tests_list(results: list[dict[str, Any]], most: int = 8) -> list[str]:
    names = [
        f"{r['suite']}: {r['nodeid']}{_triage_note(r)}"
        + (" (flaky: passed on a retry)" if r.get("flaky") else "")
        for r in results
    ]
    if len(names) > most:
        names = names[:most] + [f"... and {len(names) - most} more"]
    return names


def _triage_note(result: dict[str, Any]) -> str:
    """`` [new]`` / `` [still, failing since r1; last passed at r0: git log r0..r1]``."""
    change = result.get("change")
    if not change:
        return ""
    if change == "new" or not result.get("first_bad_revision"):
        return f" [{change}]"
    since = f"failing since {result['first_bad_revision']}"
    good = result.get("last_good_revision")
    if good is None:
        return f" [{change}, {since}; never passed]"
    rng = f": {result['git_range']}" if result.get("git_range") else ""
    return f" [{change}, {since}; last passed at {good}{rng}]"


def _slowest(conn: sqlite3.Connection, args: argparse.Namespace, o: _Output) -> int:
    from supervisor.store import queries

    rows = queries.slowest(conn, args.limit)
    columns: list[Column] = [
        ("suite", "suite", "text"),
        ("nodeid", "test", "text"),
        ("executions", "runs", "num"),
        ("p50", "p50", "secs"),
        ("p95", "p95", "secs"),
        ("max", "max", "secs"),
    ]
    return o.table(rows, columns, "by p95 duration over every recorded result (skipped left out)")


def _diff(conn: sqlite3.Connection, args: argparse.Namespace, o: _Output) -> int:
    from supervisor.store import queries

    b = queries.resolve_iteration(conn, args.b)
    a = (
        queries.resolve_iteration(conn, args.a)
        if args.a is not None
        else queries.previous_iteration(conn, b)
    )
    if a.id == b.id:
        raise queries.QueryError(
            f"both sides are iteration {a.label}; name two different iterations"
        )
    from supervisor.core.changes import format_changes
    from supervisor.store import triage

    data = queries.diff(conn, a, b)
    changes = triage.label_diff(data)
    if o.as_json:
        return o.json(data)
    sections = (
        ("newly_failing", "newly failing"),
        ("still_failing", "still failing"),
        ("fixed", "fixed"),
        ("new", "new (not run in A)"),
        ("removed", "removed (not run in B)"),
        ("changed", "other outcome changes"),
    )
    counts = ", ".join(f"{len(data[key])} {title.split(' (')[0]}" for key, title in sections)
    o.line(f"iteration {a.label} -> {b.label}: {counts}")
    if format_changes(changes):
        o.line(f"in {b.label}: {format_changes(changes)}")
    for key, title in sections:
        if not data[key]:
            continue
        o.line("")
        o.table(
            data[key],
            [
                ("suite", "suite", "text"),
                ("nodeid", "test", "text"),
                ("before", a.label, "text"),
                ("after", b.label, "text"),
                ("message", "message", "msg"),
            ],
            f"{title} ({len(data[key])})",
            heading=True,
        )
    return ExitCode.OK


def _export(conn: sqlite3.Connection, args: argparse.Namespace, o: _Output) -> int:
    from supervisor.store import junit, queries

    it = queries.resolve_iteration(conn, args.iter)
    target = Path(args.junit)
    try:
        summary = junit.write_junit(conn, it, target)
    except OSError as exc:
        raise queries.QueryError(f"cannot write {target}: {exc.strerror or exc}") from None
    if o.as_json:
        return o.json(summary)
    o.line(
        f"wrote {target}: iteration {it.label}, {summary['tests']} tests, "
        f"{summary['failures']} failures, {summary['errors']} errors, "
        f"{summary['skipped']} skipped"
    )
    return ExitCode.OK


_COMMANDS: dict[str, Callable[[sqlite3.Connection, argparse.Namespace, _Output], int]] = {}


# ---------------------------------------------------------------------- output


class _Output:
    """JSON, or tables and lines through :class:`supervisor.tables.TablePrinter` (styled
    in a terminal; plain when piped or with ``NO_COLOR``; both fit the width)."""

    def __init__(self, out: TextIO, as_json: bool) -> None:
        from supervisor.tables import is_styled

        self.out = out
        self.as_json = as_json
        self.rich = not as_json and is_styled(out)
        self._printer: TablePrinter | None = None

    def json(self, data: Any) -> int:
        self.out.write(json.dumps(data, indent=2, default=str) + "\n")
        return ExitCode.OK

    def line(self, text: str) -> None:
        self.printer.text(text)

    @property
    def printer(self) -> TablePrinter:
        if self._printer is None:
            from supervisor.tables import TablePrinter

            self._printer = TablePrinter(self.out)
        return self._printer

    def table(
        self, rows: list[dict[str, Any]], columns: list[Column], title: str, heading: bool = False
    ) -> int:
        """``title`` heads the table in a terminal; plain text shows it with ``heading``."""
        from supervisor.tables import Column as TableColumn

        if self.as_json:
            return self.json(rows)
        shown = title if self.rich or heading else ""
        if not rows:
            self.line(f"{shown}: (nothing recorded)" if shown else "(nothing recorded)")
            return ExitCode.OK
        self.printer.table(
            [
                TableColumn(
                    header,
                    right=fmt in ("num", "secs", "rate"),
                    long=_LONG.get(fmt, "wrap"),
                    max_width=80 if fmt == "msg" else None,
                    min_width=len("2026-12-01") if fmt == "time" else 1,  # a date stays whole
                )
                for _, header, fmt in columns
            ],
            [[_cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows],
            shown,
        )
        return ExitCode.OK


#: What a column does when the table is too wide (see supervisor.tables.Column).
_LONG: dict[str, Literal["wrap", "cut", "keep"]] = {
    "num": "keep",
    "secs": "keep",
    "rate": "keep",
    "msg": "cut",
}


def _cell(value: Any, fmt: str) -> str:
    if value is None or value == "":
        return ""
    if fmt == "secs":
        return secs_text(value)
    if fmt == "time":
        return time_text(value)
    if fmt == "rate":
        return f"{float(value):.0%}"
    if fmt == "sha":
        return str(value)[:10]
    if fmt == "rev":  # full git shas (git:SHA, or a deploy revision) shown short
        return re.sub(r"\b([0-9a-f]{10})[0-9a-f]{30}\b", r"\1", str(value))
    text = str(value)
    if fmt == "msg":
        text = text.strip().splitlines()[0] if text.strip() else ""
        return text if len(text) <= 100 else text[:99] + "…"
    return text if fmt == "lines" else text.replace("\n", " ")


def secs_text(value: Any) -> str:
    """A duration as `history` prints it (also the report): ``0.512s``, ``3m05s``."""
    if value is None:
        return "-"
    seconds = float(value)
    if seconds < 60:
        return f"{seconds:.3f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def time_text(value: Any) -> str:
    """``2026-11-24T18:41:43.123+00:00`` -> ``2026-11-24 18:41:43`` (UTC)."""
    if not value:
        return ""
    return str(value).replace("T", " ")[:19]


_COMMANDS.update(
    {
        "runs": _runs,
        "iterations": _iterations,
        "test": _test,
        "flaky": _flaky,
        "failures": _failures,
        "slowest": _slowest,
        "diff": _diff,
        "export": _export,
    }
)


# ---------------------------------------------------------------------- argparse


def add_history_parser(sub: Any) -> None:
    """The ``history`` subcommand and its own subcommands (called by ``supervisor.cli``).

    ``--db``, ``-c`` and ``--json`` are accepted before or after the subcommand.
    """
    history = sub.add_parser(
        "history",
        help="query the SQLite history",
        description="Query the history database. ITER is SEQ (an iteration of the latest "
        "run), RUN.SEQ, or latest (the default).",
    )
    _common(history, suppress=False)
    what = history.add_subparsers(dest="what", metavar="SUB", parser_class=type(history))
    what.required = True

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = what.add_parser(name, help=help_text, description=help_text)
        _common(parser, suppress=True)
        return parser

    p = add("runs", "runs, newest first: when, status, revision, counts")
    p.add_argument("--limit", type=positive_int, default=20, metavar="N", help="at most N (20)")
    p = add("iterations", "the iterations of one run (default: the latest run)")
    p.add_argument("run", nargs="?", type=positive_int, metavar="RUN")
    p = add("test", "one test's results across iterations and runs")
    p.add_argument("nodeid", metavar="NODEID", help="its pytest node id, or a unique part of it")
    p.add_argument("--suite", metavar="NAME", help="only tests of this suite")
    p.add_argument("--limit", type=positive_int, default=50, metavar="N", help="newest N (50)")
    p.add_argument(
        "--dump", action="store_true", help="print its newest hang/crash dump whole, not folded"
    )
    p = add("flaky", "tests that passed and failed (or hung) under one revision")
    p.add_argument("--limit", type=positive_int, metavar="N", help="at most N")
    p.add_argument(
        "--since",
        type=_window,
        default="30d",
        metavar="WINDOW",
        help="only iterations started within this window, e.g. 7d, 12h (default 30d)",
    )
    p = add("failures", "non-passing results of one iteration, grouped by failure signature")
    p.add_argument("iter", nargs="?", metavar="ITER", help=_ITER_HELP)
    p = add("slowest", "p50/p95/max duration per test, slowest p95 first")
    p.add_argument("--limit", type=positive_int, default=20, metavar="N", help="at most N (20)")
    p = add("diff", "newly failing, fixed, new and removed tests from iteration A to B")
    p.add_argument("a", nargs="?", metavar="A", help="ITER; default: the iteration before B")
    p.add_argument("b", nargs="?", metavar="B", help="ITER; default: latest")
    p = add("browse", "the history screen (runs, flakiest, slowest, a test) as its own app")
    p.add_argument("run", nargs="?", type=positive_int, metavar="RUN", help="its iterations first")
    p.add_argument("--no-mouse", action="store_true", help="leave the mouse to the terminal (tmux)")
    p = add("export", "write one iteration as JUnit XML")
    p.add_argument("--junit", required=True, metavar="FILE", help="the XML file to write")
    p.add_argument("iter", nargs="?", metavar="ITER", help=_ITER_HELP)


def _window(text: str) -> float:
    """``--since``: a duration back from now (``7d``, ``12h``), in seconds."""
    from supervisor.config_values import parse_duration

    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; write a window such as 7d or 12h") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is no window; write one such as 7d or 12h")
    return seconds


_ITER_HELP = "SEQ (an iteration of the latest run), RUN.SEQ, or latest (the default)"


def _common(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--db", metavar="PATH", default=default, help="history database")
    parser.add_argument(
        "-c", "--config", metavar="FILE", default=default, help="config whose [run] db to read"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="JSON instead of a table",
    )
