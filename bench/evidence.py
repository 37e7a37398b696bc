#!/usr/bin/env python3
"""What does collecting evidence cost a run? (a report, not a test)

It generates, in a temporary folder, a suite of 1000 tests (10 files x 100) that each
``time.sleep(0.005)``, 50 of which fail (every 20th), and starts a "backend": a
process appending stamped lines (``2026-…Z INFO request N``) to ``backend.log`` at
``--rate`` lines a second (200) for the whole benchmark, plus an unstamped line now
and then, like a traceback. Then, ``--rounds`` times, it runs the same command twice:

* off: ``run --headless --once`` with ``[deploy] logs = []`` (no collector at all);
* on:  the same with ``[deploy] logs = ["backend.log"]``: the log tail follows the
  file, and each of the 50 failures gets its window's lines as evidence.

The two runs of a round are adjacent in time (their order alternates from round to
round), so a load spike from elsewhere hits both; the verdict is the median of the
per-round ratios on/off, with their spread (min .. max). Target: <= 1.02. The CPU
time of the runs (supervisor and pytest, user + sys, from ``getrusage``) is compared
the same way: on a shared machine it is steadier than the wall time. Every run
is checked: 950 passed and 50 failed results, and 50 evidence rows holding backend
lines when on, none when off; a run that does not add up stops the benchmark (exit 1).
Wall time is ``time.perf_counter()`` around ``subprocess.run``; one untimed warm-up
run of each goes first (bytecode, the history's ``tests`` rows).

Usage (from the repository, with the dev venv)::

    .venv/bin/python bench/evidence.py              # 5 rounds
    .venv/bin/python bench/evidence.py --rounds 9 --keep
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FILES, PER_FILE, FAIL_EVERY = 10, 100, 20
TARGET = 1.02

TEST_FILE = """
import time
import pytest


@pytest.mark.parametrize("n", range({per_file}))
def test_request(n):
    time.sleep(0.005)
    assert ({base} + n) % {fail_every} != 0, "the backend answered 500"
"""

WRITER = """
import sys, time
from datetime import datetime, timezone

path, rate = sys.argv[1], float(sys.argv[2])
n = 0
with open(path, "a", buffering=1) as fh:
    while True:
        n += 1
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        fh.write(f"{stamp.replace('+00:00', 'Z')} INFO request {n} served in 3 ms\\n")
        if n % 50 == 0:
            fh.write("Traceback (most recent call last):\\nValueError: an unstamped line\\n")
        time.sleep(1 / rate)
"""

CONFIG = """
[deploy]
logs = {logs}

[[suite]]
name = "s"
args = ["tests", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
"""


def build(root: Path) -> None:
    for f in range(FILES):
        text = TEST_FILE.format(per_file=PER_FILE, base=f * PER_FILE, fail_every=FAIL_EVERY)
        (root / "tests").mkdir(parents=True, exist_ok=True)
        (root / "tests" / f"test_{f:02d}.py").write_text(text)
    for name, logs in (("off", "[]"), ("on", '["backend.log"]')):
        (root / f"{name}.toml").write_text(CONFIG.format(logs=logs))
    (root / "writer.py").write_text(WRITER)


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(root: Path, name: str, env: dict[str, str], cpu: dict[str, list[float]]) -> float:
    db = root / f".netra-{name}.db"
    cmd = [sys.executable, "-m", "supervisor.cli", "run", "--headless", "--once"]
    cmd += ["-c", str(root / f"{name}.toml"), "--db", str(db)]
    c0, t0 = cpu_of_children(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - t0
    cpu.setdefault(name, []).append(cpu_of_children() - c0)
    check(db, name, proc)
    return elapsed


def check(db: Path, name: str, proc: subprocess.CompletedProcess) -> None:
    conn = sqlite3.connect(db)
    try:
        run_id = conn.execute("SELECT MAX(id) FROM runs").fetchone()[0]
        counts = dict(
            conn.execute(
                "SELECT r.outcome, COUNT(*) FROM results r JOIN iterations i"
                " ON i.id = r.iteration_id WHERE i.run_id = ? GROUP BY 1",
                (run_id,),
            ).fetchall()
        )
        evidence = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(e.lines LIKE '%INFO request%'), 0) FROM evidence e"
            " JOIN results r ON r.id = e.result_id JOIN iterations i ON i.id = r.iteration_id"
            " WHERE i.run_id = ?",
            (run_id,),
        ).fetchone()
    finally:
        conn.close()
    failures = FILES * PER_FILE // FAIL_EVERY
    want = {"passed": FILES * PER_FILE - failures, "failed": failures}
    rows = (failures, failures) if name == "on" else (0, 0)
    if proc.returncode != 1 or counts != want or tuple(evidence) != rows:
        sys.exit(
            f"{name}: exit {proc.returncode}, results {counts} (want {want}), evidence rows"
            f" {tuple(evidence)} (want {rows})\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=200.0, help="backend lines a second")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="netra-bench-evidence-"))
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(root / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    build(root)
    writer = subprocess.Popen(
        [sys.executable, str(root / "writer.py"), "backend.log", str(args.rate)], cwd=root
    )
    try:
        time.sleep(1.0)  # the log has lines before the first run
        warm: dict[str, list[float]] = {}
        run(root, "off", env, warm)
        run(root, "on", env, warm)
        cpu: dict[str, list[float]] = {}
        ratios: list[float] = []
        times: dict[str, list[float]] = {"off": [], "on": []}
        for index in range(args.rounds):
            order = ("off", "on") if index % 2 == 0 else ("on", "off")
            took = {name: run(root, name, env, cpu) for name in order}
            for name in took:
                times[name].append(took[name])
            ratios.append(took["on"] / took["off"])
            print(
                f"round {index + 1}: off {took['off']:.2f}s  on {took['on']:.2f}s"
                f"  ratio {ratios[-1]:.3f}  (CPU off {cpu['off'][-1]:.2f}s"
                f" on {cpu['on'][-1]:.2f}s)",
                flush=True,
            )
    finally:
        writer.terminate()
        writer.wait(10)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept: {root}")
    median = statistics.median(ratios)
    print(
        f"1000 tests, 50 failures, backend log at {args.rate:g} lines/s, {args.rounds} rounds:"
        f" off median {statistics.median(times['off']):.2f}s,"
        f" on median {statistics.median(times['on']):.2f}s"
    )
    print(
        f"ratio on/off: median {median:.3f} (spread {min(ratios):.3f} .. {max(ratios):.3f});"
        f" ratio of medians {statistics.median(times['on']) / statistics.median(times['off']):.3f}"
    )
    cpu_ratios = [on / off for on, off in zip(cpu["on"], cpu["off"])]
    print(
        f"CPU (supervisor and pytest, user+sys) on/off: median {statistics.median(cpu_ratios):.3f}"
        f" (spread {min(cpu_ratios):.3f} .. {max(cpu_ratios):.3f})"
    )
    print(f"{'PASS' if median <= TARGET else 'MISS'}: target <= {TARGET} (wall, median ratio)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
