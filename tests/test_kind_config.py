"""Kinds own their config: suite kinds, deploy backends and sink kinds declare their
keys, and the host checks them before anything runs, built-ins and teams' alike.

Real ``netra-supervisor`` subprocesses on configs in ``tmp_path``. "Nothing ran" is
checked by what a run would leave: the history database, a marker the suite's test
module writes when pytest imports it, a file the deploy command would touch.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from cli_helpers import query, run_cli, write

import supervisor.config
import supervisor.config_values
from supervisor.core.kinds import Key, SuiteKind
from supervisor.plugins import PluginHost
from supervisor.plugins.kind_config import declaration_problem

MARKED_TEST = """
    import pathlib
    pathlib.Path(__file__).with_name("pytest-started.txt").write_text("imported")

    def test_ok():
        pass
"""
SUITE = '[[suite]]\nname = "p"\nargs = ["test_marked.py", "-p", "no:cacheprovider"]\n'
WS = '[[suite]]\nname = "ws"\nkind = "websocket-events"\n'
DEPLOYS = 'command = ["sh", "-c", "touch deployed.txt"]\n'


def project(tmp_path: Path, toml: str) -> Path:
    write(tmp_path / "test_marked.py", MARKED_TEST)
    write(tmp_path / "netra-supervisor.toml", toml)
    return tmp_path


def nothing_ran(root: Path) -> bool:
    return not any(
        (root / name).exists()
        for name in (".netra/history.db", "pytest-started.txt", "deployed.txt")
    )


def config_error(
    root: Path, args: tuple[str, ...] = ("run", "--headless", "--once"), strict: str = "1"
) -> str:
    """The one line a config error prints (exit 2), after checking nothing ran."""
    proc = run_cli(list(args), root, env={"NETRA_STRICT_PLUGINS": strict})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"netra-supervisor: {root / 'netra-supervisor.toml'}: "), lines
    assert nothing_ran(root)
    return lines[0]


# --------------------------------------------------------------------------- built-ins

BUILTIN_CASES = {
    # pytest: its keys are the ones every suite has; a typo is still the kind's to name
    "pytest-typo": (SUITE + "worker = 2\n", "suite[0] (p).worker: unknown key for kind 'pytest'", "did you mean 'workers'?"),
    "pytest-type": (SUITE + 'workers = "2"\n', "suite[0] (p).workers: expected an integer", ""),
    "ws-typo": (SUITE + WS + 'url = "ws://127.0.0.1:9/ws"\nexpect = ["a"]\ntiemout = "1s"\n', "suite[1] (ws).tiemout: unknown key for kind 'websocket-events'", "did you mean 'timeout'?"),
    "ws-type": (SUITE + WS + 'url = "ws://127.0.0.1:9/ws"\nexpect = ["a"]\ntimeout = "soon"\n', "suite[1] (ws).timeout: 'soon' is not a duration", '"90s"'),
    "ws-list": (SUITE + WS + 'url = "ws://127.0.0.1:9/ws"\nexpect = "a"\n', "suite[1] (ws).expect: expected a list of strings", 'write ["a"]'),
    "ws-missing": (SUITE + WS + 'expect = ["a"]\n', "suite[1] (ws).url: required by kind 'websocket-events'", 'e.g. url = "ws://'),
    "ws-empty": (SUITE + WS + 'url = "ws://127.0.0.1:9/ws"\nexpect = []\n', "suite[1] (ws).expect: must not be empty", 'e.g. expect = ["agent_started"]'),
    "ws-validate": (SUITE + WS + 'url = "http://127.0.0.1:9/ws"\nexpect = ["a"]\n', "suite[1] (ws).url: 'http://127.0.0.1:9/ws' is not a WebSocket URL", ""),
    "command-typo": (SUITE + '[deploy]\nbackend = "command"\n' + DEPLOYS + 'timout = "1m"\n', "deploy.timout: unknown key for backend 'command'", "did you mean 'timeout'?"),
    "command-type": (SUITE + '[deploy]\nbackend = "command"\ncommand = "./deploy.sh"\n', "deploy.command: expected a list of strings", 'write ["./deploy.sh"]'),
    "command-missing": (SUITE + '[deploy]\nbackend = "command"\n', "deploy.command: required by backend 'command'", "e.g. command = ["),
    "local-typo": (SUITE + '[deploy]\nbackend = "local"\n' + DEPLOYS + 'evn = { A = "1" }\n', "deploy.evn: unknown key for backend 'local'", "did you mean 'env'?"),
    "local-type": (SUITE + '[deploy]\nbackend = "local"\n' + DEPLOYS + 'env = "A=1"\n', "deploy.env: expected a table of strings", ""),
    "local-missing": (SUITE + '[deploy]\nbackend = "local"\ncwd = "."\n', "deploy.command: required by backend 'local'", ""),
    "local-no-timeout": (SUITE + '[deploy]\nbackend = "local"\n' + DEPLOYS + 'timeout = "1m"\n', "deploy.timeout: unknown key for backend 'local'", ""),
    "none-takes-no-keys": (SUITE + '[deploy]\nbackend = "none"\n' + DEPLOYS, "deploy.command: unknown key for backend 'none'", "known keys: backend,"),
    "jsonl-typo": (SUITE + '[[sink]]\nkind = "jsonl"\npath = "e.jsonl"\npaht = "x"\n', "sink[0] (jsonl).paht: unknown key for sink kind 'jsonl'", "did you mean 'path'?"),
    "jsonl-type": (SUITE + '[[sink]]\nkind = "jsonl"\npath = "e.jsonl"\nmax_bytes = "big"\n', "sink[0] (jsonl).max_bytes: expected an integer", ""),
    "jsonl-missing": (SUITE + '[[sink]]\nkind = "jsonl"\n', "sink[0] (jsonl).path: required by sink kind 'jsonl'", 'e.g. path = ".netra/events.jsonl"'),
    "webhook-typo": (SUITE + '[[sink]]\nkind = "jsonl"\npath = "e.jsonl"\n[[sink]]\nkind = "webhook"\nurl_evn = "X"\n', "sink[1] (webhook).url_evn: unknown key for sink kind 'webhook'", "did you mean 'url_env'?"),
    "webhook-type": (SUITE + '[[sink]]\nkind = "webhook"\nurl_env = "X"\ntimeout = "soon"\n', "sink[0] (webhook).timeout: 'soon' is not a duration", ""),
    "webhook-missing": (SUITE + '[[sink]]\nkind = "webhook"\n', "sink[0] (webhook).url_env: required by sink kind 'webhook'", 'e.g. url_env = "NETRA_WEBHOOK_URL"'),
}  # fmt: skip


@pytest.mark.parametrize(("toml", "where", "hint"), BUILTIN_CASES.values(), ids=BUILTIN_CASES)
def test_builtin_kinds_check_their_own_keys_before_anything_runs(tmp_path, toml, where, hint):
    line = config_error(project(tmp_path, toml))
    assert where in line and hint in line, line


def test_builtin_kinds_get_their_keys_converted(tmp_path, monkeypatch):
    """What a run hands the built-ins: durations in seconds, lists as tuples, defaults."""
    monkeypatch.setenv("X", "https://hooks.example.com/x")
    root = project(
        tmp_path,
        SUITE
        + WS
        + 'url = "ws://127.0.0.1:9/ws"\nexpect = ["a", "b"]\ntimeout = "1m30s"\n'
        + '[deploy]\nbackend = "command"\ncommand = ["./deploy.sh"]\ntimeout = "2m"\n'
        + '[[sink]]\nkind = "jsonl"\npath = "e.jsonl"\n'
        + '[[sink]]\nkind = "webhook"\nurl_env = "X"\n',
    )
    config = supervisor.config.load_config(None, root)
    host = PluginHost(config, strict=True).load()
    config = host.validate_sinks(host.validate_suites(host.validate_deploy(config)))
    ws = config.suite("ws").options
    assert dict(ws) == {"url": "ws://127.0.0.1:9/ws", "send": None, "expect": ("a", "b"), "timeout": 90.0}  # fmt: skip
    assert dict(config.deploy.options) == {
        "command": ("./deploy.sh",),
        "cwd": ".",
        "env": {},
        "timeout": 120.0,
    }
    assert [dict(s.options) for s in config.sinks] == [
        {"path": "e.jsonl", "max_bytes": 50_000_000},
        {"url_env": "X", "timeout": 10.0},
    ]


def test_config_py_names_no_kind(tmp_path):
    """config.py (and the value checks it uses) know the keys every table has and no
    kind, backend or sink kind: those declare their own keys through the plugin API."""
    host = PluginHost(None, strict=True).load()
    names = {*host.suite_kinds(), *host.deploy_backends(), *host.sink_kinds()}
    assert {"pytest", "websocket-events", "command", "local", "jsonl", "webhook"} <= names
    for module in (supervisor.config, supervisor.config_values):
        source = Path(module.__file__).read_text()
        for word in ("websocket", "jsonl", "webhook", "pytest"):
            assert word not in source.lower(), f"{module.__name__} mentions {word!r}"
        strings = {
            node.value
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not strings & names, f"{module.__name__} names {strings & names}"


# --------------------------------------------------------------------------- a team's kinds

TYPED_PLUGIN = """
    import json

    from supervisor.config import OptionError
    from supervisor.core.events import SuiteFinished, TestResult, TestsCollected, TestStarted
    from supervisor.core.kinds import Key, SuiteKind
    from supervisor.hookspecs import hookimpl


    class Probe(SuiteKind):
        name = "probe"
        keys = {
            "paths": Key("strlist", required=True, example='paths = ["/health"]'),
            "wait": Key("duration", default="5s"),
            "tries": "int",
            "headers": Key("strmap", default={}),
            "verbose": Key("bool", default=False),
        }

        def validate(self, suite, config):
            if suite.options["wait"] > 60:
                raise OptionError("wait", "at most 60s: a probe is quick")

        def run(self, suite, ctx):
            nodeid = f"{suite.name}::options"
            ctx.report(TestsCollected, suite.name, nodeids=(nodeid,))
            ctx.report(TestStarted, suite.name, nodeid=nodeid)
            seen = json.dumps(dict(suite.options), sort_keys=True)
            ctx.report(TestResult, suite.name, nodeid=nodeid, outcome="passed", message=seen)
            ctx.report(SuiteFinished, suite.name, status="ok")


    @hookimpl
    def netra_register_suite_kinds():
        return [Probe()]
"""
PROBE = '[plugins]\ndirs = ["team"]\n[[suite]]\nname = "api"\nkind = "probe"\n'


def messages(root: Path) -> dict[str, object]:
    rows = query(
        root / ".netra/history.db",
        "select t.nodeid, r.message from results r join tests t on t.id = r.test_id",
    )
    return {nodeid: json.loads(message) for nodeid, message in rows}


def test_a_team_kind_gets_its_typed_keys_parsed(tmp_path):
    write(tmp_path / "team" / "probe.py", TYPED_PLUGIN)
    root = project(tmp_path, PROBE + 'paths = ["/a", "/b"]\nwait = "1m"\nheaders = { X-Try = 2 }\n')
    proc = run_cli(["run", "--headless", "--once"], root, env={"NETRA_STRICT_PLUGINS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert messages(root) == {
        "api::options": {
            "paths": ["/a", "/b"],
            "wait": 60.0,  # a duration: seconds
            "tries": None,  # declared, absent, no default
            "headers": {"X-Try": "2"},  # a table of strings
            "verbose": False,  # its default
        }
    }


@pytest.mark.parametrize(
    ("body", "where", "hint"),
    [
        ('paths = ["/a"]\nwiat = "1s"\n', ".wiat: unknown key for kind 'probe'", "did you mean 'wait'?"),
        ('paths = ["/a"]\nwait = "soon"\n', ".wait: 'soon' is not a duration", ""),
        ('paths = ["/a"]\nverbose = "yes"\n', ".verbose: expected true or false, got a string", ""),
        ('paths = ["/a"]\ntries = -1\n', ".tries: must not be negative", ""),
        ("wait = 1\n", ".paths: required by kind 'probe'", 'e.g. paths = ["/health"]'),
        ('paths = ["/a"]\nwait = "2m"\n', ".wait: at most 60s: a probe is quick", ""),
    ],
)  # fmt: skip
def test_a_team_kind_is_checked_like_the_builtins(tmp_path, body, where, hint):
    write(tmp_path / "team" / "probe.py", TYPED_PLUGIN)
    line = config_error(project(tmp_path, SUITE + PROBE + body))
    assert f"suite[1] (api){where}" in line and hint in line, line


OLD_STYLE_PLUGIN = """
    import json

    from supervisor.config import ConfigError, SuiteConfig
    from supervisor.core.events import SuiteFinished, TestResult, TestStarted
    from supervisor.core.kinds import SuiteKind


    class Old(SuiteKind):
        name = "old"
        extra_keys = ("endpoint", "tries")

        def validate(self, suite, config):
            if not suite.extra.get("endpoint"):
                raise ConfigError(f"{config.path}: suite ({suite.name}).endpoint: set it")

        def run(self, suite, ctx):
            nodeid = f"{suite.name}::extra"
            ctx.report(TestStarted, suite.name, nodeid=nodeid)
            seen = json.dumps(dict(suite.extra), sort_keys=True)
            ctx.report(TestResult, suite.name, nodeid=nodeid, outcome="passed", message=seen)
            ctx.report(SuiteFinished, suite.name, status="ok")


    def netra_register_suite_kinds():
        return [Old()]


    def netra_register_suites(config):
        return [SuiteConfig(name="coded", kind="old", extra={"endpoint": "/x"})]
"""


def test_an_old_style_extra_keys_plugin_still_loads_and_runs(tmp_path):
    """``extra_keys`` (names, any value), ``suite.extra`` and ``SuiteConfig(extra=...)``
    from before kinds declared typed keys keep working."""
    write(tmp_path / "team" / "old.py", OLD_STYLE_PLUGIN)
    toml = '[plugins]\ndirs = ["team"]\n[[suite]]\nname = "file"\nkind = "old"\n'
    root = project(tmp_path, toml + 'endpoint = "/health"\ntries = "3"\n')
    proc = run_cli(["run", "--headless", "--once"], root, env={"NETRA_STRICT_PLUGINS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert messages(root) == {
        "file::extra": {"endpoint": "/health", "tries": "3"},  # as written: type "any"
        "coded::extra": {"endpoint": "/x", "tries": None},
    }
    (root / ".netra/history.db").unlink()
    write(root / "netra-supervisor.toml", toml + 'endpont = "/health"\n')
    line = config_error(root)
    assert "suite[0] (file).endpont: unknown key for kind 'old'" in line
    assert "did you mean 'endpoint'?" in line


def test_a_bad_declaration_quarantines_its_plugin_at_load(tmp_path):
    write(
        tmp_path / "team" / "bad.py",
        """
        from supervisor.core.kinds import SuiteKind

        class Bad(SuiteKind):
            name = "bad"
            keys = {"wait": "seconds"}

        def netra_register_suite_kinds():
            return [Bad()]
        """,
    )
    root = project(tmp_path, '[plugins]\ndirs = ["team"]\n[[suite]]\nname = "b"\nkind = "bad"\n')
    # wide enough for the whole status on the plugin's line
    listing = run_cli(["plugins"], root, env={"COLUMNS": "200", "NETRA_STRICT_PLUGINS": ""})
    row = next(line for line in listing.stdout.splitlines() if line.startswith("bad "))
    assert "quarantined: TypeError: the suite kind 'bad' declares keys: 'wait'" in row
    assert "unknown type 'seconds'" in row
    line = config_error(root, ("run", "--headless"), strict="0")
    assert "suite[0] (b).kind: no suite kind 'bad' is loaded" in line, line
    assert "1 plugin(s) failed to load, see `netra-supervisor plugins`" in line


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"wait": "seconds"}, "keys: 'wait' has the unknown type 'seconds' (types: str, int,"),
        ({"cwd": "str"}, "keys: 'cwd' is a key every [suite] table has; pick another name"),
        ({"wait": Key("duration", default="soon")}, "default: keys.wait: 'soon' is not a duration;"),
        ({"wait": 5}, "keys: 'wait': expected a type name or a Key, got 5"),
        ({"wait": Key("duration", default="5s"), "paths": "strlist"}, ""),
    ],
)  # fmt: skip
def test_declaration_problems(keys, problem):
    kind = type("K", (SuiteKind,), {"name": "k", "keys": keys})()
    found = declaration_problem(kind)
    assert found.startswith(problem) and bool(found) == bool(problem), found


# --------------------------------------------------------------------------- pytest: cwd, python


NOT_RUNNABLE = {
    "cwd-missing": ('cwd = "nope"\n', ".cwd: 'nope' is not a folder (looked for "),
    "cwd-a-file": ('cwd = "fake-python"\n', ".cwd: 'fake-python' is not a folder"),
    "python-missing": ('python = "./nope/bin/python"\n', ".python: './nope/bin/python' does not exist"),
    "python-not-on-path": ('python = "netra-no-such-python"\n', ".python: 'netra-no-such-python' is not found on PATH"),
    "python-not-executable": ('python = "./fake-python"\n', ".python: './fake-python' is not an executable file"),
}  # fmt: skip


@pytest.mark.parametrize(("body", "where"), NOT_RUNNABLE.values(), ids=NOT_RUNNABLE)
def test_a_suite_that_cannot_start_is_a_config_error(tmp_path, body, where):
    """``run`` and ``suites`` both refuse it (exit 2) before anything runs."""
    root = project(tmp_path, SUITE + body)
    write(root / "fake-python", "#!/bin/sh\nexit 0\n", mode=0o644)
    for command in (("run", "--headless", "--once"), ("suites",)):
        line = config_error(root, command)
        assert f"suite[0] (p){where}" in line, line


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('cwd = "nope"\n', "working directory not found"),
        ('python = "./nope/bin/python"\n', "interpreter not found: ./nope/bin/python"),
        ('python = "./fake-python"\n', "Permission denied"),
    ],
)
def test_with_a_deploy_first_it_stays_a_run_time_error_result(tmp_path, body, message):
    """A deploy may create the folder or the interpreter: the run goes on and the
    suite's start-up problem is recorded as its result, as before."""
    root = project(tmp_path, '[deploy]\nbackend = "command"\n' + DEPLOYS + SUITE + body)
    write(root / "fake-python", "#!/bin/sh\nexit 0\n", mode=0o644)
    proc = run_cli(["run", "--headless", "--once"], root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert (root / "deployed.txt").exists()
    ((nodeid, outcome, text),) = query(
        root / ".netra/history.db",
        "select t.nodeid, r.outcome, r.message from results r join tests t on t.id = r.test_id",
    )
    assert (nodeid, outcome) == ("p::(startup)", "error") and message in text, text


def test_suites_shows_nothing_wrong_for_a_healthy_config(tmp_path):
    root = project(
        tmp_path,
        SUITE
        + 'cwd = "."\npython = "./py"\n'
        + WS
        + 'url = "ws://127.0.0.1:9/ws"\nexpect = ["a", "b"]\n'
        + '[[sink]]\nkind = "jsonl"\npath = "e.jsonl"\n',
    )
    write(root / "py", "#!/bin/sh\nexit 0\n", mode=0o755)
    proc = run_cli(["suites"], root, env={"NETRA_STRICT_PLUGINS": "1"})
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    assert [line.split() for line in proc.stdout.splitlines()] == [
        ["suite", "kind", "tags", "phases"],
        ["p", "pytest", "-", "all"],
        ["ws", "websocket-events", "-", "all"],
    ]
    assert all(line == line.rstrip() for line in proc.stdout.splitlines())
    assert nothing_ran(root)
