"""``netra-supervisor quarantine``: add, list, remove and suggest quarantined tests.

The file is ``[run] quarantine`` of the config (``-c``, else the one in this folder),
by default ``netra-quarantine.toml`` beside it; without any config, the one in this
folder. ``suggest`` reads the history (``--db``, else ``[run] db``) read-only. The
rules are in :mod:`supervisor.core.quarantine` and :mod:`supervisor.core.flips`,
the file edits in :mod:`supervisor.quarantine_file`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from supervisor.argtypes import positive_int
from supervisor.exitcodes import ExitCode

if TYPE_CHECKING:
    from datetime import date

    from supervisor.config import Config

# supervisor.config, the store and the file module are imported inside the functions:
# ``supervisor.cli`` builds this parser for every command, and --help stays instant.

#: ``quarantine suggest``: how many latest results must all have passed by default
DEFAULT_PASSES = 10
DEFAULT_SINCE = "30d"


def add_quarantine_parser(sub: Any) -> None:
    """The ``quarantine`` subcommand and its own subcommands (called by ``supervisor.cli``)."""
    parser = sub.add_parser(
        "quarantine",
        help="tests that run but never fail a gate: add, list, remove, suggest",
        description="The quarantine file ([run] quarantine, default netra-quarantine.toml "
        "beside the config): its tests still run and are recorded, but never fail a gate "
        "or the exit code.",
    )
    what = parser.add_subparsers(dest="what", metavar="SUB", parser_class=type(parser))
    what.required = True

    def add(name: str, help_text: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = what.add_parser(name, help=help_text, description=help_text)
        p.add_argument(
            "-c", "--config", metavar="FILE", help="config whose [run] quarantine to use"
        )
        return p

    p = add("add", "quarantine a test (or a glob of tests)")
    p.add_argument("nodeid", metavar="NODEID", help="its pytest node id, or a glob (* and ?)")
    p.add_argument("--reason", required=True, metavar="TEXT", help="why (kept in the file)")
    p.add_argument("--until", metavar="DATE", help="the last day it applies, YYYY-MM-DD")
    p.add_argument("--suite", metavar="NAME", default="", help="only in this [[suite]]")
    p = add("list", "the entries, expired ones marked")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p = add("remove", "take a test out of the quarantine")
    p.add_argument("nodeid", metavar="NODEID", help="the nodeid (or glob) as the entry has it")
    p.add_argument("--suite", metavar="NAME", default="", help="only the entry of this suite")
    p = add("suggest", "what to quarantine (flipping tests) and what could come out")
    p.add_argument("--db", metavar="PATH", help="history database (default: [run] db)")
    p.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        metavar="DURATION",
        help=f"look at iterations of this window ({DEFAULT_SINCE})",
    )
    p.add_argument(
        "--passes",
        type=positive_int,
        default=DEFAULT_PASSES,
        metavar="N",
        help=f"a quarantined test that passed its last N results could come out ({DEFAULT_PASSES})",
    )
    p.add_argument("--limit", type=positive_int, default=20, metavar="N", help="at most N (20)")
    p.add_argument("--json", action="store_true", help="JSON instead of tables")


def quarantine_command(
    args: argparse.Namespace, out: TextIO | None = None, today: date | None = None
) -> int:
    """Answer one ``quarantine`` subcommand; bad input is a ConfigError (exit 2)."""
    from datetime import date

    out = out or sys.stdout
    config, path = _config_and_file(args.config)
    day = today or date.today()
    if args.what == "add":
        return _add(args, path, day, out)
    if args.what == "list":
        return _list(args, path, day, out)
    if args.what == "remove":
        return _remove(args, path, out)
    return _suggest(args, config, path, day, out)


def _config_and_file(explicit: str | None) -> tuple[Config | None, Path]:
    """The config (None when there is none here) and its quarantine file."""
    from supervisor.config import CONFIG_FILENAME, QUARANTINE_FILENAME, ConfigError, load_config
    from supervisor.quarantine_file import quarantine_path

    try:
        config = load_config(explicit, plugin_suites_later=True)
    except ConfigError:
        if explicit or (Path.cwd() / CONFIG_FILENAME).exists():
            raise
        return None, Path.cwd() / QUARANTINE_FILENAME
    return config, quarantine_path(config)


def _who(folder: Path) -> str:
    """git's user.name where the file is, else the login name."""
    import getpass
    import os
    import subprocess

    try:
        name = subprocess.run(
            ["git", "config", "user.name"],
            cwd=folder if folder.is_dir() else None,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        name = ""
    if name:
        return name
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "unknown"


def _add(args: argparse.Namespace, path: Path, today: date, out: TextIO) -> int:
    from supervisor.config import ConfigError
    from supervisor.core.quarantine import Entry, parse_day
    from supervisor.quarantine_file import add_entries, read_quarantine

    nodeid, reason = args.nodeid.strip(), args.reason.strip()
    if not nodeid:
        raise ConfigError("quarantine add: NODEID is empty; give a pytest node id or a glob")
    if not reason:
        raise ConfigError('quarantine add: --reason is empty; say why, e.g. --reason "JIRA-12"')
    until = None
    if args.until is not None:
        try:
            until = parse_day(args.until)
        except ValueError as exc:
            raise ConfigError(f"quarantine add: --until: {exc}") from None
        if until < today:
            raise ConfigError(
                f"quarantine add: --until {until} is in the past; give today or a later day"
            )
    existing = read_quarantine(path).find(nodeid, args.suite)
    if existing:
        where = f" (line {existing[0].line})" if existing[0].line else ""
        state = "has an expired entry" if existing[0].expired(today) else "is already quarantined"
        raise ConfigError(
            f"{path}: {nodeid} {state}{where}; remove it first "
            f"(netra-supervisor quarantine remove {shlex.quote(nodeid)}) or edit the entry"
        )
    entry = Entry(
        nodeid=nodeid,
        reason=reason,
        added_by=_who(path.parent),
        added=today,
        until=until,
        suite=args.suite.strip(),
    )
    add_entries(path, [entry])
    until_text = f" until {until}" if until else ""
    out.write(f"quarantined {entry.label()}{until_text} in {path}\n")
    return ExitCode.OK


def _list(args: argparse.Namespace, path: Path, today: date, out: TextIO) -> int:
    from supervisor.history_cli import _Output
    from supervisor.quarantine_file import read_quarantine

    rows = [
        {
            "nodeid": e.nodeid,
            "suite": e.suite,
            "reason": e.reason,
            "added_by": e.added_by,
            "added": e.added.isoformat() if e.added else None,
            "until": e.until.isoformat() if e.until else None,
            "status": "EXPIRED" if e.expired(today) else "active",
            "line": e.line,
        }
        for e in read_quarantine(path).entries
    ]
    columns = [
        ("nodeid", "test", "text"),
        ("suite", "suite", "text"),
        ("status", "status", "text"),
        ("until", "until", "text"),
        ("reason", "reason", "msg"),
        ("added_by", "by", "text"),
        ("added", "added", "text"),
    ]
    return _Output(out, args.json).table(rows, columns, str(path), heading=True)


def _remove(args: argparse.Namespace, path: Path, out: TextIO) -> int:
    from supervisor.config import ConfigError, did_you_mean
    from supervisor.quarantine_file import read_quarantine, remove_entries

    gone = remove_entries(path, args.nodeid.strip(), args.suite.strip())
    if not gone:
        known = [e.nodeid for e in read_quarantine(path).entries]
        raise ConfigError(
            f"{path}: no entry has nodeid {args.nodeid!r}"
            + did_you_mean(args.nodeid, known, "entries")
        )
    for entry in gone:
        out.write(f"removed {entry.label()} from {path}\n")
    return ExitCode.OK


def _suggest(
    args: argparse.Namespace, config: Config | None, path: Path, today: date, out: TextIO
) -> int:
    from datetime import datetime, timedelta, timezone

    from supervisor.config import ConfigError, parse_duration
    from supervisor.core.flips import could_come_out, most_flipped, not_quarantined
    from supervisor.history_cli import _Output, connect_readonly
    from supervisor.quarantine_file import read_quarantine
    from supervisor.store.quarantine_queries import all_tests, latest_outcomes
    from supervisor.store.triage import flaky

    try:
        window = parse_duration(args.since)
    except ValueError as exc:
        raise ConfigError(f'quarantine suggest: --since: {exc}; write e.g. "7d"') from None
    if args.db:
        db = Path(args.db)
    else:
        db = config.resolve(config.run.db) if config else Path(".netra/history.db")
    if not db.exists():
        raise ConfigError(f"{db}: no history database here; pass --db PATH or run first")
    quarantine = read_quarantine(path).active(today)
    since = (datetime.now(timezone.utc) - timedelta(seconds=window)).isoformat(
        timespec="milliseconds"
    )
    conn = connect_readonly(db)
    try:
        flipping = not_quarantined(most_flipped(flaky(conn, since)), quarantine)
        covered = [t for t in all_tests(conn) if quarantine.match(*t) is not None]
        healthy = could_come_out(
            quarantine, latest_outcomes(conn, covered, args.passes), args.passes
        )
    finally:
        conn.close()
    flipping = flipping[: args.limit]
    add_rows = [
        {
            "suite": f.suite,
            "nodeid": f.nodeid,
            "revision": f.revision,
            "flips": f.flips,
            "runs": f.executions,
            "failed": f.failed,
        }
        for f in flipping
    ]
    out_rows = [
        {
            "nodeid": c.entry.nodeid,
            "suite": c.entry.suite,
            "tests": len(c.tests),
            "reason": c.entry.reason,
            "line": c.entry.line,
        }
        for c in healthy
    ]
    o = _Output(out, args.json)
    if args.json:
        return o.json(
            {"since": args.since, "passes": args.passes, "add": add_rows, "remove": out_rows}
        )
    o.table(
        add_rows,
        [
            ("nodeid", "test", "text"),
            ("suite", "suite", "text"),
            ("revision", "revision", "rev"),
            ("flips", "flips", "num"),
            ("runs", "runs", "num"),
            ("failed", "failed", "num"),
        ],
        f"to quarantine: flipped pass/fail under one revision, in the last {args.since}",
        heading=True,
    )
    for f in flipping[:3]:
        o.line(f"  netra-supervisor quarantine add {shlex.quote(f.nodeid)} --reason '...'")
    o.line("")
    o.table(
        out_rows,
        [
            ("nodeid", "entry", "text"),
            ("suite", "suite", "text"),
            ("tests", "tests", "num"),
            ("reason", "reason", "msg"),
        ],
        f"could come out: every test it covers passed its last {args.passes} results",
        heading=True,
    )
    for c in healthy[:3]:
        o.line(f"  netra-supervisor quarantine remove {shlex.quote(c.entry.nodeid)}")
    return ExitCode.OK
