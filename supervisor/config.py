"""TOML configuration into frozen dataclasses.

Every error is a :class:`ConfigError` whose text is one line naming the file, the key
and the fix, because the person reading it is usually half-way through a long night
and should not have to read a traceback. Unknown keys are errors with a did-you-mean.
Keys that only a later feature uses are still parsed and validated here, so a typo is
caught on the first run, not at hour 14.

This module knows the keys every table has. The keys of one suite kind, deploy backend
or sink kind are declared by it (``keys``, see :mod:`supervisor.core.kinds`): they are
kept in ``options`` here and checked by :mod:`supervisor.plugins.kind_config` once plugins are
loaded, with the same :class:`Reader` and the same messages.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import InitVar, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

# ConfigError, OptionError, did_you_mean and the duration helpers live with the value
# checks; they are imported from here by most of the code, plugins included
from supervisor.config_values import (  # noqa: F401 - re-exported
    ConfigError,
    OptionError,
    Reader,
    did_you_mean,
    format_duration,
    parse_duration,
    type_name,
)
from supervisor.default_kind import DEFAULT_SUITE_KIND

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

CONFIG_FILENAME = "netra-supervisor.toml"
#: the quarantine file's default name, beside the config file (``[run] quarantine``)
QUARANTINE_FILENAME = "netra-quarantine.toml"


# --------------------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class AutoQuarantine:
    """``[run] auto_quarantine``: after an iteration, a test that flipped pass/fail at
    least ``flips`` times under one revision within ``within`` seconds is quarantined."""

    flips: int = 3
    within: float = 7 * 86400.0
    within_text: str = "7d"  # as written, for the reason an entry carries


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
    #: failed-first: what did not pass in a suite's latest results runs first in it
    order: str = "failed-first"  # failed-first | as-collected (also per [[suite]])
    #: after an iteration that left tests failing, the next one re-runs those first
    verify: bool = False
    #: the quarantine file (relative to the config's folder): its tests never gate
    quarantine: str = QUARANTINE_FILENAME
    auto_quarantine: AutoQuarantine | None = None  # None: off
    #: re-runs of a suite's non-passing tests at the end of the suite (also per
    #: [[phase]] and [[suite]]: the most specific wins)
    retries: int = 0
    #: what a test that passed only on a retry (flaky) means for gates and the exit code
    flaky_counts_as: str = "pass"  # pass | fail


@dataclass(frozen=True)
class DeployConfig:
    backend: str = "none"
    health_url: str = ""
    health_timeout: float = 120.0
    when: str = "every-iteration"  # every-iteration | on-change | first
    #: files (or globs) the deployed backend writes: the lines written while a test
    #: that did not pass ran become its evidence. None: the backend's own default
    #: (the ``local`` backend's log file); ``[]``: none.
    logs: tuple[str, ...] | None = None
    #: the backend's own keys (``command``, ...), parsed per its declaration
    options: Mapping[str, Any] = field(default_factory=dict)


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
    #: stop the phase once its gate can no longer hold (the rest is not run)
    stop_on_gate: bool = False
    retries: int | None = None  # None: [run] retries


_T = TypeVar("_T")


def _extra_alias(cls: type[_T]) -> type[_T]:
    """``extra``, the name ``options`` had before kinds declared typed keys, still
    reads (and ``SuiteConfig(extra=...)`` still works), so older plugins keep working."""
    cls.extra = property(lambda self: self.options, doc="The same as ``options``.")  # type: ignore[attr-defined]
    return cls


@_extra_alias
@dataclass(frozen=True)
class SuiteConfig:
    name: str
    kind: str = DEFAULT_SUITE_KIND
    args: tuple[str, ...] = ()
    cwd: str = "."
    python: str = ""  # empty: the supervisor's own interpreter
    workers: int = 1
    #: remote workers (``--tx`` specs such as ``ssh=...``; the kind checks them), besides ``workers``
    hosts: tuple[str, ...] = ()
    test_timeout: float | None = None
    tags: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    order: str = ""  # failed-first | as-collected; empty: [run] order
    retries: int | None = None  # None: the phase's, then [run] retries
    #: the kind's own keys (``url``, ...): as written until the host parses them per
    #: the kind's declaration (before anything runs), then converted and complete
    options: Mapping[str, Any] = field(default_factory=dict)
    #: the plugin that registered this suite in code, empty for the config file
    registered_by: str = ""
    extra: InitVar[Mapping[str, Any] | None] = None

    def __post_init__(self, extra: Mapping[str, Any] | None) -> None:
        if extra:
            object.__setattr__(self, "options", {**extra, **self.options})


@_extra_alias
@dataclass(frozen=True)
class SinkConfig:
    kind: str
    events: tuple[str, ...] = ()
    #: the sink kind's own keys (``path``, ...), like :attr:`SuiteConfig.options`
    options: Mapping[str, Any] = field(default_factory=dict)


def sink_label(index: int, sink: SinkConfig) -> str:
    """How a sink is named in messages (never by its URL): ``sink[1] (<its kind>)``."""
    return f"sink[{index}] ({sink.kind})"


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

# Each table's allowed keys and the kind of value each takes: the value types of
# supervisor.core.kinds.KEY_TYPES, and gate. [[suite]], [[sink]] and [deploy] list only
# the keys every one of them has; the rest belong to the kind (see EXTENSIBLE_TABLES).
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
        "order": "str",
        "verify": "bool",
        "quarantine": "str",
        "auto_quarantine": "table",  # checked in _auto_quarantine
        "retries": "int",
        "flaky_counts_as": "str",
    },
    "deploy": {
        "backend": "str",
        "health_url": "str",
        "health_timeout": "duration",
        "when": "str",
        "logs": "strlist",
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
        "stop_on_gate": "bool",
        "retries": "int",
    },
    "suite": {
        "name": "str",
        "kind": "str",
        "args": "strlist",
        "cwd": "str",
        "python": "str",
        "workers": "int",
        "hosts": "strlist",
        "test_timeout": "duration",
        "tags": "strlist",
        "env": "strmap",
        "order": "str",
        "retries": "int",
    },
    "sink": {"kind": "str", "events": "strlist"},
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

#: the orders a suite's tests can run in (``[run] order``, ``[[suite]] order``)
ORDERS = ("failed-first", "as-collected")

_CHOICES = {
    ("run", "until"): ("all-pass", "once", "target"),
    ("run", "order"): ORDERS,
    ("suite", "order"): ORDERS,
    ("run", "flaky_counts_as"): ("pass", "fail"),
    ("deploy", "when"): ("every-iteration", "on-change", "first"),
    ("auth", "algorithm"): ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256"),
}

#: Tables whose other keys belong to their kind, suite kind, sink kind or deploy backend:
#: they land in ``options`` and are checked once plugins are loaded (plugins/kind_config.py).
EXTENSIBLE_TABLES = ("suite", "sink", "deploy")


def common_keys(table: str) -> tuple[str, ...]:
    """The keys every ``[[suite]]``/``[[sink]]``/``[deploy]`` (``table``) has."""
    return tuple(_SCHEMA[table])


def _table(r: Reader, where: str, data: Mapping[str, Any]) -> dict:
    """Validated values of one table; in an extensible one the kind's keys go to
    ``options`` as written."""
    table = where.split("[")[0]
    allowed = _SCHEMA[table]
    extensible = table in EXTENSIBLE_TABLES
    out: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if not extensible:
        r.check_keys(where, data, allowed)
    for key, value in data.items():
        if key not in allowed:
            options[key] = value
            continue
        out[key] = r.value(where, key, value, allowed[key])
        choices = _CHOICES.get((table, key))
        if choices and out[key] not in choices:
            raise r.fail(
                f"{where}.{key}",
                f"{out[key]!r} is not one of {', '.join(choices)}"
                + did_you_mean(str(out[key]), choices, "choices"),
            )
    if extensible:
        out["options"] = options
    return out


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
    r = Reader(path)
    for key, value in data.items():
        if key not in _TOP_LEVEL:
            raise r.fail(key, "unknown section" + did_you_mean(key, _TOP_LEVEL))
        expected = _TOP_LEVEL[key]
        if expected == "table" and not isinstance(value, dict):
            raise r.fail(key, f"expected a table, write [{key}]")
        if expected == "array" and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            raise r.fail(key, f"expected an array of tables, write [[{key}]]")

    run = _parse_run(r, data.get("run", {}))
    deploy = DeployConfig(**_table(r, "deploy", data.get("deploy", {})))
    for index, pattern in enumerate(deploy.logs or ()):
        if not pattern.strip():
            raise r.fail(f"deploy.logs[{index}]", "an empty path; name a log file or a glob")
    auth = AuthConfig(**_table(r, "auth", data["auth"])) if "auth" in data else None
    watchdog = WatchdogConfig(**_table(r, "watchdog", data.get("watchdog", {})))
    for key in ("test_timeout", "silence_timeout"):
        if getattr(watchdog, key) <= 0:
            raise r.fail(f"watchdog.{key}", "must be longer than 0s")

    suites = tuple(_parse_suite(r, i, s) for i, s in enumerate(data.get("suite", [])))
    _no_duplicates(r, "suite", [s.name for s in suites])
    phases = tuple(_parse_phase(r, i, p) for i, p in enumerate(data.get("phase", [])))
    _no_duplicates(r, "phase", [p.name for p in phases])
    for index, phase in enumerate(phases):
        if run.verify and phase.name == "verify":  # the verify pass's phase is named so
            raise r.fail(f"phase[{index}].name", "'verify' names the verify pass; rename it")
    if not plugin_suites_later:
        _check_phase_suites(r, phases, suites)
        if not phases and suites:
            phases = (_implicit_phase(suites),)
    sinks = tuple(_parse_sink(r, i, s) for i, s in enumerate(data.get("sink", [])))
    plugins = PluginsConfig(**_table(r, "plugins", data.get("plugins", {})))
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


def _parse_run(r: Reader, data: Mapping[str, Any]) -> RunConfig:
    values = _table(r, "run", data)
    between = values.pop("between", "immediate")
    interval = 0.0
    if isinstance(between, bool) or not isinstance(between, (str, int, float)):
        raise r.fail("run.between", f"expected a string, got {type_name(between)}")
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
    if "quarantine" in values and not values["quarantine"].strip():
        raise r.fail("run.quarantine", f'empty path; write e.g. "{QUARANTINE_FILENAME}"')
    if "auto_quarantine" in values:
        values["auto_quarantine"] = _auto_quarantine(r, values["auto_quarantine"])
    return RunConfig(between=between, between_interval=interval, **values)


def _auto_quarantine(r: Reader, data: Mapping[str, Any]) -> AutoQuarantine:
    where = "run.auto_quarantine"
    r.check_keys(where, data, {"flips": "int", "within": "duration"})
    flips = r.value(where, "flips", data.get("flips", 3), "int")
    within = r.value(where, "within", data.get("within", "7d"), "duration")
    if flips < 1:
        raise r.fail(f"{where}.flips", 'must be at least 1, e.g. { flips = 3, within = "7d" }')
    if within <= 0:
        raise r.fail(f"{where}.within", 'must be longer than 0s, e.g. "7d"')
    text = data.get("within", "7d")
    return AutoQuarantine(flips, within, text if isinstance(text, str) else format_duration(within))


def _where(table: str, index: int, data: Mapping[str, Any], label: str) -> str:
    """``suite[2] (ws)``: the table entry and its ``label`` key's value when it has one,
    the way the kinds' own keys are named in messages."""
    name = data.get(label)
    return f"{table}[{index}] ({name})" if isinstance(name, str) and name else f"{table}[{index}]"


def _parse_suite(r: Reader, index: int, data: Mapping[str, Any]) -> SuiteConfig:
    where = _where("suite", index, data, "name")
    values = _table(r, where, data)
    if "name" not in values or not values["name"]:
        raise r.fail(f"{where}.name", "every [[suite]] needs a name")
    if values.get("workers", 1) < (0 if values.get("hosts") else 1):
        fix = "at least 1 (0 only with hosts = [...]: then the suite runs only remotely)"
        raise r.fail(f"{where}.workers", f"must be {fix}")
    return SuiteConfig(**values)


def add_suites(config: Config, extra: tuple[SuiteConfig, ...]) -> Config:
    """The config with suites plugins registered in code; then every phase's ``suites``
    must name one (see ``plugin_suites_later``), and without ``[[phase]]`` the implicit
    phase ``all`` runs them too."""
    suites = config.suites + tuple(extra)
    phases = config.phases
    r = Reader(config.path)
    _check_phase_suites(r, phases, suites)
    if not phases and suites:
        phases = (_implicit_phase(suites),)
    return replace(config, suites=suites, phases=phases)


def _implicit_phase(suites: tuple[SuiteConfig, ...]) -> PhaseConfig:
    return PhaseConfig(name="all", suites=tuple(s.name for s in suites), gate="none")


def _check_phase_suites(
    r: Reader, phases: tuple[PhaseConfig, ...], suites: tuple[SuiteConfig, ...]
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
                    f"no [[suite]] named '{selector}'" + did_you_mean(selector, names, "suites"),
                )


def _parse_phase(r: Reader, index: int, data: Mapping[str, Any]) -> PhaseConfig:
    where = f"phase[{index}]"
    values = _table(r, where, data)
    if "name" not in values or not values["name"]:
        raise r.fail(f"{where}.name", "every [[phase]] needs a name")
    where = f"phase[{index}] ({values['name']})"
    selectors = values.get("suites", ())
    if not selectors:
        raise r.fail(f"{where}.suites", 'a phase needs at least one suite, e.g. suites = ["p1"]')
    gate, ratio = values.pop("gate", ("all-pass", 1.0))
    return PhaseConfig(gate=gate, gate_ratio=ratio, **values)


def _parse_sink(r: Reader, index: int, data: Mapping[str, Any]) -> SinkConfig:
    where = _where("sink", index, data, "kind")
    values = _table(r, where, data)
    if not values.get("kind"):
        raise r.fail(
            f"{where}.kind",
            "every [[sink]] needs a kind; `netra-supervisor plugins` lists the sink kinds",
        )
    return SinkConfig(**values)


def _no_duplicates(r: Reader, table: str, names: list[str]) -> None:
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
                + did_you_mean(name, known, "phases")
            )
    return tuple(p for p in config.phases if p.name in names)
