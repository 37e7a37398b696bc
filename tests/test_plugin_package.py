"""Plugins written by teams, used for real by ``netra-supervisor run --headless``.

* ``tests/fixtures/example_plugin_pkg`` is a plugin package with its own pyproject and
  an entry point in the ``netra_supervisor`` group. It is pip-installed for real into
  a fresh venv (``pip install --no-deps --no-build-isolation``, so from local paths
  only; its build backend, flit_core, is installed into that venv first). The venv
  sees this environment's packages, netra-supervisor included, through a ``.pth``
  file, and is cached under ``$NETRA_TEST_CACHE`` (default
  ``~/.cache/netra-supervisor-tests``) keyed by the fixture's content, so only the
  first run pays for it.
* ``tests/fixtures/example_plugin_local/team_plugin.py`` is a single file found
  through ``[plugins] dirs``.

Each registers a suite kind, a deploy backend and a log sink; the run uses all three,
and the test checks their effects: results in the DB from the plugin's suite, the
deploy row from its backend, the sink's output file.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from cli_helpers import query, write

FIXTURES = Path(__file__).parent / "fixtures"
PACKAGE = FIXTURES / "example_plugin_pkg"
LOCAL_PLUGIN = FIXTURES / "example_plugin_local" / "team_plugin.py"
RECIPE = 1  # bump to rebuild the cached venv


def cache_dir() -> Path:
    root = os.environ.get("NETRA_TEST_CACHE") or "~/.cache/netra-supervisor-tests"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(path: Path):
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(cmd)}\n".encode())
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")


def _key() -> str:
    digest = hashlib.sha256(f"{RECIPE}\n{sys.prefix}\n{sys.version}".encode())
    for path in sorted(PACKAGE.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(path.relative_to(PACKAGE).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def example_venv() -> Path:
    """The python of a venv with the example plugin package pip-installed (cached)."""
    cache = cache_dir()
    key = f"example-plugin-{_key()}"
    home = cache / key
    python = home / "venv" / "bin" / "python"
    with locked(cache / f"{key}.lock"):
        if (home / ".ready").exists() and python.exists():  # its interpreter still there
            return python
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
        ours = sysconfig.get_paths()["purelib"]  # netra-supervisor and its dependencies
        Path(out.stdout.strip(), "netra_host_env.pth").write_text(
            f"import site; site.addsitedir({ours!r})\n"
        )
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run([*pip, "flit_core>=3.4,<5"], log)  # the package's build backend
        src = home / "src"  # build from a copy: the fixture folder stays clean
        shutil.copytree(PACKAGE, src, ignore=shutil.ignore_patterns("__pycache__", "build"))
        _run([*pip, "--no-deps", "--no-build-isolation", str(src)], log)
        (home / ".ready").write_text("ok\n")
        return python


def run(python: Path | str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("NETRA_STRICT_PLUGINS",)}
    env["COLUMNS"] = "200"  # the plugins table is read line by line: no wrapped rows
    return subprocess.run(
        [str(python), "-m", "supervisor.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_installed_plugin_package_is_found_through_its_entry_point_and_used(tmp_path):
    python = example_venv()
    # really installed in that venv, not importable from ours
    shown = subprocess.run(
        [str(python), "-m", "pip", "show", "netra-example-plugin"], capture_output=True, text=True
    )
    assert shown.returncode == 0 and "Version: 0.3.0" in shown.stdout, shown.stdout + shown.stderr
    assert subprocess.run([sys.executable, "-c", "import netra_example_plugin"]).returncode != 0

    write(tmp_path / "README.txt", "present\n")
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        until = "once"

        [deploy]
        backend = "stamp"

        [[suite]]
        name = "files"
        kind = "file-checks"
        expect_files = ["deployed.stamp", "README.txt", "missing.txt"]

        [[sink]]
        kind = "csv"
        path = "out/events.csv"
        columns = ["event", "nodeid", "outcome"]
        """,
    )
    listing = run(python, ["plugins"], tmp_path)
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith("example "))
    assert "entry point netra-example-plugin" in row and "0.3.0" in row and row.endswith("ok")

    proc = run(python, ["run", "--headless"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # missing.txt is missing
    assert "plugin error" not in proc.stdout, proc.stdout
    db = tmp_path / ".netra/history.db"
    assert sorted(
        query(
            db,
            "select t.suite, t.nodeid, r.outcome from results r join tests t on t.id = r.test_id",
        )
    ) == [
        ("files", "files::README.txt", "passed"),
        ("files", "files::deployed.stamp", "passed"),  # the backend's stamp file
        ("files", "files::missing.txt", "failed"),
    ]
    assert query(db, "select backend, revision, status, message from deploys") == [
        ("stamp", "stamp-1", "ok", "stamped")
    ]
    assert query(db, "select deploy_revision from iterations") == [("stamp-1",)]
    with open(tmp_path / "out/events.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["event", "nodeid", "outcome"]
    assert rows[1][0] == "run_started" and rows[-1][0] == "run_finished"
    assert ["test_result", "files::missing.txt", "failed"] in rows
    assert ["deploy_finished", "", ""] in rows


def test_local_plugin_file_is_found_through_plugins_dirs_and_used(tmp_path):
    (tmp_path / "team_plugins").mkdir()
    shutil.copy(LOCAL_PLUGIN, tmp_path / "team_plugins" / "team_plugin.py")
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        until = "once"
        env = { STAGING_HOST = "staging.internal" }

        [deploy]
        backend = "touch"

        [plugins]
        dirs = ["team_plugins"]

        [[suite]]
        name = "env"
        kind = "env-checks"
        require = ["STAGING_HOST", "NETRA_EXAMPLE_NEVER_SET"]

        [[sink]]
        kind = "lines"
        path = "out/events.txt"
        """,
    )
    listing = run(sys.executable, ["plugins"], tmp_path)
    row = next(line for line in listing.stdout.splitlines() if line.startswith("team_plugin "))
    assert "dir team_plugins" in row and row.endswith("ok"), listing.stdout

    proc = run(sys.executable, ["run", "--headless"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "plugin error" not in proc.stdout, proc.stdout
    db = tmp_path / ".netra/history.db"
    assert sorted(
        query(
            db,
            "select t.nodeid, r.outcome, r.message from results r join tests t on t.id = r.test_id",
        )
    ) == [
        ("env::NETRA_EXAMPLE_NEVER_SET", "failed", "$NETRA_EXAMPLE_NEVER_SET is not set"),
        ("env::STAGING_HOST", "passed", None),
    ]
    assert query(db, "select backend, revision, status from deploys") == [
        ("touch", "touch-1", "ok")
    ]
    assert (tmp_path / ".touched-1").exists()
    lines = (tmp_path / "out/events.txt").read_text().splitlines()
    assert lines[0] == "run_started - -" and lines[-1] == "run_finished - -"
    assert "test_result env::STAGING_HOST passed" in lines
    assert "test_result env::NETRA_EXAMPLE_NEVER_SET failed" in lines


# --------------------------------------------------------------------------- the guide

GUIDE = Path(__file__).parent.parent / "docs" / "plugins.md"


def test_every_hookspec_is_in_the_writing_plugins_guide():
    import inspect
    import re

    from supervisor import hookspecs

    text = GUIDE.read_text()
    names = [
        n for n, f in vars(hookspecs).items() if n.startswith("netra_") and inspect.isfunction(f)
    ]
    assert len(names) >= 12
    for name in names:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        # each hook has its own heading with its full signature
        assert re.search(rf"^#+ `{name}\({re.escape(params)}\)`", text, re.M), name
    for word in ("NETRA_STRICT_PLUGINS", "NETRA_TRACE_HOOKS", "quarantine", "[plugins] dirs"):
        assert word in text


def test_the_guides_python_examples_compile():
    import re

    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) >= 10
    for index, block in enumerate(blocks):
        compile(block, f"docs/plugins.md block {index}", "exec")


def test_the_readme_links_the_guide():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert "docs/plugins.md" in readme


def test_every_event_type_is_in_the_guides_table():
    from supervisor.sinks import EVENT_KINDS

    text = GUIDE.read_text(encoding="utf-8")
    missing = [kind for kind in sorted(EVENT_KINDS) if f"| `{kind}` |" not in text]
    assert missing == [], f"event types missing from docs/plugins.md: {missing}"
