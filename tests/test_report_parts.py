"""The report's plain parts over plain data: the chart, the escaping, the dump bound,
the secrets a config names (``tests/test_report.py`` runs the whole thing for real)."""

from __future__ import annotations

import re

from supervisor.redact import secrets_named_by_config
from supervisor.report.chart import Point, bar, trend_svg
from supervisor.report.gather import DUMP_LINES, _evidence_lines, _shown_dump, run_target
from supervisor.report.html import e
from supervisor.report.markdown import code, fenced, md


def test_the_chart_has_a_point_per_iteration_and_the_target():
    points = [Point("3.1", 10, 50, "gate-failed"), Point("3.2", 40, 50, "failed"),
              Point("3.3", 50, 50, "passed")]  # fmt: skip
    svg = trend_svg(points, target=60)
    circles = re.findall(r'<circle class="point ([^"]+)" cx="([\d.]+)" cy="([\d.]+)"', svg)
    assert [c[0] for c in circles] == ["gate-failed", "failed", "passed"]
    xs = [float(c[1]) for c in circles]
    ys = [float(c[2]) for c in circles]
    assert xs == sorted(xs) and len(set(xs)) == 3  # left to right
    assert ys[0] > ys[1] > ys[2]  # more passed: higher up (smaller y)
    (target_y,) = re.findall(r'<line class="target" x1="\d+" y1="([\d.]+)"', svg)
    assert float(target_y) < ys[2]  # 60 is above 50
    assert "target 60" in svg and 'data-iteration="3.2" data-passed="40"' in svg


def test_the_chart_escapes_labels_and_copes_with_one_point_and_no_target():
    svg = trend_svg([Point('<x y="1">', 0, 0, "running")], target=None)
    assert '<x y="1">' not in svg and "&lt;x y=&quot;1&quot;&gt;" in svg
    assert svg.count("<circle") == 1 and 'class="target"' not in svg


def test_bar():
    assert bar(5, 10, width=10) == "█████░░░░░"
    assert bar(20, 10, width=4) == "████"  # past the target: full, not longer
    assert bar(3, 0) == ""


def test_html_escaping_covers_attributes():
    assert e("<a href='x'>\"") == "&lt;a href=&#x27;x&#x27;&gt;&quot;"
    assert e(None) == ""


def test_markdown_text_cannot_become_markup():
    out = md("<img src=x> **b** [l](http://x) | `c` #12\nnext")
    assert "<" not in out and "\n" not in out
    assert "\\*\\*b\\*\\*" in out and "\\[l\\]" in out and "\\|" in out and "\\`c\\`" in out


def test_a_code_span_outlasts_the_backticks_inside_it():
    assert code("plain") == "`plain`"
    assert code("a `b` c") == "``a `b` c``"
    assert code("`edge`") == "`` `edge` ``"
    assert code("a|b", cell=True) == "`a\\|b`" and code("a|b") == "`a|b`"


def test_a_fence_outlasts_the_backticks_inside_it_and_is_bounded():
    block = fenced("x\n```\ny")
    assert block.startswith("````text\n") and block.endswith("\n````")
    long = fenced("\n".join(str(i) for i in range(100)), most=10)
    assert long.splitlines()[-2] == "… 90 more lines" and "\n9\n" in long and "\n10\n" not in long


def test_a_shown_dump_is_bounded_and_keeps_its_end():
    dump = "\n".join(f"frame {i}" for i in range(1000))
    shown = _shown_dump(dump).splitlines()
    assert len(shown) == DUMP_LINES + 1
    assert shown[0] == "frame 0" and shown[-1] == "frame 999"  # the waiting frame is last
    assert f"… {1000 - DUMP_LINES} lines left out …" in shown
    assert _shown_dump("a\nb\n") == "a\nb"
    wide = _shown_dump("x" * 50_000)
    assert len(wide) < 21_000 and wide.startswith("… 30000 characters left out …")


def test_evidence_lines_as_text_or_a_json_list():
    assert _evidence_lines("a\nb") == ["a", "b"]
    assert _evidence_lines('["a", "b [1]"]') == ["a", "b [1]"]
    assert _evidence_lines("[1] a line that starts with a bracket") == [
        "[1] a line that starts with a bracket"
    ]


def test_the_target_comes_from_the_stored_config():
    assert run_target('{"run": {"target": 1000}}') == 1000
    assert run_target('{"run": {}}') is None and run_target("not json") is None
    assert run_target(None) is None and run_target('{"run": {"target": "x"}}') is None


def test_secrets_named_by_a_config_are_the_values_of_the_variables_it_names():
    config = {
        "auth": {"secret_env": "SIGNING", "export_as": "TOKEN", "algorithm": "HS256"},
        "sink": [{"kind": "webhook", "url_env": "HOOK"}, {"kind": "jsonl", "path": "x"}],
        "run": {"env": {"APP_ENV": "staging"}},
    }
    env = {"SIGNING": "sign-value", "TOKEN": "tok-value", "HOOK": "https://h/x",
           "APP_ENV": "not-a-secret", "SHORT": "ab"}  # fmt: skip
    assert sorted(secrets_named_by_config(config, env)) == [
        "https://h/x", "sign-value", "tok-value"
    ]  # fmt: skip
    assert secrets_named_by_config({"auth": {"secret_env": "UNSET"}}, env) == []
    assert secrets_named_by_config({"a_env": "SHORT"}, env) == []  # too short to mask


def test_a_run_without_iterations_reports_so(tmp_path):
    """A run that is still deploying (or stopped before its first iteration)."""
    import sqlite3

    from supervisor.report import build
    from supervisor.store.writer import HistoryStore

    store = HistoryStore.open(tmp_path / "h.db", config_json={"run": {"target": 10}})
    store.close()
    conn = sqlite3.connect(f"file:{tmp_path / 'h.db'}?mode=ro", uri=True)
    try:
        for fmt in ("html", "markdown"):
            text = build(conn, None, fmt)
            assert text.count("No iteration recorded yet.") == 2  # trend, iterations
            assert "| iteration | phase |" not in text and "<svg" not in text
    finally:
        conn.close()
