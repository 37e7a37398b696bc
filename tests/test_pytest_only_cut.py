"""The pytest kind as the verify pass and ``stop_on_gate`` drive it: ``RunContext.only``
(with ``already_run`` after a ``--resume``) and ``RunContext.cut``; real pytest."""

from __future__ import annotations

import threading
from pathlib import Path

from cli_helpers import write

from supervisor.config import parse_config
from supervisor.core.events import SuiteFinished, TestResult, TestsCollected
from supervisor.core.kinds import RunContext
from supervisor.runners.pytest.kind import PytestSuiteKind


def project(tmp_path: Path, body: str):
    write(tmp_path / "t/test_x.py", body)
    data = {
        "suite": [{"name": "s", "args": ["t", "-p", "no:cacheprovider"]}],
        "phase": [{"name": "P1", "suites": ["s"]}],
    }
    return parse_config(data, tmp_path / "netra-supervisor.toml")


def run(config, **ctx_fields) -> list:
    events: list = []
    lock = threading.Lock()

    def emit(event) -> None:
        with lock:
            events.append(event)
        if ctx_fields.get("cut_when") and ctx_fields["cut_when"](event):
            ctx.cut.set()

    fields = {k: v for k, v in ctx_fields.items() if k != "cut_when"}
    ctx = RunContext(
        config=config, phase=config.phases[0], run_id=1, iteration=2, phase_seq=0,
        emit=emit, **fields,
    )  # fmt: skip
    PytestSuiteKind().run(config.suites[0], ctx)
    return events


def outcomes(events: list) -> dict[str, str]:
    return {e.nodeid.split("::")[1]: e.outcome for e in events if isinstance(e, TestResult)}


BODY = """
def test_a(): pass
def test_b(): assert False
def test_c(): pass
def test_d(): pass
"""


def test_only_runs_those_ids_and_ids_no_longer_collected_are_not_run(tmp_path):
    config = project(tmp_path, BODY)
    only = frozenset({"t/test_x.py::test_b", "t/test_x.py::test_d", "t/test_x.py::test_gone"})
    events = run(config, only=only)
    assert outcomes(events) == {"test_b": "failed", "test_d": "passed"}
    collected = [e.nodeids for e in events if isinstance(e, TestsCollected)]
    assert collected == [("t/test_x.py::test_b", "t/test_x.py::test_d")]
    assert events[-1].status == "ok"


def test_a_resumed_verify_pass_does_not_run_again_what_it_recorded(tmp_path):
    config = project(tmp_path, BODY)
    only = frozenset({"t/test_x.py::test_b", "t/test_x.py::test_d"})
    events = run(config, only=only, already_run=frozenset({"t/test_x.py::test_b"}))
    assert outcomes(events) == {"test_d": "passed"}


def test_cut_stops_the_suite_and_the_rest_gets_no_result(tmp_path):
    config = project(
        tmp_path,
        """
        import time, pytest
        @pytest.mark.parametrize("i", range(30))
        def test_n(i):
            if i > 3:
                time.sleep(0.3)
            assert i != 3
        """,
    )
    events = run(
        config,
        cut_when=lambda e: isinstance(e, TestResult) and e.outcome == "failed",
    )
    got = outcomes(events)
    assert got["test_n[3]"] == "failed" and 4 <= len(got) < 30
    assert set(got.values()) == {"passed", "failed"}
    last = events[-1]
    assert isinstance(last, SuiteFinished) and last.status == "cut"
    assert last.message == f"stopped: the phase's gate can no longer hold ({30 - len(got)} not run)"
