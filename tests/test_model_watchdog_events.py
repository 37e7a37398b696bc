"""The live model folds the watchdog's events: hung and crashed tests reach the views."""

from __future__ import annotations

from supervisor.core.events import (
    IterationStarted,
    PhaseStarted,
    TestCrashed,
    TestHung,
    TestResult,
    TestStarted,
)
from supervisor.core.model import RunModel


def test_hung_and_crashed_tests_show_in_log_failures_and_counts():
    model = RunModel()
    for event in (
        IterationStarted(1, 1, "now"),
        PhaseStarted(1, 1, 1, "P1", "all-pass", ("s",), "now"),
        TestStarted(1, 1, "s", "t.py::hang", worker="gw0", deadline=2.0),
        TestStarted(1, 1, "s", "t.py::boom", worker="gw1", deadline=2.0),
        TestHung(1, 1, "s", "t.py::hang", 2.0, "deadline", "stuck at t.py:3"),
        TestResult(1, 1, "s", "t.py::hang", "hung", dump="stuck at t.py:3"),
        TestCrashed(
            1, 1, "s", "t.py::boom", "pytest was killed by SIGSEGV", where="at t.py:9 in boom: f()"
        ),
        TestResult(1, 1, "s", "t.py::boom", "crashed"),
    ):
        model.apply(event)
    with model.read() as m:
        assert m.running == {}
        texts = [line.text for line in m.log]
        assert "hung (deadline, 2s): t.py::hang" in texts
        assert "crashed (pytest was killed by SIGSEGV): t.py::boom at t.py:9 in boom: f()" in texts
        assert [f.nodeid for f in m.failures] == ["t.py::boom", "t.py::hang"]
        counts = m.phases[0].counts
        assert (counts["hung"], counts["crashed"]) == (1, 1)


def test_crash_lines_reach_a_view_that_reads_new_log_lines():
    """Views take the lines past the ``log_seq`` they last saw: a crash line must
    advance it, or the TUI's log pane never shows it."""
    model = RunModel()
    seen = model.snapshot().log_seq
    model.apply(TestCrashed(1, 1, "s", "t.py::boom", "pytest was killed by SIGSEGV"))
    view = model.snapshot(log_seq=seen)
    assert [line.text for line in view.log] == [
        "crashed (pytest was killed by SIGSEGV): t.py::boom"
    ]
