"""What a plugin registers: suite kinds, deploy backends and log sink kinds.

These are the objects returned by ``netra_register_suite_kinds``,
``netra_register_deploy_backends`` and ``netra_register_log_sinks``. Built-in kinds
subclass the same bases a team's plugin does, so the hooks are the only way in.

Each of them owns its config keys: ``keys`` maps a key of its ``[[suite]]``,
``[deploy]`` or ``[[sink]]`` table to a value type (or a :class:`Key`), and the host
checks and parses them with the same one-line errors as every other key, before
anything runs; the parsed values are in ``suite.options`` / ``config.deploy.options``
/ ``sink.options``. ``config.py`` knows only the keys every table has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from supervisor.config import Config, PhaseConfig, SinkConfig, SuiteConfig
    from supervisor.core.control import RunControl
    from supervisor.core.events import Event

#: The value types a key may declare; the host checks and converts values by them
#: (``duration``: "90s" or a number → seconds; ``strlist``: a list of strings → tuple;
#: ``strmap``: a table of strings; ``table``: any table; ``any``: taken as written).
KEY_TYPES = ("str", "int", "float", "bool", "duration", "strlist", "strmap", "table", "any")


@dataclass(frozen=True)
class Key:
    """One config key a kind owns.

    ``type`` is one of :data:`KEY_TYPES`. An absent key gets ``default``, converted
    like a written value (``Key("duration", default="30s")`` gives ``30.0``; ``None``
    stays ``None``). A ``required`` key must be set and not empty (``""``, ``[]``,
    ``{}``); ``example`` (e.g. ``'url = "ws://host/ws"'``) is shown when it is not.
    A bare type name in ``keys`` (``{"paths": "strlist"}``) means ``Key("strlist")``.
    """

    type: str = "any"
    default: Any = None
    required: bool = False
    example: str = ""


class OwnsKeys:
    """What suite kinds, deploy backends and sink kinds share: their own config keys.

    ``keys``: key name → value type name or :class:`Key`, for the keys of this kind's
    table beyond the ones every such table has. ``extra_keys`` is the older way to say
    it (names only; each is taken as ``Key("any")``) and still works.
    """

    keys: ClassVar[Mapping[str, Key | str]] = {}
    extra_keys: ClassVar[tuple[str, ...]] = ()


@dataclass
class RunContext:
    """Everything a suite kind needs while it runs one suite in one phase.

    ``emit`` is thread-safe and returns quickly; runners call it for every event.
    ``stop`` is set when the user interrupted the run: stop starting tests, kill what
    runs, report what finished, and return. ``already_run`` holds the test ids this
    suite already has results for in this iteration (a run continued with
    ``--resume``): do not run them again. ``control`` (when set) carries a person's
    requests: start no new test while ``control.paused``; a test in
    ``control.kills_for(suite)`` is treated as hung now (dump, kill, ``hung``).
    ``redact`` (when set) masks the run's secrets (the ``[auth]`` token): pass text
    through it before writing it to a file of your own, so no secret reaches the disk.

    Fast feedback: ``run_first`` lists test ids to run before the others, in this
    order (failed-first: what did not pass in the suite's latest results; ids the kind
    does not collect are ignored). ``only``, when set, limits the run to those ids (the
    verify pass re-runs an iteration's failures). ``cut`` is set when the phase's gate
    can no longer hold (``stop_on_gate``): stop starting tests, end what runs without
    recording it, report ``SuiteFinished(status="cut")`` and return; the tests not run
    are not results. ``every_start`` (False) lets a runner leave out the
    ``TestStarted`` of a test whose result it hands on in the same batch.
    """

    config: Config
    phase: PhaseConfig
    run_id: int
    iteration: int
    phase_seq: int
    emit: Callable[[Event], None]
    env: Mapping[str, str] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    log_dir: str = ""
    already_run: frozenset[str] = frozenset()
    control: RunControl | None = None
    redact: Callable[[str], str] | None = None
    run_first: tuple[str, ...] = ()
    only: frozenset[str] | None = None
    cut: threading.Event = field(default_factory=threading.Event)
    #: False when no consumer of this run looks at a ``TestStarted`` the test's own
    #: result follows in the same batch (no sink selects ``test_started``): a runner
    #: may then leave such a start out (the model, the history and the ETAs end up the
    #: same); True: report every start
    every_start: bool = True
    #: the batch form of ``emit`` (None: ``emit`` one by one); see :meth:`batch`
    emit_many: Callable[[list[Event]], None] | None = None
    _pending: list[Event] | None = field(default=None, init=False, repr=False)
    _batching: int = field(default=0, init=False, repr=False)  # the thread that batches

    def report(self, event_type: Callable[..., Event], suite: str, **fields: Any) -> None:
        """Emit a suite's event (``TestStarted``, ``TestResult``, ``SuiteFinished``, ...)
        with ``iteration``, ``phase`` and ``suite`` filled in from this context."""
        event = event_type(iteration=self.iteration, phase=self.phase_seq, suite=suite, **fields)
        pending = self._pending
        if pending is not None and threading.get_ident() == self._batching:
            pending.append(event)
        else:
            self.emit(event)

    def log(self, level: str, source: str, text: str) -> None:
        from supervisor.core.events import LogLine

        event = LogLine(level=level, source=source, text=text)
        pending = self._pending
        if pending is not None and threading.get_ident() == self._batching:
            pending.append(event)
        else:
            self.emit(event)

    def begin_batch(self) -> None:
        """From now, :meth:`report` and :meth:`log` collect their events (what one read
        of the runner's messages brings) until :meth:`end_batch` hands them on as one
        list: one trip through the wrappers and the bus instead of one per event. Only
        the calling thread's events wait; another thread's go out at once."""
        if self._pending is None:
            self._batching = threading.get_ident()
            self._pending = []

    def end_batch(self) -> None:
        """Hand on what :meth:`begin_batch` collected, in order."""
        events, self._pending = self._pending, None
        if not events:
            return
        if self.emit_many is not None:
            self.emit_many(events)
        else:
            for event in events:
                self.emit(event)

    def deadline_for(self, suite: SuiteConfig) -> float:
        """The default per-test deadline: suite, then phase, then ``[watchdog]``.

        A test's own ``@pytest.mark.timeout(N)`` beats this; the pytest runner applies it.
        """
        if suite.test_timeout is not None:
            return suite.test_timeout
        if self.phase.test_timeout is not None:
            return self.phase.test_timeout
        return self.config.watchdog.test_timeout


class SuiteKind(OwnsKeys):
    """A kind of suite (``kind = "pytest"`` in ``[[suite]]``).

    Subclass it, set ``name``, implement :meth:`run`, and return an instance from
    ``netra_register_suite_kinds``. ``keys`` declares the ``[[suite]]`` keys your kind
    accepts beyond the ones every suite has (see :class:`OwnsKeys`); read them,
    parsed, from ``suite.options``.

    ``early_start`` (optional): ``"module:function"`` that starts the suite's first
    process before plugins load, when a run begins with this kind's suite (see
    :mod:`supervisor.prestart`); the kind adopts it with ``prestart.take``.
    """

    name: str = ""
    early_start: str = ""

    def validate(self, suite: SuiteConfig, config: Config) -> None:
        """Check what the key types cannot (a URL's scheme, a folder that must exist).

        Called before anything runs, with ``suite.options`` already parsed. Raise
        :class:`supervisor.config.OptionError` (``OptionError("url", "not a WebSocket
        URL; write ...")``): the host names the file and the suite around it.
        """

    def collect(self, suite: SuiteConfig, config: Config, env: Mapping[str, str]) -> list[str]:
        """The test ids the suite would run, without running them."""
        raise NotImplementedError(f"suite kind {self.name!r} cannot collect")

    def run(self, suite: SuiteConfig, ctx: RunContext) -> None:
        """Run the suite, calling ``ctx.emit`` for every event; return when done.

        Problems that stop the suite from running (it cannot start, it cannot collect)
        are reported as results or a ``SuiteFinished(status="error")``, never raised:
        an exception escaping here is treated as a plugin error.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class DeployOutcome:
    ok: bool
    revision: str | None = None
    message: str = ""


class DeployBackend(OwnsKeys):
    """A way to deploy the system under test (``[deploy] backend = NAME``).

    ``keys`` declares its ``[deploy]`` keys beyond ``backend``, ``health_url``,
    ``health_timeout`` and ``when``; read them, parsed, from ``config.deploy.options``.
    """

    name: str = ""

    def validate(self, config: Config) -> None:
        """Like :meth:`SuiteKind.validate`, for ``[deploy]``: raise ``OptionError``."""

    def deploy(self, config: Config, iteration: int, log: Callable[[str], None]) -> DeployOutcome:
        raise NotImplementedError

    def stop(self) -> None:
        """Called once when the run ends (also on Ctrl-C): release what ``deploy`` started."""

    def logs(self, config: Config) -> list[str]:
        """Files (or globs) the deployed system writes, when ``[deploy] logs`` is not
        set: the lines written while a test that did not pass ran become its evidence.
        Default: none."""
        return []


class LogSink(OwnsKeys):
    """Receives events (``[[sink]] kind = NAME``). Instances are made per ``[[sink]]``.

    ``keys`` declares its ``[[sink]]`` keys beyond ``kind`` and ``events``; read them,
    parsed, from ``sink.options``.
    """

    name: str = ""

    def validate(self, sink: SinkConfig, config: Config) -> None:
        """Like :meth:`SuiteKind.validate`, for one ``[[sink]]``; called at start-up."""

    def open(self, sink: SinkConfig, config: Config) -> Any:
        """Return a handle with ``write(events: list[Event])`` and ``close()``."""
        raise NotImplementedError
