"""supervisor/init_template.py: the starter config `netra-supervisor init` writes."""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path

import pytest

from supervisor.config import _SCHEMA, CONFIG_FILENAME, Config, load_config, parse_config
from supervisor.init_template import STARTER_CONFIG, write_starter
from supervisor.plugins import PluginHost
from supervisor.plugins.kind_config import declared_keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SECTIONS = ("run", "deploy", "auth", "watchdog", "phase", "suite", "sink", "plugins")


@functools.cache
def known_keys(section: str) -> set[str]:
    """The keys config.py knows in ``section``, and those a built-in kind, backend or
    sink kind declares for it."""
    host = PluginHost(None, strict=True).load()
    owners = {"suite": host.suite_kinds, "deploy": host.deploy_backends, "sink": host.sink_kinds}
    keys = set(_SCHEMA[section])
    if section in owners:
        keys.update(k for owner in owners[section]().values() for k in declared_keys(owner))
    return keys


def as_run_sees_it(config: Config) -> Config:
    """Each kind's keys parsed by its declaration, through the built-in plugins."""
    host = PluginHost(config, strict=True).load()
    return host.validate_sinks(host.validate_suites(host.validate_deploy(config)))


def uncomment_block(text: str, header: str) -> str:
    """Uncomment every commented block that starts with ``# HEADER``."""
    out: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith(f"# {header}"):
            inside = True
        elif not line.startswith("# "):
            inside = False
        out.append(line[2:] if inside else line)
    return "\n".join(out) + "\n"


def test_write_starter_loads_without_error(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    path = write_starter(tmp_path / CONFIG_FILENAME)
    assert path == tmp_path / CONFIG_FILENAME
    assert path.read_text(encoding="utf-8") == STARTER_CONFIG

    cfg = load_config(None, tmp_path)
    assert cfg.path == path
    assert [s.name for s in cfg.suites] == ["tests"]
    suite = cfg.suites[0]
    assert suite.kind == "pytest"
    assert suite.args == ("tests",)
    assert cfg.resolve(suite.cwd) / suite.args[0] == tmp_path / "." / "tests"
    assert (cfg.resolve(suite.cwd) / suite.args[0]).is_dir()
    assert [p.suites for p in cfg.phases] == [("tests",)]
    assert cfg.deploy.backend == "none"  # works without a deploy script
    assert cfg.auth is None and cfg.sinks == ()  # optional sections stay commented out
    assert cfg.run.until == "all-pass"
    assert cfg.run.max_iterations >= 1
    assert cfg.watchdog.test_timeout > 0


def test_starter_covers_every_section_of_the_contract() -> None:
    for section in SECTIONS:
        assert re.search(rf"^(# )?\[\[?{section}\]\]?", STARTER_CONFIG, re.M), section
    # the optional ones are present, but commented out
    assert "\n# [auth]" in STARTER_CONFIG
    assert "\n# [[sink]]" in STARTER_CONFIG
    assert "\n[auth]" not in STARTER_CONFIG and "\n[[sink]]" not in STARTER_CONFIG


def test_every_active_key_has_a_comment() -> None:
    for line in STARTER_CONFIG.splitlines():
        if re.match(r"^[a-z_]+ = ", line):
            assert " # " in line, f"key without a comment: {line!r}"


def test_commented_keys_are_real_keys() -> None:
    """A commented example key, once uncommented, must be one the loader knows."""
    data = tomllib.loads(STARTER_CONFIG)
    assert set(data) <= set(SECTIONS)
    section = None
    checked = 0
    for line in STARTER_CONFIG.splitlines():
        header = re.match(r"^(?:# )?\[\[?([a-z]+)\]\]?", line)
        if header:
            section = header.group(1)
            continue
        match = re.match(r"^(# )?([a-z_]+) = ", line)
        if match:
            assert section is not None
            assert match.group(2) in known_keys(section), f"[{section}] {line!r}"
            tomllib.loads(line[2:] if match.group(1) else line)  # valid TOML on its own
            checked += 1
    assert checked > 30


def test_optional_sections_parse_when_uncommented(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("NETRA_WEBHOOK_URL", "https://hooks.example.com/x")
    text = STARTER_CONFIG
    for header in ("[auth]", "[[sink]]", "[[suite]]"):
        text = uncomment_block(text, header)
    cfg = as_run_sees_it(parse_config(tomllib.loads(text), tmp_path / CONFIG_FILENAME))
    assert cfg.auth is not None and cfg.auth.ttl == 3600.0
    assert [s.kind for s in cfg.sinks] == ["jsonl", "webhook"]
    assert [s.name for s in cfg.suites] == ["tests", "ws-events"]
    assert cfg.suites[1].options["timeout"] == 30.0


def test_commented_deploy_command_parses_when_uncommented(tmp_path: Path) -> None:
    text = STARTER_CONFIG.replace('backend = "none"', "# (none)", 1)
    text = re.sub(r"^# (backend|command|health_url) = ", r"\1 = ", text, flags=re.M)
    cfg = as_run_sees_it(parse_config(tomllib.loads(text), tmp_path / CONFIG_FILENAME))
    assert cfg.deploy.backend == "command"
    assert cfg.deploy.options["command"] == ("./scripts/deploy.sh", "staging")


def test_write_starter_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILENAME
    path.write_text("# mine\n", encoding="utf-8")
    with pytest.raises(FileExistsError):
        write_starter(path)
    assert path.read_text(encoding="utf-8") == "# mine\n"


def test_write_starter_force_overwrites(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_FILENAME
    path.write_text("# mine\n", encoding="utf-8")
    assert write_starter(path, force=True) == path
    assert path.read_text(encoding="utf-8") == STARTER_CONFIG


def test_write_starter_accepts_a_string_path(tmp_path: Path) -> None:
    path = write_starter(str(tmp_path / "custom.toml"))  # type: ignore[arg-type]
    assert isinstance(path, Path) and path.is_file()
