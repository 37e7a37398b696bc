"""``netra-supervisor report``: real runs (the demo, and a supervised pytest run with a
hang, failures, a flaky test, hostile output and a secret) reported as HTML opened in
a real headless Chromium, and as Markdown."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from browser import open_browser
from cli_helpers import CLI, FIRST_TIME, query, run_cli, write

from supervisor.store import schema

SECRET = "s1gning-Material-0f-the-e2e-backend"

#: Hostile test output: markup, a script, Markdown syntax and a fence of its own.
HOSTILE = (
    "<script>alert('owned')</script> <img src=x onerror=alert(1)> | **b** [l](http://evil.test) ```"
)

TESTS = f"""
import os, time
from helpers import first_time

def test_passes():
    pass

def test_leaks_the_secret():
    print("signing with", os.environ["E2E_SIGNING"], "token", os.environ["E2E_TOKEN"])
    assert False, "signed with " + os.environ["E2E_SIGNING"] + " as " + os.environ["E2E_TOKEN"]

def test_is_flaky():
    assert not first_time("flaky"), "backend briefly down"

def test_hostile_output():
    assert False, {HOSTILE!r}

def test_hangs_on_the_stream():
    time.sleep(60)  # the phase's 2s deadline ends it
"""

CONFIG = """
[run]
until = "all-pass"
max_iterations = 2
between = "immediate"
target = 5

[auth]
secret_env = "E2E_SIGNING"
export_as = "E2E_TOKEN"
claims = { sub = "e2e-bot" }

[watchdog]
grace = "1s"

[[phase]]
name = "P1 critical"
suites = ["e2e"]
gate = "none"
test_timeout = "2s"
impact = "<b>checkout</b>"

[[suite]]
name = "e2e"
args = ["tests_e2e", "-p", "no:cacheprovider"]
"""


def _supervised_run(tmp_path: Path) -> Path:
    write(tmp_path / "tests_e2e/helpers.py", FIRST_TIME)
    write(tmp_path / "tests_e2e/test_e2e.py", TESTS)
    write(tmp_path / "netra-supervisor.toml", CONFIG)
    proc = run_cli(["run", "--headless"], tmp_path, timeout=180, env={"E2E_SIGNING": SECRET})
    assert proc.returncode == 1, proc.stdout + proc.stderr  # it hangs every time
    return tmp_path / ".netra/history.db"


def _report(tmp_path: Path, *args: str, env: dict | None = None) -> str:
    out = tmp_path / ("report.html" if "--html" in args else "report.md")
    kind = "--html" if "--html" in args else "--markdown"
    rest = [a for a in args if a not in ("--html", "--markdown")]
    proc = run_cli(["report", *rest, kind, str(out)], tmp_path, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == f"wrote {out}"
    return out.read_text(encoding="utf-8")


def _outside_code(md: str) -> str:
    """The Markdown without its fenced blocks and code spans (shown literally by GFM)."""
    md = re.sub(r"(?ms)^(`{3,})text\n.*?\n\1$", "", md)
    return re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", md)


def test_a_demo_run_reported_as_html_in_a_real_browser(tmp_path):
    """The issue's "done when": the HTML report of a demo run opens in headless Chromium
    and shows the trend, the hung test and where it waited."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [*CLI, "demo", "--headless"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("query it:"))
    db = Path(line.split("--db ", 1)[1].strip())
    iterations = query(db, "SELECT run_id || '.' || seq, passed FROM iterations ORDER BY seq")
    ((nodeid, message),) = query(
        db,
        "SELECT t.nodeid, r.message FROM results r JOIN tests t ON t.id = r.test_id"
        " WHERE r.outcome = 'hung'",
    )
    assert nodeid == "tests/test_p1_critical.py::test_the_agent_stream_completes"

    html = _report(tmp_path, "--db", str(db), "--html")  # RUN: the latest
    assert "eyJ" not in html  # no minted token (a JWT starts with base64 '{"')
    with open_browser() as page:
        page.goto((tmp_path / "report.html").as_uri())
        text = page.wait_for_text("Hung and crashed tests")
        points = page.evaluate(
            "[...document.querySelectorAll('svg.trend circle.point')]"
            ".map(c => [c.dataset.iteration, Number(c.dataset.passed)])"
        )
        assert points == [list(row) for row in iterations]  # one point per iteration
        assert page.evaluate("document.querySelectorAll('svg.trend line.target').length") == 1
        assert "tests passed per iteration toward the target of 1000" in text
        assert nodeid in text and message in text
        # the dump (open under the first hung test) shows the line it waited on
        assert 'test_p1_critical.py", line 90, in test_the_agent_stream_completes' in text
        assert "agent_ws.recv()" in text
        assert "AssertionError: expected <n> Created, got <n>" in text  # one group of 3
        # its evidence: the line the real demo backend logged while the test ran
        assert "WARNING POST /api/items: created item" in text
        assert "but answered 200, not 201" in text
        assert "P1 critical" in text and "gate-failed" in text and "$120K MRR" in text
        # self-contained: nothing to fetch, nothing to run
        assert (
            page.evaluate("document.querySelectorAll('script,link,img,iframe,[src]').length") == 0
        )

    md = _report(tmp_path, "1", "--db", str(db), "--markdown")
    for label, passed in iterations:  # the trend, a row per iteration
        assert f"| {label} | {passed} |" in md
    assert f"`{nodeid}`" in md and "agent_ws.recv()" in md and "eyJ" not in md


def test_a_run_with_a_hang_failures_a_flaky_test_and_a_secret(tmp_path):
    db = _supervised_run(tmp_path)
    leaked_id = query(
        db,
        "SELECT r.id FROM results r JOIN tests t ON t.id = r.test_id"
        " WHERE t.nodeid LIKE '%test_leaks_the_secret' ORDER BY r.id LIMIT 1",
    )[0][0]
    secret_env = {"E2E_SIGNING": SECRET}

    md = _report(tmp_path, "--markdown", env=secret_env)  # the config names the db
    html = _report(tmp_path, "--html", env=secret_env)
    for text in (md, html):
        assert SECRET not in text and "eyJ" not in text
        assert "signed with *** as ***" in text.replace("&#x27;", "'")
        assert "test_hangs_on_the_stream" in text and "test_is_flaky" in text
    # Markdown: the hostile message sits in a fence longer than its own ```, and
    # outside fences its markup is escaped
    assert f"````text\nAssertionError: {HOSTILE}\n````" in md
    prose = _outside_code(md)
    assert "<script" not in prose and "<img" not in prose and "](http" not in prose
    assert "| 2 | 1 | 2 hung |" in md  # hung in both iterations: one group
    assert "| `e2e: tests_e2e/test_e2e.py::test_is_flaky` | `run 1` | 1 | 1 | 0 |" in md
    assert "&lt;b&gt;checkout&lt;/b&gt;" in prose  # the phase's impact label, escaped

    # Evidence (this run has no backend log: none was attached) is shown when stored.
    with_evidence = tmp_path / "with-evidence.db"
    shutil.copy(db, with_evidence)
    conn = sqlite3.connect(with_evidence)
    conn.execute(
        "INSERT INTO evidence (result_id, source, lines, omitted, first_at, last_at)"
        " VALUES (?, 'backend.log', ?, 140, '2026-12-01T10:00:00+00:00',"
        " '2026-12-01T10:00:02+00:00')",
        (leaked_id, "ERROR sign failed <script>x</script>\nWARN retrying with " + SECRET),
    )
    conn.commit()
    conn.close()
    html_ev = _report(tmp_path, "--db", str(with_evidence), "--html", env=secret_env)
    md_ev = _report(tmp_path, "--db", str(with_evidence), "--markdown", env=secret_env)
    assert "backend.log" not in html and "backend.log" in html_ev
    assert SECRET not in html_ev and SECRET not in md_ev
    assert "WARN retrying with ***" in md_ev and "… 140 more lines" in md_ev

    (tmp_path / "evidence.html").write_text(html_ev, encoding="utf-8")
    with open_browser() as page:
        page.goto((tmp_path / "report.html").as_uri())
        text = page.wait_for_text("Flaky tests")
        # the hostile output is shown as text: no element, no script came of it
        assert "<script>alert('owned')</script>" in text
        assert page.evaluate("document.querySelectorAll('script,img,[onerror]').length") == 0
        assert page.evaluate("document.querySelectorAll('svg.trend circle.point').length") == 2
        assert "<b>checkout</b>" in text  # as text, not bold
        assert SECRET not in text and "eyJ" not in text
        assert "test_hangs_on_the_stream" in text
        # the waiting line: the test's own line, not "still running after its deadline"
        assert "test_e2e.py:19 in test_hangs_on_the_stream: time.sleep(60)" in text
        page.goto((tmp_path / "evidence.html").as_uri())
        text = page.wait_for_text("logged while")
        assert "ERROR sign failed <script>x</script>" in text and SECRET not in text


def test_a_secret_stored_before_it_was_configured_is_masked_in_the_report(tmp_path):
    """A history written while the value was not known as a secret (no [auth] then):
    the report masks what the config names now, read from this environment."""
    write(tmp_path / "tests_e2e/test_e2e.py", """
        import os

        def test_prints():
            assert False, "key is " + os.environ["E2E_SIGNING"]
        """)  # fmt: skip
    write(tmp_path / "netra-supervisor.toml", """
        [[suite]]
        name = "e2e"
        args = ["tests_e2e", "-p", "no:cacheprovider"]
        """)  # fmt: skip
    proc = run_cli(["run", "--headless", "--once"], tmp_path, env={"E2E_SIGNING": SECRET})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    db = tmp_path / ".netra/history.db"
    assert query(db, "SELECT message FROM results") == [(f"AssertionError: key is {SECRET}",)]
    now = write(tmp_path / "now.toml", '[auth]\nsecret_env = "E2E_SIGNING"\n')
    env = {"E2E_SIGNING": SECRET}
    for fmt in ("--html", "--markdown"):
        text = _report(tmp_path, "--db", str(db), "-c", str(now), fmt, env=env)
        assert SECRET not in text and "key is ***" in text
    # without the config naming it (and under a name that says nothing), it is shown:
    # the masking above came from the config
    assert SECRET in _report(tmp_path, "--db", str(db), "--markdown", env=env)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--db", "missing.db", "--html", "r.html"], "missing.db: no history database here"),
        (["9", "--db", "{db}", "--html", "r.html"], "report: no run 9 in this database"),
        (["--db", "{db}", "--markdown", "no/such/dir/r.md"], "report: cannot write no/such"),
        (["--db", "{db}"], "one of the arguments --html --markdown is required"),
        (["--db", "{db}", "--html", "a", "--markdown", "b"], "not allowed with argument"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path, args, needle):
    db = tmp_path / "h.db"  # a history with the schema and no run yet
    conn = sqlite3.connect(db)
    schema.migrate(conn)
    conn.close()
    proc = run_cli([a.replace("{db}", str(db)) for a in ["report", *args]], tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert needle in proc.stderr
    assert not (tmp_path / "r.html").exists()
