"""The waiting line through the supervisor: real pytest processes that hang in asyncio
code; each hung result's message names the test's own line (``core.waiting``).

(The hang zoo, ``test_hang_zoo.py``, checks the same for sync hangs, fixtures, an
import, a segfault and ``await ws.recv()`` on a real websocket server.)
"""

from __future__ import annotations

from pathlib import Path

from runner_helpers import run_pytest_kind

from supervisor.config import parse_config
from supervisor.core.events import TestHung, TestResult

SUITE = Path(__file__).parent / "fixtures" / "hang_zoo" / "waiting"


def line_of(path: str, mark: str) -> str:
    """``tests/x.py:LINE`` of the line carrying ``# WAIT mark``."""
    lines = (SUITE / path).read_text().splitlines()
    return f"{path}:{next(i for i, ln in enumerate(lines, 1) if f'# WAIT {mark}' in ln)}"


def test_asyncio_hangs_name_the_awaited_line(tmp_path):
    config = parse_config(
        {
            "suite": [{"name": "waits", "cwd": "waiting", "test_timeout": "1s"}],
            "watchdog": {"test_timeout": "1s", "grace": "2s", "silence_timeout": "5s"},
        },
        SUITE.parent / "netra-supervisor.toml",
    )
    events, _ = run_pytest_kind(
        config, env={"PYTHONDONTWRITEBYTECODE": "1"}, log_dir=str(tmp_path / "logs")
    )
    results = {e.nodeid.split("::")[1]: e for e in events if isinstance(e, TestResult)}
    assert {k: r.outcome for k, r in results.items()} == {
        "test_queue_get_never_fed": "hung",
        "test_asyncio_run_in_a_sync_test": "hung",
        "test_waits_in_a_helper_of_the_project": "hung",
        "test_after": "passed",
    }
    queue = results["test_queue_get_never_fed"].message
    assert queue.startswith(
        f"hung 1s at {line_of('tests/test_waits.py', 'queue')} in test_queue_get_never_fed:"
        " await queue.get() → asyncio/queues.py:"
    ), queue
    # a sync test running its own loop: the loop's task, not the event loop's select()
    run = results["test_asyncio_run_in_a_sync_test"].message
    assert run.startswith(
        f"hung 1s at {line_of('tests/test_waits.py', 'run')} in consume: await queue.get()"
    ), run
    # the innermost line of the project's own code is the helper's, not the test's
    helper = results["test_waits_in_a_helper_of_the_project"].message
    assert helper.startswith(
        f"hung 1s at {line_of('tests/helpers.py', 'helper')} in next_event: await queue.get()"
    ), helper
    hung = {e.nodeid.split("::")[1]: e for e in events if isinstance(e, TestHung)}
    assert hung["test_queue_get_never_fed"].where in queue
