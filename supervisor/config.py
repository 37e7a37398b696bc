"""TOML configuration into frozen dataclasses.

Every error is a :class:`ConfigError` whose text is one line naming the file, the key
and the fix, because the person reading it is usually half-way through a long night
and should not have to read a traceback. Unknown keys are errors with a did-you-mean.
Keys that only a later feature uses are still parsed and validated here, so a typo is
caught on the first run, not at hour 14.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILENAME = "netra-supervisor.toml"
PYPROJECT_TABLE = ("tool", "netra-supervisor")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is the single line shown to the user."""

    def __str__(self) -> str:
        # names from the file (quoted keys, phase names) may hold line breaks
        return super().__str__().replace("\r", "\\r").replace("\n", "\\n")


# --------------------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"250ms"`` or a number of seconds → seconds.

    Raises ``ValueError`` with a human message when the text is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value != value:  # NaN
            raise ValueError(f"{value!r} is not a duration")
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration")
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"{value!r} is not a duration")
    return total


def format_duration(seconds: float) -> str:
    """Seconds → a short human text such as ``1h02m`` or ``4.2s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class RunConfig:
    target: int = 0
    until: str = "all-pass"  # all-pass | once | target
    max_iterations: int = 50
    max_duration: float | None = None  # seconds
    between: str = "immediate"  # immediate | wait-for-change | manual | interval
    between_interval: float = 0.0  # seconds, when between == "interval"
    watch: tuple[str, ...] = (".",)
    db: str = ".netra/history.db"
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DeployConfig:
    backend: str = "none"
    command: tuple[str, ...] = ()
    cwd: str = "."
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 600.0
    health_url: str = ""
    health_timeout: float = 120.0
    when: str = "every-iteration"  # every-iteration | on-change | first


@dataclass(frozen=True)
class AuthConfig:
    secret_env: str = "NETRA_JWT_SECRET"
    key_file: str = ""
    algorithm: str = "HS256"
    claims: Mapping[str, Any] = field(default_factory=dict)
    ttl: float = 3600.0
    export_as: str = "NETRA_E2E_TOKEN"


@dataclass(frozen=True)
class WatchdogConfig:
    test_timeout: float = 120.0
    silence_timeout: float = 60.0
    grace: float = 5.0


@dataclass(frozen=True)
class PhaseConfig:
    name: str
    suites: tuple[str, ...]
    gate: str = "all-pass"  # all-pass | none | ratio
    gate_ratio: float = 1.0  # minimum pass ratio when gate == "ratio"
    test_timeout: float | None = None
    impact: str = ""


@dataclass(frozen=True)
class SuiteConfig:
    name: str
    kind: str = "pytest"
    args: tuple[str, ...] = ()
    cwd: str = "."
    python: str = ""  # empty: the supervisor's own interpreter
    workers: int = 1
    test_timeout: float | None = None
    tags: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    # websocket-events
    url: str = ""
    send: Any = None
    expect: tuple[str, ...] = ()
    timeout: float = 30.0
    #: keys a plugin's suite kind declares (checked once plugins are loaded)
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: the plugin that registered this suite in code, empty for the config file
    registered_by: str = ""


@dataclass(frozen=True)
class SinkConfig:
    kind: str
    path: str = ""
    url_env: str = ""
    events: tuple[str, ...] = ()
    max_bytes: int = 50_000_000
    timeout: float = 10.0
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PluginsConfig:
    dirs: tuple[str, ...] = ()
    load: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    hook_timeout: float = 30.0  # a lifecycle hook running longer: its plugin is quarantined


@dataclass(frozen=True)
class Config:
    path: Path  # the file the configuration came from
    base_dir: Path  # relative paths resolve against this folder
    run: RunConfig = field(default_factory=RunConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    auth: AuthConfig | None = None
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)
    phases: tuple[PhaseConfig, ...] = ()
    suites: tuple[SuiteConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()
    plugins: PluginsConfig = field(default_factory=PluginsConfig)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def resolve(self, path: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    def suite(self, name: str) -> SuiteConfig:
        for suite in self.suites:
            if suite.name == name:
                return suite
        raise KeyError(name)

    def select_suites(self, selectors: tuple[str, ...]) -> list[SuiteConfig]:
        """Suites named by a phase: names or ``tag:TAG``, in order, without repeats."""
        chosen: list[SuiteConfig] = []
        for selector in selectors:
            if selector.startswith("tag:"):
                tag = selector[4:]
                matches = [s for s in self.suites if tag in s.tags]
            else:
                matches = [s for s in self.suites if s.name == selector]
            for suite in matches:
                if suite not in chosen:
                    chosen.append(suite)
        return chosen


# --------------------------------------------------------------------------- key schema

# Each table's allowed keys and the kind of value each takes. Kinds: str, int, float,
# bool, duration, strlist, strmap, table, any, gate, ratio.
_SCHEMA: dict[str, dict[str, str]] = {
    "run": {
        "target": "int",
        "until": "str",
        "max_iterations": "int",
        "max_duration": "duration",
        "between": "any",  # a mode name or a duration; checked in _parse_run
        "watch": "strlist",
        "db": "str",
        "env": "strmap",
    },
    "deploy": {
        "backend": "str",
        "command": "strlist",
        "cwd": "str",
        "env": "strmap",
        "timeout": "duration",
        "health_url": "str",
        "health_timeout": "duration",
        "when": "str",
    },
    "auth": {
        "secret_env": "str",
        "key_file": "str",
        "algorithm": "str",
        "claims": "table",
        "ttl": "duration",
        "export_as": "str",
    },
    "watchdog": {"test_timeout": "duration", "silence_timeout": "duration", "grace": "duration"},
    "phase": {
        "name": "str",
        "suites": "strlist",
        "gate": "gate",
        "test_timeout": "duration",
        "impact": "str",
    },
    "suite": {
        "name": "str",
        "kind": "str",
        "args": "strlist",
        "cwd": "str",
        "python": "str",
        "workers": "int",
        "test_timeout": "duration",
        "tags": "strlist",
        "env": "strmap",
        "url": "str",
        "send": "any",
        "expect": "strlist",
        "timeout": "duration",
    },
    "sink": {
        "kind": "str",
        "path": "str",
        "url_env": "str",
        "events": "strlist",
        "max_bytes": "int",
        "timeout": "duration",
    },
    "plugins": {
        "dirs": "strlist",
        "load": "strlist",
        "disable": "strlist",
        "hook_timeout": "duration",
    },
}

_TOP_LEVEL = {
    "run": "table",
    "deploy": "table",
    "auth": "table",
    "watchdog": "table",
    "phase": "array",
    "suite": "array",
    "sink": "array",
    "plugins": "table",
}

_CHOICES = {
    ("run", "until"): ("all-pass", "once", "target"),
    ("deploy", "when"): ("every-iteration", "on-change", "first"),
    ("auth", "algorithm"): ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256"),
}

#: Keys a plugin-registered suite or sink kind may accept beyond the built-in schema.
#: Unknown keys of [[suite]] and [[sink]] tables land in ``extra`` and are checked
#: against the kind's declared keys once plugins are loaded (see plugins.py).
EXTENSIBLE_TABLES = ("suite", "sink")


def _did_you_mean(key: str, options: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, list(options), n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known keys: {', '.join(sorted(options))})"


class _Reader:
    """Validates one file's data, producing messages that name file and key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def check_keys(self, where: str, table: Mapping[str, Any], allowed: Mapping[str, str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"{where}.{key}", "unknown key" + _did_you_mean(key, list(allowed)))

    def value(self, where: str, key: str, value: Any, kind: str) -> Any:
        name = f"{where}.{key}"
        if kind == "str":
            if not isinstance(value, str):
                raise self.fail(name, f"expected a string, got {_type_name(value)}")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(name, f"expected an integer, got {_type_name(value)}")
            if value < 0:
                raise self.fail(name, f"must not be negative, got {value}")
            return value
        if kind == "duration":
            try:
                return parse_duration(value)
            except ValueError as exc:
                raise self.fail(
                    name, f'{exc}; write a duration such as "90s", "5m" or "20h"'
                ) from None
        if kind == "strlist":
            if isinstance(value, str):
                raise self.fail(name, f'expected a list of strings, write ["{value}"]')
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise self.fail(name, f"expected a list of strings, got {_type_name(value)}")
            return tuple(value)
        if kind == "strmap":
            if not isinstance(value, dict):
                raise self.fail(name, f"expected a table of strings, got {_type_name(value)}")
            out = {}
            for k, v in value.items():
                if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                    raise self.fail(f"{name}.{k}", f"expected a string, got {_type_name(v)}")
                out[k] = str(v)
            return out
        if kind == "table":
            if not isinstance(value, dict):
                raise self.fail(name, f"expected a table, got {_type_name(value)}")
            return dict(value)
        if kind == "gate":
            return self.gate(name, value)
        return value  # "any"

    def gate(self, name: str, value: Any) -> tuple[str, float]:
        if isinstance(value, str) and value in ("all-pass", "none"):
            return value, 1.0
        ratio: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ratio = float(value)
        elif isinstance(value, str):
            text = value.strip()
            try:
                ratio = float(text[:-1]) / 100 if text.endswith("%") else float(text)
            except ValueError:
                ratio = None
        if ratio is None or not (0.0 < ratio <= 1.0):
            raise self.fail(
                name, f'{value!r} is not a gate; use "all-pass", "none" or a ratio such as 0.95'
            )
        return "ratio", ratio

    def table(self, where: str, data: Mapping[str, Any], extensible: bool = False) -> dict:
        """Validated values of one table; unknown keys go to ``extra`` if extensible."""
        allowed = _SCHEMA[where.split("[")[0].split(".")[-1]]
        out: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        if not extensible:
            self.check_keys(where, data, allowed)
        for key, value in data.items():
            if key not in allowed:
                extra[key] = value
                continue
            out[key] = self.value(where, key, value, allowed[key])
            choices = _CHOICES.get((where.split("[")[0], key))
            if choices and out[key] not in choices:
                raise self.fail(
                    f"{where}.{key}",
                    f"{out[key]!r} is not one of {', '.join(choices)}"
                    + _did_you_mean(str(out[key]), choices).replace(" (known keys", " (choices"),
                )
        if extensible:
            out["extra"] = extra
        return out


def _type_name(value: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    names.update({list: "a list", dict: "a table"})
    return names.get(type(value), type(value).__name__)


# --------------------------------------------------------------------------- loading


def find_config(explicit: str | None = None, cwd: Path | None = None) -> tuple[Path, dict]:
    """The config file and its netra-supervisor table, per the documented search order."""
    cwd = cwd or Path.cwd()
    if explicit:
        path = Path(explicit)
        if not path.is_absolute():
            path = cwd / path
        if not path.exists():
            raise ConfigError(f"{explicit}: no such file; check the -c path")
        data = _read_toml(path)
        if path.name == "pyproject.toml":
            return path, _pyproject_table(path, data, required=True)
        return path, data
    own = cwd / CONFIG_FILENAME
    if own.exists():
        return own, _read_toml(own)
    pyproject = cwd / "pyproject.toml"
    if pyproject.exists():
        table = _pyproject_table(pyproject, _read_toml(pyproject), required=False)
        if table is not None:
            return pyproject, table
    raise ConfigError(
        f"{cwd}: no {CONFIG_FILENAME} here (nor [tool.netra-supervisor] in pyproject.toml); "
        "run `netra-supervisor init` to write a starter, or pass -c FILE"
    )


def _pyproject_table(path: Path, data: dict, required: bool) -> Any:
    tool = data.get("tool", {})
    table = tool.get("netra-supervisor") if isinstance(tool, dict) else None
    if table is None and required:
        raise ConfigError(
            f"{path}: tool.netra-supervisor: table missing; add [tool.netra-supervisor]"
        )
    if table is not None and not isinstance(table, dict):
        raise ConfigError(
            f"{path}: tool.netra-supervisor: expected a table, write [tool.netra-supervisor]"
        )
    return table


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:  # tomllib decodes the bytes before it parses
        line = bytes(exc.object[: exc.start]).count(b"\n") + 1
        raise ConfigError(
            f"{path}: not valid TOML: line {line}: byte 0x{exc.object[exc.start]:02x} "
            "is not UTF-8 (save the file as UTF-8)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def load_config(
    explicit: str | None = None, cwd: Path | None = None, *, plugin_suites_later: bool = False
) -> Config:
    """Find, read and validate the configuration (raises :class:`ConfigError`)."""
    path, data = find_config(explicit, cwd)
    return parse_config(data, path, plugin_suites_later=plugin_suites_later)


def parse_config(
    data: Mapping[str, Any], path: Path, *, plugin_suites_later: bool = False
) -> Config:
    """Validate already-read TOML data that came from ``path``.

    With ``plugin_suites_later`` phases may name suites that plugins register in code
    (``netra_register_suites``): the caller adds those with :func:`add_suites`, which
    checks the phases then.
    """
    r = _Reader(path)
    for key, value in data.items():
        if key not in _TOP_LEVEL:
            raise r.fail(key, "unknown section" + _did_you_mean(key, list(_TOP_LEVEL)))
        expected = _TOP_LEVEL[key]
        if expected == "table" and not isinstance(value, dict):
            raise r.fail(key, f"expected a table, write [{key}]")
        if expected == "array" and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            raise r.fail(key, f"expected an array of tables, write [[{key}]]")

    run = _parse_run(r, data.get("run", {}))
    deploy = DeployConfig(**r.table("deploy", data.get("deploy", {})))
    if deploy.backend == "command" and not deploy.command:
        raise r.fail(
            "deploy.command", 'the "command" backend needs a command, e.g. ["./deploy.sh"]'
        )
    auth = AuthConfig(**r.table("auth", data["auth"])) if "auth" in data else None
    watchdog = WatchdogConfig(**r.table("watchdog", data.get("watchdog", {})))
    for key in ("test_timeout", "silence_timeout"):
        if getattr(watchdog, key) <= 0:
            raise r.fail(f"watchdog.{key}", "must be longer than 0s")

    suites = tuple(_parse_suite(r, i, s) for i, s in enumerate(data.get("suite", [])))
    _no_duplicates(r, "suite", [s.name for s in suites])
    phases = tuple(_parse_phase(r, i, p) for i, p in enumerate(data.get("phase", [])))
    _no_duplicates(r, "phase", [p.name for p in phases])
    if not plugin_suites_later:
        _check_phase_suites(r, phases, suites)
        if not phases and suites:
            phases = (_implicit_phase(suites),)
    sinks = tuple(_parse_sink(r, i, s) for i, s in enumerate(data.get("sink", [])))
    plugins = PluginsConfig(**r.table("plugins", data.get("plugins", {})))
    if plugins.hook_timeout <= 0:
        raise r.fail("plugins.hook_timeout", "must be longer than 0s")

    return Config(
        path=path,
        base_dir=path.parent,
        run=run,
        deploy=deploy,
        auth=auth,
        watchdog=watchdog,
        phases=phases,
        suites=suites,
        sinks=sinks,
        plugins=plugins,
        raw=dict(data),
    )


def _parse_run(r: _Reader, data: Mapping[str, Any]) -> RunConfig:
    values = r.table("run", data)
    between = values.pop("between", "immediate")
    interval = 0.0
    if isinstance(between, bool) or not isinstance(between, (str, int, float)):
        raise r.fail("run.between", f"expected a string, got {_type_name(between)}")
    if between not in ("immediate", "wait-for-change", "manual"):
        try:
            interval = parse_duration(between)
        except ValueError:
            raise r.fail(
                "run.between",
                f'{between!r} is not "immediate", "wait-for-change", "manual" or a duration like "10m"',
            ) from None
        between = "interval"
    if values.get("until") == "target" and not values.get("target"):
        raise r.fail("run.target", 'until = "target" needs a target count above 0')
    if "max_iterations" in values and values["max_iterations"] < 1:
        raise r.fail("run.max_iterations", "must be at least 1")
    return RunConfig(between=between, between_interval=interval, **values)


def _parse_suite(r: _Reader, index: int, data: Mapping[str, Any]) -> SuiteConfig:
    where = f"suite[{index}]"
    values = r.table(where, data, extensible=True)
    if "name" not in values or not values["name"]:
        raise r.fail(f"{where}.name", "every [[suite]] needs a name")
    where = f"suite[{index}] ({values['name']})"
    if values.get("workers", 1) < 1:
        raise r.fail(f"{where}.workers", "must be at least 1")
    kind = values.get("kind", "pytest")
    if kind in ("pytest", "websocket-events") and values["extra"]:
        key = next(iter(values["extra"]))
        raise r.fail(f"{where}.{key}", "unknown key" + _did_you_mean(key, list(_SCHEMA["suite"])))
    if kind == "websocket-events":
        if not values.get("url"):
            raise r.fail(f"{where}.url", 'a websocket-events suite needs url = "ws://..."')
        if not values.get("expect"):
            raise r.fail(f"{where}.expect", 'list the events to expect, e.g. ["agent_started"]')
    return SuiteConfig(**values)


def add_suites(config: Config, extra: tuple[SuiteConfig, ...]) -> Config:
    """The config with suites plugins registered in code; then every phase's ``suites``
    must name one (see ``plugin_suites_later``), and without ``[[phase]]`` the implicit
    phase ``all`` runs them too."""
    suites = config.suites + tuple(extra)
    phases = config.phases
    r = _Reader(config.path)
    _check_phase_suites(r, phases, suites)
    if not phases and suites:
        phases = (_implicit_phase(suites),)
    return replace(config, suites=suites, phases=phases)


def _implicit_phase(suites: tuple[SuiteConfig, ...]) -> PhaseConfig:
    return PhaseConfig(name="all", suites=tuple(s.name for s in suites), gate="none")


def _check_phase_suites(
    r: _Reader, phases: tuple[PhaseConfig, ...], suites: tuple[SuiteConfig, ...]
) -> None:
    names = [s.name for s in suites]
    tags = {t for s in suites for t in s.tags}
    for index, phase in enumerate(phases):
        where = f"phase[{index}] ({phase.name})"
        for selector in phase.suites:
            if selector.startswith("tag:"):
                if selector[4:] not in tags:
                    raise r.fail(f"{where}.suites", f"no suite has the tag '{selector[4:]}'")
            elif selector not in names:
                raise r.fail(
                    f"{where}.suites",
                    f"no [[suite]] named '{selector}'"
                    + _did_you_mean(selector, names).replace("known keys", "suites"),
                )


def _parse_phase(r: _Reader, index: int, data: Mapping[str, Any]) -> PhaseConfig:
    where = f"phase[{index}]"
    values = r.table(where, data)
    if "name" not in values or not values["name"]:
        raise r.fail(f"{where}.name", "every [[phase]] needs a name")
    where = f"phase[{index}] ({values['name']})"
    selectors = values.get("suites", ())
    if not selectors:
        raise r.fail(f"{where}.suites", 'a phase needs at least one suite, e.g. suites = ["p1"]')
    gate, ratio = values.pop("gate", ("all-pass", 1.0))
    return PhaseConfig(gate=gate, gate_ratio=ratio, **values)


def _parse_sink(r: _Reader, index: int, data: Mapping[str, Any]) -> SinkConfig:
    where = f"sink[{index}]"
    values = r.table(where, data, extensible=True)
    if not values.get("kind"):
        raise r.fail(f"{where}.kind", 'every [[sink]] needs a kind, e.g. kind = "jsonl"')
    if values["kind"] in ("jsonl", "webhook") and values["extra"]:
        key = next(iter(values["extra"]))
        raise r.fail(f"{where}.{key}", "unknown key" + _did_you_mean(key, list(_SCHEMA["sink"])))
    if values["kind"] == "jsonl" and not values.get("path"):
        raise r.fail(f"{where}.path", 'a jsonl sink needs path = ".netra/events.jsonl"')
    if values["kind"] == "webhook" and not values.get("url_env"):
        raise r.fail(
            f"{where}.url_env",
            'a webhook sink reads its URL from the environment: url_env = "NETRA_WEBHOOK_URL"',
        )
    return SinkConfig(**values)


def _no_duplicates(r: _Reader, table: str, names: list[str]) -> None:
    seen: set[str] = set()
    for index, name in enumerate(names):
        if name in seen:
            raise r.fail(f"{table}[{index}].name", f"'{name}' is used twice; names must be unique")
        seen.add(name)


def select_phases(config: Config, names: list[str] | tuple[str, ...]) -> tuple[PhaseConfig, ...]:
    """The phases ``--phase`` asked for, in configured order; unknown names are errors."""
    if not names:
        return config.phases
    known = [p.name for p in config.phases]
    for name in names:
        if name not in known:
            raise ConfigError(
                f"--phase {name}: no such phase in {config.path}"
                + _did_you_mean(name, known).replace("known keys", "phases")
            )
    return tuple(p for p in config.phases if p.name in names)
