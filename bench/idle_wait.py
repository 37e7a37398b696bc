#!/usr/bin/env python3
"""What a supervisor waiting for a change costs while nothing changes (issue 19).

A benchmark (a report, not a test). It builds a tree of 100 000 files (1000 folders
x 100 files) in a temporary folder, beside a git repository holding one trivial test
and a ``netra-supervisor.toml`` with ``between = "wait-for-change"`` and
``watch = ["tree"]``. For each supervisor (this checkout; with ``--before-repo`` also
an older checkout, run by its own ``.venv``) and each round it:

1. starts ``python -m supervisor.cli run --headless`` there (``until = "target"`` with
   an unreachable target, so the run goes on waiting after its first iteration);
2. reads its output until the ``waiting for a change`` line, lets it settle 2 s;
3. measures the CPU time of the supervisor's whole process tree (psutil: user +
   system of every live process, plus what reaped children used) over ``--seconds``
   of wall time, and prints it as % of one core;
4. checks nothing started a second iteration meanwhile, then stops the run (SIGTERM).

Target: below 1 % of a core for this checkout. The figure printed is the median of
the rounds; the ratio is before / after.

Usage (from the repository, with the dev venv)::

    .venv/bin/python bench/idle_wait.py                              # this checkout
    .venv/bin/python bench/idle_wait.py --before-repo /work/base     # before and after
    .venv/bin/python bench/idle_wait.py --rounds 1 --seconds 10 --keep --polling
    .venv/bin/python bench/idle_wait.py --project /tmp/netra-idle-wait-XXXX   # reuse its tree
"""

from __future__ import annotations

import argparse
import os
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

TARGET_PERCENT = 1.0
START_TIMEOUT = 300.0
SETTLE = 2.0

CONFIG = """\
[run]
until = "target"
target = 1000000
max_iterations = 1000
between = "wait-for-change"
watch = ["tree"]

[[suite]]
name = "trivial"
args = ["tests", "-p", "no:cacheprovider"]
"""


class BenchError(RuntimeError):
    """A run did not do what the benchmark needs (the message says what)."""


def build_project(folder: Path, dirs: int, files: int) -> None:
    """The repository (test, config) and the watched tree of ``dirs`` x ``files``."""
    (folder / "tests").mkdir(parents=True)
    (folder / "tests/test_ok.py").write_text("def test_ok():\n    assert 1 + 1 == 2\n")
    (folder / "netra-supervisor.toml").write_text(CONFIG)
    (folder / ".gitignore").write_text("tree/\n.netra/\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True)
    per_dir = files // dirs
    for d in range(dirs):
        sub = folder / "tree" / f"d{d:04d}"
        sub.mkdir(parents=True)
        for f in range(per_dir):
            (sub / f"f{f:03d}.py").write_text(f"VALUE = {f}\n")


def tree_cpu(proc: psutil.Process) -> float:
    """CPU seconds of ``proc`` and its live descendants, with what their reaped
    children used (a finished ``git rev-parse`` counts in its parent's children_*)."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue  # ended meanwhile: its time is in its parent's children_* now
        total += t.user + t.system + t.children_user + t.children_system
    return total


def measure(python: str, project: Path, seconds: float, polling: bool = False) -> float:
    """One round: % of a core the waiting supervisor uses over ``seconds``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("NETRA_") and k != "WATCHFILES_FORCE_POLLING"
    }
    if polling:
        env["WATCHFILES_FORCE_POLLING"] = "1"
    proc = subprocess.Popen(
        [python, "-m", "supervisor.cli", "run", "--headless"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    assert proc.stdout is not None
    out = proc.stdout

    def pump() -> None:
        for line in out:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def drain(until: str | None, within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                if proc.poll() is not None and lines.empty():
                    return False
                continue
            seen.append(line)
            if until is not None and until in line:
                return True
        return False

    try:
        if not drain("waiting for a change", START_TIMEOUT):
            raise BenchError(f"{python}: never waited for a change:\n" + "".join(seen))
        time.sleep(SETTLE)
        ps = psutil.Process(proc.pid)
        cpu0, t0 = tree_cpu(ps), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = tree_cpu(ps), time.monotonic()
        drain(None, 0.2)
        if any(line.startswith("iteration 2") for line in seen) or proc.poll() is not None:
            raise BenchError(f"{python}: the run did not stay waiting:\n" + "".join(seen))
        return 100.0 * (cpu1 - cpu0) / (t1 - t0)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def which_supervisor(python: str, cwd: Path) -> str:
    """Where ``python`` finds the supervisor, from the project's folder as the run does."""
    out = subprocess.run(
        [python, "-c", "import supervisor, os; print(os.path.dirname(supervisor.__file__))"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dirs", type=int, default=1000)
    ap.add_argument("--files", type=int, default=100_000, help="in all (default 100000)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measured per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--before-repo",
        type=Path,
        help="an older checkout with its own .venv (e.g. /work/base): measured too",
    )
    ap.add_argument(
        "--polling",
        action="store_true",
        help="also this checkout with WATCHFILES_FORCE_POLLING=1 (the fallback's cost)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument(
        "--project",
        type=Path,
        help="a folder a --keep run left (its project/ is reused, and kept)",
    )
    args = ap.parse_args(argv)

    sides = [("after", sys.executable, False)]
    if args.polling:
        sides.append(("after, polling", sys.executable, True))
    if args.before_repo is not None:
        python = args.before_repo / ".venv/bin/python"
        if not python.exists():
            print(f"--before-repo: {python} does not exist; make that venv first", file=sys.stderr)
            return 2
        sides.insert(0, ("before", str(python), False))

    if args.project is not None and not (args.project / "project/tree").is_dir():
        print(
            f"--project: no project/tree in {args.project}; give a --keep run's folder",
            file=sys.stderr,
        )
        return 2
    keep = args.keep or args.project is not None
    tmp = args.project or Path(tempfile.mkdtemp(prefix="netra-idle-wait-"))
    try:
        t = time.monotonic()
        if args.project is None:
            build_project(tmp / "project", args.dirs, args.files)
        print(
            f"tree: {args.files} files in {args.dirs} folders ({time.monotonic() - t:.1f}s to"
            f" build{', reused' if args.project else ''}) · {args.rounds} round(s) of {args.seconds:g}s · load {os.getloadavg()[0]:.2f}"
        )
        medians: dict[str, float] = {}
        for name, python, polling in sides:
            print(f"{name}: {which_supervisor(python, tmp / 'project')} ({python})")
            figures = []
            for r in range(args.rounds):
                shutil.rmtree(tmp / "project/.netra", ignore_errors=True)
                figures.append(measure(python, tmp / "project", args.seconds, polling))
                print(f"  round {r + 1}: {figures[-1]:.3f} % of a core")
            medians[name] = statistics.median(figures)
            print(f"{name}: {medians[name]:.3f} % of a core (median)")
        after = medians["after"]
        verdict = "PASS" if after < TARGET_PERCENT else "MISS"
        print(f"{verdict}: after {after:.3f} % of a core (target < {TARGET_PERCENT:g} %)")
        if "before" in medians:
            ratio = medians["before"] / after if after > 0 else float("inf")
            print(f"before {medians['before']:.3f} % / after {after:.3f} % = {ratio:.0f}x")
        print(f"load at the end {os.getloadavg()[0]:.2f}")
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if keep:
            print(f"kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
