"""``netra-supervisor history`` on databases built by real runs (real pytest, real SQLite).

One module-scoped project is run twice through the real CLI:

- run 1: three iterations. ``test_alternates`` fails on every other call (a counter
  file), so it passed and failed under one revision (flaky). ``test_addr[1|2]`` fail
  with messages that differ only in a number and a memory address. ``test_induced``
  passes. ``test_sleepy`` sleeps 0.3 s.
- run 2 (``--once``): a BREAK file makes ``test_induced`` fail, ``test_gone.py`` is
  deleted, and ``test_new.py`` adds a test that crashes the process and one that hangs.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_helpers import CLI, query, write


def cli(args: list[str], cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    # wide: the plain tables below are read line by line (tests/test_tables_cli.py: 80)
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        CLI + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("history_project")
    write(
        root / "api/test_api.py",
        """
        import os, pathlib, time
        import pytest

        HERE = pathlib.Path(__file__).parent
        COUNTER = HERE / "counter.txt"

        def test_alternates():
            n = int(COUNTER.read_text()) if COUNTER.exists() else 0
            COUNTER.write_text(str(n + 1))
            assert n % 2 == 0, f"odd call {n}"

        @pytest.mark.parametrize("k", [1, 2])
        def test_addr(k):
            holder = object()
            raise ValueError(f"session {hex(id(holder) + k)} lost user {k * 1000 + 7}")

        def test_induced():
            assert not (HERE / "BREAK").exists(), "induced failure: BREAK file present"

        def test_sleepy():
            time.sleep(0.3)

        @pytest.mark.skip(reason="not on staging")
        def test_skipped():
            pass
        """,
    )
    write(root / "web/test_gone.py", "def test_gone():\n    pass\n")
    write(root / "web/test_web.py", "def test_page():\n    pass\n")
    write(
        root / "netra-supervisor.toml",
        """
        [run]
        max_iterations = 3

        [watchdog]
        test_timeout = "2s"
        grace = "1s"
        silence_timeout = "5s"

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
    first = cli(["run", "--headless"], root)
    assert first.returncode == 1, first.stdout + first.stderr
    (root / "api/BREAK").write_text("x")
    (root / "web/test_gone.py").unlink()
    write(
        root / "web/test_new.py",
        """
        import os, time

        def test_crashes():
            os._exit(3)

        def test_hangs():
            time.sleep(60)
        """,
    )
    second = cli(["run", "--headless", "--once"], root)
    assert second.returncode == 1, second.stdout + second.stderr
    return root


@pytest.fixture(scope="module")
def db(project) -> Path:
    return project / ".netra/history.db"


def history(project: Path, *args: str) -> subprocess.CompletedProcess:
    return cli(["history", *args], project)


def history_json(project: Path, *args: str):
    proc = history(project, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------- runs, iterations


def test_runs_and_iterations(project, db):
    runs = history_json(project, "runs")
    assert [r["run"] for r in runs] == [2, 1]  # newest first
    assert runs[1]["iterations"] == 3 and runs[0]["iterations"] == 1
    assert runs[0]["status"] == "failed" and runs[0]["phases"] == "P1, P2"
    last = query(db, "select passed, failed from iterations where run_id = 2")[0]
    assert (runs[0]["passed"], runs[0]["failed"]) == last

    its = history_json(project, "iterations", "1")
    assert [i["iteration"] for i in its] == ["1.1", "1.2", "1.3"]
    assert all(i["revision"] is None and i["duration"] > 0 for i in its)
    # default: the latest run
    assert [i["iteration"] for i in history_json(project, "iterations")] == ["2.1"]

    text = history(project, "iterations", "1").stdout
    header, *lines = text.splitlines()[:4]
    assert header.split()[:2] == ["iter", "started"]
    assert lines[0].startswith("1.1 ") and len(lines) == 3


def test_plain_text_is_aligned_when_piped(project):
    lines = history(project, "runs").stdout.splitlines()
    header = lines[0]
    # right-aligned counts end at the same column as their header
    end = header.index("iters") + len("iters")
    assert all(line[end - 1].isdigit() for line in lines[1:3])
    assert "\x1b[" not in "\n".join(lines)  # no colour codes in a pipe


# ---------------------------------------------------------------------- one test


def test_test_shows_history_across_runs(project):
    data = history_json(project, "test", "test_alternates")
    assert data["nodeid"] == "api/test_api.py::test_alternates" and data["suite"] == "api"
    assert data["summary"]["runs"] == 2 and data["summary"]["results"] == 4
    # newest first: 2.1 (call 3: fails), 1.3 (call 2: passes), 1.2 fails, 1.1 passes
    assert [(r["iteration"], r["outcome"]) for r in data["results"]] == [
        ("2.1", "failed"),
        ("1.3", "passed"),
        ("1.2", "failed"),
        ("1.1", "passed"),
    ]
    assert "odd call 3" in data["results"][0]["message"]
    assert data["summary"]["outcomes"] == {"failed": 2, "passed": 2}

    text = history(project, "test", "api/test_api.py::test_alternates").stdout
    assert "4 results in 4 iterations of 2 runs" in text
    assert "odd call 1" in text


def test_test_shows_the_newest_dump_folded_and_whole_with_dump(project, db):
    (stored,) = query(db, "select dump from results where outcome = 'hung'")[0]
    assert "/_pytest/" in stored and "pluggy" in stored  # the history keeps everything
    folded = history(project, "test", "test_hangs").stdout
    assert (
        "dump of the newest hung result (iteration 2.1, folded; --dump prints it whole)" in folded
    )
    assert " pytest frames …" in folded and "pluggy" not in folded
    test_thread = folded.split("dump of the newest", 1)[1].splitlines()[1]
    assert test_thread.strip().startswith("Thread MainThread")  # the test's thread first
    assert "time.sleep(60)" in folded
    assert "hung 2s at web/test_new.py:" in folded  # its message names the line
    whole = history(project, "test", "test_hangs", "--dump").stdout
    assert "(iteration 2.1, as stored):" in whole
    assert all(line.strip() in whole for line in stored.splitlines() if line.strip())
    assert history_json(project, "test", "test_hangs")["dump"]["text"] == stored
    assert history_json(project, "test", "test_page")["dump"] is None
    failures = history(project, "failures", "2.1").stdout
    assert "hung: hung <n>s at web/test_new.py:<n> in test_hangs: time.sleep(<n>)" in failures


def test_test_ambiguous_or_unknown_is_one_clear_line(project):
    several = history(project, "test", "test_addr")
    assert several.returncode == 2
    assert "matches 2 tests" in several.stderr and "test_addr[1]" in several.stderr
    assert len(several.stderr.strip().splitlines()) == 1
    none = history(project, "test", "no_such_test")
    assert none.returncode == 2 and "no test matches 'no_such_test'" in none.stderr
    # --suite narrows an exact match
    assert history(project, "test", "test_page", "--suite", "web").returncode == 0
    assert history(project, "test", "test_page", "--suite", "api").returncode == 2


# ---------------------------------------------------------------------- flaky


def test_flaky_lists_the_alternating_test(project):
    rows = history_json(project, "flaky")
    names = [r["nodeid"] for r in rows]
    assert "api/test_api.py::test_alternates" in names
    # always failing / always passing tests are not flaky, nor is the induced failure
    assert not any("test_addr" in n or "test_induced" in n or "test_page" in n for n in names)
    row = rows[names.index("api/test_api.py::test_alternates")]
    # run 1 (no deploy, no git: the run is the revision): pass, fail, pass
    assert row["revision"] == "run 1"
    assert (row["passed"], row["failed"], row["executions"], row["flips"]) == (2, 1, 3, 2)
    assert row["flip_rate"] == 1.0
    assert row["fail_rate"] == pytest.approx(1 / 3, abs=0.001)
    assert row["fail_rate_est"] == pytest.approx(0.4)  # (1 + 1) / (3 + 2)
    assert 0 < row["fail_rate_low"] < row["fail_rate"] < row["fail_rate_high"] < 1
    assert row["last_iteration"] == "1.3" and row["last_outcome"] == "passed"
    text = history(project, "flaky").stdout
    assert "test_alternates" in text and "run 1" in text


# ---------------------------------------------------------------------- failures


def test_failures_groups_messages_differing_in_numbers_and_addresses(project, db):
    raw = [
        m
        for (m,) in query(
            db,
            "select r.message from results r join tests t on t.id = r.test_id "
            "join iterations i on i.id = r.iteration_id "
            "where t.nodeid like '%test_addr%' and i.run_id = 2",
        )
    ]
    assert len(raw) == 2 and raw[0] != raw[1]  # the raw messages differ

    data = history_json(project, "failures")
    assert data["iteration"] == "2.1"
    groups = {g["signature"]: g for g in data["groups"]}
    addr = [g for s, g in groups.items() if s.startswith("ValueError: session")]
    assert len(addr) == 1
    assert addr[0]["count"] == 2
    assert addr[0]["signature"] == "ValueError: session <addr> lost user <n>"
    # largest group first; hung and crashed are their own groups
    assert data["groups"][0]["count"] == max(g["count"] for g in data["groups"])
    kinds = {g["signature"].split(":")[0] for g in data["groups"]}
    assert {"hung", "crashed", "AssertionError", "ValueError"} <= kinds

    text = history(project, "failures").stdout
    (row,) = [ln for ln in text.splitlines() if "ValueError: session <addr> lost user <n>" in ln]
    assert row.split()[:3] == ["2", "2", "failed"]  # n, outcomes, signature, first test
    # an older iteration by RUN.SEQ: only test_addr and the alternating test failed
    older = history_json(project, "failures", "1.2")
    assert sum(g["count"] for g in older["groups"]) == 3


# ---------------------------------------------------------------------- diff


def test_diff_shows_the_induced_failure(project):
    data = history_json(project, "diff", "1.3", "2.1")
    assert (data["a"], data["b"]) == ("1.3", "2.1")

    def names(key):
        return sorted(item["nodeid"].split("::")[1] for item in data[key])

    assert names("newly_failing") == ["test_alternates", "test_induced"]
    induced = [i for i in data["newly_failing"] if "test_induced" in i["nodeid"]][0]
    assert (induced["before"], induced["after"]) == ("passed", "failed")
    assert "induced failure" in induced["message"]
    assert names("new") == ["test_crashes", "test_hangs"]
    assert names("removed") == ["test_gone"]
    assert names("still_failing") == ["test_addr[1]", "test_addr[2]"]
    assert names("fixed") == []
    # the other way round, the induced failure is fixed
    back = history_json(project, "diff", "2.1", "1.3")
    assert sorted(i["nodeid"].split("::")[1] for i in back["fixed"]) == [
        "test_alternates",
        "test_induced",
    ]
    # defaults: the iteration before the latest -> the latest
    assert history_json(project, "diff")["a"] == "1.3"
    text = history(project, "diff", "1.3", "2.1").stdout
    assert "newly failing (2)" in text and "test_induced" in text


# ---------------------------------------------------------------------- slowest


def test_slowest_reports_percentiles(project):
    rows = history_json(project, "slowest", "--limit", "50")
    p95s = [r["p95"] for r in rows]
    assert p95s == sorted(p95s, reverse=True)
    sleepy = [r for r in rows if r["nodeid"].endswith("test_sleepy")][0]
    assert sleepy["executions"] == 4
    assert sleepy["p50"] >= 0.3 and sleepy["max"] >= sleepy["p95"] >= sleepy["p50"]
    assert not any(r["nodeid"].endswith("test_skipped") for r in rows)
    assert len(history_json(project, "slowest", "--limit", "2")) == 2


# ---------------------------------------------------------------------- export


def test_export_junit_parses_with_the_right_counts(project, db, tmp_path):
    target = tmp_path / "out/junit.xml"
    proc = history(project, "export", "--junit", str(target))
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {target}" in proc.stdout
    root = ET.parse(target).getroot()
    assert root.tag == "testsuites"
    suites = {s.get("name"): s for s in root.findall("testsuite")}
    assert set(suites) == {"api", "web"}

    outcomes = dict(
        query(
            db,
            "select t.nodeid, r.outcome from results r join tests t on t.id = r.test_id "
            "where r.iteration_id = (select max(id) from iterations) order by r.id",
        )
    )
    assert len(list(root.iter("testcase"))) == len(outcomes) == int(root.get("tests"))
    n_fail = sum(o == "failed" for o in outcomes.values())
    n_err = sum(o in ("error", "hung", "crashed") for o in outcomes.values())
    n_skip = sum(o in ("skipped", "xfailed") for o in outcomes.values())
    assert (int(root.get("failures")), int(root.get("errors")), int(root.get("skipped"))) == (
        n_fail,
        n_err,
        n_skip,
    )
    api = suites["api"]
    assert int(api.get("tests")) == 6 and int(api.get("failures")) == 4
    assert int(api.get("skipped")) == 1
    by_name = {c.get("name"): c for c in root.iter("testcase")}
    assert by_name["test_addr[1]"].get("classname") == "api.test_api"
    assert float(by_name["test_sleepy"].get("time")) >= 0.3
    failure = by_name["test_induced"].find("failure")
    assert failure is not None and failure.get("type") == "AssertionError"
    assert "BREAK" in failure.text
    assert by_name["test_crashes"].find("error").get("type") == "crashed"
    assert by_name["test_hangs"].find("error").get("type") == "hung"
    assert by_name["test_skipped"].find("skipped") is not None
    assert by_name["test_page"].find("*") is None  # passed: no child

    # an older iteration; --json summary
    summary = history_json(project, "export", "--junit", str(tmp_path / "j.xml"), "1.1")
    assert summary["iteration"] == "1.1" and summary["tests"] == 8
    ET.parse(tmp_path / "j.xml")


# ---------------------------------------------------------------------- json, errors


@pytest.mark.parametrize(
    "args",
    [
        ["runs"],
        ["iterations"],
        ["iterations", "1"],
        ["test", "test_induced"],
        ["flaky"],
        ["failures"],
        ["failures", "1"],
        ["slowest"],
        ["diff", "1.1", "2.1"],
    ],
)
def test_every_subcommand_answers_json(project, args):
    data = history_json(project, *args)
    assert data  # something, and it parsed


def test_common_options_before_the_subcommand(project, db):
    proc = cli(["history", "--db", str(db), "--json", "runs"], project.parent)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["run"] == 2


@pytest.mark.parametrize(
    "args, needle",
    [
        (["failures", "7"], "no iteration 7 in run 2"),
        (["failures", "9.1"], "no run 9"),
        (["failures", "one"], "is not an iteration"),
        (["iterations", "5"], "no run 5"),
        (["diff", "1.1", "1.1"], "two different iterations"),
        (["export", "--junit", "/proc/no/such/dir/j.xml"], "cannot write"),
    ],
)
def test_bad_names_exit_2_with_one_line(project, args, needle):
    proc = history(project, *args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_missing_or_foreign_database_exits_2(tmp_path):
    proc = cli(["history", "runs", "--db", str(tmp_path / "nope.db")], tmp_path)
    assert proc.returncode == 2 and "no history database" in proc.stderr
    proc = cli(["history", "flaky"], tmp_path)  # no config, no .netra here
    assert proc.returncode == 2 and "no history database" in proc.stderr
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("create table t (x)").connection.commit()
    proc = cli(["history", "runs", "--db", str(other)], tmp_path)
    assert proc.returncode == 2 and "not a netra-supervisor history database" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_terminal_output_is_a_rich_table(db, monkeypatch):
    from supervisor.cli import build_parser
    from supervisor.history_cli import history_command

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    out = Tty()
    args = build_parser().parse_args(["history", "iterations", "1", "--db", str(db)])
    assert history_command(args, out=out) == 0
    text = out.getvalue()
    assert "iterations of run 1" in text and "1.3" in text
    assert "━" in text or "─" in text  # rich's table rules


def test_history_indexes_exist(db):
    names = {n for (n,) in query(db, "select name from sqlite_master where type = 'index'")}
    assert {"idx_results_test_history", "idx_results_failing"} <= names


# ---------------------------------------------------------------------- Datasette


def _load_datasette_plugin():
    import importlib.util

    from supervisor.store import canned

    path = canned.DATASETTE_DIR / "plugins" / "netra_signature.py"
    spec = importlib.util.spec_from_file_location("netra_datasette_plugin", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shipped_datasette_metadata_is_current():
    from supervisor.store import canned

    assert canned.METADATA_PATH.read_text() == canned.metadata_text(), (
        "regenerate with: python -m supervisor.store.canned --write"
    )
    queries = json.loads(canned.METADATA_PATH.read_text())["databases"]["history"]["queries"]
    assert {"flaky_tests", "failures_by_signature", "pass_count_per_iteration"} <= set(queries)


def test_every_canned_query_runs_on_a_real_database(project, db):
    """Each canned query, as Datasette would run it: read-only, the plugin's function
    registered, every :param bound (blank, or a value the form would take)."""
    import re

    from supervisor.store import canned

    plugin = _load_datasette_plugin()
    meta = json.loads(canned.METADATA_PATH.read_text())
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    plugin.prepare_connection(conn)
    values = {"nodeid": "test_alternates", "iteration_id": ""}
    answers = {}
    try:
        for name, spec in meta["databases"]["history"]["queries"].items():
            params = {p: values.get(p, "") for p in re.findall(r"(?<!:):(\w+)", spec["sql"])}
            answers[name] = [dict(r) for r in conn.execute(spec["sql"], params)]
        by_iteration = [
            dict(r)
            for r in conn.execute(
                meta["databases"]["history"]["queries"]["failures_by_signature"]["sql"],
                {"iteration_id": "2"},  # Datasette passes form values as text
            )
        ]
    finally:
        conn.close()

    assert [r["nodeid"] for r in answers["flaky_tests"]] == [
        r["nodeid"] for r in history_json(project, "flaky")
    ]
    cli_groups = history_json(project, "failures")["groups"]
    assert [(r["signature"], r["results"]) for r in answers["failures_by_signature"]] == [
        (g["signature"], g["count"]) for g in cli_groups
    ]
    assert sum(r["results"] for r in by_iteration) == 3  # iteration id 2 = 1.2
    passes = answers["pass_count_per_iteration"]
    assert [r["iteration"] for r in passes] == ["2.1", "1.3", "1.2", "1.1"]
    assert all(r["passed"] > 0 for r in passes)
    assert {r["iteration"] for r in answers["test_history"]} == {"1.1", "1.2", "1.3", "2.1"}


def test_readme_sqlite_utils_examples_work(project):
    """Every ``sqlite-utils`` line of the README's History database section runs."""
    import shlex

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    lines = [ln for ln in readme.splitlines() if ln.startswith("sqlite-utils ")]
    assert len(lines) >= 5
    for line in lines:
        argv = shlex.split(line)
        proc = subprocess.run(
            [sys.executable, "-m", "sqlite_utils", *argv[1:]],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, f"{line}\n{proc.stderr}"
        assert proc.stdout.strip(), line


def test_a_closed_pipe_is_not_an_error(project):
    """``history runs | head -1``: the reader going away early is a normal end (exit 0)."""
    proc = subprocess.Popen(
        CLI + ["history", "runs"],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stdout.close()  # before the command has written anything
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert "internal error" not in err
