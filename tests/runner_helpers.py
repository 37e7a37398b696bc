"""Shared by the pytest-runner tests: run one suite through the real suite kind."""

from __future__ import annotations

import threading

from supervisor.config import Config
from supervisor.core.kinds import RunContext
from supervisor.runners.pytest.kind import PytestSuiteKind


def run_pytest_kind(
    config: Config,
    *,
    env: dict | None = None,
    stop: threading.Event | None = None,
    log_dir: str = "",
    iteration: int = 1,
    phase_seq: int = 1,
    redact=None,
) -> tuple[list, RunContext]:
    """Run the config's first suite with PytestSuiteKind; every event it emitted, in order."""
    events: list = []
    lock = threading.Lock()

    def emit(event) -> None:
        with lock:  # xdist workers' messages can be folded from helper threads
            events.append(event)

    ctx = RunContext(
        config=config,
        phase=config.phases[0],
        run_id=1,
        iteration=iteration,
        phase_seq=phase_seq,
        emit=emit,
        env=env or {},
        stop=stop or threading.Event(),
        redact=redact,
        log_dir=log_dir,
    )
    PytestSuiteKind().run(config.suites[0], ctx)
    return events, ctx
