"""What one suite run knows and reports: its tests, its results, its attempts.

:class:`SuiteState` is the one place a result is reported from (``result``), so the
counts the restart decisions read (failing, casualties) cannot drift from what was
emitted.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from supervisor.core.events import FAILING_OUTCOMES, SuiteFinished, TestResult
from supervisor.runners.pytest import protocol

if TYPE_CHECKING:
    from supervisor.config import SuiteConfig
    from supervisor.core.kinds import RunContext
    from supervisor.core.watchdog import Track

CASUALTIES = frozenset({"hung", "crashed"})


@dataclass
class Attempt:
    """One pytest process (with its xdist workers): started, watched, ended."""

    number: int
    proc: subprocess.Popen | None = None
    log_path: str = ""
    spawn_track: Track | None = None  # watches the start until the first connection
    session: bool = False  # some process of this attempt reached pytest_sessionstart
    main_finished: bool = False  # the main process sent "fin"
    exitstatus: int | None = None
    returncode: int | None = None
    casualties: int = 0  # tests recorded crashed/hung in this attempt
    results: int = 0
    hung: bool = False  # the process group was killed for a hang
    worker_losses: int = 0  # xdist workers killed (hung) or dead (crashed) mid-test
    collect_hang: bool = False  # a file hung while being imported: restart without it
    stuck: tuple[str, str] | None = None  # (message, dump): hung before any file/test
    tail: str = ""  # the end of pytest's own output, read once it exited

    @property
    def main_pid(self) -> int:
        return self.proc.pid if self.proc is not None else 0


@dataclass
class SuiteState:
    """The suite's tests and results across its attempts."""

    suite: SuiteConfig
    ctx: RunContext
    collect_only: bool = False
    order: list[str] = field(default_factory=list)  # collected nodeids, first-seen order
    known: set[str] = field(default_factory=set)
    done: set[str] = field(default_factory=set)  # nodeids (and collectors) with a result
    casualties: set[str] = field(default_factory=set)  # those recorded hung or crashed
    failing: int = 0  # failed, error, hung and crashed results so far
    ignored: list[str] = field(default_factory=list)  # files that hung/died while imported
    startup_message: str | None = None
    attempt: Attempt = field(default_factory=lambda: Attempt(0))

    def __post_init__(self) -> None:
        self.done |= set(self.ctx.already_run)  # a resumed run starts with the recorded

    def remaining(self) -> list[str]:
        return [n for n in self.order if n not in self.done]

    def result(self, nodeid: str, outcome: str, **fields: Any) -> None:
        fields.setdefault("file", protocol.file_of(nodeid))
        self.ctx.report(TestResult, self.suite.name, nodeid=nodeid, outcome=outcome, **fields)
        self.done.add(nodeid)
        if outcome in FAILING_OUTCOMES:
            self.failing += 1
        self.attempt.results += 1
        if outcome in CASUALTIES:
            self.casualties.add(nodeid)
            self.attempt.casualties += 1

    def finished(self, status: str, message: str = "") -> None:
        if not self.collect_only:
            self.ctx.report(SuiteFinished, self.suite.name, status=status, message=message)
