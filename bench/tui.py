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

``--suite-rounds N`` instead runs the 2000-trivial-test suite of ``bench/overhead.py``
N times headless (``run --headless --once``) and N times with the TUI in a tmux pane
(120x40), alternately, and compares the iteration's duration as the history database
records it (``iterations.finished_at - started_at``: the loop's own time, so the
TUI's start-up and its waiting for ``q`` at the end do not count). Target: TUI <= 1.15x
headless (median of the per-round ratios).

``--watch`` runs ``netra-supervisor watch`` (the real ``WatchApp`` over a
``FollowedRun``, headless, 120x40, in this process) on a history database that a
writer process fills through the real ``HistoryStore`` at 2000 results/s (the same
event mix, each with its ``TestStarted``) for ``--seconds``. The writer runs twice: alone,
then watched. Printed: the watcher's CPU (% of one core; target <= 15 %), and what the
writer waited: it opens SQLite with ``busy_timeout=0``, so any wait on a lock would
have been a failed write (target: 0), and its commit times alone vs watched.

Usage::

    .venv/bin/python bench/tui.py
    .venv/bin/python bench/tui.py --seconds 5 --total 30000     # quicker
    .venv/bin/python bench/tui.py --suite-rounds 3               # TUI vs headless run
    .venv/bin/python bench/tui.py --watch --seconds 10           # watch vs its writer
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

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


def _iteration_seconds(db: Path) -> float | None:
    """The duration of the last finished iteration in ``db`` (read-only), or None."""
    from datetime import datetime

    if not db.exists():
        return None
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT started_at, finished_at FROM iterations WHERE finished_at IS NOT NULL"
            " ORDER BY id DESC LIMIT 1"
        ).fetchone()
        done = conn.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    if row is None or done < 2000:
        return None
    start, end = (datetime.fromisoformat(t) for t in row)
    return (end - start).total_seconds()


def suite_mode(rounds: int) -> int:
    """The 2000-trivial-test suite: headless vs the TUI in tmux, iteration time."""
    import importlib.util
    import shutil
    import statistics
    import subprocess
    import tempfile

    tmux = shutil.which("tmux")
    if tmux is None:
        print("tmux is needed for --suite-rounds", file=sys.stderr)
        return 2
    spec = importlib.util.spec_from_file_location(
        "overhead", Path(__file__).with_name("overhead.py")
    )
    overhead = importlib.util.module_from_spec(spec)
    sys.modules["overhead"] = overhead  # its dataclasses look their module up
    spec.loader.exec_module(overhead)
    root = Path(tempfile.mkdtemp(prefix="netra-bench-tui-"))
    folder = overhead.write_suite(root, overhead.SUITES["trivial"])
    db = folder / ".netra" / "history.db"
    cli = [sys.executable, "-m", "supervisor.cli", "run", "--once"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    sock = [tmux, "-L", f"netra-bench-{os.getpid()}"]
    headless, tui = [], []
    try:
        for n in range(rounds + 1):  # round 0 warms up (bytecode, the tests table)
            shutil.rmtree(folder / ".netra", ignore_errors=True)
            subprocess.run(
                [*cli, "--headless"], cwd=folder, env=env, capture_output=True, check=False
            )
            h = _iteration_seconds(db)
            shutil.rmtree(folder / ".netra", ignore_errors=True)
            rc = root / "rc"
            rc.unlink(missing_ok=True)
            command = (
                f"unset COLUMNS LINES; cd {folder} && PYTHONPATH={env['PYTHONPATH']} "
                f"{' '.join(cli)} --no-mouse; echo $? > {rc}"
            )
            subprocess.run(
                [*sock, "new-session", "-d", "-s", "b", "-x", "120", "-y", "40", command],
                check=True,
            )
            end = time.monotonic() + 600
            t = None
            while t is None and time.monotonic() < end:
                time.sleep(0.5)
                t = _iteration_seconds(db)
            subprocess.run([*sock, "send-keys", "-t", "b", "q"], check=False)
            while not rc.exists() and time.monotonic() < end:
                time.sleep(0.2)
            subprocess.run([*sock, "kill-server"], capture_output=True, check=False)
            if h is None or t is None:
                print(f"round {n}: a run did not finish its 2000 tests", file=sys.stderr)
                return 1
            label = "warm-up" if n == 0 else f"round {n}"
            print(f"{label}: headless {h:.2f}s · TUI {t:.2f}s · ratio {t / h:.3f}")
            if n:
                headless.append(h)
                tui.append(t)
    finally:
        subprocess.run([*sock, "kill-server"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)
    ratio = statistics.median(t / h for h, t in zip(headless, tui))
    print(
        f"median headless {statistics.median(headless):.2f}s · TUI {statistics.median(tui):.2f}s"
        f" · median ratio {ratio:.3f}"
    )
    print(f"{'PASS' if ratio <= 1.15 else 'MISS'}  TUI iteration <= 1.15x headless")
    return 0


def writer_mode(db: Path, seconds: float) -> int:
    """The writer process of ``--watch``: results at 2000/s through the real store."""
    import json
    import statistics
    import types

    from supervisor.store.writer import HistoryStore

    errors: list[str] = []
    store = HistoryStore.open(db, busy_timeout=0.0, on_error=errors.append)
    commits: list[float] = []  # seconds per transaction (BEGIN IMMEDIATE .. COMMIT)
    transaction = store._transaction

    def timed(events: list) -> None:
        t = time.perf_counter()
        transaction(events)
        commits.append(time.perf_counter() - t)

    store._transaction = timed  # type: ignore[method-assign]
    total = int(2000 * seconds)
    for event in (
        IterationStarted(store.run_id, 1, AT),
        PhaseStarted(store.run_id, 1, 1, "P1 firehose", "none", ("e2e",), AT, "bench"),
        TestsCollected(1, 1, "e2e", tuple(f"c{i}" for i in range(total))),
    ):
        store.put(event)
    feeder = Feeder(types.SimpleNamespace(apply=store.put), total)  # type: ignore[arg-type]
    flushes: list[float] = []  # seconds from a flush request to its commit
    t0 = time.perf_counter()
    feeder.start()
    while feeder.is_alive():
        time.sleep(0.5)
        t = time.perf_counter()
        store.flush()
        flushes.append(time.perf_counter() - t)
    wall = time.perf_counter() - t0
    store.close()
    commits.sort()
    print(
        json.dumps(
            {
                "sent": feeder.sent,
                "wall": wall,
                "commits": len(commits),
                "commit_p50": statistics.median(commits),
                "commit_p99": commits[int(len(commits) * 0.99)],
                "commit_max": commits[-1],
                "flush_max": max(flushes),
                "errors": errors + ([store.last_error] if store.last_error else []),
                "unsaved": store.unsaved + store.dropped,
            }
        )
    )
    return 0


async def _watch_app(db: Path, writer) -> dict:
    """Run ``WatchApp`` on ``db`` until the writer process ends; its CPU meanwhile."""
    from supervisor.store.follow import FollowedRun
    from supervisor.tui.watch import WatchApp

    while True:  # the writer creates the database and its run row
        try:
            source = FollowedRun(db)
            break
        except Exception:
            await asyncio.sleep(0.05)
    app = WatchApp(source)
    proc = psutil.Process()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        cpu0, wall0 = proc.cpu_times(), time.perf_counter()
        while writer.poll() is None:
            await asyncio.sleep(0.05)
        cpu1, wall1 = proc.cpu_times(), time.perf_counter()
        await asyncio.sleep(0.6)  # the last poll and refresh
        shown = int(app.count_pane.query_one("#passing").value)
        polls, refreshes = source.polls, app.refreshes
    source.close()
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {"cpu": cpu / (wall1 - wall0), "shown": shown, "polls": polls, "refreshes": refreshes}


def watch_mode(seconds: float) -> int:
    """The writer at 2000 results/s alone, then with ``watch`` following it."""
    import json
    import subprocess
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="netra-bench-watch-"))
    cmd = [sys.executable, __file__, "--seconds", str(seconds), "--writer"]
    alone = subprocess.run([*cmd, str(root / "alone.db")], capture_output=True, text=True)
    if alone.returncode:
        print(alone.stderr, file=sys.stderr)
        return 1
    base = json.loads(alone.stdout)
    db = root / "watched.db"
    writer = subprocess.Popen([*cmd, str(db)], stdout=subprocess.PIPE, text=True)
    seen = asyncio.run(_watch_app(db, writer))
    watched = json.loads(writer.communicate()[0])
    passed = sum(1 for i in range(watched["sent"]) if i % 100 < 90)
    print(f"writer: {watched['sent']} results at 2000/s in {watched['wall']:.1f}s")
    print(f"  watcher CPU: {seen['cpu'] * 100:.1f}% of one core")
    print(f"  watcher: {seen['polls']} reads, {seen['refreshes']} refreshes;"
          f" count on screen {seen['shown']} (written: {passed})")  # fmt: skip
    for name, run in (("alone", base), ("watched", watched)):
        print(
            f"  writer {name}: {run['commits']} commits, p50 {run['commit_p50'] * 1000:.2f} ms,"
            f" p99 {run['commit_p99'] * 1000:.2f} ms, max {run['commit_max'] * 1000:.2f} ms;"
            f" flush max {run['flush_max'] * 1000:.1f} ms; lock errors {len(run['errors'])}"
        )
    waits = len(watched["errors"]) + watched["unsaved"]
    print(f"  writer waits on the watcher: {waits} (busy_timeout=0: a wait is an error)")
    for name, ok in (
        ("watcher CPU <= 15% of one core", seen["cpu"] <= 0.15),
        ("the writer never waited on the watcher", waits == 0),
        ("the screen shows the final count", seen["shown"] == passed),
    ):
        print(f"{'PASS' if ok else 'MISS'}  {name}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="phase 1 length (10)")
    parser.add_argument("--total", type=int, default=100_000, help="results in all (100000)")
    parser.add_argument("--fill-rate", type=float, default=10_000, help="phase 2 rate (10000/s)")
    parser.add_argument(
        "--suite-rounds", type=int, metavar="N", help="TUI vs headless on 2000 trivial tests"
    )
    parser.add_argument("--watch", action="store_true", help="watch vs a writer at 2000/s")
    parser.add_argument("--writer", metavar="DB", help=argparse.SUPPRESS)  # --watch's writer
    args = parser.parse_args()
    if args.writer:
        return writer_mode(Path(args.writer), args.seconds)
    if args.watch:
        return watch_mode(args.seconds)
    if args.suite_rounds:
        return suite_mode(args.suite_rounds)
    if args.total < max(10_000, 2000 * args.seconds):
        parser.error("--total must be at least 10000 and 2000 x --seconds")
    asyncio.run(bench(args.seconds, args.total, args.fill_rate))
    return 0


if __name__ == "__main__":
    sys.exit(main())
