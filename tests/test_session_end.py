"""After pytest's session finished: its report is not its exit.

pytest writes its terminal summary (every failure's traceback) after
``pytest_sessionfinish``, so the child says ``fin`` there and ``bye`` from
``pytest_unconfigure``. Between the two the main process is timed generously
(``ENDING``); only after ``bye`` does the stretch deadline say "had not exited".
The real-process case is in ``test_hang_zoo.py``.
"""

from __future__ import annotations

import socket
from pathlib import Path
from types import SimpleNamespace

from supervisor.config import parse_config
from supervisor.core import watchdog as wd
from supervisor.core.kinds import RunContext
from supervisor.runners.pytest.channel import Conn
from supervisor.runners.pytest.messages import ENDING_DEADLINE, Messages
from supervisor.runners.pytest.state import SuiteState


def _messages(now: list[float]) -> tuple[Messages, SuiteState, wd.Watchdog]:
    config = parse_config({"suite": [{"name": "s"}]}, Path("/tmp/netra-supervisor.toml"))
    ctx = RunContext(config=config, phase=config.phases[0], run_id=1, iteration=1,
                     phase_seq=1, emit=lambda event: None)  # fmt: skip
    dog = wd.Watchdog(silence=600.0, grace=1.0, clock=lambda: now[0])
    state = SuiteState(config.suites[0], ctx)
    state.attempt.proc = SimpleNamespace(pid=41)  # type: ignore[assignment]
    messages = Messages(state, dog, default_deadline=2.0, stretch_deadline=2.0,
                        paused=lambda: False)  # fmt: skip
    return messages, state, dog


def test_the_report_after_fin_is_timed_generously_and_the_exit_after_bye_strictly():
    now = [100.0]
    messages, state, dog = _messages(now)
    ours, theirs = socket.socketpair()
    try:
        main = Conn(ours, dog.track(), pid=41)
        worker = Conn(ours, dog.track(), pid=42, worker="gw0")
        messages.handle(main, [{"t": "fin", "s": 1}])
        assert state.attempt.main_finished and state.attempt.exitstatus == 1
        ending = main.track.other
        assert ending is not None and ending.what == wd.ENDING
        assert ending.deadline == ENDING_DEADLINE
        now[0] += 10.0  # a long summary: past the 2 s deadline, nothing is due
        assert dog.check() == []
        messages.handle(worker, [{"t": "bye"}])  # a worker's bye times nothing
        assert worker.track.other is None
        messages.handle(main, [{"t": "bye"}])
        exiting = main.track.other
        assert exiting is not None and exiting.what == wd.EXIT and exiting.deadline == 2.0
        now[0] += 2.5
        (flagged,) = dog.check()
        assert isinstance(flagged, wd.AskDump) and flagged.period is exiting
        assert wd.stuck_doing(exiting, tests_left=False)[0] == "pytest had not exited"
        doing, where = wd.stuck_doing(ending, tests_left=False)
        assert "terminal summary" in doing and where == "(session teardown)"
    finally:
        ours.close()
        theirs.close()


def test_a_bye_without_fin_changes_nothing():
    messages, _, dog = _messages([5.0])
    ours, theirs = socket.socketpair()
    try:
        main = Conn(ours, dog.track(), pid=41)
        messages.handle(main, [{"t": "bye"}])
        assert main.track.other is None
    finally:
        ours.close()
        theirs.close()
