"""The quarantine's plain logic (issue 14, point 2): entries, globs, expiry against a
fake day, what a run applies, how a tally counts quarantined results apart, and the
flip counting behind ``quarantine suggest`` and ``[run] auto_quarantine``. No process,
no database: the end-to-end runs are in tests/test_quarantine_runs.py."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from supervisor.config import ConfigError, PhaseConfig, parse_config
from supervisor.core.events import LogLine, PhaseStarted, TestResult
from supervisor.core.flips import (
    auto_reason,
    could_come_out,
    most_flipped,
    not_quarantined,
    to_auto_quarantine,
)
from supervisor.core.gates import PhaseTally, gate_holds
from supervisor.core.model import RunModel
from supervisor.core.quarantine import (
    Entry,
    QuarantineList,
    RunQuarantine,
    parse_quarantine,
    quarantine_text,
)

FILE = """\
# a comment
[[test]]
nodeid = "tests/test_api.py::test_upload[big-file]"
reason = "S3 sandbox is slow"
added_by = "ana"
added = "2026-11-30"

[[test]]
nodeid = "tests/test_ws.py::*stream*"
reason = "JIRA-77"
until = 2026-12-31
suite = "ws"
"""


def result(nodeid: str, outcome: str, suite: str = "api", quarantined: bool = False):
    return TestResult(1, 1, suite, nodeid, outcome, quarantined=quarantined)


def test_a_file_parses_into_entries_with_their_lines():
    q = parse_quarantine(FILE, "q.toml")
    first, second = q.entries
    assert (first.nodeid, first.reason, first.added_by, first.line) == (
        "tests/test_api.py::test_upload[big-file]",
        "S3 sandbox is slow",
        "ana",
        2,
    )
    assert first.added == date(2026, 11, 30) and first.until is None
    assert (second.until, second.suite, second.line, second.is_glob) == (
        date(2026, 12, 31),
        "ws",
        8,
        True,
    )


def test_an_exact_nodeid_matches_itself_brackets_and_all():
    q = parse_quarantine(FILE, "q.toml")
    assert q.match("api", "tests/test_api.py::test_upload[big-file]") is q.entries[0]
    # fnmatch would read [big-file] as a character class and match this one
    assert q.match("api", "tests/test_api.py::test_uploadb") is None
    assert q.match("api", "tests/test_api.py::test_upload[big-file]x") is None


def test_a_glob_matches_any_text_and_only_in_its_suite():
    q = parse_quarantine(FILE, "q.toml")
    assert q.match("ws", "tests/test_ws.py::test_stream_events[1]") is q.entries[1]
    assert q.match("ws", "tests/test_ws.py::TestX::test_upstream") is q.entries[1]
    assert q.match("other", "tests/test_ws.py::test_stream_events[1]") is None
    assert q.match("ws", "tests/test_ws.py::test_ping") is None
    assert Entry("tests/t.py::test_?", "r").matches("s", "tests/t.py::test_a")
    assert not Entry("tests/t.py::test_?", "r").matches("s", "tests/t.py::test_ab")


def test_until_is_the_last_day_an_entry_applies():
    entry = Entry("t", "r", until=date(2026, 12, 31))
    assert not entry.expired(date(2026, 12, 31))
    assert entry.expired(date(2027, 1, 1))
    q = QuarantineList((entry, Entry("u", "r")))
    assert [e.nodeid for e in q.active(date(2027, 1, 1)).entries] == ["u"]
    assert [e.nodeid for e in q.expired(date(2027, 1, 1))] == ["t"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[test]]\nnodeid = 'x'\nreason = \n", "q.toml: line 3: not valid TOML: "),
        ("[[test]]\nnodeid = 'x'\n", "q.toml: line 1: test[0]: every [[test]] needs a reason"),
        (
            "[[test]]\nnodeid = 'x'\nreason = 'r'\n\n[[test]]\nnodeid = 'y'\nreason = 'r'\n"
            "until = '31/12/2026'\n",
            "q.toml: line 8: test[1].until: '31/12/2026' is not a date; write YYYY-MM-DD",
        ),
        (
            "[[test]]\nnodeid = 'x'\nreasn = 'r'\n",
            "q.toml: line 3: test[0].reasn: unknown key (did you mean 'reason'?)",
        ),
        ("[[test]]\nnodeid = 3\nreason = 'r'\n", "q.toml: line 2: test[0].nodeid: expected a"),
        ("[[tests]]\nnodeid = 'x'\n", "q.toml: tests: unknown key; the file holds [[test]]"),
    ],
)
def test_a_broken_file_is_one_line_naming_the_file_and_the_line(text, message):
    with pytest.raises(ConfigError) as info:
        parse_quarantine(text, "q.toml")
    assert str(info.value).startswith(message), str(info.value)
    assert "\n" not in str(info.value)


def test_an_empty_file_quarantines_nothing():
    assert len(parse_quarantine("", "q.toml")) == 0
    assert len(parse_quarantine("# nothing yet\n", "q.toml")) == 0


class FakeFile:
    """What ``load`` returns, changed by the test between iterations."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __call__(self) -> QuarantineList:
        return parse_quarantine(self.text, "q.toml")


def test_a_run_applies_active_entries_and_says_once_that_one_expired():
    file = FakeFile(FILE)
    today = [date(2027, 1, 1)]  # the glob's until (2026-12-31) is past
    q = RunQuarantine(file, lambda: today[0])
    said: list[LogLine] = []
    q.start_iteration(said.append)
    assert [line.level for line in said] == ["warning"]
    assert "tests/test_ws.py::*stream* [ws] (line 8) expired (until 2026-12-31)" in said[0].text
    assert q.mark(result("tests/test_ws.py::test_stream", "failed", "ws")).quarantined is False
    marked = q.mark(result("tests/test_api.py::test_upload[big-file]", "failed"))
    assert marked.quarantined is True and marked.outcome == "failed"
    q.start_iteration(said.append)  # the next iteration: not said again
    assert len(said) == 1


def test_the_file_is_read_again_each_iteration_and_a_broken_one_keeps_the_last_entries():
    file = FakeFile("")
    q = RunQuarantine(file, lambda: date(2026, 12, 1))
    said: list[LogLine] = []
    q.start_iteration(said.append)
    assert not q.applies("api", "tests/test_api.py::test_upload[big-file]")
    file.text = FILE  # quarantined while the loop runs
    q.start_iteration(said.append)
    assert q.applies("api", "tests/test_api.py::test_upload[big-file]")
    file.text = "[[test]\n"  # a typo mid-run must not end a long run
    q.start_iteration(said.append)
    assert q.applies("api", "tests/test_api.py::test_upload[big-file]")
    assert said[-1].level == "error" and "q.toml: line 1: not valid TOML" in said[-1].text


def test_auto_quarantine_runs_at_iteration_end_and_its_lines_are_said():
    calls: list[int] = []

    def auto() -> list[str]:
        calls.append(1)
        return ["auto_quarantine: quarantined x"]

    q = RunQuarantine(FakeFile(""), lambda: date(2026, 12, 1), auto)
    said: list[LogLine] = []
    q.end_iteration(said.append)
    assert calls == [1] and [line.text for line in said] == ["auto_quarantine: quarantined x"]
    RunQuarantine(FakeFile(""), lambda: date(2026, 12, 1)).end_iteration(said.append)
    assert len(said) == 1  # off: nothing is called, nothing said


def test_a_tally_counts_quarantined_results_apart_and_they_never_fail_the_gate():
    phase = PhaseConfig(name="P1", suites=("api",))
    tally = PhaseTally(["api"])
    tally.add(result("t::ok", "passed"))
    tally.add(result("t::broken", "failed", quarantined=True))
    tally.add(result("t::hangs", "hung", quarantined=True))
    tally.add(result("t::back", "passed", quarantined=True))
    assert tally.counts()["failed"] == 0 and tally.counts()["passed"] == 1
    assert tally.quarantined() == {"failed": 1, "hung": 1, "passed": 1}
    assert gate_holds(phase, tally.counts())
    tally.add(result("t::ok", "failed"))  # a re-run replaces the earlier outcome
    assert not gate_holds(phase, tally.counts())
    tally.seed("api", {"t::old": "failed"}, frozenset({"t::old"}))
    assert tally.quarantined()["failed"] == 2 and tally.counts()["failed"] == 1


def test_the_text_puts_what_failed_first():
    assert quarantine_text({"passed": 1, "failed": 2}) == "3 quarantined: 2 failed, 1 passed"
    assert quarantine_text({"passed": 0}) == ""
    assert quarantine_text({}) == ""


def test_the_model_counts_them_apart_and_keeps_them_out_of_the_failures():
    model = RunModel()
    model.apply(PhaseStarted(1, 1, 1, "P1", "all-pass", ("api",), "now"))
    model.apply(result("t::broken", "failed", quarantined=True))
    model.apply(result("t::bad", "failed"))
    view = model.snapshot()
    (phase,) = view.phases
    assert phase.counts["failed"] == 1 and phase.quarantined == {"failed": 1}
    assert phase.done == 2
    assert [f.nodeid for f in view.failures] == ["t::bad"]


# --------------------------------------------------------------------------- flips


def row(nodeid: str, revision: str, flips: int, executions: int, failed: int, suite: str = "s"):
    """One row of ``history flaky`` (the history counts the flips)."""
    return {
        "suite": suite,
        "nodeid": nodeid,
        "revision": revision,
        "flips": flips,
        "executions": executions,
        "failed": failed,
    }


def test_each_test_keeps_the_revision_where_it_flipped_most():
    found = most_flipped(
        [  # newest evidence first, as history flaky orders them
            row("t::a", "r2", 1, 2, 1),
            row("t::a", "r1", 4, 5, 2),
            row("t::d", "r3", 2, 3, 1),
            row("t::d", "r1", 2, 4, 2),  # a tie: the newer revision is kept
            row("t::c", "r1", 0, 2, 2),  # never flipped: left out
        ]
    )
    assert [(f.nodeid, f.revision, f.flips, f.executions, f.failed) for f in found] == [
        ("t::a", "r1", 4, 5, 2),
        ("t::d", "r3", 2, 3, 1),
    ]


def test_auto_quarantine_takes_what_flipped_enough_and_no_entry_covers():
    found = most_flipped([row("t::a", "r1", 3, 4, 2), row("t::b", "r1", 1, 2, 1)])
    covered = QuarantineList((Entry("t::*", "r", suite="other"),))
    assert [f.nodeid for f in to_auto_quarantine(found, covered, 3)] == ["t::a"]
    covered = QuarantineList((Entry("t::a", "r"),))
    assert to_auto_quarantine(found, covered, 3) == []
    assert [f.nodeid for f in not_quarantined(found, covered)] == ["t::b"]
    assert (
        auto_reason(found[0], "7d") == "auto: flipped 3 times in 4 runs under revision r1 within 7d"
    )


def test_an_entry_could_come_out_when_every_test_it_covers_passed_its_last_n():
    glob = Entry("t::g*", "r")
    exact = Entry("t::x", "r")
    idle = Entry("t::never-ran", "r")
    q = QuarantineList((glob, exact, idle))
    latest = {
        ("s", "t::g1"): ["passed"] * 3,
        ("s", "t::g2"): ["passed", "passed", "failed"],
        ("s", "t::x"): ["passed"] * 5,
    }
    assert [c.entry for c in could_come_out(q, latest, 3)] == [exact]
    assert [c.entry for c in could_come_out(q, latest, 2)] == [glob, exact]
    assert could_come_out(q, {("s", "t::x"): ["passed"]}, 3) == []  # too few to tell


# --------------------------------------------------------------------------- config


def test_the_run_keys_parse_and_check_their_values(tmp_path: Path):
    config = parse_config({}, tmp_path / "n.toml")
    assert config.run.quarantine == "netra-quarantine.toml"
    assert config.run.auto_quarantine is None  # off by default
    config = parse_config(
        {"run": {"quarantine": "q/list.toml", "auto_quarantine": {"flips": 2, "within": "3d"}}},
        tmp_path / "n.toml",
    )
    auto = config.run.auto_quarantine
    assert auto is not None and (auto.flips, auto.within, auto.within_text) == (2, 259200.0, "3d")
    assert config.resolve(config.run.quarantine) == tmp_path / "q/list.toml"


@pytest.mark.parametrize(
    ("run", "message"),
    [
        ({"quarantine": 3}, "run.quarantine: expected a string"),
        ({"quarantine": ""}, "run.quarantine: empty path"),
        ({"auto_quarantine": True}, "run.auto_quarantine: expected a table"),
        ({"auto_quarantine": {"flip": 3}}, "run.auto_quarantine.flip: unknown key (did you mean"),
        ({"auto_quarantine": {"flips": 0}}, "run.auto_quarantine.flips: must be at least 1"),
        ({"auto_quarantine": {"within": "a week"}}, "run.auto_quarantine.within: 'a week' is not"),
    ],
)
def test_bad_run_keys_are_one_line_errors(tmp_path: Path, run, message):
    with pytest.raises(ConfigError) as info:
        parse_config({"run": run}, tmp_path / "n.toml")
    assert message in str(info.value)


def test_the_readme_example_is_a_valid_quarantine_file():
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Quarantine\n") :]
    example = section[section.index("```toml\n") + 8 : section.index("```\n", 1)]
    q = parse_quarantine(example, "README")
    assert [e.nodeid for e in q.entries] == [
        "tests/e2e/test_api.py::test_upload[big]",
        "tests/e2e/test_ws.py::*stream*",
    ]
    assert q.match("ws-events", "tests/e2e/test_ws.py::test_long_stream") is q.entries[1]


def test_an_auto_quarantine_that_cannot_write_is_reported_and_the_run_goes_on():
    def auto() -> list[str]:
        raise PermissionError(13, "Permission denied", "q.toml")

    said: list[LogLine] = []
    RunQuarantine(FakeFile(""), lambda: date(2026, 12, 1), auto).end_iteration(said.append)
    assert [line.level for line in said] == ["error"]
    assert "auto_quarantine: [Errno 13] Permission denied: 'q.toml'" in said[0].text
