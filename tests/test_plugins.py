"""The plugin host: discovery order, overrides, quarantine, strict mode, every hook.

Plugins here are real modules on disk: ``[plugins] dirs`` folders under tmp_path,
``[plugins] load`` modules on a prepended sys.path, and entry points whose ``load()``
imports such a module. Only the "built-in" entry point's module is put straight into
``sys.modules`` (under our own ``plugins`` package, which tests must not write into).
The ``test_hook_<name>`` tests call every hook through the host with a recording
plugin; ``tests/test_hookspecs_meta.py`` checks that each hook has one.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor import hookspecs
from supervisor.config import ConfigError, load_config
from supervisor.core.events import OUTCOMES, PluginFailed, TestHung, TestResult, count_outcomes
from supervisor.core.kinds import DeployBackend, LogSink, SuiteKind
from supervisor.plugins import LIFECYCLE_HOOKS, PluginError, PluginHost, plugins_table
from supervisor.tables import format_table

# --------------------------------------------------------------------------- helpers


@dataclass
class FakeDist:
    name: str
    version: str


@dataclass
class FakeEntryPoint:
    """What the host reads from an importlib.metadata entry point."""

    name: str
    value: str
    dist: FakeDist | None = None
    group: str = "netra_supervisor"

    def load(self):
        module, _, attr = self.value.partition(":")
        obj = importlib.import_module(module)
        return getattr(obj, attr) if attr else obj


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv("NETRA_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("NETRA_TRACE_HOOKS", raising=False)


def write(folder: Path, name: str, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source))
    return path


def make_config(tmp_path: Path, body: str = "", **plugins: list[str]):
    lines = [body]
    if plugins:
        lines.append("[plugins]")
        lines += [f"{key} = {value!r}".replace("'", '"') for key, value in plugins.items()]
    text = "\n".join(lines)
    path = tmp_path / "netra-supervisor.toml"
    path.write_text(text)
    return load_config(str(path))


class Host:
    """A PluginHost with no installed entry points and its errors collected."""

    def __init__(self, config=None, entry_points=(), **kw):
        self.errors: list[PluginFailed] = []
        kw.setdefault("strict", False)
        self.host = PluginHost(config, on_error=self.errors.append, entry_points=entry_points, **kw)
        self.host.load()

    def __getattr__(self, name):
        return getattr(self.host, name)

    def row(self, name: str) -> dict:
        rows = [r for r in self.host.describe() if r["name"] == name]
        assert len(rows) == 1, rows
        return rows[0]

    def module(self, name: str):
        return next(r.plugin for r in self.host.records() if r.name == name and r.ok)


KIND_PLUGIN = """
    from supervisor.core.kinds import SuiteKind
    from supervisor.hookspecs import hookimpl

    class Kind(SuiteKind):
        name = {kind!r}
        extra_keys = ("endpoint", "tries")
        origin = {origin!r}

    @hookimpl
    def netra_register_suite_kinds():
        return [Kind()]
"""


@pytest.fixture
def builtin_module(monkeypatch):
    """A module of our own ``netra_supervisor_plugins`` package, registering the "pytest" suite kind."""

    class BuiltinKind(SuiteKind):
        name = "pytest"
        origin = "builtin"

    class NoDeploy(DeployBackend):
        name = "command"
        origin = "builtin"

    module = types.ModuleType("netra_supervisor_plugins.fake_builtin")
    module.netra_register_suite_kinds = hookspecs.hookimpl(lambda: [BuiltinKind()])
    module.netra_register_deploy_backends = hookspecs.hookimpl(lambda: [NoDeploy()])
    monkeypatch.setitem(sys.modules, "netra_supervisor_plugins.fake_builtin", module)
    return FakeEntryPoint("fake_builtin", "netra_supervisor_plugins.fake_builtin")


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for importable (``load`` / entry point) plugin modules."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if name.startswith("netra_t_"):
            del sys.modules[name]


# --------------------------------------------------------------------------- discovery


def test_dir_plugin_is_loaded_by_path_under_a_unique_module_name(tmp_path):
    write(tmp_path / "plugins", "probe.py", KIND_PLUGIN.format(kind="probe", origin="dir"))
    write(tmp_path / "plugins", "_helper.py", "raise RuntimeError('helpers are not plugins')\n")
    h = Host(make_config(tmp_path, dirs=["plugins"]))
    row = h.row("probe")
    assert row["source"] == "dir plugins"
    assert row["status"] == "ok"
    assert row["hooks"] == ["netra_register_suite_kinds"]
    assert row["provides"] == ["suite kind probe"]
    assert [r["name"] for r in h.describe()] == ["probe"]
    module = h.module("probe")
    assert module.__name__.startswith("netra_local_plugins.")
    assert module.__name__.endswith(".probe")
    assert sys.modules[module.__name__] is module
    assert h.suite_kinds()["probe"].origin == "dir"
    assert h.errors == []


def test_same_stem_in_two_dirs_gets_two_modules_and_the_later_wins(tmp_path):
    write(tmp_path / "a", "checks.py", KIND_PLUGIN.format(kind="probe", origin="a"))
    write(tmp_path / "b", "checks.py", KIND_PLUGIN.format(kind="probe", origin="b"))
    h = Host(make_config(tmp_path, dirs=["a", "b"]))
    records = h.records()
    assert [(r.name, r.source) for r in records] == [("checks", "dir a"), ("checks", "dir b")]
    assert records[0].plugin.__name__ != records[1].plugin.__name__
    assert records[0].status == "replaced by dir b"
    assert records[1].status == "ok"
    assert h.suite_kinds()["probe"].origin == "b"


def test_missing_plugin_dir_is_a_config_error(tmp_path):
    config = make_config(tmp_path, dirs=["nope"])
    with pytest.raises(ConfigError, match=r"netra-supervisor.toml: plugins.dirs: 'nope' is not"):
        Host(config)


def test_load_imports_modules_by_name(tmp_path, site):
    source = textwrap.dedent(KIND_PLUGIN.format(kind="probe", origin="load"))
    write(site, "netra_t_team.py", '__version__ = "1.2.3"\n' + source)
    h = Host(make_config(tmp_path, load=["netra_t_team"]))
    row = h.row("netra_t_team")
    assert (row["source"], row["version"], row["status"]) == ("load", "1.2.3", "ok")
    assert h.suite_kinds()["probe"].origin == "load"


def test_load_of_a_missing_module_is_quarantined_with_a_hint(tmp_path):
    h = Host(make_config(tmp_path, load=["netra_t_not_installed"]))
    status = h.row("netra_t_not_installed")["status"]
    assert status.startswith("quarantined: ModuleNotFoundError: No module named")
    assert "[plugins] dirs" in status
    assert [(e.plugin, e.hook) for e in h.errors] == [("netra_t_not_installed", "import")]


def test_installed_entry_point_source_and_version(tmp_path, site, builtin_module):
    write(site, "netra_t_ep.py", KIND_PLUGIN.format(kind="probe", origin="ep"))
    ep = FakeEntryPoint("teamplug", "netra_t_ep", FakeDist("netra-team-plugin", "0.4.0"))
    h = Host(None, entry_points=[ep, builtin_module])
    assert [r["name"] for r in h.describe()] == ["fake_builtin", "teamplug"]  # builtins first
    assert h.row("fake_builtin")["source"] == "builtin"
    row = h.row("teamplug")
    assert (row["source"], row["version"]) == ("entry point netra-team-plugin", "0.4.0")


def test_real_entry_points_include_the_builtin_pytest_plugin():
    host = PluginHost(None, on_error=lambda e: None, strict=False).load()
    rows = {r["name"]: r for r in host.describe()}
    assert rows["builtin_pytest"]["source"] == "builtin"  # ok or quarantined while unwritten


def test_a_plugin_object_may_use_unmarked_netra_functions(tmp_path):
    write(
        tmp_path / "p",
        "plain.py",
        """
        CALLS = []
        def netra_run_finished(run_id, status, exit_code):
            CALLS.append(status)
        def helper():
            pass
    """,
    )
    h = Host(make_config(tmp_path, dirs=["p"]))
    h.call_lifecycle("netra_run_finished", run_id=1, status="passed", exit_code=0)
    assert h.module("plain").CALLS == ["passed"]
    assert h.row("plain")["hooks"] == ["netra_run_finished"]


def test_unknown_hook_name_is_quarantined_with_did_you_mean(tmp_path):
    write(
        tmp_path / "p",
        "typo.py",
        """
        from supervisor.hookspecs import hookimpl
        @hookimpl
        def netra_run_strated(run_id, config):
            pass
    """,
    )
    write(
        tmp_path / "p",
        "future.py",
        """
        from supervisor.hookspecs import hookimpl
        @hookimpl(optionalhook=True)
        def netra_from_the_future():
            pass
    """,
    )
    h = Host(make_config(tmp_path, dirs=["p"]))
    assert "did you mean 'netra_run_started'" in h.row("typo")["status"]
    assert h.row("future")["status"] == "ok"


def test_a_hookimpl_with_an_unknown_argument_is_quarantined(tmp_path):
    write(
        tmp_path / "p",
        "badargs.py",
        """
        from supervisor.hookspecs import hookimpl
        @hookimpl
        def netra_results(batch, extra):
            pass
    """,
    )
    h = Host(make_config(tmp_path, dirs=["p"]))
    assert h.row("badargs")["status"].startswith("quarantined: PluginValidationError")
    assert h.errors[0].hook == "register"


# --------------------------------------------------------------------------- quarantine


def test_a_plugin_that_fails_to_import_is_quarantined_and_the_rest_load(tmp_path):
    write(tmp_path / "p", "a_broken.py", "import os\n\nraise RuntimeError('no config for me')\n")
    write(tmp_path / "p", "b_syntax.py", "def oops(:\n")
    write(tmp_path / "p", "c_good.py", KIND_PLUGIN.format(kind="probe", origin="good"))
    h = Host(make_config(tmp_path, dirs=["p"]))
    assert h.row("a_broken")["status"] == (
        "quarantined: RuntimeError: no config for me (a_broken.py:3)"
    )
    assert h.row("b_syntax")["status"].startswith("quarantined: SyntaxError")
    assert h.row("c_good")["status"] == "ok"
    assert [(e.plugin, e.hook) for e in h.errors] == [
        ("a_broken", "import"),
        ("b_syntax", "import"),
    ]
    assert "probe" in h.suite_kinds()
    assert not any(name.endswith(".a_broken") for name in sys.modules)


RAISING = """
    from supervisor.hookspecs import hookimpl
    CALLS = []
    @hookimpl
    def netra_results(batch):
        CALLS.append(len(batch))
        raise ValueError("cannot handle " + str(len(batch)))
"""

COUNTING = """
    from supervisor.hookspecs import hookimpl
    CALLS = []
    @hookimpl
    def netra_results(batch):
        CALLS.append(len(batch))
"""


def _batch(n: int = 2) -> list[TestResult]:
    return [
        TestResult(iteration=1, phase=1, suite="s", nodeid=f"t{i}", outcome="passed")
        for i in range(n)
    ]


def test_a_plugin_raising_in_a_hook_is_quarantined_and_others_still_run(tmp_path):
    write(tmp_path / "p", "a_bad.py", RAISING)
    write(tmp_path / "p", "b_good.py", COUNTING)
    h = Host(make_config(tmp_path, dirs=["p"]))
    bad, good = h.module("a_bad"), h.module("b_good")
    h.call_lifecycle("netra_results", batch=_batch(2))
    h.call_lifecycle("netra_results", batch=_batch(3))
    assert bad.CALLS == [2]  # never called again
    assert good.CALLS == [2, 3]
    assert len(h.errors) == 1
    err = h.errors[0]
    assert (err.plugin, err.hook) == ("a_bad", "netra_results")
    assert err.error == "ValueError: cannot handle 2 (a_bad.py:7)"
    assert h.row("a_bad")["status"] == "quarantined: ValueError: cannot handle 2 (a_bad.py:7)"
    assert h.row("a_bad")["hooks"] == ["netra_results"]  # still listed for the report
    assert not h.pm.is_registered(bad)


def test_quarantine_drops_registrations_so_the_earlier_one_returns(tmp_path, builtin_module):
    write(
        tmp_path / "p",
        "override.py",
        KIND_PLUGIN.format(kind="pytest", origin="team") + RAISING.split("CALLS = []", 1)[1],
    )
    h = Host(make_config(tmp_path, dirs=["p"]), entry_points=[builtin_module])
    assert h.suite_kinds()["pytest"].origin == "team"
    h.call_lifecycle("netra_results", batch=_batch())
    assert h.suite_kinds()["pytest"].origin == "builtin"
    assert h.provider("suite kind", "pytest") == "fake_builtin"


def test_registration_hook_raising_or_returning_junk_is_quarantined(tmp_path):
    write(
        tmp_path / "p",
        "a_raises.py",
        """
        def netra_register_deploy_backends():
            raise KeyError("token")
    """,
    )
    write(
        tmp_path / "p",
        "b_class.py",
        """
        from supervisor.core.kinds import LogSink
        class Sink(LogSink):
            name = "s3"
        def netra_register_log_sinks():
            return [Sink]
    """,
    )
    write(
        tmp_path / "p",
        "c_notalist.py",
        """
        def netra_register_suite_kinds():
            return "pytest"
    """,
    )
    h = Host(make_config(tmp_path, dirs=["p"]))
    assert h.row("a_raises")["status"].startswith("quarantined: KeyError: 'token'")
    assert "return an instance: Sink()" in h.row("b_class")["status"]
    assert "returned str, not a list" in h.row("c_notalist")["status"]
    assert h.deploy_backends() == {} and h.sink_kinds() == {} and h.suite_kinds() == {}
    assert [e.hook for e in h.errors] == [
        "netra_register_suite_kinds",
        "netra_register_deploy_backends",
        "netra_register_log_sinks",
    ]


def test_public_quarantine_for_failures_seen_by_the_loop(tmp_path):
    write(tmp_path / "p", "kinds.py", KIND_PLUGIN.format(kind="probe", origin="x"))
    h = Host(make_config(tmp_path, dirs=["p"]))
    plugin = h.provider("suite kind", "probe")
    event = h.quarantine(plugin, "run", RuntimeError("boom"))
    assert (event.plugin, event.hook, event.error) == ("kinds", "run", "RuntimeError: boom")
    assert h.errors == [event]
    assert "probe" not in h.suite_kinds()
    assert h.quarantine("kinds", "run", "again") is None  # already quarantined


def test_strict_mode_turns_a_hook_failure_into_plugin_error(tmp_path, monkeypatch):
    monkeypatch.setenv("NETRA_STRICT_PLUGINS", "1")
    write(tmp_path / "p", "a_bad.py", RAISING)
    write(tmp_path / "p", "b_good.py", COUNTING)
    h = Host(make_config(tmp_path, dirs=["p"]), strict=None)
    assert h.strict
    with pytest.raises(PluginError) as info:
        h.call_lifecycle("netra_results", batch=_batch(1))
    text = str(info.value)
    assert "\n" not in text
    assert text == (
        "plugin 'a_bad' (dir p) failed in netra_results: ValueError: cannot handle 1 "
        "(a_bad.py:7) [stopped because NETRA_STRICT_PLUGINS=1]"
    )
    assert (info.value.plugin, info.value.hook) == ("a_bad", "netra_results")
    assert len(h.errors) == 1  # still reported before stopping


def test_strict_mode_stops_on_import_failure(tmp_path, monkeypatch):
    monkeypatch.setenv("NETRA_STRICT_PLUGINS", "1")
    write(tmp_path / "p", "broken.py", "raise ImportError('needs boto3')\n")
    with pytest.raises(
        PluginError,
        match=r"plugin 'broken' \(dir p\) failed in import: "
        r"ImportError: needs boto3",
    ):
        PluginHost(make_config(tmp_path, dirs=["p"]), entry_points=[]).load()


def test_disabled_plugins_are_not_imported(tmp_path, builtin_module):
    write(tmp_path / "p", "noisy.py", "raise SystemExit('imported although disabled')\n")
    write(tmp_path / "p", "kept.py", COUNTING)
    h = Host(
        make_config(tmp_path, dirs=["p"], disable=["noisy", "fake_builtin"]),
        entry_points=[builtin_module],
    )
    assert h.row("noisy")["status"] == "disabled"
    assert h.row("fake_builtin")["status"] == "disabled"
    assert h.row("kept")["status"] == "ok"
    assert h.suite_kinds() == {}
    assert h.errors == []


def test_a_plugin_calling_sys_exit_at_import_is_quarantined(tmp_path):
    write(tmp_path / "p", "exits.py", "import sys\nsys.exit(3)\n")
    h = Host(make_config(tmp_path, dirs=["p"]))
    assert h.row("exits")["status"].startswith("quarantined: SystemExit: 3")


# --------------------------------------------------------------------------- order


def test_later_plugins_override_earlier_registrations(tmp_path, site, builtin_module):
    write(
        site,
        "netra_t_installed.py",
        """
        from supervisor.core.kinds import DeployBackend, SuiteKind
        class Kind(SuiteKind):
            name = "pytest"
            origin = "installed"
        class Deploy(DeployBackend):
            name = "command"
            origin = "installed"
        def netra_register_suite_kinds():
            return [Kind()]
        def netra_register_deploy_backends():
            return [Deploy()]
    """,
    )
    write(site, "netra_t_loaded.py", KIND_PLUGIN.format(kind="pytest", origin="load"))
    write(tmp_path / "p", "local.py", KIND_PLUGIN.format(kind="pytest", origin="dir"))
    ep = FakeEntryPoint("installed", "netra_t_installed", FakeDist("netra-installed", "1.0"))
    # entry points listed in the "wrong" order: built-ins still come first
    h = Host(
        make_config(tmp_path, load=["netra_t_loaded"], dirs=["p"]),
        entry_points=[ep, builtin_module],
    )
    assert [r["name"] for r in h.describe()] == [
        "fake_builtin",
        "installed",
        "netra_t_loaded",
        "local",
    ]
    assert h.suite_kinds()["pytest"].origin == "dir"
    assert h.deploy_backends()["command"].origin == "installed"
    (reg,) = h.registrations("netra_register_suite_kinds")
    assert reg.plugin == "local"
    assert reg.overrides == ("fake_builtin", "installed", "netra_t_loaded")
    assert h.row("local")["provides"] == ["suite kind pytest"]
    assert h.row("fake_builtin")["provides"] == []


def test_lifecycle_calls_follow_discovery_order_and_tryfirst(tmp_path):
    for stem in ("a", "b", "c"):
        opts = "(tryfirst=True)" if stem == "c" else ""
        write(
            tmp_path / "p",
            f"{stem}.py",
            f"""
            from supervisor.hookspecs import hookimpl
            import builtins
            @hookimpl{opts}
            def netra_iteration_started(run_id, iteration):
                builtins.NETRA_T_ORDER.append({stem!r})
        """,
        )
    import builtins

    builtins.NETRA_T_ORDER = []
    try:
        h = Host(make_config(tmp_path, dirs=["p"]))
        h.call_lifecycle("netra_iteration_started", run_id=1, iteration=1)
        assert builtins.NETRA_T_ORDER == ["c", "a", "b"]
    finally:
        del builtins.NETRA_T_ORDER


def test_call_lifecycle_checks_the_hook_and_its_arguments():
    h = Host(None)
    with pytest.raises(ValueError, match="not a lifecycle hook"):
        h.call_lifecycle("netra_register_suite_kinds")
    with pytest.raises(TypeError, match="netra_run_finished takes run_id, status, exit_code"):
        h.call_lifecycle("netra_run_finished", run_id=1, status="passed")


# --------------------------------------------------------------------------- validation


SUITES = """
[[suite]]
name = "api"
kind = "probe"
endpoint = "/health"

[[suite]]
name = "ui"
kind = "prob"
"""


def test_validate_suites_names_file_key_and_known_kinds(tmp_path):
    write(tmp_path / "p", "probe.py", KIND_PLUGIN.format(kind="probe", origin="x"))
    config = make_config(tmp_path, SUITES, dirs=["p"])
    h = Host(config)
    with pytest.raises(ConfigError) as info:
        h.validate_suites(config)
    assert str(info.value) == (
        f"{config.path}: suite[1] (ui).kind: no suite kind 'prob' is loaded (did you mean 'probe'?)"
    )


def test_validate_suites_unknown_kind_lists_known_and_failed_plugins(tmp_path):
    write(tmp_path / "p", "probe.py", KIND_PLUGIN.format(kind="probe", origin="x"))
    write(tmp_path / "p", "zbroken.py", "raise RuntimeError('x')\n")
    config = make_config(tmp_path, '[[suite]]\nname = "w"\nkind = "webhooks"\n', dirs=["p"])
    with pytest.raises(
        ConfigError,
        match=r"suite\[0\] \(w\)\.kind: no suite kind 'webhooks' is "
        r"loaded \(known kinds: probe\); 1 plugin\(s\) failed",
    ):
        Host(config).validate_suites(config)


def test_validate_suites_checks_extra_keys_against_the_kind(tmp_path):
    write(tmp_path / "p", "probe.py", KIND_PLUGIN.format(kind="probe", origin="x"))
    good = make_config(tmp_path, SUITES.split('[[suite]]\nname = "ui"')[0], dirs=["p"])
    Host(good).validate_suites(good)  # endpoint is declared: fine
    bad = make_config(
        tmp_path, '[[suite]]\nname = "api"\nkind = "probe"\nendpont = "/"\n', dirs=["p"]
    )
    with pytest.raises(
        ConfigError,
        match=r"suite\[0\] \(api\)\.endpont: unknown key for kind "
        r"'probe' \(did you mean 'endpoint'\?\)",
    ):
        Host(bad).validate_suites(bad)


def test_validate_suites_calls_the_kind_and_quarantines_a_crashing_one(tmp_path):
    write(
        tmp_path / "p",
        "probe.py",
        """
        from supervisor.config import ConfigError
        from supervisor.core.kinds import SuiteKind
        class Strict(SuiteKind):
            name = "strict"
            def validate(self, suite, config):
                raise ConfigError(f"{config.path}: suite ({suite.name}): no endpoint")
        class Crashy(SuiteKind):
            name = "crashy"
            def validate(self, suite, config):
                return 1 / 0
        def netra_register_suite_kinds():
            return [Strict(), Crashy()]
    """,
    )
    body = '[[suite]]\nname = "a"\nkind = "{}"\n'
    strict = make_config(tmp_path, body.format("strict"), dirs=["p"])
    with pytest.raises(ConfigError, match="no endpoint"):
        Host(strict).validate_suites(strict)
    crashy = make_config(tmp_path, body.format("crashy"), dirs=["p"])
    h = Host(crashy)
    h.validate_suites(crashy)
    assert [(e.plugin, e.hook) for e in h.errors] == [("probe", "Crashy.validate")]
    assert h.suite_kinds() == {}


def test_validate_sinks_checks_kind_and_extra_keys(tmp_path):
    write(
        tmp_path / "p",
        "s3.py",
        """
        from supervisor.core.kinds import LogSink
        class S3(LogSink):
            name = "s3"
            extra_keys = ("bucket",)
        def netra_register_log_sinks():
            return [S3()]
    """,
    )
    ok = make_config(tmp_path, '[[sink]]\nkind = "s3"\nbucket = "b"\n', dirs=["p"])
    assert dict(Host(ok).validate_sinks(ok).sinks[0].options) == {"bucket": "b"}
    bad = make_config(tmp_path, '[[sink]]\nkind = "s3"\nbukket = "b"\n', dirs=["p"])
    with pytest.raises(ConfigError, match=r"sink\[0\] \(s3\)\.bukket: .*did you mean 'bucket'"):
        Host(bad).validate_sinks(bad)
    unknown = make_config(tmp_path, '[[sink]]\nkind = "s33"\n', dirs=["p"])
    with pytest.raises(ConfigError, match=r"sink\[0\] \(s33\)\.kind: .*did you mean 's3'"):
        Host(unknown).validate_sinks(unknown)


# --------------------------------------------------------------------------- reporting


def test_describe_and_the_plugins_table(tmp_path, site, builtin_module):
    ours = importlib.metadata.version("netra-supervisor")
    write(site, "netra_t_ep2.py", COUNTING)
    write(tmp_path / "p", "broken.py", "raise RuntimeError('nope')\n")
    write(tmp_path / "p", "off.py", COUNTING)
    ep = FakeEntryPoint("team", "netra_t_ep2", FakeDist("netra-team", "2.0"))
    h = Host(make_config(tmp_path, dirs=["p"], disable=["off"]), entry_points=[builtin_module, ep])
    rows = h.describe()
    assert [{k: r[k] for k in ("name", "version", "source", "status")} for r in rows] == [
        # a module of our installed netra_supervisor_plugins package: our version
        {"name": "fake_builtin", "version": ours, "source": "builtin", "status": "ok"},
        {"name": "team", "version": "2.0", "source": "entry point netra-team", "status": "ok"},
        {
            "name": "broken",
            "version": "",
            "source": "dir p",
            "status": "quarantined: RuntimeError: nope (broken.py:1)",
        },
        {"name": "off", "version": "", "source": "dir p", "status": "disabled"},
    ]
    assert rows[0]["hooks"] == ["netra_register_deploy_backends", "netra_register_suite_kinds"]
    table = format_table(*plugins_table(rows), width=200).splitlines()
    assert table[0].split() == ["NAME", "VERSION", "SOURCE", "HOOKS", "STATUS"]
    assert table[1].split()[:3] == ["fake_builtin", ours, "builtin"]
    assert table[3].split()[:2] == ["broken", "-"]  # no version
    assert "register_deploy_backends, register_suite_kinds" in table[1]
    assert table[2].split() == ["team", "2.0", "entry", "point", "netra-team", "results", "ok"]
    status_col = table[0].index("STATUS")
    assert all(
        line[status_col:].split()[0] in ("STATUS", "ok", "quarantined:", "disabled")
        for line in table
    )


def test_trace_hooks_env_prints_each_call(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NETRA_TRACE_HOOKS", "1")
    write(tmp_path / "p", "counting.py", COUNTING)
    h = Host(make_config(tmp_path, dirs=["p"]), trace=None)
    h.call_lifecycle("netra_results", batch=_batch(4))
    h.pm.hook.netra_results(batch=_batch(1))  # direct pluggy calls are traced too
    err = capsys.readouterr().err
    assert "netra hooks: netra_results(batch=<4 items>) -> counting" in err
    assert "netra hooks: netra_results <- counting (" in err
    assert "netra hooks: pm.hook.netra_results(batch=<1 items>) -> [counting]" in err


# --------------------------------------------------------------------------- every hook


def _recorder_source() -> str:
    """A plugin implementing every lifecycle hook, recording (hook, kwargs)."""
    lines = ["from supervisor.hookspecs import hookimpl", "CALLS = []"]
    for name in LIFECYCLE_HOOKS:
        args = getattr(hookspecs, name).__code__.co_varnames[
            : getattr(hookspecs, name).__code__.co_argcount
        ]
        kwargs = ", ".join(f"{a}={a}" for a in args)
        lines += [
            "@hookimpl",
            f"def {name}({', '.join(args)}):",
            f"    CALLS.append(({name!r}, dict({kwargs})))",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture
def recorder(tmp_path):
    write(tmp_path / "rec", "recorder.py", _recorder_source())
    config = make_config(tmp_path, dirs=["rec"])
    h = Host(config)
    return h, h.module("recorder").CALLS, config


def test_hook_netra_register_suite_kinds(tmp_path):
    write(
        tmp_path / "p",
        "kinds.py",
        """
        from supervisor.core.kinds import SuiteKind
        from supervisor.hookspecs import hookimpl
        class A(SuiteKind):
            name = "a"
        class B(SuiteKind):
            name = "b"
        @hookimpl
        def netra_register_suite_kinds():
            return [A(), B()]
    """,
    )
    h = Host(make_config(tmp_path, dirs=["p"]))
    kinds = h.suite_kinds()
    assert sorted(kinds) == ["a", "b"]
    assert all(isinstance(k, SuiteKind) for k in kinds.values())
    assert h.provider("suite kind", "a") == "kinds"


def test_hook_netra_register_suites(tmp_path):
    write(tmp_path / "p", "probe.py", KIND_PLUGIN.format(kind="probe", origin="x"))
    write(
        tmp_path / "p",
        "suites.py",
        """
        from supervisor.config import SuiteConfig
        from supervisor.hookspecs import hookimpl
        SEEN = []
        @hookimpl
        def netra_register_suites(config):
            SEEN.append(config)
            return [SuiteConfig(name="smoke", kind="probe", extra={"endpoint": "/"})]
    """,
    )
    config = make_config(tmp_path, '[[suite]]\nname = "api"\nkind = "probe"\n', dirs=["p"])
    h = Host(config)
    (suite,) = h.extra_suites(config)
    assert h.module("suites").SEEN == [config]
    assert (suite.name, suite.registered_by) == ("smoke", "suites")
    from dataclasses import replace

    h.validate_suites(replace(config, suites=config.suites + (suite,)))
    clash = make_config(tmp_path, '[[suite]]\nname = "smoke"\nkind = "probe"\n', dirs=["p"])
    with pytest.raises(ConfigError, match=r"suite \(smoke\): plugin 'suites' registers a suite"):
        Host(clash).extra_suites(clash)


def test_hook_netra_register_suites_errors_name_the_plugin(tmp_path):
    write(
        tmp_path / "p",
        "suites.py",
        """
        from supervisor.config import SuiteConfig
        def netra_register_suites(config):
            return [SuiteConfig(name="smoke", kind="nope")]
    """,
    )
    config = make_config(tmp_path, dirs=["p"])
    h = Host(config)
    extra = h.extra_suites(config)
    from dataclasses import replace

    with pytest.raises(ConfigError, match=r"^plugin 'suites': suite \(smoke\)\.kind: no suite"):
        h.validate_suites(replace(config, suites=tuple(extra)))


def test_hook_netra_register_deploy_backends(tmp_path):
    write(
        tmp_path / "p",
        "deploy.py",
        """
        from supervisor.core.kinds import DeployBackend, DeployOutcome
        from supervisor.hookspecs import hookimpl
        class Helm(DeployBackend):
            name = "helm"
            def deploy(self, config, iteration, log):
                return DeployOutcome(ok=True, revision="r1")
        @hookimpl
        def netra_register_deploy_backends():
            return [Helm()]
    """,
    )
    h = Host(make_config(tmp_path, dirs=["p"]))
    backend = h.deploy_backends()["helm"]
    assert isinstance(backend, DeployBackend)
    assert backend.deploy(None, 1, print).revision == "r1"


def test_hook_netra_register_log_sinks(tmp_path):
    write(
        tmp_path / "p",
        "sinks.py",
        """
        from supervisor.core.kinds import LogSink
        from supervisor.hookspecs import hookimpl
        class Loki(LogSink):
            name = "loki"
            extra_keys = ("labels",)
        @hookimpl
        def netra_register_log_sinks():
            return [Loki()]
    """,
    )
    h = Host(make_config(tmp_path, dirs=["p"]))
    sink = h.sink_kinds()["loki"]
    assert isinstance(sink, LogSink) and sink.extra_keys == ("labels",)
    assert h.row("sinks")["provides"] == ["sink kind loki"]


def test_hook_netra_run_started(recorder):
    h, calls, config = recorder
    h.call_lifecycle("netra_run_started", run_id=7, config=config)
    assert calls == [("netra_run_started", {"run_id": 7, "config": config})]


def test_hook_netra_iteration_started(recorder):
    h, calls, _ = recorder
    h.call_lifecycle("netra_iteration_started", run_id=7, iteration=2)
    assert calls == [("netra_iteration_started", {"run_id": 7, "iteration": 2})]


def test_hook_netra_deploy_finished(recorder):
    h, calls, _ = recorder
    h.call_lifecycle(
        "netra_deploy_finished",
        run_id=7,
        iteration=2,
        backend="command",
        revision="abc123",
        ok=False,
        message="exit 1",
    )
    assert calls == [
        (
            "netra_deploy_finished",
            {
                "run_id": 7,
                "iteration": 2,
                "backend": "command",
                "revision": "abc123",
                "ok": False,
                "message": "exit 1",
            },
        )
    ]


def test_hook_netra_phase_finished(recorder):
    h, calls, _ = recorder
    counts = count_outcomes(["passed", "failed"])
    h.call_lifecycle(
        "netra_phase_finished",
        run_id=7,
        iteration=2,
        phase="P1",
        status="gate-failed",
        counts=counts,
    )
    assert calls == [
        (
            "netra_phase_finished",
            {"run_id": 7, "iteration": 2, "phase": "P1", "status": "gate-failed", "counts": counts},
        )
    ]
    assert set(counts) == {*OUTCOMES, "flaky"}  # and the count of flaky tests


def test_hook_netra_results(recorder):
    h, calls, _ = recorder
    batch = _batch(3)
    h.call_lifecycle("netra_results", batch=batch)
    assert calls == [("netra_results", {"batch": batch})]


def test_hook_netra_test_hung(recorder):
    h, calls, _ = recorder
    event = TestHung(
        iteration=2,
        phase=1,
        suite="s",
        nodeid="t::slow",
        deadline=30.0,
        reason="deadline",
        dump="Thread 1 ...",
    )
    h.call_lifecycle("netra_test_hung", event=event)
    assert calls == [("netra_test_hung", {"event": event})]


def test_hook_netra_iteration_finished(recorder):
    h, calls, _ = recorder
    counts = count_outcomes(["passed"])
    changes = {"new": 0, "still": 0, "fixed": 1, "flaky": 0}
    h.call_lifecycle(
        "netra_iteration_finished",
        run_id=7,
        iteration=2,
        status="passed",
        counts=counts,
        changes=changes,
    )
    assert calls == [
        (
            "netra_iteration_finished",
            {"run_id": 7, "iteration": 2, "status": "passed", "counts": counts, "changes": changes},
        )
    ]


def test_hook_netra_run_finished(recorder):
    h, calls, _ = recorder
    h.call_lifecycle("netra_run_finished", run_id=7, status="interrupted", exit_code=130)
    assert calls == [
        ("netra_run_finished", {"run_id": 7, "status": "interrupted", "exit_code": 130})
    ]


def test_an_implementation_may_take_fewer_arguments(tmp_path):
    write(
        tmp_path / "p",
        "few.py",
        """
        CALLS = []
        def netra_deploy_finished(ok, revision):
            CALLS.append((ok, revision))
    """,
    )
    h = Host(make_config(tmp_path, dirs=["p"]))
    h.call_lifecycle(
        "netra_deploy_finished",
        run_id=1,
        iteration=1,
        backend="none",
        revision=None,
        ok=True,
        message="",
    )
    assert h.module("few").CALLS == [(True, None)]
