"""What a plugin registers: suite kinds, deploy backends and log sink kinds.

These are the objects returned by ``netra_register_suite_kinds``,
``netra_register_deploy_backends`` and ``netra_register_log_sinks``. Built-in kinds
subclass the same bases a team's plugin does, so the hooks are the only way in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.config import Config, PhaseConfig, SinkConfig, SuiteConfig
    from supervisor.core.control import RunControl
    from supervisor.core.events import Event


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

    def report(self, event_type: type[Event], suite: str, **fields: Any) -> None:
        """Emit a suite's event (``TestStarted``, ``TestResult``, ``SuiteFinished``, ...)
        with ``iteration``, ``phase`` and ``suite`` filled in from this context."""
        self.emit(event_type(iteration=self.iteration, phase=self.phase_seq, suite=suite, **fields))

    def log(self, level: str, source: str, text: str) -> None:
        from supervisor.core.events import LogLine

        self.emit(LogLine(level=level, source=source, text=text))

    def deadline_for(self, suite: SuiteConfig) -> float:
        """The default per-test deadline: suite, then phase, then ``[watchdog]``.

        A test's own ``@pytest.mark.timeout(N)`` beats this; the pytest runner applies it.
        """
        if suite.test_timeout is not None:
            return suite.test_timeout
        if self.phase.test_timeout is not None:
            return self.phase.test_timeout
        return self.config.watchdog.test_timeout


class SuiteKind:
    """A kind of suite (``kind = "pytest"`` in ``[[suite]]``).

    Subclass it, set ``name``, implement :meth:`run`, and return an instance from
    ``netra_register_suite_kinds``. ``extra_keys`` lists the ``[[suite]]`` keys your
    kind accepts beyond the built-in ones, so typos in them are still caught.
    """

    name: str = ""
    extra_keys: tuple[str, ...] = ()

    def validate(self, suite: SuiteConfig, config: Config) -> None:
        """Raise :class:`supervisor.config.ConfigError` when the suite is unusable."""

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


class DeployBackend:
    """A way to deploy the system under test (``[deploy] backend = NAME``)."""

    name: str = ""

    def deploy(self, config: Config, iteration: int, log: Callable[[str], None]) -> DeployOutcome:
        raise NotImplementedError

    def stop(self) -> None:
        """Called once when the run ends (also on Ctrl-C): release what ``deploy`` started."""


class LogSink:
    """Receives events (``[[sink]] kind = NAME``). Instances are made per ``[[sink]]``."""

    name: str = ""
    extra_keys: tuple[str, ...] = ()

    def open(self, sink: SinkConfig, config: Config) -> Any:
        """Return a handle with ``write(events: list[Event])`` and ``close()``."""
        raise NotImplementedError
