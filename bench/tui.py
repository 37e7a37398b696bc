#!/usr/bin/env python3
"""Firehose: can the TUI keep up with 2000 results a second without stalling?

A benchmark (a report, not a test). It runs the real ``SupervisorApp`` headless
(``App.run_test``, 120x40) over a real ``RunModel``. A feeder thread, standing in for
the loop thread, folds events into the model exactly as the bus does: for every test
a ``TestStarted`` then a ``TestResult`` (4 workers in turn; 90 % passed, 6 % failed
with one of 40 messages, 2 % skipped, 1 % hung with a dump, 1 % error), and a log line
every 100 tests. The app pulls from the model at its normal 10 Hz.

Phase 1 (the measured one): 2000 results/s for ``--seconds`` (10) seconds. Printed:

* CPU share of the process (user+sys over wall, 100 % = one core), and the same minus
  the feeder thread's own CPU (``time.thread_time`` there), i.e. the app's share;
* the worst event-loop stall: a coroutine on the app's event loop sleeps 5 ms in a
  loop and records how late it wakes up;
* how many refreshes the app applied (about 10 per second expected).

Phase 2 (memory): the feeder goes on at ``--fill-rate`` results/s until 100 000
results; RSS is printed after 10 000 and after 100 000 (the model and the panes are
bounded, so it must not grow with the count).

Targets: CPU <= 25 % of one core, worst stall < 50 ms, RSS(100k) - RSS(10k) <= 50 MB.
Each is printed PASS or MISS; the exit code is 0 (a report).

Usage::

    .venv/bin/python bench/tui.py
    .venv/bin/python bench/tui.py --seconds 5 --total 30000     # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time

import psutil

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from supervisor.core.events import (  # noqa: E402
    IterationStarted,
    LogLine,
    PhaseStarted,
    RunStarted,
    TestResult,
    TestsCollected,
    TestStarted,
)
from supervisor.core.model import RunModel  # noqa: E402
from supervisor.tui.app import SupervisorApp  # noqa: E402

AT = "2026-01-01T00:00:00.000+00:00"
DUMP = "Thread MainThread:\n" + '  File "tests/test_ws.py", line 42, in test_stream\n' * 30


class Feeder(threading.Thread):
    """Folds test events into the model at a given rate, in 10 ms slices."""

    def __init__(self, model: RunModel, total: int) -> None:
        super().__init__(name="feeder", daemon=True)
        self.model = model
        self.total = total
        self.rate = 2000.0
        self.sent = 0
        self.cpu = 0.0  # this thread's own CPU seconds
        self.marks: dict[int, threading.Event] = {}
        self.stop = threading.Event()

    def mark(self, count: int) -> threading.Event:
        return self.marks.setdefault(count, threading.Event())

    def event_for(self, i: int) -> tuple[TestStarted, TestResult]:
        nodeid = f"tests/test_{i // 100 % 50}.py::test_case_{i}"
        worker = f"gw{i % 4}"
        r = i % 100
        if r < 90:
            result = TestResult(1, 1, "e2e", nodeid, "passed", 0.01, AT, worker=worker)
        elif r < 96:
            msg = f"AssertionError: expected 200, got {500 + i % 40}"
            result = TestResult(
                1, 1, "e2e", nodeid, "failed", 0.2, AT, message=msg,
                longrepr="E   " + msg + "\n" * 3, worker=worker,
            )  # fmt: skip
        elif r < 98:
            result = TestResult(1, 1, "e2e", nodeid, "skipped", 0.0, AT, message="no key")
        elif r < 99:
            result = TestResult(
                1, 1, "e2e", nodeid, "hung", 30.0, AT,
                message="still running after its deadline of 30s", dump=DUMP, worker=worker,
            )  # fmt: skip
        else:
            result = TestResult(1, 1, "e2e", nodeid, "error", 0.1, AT, message="fixture boom")
        return TestStarted(1, 1, "e2e", nodeid, worker, 30.0), result

    def run(self) -> None:
        t_cpu = time.thread_time()
        apply = self.model.apply
        start = time.perf_counter()
        base = 0  # results sent when the current rate began
        while self.sent < self.total and not self.stop.is_set():
            due = base + int((time.perf_counter() - start) * self.rate)
            while self.sent < min(due, self.total):
                started, result = self.event_for(self.sent)
                apply(started)
                apply(result)
                self.sent += 1
                if self.sent % 100 == 0:
                    apply(LogLine("info", "bench", f"{self.sent} results", AT))
                mark = self.marks.get(self.sent)
                if mark is not None:
                    mark.set()
            if self.rate != self._rate_seen:
                start, base, self._rate_seen = time.perf_counter(), self.sent, self.rate
            time.sleep(0.01)
        self.cpu = time.thread_time() - t_cpu

    _rate_seen = 2000.0


async def bench(seconds: float, total: int, fill_rate: float) -> None:
    model = RunModel(until="all-pass", max_iterations=50, max_duration=72000.0)
    model.apply(RunStarted(1, AT, 100_000, "bench.toml"))
    model.apply(IterationStarted(1, 1, AT))
    model.apply(PhaseStarted(1, 1, 1, "P1 firehose", "none", ("e2e",), AT, "bench"))
    model.apply(TestsCollected(1, 1, "e2e", tuple(f"c{i}" for i in range(total))))
    app = SupervisorApp(model)
    proc = psutil.Process()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        feeder = Feeder(model, total)
        at_10k = feeder.mark(10_000)
        phase1_end = feeder.mark(int(2000 * seconds))
        worst = 0.0
        cpu0, wall0, refresh0 = proc.cpu_times(), time.perf_counter(), app.refreshes
        feeder.start()
        while not phase1_end.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.005)
            worst = max(worst, time.perf_counter() - t - 0.005)
        cpu1, wall1, refresh1 = proc.cpu_times(), time.perf_counter(), app.refreshes
        feeder_cpu_phase1 = _feeder_cpu(feeder)
        feeder.rate = fill_rate
        while not at_10k.is_set():
            await asyncio.sleep(0.05)
        rss_10k = proc.memory_info().rss
        while feeder.is_alive():
            await asyncio.sleep(0.05)
        for _ in range(3):  # let the app apply the last delta
            await asyncio.sleep(0.15)
        rss_total = proc.memory_info().rss
        shown = int(app.count_pane.query_one("#passing").value)
        sent = feeder.sent
    wall = wall1 - wall0
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    share = cpu / wall
    app_share = (cpu - feeder_cpu_phase1) / wall
    growth = (rss_total - rss_10k) / 2**20
    expected_passed = sum(1 for i in range(sent) if i % 100 < 90)
    print(f"phase 1: {int(2000 * seconds)} results in {wall:.2f}s at 2000/s")
    print(f"  process CPU: {share * 100:.1f}% of one core (feeder included)")
    print(f"  app CPU (process minus feeder thread): {app_share * 100:.1f}% of one core")
    print(f"  worst event-loop stall: {worst * 1000:.1f} ms")
    print(f"  refreshes applied: {refresh1 - refresh0} ({(refresh1 - refresh0) / wall:.1f}/s)")
    print(f"phase 2: {sent} results in all (fill rate {fill_rate:g}/s)")
    print(f"  RSS after 10 000: {rss_10k / 2**20:.1f} MB; after {sent}: {rss_total / 2**20:.1f} MB")
    print(f"  RSS growth: {growth:+.1f} MB")
    print(f"  count on screen at the end: {shown} (model: {expected_passed})")
    verdicts = [
        ("CPU <= 25% of one core (process)", share <= 0.25),
        ("worst stall < 50 ms", worst < 0.050),
        ("RSS growth 10k -> total <= 50 MB", growth <= 50),
        ("the screen shows the final count", shown == expected_passed),
    ]
    for name, ok in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {name}")


def _feeder_cpu(feeder: Feeder) -> float:
    """The feeder thread's CPU so far (psutil per-thread times, by native id)."""
    for th in psutil.Process().threads():
        if th.id == feeder.native_id:
            return th.user_time + th.system_time
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="phase 1 length (10)")
    parser.add_argument("--total", type=int, default=100_000, help="results in all (100000)")
    parser.add_argument("--fill-rate", type=float, default=10_000, help="phase 2 rate (10000/s)")
    args = parser.parse_args()
    if args.total < max(10_000, 2000 * args.seconds):
        parser.error("--total must be at least 10000 and 2000 x --seconds")
    asyncio.run(bench(args.seconds, args.total, args.fill_rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
