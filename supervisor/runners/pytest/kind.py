"""The pytest suite kind: what the plugin host registers for ``kind = "pytest"``.

``run`` starts ``python -m pytest`` in its own process group with our child plugin
(``-p _netra_child_plugin``, found through ``PYTHONPATH``), which streams JSON lines
over a Unix socket (``protocol.py``); the parent turns them into events and never
parses pytest's terminal output for results. A test past its deadline (its own
``@pytest.mark.timeout``, else the suite's, the phase's, ``[watchdog]``), or whose
process went silent, is asked for a dump, given ``[watchdog] grace``, recorded
``hung`` and killed with everything it started; pytest starts again on the tests that
had not run (see ``suite_run.py`` and :mod:`supervisor.core.watchdog`).

The heavy parts are imported when a suite runs: the kind is also what a run's early
start (``early_start``, :mod:`supervisor.prestart`) is looked up by.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from supervisor.core.kinds import RunContext, SuiteKind
from supervisor.runners.pytest.early import STARTER

if TYPE_CHECKING:
    from supervisor.config import Config, SuiteConfig
    from supervisor.core.events import Event


class CollectError(RuntimeError):
    """``collect()`` could not get pytest to collect (the message says why)."""


class PytestSuiteKind(SuiteKind):
    """``kind = "pytest"``: run pytest in a subprocess and stream its results."""

    name = "pytest"
    early_start = STARTER

    def validate(self, suite: SuiteConfig, config: Config) -> None:
        from supervisor.runners.pytest.suite_options import validate_suite

        validate_suite(suite, config)

    def run(self, suite: SuiteConfig, ctx: RunContext) -> None:
        from supervisor.runners.pytest.suite_run import SuiteRun

        SuiteRun(suite, ctx).run()

    def collect(self, suite: SuiteConfig, config: Config, env: Mapping[str, str]) -> list[str]:
        """Run ``pytest --collect-only`` with our plugin; the nodeids come over the channel.

        Raises :class:`CollectError` when pytest cannot start (the message says why).
        """
        from supervisor.config import PhaseConfig
        from supervisor.runners.pytest.suite_run import SuiteRun

        events: list[Event] = []
        ctx = RunContext(
            config=config,
            phase=PhaseConfig(name="collect", suites=(suite.name,)),
            run_id=0,
            iteration=0,
            phase_seq=0,
            emit=events.append,
            env=dict(env),
        )
        runner = SuiteRun(suite, ctx, collect_only=True)
        runner.run()
        if runner.startup_message is not None:
            raise CollectError(f"suite {suite.name}: {runner.startup_message}")
        return list(runner.order)
