"""CI runs what the README says, on the lowest and highest supported Python.

The README's test command is the contract a new user follows; ``.ci/run`` must run it
verbatim (so a missing dependency fails CI), and the end-to-end list in
``tests/conftest.py`` must name modules that exist (a renamed module would silently
drop out of the 3.10 pass).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from e2e_modules import E2E_MODULES

ROOT = Path(__file__).resolve().parent.parent


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    commands = [b for b in blocks if "pytest" in b and ".[test]" in b]
    assert commands, "the README has no test command block"
    return commands[0].strip()


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    command = _readme_test_command()
    ci = (ROOT / ".ci" / "run").read_text()
    assert any(line.strip() == command for line in ci.splitlines()), command
    lowest = command.replace("python3 -m venv .venv ", '"$LOWEST" -m venv .venv-3.10 ')
    lowest = lowest.replace(".venv/bin/", ".venv-3.10/bin/") + " -m e2e"
    assert any(line.strip() == lowest for line in ci.splitlines()), lowest


def test_every_e2e_module_exists() -> None:
    missing = sorted(m for m in E2E_MODULES if not (ROOT / "tests" / f"{m}.py").exists())
    assert not missing


def test_find_python_names_the_fix_when_a_python_is_missing(tmp_path: Path) -> None:
    # bash, ls and sort, but no pyenv shims and an empty pyenv root
    env = {**os.environ, "PATH": "/usr/bin:/bin", "PYENV_ROOT": str(tmp_path / "pyenv")}
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "find-python"), "3.99"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert "no Python 3.99" in done.stderr and "pyenv install 3.99" in done.stderr


def test_find_python_finds_a_pyenv_install(tmp_path: Path) -> None:
    fake = tmp_path / "pyenv" / "versions" / "3.99.1" / "bin"
    fake.mkdir(parents=True)
    python = fake / "python3.99"
    python.write_text("#!/bin/sh\nexit 0\n")
    python.chmod(0o755)
    env = {**os.environ, "PATH": "/usr/bin:/bin", "PYENV_ROOT": str(tmp_path / "pyenv")}
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "find-python"), "3.99"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(python)
