"""How long the runner lets messages pile up after a read (``pacing.py``): plain
arithmetic, no processes."""

from __future__ import annotations

import pytest

from supervisor.runners.pytest.pacing import (
    COALESCE,
    COALESCE_QUIET,
    QUIET_LINES,
    pause_after_read,
)


def test_news_is_read_at_the_short_pace():
    # failed-first, a verify pass, a retry: a slow trickle still gets the short pause
    assert pause_after_read(2, 1.0, news=True, at_most=10.0) == COALESCE


def test_a_quiet_suite_is_read_in_bigger_batches():
    # 1000 tests of 5 ms: ~20 lines per 50 ms: the long pause, ~40 tests per read
    assert pause_after_read(20, 0.05, news=False, at_most=10.0) == COALESCE_QUIET


def test_a_fast_talker_never_gets_long_enough_to_fill_its_socket():
    # 1500 lines a second: the pause leaves room for QUIET_LINES of them, no more
    pause = pause_after_read(300, 0.2, news=False, at_most=10.0)
    assert COALESCE < pause < COALESCE_QUIET
    assert pause == pytest.approx(QUIET_LINES * 0.2 / 300)
    # faster still: never below the short pause (each read then brings hundreds)
    assert pause_after_read(5000, 0.05, news=False, at_most=10.0) == COALESCE


@pytest.mark.parametrize("news", [True, False])
def test_the_watchdogs_next_deadline_always_caps_the_pause(news):
    assert pause_after_read(20, 0.05, news=news, at_most=0.01) == 0.01
    assert pause_after_read(20, 0.05, news=news, at_most=-0.5) == 0.0


def test_a_read_without_a_measure_gets_the_quiet_pause():
    assert pause_after_read(0, 0.0, news=False, at_most=10.0) == COALESCE_QUIET
    assert pause_after_read(30, 0.0, news=False, at_most=10.0) == COALESCE_QUIET


def test_news_is_awaited_until_the_tests_run_first_are_in_or_not_collected():
    from pathlib import Path

    from supervisor.config import parse_config
    from supervisor.core.kinds import RunContext
    from supervisor.runners.pytest.suite_run import SuiteRun

    config = parse_config({"suite": [{"name": "s"}]}, Path("/tmp/netra-supervisor.toml"))

    def suite_run(**ctx_fields) -> SuiteRun:
        ctx = RunContext(config=config, phase=config.phases[0], run_id=1, iteration=1,
                         phase_seq=1, emit=lambda e: None, **ctx_fields)  # fmt: skip
        return SuiteRun(config.suites[0], ctx)

    assert suite_run()._news_awaited() is False  # a plain run: the quiet pace
    assert suite_run(only=frozenset({"t.py::a"}))._news_awaited() is True  # verify, retry
    run = suite_run(run_first=("t.py::a", "t.py::gone"))
    assert run._news_awaited() is True  # nothing collected yet
    run.state.known.update({"t.py::a", "t.py::b"})  # collected, without t.py::gone
    assert run._news_awaited() is True  # t.py::a has not reported
    run.state.done.add("t.py::a")
    assert run._news_awaited() is False  # the failed-first verdict is in
