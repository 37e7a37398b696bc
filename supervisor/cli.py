"""Argument parsing; each subcommand calls one entry point and maps errors to exit codes.

Exit codes (the contract, :class:`supervisor.exitcodes.ExitCode`): 0 all selected
tests pass, 1 failures left, 2 usage or configuration error (one clear line, nothing
run), 3 internal error, 130 interrupted.
Imports of heavy modules happen inside the subcommands so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from supervisor import __version__, startup_gc
from supervisor.argtypes import port_number, positive_int
from supervisor.exitcodes import ExitCode


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; keep its one-line message."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(ExitCode.USAGE, f"netra-supervisor: error: {message}\n")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``command`` (one of :data:`COMMANDS`), only that
    command's parser under the top level, since an argv that starts with a command
    name goes to that command's parser alone (a fifth of ``run``'s start-up CPU went
    into building and importing all of them: the history, quarantine and report
    parsers)."""
    parser = _Parser(
        prog="netra-supervisor",
        description="Supervise long test-deploy loops: deploy, run e2e tests in priority "
        "phases, catch hung tests, keep every result in SQLite.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, add in _COMMAND_PARSERS.items():
        if command is None or command == name:
            add(sub)
    return parser


def _add_run(sub: Any) -> None:
    run = sub.add_parser("run", help="run the test-deploy loop")
    _config_arg(run)
    run.add_argument("--headless", action="store_true", help="plain lines instead of the TUI")
    run.add_argument("--once", action="store_true", help="one iteration, then stop")
    run.add_argument("--db", metavar="PATH", help="history database (default: [run] db)")
    run.add_argument(
        "--phase",
        action="append",
        default=[],
        metavar="NAME",
        help="run only this phase (repeatable)",
    )
    run.add_argument("--max-iterations", type=positive_int, metavar="N")
    run.add_argument("--target", type=positive_int, metavar="N", help="the count to grow toward")
    run.add_argument(
        "--resume", type=positive_int, metavar="RUN_ID", help="continue an interrupted run"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="print every failing test")
    _no_mouse_arg(run)


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser("demo", help="run the bundled example")
    demo.add_argument("--headless", action="store_true", help="plain lines instead of the TUI")
    _no_mouse_arg(demo)


def _add_suites(sub: Any) -> None:
    suites = sub.add_parser("suites", help="list the registered suites")
    _config_arg(suites)
    suites.add_argument("--collect", action="store_true", help="count each suite's tests")


def _add_plugins(sub: Any) -> None:
    sub.add_parser("plugins", help="list loaded plugins").add_argument(
        "-c", "--config", metavar="FILE", help="config whose [plugins] to load too"
    )


def _add_history(sub: Any) -> None:
    from supervisor.history_cli import add_history_parser

    add_history_parser(sub)


def _add_quarantine(sub: Any) -> None:
    from supervisor.quarantine_cli import add_quarantine_parser

    add_quarantine_parser(sub)


def _add_report(sub: Any) -> None:
    from supervisor.report import add_report_parser

    add_report_parser(sub)


def _add_serve(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="watch a run in a browser tab (textual-serve)",
        description="Serve `watch` (or, with --history, the history screen) to a browser. "
        "Loopback only unless --allow-remote; then a token printed at start is required.",
    )
    serve.add_argument("run", nargs="?", type=positive_int, metavar="RUN", help="default: latest")
    serve.add_argument("--db", metavar="PATH", help="history database (default: [run] db)")
    _config_arg(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=port_number, default=8000, help="port (8000)")
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host; every request then needs the printed token",
    )
    serve.add_argument(
        "--history", action="store_true", help="serve the history screen instead of `watch`"
    )


def _add_watch(sub: Any) -> None:
    watch = sub.add_parser("watch", help="the dashboard of a run, read-only from its history")
    watch.add_argument("run", nargs="?", type=positive_int, metavar="RUN",
                       help="run id (default: the latest)")  # fmt: skip
    watch.add_argument("--db", metavar="PATH", help="history database (default: [run] db)")
    _no_mouse_arg(watch)


def _add_init(sub: Any) -> None:
    init = sub.add_parser("init", help="write a commented starter netra-supervisor.toml")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")


#: each command's parser, in the order ``--help`` lists them
_COMMAND_PARSERS: dict[str, Callable[[Any], None]] = {
    "run": _add_run,
    "demo": _add_demo,
    "suites": _add_suites,
    "plugins": _add_plugins,
    "history": _add_history,
    "quarantine": _add_quarantine,
    "report": _add_report,
    "serve": _add_serve,
    "watch": _add_watch,
    "init": _add_init,
}
COMMANDS = tuple(_COMMAND_PARSERS)


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="config file (default: ./netra-supervisor.toml or [tool.netra-supervisor] in "
        "pyproject.toml)",
    )


def _no_mouse_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-mouse", action="store_true", help="the TUI leaves the mouse to the terminal (tmux)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command = words[0] if words and words[0] in _COMMAND_PARSERS else None
    args = build_parser(command).parse_args(argv)
    finish_code: Callable[[], int] | None = None
    if argv is None and args.command == "run":  # the command's own process: startup_*
        from supervisor import startup_code

        startup_gc.pause()
        startup_code.install()
        finish_code = startup_code.finish
    try:
        return _main(args)
    finally:
        startup_gc.resume(freeze=False)
        if finish_code is not None:
            finish_code()
        if "supervisor.procs" in sys.modules:  # this command started processes
            from supervisor import procs

            procs.end_run(descendants=True)


def _main(args: argparse.Namespace) -> int:
    try:
        return _dispatch(args)
    except _user_errors() as exc:
        print(f"netra-supervisor: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except KeyboardInterrupt:
        print("netra-supervisor: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as exc:  # the last line of defence: say where the details are
        from supervisor.crash import report_crash

        path = report_crash(exc)
        print(
            f"netra-supervisor: internal error: {type(exc).__name__}: {exc} "
            f"(traceback in {path}; please report it)",
            file=sys.stderr,
        )
        return ExitCode.INTERNAL


def _run(args: argparse.Namespace) -> int:
    from supervisor.session import RunOptions, run_supervisor

    options = RunOptions(
        config=args.config,
        headless=args.headless,
        once=args.once,
        db=args.db,
        phases=tuple(args.phase),
        max_iterations=args.max_iterations,
        target=args.target,
        resume=args.resume,
        verbose=args.verbose,
        no_mouse=args.no_mouse,
    )
    return run_supervisor(options)


def _history_db(args: argparse.Namespace) -> str:
    """The history database of ``--db``/``-c``, checked readable: an absolute path."""
    from supervisor.history_cli import connect_readonly, resolve_db

    path = resolve_db(args.db, args.config)
    connect_readonly(path).close()
    return str(path.resolve())


def _browse(args: argparse.Namespace) -> int:
    from supervisor.tui.history import browse

    return browse(_history_db(args), run=args.run, mouse=not args.no_mouse)


def _serve(args: argparse.Namespace) -> int:
    db = _history_db(args)
    from supervisor.tui.serve import browse_argv, serve, watch_argv

    command = (browse_argv if args.history else watch_argv)(args.run, db)
    return serve(command, host=args.host, port=args.port, allow_remote=args.allow_remote)


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that are the user's to fix: one line, exit 2.

    Imported only when something was raised (an ``except`` clause is evaluated then):
    ``run`` starts its first pytest before it imports the plugin host and the store.
    """
    from supervisor.config import ConfigError
    from supervisor.plugins import PluginError
    from supervisor.store.writer import StoreError

    errors: tuple[type[Exception], ...] = (ConfigError, PluginError, StoreError)
    if "supervisor.tui.serve" in sys.modules:
        from supervisor.tui.serve import ServeError

        errors += (ServeError,)
    return errors


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        from supervisor import prestart

        prestart.start_for_run(args.config, args.phase, args.resume, args.db)
        try:
            return _run(args)
        finally:
            prestart.finish()
    if args.command == "demo":
        from supervisor.demo import run_demo

        return run_demo(headless=args.headless, no_mouse=args.no_mouse)
    if args.command == "suites":
        from supervisor.session import list_suites

        return list_suites(args.config, collect=args.collect)
    if args.command == "plugins":
        from supervisor.session import list_plugins

        return list_plugins(args.config)
    if args.command == "history" and args.what == "browse":
        return _browse(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "history":
        from supervisor.history_cli import history_command

        return history_command(args)
    if args.command == "quarantine":
        from supervisor.quarantine_cli import quarantine_command

        return quarantine_command(args)
    if args.command == "report":
        from supervisor.report import report_command

        return report_command(args)
    if args.command == "watch":
        from supervisor.history_cli import resolve_db
        from supervisor.tui.watch import watch_command

        # no database there: ConfigError, one line and exit 2
        return watch_command(resolve_db(args.db, None), args.run, mouse=not args.no_mouse)
    if args.command == "init":
        from pathlib import Path

        from supervisor.init_template import write_starter

        target = Path.cwd() / "netra-supervisor.toml"
        try:
            write_starter(target, force=args.force)
        except FileExistsError:
            print(f"netra-supervisor: {target} exists; use --force to overwrite", file=sys.stderr)
            return ExitCode.USAGE
        print(f"wrote {target}; edit [[suite]] args, then run `netra-supervisor run`")
        return ExitCode.OK
    raise AssertionError(args.command)  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
