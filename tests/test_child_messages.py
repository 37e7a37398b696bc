"""Child messages → events and watchdog periods (messages.py), without processes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from supervisor.config import parse_config
from supervisor.core import watchdog as wd
from supervisor.core.events import TestResult, TestsCollected, TestStarted
from supervisor.core.kinds import RunContext
from supervisor.runners.pytest.channel import Conn
from supervisor.runners.pytest.messages import Messages
from supervisor.runners.pytest.state import SuiteState


class Clock:
    now = 50.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def parts():
    config = parse_config({"suite": [{"name": "s"}]}, Path("/tmp/netra-supervisor.toml"))
    events: list = []
    ctx = RunContext(config=config, phase=config.phases[0], run_id=1, iteration=1,
                     phase_seq=1, emit=events.append)  # fmt: skip
    state = SuiteState(config.suites[0], ctx)
    clock = Clock()
    dog = wd.Watchdog(silence=60.0, grace=5.0, clock=clock)
    messages = Messages(
        state, dog, default_deadline=7.0, stretch_deadline=120.0, paused=lambda: False
    )
    ends: list[socket.socket] = []

    def conn(worker: str = "", controller: bool = False) -> Conn:
        ours, theirs = socket.socketpair()
        ends.extend((ours, theirs))
        return Conn(ours, dog.track(), pid=4242, worker=worker, controller=controller)

    yield messages, events, dog, clock, conn
    for end in ends:
        end.close()


def done(nodeid: str, outcome: str = "passed") -> dict:
    return {"t": "done", "i": nodeid, "p": [{"w": "call", "o": outcome, "d": 0.5}]}


def test_a_test_start_and_end_become_events_and_a_period(parts):
    messages, events, _dog, _clock, conn = parts
    c = conn()
    messages.handle(c, [{"t": "coll", "ids": ["a.py::t", "a.py::u"]}])
    messages.handle(c, [{"t": "start", "i": "a.py::t", "to": None}])
    assert c.track.test is not None and c.track.test.deadline == 7.0  # the suite's
    messages.handle(c, [{"t": "start", "i": "a.py::u", "to": 2.5}])
    assert c.track.test.deadline == 2.5  # its own timeout marker wins
    messages.handle(c, [done("a.py::u")])
    assert c.track.test is None and c.track.other is not None  # idle between tests
    assert [type(e) for e in events] == [TestsCollected, TestStarted, TestStarted, TestResult]
    assert events[-1].outcome == "passed" and events[-1].duration == 0.5


def test_a_flagged_test_that_finishes_waits_for_its_dump_instead_of_passing(parts):
    messages, events, dog, clock, conn = parts
    c = conn()
    messages.handle(c, [{"t": "start", "i": "a.py::t", "to": 1.0}])
    clock.now += 1.5
    dog.check()  # past its deadline: flagged, a dump asked
    messages.handle(c, [done("a.py::t"), {"t": "start", "i": "a.py::u", "to": None}])
    assert not [e for e in events if isinstance(e, TestResult)]
    assert c.track.finished is not None and c.track.finished.nodeid == "a.py::t"
    messages.handle(c, [{"t": "dump", "text": "stacks"}])
    (expired,) = dog.check()
    assert expired.period is c.track.finished and c.track.dump == "stacks"


def test_a_controller_that_lost_a_worker_must_go_on(parts):
    messages, _events, dog, clock, conn = parts
    controller, worker = conn(controller=True), conn(worker="gw1")
    messages.watch_replacement(controller)
    assert controller.track.other is not None and controller.track.other.what == wd.REPLACE
    clock.now += 121.0  # the stretch deadline (120 s) is above REPLACE_DEADLINE
    assert [type(a).__name__ for a in dog.check()] == ["AskDump"]  # stuck: escalated

    messages.watch_replacement(controller)  # already watched: the period is kept
    controller.track.other = None
    messages.watch_replacement(controller)
    messages.handle(worker, [{"t": "start", "i": "a.py::t", "to": None}])  # it went on
    assert controller.track.other is None


def test_a_result_starts_when_the_child_says_not_when_its_batch_arrived(parts):
    """Tests read in one batch keep their own start times (the child's clock), so
    ``results.started_at`` orders them; a remote worker's clock is not trusted."""
    from supervisor.core.events import utc_at

    messages, events, _dog, _clock, conn = parts
    local, remote = conn(), conn(worker="gw0")
    remote.remote = "ci@runner-1"
    messages.handle(
        local,
        [
            {"t": "start", "i": "a.py::t", "to": None, "at": 1_700_000_000.125},
            done("a.py::t"),
            {"t": "start", "i": "a.py::u", "to": None, "at": 1_700_000_000.5},
            done("a.py::u"),
        ],
    )
    messages.handle(
        remote, [{"t": "start", "i": "b.py::t", "to": None, "at": 1.0}, done("b.py::t")]
    )
    started = {e.nodeid: e.started_at for e in events if isinstance(e, TestResult)}
    assert started["a.py::t"] == utc_at(1_700_000_000.125) == "2023-11-14T22:13:20.125+00:00"
    assert started["a.py::u"] == utc_at(1_700_000_000.5)
    assert started["b.py::t"] > "2026"  # its arrival, not the remote clock's 1970
