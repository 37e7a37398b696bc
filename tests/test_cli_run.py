"""``netra-supervisor run`` end to end: real CLI subprocesses, real pytest, real SQLite."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from cli_helpers import CLI, query, run_cli, write


@pytest.fixture
def broken_project(tmp_path: Path) -> Path:
    """A config with a suite whose conftest raises, a plugin that raises in a hook,
    and a test file that fails to import, next to healthy tests."""
    write(
        tmp_path / "good/test_ok.py",
        """
        def test_one(): pass
        def test_two(): pass
    """,
    )
    write(
        tmp_path / "good/test_import_fails.py",
        """
        import module_that_does_not_exist
        def test_never(): pass
    """,
    )
    write(
        tmp_path / "good/test_more.py",
        """
        import pytest
        @pytest.mark.parametrize("n", range(5))
        def test_p(n): assert n >= 0
    """,
    )
    write(
        tmp_path / "broken/conftest.py",
        """
        raise RuntimeError("staging credentials missing")
    """,
    )
    write(tmp_path / "broken/test_b.py", "def test_b(): pass\n")
    write(
        tmp_path / "local_plugins/explodes.py",
        """
        from supervisor.hookspecs import hookimpl

        @hookimpl
        def netra_phase_finished(run_id, iteration, phase, status, counts):
            raise ValueError("dashboard unreachable")
    """,
    )
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        until = "once"

        [plugins]
        dirs = ["local_plugins"]

        [[phase]]
        name = "P1"
        suites = ["broken"]
        gate = "none"

        [[phase]]
        name = "P2"
        suites = ["good"]
        gate = "none"

        [[suite]]
        name = "broken"
        args = ["broken"]

        [[suite]]
        name = "good"
        args = ["good"]
    """,
    )
    return tmp_path


def test_broken_conftest_plugin_and_import_error_are_all_recorded(broken_project):
    proc = run_cli(["run", "--headless"], broken_project)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    db = broken_project / ".netra/history.db"
    rows = dict(
        ((suite, nodeid), (outcome, message))
        for suite, nodeid, outcome, message in query(
            db,
            "select t.suite, t.nodeid, r.outcome, r.message from results r "
            "join tests t on t.id = r.test_id",
        )
    )
    # every healthy test ran and passed
    passed = [k for k, v in rows.items() if v[0] == "passed"]
    assert len(passed) == 7
    # the import error: one error result for the broken file, naming the cause
    import_errors = [v for k, v in rows.items() if "test_import_fails.py" in k[1]]
    assert import_errors and import_errors[0][0] == "error"
    assert "module_that_does_not_exist" in import_errors[0][1]
    # the suite whose pytest cannot start: an error result saying why
    broken = [v for k, v in rows.items() if k[0] == "broken"]
    assert broken and broken[0][0] == "error"
    assert "staging credentials missing" in broken[0][1]
    # the plugin that raised: recorded in plugin_errors, shown in the output
    errors = query(db, "select plugin, hook, error from plugin_errors")
    assert any(
        "explodes" in p and h == "netra_phase_finished" and "dashboard unreachable" in e
        for p, h, e in errors
    )
    assert "dashboard unreachable" in proc.stdout
    assert "staging credentials missing" in proc.stdout
    # the run finished and is recorded as such
    assert query(db, "select status from runs") == [("failed",)]


def test_strict_plugins_stops_with_exit_2(broken_project):
    proc = run_cli(["run", "--headless"], broken_project, env={"NETRA_STRICT_PLUGINS": "1"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "dashboard unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_error_is_one_line_exit_2_and_nothing_runs(tmp_path):
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        untill = "once"
    """,
    )
    proc = run_cli(["run"], tmp_path)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1
    assert "run.untill" in err and "did you mean 'until'" in err
    assert not (tmp_path / ".netra").exists()


def test_missing_config_and_bad_phase(tmp_path):
    proc = run_cli(["run"], tmp_path)
    assert proc.returncode == 2 and "netra-supervisor init" in proc.stderr
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [[suite]]
        name = "a"
        [[phase]]
        name = "P1"
        suites = ["a"]
    """,
    )
    proc = run_cli(["run", "--phase", "P9"], tmp_path)
    assert proc.returncode == 2 and "--phase P9" in proc.stderr


def test_iterations_reuse_test_rows_and_phase_selection(tmp_path):
    write(tmp_path / "t/test_a.py", "def test_a(): pass\ndef test_b(): pass\n")
    write(tmp_path / "u/test_u.py", "def test_u(): assert False, 'nope'\n")
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        until = "all-pass"
        max_iterations = 3

        [[phase]]
        name = "P1"
        suites = ["t"]

        [[phase]]
        name = "P2"
        suites = ["u"]

        [[suite]]
        name = "t"
        args = ["t"]

        [[suite]]
        name = "u"
        args = ["u"]
    """,
    )
    proc = run_cli(["run", "--headless"], tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    db = tmp_path / ".netra/history.db"
    assert query(db, "select count(*) from iterations") == [(3,)]
    assert query(db, "select count(*) from tests") == [(3,)]
    assert query(db, "select count(*) from results") == [(9,)]
    msg = query(db, "select message from results where outcome = 'failed' limit 1")[0][0]
    assert "nope" in msg
    # --phase P1 --once runs only P1's suite, and exits 0 because it passes
    proc = run_cli(["run", "--headless", "--phase", "P1", "--once"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run2 = query(db, "select max(id) from runs")[0][0]
    phases = query(
        db,
        "select p.name from phases p join iterations i on i.id = p.iteration_id where i.run_id = ?",
        run2,
    )
    assert phases == [("P1",)]
    out = run_cli(["history", "failures", "3", "--db", str(db)], tmp_path)
    assert out.returncode == 2  # run 2 (the latest) has only iteration 1
    out = run_cli(["history", "iterations", "1", "--db", str(db), "--json"], tmp_path)
    assert out.returncode == 0 and '"status": "gate-failed"' in out.stdout


def test_sigint_keeps_results_and_exits_130(tmp_path):
    write(
        tmp_path / "t/test_fast.py",
        """
        import pytest
        @pytest.mark.parametrize("n", range(20))
        def test_fast(n): pass
    """,
    )
    write(
        tmp_path / "t/test_slow.py",
        """
        import time
        def test_slow(): time.sleep(60)
    """,
    )
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        until = "once"
        [[suite]]
        name = "t"
        args = ["t", "-p", "no:randomly"]
    """,
    )
    proc = subprocess.Popen(
        CLI + ["run", "--headless"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    db = tmp_path / ".netra/history.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        time.sleep(0.3)
        if db.exists():
            try:
                if query(db, "select count(*) from results")[0][0] >= 20:
                    break
            except sqlite3.OperationalError:
                pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert query(db, "select count(*) from results where outcome = 'passed'") == [(20,)]
    assert query(db, "select status from runs") == [("interrupted",)]
    # no pytest child left behind
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "t")], capture_output=True, text=True)
    assert left.stdout.strip() == ""


def test_suites_collect_counts(tmp_path):
    write(
        tmp_path / "t/test_a.py",
        """
        import pytest
        @pytest.mark.parametrize("n", range(7))
        def test_a(n): pass
    """,
    )
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [[suite]]
        name = "t"
        args = ["t"]
        tags = ["critical"]
    """,
    )
    proc = run_cli(["suites", "--collect"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("t ")][0]
    assert "pytest" in line and "critical" in line and line.rstrip().endswith("7")


def test_plugins_command_lists_builtin(tmp_path):
    proc = run_cli(["plugins"], tmp_path)
    assert proc.returncode == 0
    assert "builtin_pytest" in proc.stdout and "ok" in proc.stdout


def test_init_writes_a_config_that_runs(tmp_path):
    write(tmp_path / "tests/test_x.py", "def test_x(): pass\n")
    assert run_cli(["init"], tmp_path).returncode == 0
    assert run_cli(["init"], tmp_path).returncode == 2
    proc = run_cli(["run", "--headless", "--once"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_secrets_in_environment_never_reach_db_or_output(tmp_path):
    secret = "s3cr3t-jwt-signing-key-XYZ"
    write(
        tmp_path / "t/test_leak.py",
        """
        import os
        def test_leak():
            print(os.environ["NETRA_JWT_SECRET"])
            assert False, "token was " + os.environ["NETRA_JWT_SECRET"]
    """,
    )
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        until = "once"
        env = { API_TOKEN = "another-secret-token-123" }
        [[suite]]
        name = "t"
        args = ["t"]
    """,
    )
    proc = run_cli(["run", "--headless", "-v"], tmp_path, env={"NETRA_JWT_SECRET": secret})
    assert proc.returncode == 1
    blob = (tmp_path / ".netra/history.db").read_bytes()
    for path in (tmp_path / ".netra").rglob("*-wal"):
        blob += path.read_bytes()
    assert secret.encode() not in blob
    assert b"another-secret-token-123" not in blob
    assert secret not in proc.stdout + proc.stderr
    assert "token was ***" in proc.stdout
