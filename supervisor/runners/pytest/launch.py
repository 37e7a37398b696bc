"""How a supervised pytest is started: interpreter, command line, environment, tag.

Shared by the runner and by :mod:`early` (which starts a run's first pytest before
the runner exists), so both build exactly the same process; an early pytest is used
only when the two agree. Standard library only and cheap to import: the early start
happens while the rest of the supervisor is still being imported.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from supervisor import procs
from supervisor.runners.pytest import hosts, protocol

if TYPE_CHECKING:
    from supervisor.config import SuiteConfig

#: the folder put on the child's PYTHONPATH: only the shim that loads child_plugin.py
CHILD_PATH = Path(__file__).resolve().with_name("childpath")


def resolve_python(python: str, base_dir: Path) -> str | None:
    """The interpreter to run: a path (relative to the config), a name on PATH, or ours."""
    if not python:
        return sys.executable
    if "/" in python or os.sep in python:
        path = Path(python).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        return str(path) if path.exists() else None
    return shutil.which(python)


def pytest_command(suite: SuiteConfig, python: str, collect_only: bool = False) -> list[str]:
    """pytest with our plugin and the suite's args (plus ``-n`` for ``workers``, or
    ``-d --tx ...`` with ``hosts``: see :mod:`hosts`)."""
    args = list(suite.args)
    cmd = [python, "-m", "pytest", "-p", protocol.PLUGIN_MODULE]
    if collect_only:
        return [*cmd, *args, "--collect-only", "-q"]
    if "--continue-on-collection-errors" not in args:
        cmd.append("--continue-on-collection-errors")
    if suite.hosts:
        cmd += hosts.tx_args(suite.workers, suite.hosts, args)
    elif suite.workers > 1 and not any(
        a in ("-n", "--numprocesses") or a.startswith(("-n=", "--numprocesses=")) for a in args
    ):
        cmd += ["-n", str(suite.workers)]
    return [*cmd, *args]


def child_env(extra: Mapping[str, str], socket_path: str, remote: bool = False) -> dict[str, str]:
    """Our environment, the suite's on top, and what the child plugin needs to report
    (``remote``: and the names of the suite's variables, for its remote workers)."""
    env = dict(os.environ)
    env.update(extra)
    for key in protocol.SCRUB_ENV:
        env.pop(key, None)
    previous = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = str(CHILD_PATH) + (os.pathsep + previous if previous else "")
    env[protocol.SOCKET_ENV] = socket_path
    env[protocol.HEARTBEAT_ENV] = "1"
    if remote and extra:  # what remote xdist workers get too (child_remote.py)
        env[protocol.FORWARD_ENV] = ",".join(sorted(extra))
    return env


def attempt_tag(iteration: int, phase: int, suite: str, number: int | None = None) -> str:
    """The run tag of a suite's pytest processes (``procs.tag``): attempt ``number``,
    or with ``None`` the prefix of every attempt of the suite in that phase."""
    scope = [f"i{iteration}", f"p{phase}", suite]
    if number is not None:
        scope.append(f"a{number}")
    return procs.tag(*scope)


def maxfail_of(args: tuple[str, ...] | list[str]) -> int:
    """pytest's own stop-after-N-failures from the suite's args (-x is 1), else 0."""
    limit = 0
    for i, arg in enumerate(args):
        if arg in ("-x", "--exitfirst") or _short_flags_have_x(arg):
            limit = 1
        elif arg.startswith("--maxfail="):
            value = arg.split("=", 1)[1]
            limit = int(value) if value.isdigit() else limit
        elif arg == "--maxfail" and i + 1 < len(args) and str(args[i + 1]).isdigit():
            limit = int(args[i + 1])
    return limit


#: pytest's short options that take a value: in a group such as ``-vk expr`` the rest
#: of the group after one of them is its value, not more flags.
_SHORT_WITH_VALUE = frozenset("kmpcoWrnP")


def _short_flags_have_x(arg: str) -> bool:
    """Whether a group of short flags (``-xvs``) holds ``-x``."""
    if not arg.startswith("-") or arg.startswith("--") or len(arg) < 3:
        return False
    for letter in arg[1:]:
        if letter == "x":
            return True
        if letter in _SHORT_WITH_VALUE:
            return False
    return False
