"""``netra-supervisor report``: one run of the history as a file to hand over.

``report [RUN] (--html FILE | --markdown FILE) [--db PATH] [-c FILE]``: the run's
iterations, phases and gates, its failures grouped by signature with their messages
and evidence, its hung tests with their dumps, the flaky tests and the pass-count trend
toward the target. HTML is one self-contained file (inline CSS and SVG, no script);
Markdown is for pasting into an issue or pull request.

Read-only (``mode=ro``), like ``history``. Gathering (:mod:`.gather`) is apart from the
renderers (:mod:`.html`, :mod:`.markdown`, the chart in :mod:`.chart`). Stored text is
redacted already; the report masks again what the run's config names as secrets
(``secret_env``, ``url_env`` …, read from this environment) and any secret-looking
environment variable, so a history written before a secret was known cannot leak it.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.exitcodes import ExitCode

if TYPE_CHECKING:
    import sqlite3

    from supervisor.redact import Redactor


def add_report_parser(sub: Any) -> None:
    """The ``report`` subcommand (called by ``supervisor.cli``)."""
    from supervisor.argtypes import positive_int

    p = sub.add_parser(
        "report",
        help="write one run as a self-contained HTML or Markdown report",
        description="Write one run of the history as a report to hand over: iterations, "
        "phases and gates, failures by signature with their evidence, hung tests and "
        "their dumps, flaky tests, and the pass-count trend toward the target.",
    )
    p.add_argument("run", nargs="?", type=positive_int, metavar="RUN", help="default: latest")
    out = p.add_mutually_exclusive_group(required=True)
    out.add_argument("--html", metavar="FILE", help="write a self-contained HTML file")
    out.add_argument("--markdown", metavar="FILE", help="write GitHub-flavoured Markdown")
    p.add_argument("--db", metavar="PATH", help="history database (default: [run] db)")
    p.add_argument(
        "-c", "--config", metavar="FILE", help="config whose [run] db and secrets to use"
    )


def report_command(args: argparse.Namespace) -> int:
    """Write the report; a missing database, run or folder is a ConfigError (exit 2)."""
    from supervisor.config import ConfigError
    from supervisor.history_cli import connect_readonly, resolve_db
    from supervisor.store.queries import QueryError

    target = Path(args.html or args.markdown)
    if not target.parent.is_dir():  # said before the history is read, not after
        raise ConfigError(
            f"report: cannot write {target}: no folder {target.parent}; name a file in a "
            "folder that exists"
        )
    db = resolve_db(args.db, args.config)
    conn = connect_readonly(db)
    try:
        text = build(conn, args.run, "html" if args.html else "markdown", args.config)
    except QueryError as exc:
        raise ConfigError(f"report: {exc}") from None
    finally:
        conn.close()
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"report: cannot write {target}: {exc.strerror or exc}; name a file in a folder "
            "that exists"
        ) from None
    print(f"wrote {target}")
    return ExitCode.OK


def build(conn: sqlite3.Connection, run: int | None, fmt: str, config: str | None = None) -> str:
    """The report of ``run`` (None: the latest) as ``html`` or ``markdown`` text."""
    from supervisor.report.gather import gather

    redactor = report_redactor(conn, run, config)
    report = gather(conn, run, redactor)
    if fmt == "html":
        from supervisor.report.html import render_html

        return render_html(report)
    from supervisor.report.markdown import render_markdown

    return render_markdown(report)


def report_redactor(conn: sqlite3.Connection, run: int | None, config: str | None) -> Redactor:
    """A Redactor of every secret this environment holds under a secret-looking name or
    under a name the run's stored config, or the config file here, gives for one."""
    from supervisor.config import ConfigError, find_config
    from supervisor.redact import Redactor, secrets_from_environment, secrets_named_by_config
    from supervisor.report.gather import run_config
    from supervisor.store.queries import resolve_run

    env = dict(os.environ)
    redactor = Redactor(secrets_from_environment(env))
    try:
        run_id = resolve_run(conn, run)
    except ValueError:
        return redactor  # the gathering says what is missing
    (stored,) = conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()
    for secret in secrets_named_by_config(run_config(stored), env):
        redactor.add(secret)
    try:
        _, data = find_config(config)
    except ConfigError:
        if config:
            raise
        data = {}
    for secret in secrets_named_by_config(data, env):
        redactor.add(secret)
    return redactor
