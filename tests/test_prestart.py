"""``netra-supervisor run`` starts the first pytest before the rest of itself (prestart.py).

Real CLI subprocesses, real pytest. The suite's conftest records, for every pytest
process that imports it, its pid and whether it was started as a standby (the prestart
is one); its test records which kind of process ran it. So each test can tell whether
the prestarted pytest was adopted, and check that one that was not is gone.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import query, run_cli, write

from supervisor.runners.pytest.early import STARTER

CONFTEST = """
import json, os
with open(os.path.join(os.path.dirname(__file__), "pids.jsonl"), "a") as fh:
    fh.write(json.dumps({"pid": os.getpid(),
                         "standby": os.environ.get("NETRA_CHILD_STANDBY") == "1"}) + "\\n")
"""

TEST = """
import os
def test_one():
    with open(os.path.join(os.path.dirname(__file__), "ran.txt"), "a") as fh:
        fh.write("standby\\n" if os.environ.get("NETRA_CHILD_STANDBY") == "1" else "fresh\\n")
def test_two():
    pass
"""

CONFIG = """
[run]
db = ".netra/history.db"

[[suite]]
name = "s"
args = ["-q", "-p", "no:cacheprovider", "test_it.py"]
"""

HOOK_PLUGIN = """
from supervisor.hookspecs import hookimpl

@hookimpl
def netra_run_started(run_id, config):
    pass
"""


def project(tmp_path: Path, config: str = CONFIG) -> Path:
    write(tmp_path / "conftest.py", CONFTEST)
    write(tmp_path / "test_it.py", TEST)
    # the suite's interpreter: a script that notes each pytest's pid, then becomes python
    write(
        tmp_path / "py.sh",
        f'#!/bin/sh\necho $$ >> "{tmp_path}/spawned.txt"\nexec "{sys.executable}" "$@"\n',
        mode=0o755,
    )
    write(tmp_path / "netra-supervisor.toml", config.replace("[[suite]]", SUITE_PYTHON))
    # not the project's first run: its pytest kind offered an early start then
    (tmp_path / ".netra" / "logs").mkdir(parents=True)
    write(tmp_path / ".netra" / "logs" / "early-starts.json", json.dumps({"pytest": STARTER}))
    return tmp_path


SUITE_PYTHON = '[[suite]]\npython = "./py.sh"'


def clean_env(**extra: str) -> dict[str, str]:
    """Our environment without variables that would switch the prestart off or mask."""
    env = {k: v for k, v in os.environ.items() if k != "NETRA_NO_PRESTART"}
    env.pop("NETRA_STRICT_PLUGINS", None)
    env.update(extra)
    return env


def spawned(tmp_path: Path) -> list[int]:
    """The pids of every pytest the run started, in order."""
    path = tmp_path / "spawned.txt"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def collected_as_standby(tmp_path: Path) -> list[bool]:
    """For each pytest that imported the conftest: was it started as a standby?"""
    path = tmp_path / "pids.jsonl"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line)["standby"] for line in lines]


def gone(pid: int, wait: float = 5.0) -> bool:
    """The process has exited within ``wait`` seconds (a zombie counts as exited)."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def no_prestart_leftovers(tmp_path: Path, logs: Path | None = None) -> None:
    logs = logs or tmp_path / ".netra" / "logs"
    assert not list(logs.glob("prestart-*.log")), "a prestart log was left behind"
    for pid in spawned(tmp_path):
        assert gone(pid), f"pytest {pid} is still running"


def test_the_first_pytest_is_started_early_and_adopted(tmp_path):
    project(tmp_path)
    run = run_cli(["run", "--headless", "--once"], tmp_path, env=clean_env())
    assert run.returncode == 0, run.stdout + run.stderr
    # one pytest ran the tests, and it was the one started as a standby
    assert len(spawned(tmp_path)) == 1
    assert collected_as_standby(tmp_path) == [True]
    assert (tmp_path / "ran.txt").read_text() == "standby\n"
    db = tmp_path / ".netra" / "history.db"
    assert query(db, "SELECT outcome, COUNT(*) FROM results GROUP BY outcome") == [("passed", 2)]
    # its output went into the run's log like any other attempt's
    log = next((tmp_path / ".netra" / "logs").glob("run-*/s-i1-p1-a1.log")).read_text()
    assert log.startswith("$ ") and "2 passed" in log
    no_prestart_leftovers(tmp_path)


@pytest.mark.parametrize("why", ["switched off", "first run", "a secret in the environment"])
def test_no_prestart(tmp_path, why):
    project(tmp_path)
    env = clean_env()
    if why == "switched off":
        env["NETRA_NO_PRESTART"] = "1"
    elif why == "first run":
        (tmp_path / ".netra" / "logs" / "early-starts.json").unlink()
        (tmp_path / ".netra" / "logs").rmdir()
    else:  # pytest's output will be masked, so it goes through the runner's copier
        env["SERVICE_API_TOKEN"] = "s3cr3t-value-for-the-test"
    run = run_cli(["run", "--headless", "--once"], tmp_path, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(spawned(tmp_path)) == 1
    assert collected_as_standby(tmp_path) == [False]
    assert (tmp_path / "ran.txt").read_text() == "fresh\n"


PLUGIN_WITH_RUN_STARTED = """
from supervisor.hookspecs import hookimpl

@hookimpl
def netra_run_started(run_id, config):
    pass
"""

PLUGIN_SINK_WITH_A_SECRET = """
from supervisor.core.kinds import LogSink
from supervisor.hookspecs import hookimpl


class _Handle:
    def write(self, events):
        pass

    def close(self):
        pass


class Vault(LogSink):
    name = "vault"

    def open(self, sink, config):
        return _Handle()

    def secrets(self, sink):
        return ["vault-secret-known-only-after-plugins-load"]


@hookimpl
def netra_register_log_sinks():
    return [Vault()]
"""

PLUGIN_SETTING_ENV = """
import os
os.environ["BACKEND_URL"] = "http://127.0.0.1:9"  # for the tests; set after the prestart
"""


PLUGINS = {
    "a hook runs before the first test": PLUGIN_WITH_RUN_STARTED,
    "a plugin changed the environment": PLUGIN_SETTING_ENV,
    "a plugin sink has a secret to mask": PLUGIN_SINK_WITH_A_SECRET,
}


@pytest.mark.parametrize("why", list(PLUGINS))
def test_a_prestart_that_does_not_fit_is_killed_and_a_fresh_pytest_runs(tmp_path, why):
    config = CONFIG + '\n[plugins]\ndirs = ["plugins"]\n'
    if why == "a plugin sink has a secret to mask":
        config += '\n[[sink]]\nkind = "vault"\n'
    write(tmp_path / "plugins" / "mine.py", PLUGINS[why])
    env = clean_env()
    project(tmp_path, config)
    run = run_cli(["run", "--headless", "--once"], tmp_path, env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    first, second = spawned(tmp_path)  # the prestart, then the pytest that ran the tests
    assert (tmp_path / "ran.txt").read_text() == "fresh\n"
    assert collected_as_standby(tmp_path)[-1] is False
    db = tmp_path / ".netra" / "history.db"
    assert query(db, "SELECT outcome, COUNT(*) FROM results GROUP BY outcome") == [("passed", 2)]
    no_prestart_leftovers(tmp_path)


def test_a_run_that_stops_before_its_first_suite_leaves_no_pytest_behind(tmp_path):
    project(tmp_path)
    (tmp_path / "folder.db").mkdir()  # --db names a folder: exit 2 after the prestart
    (tmp_path / "logs").mkdir()  # the logs of runs with that --db
    write(tmp_path / "logs" / "early-starts.json", json.dumps({"pytest": STARTER}))
    run = run_cli(["run", "--headless", "--once", "--db", "folder.db"], tmp_path, env=clean_env())
    assert run.returncode == 2, run.stdout + run.stderr
    assert "folder.db" in run.stderr
    assert len(spawned(tmp_path)) == 1  # the prestart did start
    assert not (tmp_path / "ran.txt").exists()
    no_prestart_leftovers(tmp_path, logs=tmp_path / "logs")


def test_a_first_run_remembers_which_kinds_start_early(tmp_path):
    """A project's first run starts nothing early; it notes that the pytest kind can,
    so the second run does (the kinds are known only once plugins are loaded)."""
    project(tmp_path)
    logs = tmp_path / ".netra" / "logs"
    (logs / "early-starts.json").unlink()
    first = run_cli(["run", "--headless", "--once"], tmp_path, env=clean_env())
    assert first.returncode == 0, first.stdout + first.stderr
    assert json.loads((logs / "early-starts.json").read_text()) == {"pytest": STARTER}
    assert collected_as_standby(tmp_path) == [False]
    second = run_cli(["run", "--headless", "--once"], tmp_path, env=clean_env())
    assert second.returncode == 0, second.stdout + second.stderr
    assert collected_as_standby(tmp_path) == [False, True]


PLUGIN_REPLACING_THE_PYTEST_KIND = """
from supervisor.hookspecs import hookimpl
from supervisor.runners.pytest.kind import PytestSuiteKind


class Mine(PytestSuiteKind):
    early_start = ""  # this kind offers no early start


@hookimpl
def netra_register_suite_kinds():
    return [Mine()]
"""


def test_an_early_pytest_is_dropped_when_a_plugin_replaced_its_kind(tmp_path):
    write(tmp_path / "plugins" / "mine.py", PLUGIN_REPLACING_THE_PYTEST_KIND)
    project(tmp_path, CONFIG + '\n[plugins]\ndirs = ["plugins"]\n')
    run = run_cli(["run", "--headless", "--once"], tmp_path, env=clean_env())
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(spawned(tmp_path)) == 2  # the early one, killed; then the kind's own
    assert collected_as_standby(tmp_path)[-1] is False
    assert json.loads((tmp_path / ".netra" / "logs" / "early-starts.json").read_text()) == {}
    no_prestart_leftovers(tmp_path)


def test_no_early_start_when_the_config_names_a_secret_that_is_set():
    """A secret the run would mask (an ``*_env`` key naming a set variable) keeps the
    early pytest from starting; a name whose variable is unset has nothing to mask."""
    from types import SimpleNamespace

    from supervisor.prestart import _needs_masking

    config = SimpleNamespace(raw={"sink": [{"kind": "webhook", "url_env": "HOOK_URL"}]})
    hook = "https://hooks.example.test/T000/B000/abcdefgh"
    assert _needs_masking(config, {"HOOK_URL": hook})
    assert not _needs_masking(config, {})
    assert not _needs_masking(SimpleNamespace(raw={}), {"HOOK_URL": hook})
    assert _needs_masking(SimpleNamespace(raw={}), {"API_TOKEN": "t0ken-long-enough-to-mask"})
