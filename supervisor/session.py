"""Assembles one ``run``: config, plugins, store, bus, reporter, signals, the loop.

This is the only place that knows every part; each part knows only events. The loop
runs in the calling thread; signal handlers only set flags, so a Ctrl-C in the middle
of a phase stops the children, keeps every result reported so far, and exits 130.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor import __version__, startup_gc
from supervisor.config import Config, ConfigError, add_suites, load_config, select_phases
from supervisor.core.between import Between, git_head
from supervisor.core.bus import EventBus
from supervisor.core.changes import labelling
from supervisor.core.control import RunControl
from supervisor.core.eta import estimating
from supervisor.core.events import (
    LogLine,
    PluginFailed,
    RunFinished,
    RunStarted,
    utc_now,
)
from supervisor.core.loop import Loop, LoopOutcome, LoopSettings
from supervisor.core.model import RunModel
from supervisor.exitcodes import ExitCode
from supervisor.headless import HeadlessReporter
from supervisor.hook_delivery import HookBridge
from supervisor.plugins import PluginError, PluginHost, plugins_table
from supervisor.quarantine_run import run_quarantine
from supervisor.redact import Redactor, redact_config, redacting, secrets_from_environment
from supervisor.run_history import (
    change_labeller,
    history_estimator,
    latest_results,
    recent_outcomes,
    resume_point,
)
from supervisor.sinks import open_sinks
from supervisor.tables import Column, TablePrinter


@dataclass(frozen=True)
class RunOptions:
    config: str | None = None
    headless: bool = True
    once: bool = False
    db: str | None = None
    phases: tuple[str, ...] = ()
    max_iterations: int | None = None
    target: int | None = None
    resume: int | None = None
    verbose: bool = False
    no_mouse: bool = False  # the TUI leaves the mouse alone (tmux copy-mode works)


def load_host(config: Config | None, on_error: Callable[[PluginFailed], None]) -> PluginHost:
    host = PluginHost(config, on_error=on_error)
    host.load()
    return host


def prepare(options: RunOptions) -> tuple[Config, PluginHost, list[PluginFailed]]:
    """Config and plugins, validated; raises ConfigError/PluginError before anything runs."""
    config = load_config(options.config, plugin_suites_later=True)
    early_errors: list[PluginFailed] = []
    host = load_host(config, early_errors.append)
    # phases may name suites plugins register in code: checked once those are in
    config = add_suites(config, tuple(host.extra_suites(config)))
    # each kind and the backend parse and check their own keys (plugins/kind_config.py)
    config = host.validate_deploy(config)
    config = host.validate_suites(config)
    select_phases(config, options.phases)  # --phase typos are usage errors
    if not config.suites:
        raise ConfigError(f"{config.path}: suite: no [[suite]] is configured; add one")
    return config, host, early_errors


def wants_tui(options: RunOptions, out=None) -> bool:
    """The TUI opens in a terminal unless ``--headless``; pipes and CI stay headless."""
    if options.headless or out not in (None, sys.stdout):
        return False
    try:
        return sys.stdout.isatty() and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def run_supervisor(options: RunOptions, out=None, ui: Callable[..., tuple] | None = None) -> int:
    """The ``run`` subcommand: returns the exit code of the contract.

    ``ui`` runs a live view while the loop runs in its own thread (default: the TUI,
    when :func:`wants_tui`); it returns ``(how, detail)`` with ``how`` one of quit,
    finished, crashed. A crashed view does not end the run: it goes on headless.
    """
    if ui is None and wants_tui(options, out):
        from supervisor.tui.app import run_tui

        ui = run_tui
    out = out or sys.stdout
    config, host, early_errors = prepare(options)
    from supervisor import prestart, procs

    procs.become_subreaper()  # what escapes a test's process group stays ours to end
    prestart.keep_if_offered(host.suite_kinds())
    if host.implements("netra_run_started") or host.implements("netra_iteration_started"):
        prestart.discard()  # such a hook may prepare what the first suite collects
    settings = LoopSettings(
        until="once" if options.once else config.run.until,
        target=options.target or config.run.target,
        max_iterations=1 if options.once else (options.max_iterations or config.run.max_iterations),
        max_duration=config.run.max_duration,
        phases=select_phases(config, options.phases),
    )
    if settings.until == "target" and not settings.target:
        raise ConfigError(f'{config.path}: run.target: until = "target" needs a target')
    from supervisor.auth import load_minter
    from supervisor.store import alive
    from supervisor.store.writer import HistoryStore

    minter = load_minter(config, os.environ)  # a bad [auth] is exit 2, before anything runs
    sinks = open_sinks(host, config, early_errors.append)  # bad [[sink]] → exit 2 here
    redactor = Redactor(secrets_from_environment(os.environ) + sinks.secrets)
    if minter is not None:
        redactor.add(minter.secret)
    db_path = Path(options.db) if options.db else config.resolve(config.run.db)
    # a broken quarantine file is exit 2 here; the auto-quarantine flushes the history
    quarantine = run_quarantine(config, db_path, flush=lambda: store.flush())
    late_bus: list[EventBus] = []  # the store reports write problems into the bus

    def store_problem(message: str) -> None:
        if late_bus:
            late_bus[0].emit(LogLine("error", "history", message))
        else:
            print(f"netra-supervisor: {message}", file=sys.stderr)

    if options.resume:
        store = HistoryStore.resume(
            db_path, options.resume, redact=redactor, on_error=store_problem
        )
    else:
        store = HistoryStore.open(
            db_path,
            config_json=json.dumps(redact_config(dict(config.raw)), default=str),
            host=socket.gethostname(),
            git_sha=git_head(config.base_dir),
            version=__version__,
            redact=redactor,
            on_error=store_problem,
        )
    run_id = store.run_id
    from supervisor.store.rows import RunSettings

    # a watcher's header shows the stop condition (and the count grows toward target)
    store.put(
        RunSettings(settings.target, settings.until, settings.max_iterations, settings.max_duration)
    )
    log_dir = db_path.parent / "logs" / f"run-{run_id}"
    log_dir.mkdir(parents=True, exist_ok=True)
    prestart.remember(log_dir.parent, host.suite_kinds())

    estimator = history_estimator(db_path, config, settings)
    model = RunModel(
        until=settings.until,
        max_iterations=settings.max_iterations,
        max_duration=settings.max_duration,
        estimator=estimator,
    )
    reporter = HeadlessReporter(
        out=out, verbose=options.verbose, redact=redactor, estimator=estimator
    )
    stop = threading.Event()
    bus = EventBus()
    bridge = HookBridge(host, config, stop, report=bus.emit)
    bus.subscribe(
        estimator, estimator.many
    )  # first: the model and the reporter read what it folded
    bus.subscribe(model.apply, model.apply_many)
    bus.subscribe(store.put, store.put_many)
    outcomes = recent_outcomes(db_path)  # each test's latest non-pass, across runs
    last = latest_results(db_path, outcomes)  # failed-first, then this run's results
    labeller = change_labeller(outcomes)  # new / still / fixed against the same rows
    bus.subscribe(last, last.many)
    if ui is None:
        # with a view, it joins when the view ends (or crashes)
        bus.subscribe(reporter, reporter.many)
    bus.subscribe(bridge, bridge.many)
    bus.subscribe(sinks)
    sinks.start(bus.emit, redactor)
    host.on_error = bus.emit
    late_bus.append(bus)
    for err in early_errors:
        bus.emit(err)

    def plugin_failed(what: str, name: str, hook: str, exc: BaseException) -> None:
        plugin = host.provider(what, name)
        if plugin is None or host.quarantine(plugin, hook, exc) is None:
            bus.emit(PluginFailed(plugin=f"{what} {name}", hook=hook, error=str(exc)))

    between = Between(
        config.run.between,
        config.run.between_interval,
        [config.resolve(w) for w in config.run.watch],
        stop,
        announce=lambda text: bus.emit(LogLine("info", "loop", text)),
        ignore=_own_output(config, db_path),
    )
    control = RunControl(stop, between.next_now)
    restore = _install_signals(stop, between, bus, read_stdin=ui is None)
    backend = None
    if config.deploy.backend != "none":
        backend = host.deploy_backends()[config.deploy.backend]
    from supervisor.evidence_run import open_evidence

    evidence = open_evidence(  # what the backend said while a non-pass ran
        config,
        backend,
        host,
        bus.emit,  # the history writer and the sinks (its lines are redacted already)
        redactor,
        report=bus.emit,
        on_fatal=bridge.strict_failure,
    )
    if evidence is not None:
        bus.subscribe(evidence)
    resume = resume_point(db_path, run_id) if options.resume else None
    if resume is not None and resume.recorded:
        reporter.line(
            f"resuming iteration {resume.iteration} of run {run_id}: {resume.count} results"
            " already recorded are kept and not run again"
        )
    reporter.line(f"history: {db_path} (run {run_id}) · logs: {log_dir}")
    bus.emit(
        RunStarted(
            run_id, utc_now(), settings.target, str(config.path), resumed=bool(options.resume)
        )
    )
    exit_code, status, iterations = ExitCode.INTERNAL, "error", 0
    # What exists now (modules, plugins, config) lives as long as the process: keep the
    # garbage collector from walking it again and again during the run, and once more
    # when the interpreter exits (that last walk alone took ~12 ms, after the suite).
    gc.freeze()
    alive_fd = alive.hold(db_path, run_id)  # a watcher tells a killed run by it
    try:
        loop = Loop(
            config,
            settings,
            host.suite_kinds(),
            backend,
            # runner text is masked before anyone sees it; each iteration gets its
            # estimate, each result its change (new / still / fixed)
            labelling(estimating(redacting(bus.emit, redactor), estimator), labeller),
            run_id,
            stop,
            between,
            log_dir=str(log_dir),
            resume=resume,
            plugin_failed=plugin_failed,
            iteration_env=None if minter is None else (lambda _i: minter.iteration_env(redactor)),
            redactor=redactor,
            control=control,
            settle=bridge.settle,  # hooks of an iteration's edges finish before it goes on
            last=last,
            quarantine=quarantine,
            every_start=sinks.wants("test_started"),  # no one else looks at a brief start
        )
        startup_gc.resume()  # start-up is over: its objects out of the collector's way
        if ui is None:
            outcome = loop.run()
        else:
            view = _ViewRun(loop, model, control, bus, reporter, out)
            outcome = view.run(ui, db_path=db_path, mouse=not options.no_mouse, redact=redactor)
        exit_code, status, iterations = outcome.exit_code, outcome.status, outcome.iterations
        bus.emit(LogLine("info", "loop", f"stopped: {outcome.stop_reason}"))
    except KeyboardInterrupt:
        exit_code, status = ExitCode.INTERRUPTED, "interrupted"
    except PluginError:
        exit_code, status = ExitCode.USAGE, "error"
        raise
    finally:
        if bridge.fatal is not None:
            exit_code, status = ExitCode.USAGE, "error"
        if evidence is not None:
            try:
                evidence.close()  # the last failures' evidence, while sinks still listen
            except KeyboardInterrupt:
                pass
        if backend is not None:
            _quietly(backend.stop)
        procs.end_run()  # anything of this run's still alive (tests' escaped children)
        # events carry a plain int: sinks and plugins see the number, not the enum
        bus.emit(RunFinished(run_id, utc_now(), status, int(exit_code), iterations))
        try:
            bridge.close()  # netra_run_finished delivered (bounded by hook_timeout)
        except KeyboardInterrupt:
            pass  # a further Ctrl-C: stop waiting for a plugin
        try:
            sinks.close()  # bounded wait; reports drops and undelivered events
        except KeyboardInterrupt:
            pass  # a further Ctrl-C: the results still go to the database below
        restore()
        between.close()  # wait-for-change: the watcher's threads end here
        store.close()
        alive.release(alive_fd)  # the run's end is written
        if store.last_error:
            print(
                f"netra-supervisor: history database problem: {store.last_error}", file=sys.stderr
            )
        if ui is not None:
            reporter.line(f"results recorded: {model.results_seen} (history: {db_path})")
    if bridge.fatal is not None:
        raise bridge.fatal
    return exit_code


class _ViewRun:
    """The loop in its own thread (never a Textual worker), a view in this one.

    When the view ends, the headless reporter takes over the remaining lines: after a
    quit (the run is stopped, results flushed), after the run finished, or after a
    crash of the view, in which case the loop simply goes on headless.
    """

    def __init__(self, loop, model: RunModel, control: RunControl, bus, reporter, out) -> None:
        self.loop, self.model, self.control = loop, model, control
        self.bus, self.reporter, self.out = bus, reporter, out
        self.done = threading.Event()
        self.outcome: LoopOutcome | None = None
        self.error: BaseException | None = None

    def _target(self) -> None:
        try:
            self.outcome = outcome = self.loop.run()
            self.model.finish(outcome.stop_reason, outcome.exit_code)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            self.error = exc
        finally:
            self.done.set()

    def run(self, ui: Callable[..., tuple], **kwargs: object) -> LoopOutcome:
        thread = threading.Thread(target=self._target, name="netra-loop", daemon=True)
        thread.start()
        try:
            how, detail = ui(model=self.model, control=self.control, loop_done=self.done, **kwargs)
        except Exception as exc:  # noqa: BLE001 - a view failing must not end the run
            how, detail = "crashed", f"{type(exc).__name__}: {exc}"
        with self.model.read():
            self.reporter.target = self.model.target
            self.reporter.iterations = list(self.model.iterations)
        self.bus.subscribe(self.reporter, self.reporter.many)
        if how == "crashed":
            self.reporter.line(f"netra-supervisor: the TUI crashed ({detail}); going on headless")
        elif how == "quit" and not self.done.is_set():
            self.reporter.line("netra-supervisor: quitting: stopping the tests in flight")
            self.control.request_stop()
        try:
            while thread.is_alive():
                thread.join(0.2)  # short joins: signal handlers run in this thread
        except KeyboardInterrupt:
            self.control.request_stop()
            thread.join(30)
            raise
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome


def _own_output(config: Config, db_path: Path) -> list[Path]:
    """What this run writes (history database, logs, full texts, log sinks' files):
    never a change for ``wait-for-change``, wherever it is configured."""
    from supervisor.store.bounds import FULL_DIR

    own = [db_path, db_path.parent / "logs", db_path.parent / FULL_DIR]
    for sink in config.sinks:
        path = sink.options.get("path")
        if isinstance(path, str):
            own.append(config.resolve(path))
    return own


def _install_signals(
    stop: threading.Event, between: Between, bus: EventBus, read_stdin: bool = True
) -> Callable[[], None]:
    """SIGINT/SIGTERM stop the run (a second Ctrl-C stops harder); SIGUSR1 = next now."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1)
    }

    def on_stop(signum: int, frame: object) -> None:
        if stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGUSR1, lambda s, f: between.next_now.set())
    if (
        read_stdin
        and between.mode in ("manual", "interval", "wait-for-change")
        and sys.stdin.isatty()
    ):
        threading.Thread(target=_enter_means_next, args=(between,), daemon=True).start()

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return restore


def _enter_means_next(between: Between) -> None:
    for _line in sys.stdin:
        between.next_now.set()


def _quietly(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - shutting down; report and go on
        print(f"netra-supervisor: while stopping: {exc}", file=sys.stderr)


# ---------------------------------------------------------------------- other commands


def list_suites(config_path: str | None, collect: bool = False, out=None) -> int:
    """The ``suites`` subcommand: suites with kind, tags, phases (and counts)."""
    out = out or sys.stdout
    config, host, errors = prepare(RunOptions(config=config_path))
    for err in errors:
        print(f"plugin error: {err.plugin} in {err.hook}: {err.error}", file=sys.stderr)
    kinds = host.suite_kinds()
    env = {**os.environ, **config.run.env}
    redactor = Redactor(secrets_from_environment(os.environ))
    if collect:  # test modules may read the [auth] token while being imported
        from supervisor.auth import load_minter

        minter = load_minter(config, os.environ)
        if minter is not None:
            redactor.add(minter.secret)
            env.update(minter.iteration_env(redactor))
    rows: list[list[str]] = []
    failed = False
    remote = any(suite.hosts for suite in config.suites)
    for suite in config.suites:
        phases = [p.name for p in config.phases if suite in config.select_suites(p.suites)]
        row = [suite.name, suite.kind, ",".join(suite.tags) or "-", ", ".join(phases) or "-"]
        if remote:  # the xdist --tx specs of remote workers (a spec names no secret)
            row.append(redactor(" ".join(suite.hosts)) or "-")
        if collect:
            try:
                row.append(str(len(kinds[suite.kind].collect(suite, config, {**env, **suite.env}))))
            except Exception as exc:  # noqa: BLE001 - show it per suite, keep listing
                row.append(f"error: {redactor(str(exc))}")
                failed = True
        rows.append(row)
    columns = [Column("suite"), Column("kind"), Column("tags"), Column("phases")]
    if remote:
        columns.append(Column("hosts"))
    TablePrinter(out).table(columns + [Column("tests")] if collect else columns, rows)
    return ExitCode.FAILED if failed else ExitCode.OK


def list_plugins(config_path: str | None, out=None) -> int:
    """The ``plugins`` subcommand."""
    out = out or sys.stdout
    config: Config | None = None
    if config_path or Path("netra-supervisor.toml").exists():
        config = load_config(config_path)
    host = load_host(config, on_error=lambda e: None)
    rows = host.describe()
    if rows:
        TablePrinter(out).table(*plugins_table(rows))
    else:
        out.write("no plugins found\n")
    return ExitCode.OK
