"""``history export --junit`` stays well-formed XML whatever the tests print."""

from __future__ import annotations

import subprocess
import textwrap
import xml.etree.ElementTree as ET

from cli_helpers import CLI

from supervisor.store.junit import split_nodeid


def test_control_characters_and_markup_do_not_break_the_xml(tmp_path):
    (tmp_path / "t").mkdir()
    (tmp_path / "t/test_x.py").write_text(
        textwrap.dedent(
            r"""
            import pytest

            def test_ansi_and_bell():
                assert False, "red \x1b[31mFAIL\x1b[0m bell \x07 nul \x00 <tag> & 'q'"

            class TestGroup:
                @pytest.mark.parametrize("v", ["a]]>b"])
                def test_cdata_end(self, v):
                    raise RuntimeError(v + " \x0b")

            @pytest.mark.xfail(reason="known bug 12")
            def test_known():
                assert 0
            """
        )
    )
    (tmp_path / "netra-supervisor.toml").write_text(
        '[run]\nuntil = "once"\n[[suite]]\nname = "t"\nargs = ["t"]\n'
    )
    run = subprocess.run(
        CLI + ["run", "--headless"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1, run.stdout + run.stderr
    out = tmp_path / "junit.xml"
    proc = subprocess.run(
        CLI + ["history", "export", "--junit", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    root = ET.parse(out).getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    ansi = cases["test_ansi_and_bell"].find("failure")
    assert ansi.get("message").startswith("AssertionError: red FAIL bell  nul  <tag> & 'q'")
    cdata = cases["test_cdata_end[a]]>b]"]
    assert cdata.get("classname") == "t.test_x.TestGroup"
    assert cdata.find("failure").get("type") == "RuntimeError"
    skipped = cases["test_known"].find("skipped")
    assert skipped is not None and skipped.get("type") == "pytest.xfail"
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "2", "1")


def test_split_nodeid_like_pytest_junitxml():
    assert split_nodeid("tests/e2e/test_a.py::TestX::test_y[1-2]") == (
        "tests.e2e.test_a.TestX",
        "test_y[1-2]",
    )
    assert split_nodeid("tests/test_b.py::test_z") == ("tests.test_b", "test_z")
    assert split_nodeid("broken") == ("broken", "broken")
