"""Suites a plugin registers in code (``netra_register_suites``) can be named in phases,
and run in the implicit phase ``all``; a phase naming no suite at all is still exit 2."""

from __future__ import annotations

from cli_helpers import query, run_cli, write

PLUGIN = """
    from supervisor.config import SuiteConfig
    from supervisor.hookspecs import hookimpl

    @hookimpl
    def netra_register_suites(config):
        return [SuiteConfig(name="smoke", args=("smoke_tests",), tags=("fast",))]
"""


def project(tmp_path, config: str):
    write(tmp_path / "plugins" / "team_suites.py", PLUGIN)
    write(
        tmp_path / "smoke_tests" / "test_smoke.py", "def test_up(): pass\ndef test_down(): pass\n"
    )
    write(tmp_path / "api_tests" / "test_api.py", "def test_get(): pass\n")
    write(tmp_path / "netra-supervisor.toml", '[plugins]\ndirs = ["plugins"]\n' + config)
    return tmp_path


def results(root) -> list[tuple]:
    return query(
        root / ".netra" / "history.db",
        "SELECT p.name, t.suite, t.nodeid, r.outcome FROM results r"
        " JOIN tests t ON t.id = r.test_id JOIN phases p ON p.id = r.phase_id ORDER BY r.id",
    )


def test_a_phase_names_a_suite_a_plugin_registers(tmp_path):
    root = project(
        tmp_path,
        """
        [[phase]]
        name = "P1 smoke"
        suites = ["smoke"]

        [[phase]]
        name = "P2 by tag"
        suites = ["api", "tag:fast"]

        [[suite]]
        name = "api"
        args = ["api_tests"]
        """,
    )
    proc = run_cli(["run", "--headless", "--once"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert results(root) == [
        ("P1 smoke", "smoke", "smoke_tests/test_smoke.py::test_up", "passed"),
        ("P1 smoke", "smoke", "smoke_tests/test_smoke.py::test_down", "passed"),
        ("P2 by tag", "api", "api_tests/test_api.py::test_get", "passed"),
        ("P2 by tag", "smoke", "smoke_tests/test_smoke.py::test_up", "passed"),
        ("P2 by tag", "smoke", "smoke_tests/test_smoke.py::test_down", "passed"),
    ]


def test_without_phases_the_plugin_suite_runs_in_phase_all(tmp_path):
    root = project(tmp_path, '[[suite]]\nname = "api"\nargs = ["api_tests"]\n')
    proc = run_cli(["run", "--headless", "--once"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {(phase, suite) for phase, suite, _, _ in results(root)} == {
        ("all", "api"),
        ("all", "smoke"),
    }


def test_a_phase_naming_no_suite_is_still_one_line_and_exit_2(tmp_path):
    root = project(tmp_path, '[[phase]]\nname = "P1"\nsuites = ["smok"]\n')
    proc = run_cli(["run", "--headless", "--once"], root)
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "phase[0] (P1).suites: no [[suite]] named 'smok'" in line and "smoke" in line
    assert not (root / ".netra").exists()
