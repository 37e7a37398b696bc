"""The headless reporter: what a CI log or a tmux pane shows for a run."""

from __future__ import annotations

import io

from supervisor.core.events import (
    IterationFinished,
    IterationStarted,
    PhaseFinished,
    PhaseStarted,
    RunFinished,
    RunStarted,
    TestCrashed,
    TestHung,
    TestResult,
    TestsCollected,
    count_outcomes,
)
from supervisor.headless import HeadlessReporter, dump_digest

DUMP = """Thread MainThread (id 1):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/venv/site-packages/_pytest/main.py", line 333, in wrap_session
    session.exitstatus = doit(config, session) or 0
  File "/repo/tests/test_ws.py", line 12, in test_stream
    asyncio.run(main())
  File "/usr/lib/python3.11/selectors.py", line 468, in select
    fd_event_list = self._selector.poll(timeout, max_ev)

asyncio tasks not done (1):
<Task pending name='Task-1' coro=<main() running at /repo/tests/test_ws.py:9>>
  File "/repo/tests/test_ws.py", line 9, in main
"""


def test_dump_digest_shows_where_it_is_stuck_not_how_pytest_got_there():
    digest = "\n".join(dump_digest(DUMP))
    assert "runpy" not in digest
    assert "selectors.py" in digest  # the innermost frame
    assert "test_ws.py:9" in digest and 'test_ws.py", line 9, in main' in digest


def test_dump_digest_of_unstructured_text_is_its_head():
    assert dump_digest("one\ntwo\nthree", max_lines=2) == ["one", "two"]


def feed(reporter: HeadlessReporter, events) -> str:
    for event in events:
        reporter(event)
    return reporter.out.getvalue()


def test_phase_lines_progress_target_and_summary():
    out = io.StringIO()
    reporter = HeadlessReporter(out=out, progress_every=0.0)
    results = [TestResult(1, 1, "p1", f"t{i}", "passed") for i in range(3)]
    results.append(TestResult(1, 1, "p1", "t3", "failed", message="AssertionError: boom"))
    counts = count_outcomes([r.outcome for r in results])
    text = feed(
        reporter,
        [
            RunStarted(7, "now", 1000, "netra-supervisor.toml"),
            IterationStarted(7, 1, "now"),
            PhaseStarted(7, 1, 1, "P1 critical", "all-pass", ("p1",), "now", "$120K MRR"),
            TestsCollected(1, 1, "p1", tuple(f"t{i}" for i in range(4))),
            *results,
            PhaseFinished(7, 1, 1, "P1 critical", "all-pass", "gate-failed", False, counts, 1.5),
            IterationFinished(7, 1, "later", "gate-failed", counts),
            RunFinished(7, "later", "failed", 1, 1),
        ],
    )
    assert "▶ P1 critical: suites p1 · gate all-pass · $120K MRR" in text
    assert "… P1 critical: 1/4 done" in text  # progress knows the collected total
    assert "✖ P1 critical: 4 tests · 3 passed · 1 failed · gate all-pass FAILED" in text
    assert "passing 3 / target 1000" in text
    summary = text.splitlines()[-3:]
    assert summary[0] == "── summary ──"
    assert summary[1].startswith("iteration 1: gate-failed · 3 passed · 1 failed (")
    assert "run 7 failed after 1 iteration(s) → exit 1" in summary[2]


def test_progress_is_throttled():
    out = io.StringIO()
    reporter = HeadlessReporter(out=out, progress_every=3600.0)
    feed(reporter, [PhaseStarted(1, 1, 1, "P", "none", ("s",), "now")])
    text = feed(reporter, [TestResult(1, 1, "s", f"t{i}", "passed") for i in range(500)])
    assert "…" not in text


def test_hung_test_line_and_digest():
    out = io.StringIO()
    text = feed(
        HeadlessReporter(out=out),
        [TestHung(1, 1, "ws", "tests/test_ws.py::test_stream", 30.0, "deadline", DUMP)],
    )
    assert "HUNG tests/test_ws.py::test_stream: past its deadline (deadline 30s)" in text
    assert "test_ws.py:9" in text
    where = "at tests/test_ws.py:9 in test_stream: await ws.recv()"
    event = TestHung(1, 1, "ws", "tests/test_ws.py::test_stream", 30.0, "deadline", DUMP, where)
    text = feed(HeadlessReporter(out=io.StringIO()), [event])
    assert (
        f"HUNG tests/test_ws.py::test_stream: past its deadline (deadline 30s), waiting {where}"
        in text
    )


def test_crashed_test_line_and_digest():
    out = io.StringIO()
    segv = 'Fatal Python error: Segmentation fault\n\n  File "/repo/tests/t.py", line 9 in test_x\n'
    text = feed(
        HeadlessReporter(out=out),
        [TestCrashed(1, 1, "s", "tests/t.py::test_x", "pytest was killed by SIGSEGV", segv)],
    )
    assert "CRASHED tests/t.py::test_x: pytest was killed by SIGSEGV" in text
    assert "t.py" in text.split("CRASHED", 1)[1].split("\n", 1)[1]


def test_closed_output_does_not_stop_the_run():
    out = io.StringIO()
    reporter = HeadlessReporter(out=out)
    out.close()
    reporter.line("still fine")  # no exception


def test_reporter_masks_secrets_in_every_line():
    from supervisor.redact import Redactor

    out = io.StringIO()
    reporter = HeadlessReporter(out=out, redact=Redactor(["hunter2-secret"]))
    reporter(TestResult(1, 1, "s", "t", "failed", message="token hunter2-secret leaked"))
    reporter.verbose = True
    reporter(TestResult(1, 1, "s", "t2", "failed", message="token hunter2-secret leaked"))
    assert "hunter2-secret" not in out.getvalue() and "token *** leaked" in out.getvalue()


def test_the_verify_pass_shows_each_re_run_test_and_a_cut_phase_says_what_was_not_run():
    out = io.StringIO()
    verify = [
        TestResult(2, 0, "p1", "tests/t.py::test_fixed", "passed"),
        TestResult(2, 0, "p1", "tests/t.py::test_still", "failed", message="AssertionError: 200"),
        TestResult(2, 0, "p1", "tests/t.py::test_stuck", "hung", message="past its deadline"),
    ]
    counts = count_outcomes([r.outcome for r in verify])
    text = feed(
        HeadlessReporter(out=out, progress_every=3600.0),
        [
            IterationStarted(7, 2, "now"),
            PhaseStarted(7, 2, 0, "verify", "all-pass", ("p1",), "now", "re-runs 3 tests …"),
            *verify,
            PhaseFinished(7, 2, 0, "verify", "all-pass", "gate-failed", False, counts, 0.5),
            IterationFinished(7, 2, "later", "verify-failed", counts),
            PhaseFinished(
                7, 3, 1, "P1", "all-pass", "gate-failed", False, counts, 0.5,
                not_run=24, note="the gate can no longer hold",
            ),
        ],
    )  # fmt: skip
    assert "▶ verify: suites p1 · gate all-pass · re-runs 3 tests …" in text
    assert "  ✔ passed tests/t.py::test_fixed\n" in text
    assert "  ✖ failed tests/t.py::test_still: AssertionError: 200" in text
    assert "  ✖ hung tests/t.py::test_stuck: past its deadline" in text
    assert "✖ verify: 3 tests · 1 passed · 1 failed · 1 hung · gate all-pass FAILED" in text
    assert "iteration 2: verify-failed" in text
    assert "FAILED (0.5s) · 24 not run (the gate can no longer hold)" in text
    # outside the verify pass, results are not listed one by one (without -v)
    assert text.count("tests/t.py::") == 3
