"""``history flaky`` keys on the deploy revision: a failure fixed by a new deploy is not
flaky, a test that flips under one deploy is. Real runs with the ``command`` backend."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from cli_helpers import CLI, write


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(CLI + list(args), cwd=cwd, capture_output=True, text=True, timeout=180)


def test_flaky_is_per_deploy_revision(tmp_path):
    # the deployed revision is whatever REV holds; the app "is fixed" in r2
    write(tmp_path / "deploy.sh", '#!/bin/sh\necho "revision: $(cat REV)"\n', 0o755)
    (tmp_path / "REV").write_text("r1")
    write(
        tmp_path / "t/test_app.py",
        """
        import pathlib
        HERE = pathlib.Path(__file__).parent
        COUNTER = HERE / "counter.txt"
        ROOT = HERE.parent

        def test_alternates():
            n = int(COUNTER.read_text()) if COUNTER.exists() else 0
            COUNTER.write_text(str(n + 1))
            assert n % 2 == 0, f"odd call {n}"

        def test_fixed_by_r2():
            assert (ROOT / "REV").read_text() == "r2", "bug in r1"
        """,
    )
    write(
        tmp_path / "netra-supervisor.toml",
        """
        [run]
        max_iterations = 2

        [deploy]
        backend = "command"
        command = ["./deploy.sh"]

        [[suite]]
        name = "t"
        args = ["t", "-p", "no:randomly"]
        """,
    )
    first = cli(tmp_path, "run", "--headless")  # r1: alternates passes then fails
    assert first.returncode == 1, first.stdout + first.stderr
    (tmp_path / "REV").write_text("r2")
    second = cli(tmp_path, "run", "--headless", "--once")  # r2: alternates passes, fixed
    assert second.returncode == 0, second.stdout + second.stderr

    its = json.loads(cli(tmp_path, "history", "iterations", "1", "--json").stdout)
    assert [i["revision"] for i in its] == ["r1", "r1"]

    proc = cli(tmp_path, "history", "flaky", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    # failed under r1 and passed under r2: a fix, not flakiness
    assert [(r["nodeid"].split("::")[1], r["revision"]) for r in rows] == [
        ("test_alternates", "r1")
    ]
    assert (rows[0]["passed"], rows[0]["failed"]) == (1, 1)

    diff = json.loads(cli(tmp_path, "history", "diff", "--json").stdout)
    assert (diff["a"], diff["b"]) == ("1.2", "2.1")
    assert sorted(i["nodeid"].split("::")[1] for i in diff["fixed"]) == [
        "test_alternates",
        "test_fixed_by_r2",
    ]
