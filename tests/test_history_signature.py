"""Failure signatures: what is normalised, and what is kept apart."""

from __future__ import annotations

import pytest

from supervisor.store.signature import error_type, normalise, signature


@pytest.mark.parametrize(
    "a, b",
    [
        ("AssertionError: assert 3 == 4", "AssertionError: assert 17 == 4"),
        (
            "ValueError: <Session object at 0x7f3a2b10c0d0> closed",
            "ValueError: <Session object at 0x55d1e0a4b2f8> closed",
        ),
        (
            "RuntimeError: request 1b2e4c5d-aaaa-bbbb-cccc-0123456789ab failed",
            "RuntimeError: request 9f8e7d6c-1111-2222-3333-444455556666 failed",
        ),
        (
            "FileNotFoundError: [Errno 2] No such file: '/tmp/pytest-of-ci/pytest-12/test_a0/c.json'",
            "FileNotFoundError: [Errno 2] No such file: '/tmp/pytest-of-ci/pytest-97/test_a1/c.json'",
        ),
        (
            "KeyError: 'done' missing at 2026-11-24T18:41:43.123+00:00",
            "KeyError: 'done' missing at 2026-11-25T02:00:01Z",
        ),
        ("TimeoutError: no reply after 12:00:01", "TimeoutError: no reply after 09:13:59.5"),
        ("AssertionError: user_42 not found", "AssertionError: user_977 not found"),
        (
            "AssertionError: commit 3f9a2c1d8e7b missing",
            "AssertionError: commit a1b2c3d4e5f6 missing",
        ),
    ],
)
def test_same_cause_same_signature(a, b):
    assert a != b
    assert signature("failed", a) == signature("failed", b)


@pytest.mark.parametrize(
    "a, b",
    [
        ("AssertionError: assert x", "ValueError: assert x"),  # error type differs
        ("AssertionError: missing agent_started", "AssertionError: missing agent_completed"),
        ("TypeError: expected int64", "TypeError: expected int32"),  # digits in names stay
    ],
)
def test_different_causes_stay_apart(a, b):
    assert signature("failed", a) != signature("failed", b)


def test_signature_shape():
    assert signature("failed", "ValueError: id 12 at 0xdeadbeef") == "ValueError: id <n> at <addr>"
    # no exception type in the message: the outcome stands in for it
    assert signature("hung", "still running after its deadline of 2s") == (
        "hung: still running after its deadline of <n>s"
    )
    assert signature("crashed", "") == "crashed"
    assert signature("failed", None) == "failed"
    # only the first line counts
    assert signature("failed", "OSError: boom 1\nsecond line 2") == "OSError: boom <n>"
    assert error_type("failed", "pkg.errors.ApiError: 500") == "pkg.errors.ApiError"
    assert error_type("failed", "Failed: Timeout >2.0s") == "Failed"  # pytest.fail
    assert error_type("failed", "KeyError") == "KeyError"
    assert error_type("failed", "Errors were found: 3") == "failed"  # not a type
    assert len(normalise("x" * 1000)) == 300


def test_a_hung_message_with_its_waiting_line_keeps_its_line_apart_from_run_to_run_parts():
    message = (
        "hung 5s at tests/test_p1_critical.py:90 in test_stream: agent_ws.recv()"
        " → websockets/sync/messages.py:90 frames.get"
    )
    assert signature("hung", message) == (
        "hung: hung <n>s at tests/test_p1_critical.py:<n> in test_stream: agent_ws.recv()"
        " → websockets/sync/messages.py:<n> frames.get"
    )
