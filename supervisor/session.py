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
from typing import TYPE_CHECKING

from supervisor import __version__
from supervisor.config import Config, ConfigError, add_suites, load_config, select_phases
from supervisor.core.between import Between, git_head
from supervisor.core.bus import EventBus, ResultBatcher
from supervisor.core.control import RunControl
from supervisor.core.eta import Estimator, TestTimes, estimating
from supervisor.core.events import (
    DeployFinished,
    Event,
    IterationFinished,
    IterationStarted,
    LogLine,
    PhaseFinished,
    PluginFailed,
    RunFinished,
    RunStarted,
    TestHung,
    utc_now,
)
from supervisor.core.last_results import LastResults
from supervisor.core.loop import Loop, LoopOutcome, LoopSettings, ResumePoint
from supervisor.core.model import RunModel
from supervisor.exitcodes import ExitCode
from supervisor.headless import HeadlessReporter
from supervisor.hook_delivery import HookDelivery
from supervisor.plugins import PluginError, PluginHost, format_plugins_table
from supervisor.redact import Redactor, redact_config, redacting, secrets_from_environment
from supervisor.sinks import open_sinks

if TYPE_CHECKING:
    import sqlite3


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


class HookBridge:
    """Turns events into lifecycle hook calls, delivered off the emitting thread.

    Called by the bus under its lock, often from a runner's thread where deadlines
    are checked: it only queues the calls (:class:`HookDelivery`, one thread, in event
    order, ``[plugins] hook_timeout`` per implementation). Results go to plugins in
    batches. The loop waits for :meth:`settle` at iteration boundaries.
    """

    def __init__(
        self,
        host: PluginHost,
        config: Config,
        stop: threading.Event,
        report: Callable[[Event], None] = lambda event: None,
    ) -> None:
        self.host = host
        self.config = config
        self.stop = stop
        #: a strict-mode plugin error: the run stops, and the CLI exits 2 with it
        self.fatal: PluginError | None = None
        self.delivery = HookDelivery(
            config.plugins.hook_timeout,
            quarantine=host.quarantine,
            report=report,
            on_fatal=self._fatal,
        )
        self.batcher = ResultBatcher(
            lambda batch: self._call("netra_results", len(batch), batch=batch)
        )
        self.settle = self.delivery.settle
        self.close = self.delivery.close

    def _fatal(self, exc: PluginError) -> None:
        # NETRA_STRICT_PLUGINS=1: remember the first error, stop the run cleanly; the
        # session re-raises it at the end (exit 2).
        if self.fatal is None:
            self.fatal = exc
        self.stop.set()

    def _call(self, hook: str, results: int = 0, **kwargs: object) -> None:
        self.delivery.submit(self.host.lifecycle_calls(hook, kwargs), results)

    def __call__(self, event: Event) -> None:
        self.batcher(event)
        call = self._call
        if isinstance(event, RunStarted):
            call("netra_run_started", run_id=event.run_id, config=self.config)
        elif isinstance(event, IterationStarted):
            call("netra_iteration_started", run_id=event.run_id, iteration=event.iteration)
        elif isinstance(event, DeployFinished):
            call(
                "netra_deploy_finished",
                run_id=event.run_id,
                iteration=event.iteration,
                backend=event.backend,
                revision=event.revision,
                ok=event.status != "failed",
                message=event.message,
            )
        elif isinstance(event, PhaseFinished):
            self.batcher.flush()
            call(
                "netra_phase_finished",
                run_id=event.run_id,
                iteration=event.iteration,
                phase=event.name,
                status=event.status,
                counts=dict(event.counts),
            )
        elif isinstance(event, TestHung):
            call("netra_test_hung", event=event)
        elif isinstance(event, IterationFinished):
            self.batcher.flush()
            call(
                "netra_iteration_finished",
                run_id=event.run_id,
                iteration=event.iteration,
                status=event.status,
                counts=dict(event.counts),
            )
        elif isinstance(event, RunFinished):
            self.batcher.flush()
            call(
                "netra_run_finished",
                run_id=event.run_id,
                status=event.status,
                exit_code=event.exit_code,
            )


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
    from supervisor.store.writer import HistoryStore

    minter = load_minter(config, os.environ)  # a bad [auth] is exit 2, before anything runs
    sinks = open_sinks(host, config, early_errors.append)  # bad [[sink]] → exit 2 here
    redactor = Redactor(secrets_from_environment(os.environ) + sinks.secrets)
    if minter is not None:
        redactor.add(minter.secret)
    db_path = Path(options.db) if options.db else config.resolve(config.run.db)
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
    bus.subscribe(estimator)  # first: the model and the reporter read what it folded
    bus.subscribe(model.apply)
    bus.subscribe(store.put)
    last = latest_results(db_path)  # failed-first: across runs, then this run's results
    bus.subscribe(last)
    if ui is None:
        bus.subscribe(reporter)  # with a view, it joins when the view ends (or crashes)
    bus.subscribe(bridge)
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
    )
    control = RunControl(stop, between.next_now)
    restore = _install_signals(stop, between, bus, read_stdin=ui is None)
    backend = None
    if config.deploy.backend != "none":
        backend = host.deploy_backends()[config.deploy.backend]
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
    try:
        loop = Loop(
            config,
            settings,
            host.suite_kinds(),
            backend,
            # runner text is masked before anyone sees it; each iteration gets its estimate
            estimating(redacting(bus.emit, redactor), estimator),
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
        )
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
        store.close()
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
            self.outcome = self.loop.run()
            self.model.finish(self.outcome.stop_reason, self.outcome.exit_code)
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
        self.bus.subscribe(self.reporter)
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


def latest_results(db_path: Path) -> LastResults:
    """Each recent test's latest outcome, read from the history (read-only). A history
    that cannot be read only means no failed-first order until results come in."""
    import sqlite3

    from supervisor.store import queries

    last = LastResults()
    try:
        conn = queries.connect_readonly(db_path)
        try:
            last.seed(queries.recent_outcomes(conn))
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        pass
    return last


def history_estimator(db_path: Path, config: Config, settings: LoopSettings) -> Estimator:
    """Expected counts and ETAs, from the history (read-only, once: a few index seeks
    per test). A history that cannot be read only means no ETA until this run's own
    results tell."""
    import sqlite3

    from supervisor.store import queries

    plan = [
        (p.name, tuple(s.name for s in config.select_suites(p.suites))) for p in settings.phases
    ]
    suites = sorted({name for _, names in plan for name in names})
    times, deploy = TestTimes(), None
    try:
        conn = queries.connect_readonly(db_path)
        try:
            times.seed(queries.recent_test_times(conn, suites))
            deploy = queries.deploy_time(conn)
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        pass
    workers = {s.name: s.workers for s in config.suites}
    return Estimator(times, plan, workers, deploy)


def resume_point(db_path: Path, run_id: int) -> ResumePoint:
    """Where ``--resume`` continues: the last iteration if it never finished, with the
    outcomes already recorded in it, else the iteration after it; and the outcomes of
    the last iteration before that which ran tests (a verify pass re-runs what did not
    pass there). Read-only queries."""
    import sqlite3

    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT id, seq, status, finished_at FROM iterations WHERE run_id = ?"
            " ORDER BY seq DESC LIMIT 1",
            (run_id,),
        ).fetchone()
        if row is None:
            return ResumePoint(1, {})
        iteration_id, seq, status, finished_at = row
        if finished_at is None or status in ("running", "interrupted"):
            recorded = _outcomes_of(conn, iteration_id)
        else:
            seq, recorded = seq + 1, {}
        before = conn.execute(
            "SELECT i.id, i.seq FROM iterations i WHERE i.run_id = ? AND i.seq < ?"
            " AND EXISTS (SELECT 1 FROM results r WHERE r.iteration_id = i.id)"
            " ORDER BY i.seq DESC LIMIT 1",
            (run_id, seq),
        ).fetchone()
        previous = _outcomes_of(conn, before[0]) if before else {}
    finally:
        conn.close()
    return ResumePoint(seq, recorded, previous, before[1] if before else 0)


def _outcomes_of(
    conn: sqlite3.Connection, iteration_id: int
) -> dict[tuple[int, str], dict[str, str]]:
    """(phase seq, suite) -> nodeid -> latest outcome of one iteration; phase 0 is its
    verify pass (and results outside any phase)."""
    outcomes: dict[tuple[int, str], dict[str, str]] = {}
    for phase_seq, suite, nodeid, outcome in conn.execute(
        "SELECT coalesce(p.seq, 0), t.suite, t.nodeid, r.outcome FROM results r"
        " JOIN tests t ON t.id = r.test_id LEFT JOIN phases p ON p.id = r.phase_id"
        " WHERE r.iteration_id = ? ORDER BY r.id",
        (iteration_id,),
    ):
        outcomes.setdefault((phase_seq, suite), {})[nodeid] = outcome
    return outcomes


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
    rows = [("suite", "kind", "tags", "phases", "tests" if collect else "")]
    failed = False
    for suite in config.suites:
        phases = [p.name for p in config.phases if suite in config.select_suites(p.suites)]
        count = ""
        if collect:
            try:
                count = str(len(kinds[suite.kind].collect(suite, config, {**env, **suite.env})))
            except Exception as exc:  # noqa: BLE001 - show it per suite, keep listing
                count, failed = f"error: {redactor(str(exc))}", True
        rows.append(
            (suite.name, suite.kind, ",".join(suite.tags) or "-", ", ".join(phases) or "-", count)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        line = "  ".join(c.ljust(w) for c, w in zip(row[:4], widths)) + "  " + row[4]
        out.write(line.rstrip() + "\n")
    return ExitCode.FAILED if failed else ExitCode.OK


def list_plugins(config_path: str | None, out=None) -> int:
    """The ``plugins`` subcommand."""
    out = out or sys.stdout
    config: Config | None = None
    if config_path or Path("netra-supervisor.toml").exists():
        config = load_config(config_path)
    host = load_host(config, on_error=lambda e: None)
    out.write(format_plugins_table(host.describe()) + "\n")
    return ExitCode.OK
