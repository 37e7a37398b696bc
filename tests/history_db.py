"""A small real history for the views that read one (the ``h`` screen, ``serve``):
a real project run headless through the real CLI, twice, into a real SQLite file.

Run 1 has two iterations of phases P1 (``api``) and P2 (``web``): ``test_alternates``
passes, then fails (flaky under one revision), ``test_slow`` sleeps 0.3 s (the
slowest), ``test_broken`` always fails. Run 2 is one iteration of P1 only.
"""

from __future__ import annotations

from pathlib import Path

from cli_helpers import run_cli, write


def build_history(root: Path) -> Path:
    """Make the project under ``root``, run it, and return its history database."""
    write(
        root / "api/test_api.py",
        """
        import pathlib, time

        COUNTER = pathlib.Path(__file__).with_name("counter.txt")

        def test_alternates():
            n = int(COUNTER.read_text()) if COUNTER.exists() else 0
            COUNTER.write_text(str(n + 1))
            assert n % 2 == 0, f"odd call {n}"

        def test_slow():
            time.sleep(0.3)

        def test_broken():
            assert 1 == 2, "broken on purpose"
        """,
    )
    write(root / "web/test_web.py", "def test_page():\n    pass\n")
    write(
        root / "netra-supervisor.toml",
        """
        [run]
        max_iterations = 2

        [[phase]]
        name = "P1"
        suites = ["api"]
        gate = "none"

        [[phase]]
        name = "P2"
        suites = ["web"]
        gate = "none"

        [[suite]]
        name = "api"
        args = ["api", "-p", "no:randomly"]

        [[suite]]
        name = "web"
        args = ["web", "-p", "no:randomly"]
        """,
    )
    first = run_cli(["run", "--headless"], root, timeout=180)
    assert first.returncode == 1, first.stdout + first.stderr
    second = run_cli(["run", "--headless", "--once", "--phase", "P1"], root, timeout=180)
    assert second.returncode == 1, second.stdout + second.stderr
    db = root / ".netra/history.db"
    assert db.exists()
    return db
