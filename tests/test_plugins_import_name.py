"""Our built-in plugins and a project's own ``plugins`` package live side by side.

The built-ins are the repository's ``plugins/`` folder, installed under the import name
``netra_supervisor_plugins`` (pyproject.toml). Installed as ``plugins``, run as
``python -m supervisor.cli`` from a project with a ``plugins/`` package of its own
(the way docs/plugins.md tells plugin authors to test), the project's package hid ours
and every built-in failed to import; and the wheel installed a top-level ``plugins``
into site-packages. The project's tests, run by the supervisor with the project as
cwd, must keep importing their own ``plugins`` (serially and with xdist workers).

Checked for real, for what a user gets from ``pip install -e .`` and from a wheel
(``pip install .``), each in a fresh venv (``--no-deps --no-build-isolation``: from the
local tree; the dependencies come from this environment through a ``.pth`` line, and
hatchling is installed into the venv first). The venvs are cached under
``$NETRA_TEST_CACHE`` like tests/test_plugin_package.py's, keyed by what they hold.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from cli_helpers import query, write
from test_plugin_package import _run, cache_dir, locked

REPO = Path(__file__).resolve().parents[1]
RECIPE = 2  # bump to rebuild the cached venvs


def _digest(editable: bool) -> str:
    """What a venv's install depends on: the packaging, and for a wheel every source."""
    digest = hashlib.sha256(f"{RECIPE}\n{editable}\n{sys.prefix}\n{sys.version}".encode())
    files = [REPO / "pyproject.toml", REPO / "plugins" / "__init__.py"]
    if not editable:
        files += sorted((REPO / "supervisor").rglob("*")) + sorted((REPO / "plugins").rglob("*"))
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(REPO).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def installed_venv(editable: bool) -> Path:
    """The bin folder of a venv with netra-supervisor pip-installed from this tree."""
    cache = cache_dir()
    key = f"{'editable' if editable else 'wheel'}-install-{_digest(editable)}"
    home = cache / key
    python = home / "venv" / "bin" / "python"
    with locked(cache / f"{key}.lock"):
        if (home / ".ready").exists():
            return python.parent
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        log = home / "setup.log"
        _run([sys.executable, "-m", "venv", str(home / "venv")], log)
        out = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        )
        # a plain path line: this environment's packages, but not its .pth files (ours
        # may be an editable install of this very tree)
        ours = sysconfig.get_paths()["purelib"]
        Path(out.stdout.strip(), "netra_host_env.pth").write_text(ours + "\n")
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run([*pip, "hatchling>=1.21", "editables>=0.3"], log)  # our build backend
        target = ["-e", str(REPO)] if editable else [str(REPO)]
        _run([*pip, "--no-deps", "--no-build-isolation", *target], log)
        (home / ".ready").write_text("ok\n")
        return python.parent


USER_TEST = """
import os

import plugins
from plugins.x import y


def test_our_own_plugins_package():
    assert y == 42
    assert plugins.__file__ == os.path.join(os.getcwd(), "plugins", "__init__.py")
"""


def user_project(root: Path) -> Path:
    """A project whose tests import its own ``plugins`` package (rootdir = cwd)."""
    write(root / "plugins" / "__init__.py", "")
    write(root / "plugins" / "x.py", "y = 42\n")
    write(root / "tests" / "test_uses_plugins.py", USER_TEST)
    write(
        root / "netra-supervisor.toml",
        """
        [[suite]]
        name = "serial"
        args = ["tests", "-p", "no:cacheprovider"]

        [[suite]]
        name = "workers"
        args = ["tests", "-p", "no:cacheprovider"]
        workers = 2
        """,
    )
    return root


def supervisor(bin_dir: Path, how: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    command = (
        [str(bin_dir / "python"), "-m", "supervisor.cli"]
        if how == "python -m"
        else [str(bin_dir / "netra-supervisor")]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NETRA_STRICT_PLUGINS"] = "1"  # a built-in that fails to import: exit 2
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("install", ["editable", "wheel"])
def test_a_projects_own_plugins_package_and_ours_do_not_shadow_each_other(tmp_path, install):
    bin_dir = installed_venv(editable=install == "editable")
    for how in ("python -m", "console script"):
        project = user_project(tmp_path / how.replace(" ", "-"))
        listing = supervisor(bin_dir, how, ["plugins"], project)
        assert listing.returncode == 0, listing.stdout + listing.stderr
        rows = [line.split() for line in listing.stdout.splitlines()[1:] if line.strip()]
        builtins = {row[0]: row[-1] for row in rows if row[2] == "builtin"}
        assert builtins == {
            "builtin_deploy": "ok",
            "builtin_pytest": "ok",
            "builtin_sinks": "ok",
            "builtin_websocket": "ok",
        }, listing.stdout

        proc = supervisor(bin_dir, how, ["run", "--headless", "--once"], project)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        db = project / ".netra/history.db"
        outcomes = query(
            db,
            "select t.suite, r.outcome from results r join tests t on t.id = r.test_id"
            " order by t.suite",
        )
        assert outcomes == [("serial", "passed"), ("workers", "passed")], proc.stdout


def test_the_wheel_installs_no_top_level_plugins_package(tmp_path):
    bin_dir = installed_venv(editable=False)
    probe = (
        "import importlib.util, json, netra_supervisor_plugins, supervisor;"
        "print(json.dumps([importlib.util.find_spec('plugins') is None,"
        " netra_supervisor_plugins.__path__, supervisor.__file__]))"
    )
    proc = subprocess.run(
        [str(bin_dir / "python"), "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    import json

    no_plugins, plugins_path, supervisor_file = json.loads(proc.stdout)
    assert no_plugins
    site = Path(supervisor_file).parents[1]
    # the wheel's own copy, not a working tree
    assert plugins_path == [str(site / "netra_supervisor_plugins")]
    assert sorted(p.name for p in (site / "netra_supervisor_plugins").glob("builtin_*.py")) == [
        "builtin_deploy.py",
        "builtin_pytest.py",
        "builtin_sinks.py",
        "builtin_websocket.py",
    ]


def test_an_editable_install_uses_the_working_trees_plugin_files(tmp_path):
    bin_dir = installed_venv(editable=True)
    probe = "import netra_supervisor_plugins.builtin_sinks as m; print(m.__file__)"
    proc = subprocess.run(
        [str(bin_dir / "python"), "-c", probe], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(REPO / "plugins" / "builtin_sinks.py")
