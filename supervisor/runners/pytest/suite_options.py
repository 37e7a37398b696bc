"""The pytest kind's checks of a ``[[suite]]`` before anything runs.

A ``cwd`` that is not a folder, or a ``python`` that cannot be run, would otherwise be
found only when the suite's turn comes, possibly hours into a run: they are
configuration errors (exit 2, one line naming the file and the key). Unless a deploy
backend runs first: a deploy may create the folder or the interpreter, so then the
runner reports them when it starts the suite (an error result), as it always did.
"""

from __future__ import annotations

import os
from pathlib import Path

from supervisor.config import Config, OptionError, SuiteConfig
from supervisor.runners.pytest.hosts import host_problem
from supervisor.runners.pytest.launch import resolve_python


def validate_suite(suite: SuiteConfig, config: Config) -> None:
    """Raise :class:`OptionError` for a ``cwd``, ``python`` or ``hosts`` spec that
    cannot work."""
    for spec in suite.hosts:
        problem = host_problem(spec)
        if problem:
            raise OptionError("hosts", problem)
    if config.deploy.backend != "none":
        return  # the deploy may make them; the runner checks again at run time
    cwd = config.resolve(suite.cwd)
    if not cwd.is_dir():
        raise OptionError(
            "cwd", f"{suite.cwd!r} is not a folder (looked for {cwd}); create it or fix the path"
        )
    problem = python_problem(suite.python, config.base_dir)
    if problem:
        raise OptionError("python", problem)


def python_problem(python: str, base_dir: Path) -> str:
    """Why the interpreter ``python`` (as :func:`resolve_python` finds it) cannot be
    run, or ``""``. Only looked at, not started: starting it costs a second."""
    fix = 'point it at the interpreter of the project under test, e.g. ".venv/bin/python"'
    found = resolve_python(python, base_dir)
    if found is None:
        if "/" in python or os.sep in python:
            where = Path(python).expanduser()
            where = where if where.is_absolute() else base_dir / where
            return f"{python!r} does not exist (looked for {where}); {fix}"
        return f"{python!r} is not found on PATH; {fix}"
    if not Path(found).is_file() or not os.access(found, os.X_OK):
        return f"{python!r} is not an executable file ({found}); {fix}"
    return ""
