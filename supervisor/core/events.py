"""The typed events that flow through a run.

Runners produce them, the loop adds the lifecycle ones, and every consumer (the live
model, the SQLite writer, the log sinks, the plugin hooks, the headless reporter)
reads the same objects. Events name iterations and phases by their sequence number
within the run (1-based), never by database row id, so nobody has to wait for SQLite.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone

#: Every value ``TestResult.outcome`` can take (the ``results.outcome`` contract).
OUTCOMES = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "hung", "crashed")

#: Outcomes that count as "not failing" for gates and the all-pass stop condition
#: (pytest's own exit status treats a non-strict xpass as success too).
GREEN_OUTCOMES = frozenset({"passed", "skipped", "xfailed", "xpassed"})
#: The rest: what fails a gate, shows in the failures pane and counts toward -x.
FAILING_OUTCOMES = frozenset(OUTCOMES) - GREEN_OUTCOMES

#: The count key (beside the outcomes) of tests that did not pass on their first
#: attempt but passed on a retry (``[run] retries``): flaky, counted apart from
#: ``passed``. Whether it fails a gate is ``[run] flaky_counts_as``.
FLAKY = "flaky"

#: The verify pass (``[run] verify``) is the phase with this seq and name; the
#: configured phases are 1, 2 … whether or not an iteration has one.
VERIFY_SEQ = 0
VERIFY_NAME = "verify"


def utc_now() -> str:
    """UTC ISO-8601 text, the timestamp format of every table."""
    return utc_at(time.time())


#: (a whole second since the epoch, its text up to the seconds): the last one formatted
_second: tuple[int, str] = (-1, "")


def utc_at(wall: float) -> str:
    """``wall`` (seconds since the epoch, ``time.time()``) as :func:`utc_now`'s text:
    ``datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")``.

    Every result has one, and ``datetime`` takes ~2.5 us to make it: the seconds' part
    is formatted once per second, the milliseconds appended. The microseconds are
    rounded (half to even) as ``datetime`` rounds them, then cut to milliseconds."""
    global _second
    frac, whole = math.modf(wall)
    if frac < 0.0:  # before 1970: not a clock reading this tool meets
        return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")
    sec, us = int(whole), round(frac * 1e6)
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    known, text = _second
    if sec != known:
        text = datetime.fromtimestamp(sec, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        _second = (sec, text)
    return f"{text}.{us // 1000:03d}+00:00"


def utc_of_monotonic(monotonic_at: float) -> str:
    """A ``time.monotonic()`` reading of this process (``TestStarted.at``) as
    :func:`utc_now`'s text."""
    return utc_at(time.time() - (time.monotonic() - monotonic_at))


@dataclass(frozen=True, slots=True)
class Event:
    """Base class: ``kind`` is the stable name sinks and filters use."""

    kind = "event"


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    kind = "run_started"
    run_id: int
    started_at: str
    target: int
    config_path: str
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    kind = "run_finished"
    run_id: int
    finished_at: str
    status: str  # passed | failed | interrupted | error
    exit_code: int
    iterations: int


@dataclass(frozen=True, slots=True)
class IterationStarted(Event):
    kind = "iteration_started"
    run_id: int
    iteration: int
    started_at: str
    #: seconds the iteration should take, estimated from the history as it starts
    #: (``iterations.eta_s``; None: no history to tell). The session fills it in.
    eta_s: float | None = None


@dataclass(frozen=True, slots=True)
class IterationFinished(Event):
    kind = "iteration_finished"
    run_id: int
    iteration: int
    finished_at: str
    #: passed | failed | gate-failed | verify-failed | deploy-failed | interrupted
    status: str
    counts: dict[str, int]
    deploy_revision: str | None = None
    #: tests new / still failing / fixed / flaky in this iteration, each counted once
    #: by its last result (``core.changes``); the session fills it in
    changes: dict[str, int] | None = None
    #: results of quarantined tests per outcome (only outcomes that occurred); they are
    #: not in ``counts``: they never fail a gate or the exit code
    quarantined: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeployFinished(Event):
    kind = "deploy_finished"
    run_id: int
    iteration: int
    backend: str
    revision: str | None
    started_at: str
    duration: float
    status: str  # ok | failed | skipped
    message: str = ""


@dataclass(frozen=True, slots=True)
class PhaseStarted(Event):
    kind = "phase_started"
    run_id: int
    iteration: int
    #: 1-based position of the configured phase; 0 is the verify pass (``verify``)
    phase: int
    name: str
    gate: str
    suites: tuple[str, ...]
    started_at: str
    impact: str = ""


@dataclass(frozen=True, slots=True)
class PhaseFinished(Event):
    kind = "phase_finished"
    run_id: int
    iteration: int
    phase: int
    name: str
    gate: str
    status: str  # passed | failed | gate-failed | interrupted
    gate_held: bool
    counts: dict[str, int]
    duration: float
    #: tests the phase had but did not run, and why (``note``): ``stop_on_gate`` cut
    #: the phase, or a verify pass found them no longer collected
    not_run: int = 0
    note: str = ""
    #: results of quarantined tests per outcome, kept out of ``counts`` (see above)
    quarantined: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SuiteStarted(Event):
    kind = "suite_started"
    iteration: int
    phase: int
    suite: str
    suite_kind: str


@dataclass(frozen=True, slots=True)
class SuiteFinished(Event):
    kind = "suite_finished"
    iteration: int
    phase: int
    suite: str
    #: ok | error (the suite could not run at all) | interrupted | cut (its phase's
    #: gate could no longer hold: the rest was not run)
    status: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class TestsCollected(Event):
    """The nodeids a suite is about to run (may arrive more than once per suite)."""

    __test__ = False  # not a pytest test class
    kind = "tests_collected"
    iteration: int
    phase: int
    suite: str
    nodeids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TestStarted(Event):
    __test__ = False  # not a pytest test class
    kind = "test_started"
    iteration: int
    phase: int
    suite: str
    nodeid: str
    worker: str = ""
    deadline: float | None = None  # seconds allowed, when a watchdog applies
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class TestResult(Event):
    """One finished test execution (the ``results`` table contract)."""

    __test__ = False  # not a pytest test class
    kind = "test_result"
    iteration: int
    phase: int
    suite: str
    nodeid: str
    outcome: str
    duration: float = 0.0
    started_at: str = ""
    file: str = ""
    message: str = ""
    longrepr: str = ""
    dump: str = ""
    #: 1 for a test's first run in its phase, 2, 3 … for its retries (``[run] retries``)
    attempt: int = 1
    worker: str = ""
    #: against the test's previous result (``core.changes``): "new" | "still" for a
    #: result that did not pass, "fixed" for a pass after one; None otherwise. The
    #: session fills it in; the history computes it at query time (no column).
    change: str | None = None
    #: the test matched an entry of the quarantine file (``[run] quarantine``): it ran
    #: and is recorded, but never fails a gate or the exit code
    quarantined: bool = False
    #: a retry that passed after attempt 1 did not (``results.flaky``)
    flaky: bool = False


@dataclass(frozen=True, slots=True)
class TestHung(Event):
    """A test passed its deadline or went silent; the result follows as ``hung``."""

    __test__ = False  # not a pytest test class
    kind = "test_hung"
    iteration: int
    phase: int
    suite: str
    nodeid: str
    deadline: float
    reason: str  # "deadline" | "silence" | "killed" (a person asked: the TUI's k)
    dump: str = ""
    #: where it waited: ``at tests/a.py:9 in test_x: ws.recv() → …`` (``core.waiting``)
    where: str = ""


@dataclass(frozen=True, slots=True)
class TestCrashed(Event):
    """The process running a test died under it; the result follows as ``crashed``.

    ``cause`` says how it died ("exit code 3", "signal SIGSEGV", "xdist worker gw1 died");
    ``dump`` holds what the dying process wrote (faulthandler's stacks on a segfault).
    """

    __test__ = False  # not a pytest test class
    kind = "test_crashed"
    iteration: int
    phase: int
    suite: str
    nodeid: str
    cause: str
    dump: str = ""
    #: the signal (when ``cause`` does not name it) and the test's frame in the dump
    where: str = ""


@dataclass(frozen=True, slots=True)
class Evidence(Event):
    """What the backend said while a non-passing test ran (an ``evidence`` row).

    Names its result the way events do (iteration, phase, suite, nodeid, attempt);
    the history writer finds the row. ``lines`` is redacted, newline-joined and bounded
    (``omitted`` lines left out); ``first_at``/``last_at`` are UTC ISO-8601 when known.
    """

    kind = "evidence"
    iteration: int
    phase: int
    suite: str
    nodeid: str
    attempt: int
    source: str  # "log:<path>" | "plugin:<name>"
    lines: str
    omitted: int = 0
    first_at: str | None = None
    last_at: str | None = None


@dataclass(frozen=True, slots=True)
class LogLine(Event):
    """Something a person should see in the log pane (and the ``logs`` table)."""

    kind = "log"
    level: str  # debug | info | warning | error
    source: str
    text: str
    at: str = field(default_factory=utc_now)


@dataclass(frozen=True, slots=True)
class PluginFailed(Event):
    """A plugin failed to load or raised in a hook and was quarantined."""

    kind = "plugin_error"
    plugin: str
    hook: str
    error: str
    at: str = field(default_factory=utc_now)


def count_outcomes(outcomes: list[str] | tuple[str, ...]) -> dict[str, int]:
    """Counts per outcome with every outcome key present (zero when absent), and
    :data:`FLAKY` (a flaky test counts there, not under ``passed``)."""
    counts = dict.fromkeys((*OUTCOMES, FLAKY), 0)
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts
