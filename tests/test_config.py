"""supervisor/config.py: the configuration contract, read from real files.

Every error must be a single line naming the file and the key, because that line is
all a tired operator sees at hour 14.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from supervisor.config import (
    CONFIG_FILENAME,
    Config,
    ConfigError,
    PhaseConfig,
    SuiteConfig,
    find_config,
    format_duration,
    load_config,
    parse_config,
    parse_duration,
    select_phases,
)

# The example from DESIGN.md's "Configuration contract", verbatim.
FULL_EXAMPLE = """\
[run]
target = 1000               # the count the dashboard grows toward
until = "all-pass"          # all-pass | once | target
max_iterations = 50
max_duration = "20h"
between = "immediate"       # immediate | wait-for-change | manual | "10m"
watch = ["."]               # what wait-for-change watches (git HEAD and files)
db = ".netra/history.db"
env = { APP_ENV = "staging" }   # extra environment for every suite

[deploy]
backend = "command"         # a registered deploy backend; "none" skips deploying
command = ["./scripts/deploy.sh", "staging"]
health_url = "http://127.0.0.1:8000/health"
health_timeout = "120s"
when = "every-iteration"    # every-iteration | on-change | first

[auth]                      # optional: mint a short-lived JWT for the tests (pyjwt)
secret_env = "NETRA_JWT_SECRET"
algorithm = "HS256"
claims = { sub = "e2e-bot", aud = "staging" }
ttl = "1h"
export_as = "NETRA_E2E_TOKEN"   # environment variable the tests read

[watchdog]
test_timeout = "120s"       # a test running longer is hung
silence_timeout = "60s"     # no heartbeat from the test process for this long is hung
grace = "5s"                # from the diagnostic dump request to the kill

[[phase]]
name = "P1 critical"
suites = ["p1"]             # suite names, or "tag:critical"
gate = "all-pass"           # all-pass | none | 0.95 ; a failed gate ends the iteration
test_timeout = "90s"
impact = "$120K MRR"        # free label shown on the dashboard

[[suite]]
name = "p1"
kind = "pytest"
args = ["tests/e2e/staging/test_priority1_critical.py", "-m", "not local_only"]
cwd = "."
python = ".venv/bin/python" # the interpreter of the project under test (default: the
                            # supervisor's own); our child plugin reaches it by path
workers = 4                 # > 1 runs the suite on pytest-xdist
test_timeout = "60s"        # overrides the phase and watchdog default
tags = ["critical"]

[[suite]]
name = "ws-events"
kind = "websocket-events"
url = "ws://127.0.0.1:8000/ws"
send = { type = "user_message", text = "ping" }
expect = ["agent_started", "agent_thinking", "tool_executing", "tool_completed", "agent_completed"]
timeout = "30s"

[[sink]]
kind = "jsonl"
path = ".netra/events.jsonl"

[[sink]]
kind = "webhook"
url_env = "NETRA_WEBHOOK_URL"
events = ["iteration_finished", "test_hung"]

[plugins]
hook_timeout = "30s"        # a hook running longer is reported and its plugin quarantined
dirs = ["plugins"]          # local plugin folders of the supervised repo
load = []                   # extra importable modules to load as plugins
disable = []                # plugin names not to load
"""

# A small valid config that error tests extend.
SUITE_P1 = """\
[[suite]]
name = "p1"
args = ["tests"]
tags = ["critical"]
"""


def write(folder: Path, text: str, name: str = CONFIG_FILENAME) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> Config:
    write(tmp_path, text)
    return load_config(None, tmp_path)


def config_error(tmp_path: Path, text: str, *, name: str = CONFIG_FILENAME) -> str:
    """Load ``text`` from a real file and return the error's one-line message."""
    path = write(tmp_path, text, name)
    with pytest.raises(ConfigError) as info:
        load_config(None, tmp_path)
    message = str(info.value)
    assert str(path) in message
    assert_one_line(message)
    return message


def assert_one_line(message: str) -> None:
    assert "\n" not in message and "\r" not in message, message
    assert message.strip() == message


# --------------------------------------------------------------------------- full example


def test_full_example_parses_every_key(tmp_path: Path) -> None:
    path = write(tmp_path, FULL_EXAMPLE)
    cfg = load_config(None, tmp_path)

    assert cfg.path == path
    assert cfg.base_dir == tmp_path

    run = cfg.run
    assert run.target == 1000
    assert run.until == "all-pass"
    assert run.max_iterations == 50
    assert run.max_duration == 20 * 3600
    assert run.between == "immediate"
    assert run.between_interval == 0.0
    assert run.watch == (".",)
    assert run.db == ".netra/history.db"
    assert dict(run.env) == {"APP_ENV": "staging"}

    deploy = cfg.deploy
    assert deploy.backend == "command"
    assert deploy.health_url == "http://127.0.0.1:8000/health"
    assert deploy.health_timeout == 120.0
    assert deploy.when == "every-iteration"
    # the backend's own keys, as written: the backend parses them (test_kind_config.py)
    assert dict(deploy.options) == {"command": ["./scripts/deploy.sh", "staging"]}

    auth = cfg.auth
    assert auth is not None
    assert auth.secret_env == "NETRA_JWT_SECRET"
    assert auth.algorithm == "HS256"
    assert dict(auth.claims) == {"sub": "e2e-bot", "aud": "staging"}
    assert auth.ttl == 3600.0
    assert auth.export_as == "NETRA_E2E_TOKEN"
    assert auth.key_file == ""

    wd = cfg.watchdog
    assert (wd.test_timeout, wd.silence_timeout, wd.grace) == (120.0, 60.0, 5.0)

    assert len(cfg.phases) == 1
    phase = cfg.phases[0]
    assert phase == PhaseConfig(
        name="P1 critical",
        suites=("p1",),
        gate="all-pass",
        gate_ratio=1.0,
        test_timeout=90.0,
        impact="$120K MRR",
    )

    assert [s.name for s in cfg.suites] == ["p1", "ws-events"]
    p1 = cfg.suite("p1")
    assert p1.kind == "pytest"
    assert p1.args == ("tests/e2e/staging/test_priority1_critical.py", "-m", "not local_only")
    assert p1.cwd == "."
    assert p1.python == ".venv/bin/python"
    assert p1.workers == 4
    assert p1.test_timeout == 60.0
    assert p1.tags == ("critical",)
    assert dict(p1.options) == {}
    assert p1.registered_by == ""

    ws = cfg.suite("ws-events")
    assert ws.kind == "websocket-events"
    assert set(ws.options) == {"url", "send", "expect", "timeout"}
    assert ws.options["timeout"] == "30s"  # as written: its kind converts it
    assert ws.workers == 1 and ws.test_timeout is None  # defaults

    assert len(cfg.sinks) == 2
    jsonl, webhook = cfg.sinks
    assert (jsonl.kind, dict(jsonl.options)) == ("jsonl", {"path": ".netra/events.jsonl"})
    assert webhook.kind == "webhook"
    assert dict(webhook.options) == {"url_env": "NETRA_WEBHOOK_URL"}
    assert webhook.events == ("iteration_finished", "test_hung")

    assert cfg.plugins.dirs == ("plugins",)
    assert cfg.plugins.load == ()
    assert cfg.plugins.disable == ()
    assert cfg.plugins.hook_timeout == 30.0

    assert set(cfg.raw) == {
        "run",
        "deploy",
        "auth",
        "watchdog",
        "phase",
        "suite",
        "sink",
        "plugins",
    }


def test_config_objects_are_frozen(tmp_path: Path) -> None:
    cfg = load(tmp_path, FULL_EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.run.target = 5  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.suites[0].workers = 9  # type: ignore[misc]


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, "")
    assert cfg.run.until == "all-pass"
    assert cfg.run.max_iterations == 50
    assert cfg.run.max_duration is None
    assert cfg.deploy.backend == "none"
    assert cfg.auth is None
    assert cfg.watchdog.test_timeout == 120.0
    assert cfg.phases == () and cfg.suites == () and cfg.sinks == ()


def test_without_phases_every_suite_runs_in_one_ungated_phase(tmp_path: Path) -> None:
    cfg = load(tmp_path, SUITE_P1 + '[[suite]]\nname = "p2"\n')
    assert len(cfg.phases) == 1
    assert cfg.phases[0].suites == ("p1", "p2")
    assert cfg.phases[0].gate == "none"


def test_resolve_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    write(sub, "")
    cfg = load_config(str(sub / CONFIG_FILENAME), tmp_path)
    assert cfg.resolve(".netra/history.db") == sub / ".netra/history.db"
    assert cfg.resolve("/abs/x.db") == Path("/abs/x.db")


def test_select_suites_by_name_and_tag_in_order_without_repeats(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        """\
[[suite]]
name = "a"
tags = ["critical", "fast"]
[[suite]]
name = "b"
tags = ["fast"]
[[suite]]
name = "c"
""",
    )
    names = [s.name for s in cfg.select_suites(("c", "tag:fast", "a"))]
    assert names == ["c", "a", "b"]
    assert [s.name for s in cfg.select_suites(("tag:critical",))] == ["a"]
    with pytest.raises(KeyError):
        cfg.suite("nope")


def test_phase_with_tag_selector(tmp_path: Path) -> None:
    cfg = load(tmp_path, SUITE_P1 + '[[phase]]\nname = "P1"\nsuites = ["tag:critical"]\n')
    assert cfg.phases[0].suites == ("tag:critical",)
    assert [s.name for s in cfg.select_suites(cfg.phases[0].suites)] == ["p1"]


# --------------------------------------------------------------------------- finding the file


def test_explicit_file_relative_to_cwd(tmp_path: Path) -> None:
    (tmp_path / "ci").mkdir()
    path = write(tmp_path / "ci", FULL_EXAMPLE, "nightly.toml")
    write(tmp_path, "[run]\ntarget = 3\n")  # the cwd file is ignored with -c
    cfg = load_config("ci/nightly.toml", tmp_path)
    assert cfg.path == path
    assert cfg.base_dir == tmp_path / "ci"
    assert cfg.run.target == 1000


def test_explicit_file_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[run]\ntarget = 7\n", "other.toml")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert load_config(str(path)).run.target == 7


def test_explicit_file_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config("missing.toml", tmp_path)
    message = str(info.value)
    assert "missing.toml" in message and "-c" in message
    assert_one_line(message)


def test_explicit_pyproject_uses_its_tool_table(tmp_path: Path) -> None:
    write(tmp_path, "[tool.netra-supervisor.run]\ntarget = 12\n", "pyproject.toml")
    assert load_config("pyproject.toml", tmp_path).run.target == 12


def test_explicit_pyproject_without_tool_table(tmp_path: Path) -> None:
    path = write(tmp_path, '[project]\nname = "x"\n', "pyproject.toml")
    with pytest.raises(ConfigError) as info:
        load_config("pyproject.toml", tmp_path)
    message = str(info.value)
    assert str(path) in message and "tool.netra-supervisor" in message
    assert_one_line(message)


def test_own_file_in_cwd_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "[run]\ntarget = 5\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert cfg.path.resolve() == path.resolve()
    assert cfg.run.target == 5


def test_own_file_wins_over_pyproject(tmp_path: Path) -> None:
    write(tmp_path, "[tool.netra-supervisor.run]\ntarget = 1\n", "pyproject.toml")
    path = write(tmp_path, "[run]\ntarget = 2\n")
    cfg = load_config(None, tmp_path)
    assert cfg.path == path
    assert cfg.run.target == 2


def test_pyproject_tool_table(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
[project]
name = "backend"

[tool.ruff]
line-length = 100

[tool.netra-supervisor.run]
until = "once"

[[tool.netra-supervisor.suite]]
name = "unit"
args = ["tests/unit"]

[[tool.netra-supervisor.phase]]
name = "P1"
suites = ["unit"]
""",
        "pyproject.toml",
    )
    path, table = find_config(None, tmp_path)
    assert path == tmp_path / "pyproject.toml"
    assert set(table) == {"run", "suite", "phase"}
    cfg = load_config(None, tmp_path)
    assert cfg.path == path
    assert cfg.run.until == "once"
    assert cfg.suites[0].args == ("tests/unit",)
    assert cfg.phases[0].name == "P1"


def test_error_in_pyproject_names_pyproject(tmp_path: Path) -> None:
    message = config_error(
        tmp_path, "[tool.netra-supervisor.watchdog]\ntest_timout = 5\n", name="pyproject.toml"
    )
    assert "test_timout" in message and "did you mean 'test_timeout'" in message


def test_pyproject_tool_entry_that_is_not_a_table(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[tool]\nnetra-supervisor = "yes"\n', name="pyproject.toml")
    assert "tool.netra-supervisor" in message and "expected a table" in message


@pytest.mark.parametrize("pyproject", [None, '[project]\nname = "x"\n'])
def test_missing_config_suggests_init(tmp_path: Path, pyproject: str | None) -> None:
    if pyproject is not None:
        write(tmp_path, pyproject, "pyproject.toml")
    with pytest.raises(ConfigError) as info:
        load_config(None, tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message
    assert CONFIG_FILENAME in message
    assert "netra-supervisor init" in message
    assert "-c FILE" in message
    assert_one_line(message)


# --------------------------------------------------------------------------- unknown keys


def test_unknown_key_did_you_mean(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[watchdog]\ntest_timout = "120s"\n')
    assert "watchdog.test_timout" in message
    assert "unknown key" in message
    assert "did you mean 'test_timeout'" in message


def test_unknown_key_without_close_match_lists_known_keys(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[plugins]\nzzz = []\n")
    assert "plugins.zzz" in message
    assert "known keys: dirs, disable, hook_timeout, load" in message


def test_plugins_hook_timeout_is_a_positive_duration(tmp_path: Path) -> None:
    assert load(tmp_path, SUITE_P1).plugins.hook_timeout == 30.0  # the default
    assert load(tmp_path, SUITE_P1 + '[plugins]\nhook_timeout = "2s"\n').plugins.hook_timeout == 2
    message = config_error(tmp_path, SUITE_P1 + '[plugins]\nhook_timeout = "0s"\n')
    assert "plugins.hook_timeout: must be longer than 0s" in message


def test_unknown_section_did_you_mean(tmp_path: Path) -> None:
    message = config_error(tmp_path, SUITE_P1 + '[[phases]]\nname = "P1"\nsuites = ["p1"]\n')
    assert "phases: unknown section" in message
    assert "did you mean 'phase'" in message


def test_unknown_key_in_phase(tmp_path: Path) -> None:
    message = config_error(
        tmp_path, SUITE_P1 + '[[phase]]\nname = "P1"\nsuites = ["p1"]\ngates = "none"\n'
    )
    assert "phase[0].gates" in message and "did you mean 'gate'" in message


def test_kind_keys_are_kept_as_written_for_their_kind(tmp_path: Path) -> None:
    """Keys beyond the common ones belong to the kind, which is known only once plugins
    are loaded: they wait in ``options`` (also readable as ``extra``, the old name)."""
    cfg = load(
        tmp_path,
        """\
[deploy]
backend = "k8s"
namespace = "e2e"

[[suite]]
name = "load"
kind = "locust"
users = 50
test_timout = "1m"

[[sink]]
kind = "slack"
channel = "#e2e"
""",
    )
    assert dict(cfg.deploy.options) == {"namespace": "e2e"}
    assert dict(cfg.suites[0].options) == {"users": 50, "test_timout": "1m"}
    assert dict(cfg.sinks[0].options) == {"channel": "#e2e"}
    assert cfg.suites[0].extra is cfg.suites[0].options


def test_suites_made_in_code_may_still_say_extra() -> None:
    """``SuiteConfig(extra=...)``, from before ``options``, still works (plugins build
    suites in ``netra_register_suites``)."""
    suite = SuiteConfig(name="smoke", kind="probe", extra={"endpoint": "/"})
    assert dict(suite.options) == {"endpoint": "/"} and suite.extra == suite.options
    assert dataclasses.replace(suite, options={"endpoint": "/x"}).extra == {"endpoint": "/x"}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[run]\nuntil = "all_pass"\n', "run.until"),
        ('[deploy]\nwhen = "every_iteration"\n', "deploy.when"),
        ('[auth]\nalgorithm = "HS257"\n', "auth.algorithm"),
    ],
)
def test_choices_did_you_mean(tmp_path: Path, text: str, key: str) -> None:
    message = config_error(tmp_path, text)
    assert key in message
    assert "is not one of" in message
    assert "did you mean" in message


# --------------------------------------------------------------------------- wrong types


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[run]\ntarget = "1000"\n', "run.target", "expected an integer, got a string"),
        (
            "[run]\nmax_iterations = 2.5\n",
            "run.max_iterations",
            "expected an integer, got a number",
        ),
        ("[run]\ntarget = true\n", "run.target", "expected an integer, got a boolean"),
        ("[run]\ntarget = -1\n", "run.target", "must not be negative"),
        ("[run]\nuntil = 1\n", "run.until", "expected a string, got an integer"),
        ('[run]\nwatch = "."\n', "run.watch", 'write ["."]'),
        ("[run]\nwatch = [1, 2]\n", "run.watch", "expected a list of strings"),
        ('[run]\nenv = "APP_ENV=staging"\n', "run.env", "expected a table of strings"),
        ("[run]\nenv = { A = [1] }\n", "run.env.A", "expected a string, got a list"),
        ('[auth]\nclaims = "sub"\n', "auth.claims", "expected a table"),
        ("[sink]\nkind = 'jsonl'\n", "sink", "write [[sink]]"),
        ("[[run]]\ntarget = 1\n", "run", "write [run]"),
        ("run = 5\n", "run", "write [run]"),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, key: str, problem: str) -> None:
    message = config_error(tmp_path, text)
    assert f": {key}: " in message
    assert problem in message


def test_wrong_type_in_suite(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[[suite]]\nname = "p1"\nworkers = "4"\n')
    assert "suite[0] (p1).workers" in message
    assert "expected an integer, got a string" in message


def test_strmap_numbers_become_strings(tmp_path: Path) -> None:
    cfg = load(tmp_path, "[run]\nenv = { WORKERS = 4, RATIO = 0.5, NAME = 'x' }\n")
    assert dict(cfg.run.env) == {"WORKERS": "4", "RATIO": "0.5", "NAME": "x"}


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("5m", 300.0),
        ("20h", 72000.0),
        ("1h30m", 5400.0),
        ("1h 30m", 5400.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("2d", 172800.0),
        ("1m30s", 90.0),
        (" 10M ", 600.0),
        ("0s", 0.0),
        (90, 90.0),
        (0, 0.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["5 minutes", "", "  ", "90", "s", "1h30", "-5s", "5x", "1.2.3s", "5mss", -1, True, None, [1]],
)
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_parse_duration_rejects_nan() -> None:
    with pytest.raises(ValueError):
        parse_duration(math.nan)


@pytest.mark.parametrize(
    ("toml_value", "seconds"),
    [
        ('"90s"', 90.0),
        ('"5m"', 300.0),
        ('"1h30m"', 5400.0),
        ('"250ms"', 0.25),
        ("45", 45.0),
        ("1.5", 1.5),
    ],
)
def test_durations_in_the_file(tmp_path: Path, toml_value: str, seconds: float) -> None:
    cfg = load(tmp_path, f"[watchdog]\ntest_timeout = {toml_value}\n")
    assert cfg.watchdog.test_timeout == pytest.approx(seconds)


def test_bad_duration_names_file_key_and_fix(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[watchdog]\ntest_timeout = "5 minutes"\n')
    assert "watchdog.test_timeout" in message
    assert "'5 minutes'" in message
    assert '"90s"' in message and '"5m"' in message


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[run]\nmax_duration = "forever"\n', "run.max_duration"),
        ('[deploy]\nhealth_timeout = "2 min"\n', "deploy.health_timeout"),
        ('[auth]\nttl = "1 hour"\n', "auth.ttl"),
        ("[watchdog]\ngrace = -1\n", "watchdog.grace"),
        ("[watchdog]\nsilence_timeout = nan\n", "watchdog.silence_timeout"),
        (SUITE_P1 + 'test_timeout = "1 min"\n', "suite[0] (p1).test_timeout"),
        ('[[sink]]\nkind = "jsonl"\nevents = "all"\n', "sink[0] (jsonl).events"),
    ],
)
def test_bad_durations_everywhere(tmp_path: Path, text: str, key: str) -> None:
    message = config_error(tmp_path, text)
    assert key in message and "duration" in message


@pytest.mark.parametrize("key", ["test_timeout", "silence_timeout"])
def test_watchdog_timeouts_must_be_positive(tmp_path: Path, key: str) -> None:
    message = config_error(tmp_path, f'[watchdog]\n{key} = "0s"\n')
    assert f"watchdog.{key}" in message and "longer than 0s" in message


@pytest.mark.parametrize(
    ("seconds", "text"), [(4.2, "4.2s"), (59.0, "59.0s"), (90, "1m30s"), (3720, "1h02m")]
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


# --------------------------------------------------------------------------- run


@pytest.mark.parametrize(
    ("value", "between", "interval"),
    [
        ("immediate", "immediate", 0.0),
        ("wait-for-change", "wait-for-change", 0.0),
        ("manual", "manual", 0.0),
        ("10m", "interval", 600.0),
        ("1h30m", "interval", 5400.0),
        ("30s", "interval", 30.0),
    ],
)
def test_between(tmp_path: Path, value: str, between: str, interval: float) -> None:
    cfg = load(tmp_path, f'[run]\nbetween = "{value}"\n')
    assert cfg.run.between == between
    assert cfg.run.between_interval == interval


@pytest.mark.parametrize("value", ["sometimes", "wait_for_change", "10 minutes"])
def test_bad_between(tmp_path: Path, value: str) -> None:
    message = config_error(tmp_path, f'[run]\nbetween = "{value}"\n')
    assert "run.between" in message
    assert '"10m"' in message and "wait-for-change" in message


def test_until_target_needs_target(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[run]\nuntil = "target"\n')
    assert "run.target" in message and 'until = "target"' in message
    message = config_error(tmp_path, '[run]\nuntil = "target"\ntarget = 0\n')
    assert "run.target" in message


def test_until_target_with_target(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[run]\nuntil = "target"\ntarget = 800\n')
    assert (cfg.run.until, cfg.run.target) == ("target", 800)


def test_max_iterations_at_least_one(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[run]\nmax_iterations = 0\n")
    assert "run.max_iterations" in message and "at least 1" in message


# --------------------------------------------------------------------------- deploy


def test_plugin_deploy_backend_needs_no_command(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[deploy]\nbackend = "k8s"\nwhen = "first"\ntimeout = "15m"\n')
    assert (cfg.deploy.backend, cfg.deploy.when) == ("k8s", "first")
    assert dict(cfg.deploy.options) == {"timeout": "15m"}  # the backend's to parse


# --------------------------------------------------------------------------- phases and gates


def phase(suites: str = '["p1"]', extra: str = "", name: str = "P1") -> str:
    return f'[[phase]]\nname = "{name}"\nsuites = {suites}\n{extra}'


@pytest.mark.parametrize(
    ("gate", "kind", "ratio"),
    [
        ('"all-pass"', "all-pass", 1.0),
        ('"none"', "none", 1.0),
        ("0.95", "ratio", 0.95),
        ("1", "ratio", 1.0),
        ('"0.8"', "ratio", 0.8),
        ('"95%"', "ratio", 0.95),
    ],
)
def test_gates(tmp_path: Path, gate: str, kind: str, ratio: float) -> None:
    cfg = load(tmp_path, SUITE_P1 + phase(extra=f"gate = {gate}\n"))
    assert cfg.phases[0].gate == kind
    assert cfg.phases[0].gate_ratio == pytest.approx(ratio)


@pytest.mark.parametrize("gate", ['"mostly"', "0", "1.5", "-0.5", "true", '"150%"', '"all_pass"'])
def test_bad_gate(tmp_path: Path, gate: str) -> None:
    message = config_error(tmp_path, SUITE_P1 + phase(extra=f"gate = {gate}\n"))
    assert "phase[0].gate" in message
    assert "is not a gate" in message and '"all-pass"' in message and "0.95" in message


def test_phase_names_unknown_suite_did_you_mean(tmp_path: Path) -> None:
    text = '[[suite]]\nname = "smoke-tests"\n' + phase(suites='["smoke-test"]', name="Smoke")
    message = config_error(tmp_path, text)
    assert "phase[0] (Smoke).suites" in message
    assert "no [[suite]] named 'smoke-test'" in message
    assert "did you mean 'smoke-tests'" in message


def test_phase_names_unknown_suite_lists_suites(tmp_path: Path) -> None:
    message = config_error(tmp_path, SUITE_P1 + phase(suites='["zzz"]'))
    assert "no [[suite]] named 'zzz'" in message
    assert "suites: p1" in message


def test_phase_tag_with_no_suite(tmp_path: Path) -> None:
    message = config_error(tmp_path, SUITE_P1 + phase(suites='["tag:nightly"]'))
    assert "phase[0] (P1).suites" in message
    assert "no suite has the tag 'nightly'" in message


def test_phase_may_come_before_its_suites(tmp_path: Path) -> None:
    cfg = load(tmp_path, phase() + SUITE_P1)
    assert cfg.phases[0].suites == ("p1",)


@pytest.mark.parametrize("suites", ["[]", None])
def test_phase_with_no_suites(tmp_path: Path, suites: str | None) -> None:
    text = '[[phase]]\nname = "P1"\n' + (f"suites = {suites}\n" if suites else "")
    message = config_error(tmp_path, SUITE_P1 + text)
    assert "phase[0] (P1).suites" in message and "at least one suite" in message


def test_phase_needs_name(tmp_path: Path) -> None:
    message = config_error(tmp_path, SUITE_P1 + '[[phase]]\nsuites = ["p1"]\n')
    assert "phase[0].name" in message


def test_duplicate_phase_names(tmp_path: Path) -> None:
    message = config_error(tmp_path, SUITE_P1 + phase() + phase())
    assert "phase[1].name" in message and "'P1' is used twice" in message


def test_select_phases(tmp_path: Path) -> None:
    text = SUITE_P1 + phase(name="P1 critical") + phase(name="P2") + phase(name="P3")
    cfg = load(tmp_path, text)
    assert select_phases(cfg, []) == cfg.phases
    assert [p.name for p in select_phases(cfg, ["P3", "P1 critical"])] == ["P1 critical", "P3"]
    with pytest.raises(ConfigError) as info:
        select_phases(cfg, ["P1 critcal"])
    message = str(info.value)
    assert "--phase P1 critcal" in message and str(cfg.path) in message
    assert "did you mean 'P1 critical'" in message
    assert_one_line(message)
    with pytest.raises(ConfigError) as info:
        select_phases(cfg, ["zzz"])
    assert "phases: P1 critical, P2, P3" in str(info.value)


# --------------------------------------------------------------------------- suites


def test_duplicate_suite_names(tmp_path: Path) -> None:
    message = config_error(tmp_path, SUITE_P1 + SUITE_P1)
    assert "suite[1].name" in message and "'p1' is used twice" in message


def test_suite_needs_name(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[[suite]]\nargs = ["tests"]\n')
    assert "suite[0].name" in message and "needs a name" in message


def test_suite_workers_at_least_one(tmp_path: Path) -> None:
    message = config_error(tmp_path, SUITE_P1 + "workers = 0\n")
    assert "suite[0] (p1).workers" in message and "at least 1" in message


def test_suite_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, '[[suite]]\nname = "x"\n')
    suite = cfg.suites[0]
    assert suite.kind == "pytest"
    assert suite.args == () and suite.cwd == "." and suite.python == ""
    assert suite.workers == 1 and suite.test_timeout is None and suite.tags == ()


# --------------------------------------------------------------------------- sinks


def test_sink_needs_a_kind(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[[sink]]\npath = "x.jsonl"\n')
    assert "sink[0].kind" in message and "netra-supervisor plugins" in message


# --------------------------------------------------------------------------- invalid TOML and one-line messages


@pytest.mark.parametrize(
    "text",
    [
        "[run\ntarget = 1\n",
        '[run]\ntarget = "unterminated\n',
        "[run]\ntarget = 1\ntarget = 2\n",
        "[run]\nwatch = [\n",
        "this is not toml\n",
        'x = """\n',
    ],
)
def test_invalid_toml(tmp_path: Path, text: str) -> None:
    message = config_error(tmp_path, text)
    assert "not valid TOML" in message


def test_a_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "netra-supervisor.toml").write_bytes(b"[run]\ntarget = 1 # caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_config(None, tmp_path)
    message = str(info.value)
    assert "not valid TOML" in message and "line 2: byte 0xe9 is not UTF-8" in message
    assert_one_line(message)


def test_invalid_toml_in_explicit_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[[suite\n", "bad.toml")
    with pytest.raises(ConfigError) as info:
        load_config("bad.toml", tmp_path)
    assert str(path) in str(info.value) and "not valid TOML" in str(info.value)
    assert_one_line(str(info.value))


def test_names_with_line_breaks_stay_on_one_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[[phase]]\nname = "P1\\nline two"\nsuites = []\n')
    assert "P1\\nline two" in message
    message = config_error(tmp_path, '[run]\n"odd\\r\\nkey" = 1\n')
    assert "unknown key" in message


def test_parse_config_uses_the_given_path(tmp_path: Path) -> None:
    path = tmp_path / "virtual.toml"
    with pytest.raises(ConfigError) as info:
        parse_config({"run": {"targett": 1}}, path)
    message = str(info.value)
    assert message.startswith(f"{path}: run.targett: unknown key")
    assert "did you mean 'target'" in message


def test_between_accepts_a_number_of_seconds(tmp_path: Path) -> None:
    cfg = load(tmp_path, "[run]\nbetween = 600\n")
    assert (cfg.run.between, cfg.run.between_interval) == ("interval", 600.0)
    message = config_error(tmp_path, "[run]\nbetween = true\n")
    assert "run.between" in message and "expected a string" in message
