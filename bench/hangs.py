#!/usr/bin/env python3
"""Hung tests: netra-supervisor's watchdog against pytest-timeout's signal method.

A benchmark (a report, not a test), the "Speed" part of issue 3. It generates in a
temporary folder a suite of 100 tests (5 files x 20) of which 3 hang, spread through
the suite (tests 10, 50 and 80 in run order):

* test 10: ``time.sleep`` forever;
* test 50: an asyncio test (``asyncio.run`` of a coroutine) awaiting a future nobody
  ever sets;
* test 80: a thread deadlock: a plain ``threading.Lock`` acquired twice by the main
  thread.

The 97 others pass at once. The timeout is 2 s. Each round runs, alternately and in
this interpreter (``sys.executable``), with the suite's folder as working directory:

* signal:     ``python -m pytest --timeout=2 --timeout-method=signal -q -p no:cacheprovider tests``
* supervisor: ``python -m supervisor.cli run --headless --once -c <suite>/netra-supervisor.toml``
  whose only ``[[suite]]`` runs ``-q -p no:cacheprovider tests``, with ``[watchdog]
  test_timeout = "2s"`` and ``grace = "1s"``, SQLite history in the temporary folder.

Wall time is ``time.perf_counter()`` around each run. What each run *ran* is counted
from its own record: bare pytest's final summary line (``N passed, M failed``), the
supervisor's ``results`` rows of its latest run in the history database, by outcome.
The supervisor's time is broken down from those rows: time spent in the hung tests
(deadline + detection + dump), the gap from each hang to the next test's start (kill,
a new pytest process, collection), and the rest.

A bare pytest that does not finish within ``--safety`` seconds (120) is killed and
reported "did not finish": that is a result (the weakness the supervisor exists for),
not an error. Targets: every one of the 100 tests run in the supervisor, and the median
wall ratio supervisor/signal <= 1.2. A MISS is reported, not an error: the exit code is
0 unless a run failed unexpectedly (1), or 2 when pytest-timeout (or pytest, or the
supervisor) cannot be imported by this interpreter.

Usage (from the repository, with the dev venv)::

    /work/venv/bin/python bench/hangs.py               # 3 rounds
    /work/venv/bin/python bench/hangs.py --rounds 5 --keep
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

TESTS = 100
PER_FILE = 20
TIMEOUT = 2.0  # seconds, both tools
GRACE = "1s"  # the supervisor's dump-request → kill grace
TARGET = 1.2  # median wall ratio supervisor/signal to stay under
BARE_SAFETY = 120.0  # seconds; a bare pytest still running is killed, "did not finish"
SUPERVISOR_SAFETY = 600.0  # seconds; a supervisor still running is a failed run

#: Position (1-based, in run order) → kind of hang.
HANGS = {10: "sleep", 50: "asyncio", 80: "lock"}

HANG_BODIES = {
    "sleep": ("    while True:  # forever\n        time.sleep(3600)\n"),
    "asyncio": (
        "    async def wait_for_nobody():\n"
        "        fut = asyncio.get_running_loop().create_future()\n"
        "        await fut  # nobody ever sets this future\n"
        "\n"
        "    asyncio.run(wait_for_nobody())\n"
    ),
    "lock": (
        "    lock = threading.Lock()\n"
        "    lock.acquire()\n"
        "    lock.acquire()  # a plain Lock is not reentrant: deadlock\n"
    ),
}

#: Variables that would change what pytest does, in either run.
SCRUB_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST")


class BenchError(RuntimeError):
    """A run failed unexpectedly."""


@dataclass
class Outcome:
    """One run of one tool."""

    wall: float
    finished: bool  # False: killed at the safety timeout
    returncode: int | None
    counts: dict[str, int] = field(default_factory=dict)  # outcome → tests
    summary: str = ""  # bare: pytest's last line; supervisor: the run's exit
    # supervisor only: seconds in hung tests, restart gaps after each hang
    hung_durations: list[float] = field(default_factory=list)
    restart_gaps: list[float] = field(default_factory=list)
    output: str = ""

    @property
    def ran(self) -> int:
        return sum(self.counts.values())


def test_name(n: int) -> str:
    kind = HANGS.get(n)
    return f"test_{n:03d}_hang_{kind}" if kind else f"test_{n:03d}"


# ------------------------------------------------------------------------ generation


#: Test name → (file name, line number) of the statement each hang is stuck on.
STUCK_AT: dict[str, tuple[str, int]] = {}

#: Per hang kind, the text of the line it is stuck on (in HANG_BODIES).
STUCK_TEXT = {"sleep": "time.sleep(3600)", "asyncio": "await fut", "lock": "lock.acquire()  #"}


def write_suite(root: Path) -> Path:
    folder = root / "hangs"
    tests = folder / "tests"
    tests.mkdir(parents=True)
    for f in range(TESTS // PER_FILE):
        lines = [
            f'"""Generated by bench/hangs.py: file {f + 1} of {TESTS // PER_FILE}."""\n\n',
            "import asyncio\nimport threading\nimport time\n",
        ]
        for n in range(f * PER_FILE + 1, (f + 1) * PER_FILE + 1):
            kind = HANGS.get(n)
            body = HANG_BODIES[kind] if kind else "    assert 1 + 1 == 2\n"
            lines.append(f"\n\ndef {test_name(n)}():\n{body}")
        text = "".join(lines)
        name = f"test_hangs_{f + 1:02d}.py"
        (tests / name).write_text(text, encoding="utf-8")
        in_test = None
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.startswith("def test_"):
                in_test = line[4:].split("(")[0]
            kind = HANGS.get(int(in_test[5:8])) if in_test else None
            if kind and STUCK_TEXT[kind] in line:
                STUCK_AT[in_test] = (name, lineno)
    # An ini file in the suite folder makes it pytest's rootdir, so no configuration
    # from a parent folder (e.g. /tmp) changes either run.
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    (folder / "netra-supervisor.toml").write_text(
        "# Generated by bench/hangs.py: the same files and pytest arguments as the bare run.\n"
        "[run]\n"
        'until = "once"\n'
        'db = ".netra/history.db"\n'
        "\n"
        "[watchdog]\n"
        f'test_timeout = "{TIMEOUT:g}s"\n'
        f'grace = "{GRACE}"\n'
        "\n"
        "[[suite]]\n"
        'name = "hangs"\n'
        'kind = "pytest"\n'
        'args = ["-q", "-p", "no:cacheprovider", "tests"]\n',
        encoding="utf-8",
    )
    return folder


# ------------------------------------------------------------------------------ runs


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    for key in SCRUB_ENV:
        env.pop(key, None)
    env["COLUMNS"] = "200"  # pytest's short summary lines are not cut at 80 columns
    return env


def timed(cmd: list[str], cwd: Path, safety: float) -> tuple[float, bool, int | None, str]:
    """(wall, finished, returncode, stdout+stderr); killed (group) after ``safety`` s."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=bench_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, so it can be killed whole
    )
    try:
        out, _ = proc.communicate(timeout=safety)
        return time.perf_counter() - t0, True, proc.returncode, out or ""
    except subprocess.TimeoutExpired:
        wall = time.perf_counter() - t0
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, _ = proc.communicate()
        return wall, False, None, out or ""


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join("    | " + line for line in text.splitlines()[-lines:])


_SUMMARY_LINE = re.compile(r"\bin \d+(\.\d+)?s\b")
_COUNT = re.compile(r"\b(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)\b")
_PROGRESS = re.compile(r"^([.FEsxX]+)\s*(\[\s*\d+%\])?$")


def run_bare(folder: Path, safety: float) -> Outcome:
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        f"--timeout={TIMEOUT:g}",
        "--timeout-method=signal",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests",
    ]
    wall, finished, rc, out = timed(cmd, folder, safety)
    lines = out.splitlines()
    if not finished:
        # No summary line: count the progress characters pytest printed so far.
        done = sum(len(m.group(1)) for m in map(_PROGRESS.match, lines) if m)
        return Outcome(
            wall,
            False,
            None,
            {"reported before the kill": done},
            f"did not finish within {safety:g}s, killed",
            output=out,
        )
    summary = next((ln for ln in reversed(lines) if _SUMMARY_LINE.search(ln)), "")
    counts: dict[str, int] = {}
    for number, word in _COUNT.findall(summary):
        key = "error" if word.startswith("error") else word
        counts[key] = counts.get(key, 0) + int(number)
    if rc not in (0, 1) or not counts:
        raise BenchError(f"bare pytest: exit {rc}, summary {summary.strip()!r}\n{_tail(out)}")
    return Outcome(wall, True, rc, counts, summary.strip().strip("=").strip(), output=out)


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def _db_report(db: Path) -> tuple[int, dict[str, int], list[float], list[float]]:
    """(latest run id, outcome → count, hung durations, restart gaps) of its results."""
    if not db.exists():
        return 0, {}, [], []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        run_id = conn.execute("SELECT max(id) FROM runs").fetchone()[0] or 0
        rows = conn.execute(
            "SELECT r.outcome, r.started_at, r.duration FROM results r"
            " JOIN iterations i ON i.id = r.iteration_id WHERE i.run_id = ?"
            " ORDER BY r.started_at, r.id",
            (run_id,),
        ).fetchall()
    finally:
        conn.close()
    counts: dict[str, int] = {}
    for outcome, _, _ in rows:
        counts[outcome] = counts.get(outcome, 0) + 1
    hung, gaps = [], []
    for i, (outcome, started, duration) in enumerate(rows):
        if outcome != "hung":
            continue
        hung.append(duration or 0.0)
        if i + 1 < len(rows) and started and rows[i + 1][1]:
            # hung recorded → the next test starts: kill, new pytest, collection
            gaps.append(_ts(rows[i + 1][1]) - (_ts(started) + (duration or 0.0)))
    return run_id, counts, hung, gaps


def run_supervisor(folder: Path, safety: float) -> Outcome:
    config = folder / "netra-supervisor.toml"
    db = folder / ".netra" / "history.db"
    before = _db_report(db)[0]
    cmd = [sys.executable, "-m", "supervisor.cli", "run", "--headless", "--once", "-c", str(config)]
    wall, finished, rc, out = timed(cmd, folder, safety)
    if not finished:
        raise BenchError(f"netra-supervisor did not finish within {safety:g}s\n{_tail(out)}")
    run_id, counts, hung, gaps = _db_report(db)
    if rc not in (0, 1) or run_id <= before:
        raise BenchError(
            f"netra-supervisor: exit {rc}, run {run_id} (previous {before})\n{_tail(out)}"
        )
    return Outcome(wall, True, rc, counts, f"exit {rc}", hung, gaps, output=out)


# --------------------------------------------------------------------------- report


def fmt(seconds: float) -> str:
    return f"{seconds:7.3f}s"


def counts_text(o: Outcome) -> str:
    if not o.counts:
        return "0 tests"
    order = ["passed", "failed", "hung", "crashed", "error", "skipped"]
    keys = sorted(o.counts, key=lambda k: (order.index(k) if k in order else len(order), k))
    return " + ".join(f"{o.counts[k]} {k}" for k in keys)


def ran_text(o: Outcome) -> str:
    if not o.finished:
        return f"did not finish ({o.ran} reported before the kill)"
    return f"ran {o.ran:3d}: {counts_text(o)}"


_FAILED_LINE = re.compile(r"^FAILED (\S+?)(?: - (.*))?$")
_LOCATION = re.compile(r"^(\S+?):(\d+): ")
_SECTION = re.compile(r"^_{3,} (\S+) _{3,}$")
_DUMP_FILE = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)')


@dataclass
class Seen:
    """How one tool reported one hung test."""

    test: str
    outcome: str  # "failed" / "hung" / "not reported"
    message: str
    where: str  # the innermost location it reports (file:line)
    names_stuck_line: bool  # does its report contain the line the test is stuck on?


def signal_seen(out: str) -> list[Seen]:
    """Per hang, from a finished bare run's output: its FAILED line and traceback."""
    messages = {}
    for line in out.splitlines():
        m = _FAILED_LINE.match(line)
        if m:
            messages[m.group(1).split("::")[-1]] = (m.group(2) or "").strip()
    locations: dict[str, list[tuple[str, int]]] = {}
    current = None
    for line in out.splitlines():
        s = _SECTION.match(line)
        if s:
            current = s.group(1)
            continue
        loc = _LOCATION.match(line)
        if current and loc:
            locations.setdefault(current, []).append((Path(loc.group(1)).name, int(loc.group(2))))
    seen = []
    for test, stuck in STUCK_AT.items():
        locs = locations.get(test, [])
        where = f"{locs[-1][0]}:{locs[-1][1]}" if locs else "?"
        outcome = "failed" if test in messages else "not reported"
        seen.append(Seen(test, outcome, messages.get(test, ""), where, stuck in locs))
    return seen


def supervisor_seen(db: Path) -> list[Seen]:
    """Per hang, from the latest run's ``results``: outcome, message, dump."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        run_id = conn.execute("SELECT max(id) FROM runs").fetchone()[0]
        rows = {
            nodeid.split("::")[-1]: (outcome, message, dump)
            for nodeid, outcome, message, dump in conn.execute(
                "SELECT t.nodeid, r.outcome, r.message, r.dump FROM results r"
                " JOIN tests t ON t.id = r.test_id JOIN iterations i ON i.id = r.iteration_id"
                " WHERE i.run_id = ?",
                (run_id,),
            )
        }
    finally:
        conn.close()
    seen = []
    for test, stuck in STUCK_AT.items():
        outcome, message, dump = rows.get(test, ("not reported", "", ""))
        locs = [
            (Path(m.group(1)).name, int(m.group(2)), m.group(3))
            for m in map(_DUMP_FILE.match, (dump or "").splitlines())
            if m and Path(m.group(1)).name.startswith("test_hangs_")
        ]
        # the last frame in a generated file: the main thread's innermost, or, after
        # the thread stacks, the line an asyncio task awaits on
        where = f"{locs[-1][0]}:{locs[-1][1]} in {locs[-1][2]}" if locs else "(not in the dump)"
        seen.append(
            Seen(test, outcome, message or "", where, stuck in [(f, n) for f, n, _ in locs])
        )
    return seen


def stuck_text(test: str) -> str:
    name, line = STUCK_AT[test]
    return f"{name}:{line}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of both runs (3)")
    parser.add_argument(
        "--safety",
        type=float,
        default=BARE_SAFETY,
        help=f"seconds after which a bare pytest is killed, 'did not finish' ({BARE_SAFETY:g})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.safety <= 0:
        parser.error("--rounds must be >= 1 and --safety > 0")

    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pytest, supervisor; print(pytest.__version__)\n"
            "try:\n    import pytest_timeout\nexcept ImportError:\n    print('-')\n"
            "else:\n    from importlib.metadata import version; print(version('pytest-timeout'))",
        ],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        print(
            f"hangs.py: {sys.executable} cannot import pytest and supervisor:\n{probe.stderr}",
            file=sys.stderr,
        )
        return 2
    pytest_version, timeout_version = probe.stdout.split()
    if timeout_version == "-":
        print(
            f"hangs.py: pytest-timeout is not installed in {sys.executable}; the signal "
            "method is the baseline, so there is nothing to compare against.\n"
            "Install the project's test extra: pip install -e '.[test]'",
            file=sys.stderr,
        )
        return 2
    from supervisor import __version__

    print("netra-supervisor hang benchmark (issue 3, Speed)")
    print(f"  python     {platform.python_version()} ({sys.executable})")
    print(
        f"  pytest     {pytest_version} · pytest-timeout {timeout_version} · "
        f"netra-supervisor {__version__}"
    )
    print(
        f"  cores      {os.cpu_count()}"
        + (f" (usable: {len(os.sched_getaffinity(0))})" if hasattr(os, "sched_getaffinity") else "")
    )
    print(f"  machine    {platform.platform()}")
    if hasattr(os, "getloadavg"):
        print(f"  load avg   {' '.join(f'{x:.2f}' for x in os.getloadavg())} (at start)")
    hang_list = ", ".join(f"#{n} {kind}" for n, kind in HANGS.items())
    print(
        f"  suite      {TESTS} tests ({TESTS // PER_FILE} files x {PER_FILE}), "
        f"{len(HANGS)} hangs: {hang_list}"
    )
    print(
        f"  timeout    {TIMEOUT:g}s both; supervisor grace {GRACE}; "
        f"bare pytest killed after {args.safety:g}s"
    )
    print(f"  rounds     {args.rounds}, alternating signal/supervisor")

    root = Path(tempfile.mkdtemp(prefix="netra-hangs-"))
    print(f"  folder     {root}{'' if args.keep else ' (removed at the end)'}", flush=True)
    folder = write_suite(root)
    bare: list[Outcome] = []
    sup: list[Outcome] = []
    try:
        # Untimed warmup (compiles the test files' .pyc), then the cost of one fresh
        # pytest process collecting the suite: a floor for each supervisor restart.
        collect = [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests",
        ]
        for _ in range(2):
            collect_wall, ok, rc, out = timed(collect, folder, 120.0)
            if not ok or rc != 0:
                raise BenchError(f"pytest --collect-only: exit {rc}\n{_tail(out)}")
        print(
            f"  collect    {collect_wall:.3f}s for a fresh `pytest --collect-only` of the "
            "suite (after an untimed warmup)"
        )
        print()
        for r in range(args.rounds):
            b = run_bare(folder, args.safety)
            bare.append(b)
            print(f"  round {r + 1}: signal     {fmt(b.wall)}  {ran_text(b)}", flush=True)
            s = run_supervisor(folder, SUPERVISOR_SAFETY)
            sup.append(s)
            ratio = f"  ratio {s.wall / b.wall:.3f}" if b.finished else ""
            print(f"  round {r + 1}: supervisor {fmt(s.wall)}  {ran_text(s)}{ratio}", flush=True)
    except BenchError as exc:
        print(f"\nFAILED RUN: {exc}", file=sys.stderr)
        print(f"(folder kept for inspection: {root})", file=sys.stderr)
        return 1

    # ---------------------------------------------------------------- summary
    all_bare_finished = all(o.finished for o in bare)
    mb = statistics.median(o.wall for o in bare)
    ms = statistics.median(o.wall for o in sup)
    print("\n== summary ==")
    print(
        f"  signal     median {fmt(mb)}  (all: {', '.join(f'{o.wall:.3f}' for o in bare)})"
        + ("" if all_bare_finished else "  [includes runs killed at the safety timeout]")
    )
    print(f"  supervisor median {fmt(ms)}  (all: {', '.join(f'{o.wall:.3f}' for o in sup)})")
    for name, runs in (("signal", bare), ("supervisor", sup)):
        seen = sorted({ran_text(o) for o in runs})
        print(f"  {name:<10} {' | '.join(seen)}")

    # where the supervisor's time goes (median over rounds)
    hung_total = statistics.median(sum(o.hung_durations) for o in sup)
    gaps_total = statistics.median(sum(o.restart_gaps) for o in sup)
    per_hang = statistics.median(d for o in sup for d in o.hung_durations) if hung_total else 0
    per_gap = statistics.median(g for o in sup for g in o.restart_gaps) if gaps_total else 0
    print("\n  where the supervisor's time goes (medians over rounds):")
    print(
        f"    in the {len(HANGS)} hung tests      {fmt(hung_total)}  "
        f"({per_hang:.3f}s each: {TIMEOUT:g}s deadline + {per_hang - TIMEOUT:.3f}s to detect "
        f"and get the dump; grace {GRACE} is the cap when no dump comes)"
    )
    print(
        f"    hang → next test starts  {fmt(gaps_total)}  "
        f"({per_gap:.3f}s each: kill the group, start pytest again, collect)"
    )
    print(
        f"    everything else          {fmt(ms - hung_total - gaps_total)}  "
        f"(startup, the {TESTS - len(HANGS)} passing tests, history, exit)"
    )
    if all_bare_finished:
        print(
            f"    signal, for comparison   {fmt(mb)}  = {len(HANGS)} x {TIMEOUT:g}s timeouts + "
            f"{mb - len(HANGS) * TIMEOUT:.3f}s for everything else, in one pytest process"
        )
        budget = (TARGET - 1) * mb
        print(
            f"    budget at {TARGET:g}x            {fmt(budget)}  over the signal run = "
            f"{budget / len(HANGS):.3f}s per hang; measured extra per hang: "
            f"{per_hang - TIMEOUT:.3f}s detection + {per_gap:.3f}s restart "
            f"(a fresh `pytest --collect-only` alone: {collect_wall:.3f}s)"
        )

    print(
        "\n  how each tool reported each hang (last round); stuck line = the statement"
        " the test blocks on:"
    )
    sup_seen = supervisor_seen(folder / ".netra" / "history.db")
    bare_seen = signal_seen(bare[-1].output) if bare[-1].finished else []
    for i, test in enumerate(STUCK_AT):
        print(f"    {test}  (stuck at {stuck_text(test)})")
        s_ = sup_seen[i]
        print(f"      supervisor  {s_.outcome}: {s_.message}")
        print(
            f"                  dump's innermost test-file frame {s_.where}; "
            f"names the stuck line: {'yes' if s_.names_stuck_line else 'NO'}"
        )
        if not bare[-1].finished:
            print(f"      signal      run did not finish within {args.safety:g}s (killed)")
            continue
        b_ = bare_seen[i]
        print(f"      signal      {b_.outcome}: {b_.message}")
        print(
            f"                  traceback ends at {b_.where}; "
            f"names the stuck line: {'yes' if b_.names_stuck_line else 'NO'}"
        )

    print("\n  the signal method, as observed here (last round):")
    if not bare[-1].finished:
        print(
            f"    the run did not finish within {args.safety:g}s and was killed; the tests it"
            " had not reported by then never ran (see its output with --keep for where it stopped)"
        )
    else:
        for b_ in bare_seen:
            kind = HANGS[int(b_.test[5:8])]
            if b_.outcome != "failed":
                print(f"    {kind:<8} not reported as failed ({b_.outcome})")
                continue
            how = "interrupted" if "Timeout" in b_.message else "failed (not a timeout?)"
            names = (
                "its traceback names the stuck line"
                if b_.names_stuck_line
                else f"its traceback does NOT name the stuck line ({stuck_text(b_.test)});"
                f" it ends at {b_.where}"
            )
            print(f"    {kind:<8} {how}, the run went on; {names}")
        lock = next((b_ for b_ in bare_seen if HANGS[int(b_.test[5:8])] == "lock"), None)
        if lock is not None and lock.outcome == "failed":
            print(
                "    lock: SIGALRM did interrupt the main thread's blocking Lock.acquire()"
                " (on POSIX, Python >= 3.2 lock waits are interruptible by signals), so this"
                " deadlock is not a weakness of the signal method here. Not covered by this"
                " suite: a hang outside the main thread's Python code (C code that does not"
                " return to the interpreter), which SIGALRM's Python handler cannot reach."
            )

    # ---------------------------------------------------------------- verdicts
    ratios = [s_.wall / b_.wall for b_, s_ in zip(bare, sup)]
    ratio = statistics.median(ratios)
    every_sup = all(o.ran == TESTS for o in sup)
    every_bare = all_bare_finished and all(o.ran == TESTS for o in bare)
    print()
    print(
        f"{'PASS' if ratio <= TARGET else 'MISS'} wall: median of per-round ratios "
        f"supervisor/signal {ratio:.3f} (ratio of medians {ms / mb:.3f}; target <= "
        f"{TARGET:.1f}, {args.rounds} rounds)"
        + ("" if all_bare_finished else " [signal runs were cut at the safety timeout]")
    )
    print(
        f"{'PASS' if every_sup else 'MISS'} every test run by the supervisor: "
        f"{', '.join(str(o.ran) for o in sup)} of {TESTS} recorded per round (target: all)"
    )
    print(
        f"{'yes ' if every_bare else 'NO  '} every test run by pytest --timeout-method=signal: "
        + ", ".join(str(o.ran) if o.finished else "did not finish" for o in bare)
        + f" of {TESTS} per round"
    )
    if hasattr(os, "getloadavg"):
        print(f"\nload avg at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
