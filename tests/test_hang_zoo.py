"""The hang zoo (issue 3's acceptance): every way a test can hang or die, in one suite.

``tests/fixtures/hang_zoo/zoo`` holds one file per case, each between passing tests
(``test_before``/``test_after``), except the file that hangs at import, which has no
test that could run. The suite runs once serially and once with ``workers = 2``; each
run must give every case its outcome, a dump that names the stuck line (each stuck
line carries a ``ZOO-STUCK <case>`` comment, so the dump's source text shows it), run
and record every other test, and leave no process behind: every process of the run
inherits a unique environment variable, and none carrying it may survive.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import process_helpers
import psutil
import pytest
from runner_helpers import run_pytest_kind

from supervisor.config import parse_config
from supervisor.core.events import (
    SuiteFinished,
    TestCrashed,
    TestHung,
    TestResult,
    TestStarted,
)

ZOO = Path(__file__).parent / "fixtures" / "hang_zoo"
MARK_ENV = "NETRA_HANG_ZOO_MARK"

#: file → (stuck test, its outcome, the case named by the ZOO-STUCK comment)
CASES = {
    "test_01_sleep.py": ("test_sleep_forever", "hung", "sleep"),
    "test_02_future.py": ("test_awaits_a_future_nobody_sets", "hung", "future"),
    "test_03_websocket.py": ("test_websocket_recv_never_answered", "hung", "websocket"),
    "test_04_deadlock.py": ("test_thread_deadlock", "hung", "deadlock"),
    "test_05_socket.py": ("test_blocking_recv_without_timeout", "hung", "socket"),
    "test_06_sigterm.py": ("test_ignores_sigterm", "hung", "sigterm"),
    "test_07_child_stdout.py": ("test_child_keeps_stdout_open", "hung", "child"),
    "test_08_fixture_setup.py": ("test_needs_the_resource", "hung", "setup"),
    "test_09_fixture_teardown.py": ("test_leaves_the_resource", "hung", "teardown"),
    "test_11_exit.py": ("test_exits", "crashed", "exit"),
    "test_12_segfault.py": ("test_segfaults", "crashed", "segfault"),
}
IMPORT_HANG = "test_10_import.py"

#: file → what its result's message names after the stuck line's ``FILE:LINE`` (the
#: waiting line, ``core.waiting``): the function or fixture, and the code it waits on
WAITING = {
    "test_01_sleep.py": " in test_sleep_forever: time.sleep(600)",
    "test_02_future.py": " in test_awaits_a_future_nobody_sets: await fut",
    "test_03_websocket.py": (
        " in test_websocket_recv_never_answered: await ws.recv() → websockets/asyncio/"
    ),
    "test_04_deadlock.py": " in test_thread_deadlock: with b:",
    "test_05_socket.py": " in test_blocking_recv_without_timeout: client.recv(1)",
    "test_06_sigterm.py": " in test_ignores_sigterm: time.sleep(600)",
    "test_07_child_stdout.py": " in test_child_keeps_stdout_open: child.wait() → subprocess.py:",
    "test_08_fixture_setup.py": " in fixture stuck_resource (setup): time.sleep(600)",
    "test_09_fixture_teardown.py": " in fixture sticky_resource (teardown): time.sleep(600)",
    "test_12_segfault.py": " in test_segfaults: ctypes.string_at(0)",
    IMPORT_HANG: " in <module>: time.sleep(600)",
}


def stuck_at(path: str) -> str:
    """``FILE:LINE`` of the file's ``ZOO-STUCK`` line."""
    lines = (ZOO / "zoo" / path).read_text().splitlines()
    return f"{path}:{next(i for i, ln in enumerate(lines, 1) if 'ZOO-STUCK' in ln)}"


def segv_dump(results: dict[str, TestResult]) -> str:
    return results["test_12_segfault.py::test_segfaults"].dump


def expected_outcomes() -> dict[str, str]:
    out: dict[str, str] = {}
    for path in sorted(CASES):
        stuck, outcome, _ = CASES[path]
        out[f"{path}::test_before"] = "passed"
        out[f"{path}::{stuck}"] = outcome
        out[f"{path}::test_after"] = "passed"
    out[IMPORT_HANG] = "error"
    return out


def marked_processes(mark: str) -> list[psutil.Process]:
    return process_helpers.marked_processes(MARK_ENV, mark)


def run_zoo(tmp_path: Path, workers: int, cwd: str = "zoo", redact=None) -> tuple[list, str]:
    mark = uuid.uuid4().hex
    config = parse_config(
        {
            "suite": [{"name": "zoo", "cwd": cwd, "workers": workers, "test_timeout": "2s"}],
            "watchdog": {"test_timeout": "2s", "grace": "1s", "silence_timeout": "3s"},
        },
        ZOO / "netra-supervisor.toml",
    )
    events, _ = run_pytest_kind(
        config,
        env={"PYTHONDONTWRITEBYTECODE": "1", MARK_ENV: mark},
        log_dir=str(tmp_path / "logs"),
        redact=redact,
    )
    return events, mark


@pytest.mark.parametrize(
    ("workers", "masked"),
    [(1, False), (2, False), (1, True)],
    ids=["serial", "workers2", "serial-masked-output"],
)
def test_hang_zoo(tmp_path, workers, masked):
    # masked: pytest's output goes through the masking copier (a run with [auth]), and
    # the crash dumps read from it must be the same
    t0 = time.monotonic()
    events, mark = run_zoo(tmp_path, workers, redact=(lambda s: s) if masked else None)
    elapsed = time.monotonic() - t0

    results: dict[str, TestResult] = {}
    for event in events:
        if isinstance(event, TestResult):
            assert event.nodeid not in results, f"two results for {event.nodeid}"
            results[event.nodeid] = event
    outcomes = {nodeid: r.outcome for nodeid, r in results.items()}
    # a result nobody expected says why it is there (its message and the start of its dump)
    unexpected = {
        n: f"{r.outcome}: {r.message}\n{(r.dump or '')[:2000]}"
        for n, r in results.items()
        if expected_outcomes().get(n) != r.outcome
    }
    assert outcomes == expected_outcomes(), f"after {elapsed:.1f}s: {unexpected}"

    hung_events = {e.nodeid: e for e in events if isinstance(e, TestHung)}
    for path, (stuck, outcome, case) in CASES.items():
        result = results[f"{path}::{stuck}"]
        if outcome == "hung":
            assert result.dump, f"{path}: no dump"
            assert f"ZOO-STUCK {case}" in result.dump, f"{path}: the dump misses the stuck line"
            # the message names the line it waits on, and what it waits in
            waiting = f"at {stuck_at(path)}{WAITING[path]}"
            assert result.message.startswith(f"hung 2s {waiting}"), result.message
            assert hung_events[result.nodeid].dump == result.dump
            assert hung_events[result.nodeid].where.startswith(waiting)
        else:
            assert "while running this test" in result.message
    assert set(hung_events) == {f"{p}::{c[0]}" for p, c in CASES.items() if c[1] == "hung"}
    crashed_events = {e.nodeid: e for e in events if isinstance(e, TestCrashed)}
    assert set(crashed_events) == {f"{p}::{c[0]}" for p, c in CASES.items() if c[1] == "crashed"}
    exit_cause = crashed_events["test_11_exit.py::test_exits"].cause
    assert ("exited with code 3" if workers == 1 else "died") in exit_cause
    assert crashed_events["test_12_segfault.py::test_segfaults"].dump == segv_dump(results)

    # a segfault's dump: the stacks faulthandler wrote as the process died
    segv = results["test_12_segfault.py::test_segfaults"].dump
    assert segv.startswith("Fatal Python error: Segmentation fault")
    assert 'test_12_segfault.py", line 9 in test_segfaults' in segv
    segv_message = results["test_12_segfault.py::test_segfaults"].message
    assert "SIGSEGV" in segv_message
    waiting = f"at {stuck_at('test_12_segfault.py')}{WAITING['test_12_segfault.py']}"
    assert waiting in segv_message, segv_message

    # the async cases: the dump shows the line the test awaits, not just the event loop
    for path in ("test_02_future.py", "test_03_websocket.py"):
        dump = results[f"{path}::{CASES[path][0]}"].dump
        assert "asyncio tasks not done" in dump
        tasks_part = dump.split("asyncio tasks not done", 1)[1]
        assert f"ZOO-STUCK {CASES[path][2]}" in tasks_part

    imported = results[IMPORT_HANG]
    assert imported.file == IMPORT_HANG
    assert "ZOO-STUCK import" in imported.dump
    assert "collecting" in imported.message
    assert f"at {stuck_at(IMPORT_HANG)}{WAITING[IMPORT_HANG]}" in imported.message

    started = {e.nodeid for e in events if isinstance(e, TestStarted)}
    assert started == set(expected_outcomes()) - {IMPORT_HANG}
    if workers > 1:
        assert all(r.worker.startswith("gw") for r in results.values() if "::" in r.nodeid)

    finished = [e for e in events if isinstance(e, SuiteFinished)]
    assert len(finished) == 1 and finished[0].status == "ok", finished
    assert "did not run" not in finished[0].message

    # no process of the run is left: not pytest, not a worker, not the test's own child
    deadline = time.monotonic() + 3
    while marked_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = marked_processes(mark)
    assert not left, [(p.pid, p.cmdline()) for p in left]
    assert elapsed < 80, f"the zoo took {elapsed:.1f}s"


def test_fixture_files_are_not_collected_here():
    # the zoo's files would hang this very run if they were collected as our own tests
    assert (ZOO / "conftest.py").read_text().count("collect_ignore_glob") == 1
    assert os.path.isfile(ZOO / "zoo" / "pytest.ini")


def test_hang_after_the_last_test_is_an_error_of_the_session(tmp_path):
    # a test leaves a non-daemon thread running: the session finishes, pytest never exits.
    # (Under xdist the stuck one is a worker, which xdist itself ends after 10 s.)
    events, mark = run_zoo(tmp_path, 1, cwd="exit_hang")
    outcomes = {e.nodeid: e.outcome for e in events if isinstance(e, TestResult)}
    assert outcomes == {
        "test_exit_hang.py::test_before": "passed",
        "test_exit_hang.py::test_leaves_a_thread_running": "passed",
        "test_exit_hang.py::test_after": "passed",
        "zoo::(session teardown)": "error",
    }
    (stuck,) = [e for e in events if isinstance(e, TestResult) and e.outcome == "error"]
    assert "had not exited after its deadline of 2s" in stuck.message
    assert "Thread zoo-forever" in stuck.dump and "_shutdown" in stuck.dump
    (finished,) = [e for e in events if isinstance(e, SuiteFinished)]
    assert finished.status == "ok"
    assert not [e for e in events if isinstance(e, TestHung)]
    time.sleep(0.2)
    assert not marked_processes(mark)


def test_a_slow_terminal_summary_is_not_a_hang_of_the_session(tmp_path):
    # the summary takes 3.5 s against a 2 s deadline and a 1 s grace: still no error
    events, mark = run_zoo(tmp_path, 1, cwd="slow_summary")
    outcomes = {e.nodeid: e.outcome for e in events if isinstance(e, TestResult)}
    assert outcomes == {
        "test_slow_summary.py::test_one": "passed",
        "test_slow_summary.py::test_two": "passed",
    }
    (finished,) = [e for e in events if isinstance(e, SuiteFinished)]
    assert finished.status == "ok", finished
    time.sleep(0.2)
    assert not marked_processes(mark)
