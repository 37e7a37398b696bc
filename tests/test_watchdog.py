"""The watchdog's decisions, driven by a fake clock: no processes, no sockets."""

from __future__ import annotations

import pytest

from supervisor.core import watchdog as wd


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def dog(clock: Clock) -> wd.Watchdog:
    return wd.Watchdog(silence=10.0, grace=2.0, clock=clock)


def running(dog: wd.Watchdog, deadline: float = 5.0, nodeid: str = "t.py::test") -> wd.Track:
    track = dog.track()
    track.test = dog.period(wd.TEST, nodeid, deadline, "2026-11-30T00:00:00Z")
    return track


def kinds(actions: list) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_a_test_within_its_deadline_is_left_alone(dog, clock):
    running(dog, deadline=5.0)
    clock.advance(5.0)  # exactly at the deadline: not past it
    assert dog.check() == []


def test_past_its_deadline_a_dump_is_asked_then_after_grace_it_expires(dog, clock):
    track = running(dog, deadline=5.0)
    clock.advance(5.01)
    (ask,) = dog.check()
    assert isinstance(ask, wd.AskDump) and ask.track is track
    assert track.test is not None and track.test.reason == "deadline"
    clock.advance(1.0)
    assert dog.check() == []  # waiting for the dump, within the grace
    clock.advance(1.0)
    (expired,) = dog.check()
    assert isinstance(expired, wd.Expired) and expired.period is track.test


def test_a_dump_that_arrives_ends_the_grace_at_once(dog, clock):
    track = running(dog, deadline=5.0)
    clock.advance(6.0)
    dog.check()
    track.dump = "Thread MainThread ..."
    assert kinds(dog.check()) == ["Expired"]


def test_a_silent_process_is_hung_and_being_heard_resets_silence(dog, clock):
    track = running(dog, deadline=100.0)
    clock.advance(9.0)
    dog.heard(track)
    clock.advance(9.0)
    assert dog.check() == []  # heard 9 s ago: not silent yet
    clock.advance(1.5)
    (ask,) = dog.check()
    assert isinstance(ask, wd.AskDump) and ask.period.reason == "silence"


def test_a_process_that_cannot_be_asked_expires_at_its_deadline(dog, clock):
    track = dog.track(dumpable=False)
    track.other = dog.period(wd.SPAWN, "", 30.0)
    clock.advance(29.0)
    assert dog.check() == []  # no silence for a process that never connected
    clock.advance(1.5)
    (expired,) = dog.check()
    assert isinstance(expired, wd.Expired) and expired.period.what == wd.SPAWN


def test_a_standby_is_due_at_half_the_deadline_once_and_only_if_wanted(dog, clock):
    running(dog, deadline=10.0)
    running(dog, deadline=10.0, nodeid="t.py::other")
    clock.advance(5.0)
    assert dog.check(standby_wanted=False) == []
    assert kinds(dog.check(standby_wanted=True)) == ["StandbyDue"]  # one, for two tests


def test_only_one_expiry_per_check(dog, clock):
    first, second = running(dog), running(dog, nodeid="t.py::b")
    clock.advance(6.0)
    assert kinds(dog.check()) == ["AskDump", "AskDump"]
    clock.advance(3.0)
    (expired,) = dog.check()
    assert expired.track is first
    first.test = None  # the runner recorded it
    (expired,) = dog.check()
    assert expired.track is second


def test_a_person_can_flag_a_test_once(dog, clock):
    track = running(dog, deadline=50.0)
    ask = dog.flag(track, "killed")
    assert isinstance(ask, wd.AskDump) and ask.period.reason == "killed"
    assert dog.flag(track, "killed") is None
    clock.advance(2.0)
    assert kinds(dog.check()) == ["Expired"]


def test_a_flagged_test_that_finished_still_expires_with_its_dump(dog, clock):
    track = running(dog, deadline=1.0)
    clock.advance(1.5)
    dog.check()
    period = track.test
    track.finished, track.test = period, None  # its "done" came during the grace
    track.test = dog.period(wd.TEST, "t.py::next", 5.0)  # the process went on
    assert dog.check() == []
    track.dump = "stacks"
    (expired,) = dog.check()
    assert expired.period is period


def test_next_due_wakes_for_the_nearest_deadline_silence_or_grace(dog, clock):
    assert dog.next_due() == wd.TICK  # nothing to watch: a tick
    track = running(dog, deadline=0.05)
    assert dog.next_due() == pytest.approx(0.05)
    clock.advance(0.06)
    dog.check()
    assert dog.next_due() == pytest.approx(wd.TICK)  # grace 2 s away: capped at a tick
    clock.advance(1.9)
    assert dog.next_due() == pytest.approx(0.1)  # flagged at +0.06, grace 2 s
    clock.advance(1.0)
    assert dog.next_due() == 0.002  # overdue: as soon as possible
    track.test = None
    standby = running(dog, deadline=0.3)
    assert dog.next_due(standby_wanted=True) == pytest.approx(0.15)
    assert standby.test is not None


def test_holding_idle_while_paused(dog, clock):
    track = dog.track()
    track.other = dog.period(wd.IDLE, "", 5.0)
    clock.advance(4.0)
    dog.hold_idle()
    clock.advance(4.0)
    assert dog.check() == []  # 4 s since the pause was lifted, not 8
    dog.heard(track)
    clock.advance(1.5)
    assert kinds(dog.check()) == ["AskDump"]


def test_a_dropped_track_is_not_watched(dog, clock):
    track = running(dog)
    dog.drop(track)
    dog.drop(track)  # twice is harmless
    clock.advance(100.0)
    assert dog.check() == []


@pytest.mark.parametrize(
    ("reason", "teardown", "expected"),
    [
        ("deadline", "", "still running after its deadline of 5s"),
        ("silence", "", "the test process was silent for more than 10s"),
        ("killed", "", "killed by the user after 7.5s (deadline 5s)"),
        ("deadline", "module", "module-scoped fixtures: most likely a module fixture's"),
    ],
)
def test_hang_messages(reason, teardown, expected):
    period = wd.Period(wd.TEST, "t", 0.0, 5.0, reason=reason, shared_teardown=teardown)
    assert expected in wd.hang_message(period, elapsed=7.5, silence=10.0)


def test_what_a_lost_connection_means():
    collecting = wd.Track(other=wd.Period(wd.COLLECT, "tests/test_x.py", 0.0, 5.0))
    in_test = wd.Track(test=wd.Period(wd.TEST, "t", 0.0, 5.0))
    idle = wd.Track(other=wd.Period(wd.IDLE, "", 0.0, 5.0))
    assert wd.loss(collecting, main=True, finished=False, ending=False) == wd.LOSS_COLLECT
    assert wd.loss(collecting, main=False, finished=False, ending=False) == wd.LOSS_NONE
    assert wd.loss(in_test, main=False, finished=False, ending=False) == wd.LOSS_CRASH
    assert wd.loss(in_test, main=True, finished=True, ending=False) == wd.LOSS_NONE
    assert wd.loss(in_test, main=True, finished=False, ending=True) == wd.LOSS_NONE
    assert wd.loss(idle, main=True, finished=False, ending=False) == wd.LOSS_NONE


def end(**changes) -> wd.AttemptEnd:
    base = dict(
        number=1, collect_hang=False, cut_short=True, casualties=1, remaining=5, failing=1,
        maxfail=0,
    )  # fmt: skip
    return wd.AttemptEnd(**{**base, **changes})


@pytest.mark.parametrize(
    ("changes", "decision"),
    [
        ({}, wd.AGAIN_ON_REMAINING),
        ({"collect_hang": True}, wd.AGAIN_WITHOUT_FILES),
        ({"collect_hang": True, "number": 101}, wd.FINISH),  # no more restarts at all
        ({"cut_short": False}, wd.FINISH),
        ({"remaining": 0}, wd.FINISH),
        ({"maxfail": 1}, wd.STOP_AT_MAXFAIL),
        ({"maxfail": 3, "failing": 2}, wd.AGAIN_ON_REMAINING),
        ({"casualties": 0}, wd.FINISH),  # xdist gave up: nothing hung or crashed here
        ({"number": 101}, wd.FINISH),
    ],
)
def test_after_an_attempt(changes, decision):
    assert wd.after_attempt(end(**changes), max_restarts=100) == decision


def test_a_standby_is_worthwhile_only_when_a_restart_can_follow():
    assert wd.standby_worthwhile(maxfail=0, failing=9, have_standby=False, workers=1)
    assert not wd.standby_worthwhile(maxfail=0, failing=0, have_standby=True, workers=1)
    assert not wd.standby_worthwhile(maxfail=0, failing=0, have_standby=False, workers=2)
    assert not wd.standby_worthwhile(maxfail=2, failing=1, have_standby=False, workers=1)
    assert wd.standby_worthwhile(maxfail=3, failing=1, have_standby=False, workers=1)
