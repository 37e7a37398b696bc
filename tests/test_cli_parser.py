"""``cli.build_parser(command)``: a command's parser built alone parses as in the whole
command line, and ``main`` builds only the one its argv names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from supervisor import cli

ARGVS = [
    ["run", "--headless", "--once", "--phase", "p1", "--phase", "p2", "--max-iterations", "3"],
    ["run", "-c", "x.toml", "--resume", "4", "--target", "900", "-v", "--no-mouse"],
    ["demo", "--headless"],
    ["suites", "--collect", "-c", "x.toml"],
    ["plugins", "-c", "x.toml"],
    ["history", "runs", "--limit", "5", "--json"],
    ["history", "--db", "h.db", "flaky", "--since", "7d"],
    ["quarantine", "list"],
    ["report", "3", "--markdown", "out.md"],
    ["serve", "2", "--port", "8123", "--history"],
    ["watch", "7", "--no-mouse"],
    ["init", "--force"],
]


@pytest.mark.parametrize("argv", ARGVS, ids=lambda argv: " ".join(argv[:2]))
def test_a_command_alone_parses_as_in_the_whole_command_line(argv):
    whole = cli.build_parser().parse_args(argv)
    alone = cli.build_parser(argv[0]).parse_args(argv)
    assert vars(alone) == vars(whole)


def test_every_command_is_known_and_listed_in_order():
    whole = cli.build_parser()
    (sub,) = [a for a in whole._actions if a.dest == "command"]
    assert tuple(sub.choices) == cli.COMMANDS
    assert {argv[0] for argv in ARGVS} == set(cli.COMMANDS)


@pytest.mark.parametrize("argv", [["run", "--max-iterations", "0"], ["bogus"], ["run", "--x"]])
def test_errors_read_as_before(argv, capsys):
    with pytest.raises(SystemExit) as alone:
        cli.build_parser(argv[0] if argv[0] in cli.COMMANDS else None).parse_args(argv)
    alone_err = capsys.readouterr().err
    with pytest.raises(SystemExit) as whole:
        cli.build_parser().parse_args(argv)
    assert alone.value.code == whole.value.code == 2
    assert alone_err == capsys.readouterr().err


def test_run_builds_only_its_own_parser():
    probe = (
        "import sys\n"
        "from supervisor import cli\n"
        "cli.build_parser('run').parse_args(['run', '--headless'])\n"
        "print(sorted(m for m in sys.modules if m.startswith('supervisor.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "history_cli" not in out.stdout and "quarantine_cli" not in out.stdout
    assert "supervisor.report" not in out.stdout
