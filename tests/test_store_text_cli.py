"""``run --headless --once`` on tests that fail with hostile messages: every result is
recorded, the counts match the rows, the stored message is capped (issue 12)."""

from __future__ import annotations

import re
from pathlib import Path

from cli_helpers import query, run_cli, write

HUGE = 20 * 1024 * 1024


def test_hostile_failure_messages_are_all_recorded_and_capped(tmp_path: Path):
    write(
        tmp_path / "tests/test_hostile.py",
        f"""
        def test_surrogate():
            assert False, b"bad \\xff byte".decode("utf-8", "surrogateescape")

        def test_nul():
            assert False, "nul \\x00 here"

        def test_huge():
            assert False, "x" * {HUGE}

        def test_ok():
            pass
        """,
    )
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        until = "once"

        [[phase]]
        name = "P1"
        suites = ["s"]
        gate = "none"

        [[suite]]
        name = "s"
        args = ["tests"]
        """,
    )
    proc = run_cli(["run", "--headless", "--once"], tmp_path, timeout=240)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "could not record" not in proc.stdout + proc.stderr

    db = tmp_path / ".netra/history.db"
    (iteration,) = query(db, "SELECT id, passed, failed, errors, hung, crashed FROM iterations")
    outcomes = dict(
        query(
            db,
            "SELECT outcome, COUNT(*) FROM results WHERE iteration_id = ? GROUP BY 1",
            iteration[0],
        )
    )
    assert outcomes == {"passed": 1, "failed": 3}
    assert iteration[1:] == (1, 3, 0, 0, 0)

    messages = dict(
        query(
            db,
            "SELECT t.nodeid, r.message FROM results r JOIN tests t ON t.id = r.test_id"
            " WHERE r.outcome = 'failed'",
        )
    )
    assert messages["tests/test_hostile.py::test_surrogate"] == "AssertionError: bad \\udcff byte"
    assert messages["tests/test_hostile.py::test_nul"] == "AssertionError: nul \x00 here"
    huge = messages["tests/test_hostile.py::test_huge"]
    assert len(huge.encode()) <= 1024 and "\n" not in huge
    assert huge.startswith("AssertionError: xxxx")
    found = re.search(r"full text: (full/run-\d+/results-\d+-message\.txt)\]$", huge)
    assert found, huge[-300:]
    full = (db.parent / found.group(1)).read_text("utf-8")
    assert full == "AssertionError: " + "x" * HUGE
