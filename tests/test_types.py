"""The type hints are checked: ``mypy`` on ``supervisor`` and ``plugins`` is clean.

The configuration is ``[tool.mypy]`` in pyproject.toml: every flag of ``--strict``
on ``supervisor.core`` and ``supervisor.store``, plain checking elsewhere. A second
run on probe modules proves the strict flags reach those two packages and only them
(the real code being clean would not show a lost override).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"

# Code that plain mypy accepts and --strict refuses twice (no-untyped-def, type-arg).
PROBE = "def untyped(x):\n    return x\n\n\ndef bare() -> list:\n    return []\n"


def mypy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """This interpreter's mypy, with its own output (colour off) for the failure message."""
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--no-color-output", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_mypy_is_clean():
    # From the repo root with no targets: pyproject's `packages` says what is checked.
    # The cache stays in .mypy_cache (git-ignored): a second run takes about a second.
    result = mypy(cwd=REPO)
    out = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy found errors (fix the code, see README):\n{out}"
    assert "Success: no issues found" in result.stdout, out


def test_core_and_store_are_checked_strictly_and_the_rest_is_not(tmp_path):
    for package in ("core", "store", "tui"):
        folder = tmp_path / "supervisor" / package
        folder.mkdir(parents=True)
        (folder / "__init__.py").write_text("")
        (folder / "probe.py").write_text(PROBE)
    (tmp_path / "supervisor" / "__init__.py").write_text("")
    result = mypy(
        "--config-file",
        str(PYPROJECT),
        "--cache-dir",
        str(tmp_path / "cache"),
        "supervisor",
        cwd=tmp_path,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    errors = {line.split(": error: ")[0] for line in out.splitlines() if ": error: " in line}
    assert errors == {
        "supervisor/core/probe.py:1",
        "supervisor/core/probe.py:5",
        "supervisor/store/probe.py:1",
        "supervisor/store/probe.py:5",
    }, out
