"""The failures pane's groups (plain data, no app): one signature everywhere."""

from __future__ import annotations

from supervisor.core.events import TestResult
from supervisor.store.signature import signature
from supervisor.tui.widgets.failures import FailureGroups, group_key


def failed(nodeid: str, message: str, iteration: int = 1, outcome: str = "failed") -> TestResult:
    return TestResult(iteration, 1, "s", nodeid, outcome, message=message)


def test_groups_use_the_signature_of_history_failures_and_remember_where_first_seen():
    groups = FailureGroups()
    groups.add_newest_first(
        (
            failed("t.py::b", "AssertionError: user 17 got 503 at 2026-12-01T10:00:02Z"),
            failed("t.py::a", "AssertionError: user 4 got 503 at 2026-12-01T10:00:01Z"),
            failed("t.py::c", "hung 5s at t.py:9 in test_c: ws.recv()", outcome="hung"),
        ),
        revision="abc1234def99",
    )
    shown = groups.newest_first()
    assert [(g.outcome, g.count) for g in shown] == [("failed", 2), ("hung", 1)]
    assert shown[0].key == signature("failed", "AssertionError: user 4 got 503 at 2026-12-01")
    assert shown[0].key == group_key(shown[0].results[0])
    assert shown[1].key == "hung: hung <n>s at t.py:<n> in test_c: ws.recv()"
    assert shown[0].first_seen_text() == "1 @ abc1234def"

    # the next iteration starts the pane over; the signature keeps its first sighting
    groups.clear()
    groups.add_newest_first(
        (failed("t.py::a", "AssertionError: user 5 got 503 at 2026-12-02T01:00:00Z", 2),),
        revision="fff",
    )
    (again,) = groups.newest_first()
    assert (again.first_iteration, again.first_revision) == (1, "abc1234def99")
    groups.add_newest_first((failed("t.py::d", "KeyError: 'x'", iteration=2),), revision="fff")
    assert groups.newest_first()[0].first_seen_text() == "2 @ fff"
