"""The tables the CLI prints fit the terminal and stay plain where they must.

Real commands (``history``, ``suites``, ``plugins``) in a subprocess, on a history
written by real runs (real pytest, real SQLite, a git commit and a ``command`` deploy
with a long revision, long phase, suite and test names, a long failure message):

- piped with ``COLUMNS=80``: every line fits 80 columns, no escape code, no box character;
- in a real terminal (a pseudo-terminal of 80 x 24) with ``NO_COLOR``: the same;
- in a real terminal 200 columns wide: a styled table (bold header, a rule) whose long
  values stay on one line, and no line wider than the terminal.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path

import pytest
from cli_helpers import CLI, write
from rich.cells import cell_len

REVISION = "release-2026.11.30-build.4711-canary-eu-west-1"
LONG_TEST = "test_checkout_with_a_saved_card_and_a_coupon_applies_the_discount_once"
MESSAGE = "AssertionError: " + "the basket total after the coupon " * 6
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
BOX = re.compile("[\u2500-\u257f]")  # box drawing: rules, corners, bars

COMMANDS = [
    ["history", "runs"],
    ["history", "iterations"],
    ["history", "iterations", "1"],
    ["history", "test", LONG_TEST],
    ["history", "flaky"],
    ["history", "failures"],
    ["history", "failures", "1.1"],
    ["history", "slowest"],
    ["history", "diff", "1.1", "2.1"],
    ["suites"],
    ["plugins"],
]


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tables")
    write(root / "deploy.sh", f'#!/bin/sh\necho "revision: {REVISION}"\n', 0o755)
    write(
        root / "checkout/test_checkout.py",
        f"""
        import pathlib
        import pytest

        COUNTER = pathlib.Path(__file__).with_name("counter.txt")

        def {LONG_TEST}():
            n = int(COUNTER.read_text()) if COUNTER.exists() else 0
            COUNTER.write_text(str(n + 1))
            assert n % 2 == 1, {MESSAGE!r} + str(n)

        @pytest.mark.parametrize("user", ["someone-with-a-long-address@example.com", "b"])
        def test_login(user):
            pass
        """,
    )
    write(root / "search/test_search.py", "def test_search():\n    pass\n")
    write(
        root / "netra-supervisor.toml",
        """
        [run]
        max_iterations = 2

        [deploy]
        backend = "command"
        command = ["./deploy.sh"]

        [[phase]]
        name = "P1 critical checkout and payments"
        suites = ["checkout-and-payments-e2e"]
        gate = "none"

        [[phase]]
        name = "P2 important search and recommendations"
        suites = ["search-and-recommendations-e2e"]
        gate = "none"

        [[suite]]
        name = "checkout-and-payments-e2e"
        args = ["checkout", "-p", "no:randomly", "-p", "no:cacheprovider"]
        tags = ["critical", "money", "eu-west-1"]

        [[suite]]
        name = "search-and-recommendations-e2e"
        args = ["search", "-p", "no:randomly", "-p", "no:cacheprovider"]
        """,
    )
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tables")
    # run 1: the long test fails, then passes (all pass: the run stops); run 2 fails it
    for args, code in ((["run", "--headless"], 0), (["run", "--headless", "--once"], 1)):
        proc = run(root, args, {"COLUMNS": "80"})
        assert proc.returncode == code, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root


def run(root: Path, args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    return subprocess.run(
        CLI + args,
        cwd=root,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        env={**full, **env},
    )


def in_terminal(root: Path, args: list[str], columns: int, env: dict[str, str]) -> str:
    """``args`` with stdout on a pseudo-terminal of ``columns`` x 24; what it showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    full = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    proc = subprocess.Popen(
        CLI + args,
        cwd=root,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=subprocess.PIPE,
        env={**full, "TERM": "xterm-256color", **env},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert proc.stderr is not None
    with proc.stderr:
        assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def assert_plain_within(text: str, columns: int) -> None:
    assert text.strip()
    assert "\x1b" not in text
    assert not BOX.search(text), BOX.search(text)
    too_wide = [line for line in text.splitlines() if cell_len(line) > columns]
    assert not too_wide, "\n".join(too_wide)


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_piped_at_80_columns_plain_and_within_the_width(project, args):
    proc = run(project, args, {"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    assert_plain_within(proc.stdout, 80)


def test_runs_at_80_columns_wraps_the_long_columns_and_keeps_every_character(project):
    text = run(project, ["history", "runs"], {"COLUMNS": "80"}).stdout
    lines = text.splitlines()
    (header,) = [line for line in lines[:3] if line.split()[:3] == ["run", "started", "took"]]
    # the revision folds over the lines of its row, in its column; nothing is lost
    start, end = header.index("revision"), header.index("phases")
    first, second = (i for i, line in enumerate(lines) if line.startswith(("  2  ", "  1  ")))
    shown = "".join(line[start:end].strip() for line in lines[first:second])
    assert shown == REVISION
    # at 200 columns the same run is one line
    wide = run(project, ["history", "runs"], {"COLUMNS": "200"}).stdout.splitlines()
    (row,) = [line for line in wide if line.startswith("  2  ")]
    assert REVISION in row and "P1 critical checkout and payments, P2" in row


@pytest.mark.parametrize(
    "args", [["history", "runs"], ["history", "failures"], ["suites"]], ids=" ".join
)
def test_no_color_in_a_terminal_is_plain(project, args):
    assert_plain_within(in_terminal(project, args, 80, {"NO_COLOR": "1"}), 80)


def test_a_wide_terminal_gets_a_styled_table_on_one_line_per_run(project):
    text = in_terminal(project, ["history", "runs"], 200, {})
    assert "\x1b[" in text and "─" in text  # bold header, the rule under it
    shown = ANSI.sub("", text)
    assert max(cell_len(line) for line in shown.splitlines()) <= 200
    rows = [line for line in shown.splitlines() if REVISION in line]
    assert len(rows) == 2 and all("P1 critical checkout and payments" in r for r in rows)
    narrow = ANSI.sub("", in_terminal(project, ["history", "runs"], 80, {}))
    assert max(cell_len(line) for line in narrow.splitlines()) <= 80
    assert "─" in narrow
