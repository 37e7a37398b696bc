"""A runner's batch (issue 18): decoded at once, folded like single messages, handed on
as one list, in order, to every consumer. Plain data, no processes."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from supervisor.config import parse_config
from supervisor.core import watchdog as wd
from supervisor.core.bus import EventBus, ResultBatcher, many_of
from supervisor.core.events import LogLine, TestResult, TestStarted
from supervisor.core.kinds import RunContext
from supervisor.runners.pytest import protocol
from supervisor.runners.pytest.channel import Channel, Conn
from supervisor.runners.pytest.messages import Messages
from supervisor.runners.pytest.state import SuiteState


def _result(n: int) -> TestResult:
    return TestResult(1, 1, "s", f"t.py::test_{n}", "passed")


def test_emit_many_reaches_batch_and_plain_consumers_in_order():
    bus = EventBus()
    plain: list = []
    batches: list[list] = []
    bus.subscribe(plain.append)
    bus.subscribe(lambda event: None, batches.append)
    events = [_result(1), LogLine("info", "x", "y"), _result(2)]
    bus.emit_many(events)
    bus.emit_many([])
    assert plain == events
    assert batches == [events]
    assert many_of(bus.emit) == bus.emit_many  # a wrapper over the bus keeps batches


def test_the_results_batcher_takes_a_run_of_results_at_once():
    delivered: list[list] = []
    batcher = ResultBatcher(delivered.append, max_batch=5, max_age=3600)
    batcher.add_many([_result(1), _result(2)])
    batcher.add_many([])
    assert delivered == []  # neither full nor old
    batcher.add_many([_result(n) for n in range(3, 7)])  # 6 >= 5: handed on
    assert [[r.nodeid[-1] for r in batch] for batch in delivered] == [list("123456")]
    batcher(_result(7))
    batcher.flush()
    assert [r.nodeid for r in delivered[-1]] == ["t.py::test_7"]


def test_a_context_batch_goes_out_as_one_list_and_other_threads_are_not_held():
    config = parse_config({"suite": [{"name": "s"}]}, Path("/tmp/netra-supervisor.toml"))
    single: list = []
    lists: list[list] = []
    ctx = RunContext(config=config, phase=config.phases[0], run_id=1, iteration=3,
                     phase_seq=2, emit=single.append, emit_many=lists.append)  # fmt: skip
    ctx.begin_batch()
    ctx.report(TestResult, "s", nodeid="a", outcome="passed")
    other = threading.Thread(target=ctx.log, args=("info", "elsewhere", "now"))
    other.start()
    other.join()
    ctx.log("warning", "here", "later")
    assert [type(e) for e in single] == [LogLine]  # the other thread's event went out
    assert lists == []
    ctx.end_batch()
    assert len(lists) == 1
    assert [getattr(e, "nodeid", getattr(e, "text", "")) for e in lists[0]] == ["a", "later"]
    assert (lists[0][0].iteration, lists[0][0].phase) == (3, 2)
    ctx.report(TestResult, "s", nodeid="b", outcome="failed")  # no batch: at once
    assert single[-1].nodeid == "b"


def test_a_read_is_decoded_at_once_and_a_bad_line_costs_only_itself():
    ours, theirs = socket.socketpair()
    try:
        conn = Conn(ours, wd.Track(last_seen=0.0))
        good = b'{"t":"start","i":"a::b","to":null}\n{"t":"hb"}\n'
        assert Channel._decode(conn, good + b'{"t":"done","i"') == [
            {"t": "start", "i": "a::b", "to": None},
            {"t": "hb"},
        ]
        assert conn.buf == b'{"t":"done","i"'  # the partial line waits for its end
        rest = b':"a::b","p":[]}\n\nnot json\n[1]\n{"t":"fin","s":0}\n'
        assert Channel._decode(conn, rest) == [
            {"t": "done", "i": "a::b", "p": []},
            {"t": "fin", "s": 0},
        ]
        assert conn.buf == b""
    finally:
        ours.close()
        theirs.close()


def test_a_plainly_passing_test_folds_as_the_full_rules_do():
    phases = [
        {"w": "setup", "o": "passed", "d": 0.25},
        {"w": "call", "o": "passed", "d": 0.5},
        {"w": "teardown", "o": "passed", "d": 0.125},
    ]
    assert protocol.fold_phases(phases) == protocol.Folded("passed", "", "", 0.875)
    # what the fast path must leave to the full rules: a message, sections, an xfail
    noted = [dict(phases[0]), {**phases[1], "m": "why"}, dict(phases[2])]
    assert protocol.fold_phases(noted).message == "why"
    assert "--- Captured ---\nout" in protocol.fold_phases(phases, [["Captured", "out"]]).longrepr
    xpass = [dict(phases[0]), {**phases[1], "x": "reason"}, dict(phases[2])]
    assert protocol.fold_phases(xpass).outcome == "xpassed"


PHASE_CASES = [
    # (setup, call, teardown): None when pytest sent no such report
    ({"o": "passed"}, {"o": "passed"}, {"o": "passed"}),
    ({"o": "passed"}, {"o": "failed", "m": "boom", "l": "trace"}, {"o": "passed"}),
    ({"o": "failed", "m": "fixture", "l": "t"}, None, {"o": "passed"}),
    ({"o": "skipped", "m": "no db", "l": "t"}, None, {"o": "passed"}),
    ({"o": "passed"}, {"o": "skipped", "x": "later", "m": "m", "l": "t"}, {"o": "passed"}),
    ({"o": "passed"}, {"o": "passed", "x": "known"}, {"o": "passed"}),
    ({"o": "passed"}, {"o": "passed"}, {"o": "failed", "m": "td", "l": "tt"}),
    ({"o": "passed"}, {"o": "failed", "m": "c", "l": "x"}, {"o": "failed", "m": "td", "l": "y"}),
    ({"o": "passed"}, None, {"o": "failed", "m": "td", "l": "tt"}),
]


@pytest.mark.parametrize("case", PHASE_CASES)
def test_phases_that_simply_passed_may_come_as_their_time_alone(case):
    """The child sends a plain pass as seconds (``d``) and the other phases as a list:
    the fold is the one every phase as a list gives."""
    phases = [
        {"w": when, "d": d, **report}
        for when, d, report in zip(("setup", "call", "teardown"), (0.25, 0.5, 0.125), case)
        if report is not None
    ]
    plain = [p for p in phases if p["o"] == "passed" and set(p) == {"w", "o", "d"}]
    others = [p for p in phases if p not in plain]
    sections = [["Captured stdout call", "out"]]
    for with_sections in (None, sections):
        full = protocol.fold_phases(phases, with_sections)
        compact = protocol.fold_phases(others, with_sections, sum(p["d"] for p in plain))
        assert compact == full


def test_a_batch_makes_one_idle_period_after_its_last_done():
    config = parse_config({"suite": [{"name": "s"}]}, Path("/tmp/netra-supervisor.toml"))
    events: list = []
    ctx = RunContext(config=config, phase=config.phases[0], run_id=1, iteration=1,
                     phase_seq=1, emit=events.append)  # fmt: skip
    dog = wd.Watchdog(silence=60.0, grace=5.0, clock=lambda: 10.0)
    messages = Messages(
        SuiteState(config.suites[0], ctx),
        dog,
        default_deadline=7.0,
        stretch_deadline=120.0,
        paused=lambda: False,
    )
    ours, theirs = socket.socketpair()
    try:
        conn = Conn(ours, dog.track(), pid=1)
        passed = [{"w": "call", "o": "passed", "d": 0.1}]
        batch = [
            {"t": "start", "i": "t.py::a", "to": None},
            {"t": "done", "i": "t.py::a", "p": passed},
            {"t": "start", "i": "t.py::b", "to": None},
        ]
        messages.handle(conn, batch)
        assert conn.track.test is not None and conn.track.test.nodeid == "t.py::b"
        assert conn.track.other is None  # b runs: no idle period left behind
        messages.handle(conn, [{"t": "done", "i": "t.py::b", "p": passed}])
        assert conn.track.test is None
        assert conn.track.other is not None and conn.track.other.what == wd.IDLE
        kinds = [type(e) for e in events]
        assert kinds == [TestStarted, TestResult, TestStarted, TestResult]
    finally:
        ours.close()
        theirs.close()


def test_without_a_start_watcher_a_batch_reports_only_the_starts_still_running():
    """``every_start=False`` (no sink selects test_started): a start whose result came
    in the same read is left out; one still running at the read's end is reported,
    after the results before it. With ``every_start`` (the default), every start is."""
    config = parse_config({"suite": [{"name": "s"}]}, Path("/tmp/netra-supervisor.toml"))
    passed = [{"w": "call", "o": "passed", "d": 0.1}]
    batch = [
        {"t": "start", "i": "t.py::a", "to": None},
        {"t": "done", "i": "t.py::a", "p": passed},
        {"t": "start", "i": "t.py::b", "to": 3},
    ]
    seen: dict[bool, list] = {}
    for every in (True, False):
        events: list = []
        ctx = RunContext(config=config, phase=config.phases[0], run_id=1, iteration=1,
                         phase_seq=1, emit=events.append, every_start=every)  # fmt: skip
        dog = wd.Watchdog(silence=60.0, grace=5.0, clock=lambda: 10.0)
        state = SuiteState(config.suites[0], ctx)
        messages = Messages(
            state, dog, default_deadline=7.0, stretch_deadline=120.0, paused=lambda: False
        )
        ours, theirs = socket.socketpair()
        try:
            conn = Conn(ours, dog.track(), pid=1, worker="gw0")
            messages.handle(conn, batch)
            assert conn.track.test is not None and conn.track.test.nodeid == "t.py::b"
            messages.handle(conn, [{"t": "done", "i": "t.py::b", "p": passed}])
        finally:
            ours.close()
            theirs.close()
        seen[every] = [(type(e).__name__, e.nodeid) for e in events]
        started_b = [e for e in events if type(e) is TestStarted and e.nodeid == "t.py::b"]
        assert [(e.deadline, e.worker) for e in started_b] == [(3.0, "gw0")]
        assert state.done == {"t.py::a", "t.py::b"}
    assert seen[True] == [
        ("TestStarted", "t.py::a"),
        ("TestResult", "t.py::a"),
        ("TestStarted", "t.py::b"),
        ("TestResult", "t.py::b"),
    ]
    assert seen[False] == [
        ("TestResult", "t.py::a"),
        ("TestStarted", "t.py::b"),
        ("TestResult", "t.py::b"),
    ]
