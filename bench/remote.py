#!/usr/bin/env python3
"""What does supervising remote xdist workers cost over xdist alone? (issue 16)

A benchmark (a report, not a test). It starts a real sshd on a loopback port (keys
and config in a temporary folder: ``tests/sshd_server.py``), generates 1000 tests x
10 ms (10 files x 100) and a separate copy of them as the remote ``chdir``, and runs,
alternately, ``--rounds`` times each (after one untimed warm-up round of both):

* bare:       ``python -m pytest -q -p no:cacheprovider -d --tx 2*ssh=...//chdir=...``
* supervisor: ``python -m supervisor.cli run --headless`` with ``workers = 0`` and
  ``hosts = ["2*ssh=..."]``: the same two ssh workers, the same tests, history on.

Both use this interpreter on both sides. Every run is checked (bare: ``1000 passed``;
supervisor: 1000 ``passed`` rows). The verdict is the median of the per-round ratios
supervisor/bare (adjacent runs share the machine's load); the spread is the min and
max ratio. Target: <= 1.10.

Usage::

    .venv/bin/python bench/remote.py             # 5 rounds
    .venv/bin/python bench/remote.py --rounds 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import sshd_server  # noqa: E402

FILES, PER_FILE, SLEEP = 10, 100, 0.01
TEST = f"""
import time
import pytest

@pytest.mark.parametrize("i", range({PER_FILE}))
def test_sleeps(i):
    time.sleep({SLEEP})
"""


def _timed(cmd: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - start, proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    total = FILES * PER_FILE
    with tempfile.TemporaryDirectory(prefix="netra-bench-remote-") as tmp:
        base = Path(tmp)
        server = sshd_server.start(base / "sshd")
        try:
            project = base / "project"
            for n in range(FILES):
                path = project / "tests" / f"test_s{n}.py"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(TEST)
            # no path on the command line: bare xdist refuses one outside its rsync
            # roots over ssh (the trap in issue 16); both find the tests via testpaths
            (project / "pytest.ini").write_text("[pytest]\ntestpaths = tests\n")
            shutil.copytree(project, base / "remote")
            spec = server.spec(sys.executable, base / "remote", 2)
            (project / "netra-supervisor.toml").write_text(
                f'[run]\nuntil = "once"\n[[suite]]\nname = "s"\n'
                f"workers = 0\nhosts = [{spec!r}]\n".replace("'", '"')
            )
            bare = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            bare += ["-d", "--tx", spec]
            sup = [sys.executable, "-m", "supervisor.cli", "run", "--headless"]
            ratios, bares, sups = [], [], []
            for round_ in range(args.rounds + 1):
                t_bare, proc = _timed(bare, project)
                if f"{total} passed" not in proc.stdout:
                    print(proc.stdout[-2000:], proc.stderr[-2000:])
                    return 1
                db = project / ".netra" / "history.db"
                if db.exists():
                    shutil.rmtree(project / ".netra")
                t_sup, proc = _timed(sup, project)
                rows = (
                    sqlite3.connect(db)
                    .execute("select count(*) from results where outcome = 'passed'")
                    .fetchone()[0]
                )
                if rows != total:
                    print(proc.stdout[-2000:], proc.stderr[-2000:])
                    return 1
                if round_ == 0:
                    continue  # warm-up
                bares.append(t_bare)
                sups.append(t_sup)
                ratios.append(t_sup / t_bare)
                print(
                    f"round {round_}: bare {t_bare:.2f}s supervisor {t_sup:.2f}s "
                    f"ratio {t_sup / t_bare:.3f}"
                )
        finally:
            sshd_server.stop(server.proc)
    median = statistics.median(ratios)
    print(
        f"bare median {statistics.median(bares):.2f}s, supervisor median "
        f"{statistics.median(sups):.2f}s; ratio median {median:.3f} "
        f"(spread {min(ratios):.3f}..{max(ratios):.3f}); target <= 1.10: "
        + ("MET" if median <= 1.10 else "MISS")
    )
    return 0


if __name__ == "__main__":
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.exit(main())
