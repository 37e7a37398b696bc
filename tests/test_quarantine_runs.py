"""Quarantine end to end (issue 14, point 2): real ``netra-supervisor`` subprocesses,
real pytest, real SQLite, a real local plugin and a real jsonl sink.

A quarantined failing test leaves the exit code 0, is recorded with
``results.quarantined = 1`` and is counted apart; an expired entry fails the run again
and the run says so once; ``quarantine suggest`` proposes the test that flips in a
history written by real runs; ``[run] auto_quarantine`` adds it by itself; the CLI
edits keep the file's other entries and comments.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from cli_helpers import query, run_cli, write

from supervisor.quarantine_file import read_quarantine, remove_entries

TESTS = """
import os, pathlib


def test_ok():
    pass


def test_broken():
    assert False, "the payment sandbox is down"
"""

FLIPS = """
import os, pathlib


def test_flips():
    # passes, fails, passes, fails ... one call after the other (a counter file)
    counter = pathlib.Path(os.environ["FLIP_FILE"])
    n = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(n + 1))
    assert n % 2 == 0, f"call {n}"
"""

PLUGIN = """
import json, os
from supervisor.hookspecs import hookimpl


@hookimpl
def netra_results(batch):
    with open(os.environ["HOOK_OUT"], "a") as fh:
        for result in batch:
            fh.write(json.dumps([result.nodeid, result.outcome, result.quarantined]) + "\\n")
"""

CONFIG = """
[run]
{run}

[[suite]]
name = "s"
args = ["-q", "-p", "no:cacheprovider", {files}]

[[sink]]
kind = "jsonl"
path = "events.jsonl"

[plugins]
dirs = ["local_plugins"]
"""

BROKEN = "tests/test_it.py::test_broken"
FLIP = "tests/test_flips.py::test_flips"


def project(root: Path, run: str = "", files: str = '"tests/test_it.py"') -> Path:
    write(root / "tests" / "test_it.py", TESTS)
    write(root / "tests" / "test_flips.py", FLIPS)
    write(root / "local_plugins" / "record.py", PLUGIN)
    write(root / "netra-supervisor.toml", CONFIG.format(run=run, files=files))
    return root


def env(root: Path) -> dict[str, str]:
    return {"HOOK_OUT": str(root / "hook.jsonl"), "FLIP_FILE": str(root / "flip.count")}


def results(root: Path) -> list[tuple[int, str, str, int]]:
    """(iteration seq, nodeid, outcome, quarantined) of every result, in order."""
    return query(
        root / ".netra" / "history.db",
        "SELECT i.seq, t.nodeid, r.outcome, r.quarantined FROM results r"
        " JOIN tests t ON t.id = r.test_id JOIN iterations i ON i.id = r.iteration_id"
        " ORDER BY r.id",
    )


def test_a_quarantined_failing_test_runs_is_recorded_counted_apart_and_exits_0(tmp_path):
    root = project(tmp_path)
    added = run_cli(["quarantine", "add", BROKEN, "--reason", "sandbox down"], root)
    assert added.returncode == 0, added.stderr
    assert f"quarantined {BROKEN}" in added.stdout

    ran = run_cli(["run", "--headless", "--once"], root, env=env(root))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert results(root) == [
        (1, "tests/test_it.py::test_ok", "passed", 0),
        (1, BROKEN, "failed", 1),
    ]
    db = root / ".netra" / "history.db"
    assert query(db, "SELECT status, passed, failed FROM iterations") == [("passed", 1, 0)]
    lines = ran.stdout.splitlines()
    phase = next(line for line in lines if line.startswith("✔ all:"))
    assert "2 tests · 1 passed · 0 failed · 1 quarantined: 1 failed" in phase, phase
    iteration = next(line for line in lines if line.startswith("iteration 1:"))
    assert "iteration 1: passed · passing 1 · 1 passed · 0 failed · 1 quarantined: 1 failed" in (
        iteration
    )
    summary = lines[lines.index("── summary ──") + 1]  # the end summary, a line per iteration
    assert "1 passed · 0 failed · 1 quarantined: 1 failed" in summary, summary

    # the flag travels with the result to the plugin hooks and the sinks
    hooked = [json.loads(line) for line in (root / "hook.jsonl").read_text().splitlines()]
    assert hooked == [["tests/test_it.py::test_ok", "passed", False], [BROKEN, "failed", True]]
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    flags = {e["nodeid"]: e["quarantined"] for e in events if e["event"] == "test_result"}
    assert flags == {"tests/test_it.py::test_ok": False, BROKEN: True}
    (finished,) = [e for e in events if e["event"] == "iteration_finished"]
    assert finished["quarantined"] == {"failed": 1} and finished["counts"]["failed"] == 0


def test_without_the_entry_the_same_test_fails_the_run(tmp_path):
    root = project(tmp_path)
    ran = run_cli(["run", "--headless", "--once"], root, env=env(root))
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert results(root)[-1] == (1, BROKEN, "failed", 0)
    assert "quarantined" not in ran.stdout


def test_an_expired_entry_fails_the_run_again_and_the_run_says_so_once(tmp_path):
    root = project(tmp_path)
    yesterday = date.today() - timedelta(days=1)
    write(
        root / "netra-quarantine.toml",
        f"""
        [[test]]
        nodeid = "{BROKEN}"
        reason = "sandbox down"
        until = "{yesterday}"
        """,
    )
    ran = run_cli(["run", "--headless", "--max-iterations", "2"], root, env=env(root))
    assert ran.returncode == 1, ran.stdout + ran.stderr
    said = [line for line in ran.stdout.splitlines() if "] quarantine:" in line]
    assert len(said) == 1, ran.stdout  # two iterations, said once
    assert f"quarantine of {BROKEN} (line 2) expired (until {yesterday})" in said[0]
    assert [r[3] for r in results(root)] == [0, 0, 0, 0]
    listed = run_cli(["quarantine", "list"], root)
    assert listed.returncode == 0 and "EXPIRED" in listed.stdout, listed.stdout


def test_a_broken_quarantine_file_stops_the_run_before_it_starts(tmp_path):
    root = project(tmp_path)
    write(root / "netra-quarantine.toml", f'[[test]]\nnodeid = "{BROKEN}"\nuntil = "soon"\n')
    ran = run_cli(["run", "--headless", "--once"], root, env=env(root))
    assert ran.returncode == 2, ran.stdout + ran.stderr
    message = ran.stderr.strip().splitlines()[-1]
    assert message == (
        f"netra-supervisor: {root / 'netra-quarantine.toml'}: line 1: test[0]: every "
        '[[test]] needs a reason = "..."'
    )
    assert not (root / "hook.jsonl").exists()  # nothing ran


def test_suggest_proposes_the_test_that_flips_and_what_could_come_out(tmp_path):
    root = project(tmp_path, 'until = "target"\ntarget = 999', '"tests"')
    ran = run_cli(["run", "--headless", "--max-iterations", "4"], root, env=env(root))
    assert ran.returncode == 1, ran.stdout + ran.stderr  # test_broken fails every time
    assert [r[2] for r in results(root) if r[1] == FLIP] == ["passed", "failed"] * 2

    added = run_cli(["quarantine", "add", "tests/test_it.py::test_ok", "--reason", "x"], root)
    assert added.returncode == 0, added.stderr
    suggested = run_cli(["quarantine", "suggest", "--json", "--passes", "4"], root)
    assert suggested.returncode == 0, suggested.stderr
    data = json.loads(suggested.stdout)
    # test_broken never passed (broken, not flaky); test_ok never failed
    assert [(a["nodeid"], a["flips"], a["runs"], a["failed"]) for a in data["add"]] == [
        (FLIP, 3, 4, 2)
    ]
    assert data["add"][0]["revision"] == "run 1"  # no deploy revision, no git: the run
    assert [r["nodeid"] for r in data["remove"]] == ["tests/test_it.py::test_ok"]
    assert data["passes"] == 4

    table = run_cli(["quarantine", "suggest"], root)
    assert table.returncode == 0, table.stderr
    assert f"netra-supervisor quarantine add {FLIP} --reason" in table.stdout
    assert "passed its last 10 results" in table.stdout  # N is said
    assert "netra-supervisor quarantine remove" not in table.stdout  # 4 results < 10


def test_auto_quarantine_adds_the_flipping_test_with_its_reason_and_says_so(tmp_path):
    root = project(
        tmp_path,
        'until = "target"\ntarget = 999\nauto_quarantine = { flips = 2, within = "7d" }',
        '"tests/test_flips.py"',
    )
    ran = run_cli(["run", "--headless", "--max-iterations", "4"], root, env=env(root))
    # iteration 4's failure is quarantined: the last iteration passed
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert results(root) == [
        (1, FLIP, "passed", 0),
        (2, FLIP, "failed", 0),
        (3, FLIP, "passed", 0),  # the second flip: quarantined after this iteration
        (4, FLIP, "failed", 1),
    ]
    said = [line for line in ran.stdout.splitlines() if "auto_quarantine:" in line]
    assert len(said) == 1 and f"quarantined {FLIP} [s]" in said[0], ran.stdout
    text = (root / "netra-quarantine.toml").read_text()
    assert 'reason = "auto: flipped 2 times in 3 runs under revision run 1 within 7d"' in text
    assert 'added_by = "netra-supervisor auto_quarantine"' in text
    assert 'suite = "s"' in text


ORIGINAL = """\
# Reviewed by the platform team: ask in #e2e before adding.

# the upload sandbox times out on big files (JIRA-12)
[[test]]
nodeid = "tests/test_api.py::test_upload[big]"  # only the big one
reason = "JIRA-12"
added_by = "ana"
added = "2026-11-01"

# streaming is flaky on the staging proxy
[[test]]
nodeid = "tests/test_ws.py::*stream*"
reason = "proxy"
added_by = "bo"
added = "2026-11-02"
until = "2099-01-31"
"""


def test_add_list_remove_keep_the_other_entries_and_their_comments(tmp_path):
    root = tmp_path
    write(root / "netra-supervisor.toml", '[run]\nquarantine = "ci/quarantine.toml"\n')
    path = write(root / "ci" / "quarantine.toml", ORIGINAL)

    added = run_cli(
        ["quarantine", "add", "tests/test_x.py::test_y", "--reason", 'say "why"', "--until",
         "2099-12-31"],
        root,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    text = path.read_text()
    assert text.startswith(ORIGINAL)  # every byte before is kept
    assert 'nodeid = "tests/test_x.py::test_y"\nreason = "say \\"why\\""\n' in text
    assert 'until = "2099-12-31"' in text

    listed = run_cli(["quarantine", "list", "--json"], root)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["nodeid"], r["status"]) for r in rows] == [
        ("tests/test_api.py::test_upload[big]", "active"),
        ("tests/test_ws.py::*stream*", "active"),
        ("tests/test_x.py::test_y", "active"),
    ]
    assert rows[2]["reason"] == 'say "why"' and rows[2]["added"] == date.today().isoformat()
    assert rows[2]["added_by"]  # git user.name or $USER

    removed = run_cli(["quarantine", "remove", "tests/test_ws.py::*stream*"], root)
    assert removed.returncode == 0, removed.stderr
    text = path.read_text()
    kept = ORIGINAL.split("# streaming")[0]
    assert text.startswith(kept)  # the first entry, its comments, the header comment
    assert "stream" not in text and "proxy" not in text  # its comment went with it
    assert "tests/test_x.py::test_y" in text
    assert "\n\n\n" not in text


def test_edits_from_several_processes_at_once_all_land(tmp_path):
    """A person's ``quarantine add`` while a run auto-quarantines (or two people):
    each edit reads, changes and renames the file under a lock, so none is lost."""
    path = tmp_path / "ci" / "quarantine.toml"
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from supervisor.core.quarantine import Entry\n"
        "from supervisor.quarantine_file import add_entries, remove_entries\n"
        "path, who = Path(sys.argv[1]), sys.argv[2]\n"
        "for i in range(15):\n"
        "    add_entries(path, [Entry(nodeid=f't.py::{who}_{i}', reason='r', added_by=who)])\n"
        "    add_entries(path, [Entry(nodeid=f't.py::{who}_gone_{i}', reason='r', added_by=who)])\n"
        "    assert remove_entries(path, f't.py::{who}_gone_{i}'), i\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(path), who]) for who in "abcd"]
    assert [proc.wait(timeout=120) for proc in procs] == [0, 0, 0, 0]
    ids = [entry.nodeid for entry in read_quarantine(path).entries]
    assert sorted(ids) == sorted(f"t.py::{who}_{i}" for who in "abcd" for i in range(15))
    assert not [p.name for p in path.parent.iterdir() if p.name != "quarantine.toml"]
    missing = tmp_path / "nowhere" / "quarantine.toml"
    assert remove_entries(missing, "t.py::a_0") == [] and not missing.parent.exists()


def test_cli_mistakes_are_one_line_and_exit_2(tmp_path):
    root = tmp_path
    write(root / "netra-quarantine.toml", ORIGINAL)
    cases = {
        ("add", "tests/test_api.py::test_upload[big]", "--reason", "again"): "is already quarantined (line 4)",
        ("add", "t::x", "--reason", "r", "--until", "31.12.2099"): "--until: '31.12.2099' is not a date",
        ("add", "t::x", "--reason", "r", "--until", "2000-01-01"): "is in the past",
        ("add", "t::x", "--reason", " "): "--reason is empty",
        ("remove", "tests/test_ws.py::*strem*"): "no entry has nodeid 'tests/test_ws.py::*strem*' (did you mean 'tests/test_ws.py::*stream*'?)",
    }  # fmt: skip
    for args, message in cases.items():
        proc = run_cli(["quarantine", *args], root)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert (root / "netra-quarantine.toml").read_text() == ORIGINAL  # untouched
    no_db = run_cli(["quarantine", "suggest"], root)
    assert no_db.returncode == 2 and "no history database here" in no_db.stderr


def test_an_older_history_gets_the_column_and_its_rows_read_0(tmp_path, monkeypatch):
    """A history written before ``0004_quarantine`` is upgraded in place by the next
    run; ``quarantine suggest`` reads it before and after."""
    import sqlite3

    from supervisor.store import schema

    root = project(tmp_path)
    db = root / ".netra" / "history.db"
    db.parent.mkdir()
    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:3])  # the previous set
    conn = sqlite3.connect(db, isolation_level=None)
    assert "0004_quarantine" not in schema.migrate(conn)
    conn.execute("INSERT INTO runs (id, started_at, status) VALUES (1, '2026-01-01', 'failed')")
    conn.execute("INSERT INTO iterations (id, run_id, seq, started_at) VALUES (1, 1, 1, '2026')")
    conn.execute("INSERT INTO tests (id, suite, nodeid) VALUES (1, 's', ?)", (BROKEN,))
    conn.execute("INSERT INTO results (iteration_id, test_id, outcome) VALUES (1, 1, 'failed')")
    conn.close()
    monkeypatch.undo()
    before = run_cli(["quarantine", "suggest", "--json"], root)
    assert before.returncode == 0, before.stderr

    run_cli(["quarantine", "add", BROKEN, "--reason", "r"], root)
    ran = run_cli(["run", "--headless", "--once"], root, env=env(root))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ("0004_quarantine",) in query(db, "SELECT name FROM _sqlite_migrations")
    rows = query(db, "SELECT outcome, quarantined FROM results WHERE test_id = 1 ORDER BY id")
    assert rows == [("failed", 0), ("failed", 1)]  # the old row reads 0


def quarantined_flip_project(root: Path, run: str) -> Path:
    """BROKEN quarantined; test_flips fails on its first call, then passes."""
    project(root, run=run, files='"tests/test_it.py", "tests/test_flips.py"')
    (root / "flip.count").write_text("1")
    added = run_cli(["quarantine", "add", BROKEN, "--reason", "sandbox down"], root)
    assert added.returncode == 0, added.stderr
    return root


def test_a_quarantined_test_is_not_retried(tmp_path):
    """Its result counts for nothing: a retry would only cost time (a hang: a deadline
    per retry). test_flips, not quarantined, is retried and passes."""
    root = quarantined_flip_project(tmp_path, 'until = "once"\nretries = 2')
    ran = run_cli(["run", "--headless"], root, env=env(root))
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = results(root)
    assert [r for r in rows if r[1] == BROKEN] == [(1, BROKEN, "failed", 1)]  # once
    assert [r[2] for r in rows if r[1] == FLIP] == ["failed", "passed"]  # retried


def test_a_quarantined_test_is_not_verified_again(tmp_path):
    """The verify pass re-runs what failed and counts: test_flips, not BROKEN (which
    the full iteration after it runs as always)."""
    root = quarantined_flip_project(
        tmp_path, 'until = "all-pass"\nmax_iterations = 2\nbetween = "immediate"\nverify = true'
    )
    ran = run_cli(["run", "--headless"], root, env=env(root))
    # test_flips passes in the verify pass and fails again in the full pass after it
    assert ran.returncode == 1, ran.stdout + ran.stderr
    db = root / ".netra" / "history.db"
    verified = query(
        db,
        "SELECT t.nodeid, r.outcome FROM results r JOIN tests t ON t.id = r.test_id"
        " JOIN phases p ON p.id = r.phase_id WHERE p.name = 'verify'",
    )
    assert verified == [(FLIP, "passed")]
    assert [r for r in results(root) if r[1] == BROKEN] == [
        (1, BROKEN, "failed", 1),
        (2, BROKEN, "failed", 1),
    ]
