"""The plugin API: every ``netra_*`` hook a plugin can implement.

A plugin is a module (or any object) with functions named after these hooks, marked
with :data:`hookimpl` (unmarked functions whose name starts with ``netra_`` are taken
too, the way pytest takes ``pytest_*`` functions)::

    from supervisor.hookspecs import hookimpl

    @hookimpl
    def netra_results(batch):
        for result in batch:
            ...

An implementation may accept fewer arguments than the spec lists (pluggy passes only
the ones it names), never other ones. Hook names, argument names and their meaning
are a public contract: add to them, never change them.

There are two groups:

* **Registration** hooks return lists of objects (suite kinds, suites defined in code,
  deploy backends, log sink kinds). The host calls every plugin's implementation, in
  discovery order (built-ins, installed entry points, ``[plugins] load``, ``[plugins]
  dirs``), and tags each object with the plugin that returned it; when two plugins
  register the same name, the later one wins.
* **Lifecycle** hooks return nothing (a return value is ignored). They are called
  with batches — once per run, iteration, deploy, phase, hang, or per batch of
  results — never once per test result.

How lifecycle hooks are delivered (:mod:`supervisor.hook_delivery`):

* **Thread.** Off the run's threads: the runners only queue the call, and one
  delivery thread (``netra hooks``) makes it, so a slow plugin never delays a test's
  deadline. Do not rely on the thread's identity (after a timeout it is a new one).
* **Order.** In the order of the events, one call after the other (FIFO), each
  plugin's implementation separately, in discovery order (``tryfirst``/``trylast``
  honoured).
* **Timeout.** An implementation running longer than ``[plugins] hook_timeout``
  (default 30 s) is reported (the log, ``plugin_errors``) and its plugin quarantined
  for the rest of the run; the stuck call is abandoned (whatever it does when it
  returns is ignored) and the others' hooks go on. Hand long work (uploads,
  notifications) to a thread of your own.
* **Barriers.** The loop waits for the hooks delivered so far to finish (bounded by
  the timeout) after :func:`netra_iteration_started` (before the deploy: what it
  prepares, the tests see), after :func:`netra_iteration_finished` (before the wait
  and the next deploy: a fix it commits is deployed), and at the end of the run
  (:func:`netra_run_finished` returns before the process ends; ``netra_run_started``
  is before the first barrier). The other hooks are not waited for:
  :func:`netra_results`, :func:`netra_test_hung`, :func:`netra_phase_finished` and
  :func:`netra_deploy_finished` may still be running while the tests go on.
* **Overflow.** While a hook is stuck, calls queue up (up to 1000); past that the
  oldest queued :func:`netra_results` batch is dropped, counted and reported as a
  warning. No other lifecycle call is ever dropped.

One more hook returns something: :func:`netra_collect_evidence` (what a log store
outside the run's files said while a test failed), delivered the same way on a
thread of its own.

A plugin that raises from any hook is reported and quarantined (its hooks are not
called again in this run); see :mod:`supervisor.plugins`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from supervisor.config import Config, SuiteConfig
    from supervisor.core.events import TestHung, TestResult
    from supervisor.core.evidence import EvidenceWindow
    from supervisor.core.kinds import DeployBackend, LogSink, SuiteKind

#: The pluggy project name: markers and the entry point group use it.
PROJECT_NAME = "netra_supervisor"

#: Marks a function as a hook specification (used only in this module).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)

#: Marks a plugin's function as a hook implementation: ``@hookimpl`` or
#: ``@hookimpl(tryfirst=True)`` / ``@hookimpl(trylast=True)`` / ``@hookimpl(optionalhook=True)``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --------------------------------------------------------------------------- registration


@hookspec
def netra_register_suite_kinds() -> list[SuiteKind] | None:
    """Register kinds of suite (the ``kind = "..."`` of a ``[[suite]]`` table).

    Called once per plugin while plugins are loaded, before the configuration's suites
    are validated; not called with batches (it takes no arguments and runs once).
    Return instances of :class:`supervisor.core.kinds.SuiteKind` subclasses, each with
    a unique ``name`` and the ``keys`` it owns in ``[[suite]]`` tables (key name →
    value type or :class:`supervisor.core.kinds.Key`; the host checks and converts
    them before anything runs and hands them over in ``suite.options``; the older
    ``extra_keys``, names only, still works). A kind whose name a later plugin
    registers again is replaced by the later one (this is how a team overrides the
    built-in ``pytest`` kind). A kind whose ``keys`` are malformed (an unknown type, a
    key every suite has) quarantines its plugin.

    :return: A list of ``SuiteKind`` instances (``None`` or ``[]`` for none).
    """


@hookspec
def netra_register_suites(config: Config) -> list[SuiteConfig] | None:
    """Register suites defined in code rather than in the configuration file.

    Called once per run, after the configuration file has been read and before its
    suites are validated; not called with batches (it runs once). The suites returned
    are appended to the file's ``[[suite]]`` tables, validated the same way (their kind
    must be registered, their ``options`` declared by the kind's ``keys``, as written
    in TOML or already converted), and can be named in ``[[phase]] suites``. A name that the configuration file already uses is a
    configuration error; between plugins, the later plugin's suite of a name wins.

    :param config: The validated :class:`supervisor.config.Config` (read only).
    :return: A list of :class:`supervisor.config.SuiteConfig` (``registered_by`` is
        filled in by the host), or ``None``/``[]`` for none.
    """


@hookspec
def netra_register_deploy_backends() -> list[DeployBackend] | None:
    """Register ways to deploy the system under test (``[deploy] backend = NAME``).

    Called once per plugin while plugins are loaded; not called with batches (it takes
    no arguments and runs once). Return instances of
    :class:`supervisor.core.kinds.DeployBackend` subclasses with a unique ``name`` and
    the ``keys`` they own in ``[deploy]`` (handed over in ``config.deploy.options``); a
    later plugin registering the same name replaces the earlier backend.

    :return: A list of ``DeployBackend`` instances (``None`` or ``[]`` for none).
    """


@hookspec
def netra_register_log_sinks() -> list[LogSink] | None:
    """Register kinds of log sink (the ``kind = "..."`` of a ``[[sink]]`` table).

    Called once per plugin while plugins are loaded; not called with batches (it takes
    no arguments and runs once). Return instances of
    :class:`supervisor.core.kinds.LogSink` subclasses with a unique ``name`` and the
    ``keys`` they own in ``[[sink]]`` tables (handed over in ``sink.options``); a later
    plugin registering the same name replaces the earlier sink kind.

    :return: A list of ``LogSink`` instances (``None`` or ``[]`` for none).
    """


# --------------------------------------------------------------------------- lifecycle


@hookspec
def netra_run_started(run_id: int, config: Config) -> None:
    """A run has started: the history database row exists and nothing has run yet.

    Called once per ``netra-supervisor run`` (a resumed run calls it again with the
    same ``run_id``), before the first iteration; it is a single call, not a per-result
    one. On the hooks thread; it has finished before the first deploy (a barrier).

    :param run_id: The run's id in the history database (``runs.id``).
    :param config: The validated :class:`supervisor.config.Config`, including suites
        that plugins registered in code (read only).
    :return: Nothing; a return value is ignored.
    """


@hookspec
def netra_iteration_started(run_id: int, iteration: int) -> None:
    """An iteration of the loop (deploy, then the phases) is starting.

    Called once per iteration, before its deploy; it is a single call, not a
    per-result one. On the hooks thread; the deploy waits until it has finished
    (a barrier, bounded by ``hook_timeout``), so it may prepare what the tests see.

    :param run_id: The run's id in the history database.
    :param iteration: The iteration's 1-based sequence number within the run.
    :return: Nothing; a return value is ignored.
    """


@hookspec
def netra_deploy_finished(
    run_id: int, iteration: int, backend: str, revision: str | None, ok: bool, message: str
) -> None:
    """The iteration's deploy step has finished (or was skipped).

    Called once per iteration, after the deploy backend returned and before the first
    phase; it is a single call, not a per-result one. A skipped deploy (``backend =
    "none"``, or ``when = "first"`` after the first iteration) is reported too, with
    ``ok`` true and ``revision`` ``None``. On the hooks thread, in event order; the
    phases do not wait for it.

    :param run_id: The run's id in the history database.
    :param iteration: The iteration's 1-based sequence number within the run.
    :param backend: The deploy backend's name (``[deploy] backend``).
    :param revision: What was deployed (a git sha, an image tag) when the backend
        reported one, else ``None``.
    :param ok: False when the deploy failed (the iteration's phases will not run).
    :param message: The backend's one-line explanation, often empty when ``ok``.
    :return: Nothing; a return value is ignored.
    """


@hookspec
def netra_phase_finished(
    run_id: int, iteration: int, phase: str, status: str, counts: dict[str, int]
) -> None:
    """A phase has finished and its gate has been decided.

    Called once per phase per iteration, after every result of the phase has been
    delivered through :func:`netra_results` (the pending batch is flushed first); it
    is a single call, not a per-result one. On the hooks thread, in event order; the
    next phase does not wait for it.

    :param run_id: The run's id in the history database.
    :param iteration: The iteration's 1-based sequence number within the run.
    :param phase: The phase's name (``[[phase]] name``), or ``verify`` for the verify
        pass (``[run] verify``: the re-run of what did not pass last time).
    :param status: ``passed``, ``failed``, ``gate-failed`` or ``interrupted``.
    :param counts: Results per outcome, every outcome of
        :data:`supervisor.core.events.OUTCOMES` present (zero when none), and
        ``flaky`` (tests that passed only on a retry; not in ``passed``). Each test
        counts once, by its latest attempt. Results of quarantined tests
        (``TestResult.quarantined``) are not in it: they never gate.
    :return: Nothing; a return value is ignored.
    """


@hookspec
def netra_results(batch: list[TestResult]) -> None:
    """Test results, delivered in batches.

    Called with batches: whenever a few hundred results are waiting or about a second
    has passed since the last delivery, and always at the end of each phase, iteration
    and run — never once per result. Every result is delivered exactly once, in the
    order the runners reported them; a batch may mix suites but not iterations' order.
    On the hooks thread; the tests do not wait for it. Only while hooks are stuck and
    1000 calls are queued is the oldest queued batch dropped (counted, and reported
    as a warning in the log).

    :param batch: A non-empty list of :class:`supervisor.core.events.TestResult` (each
        names its iteration, phase, suite, nodeid and outcome; ``attempt`` is 2, 3 … for
        a retry, and ``flaky`` is true on a retry that passed; ``quarantined`` is True
        for a test the quarantine file covers: it ran, but never fails a gate or the
        exit code). Do not modify it.
    :return: Nothing; a return value is ignored.
    """


@hookspec
def netra_test_hung(event: TestHung) -> None:
    """A test passed its deadline or went silent, and is being killed.

    Called once per hang: queued as soon as the watchdog decides, before the process
    group is killed and before the matching ``hung`` result arrives in
    :func:`netra_results`. It runs on the hooks thread and the kill does not wait for
    it (the stacks are in ``event.dump``). Hangs are rare, so this is a single call
    per hang, not a batch.

    :param event: The :class:`supervisor.core.events.TestHung` event: iteration, phase,
        suite, nodeid, the deadline in seconds, the reason (``deadline`` or
        ``silence``) and the stack dump when one was taken.
    :return: Nothing; a return value is ignored.
    """


@hookspec
def netra_iteration_finished(
    run_id: int, iteration: int, status: str, counts: dict[str, int], changes: dict[str, int]
) -> None:
    """An iteration has finished (all its phases ran, a gate held, or it was stopped).

    Called once per iteration, after its last :func:`netra_phase_finished` and after
    its results have been flushed to :func:`netra_results`; it is a single call, not a
    per-result one. On the hooks thread; the loop waits until it has finished before
    the wait between iterations and the next deploy (a barrier, bounded by
    ``hook_timeout``), so a fix it commits is what the next iteration deploys.

    :param run_id: The run's id in the history database.
    :param iteration: The iteration's 1-based sequence number within the run.
    :param status: ``passed``, ``failed``, ``gate-failed``, ``verify-failed`` (the
        verify pass found a test still not passing; no full phase ran),
        ``deploy-failed`` or ``interrupted``.
    :param counts: Results per outcome for the whole iteration, every outcome of
        :data:`supervisor.core.events.OUTCOMES` present, and ``flaky``; quarantined
        tests' results are not in it (see :func:`netra_results`).
    :param changes: Tests ``new``, ``still`` (failing), ``fixed`` and ``flaky`` in this
        iteration against each test's previous result, each test counted once by its
        last result (every key present; see ``TestResult.change``).
    :return: Nothing; a return value is ignored.
    """


@hookspec
def netra_run_finished(run_id: int, status: str, exit_code: int) -> None:
    """The run has finished, for whatever reason (including Ctrl-C).

    Called once per run, last of all hooks, after the remaining results have been
    flushed to :func:`netra_results`; it is a single call, not a per-result one.
    On the hooks thread; the run waits until it has finished (bounded by
    ``hook_timeout``) before the process ends. Release whatever the plugin holds here.

    :param run_id: The run's id in the history database.
    :param status: ``passed``, ``failed``, ``interrupted`` or ``error``.
    :param exit_code: The process exit code the supervisor is about to return
        (0 every selected test passed, 1 failures or hangs were left, 3 internal
        error, 130 interrupted).
    :return: Nothing; a return value is ignored.
    """


# --------------------------------------------------------------------------- evidence


@hookspec
def netra_collect_evidence(
    result: TestResult, window: EvidenceWindow
) -> list[tuple[str, list[str] | str]] | None:
    """Fetch what the backend logged while a non-passing test ran, from elsewhere.

    For backends whose logs are not files the supervisor can read (``[deploy] logs``):
    Loki, Cloud Logging, journald on another host. Called once per non-passing result
    (``failed``, ``error``, ``hung``, ``crashed``, ``xpassed``): a per-result call, not
    a batch, and only for those, which are few. It comes about ``window.margin``
    seconds after the test ended (so lines written as it ended are in), on the
    ``netra evidence hooks`` thread, never the runner's: a slow query delays no test.
    An implementation running longer than ``[plugins] hook_timeout`` is abandoned
    and its plugin quarantined, like a lifecycle hook; one that raises is quarantined.

    What it returns is stored in the ``evidence`` table beside the supervisor's own
    log excerpts, as ``source`` ``plugin:<plugin name>/<source>``: redacted, and held
    to 200 lines / 64 KiB per pair (the rest summarised as ``… N more lines …``).
    Lines that start with a timestamp give the row its ``first_at``/``last_at``.

    :param result: The :class:`supervisor.core.events.TestResult` that did not pass
        (iteration, phase, suite, nodeid, attempt, outcome, message, ``started_at``,
        ``duration``). Do not modify it.
    :param window: A :class:`supervisor.core.evidence.EvidenceWindow`: ``start`` and
        ``end`` are timezone-aware UTC datetimes from the test's start to its end,
        widened by ``margin`` seconds (1 s) on each side. Query your log store for it.
    :return: A list of ``(source, lines)`` pairs: ``source`` a short name of where the
        lines came from (``"loki"``, ``"journald:api.service"``), ``lines`` a list of
        strings or one string (split at newlines); ``None`` or ``[]`` for nothing.
        Anything else is reported and quarantines the plugin.
    """
