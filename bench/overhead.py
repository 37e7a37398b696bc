#!/usr/bin/env python3
"""How much wall time and CPU does netra-supervisor add on top of a bare pytest run?

A benchmark (a report, not a test). It generates three suites in a temporary folder:

* ``trivial``:  2000 tests that do nothing (20 files x 100 plain functions), which
  shows the fixed and per-test cost of the supervisor at its most visible;
* ``sleeping``: 1000 tests that each ``time.sleep(0.005)`` (10 files x 100), closer
  to an e2e suite where the test itself dominates;
* ``cpubound``: 1000 tests of ~2 ms arithmetic each (calibrated here), with
  ``workers = 2`` against ``pytest -n 2``: CPU is the bottleneck, so every cycle the
  supervisor spends is one a worker does not get.

For each suite it runs, alternately, ``--rounds`` times each (after ``--warmup``
untimed rounds of both, which compile the ``.pyc`` files and create the history
database's ``tests`` rows, as in every run but a project's first):

* bare:       ``python -m pytest -q -p no:cacheprovider tests`` (``-n 2`` for cpubound)
* supervisor: ``python -m supervisor.cli run --headless --once -c <suite>/netra-supervisor.toml``
  whose only ``[[suite]]`` has the same pytest arguments, SQLite history on (the
  default ``[run] db`` location, inside the temporary folder).

Both use this interpreter (``sys.executable``), the same environment (the venv's
autoloaded pytest plugins load in both) and the suite's folder as working directory.
Wall time is ``time.perf_counter()`` around the run; CPU time is user + sys of the
process and every descendant it reaped, from ``os.wait4``. Both cache bytecode under
the temporary folder (``PYTHONPYCACHEPREFIX``, and ``PYTHONDONTWRITEBYTECODE``
dropped), as a developer machine does after its first run: with
``PYTHONDONTWRITEBYTECODE=1`` pytest rewrites and recompiles every test file on every
run, which doubles the bare time of the trivial suite and hides the supervisor's cost
(``--inherit-bytecode-env`` measures that setting anyway). Every run is checked: bare
pytest's summary must say ``N passed`` (and nothing failed), and the supervisor's run
must have ``N`` rows in ``results``, all ``passed``. A run that did not execute every
test stops the benchmark with exit code 1.

After the timed rounds, ``--samples`` more supervisor runs are sampled every 20 ms
(the process's CPU-time clock, in nanoseconds, and the history's result count) for
the supervisor process's own CPU per result after start-up: the CPU between the first
sample with results and the first with all of them, over the results in between (a
figure per run, medians over the runs).

The verdict per suite uses the median of the per-round ratios supervisor/bare (each
round's two runs are adjacent in time, so a load spike from elsewhere hits both),
printed with min, max and every round. Targets (issue 18): trivial wall <= 1.05 and
CPU <= 1.10, sleeping wall <= 1.02, cpubound wall <= 1.08, own CPU per result <= 30 us.
A MISS is reported, not an error: the exit code is 0 unless a run failed.

Usage (from the repository, with the dev venv)::

    .venv/bin/python bench/overhead.py            # 9 rounds per suite, 3 sampled runs
    .venv/bin/python bench/overhead.py --quick    # 2 rounds, smoke check
    .venv/bin/python bench/overhead.py --rounds 9 --suite trivial --keep
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RUN_TIMEOUT = 900.0  # seconds; one run taking longer than this is a failure

#: Variables that would change what pytest does, in either run.
SCRUB_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST")


class BenchError(RuntimeError):
    """A run failed or did not execute every test."""


@dataclass(frozen=True)
class Suite:
    name: str
    files: int
    per_file: int
    body: str  # the test function's body (one line)
    target: float  # the wall ratio supervisor/bare to stay under
    imports: str = ""
    workers: int = 1  # > 1: the supervisor's ``workers`` and bare pytest's ``-n``
    cpu_target: float | None = None  # the CPU ratio to stay under (None: not a target)

    @property
    def count(self) -> int:
        return self.files * self.per_file


SUITES = {
    "trivial": Suite(
        "trivial",
        files=20,
        per_file=100,
        body="assert 1 + 1 == 2",
        target=1.05,
        cpu_target=1.10,
    ),
    "sleeping": Suite(
        "sleeping",
        files=10,
        per_file=100,
        body="time.sleep(0.005)",
        target=1.02,
        imports="import time\n",
    ),
    # each test ~2 ms of arithmetic, on 2 xdist workers: CPU is the bottleneck, so every
    # cycle the supervisor spends is one a worker does not get
    "cpubound": Suite(
        "cpubound",
        files=10,
        per_file=100,
        body="assert _spin() > 0",
        target=1.08,
        imports=(
            "def _spin():\n    total = 0\n    for i in range(SPIN):\n"
            "        total += i * i % 7\n    return total\n\n\nSPIN = {spin}\n"
        ),
        workers=2,
    ),
}

#: loop rounds of ``_spin`` for ~2 ms on this machine (measured by calibrate_spin)
SPIN_TARGET = 0.002
#: the supervisor process's own CPU per result after start-up, microseconds
OWN_CPU_TARGET_US = 30.0


@dataclass
class Timings:
    bare: list[float] = field(default_factory=list)
    supervisor: list[float] = field(default_factory=list)
    #: CPU seconds (user + sys) of the run's whole process tree
    bare_cpu: list[float] = field(default_factory=list)
    supervisor_cpu: list[float] = field(default_factory=list)
    #: the supervisor process's own CPU per result after start-up, microseconds
    per_result_us: list[float] = field(default_factory=list)

    def ratios(self) -> list[float]:
        return [s / b for b, s in zip(self.bare, self.supervisor)]

    def cpu_ratios(self) -> list[float]:
        return [s / b for b, s in zip(self.bare_cpu, self.supervisor_cpu)]


def calibrate_spin() -> int:
    """Loop rounds for about ``SPIN_TARGET`` seconds of ``_spin`` here (best of 5)."""
    rounds = 20000

    def spin(n: int) -> int:
        total = 0
        for i in range(n):
            total += i * i % 7
        return total

    best = min(_time_call(spin, rounds) for _ in range(5))
    return max(1000, int(rounds * SPIN_TARGET / best))


def _time_call(fn, arg) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------ generation


def write_suite(root: Path, suite: Suite, spin: int = 0) -> Path:
    """The suite's folder: tests/, an empty pytest.ini (rootdir), the supervisor config."""
    folder = root / suite.name
    tests = folder / "tests"
    tests.mkdir(parents=True)
    for f in range(suite.files):
        imports = suite.imports.replace("{spin}", str(spin))
        lines = [f'"""Generated by bench/overhead.py: {suite.name} file {f}."""\n', imports]
        for t in range(suite.per_file):
            lines.append(f"\n\ndef test_{suite.name}_{f:02d}_{t:03d}():\n    {suite.body}\n")
        (tests / f"test_{suite.name}_{f:02d}.py").write_text("".join(lines), encoding="utf-8")
    # An ini file in the suite folder makes it pytest's rootdir, so no configuration
    # from a parent folder (e.g. /tmp) changes either run.
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (folder / "netra-supervisor.toml").write_text(
        "# Generated by bench/overhead.py: the same pytest arguments as the bare run.\n"
        "[run]\n"
        'until = "once"\n'
        'db = ".netra/history.db"\n'
        "\n"
        "[[suite]]\n"
        f'name = "{suite.name}"\n'
        'kind = "pytest"\n'
        'args = ["-q", "-p", "no:cacheprovider", "tests"]\n'
        + (f"workers = {suite.workers}\n" if suite.workers > 1 else ""),
        encoding="utf-8",
    )
    return folder


# ------------------------------------------------------------------------------ runs


#: Set by main(): where both runs keep their bytecode (None: the environment decides).
PYCACHE_PREFIX: Path | None = None


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in SCRUB_ENV:
        env.pop(key, None)
    if PYCACHE_PREFIX is not None:
        # Both runs read and write bytecode under the temporary folder, as a developer
        # machine does after its first run (pytest's rewritten test modules included);
        # without it, PYTHONDONTWRITEBYTECODE=1 would recompile every test file and the
        # supervisor's own modules on every run, which is not what a user sees.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE_PREFIX)
    return env


@dataclass
class Ran:
    """One finished run: wall and CPU seconds, its output, and (when sampled) the
    supervisor process's own CPU per result after start-up in microseconds."""

    wall: float
    cpu: float
    returncode: int
    stdout: str
    stderr: str
    per_result_us: float | None = None


def timed(cmd: list[str], cwd: Path, sample_db: Path | None = None) -> Ran:
    """Run ``cmd``; CPU is user + sys of the process and every descendant it reaped
    (``os.wait4``'s rusage: on Linux a reaped process's usage includes the children
    it reaped in turn). With ``sample_db`` the run is also sampled (see
    :func:`_sample_own_cpu`), which costs the bench some CPU: not a timed round."""
    out_dir = Path(tempfile.mkdtemp(prefix="out-", dir=cwd))
    with open(out_dir / "stdout", "w+b") as out, open(out_dir / "stderr", "w+b") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=bench_env(), stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        per_result = _sample_own_cpu(proc.pid, sample_db) if sample_db is not None else None
        deadline = t0 + RUN_TIMEOUT
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise BenchError(f"timed out after {RUN_TIMEOUT:g}s: {' '.join(cmd)}")
            time.sleep(0.002)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    shutil.rmtree(out_dir, ignore_errors=True)
    cpu = usage.ru_utime + usage.ru_stime
    return Ran(wall, cpu, proc.returncode, stdout, stderr, per_result)


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _own_cpu(pid: int) -> float | None:
    """The process's own CPU seconds (all its threads, not its children): its CPU-time
    clock, to the nanosecond (Linux numbers another process's clock ``~pid << 3 | 2``);
    else ``/proc/<pid>/stat``'s user + sys, in clock ticks (10 ms: over the ~0.05 s a
    trivial run's results take, a step of 20 % in the per-result figure)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == b"Z":  # exited, not yet reaped
        return None
    try:
        return time.clock_gettime(((~pid) << 3) | 2)
    except (OSError, OverflowError, AttributeError):
        return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _sample_own_cpu(pid: int, db: Path) -> float | None:
    """The supervisor's own CPU per result after start-up, in microseconds.

    Every 20 ms: its own CPU (:func:`_own_cpu`) and the results its
    history holds. The figure is the CPU between the first sample with some results
    and the first with all of them (or the last one), over the results added between
    them: the per-result path, without the start-up and the shutdown."""
    samples: list[tuple[float, int]] = []
    conn: sqlite3.Connection | None = None
    while True:
        cpu = _own_cpu(pid)
        if cpu is None:
            break
        count = 0
        try:
            if conn is None and db.exists():
                conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.05)
                base = conn.execute("SELECT coalesce(max(id), 0) FROM results").fetchone()[0]
            if conn is not None:
                count = conn.execute(
                    "SELECT count(*) FROM results WHERE id > ?", (base,)
                ).fetchone()[0]
        except sqlite3.Error:
            count = samples[-1][1] if samples else 0
        samples.append((cpu, count))
        time.sleep(0.02)
    if conn is not None:
        conn.close()
    started = [s for s in samples if s[1] > 0]
    if len(started) < 2:
        return None
    first = started[0]
    last = next((s for s in started if s[1] == started[-1][1]), started[-1])
    if last[1] <= first[1]:
        return None
    per_result = (last[0] - first[0]) / (last[1] - first[1]) * 1e6
    print(
        f"    own CPU: {first[0]:.3f}s until the first results were in the history, "
        f"{last[0] - first[0]:.3f}s for results {first[1]}..{last[1]}, "
        f"{samples[-1][0]:.3f}s at the last sample",
        flush=True,
    )
    return per_result


def _tail(proc: Ran, lines: int = 25) -> str:
    text = (proc.stdout or "") + (proc.stderr or "")
    return "\n".join("    | " + line for line in text.splitlines()[-lines:])


_PASSED = re.compile(r"\b(\d+) passed\b")
_BAD = re.compile(r"\b(\d+) (failed|errors?)\b")


def run_bare(folder: Path, suite: Suite) -> Ran:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    if suite.workers > 1:
        cmd += ["-n", str(suite.workers)]
    proc = timed(cmd, folder)
    summary = next(
        (line for line in reversed(proc.stdout.splitlines()) if _PASSED.search(line)), ""
    )
    match = _PASSED.search(summary)
    passed = int(match.group(1)) if match else 0
    if proc.returncode != 0 or passed != suite.count or _BAD.search(summary):
        raise BenchError(
            f"bare pytest on {suite.name}: exit {proc.returncode}, "
            f"summary {summary.strip()!r}, expected {suite.count} passed\n{_tail(proc)}"
        )
    return proc


def _db_counts(db: Path) -> tuple[int, int, int]:
    """(latest run id, its results, its passed results); (0, 0, 0) without a database."""
    if not db.exists():
        return 0, 0, 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        run_id = conn.execute("SELECT max(id) FROM runs").fetchone()[0] or 0
        total, passed = conn.execute(
            "SELECT count(*), coalesce(sum(r.outcome = 'passed'), 0) FROM results r"
            " JOIN iterations i ON i.id = r.iteration_id WHERE i.run_id = ?",
            (run_id,),
        ).fetchone()
    finally:
        conn.close()
    return run_id, total, passed


def run_supervisor(folder: Path, suite: Suite, sample: bool = False) -> Ran:
    config = folder / "netra-supervisor.toml"
    db = folder / ".netra" / "history.db"
    before, _, _ = _db_counts(db)
    cmd = [sys.executable, "-m", "supervisor.cli", "run", "--headless", "--once", "-c", str(config)]
    proc = timed(cmd, folder, db if sample else None)
    run_id, total, passed = _db_counts(db)
    if proc.returncode != 0 or run_id <= before or total != suite.count or passed != suite.count:
        raise BenchError(
            f"netra-supervisor on {suite.name}: exit {proc.returncode}, run {run_id} "
            f"(previous {before}) has {total} results, {passed} passed; expected "
            f"{suite.count} passed in {db}\n{_tail(proc)}"
        )
    return proc


# --------------------------------------------------------------------------- report


def fmt(seconds: float) -> str:
    return f"{seconds:7.3f}s"


def bench_suite(root: Path, suite: Suite, rounds: int, warmup: int, samples: int) -> Timings:
    spin = calibrate_spin() if "{spin}" in suite.imports else 0
    folder = write_suite(root, suite, spin)
    workers = (
        f", workers = {suite.workers} vs pytest -n {suite.workers}" if suite.workers > 1 else ""
    )
    spun = f", SPIN = {spin}" if spin else ""
    print(
        f"\n== {suite.name}: {suite.count} tests ({suite.files} files x {suite.per_file}), "
        f"test body `{suite.body}`{spun}{workers} ==",
        flush=True,
    )
    for w in range(warmup):
        b = run_bare(folder, suite)
        s = run_supervisor(folder, suite)
        print(
            f"  warmup {w + 1}: bare {fmt(b.wall)}  supervisor {fmt(s.wall)}  (not counted)",
            flush=True,
        )
    timings = Timings()
    for r in range(rounds):
        b = run_bare(folder, suite)
        s = run_supervisor(folder, suite)
        timings.bare.append(b.wall)
        timings.supervisor.append(s.wall)
        timings.bare_cpu.append(b.cpu)
        timings.supervisor_cpu.append(s.cpu)
        print(
            f"  round {r + 1}: wall bare {fmt(b.wall)} supervisor {fmt(s.wall)} "
            f"ratio {s.wall / b.wall:.3f} | CPU bare {fmt(b.cpu)} supervisor {fmt(s.cpu)} "
            f"ratio {s.cpu / b.cpu:.3f}",
            flush=True,
        )
    for n in range(samples):
        s = run_supervisor(folder, suite, sample=True)
        if s.per_result_us is not None:
            timings.per_result_us.append(s.per_result_us)
        shown = "n/a" if s.per_result_us is None else f"{s.per_result_us:.1f} us"
        print(f"  sampled run {n + 1}: supervisor's own CPU per result {shown}", flush=True)
    return timings


def spread(values: list[float], digits: int = 3) -> str:
    """min-max and every value, so a reader sees the noise."""
    return f"min {min(values):.{digits}f} max {max(values):.{digits}f}; all: " + ", ".join(
        f"{x:.{digits}f}" for x in values
    )


def verdict(suite: Suite, t: Timings) -> list[str]:
    mb, ms = statistics.median(t.bare), statistics.median(t.supervisor)
    ratio = statistics.median(t.ratios())
    status = "PASS" if ratio <= suite.target else "MISS"
    cpu_ratio = statistics.median(t.cpu_ratios())
    lines = [
        f"  median bare       {fmt(mb)}   (all: {', '.join(f'{x:.3f}' for x in t.bare)})",
        f"  median supervisor {fmt(ms)}   (all: {', '.join(f'{x:.3f}' for x in t.supervisor)})",
        f"  overhead          {ms - mb:+.3f}s (medians), i.e. {(ms - mb) / suite.count * 1e6:+.0f} us "
        f"per test with the fixed cost spread over {suite.count} tests",
        f"  ratio of medians  {ms / mb:.3f}",
        f"  wall ratios       {spread(t.ratios())}",
        f"  CPU bare          median {statistics.median(t.bare_cpu):.3f}s ({spread(t.bare_cpu)})",
        f"  CPU supervisor    median {statistics.median(t.supervisor_cpu):.3f}s "
        f"({spread(t.supervisor_cpu)})",
        f"  CPU ratios        {spread(t.cpu_ratios())}",
    ]
    if t.per_result_us:
        lines.append(
            f"  own CPU/result    median {statistics.median(t.per_result_us):.1f} us "
            f"({spread(t.per_result_us, 1)}) (target <= {OWN_CPU_TARGET_US:g} us)"
        )
    lines.append(
        f"{status} {suite.name}: median wall ratio supervisor/bare {ratio:.3f} "
        f"(target <= {suite.target:.2f}, {len(t.bare)} rounds)"
    )
    if suite.cpu_target is not None:
        cpu_status = "PASS" if cpu_ratio <= suite.cpu_target else "MISS"
        lines.append(
            f"{cpu_status} {suite.name}: median CPU ratio supervisor/bare {cpu_ratio:.3f} "
            f"(target <= {suite.cpu_target:.2f})"
        )
    else:
        lines.append(f"  (no CPU target) median CPU ratio supervisor/bare {cpu_ratio:.3f}")
    if t.per_result_us:
        per = statistics.median(t.per_result_us)
        own = "PASS" if per <= OWN_CPU_TARGET_US else "MISS"
        lines.append(
            f"{own} {suite.name}: supervisor's own CPU per result {per:.1f} us "
            f"(target <= {OWN_CPU_TARGET_US:g} us, {len(t.per_result_us)} sampled runs)"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="timed rounds per suite (9)")
    parser.add_argument(
        "--samples",
        type=int,
        default=3,
        help="extra supervisor runs per suite sampled for its own CPU per result (3)",
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds: a smoke check")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (1)")
    parser.add_argument(
        "--inherit-bytecode-env",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE/PYTHONPYCACHEPREFIX as they are (default: both "
        "runs cache bytecode under the temporary folder)",
    )
    parser.add_argument(
        "--suite", choices=["all", *SUITES], default="all", help="which suite(s) to run"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    rounds, warmup = (2 if args.quick else args.rounds), args.warmup
    if rounds < 1 or warmup < 0 or args.samples < 0:
        parser.error("--rounds must be >= 1, --warmup and --samples >= 0")

    probe = subprocess.run(
        [sys.executable, "-c", "import pytest, supervisor; print(pytest.__version__)"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        print(
            f"overhead.py: {sys.executable} cannot import pytest and supervisor:\n{probe.stderr}",
            file=sys.stderr,
        )
        return 1
    from supervisor import __version__

    print("netra-supervisor overhead benchmark")
    print(f"  python     {platform.python_version()} ({sys.executable})")
    print(f"  pytest     {probe.stdout.strip()} · netra-supervisor {__version__}")
    print(
        f"  cores      {os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})"
        if hasattr(os, "sched_getaffinity")
        else f"  cores      {os.cpu_count()}"
    )
    print(f"  machine    {platform.platform()}")
    if hasattr(os, "getloadavg"):
        print(f"  load avg   {' '.join(f'{x:.2f}' for x in os.getloadavg())} (at start)")
    print(f"  rounds     {rounds} timed + {warmup} warmup per suite, alternating bare/supervisor")

    root = Path(tempfile.mkdtemp(prefix="netra-bench-"))
    global PYCACHE_PREFIX
    if args.inherit_bytecode_env:
        inherited = os.environ.get("PYTHONDONTWRITEBYTECODE") and "not written"
        print(f"  bytecode   as inherited ({inherited or 'cached as usual'})")
    else:
        PYCACHE_PREFIX = root / "pycache"
        print(f"  bytecode   cached in {PYCACHE_PREFIX} (PYTHONPYCACHEPREFIX; the warmup fills it)")
    print(f"  folder     {root}{'' if args.keep else ' (removed at the end)'}", flush=True)
    names = list(SUITES) if args.suite == "all" else [args.suite]
    report: list[str] = []
    try:
        for name in names:
            suite = SUITES[name]
            timings = bench_suite(root, suite, rounds, warmup, args.samples)
            report += [f"\n{suite.name} ({suite.count} tests):", *verdict(suite, timings)]
    except BenchError as exc:
        print(f"\nFAILED RUN: {exc}", file=sys.stderr)
        print(f"(folder kept for inspection: {root})", file=sys.stderr)
        return 1
    else:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print("\n== summary ==" + "\n".join(report))
    if hasattr(os, "getloadavg"):
        print(f"\nload avg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
