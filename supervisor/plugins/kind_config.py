"""The config keys suite kinds, deploy backends and sink kinds declare for themselves.

``config.py`` reads the keys every ``[[suite]]``, ``[deploy]`` and ``[[sink]]`` has
and keeps the others, as written, in ``options``. Once plugins are loaded, this module
checks those against the kind's declaration (``keys``, and the older ``extra_keys``),
converts them with the same :class:`~supervisor.config_values.Reader` (so a typo, a
wrong type or a missing key reads exactly like one in ``[run]``), fills in defaults,
and then calls the kind's ``validate``. Built-in kinds go through here like a team's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from supervisor.config import (
    Config,
    ConfigError,
    OptionError,
    Reader,
    SinkConfig,
    SuiteConfig,
    common_keys,
    did_you_mean,
    sink_label,
)
from supervisor.core.kinds import KEY_TYPES, DeployBackend, Key, LogSink, OwnsKeys, SuiteKind

if TYPE_CHECKING:
    from supervisor.plugins.host import PluginHost

#: the table each kind of registration owns keys in
_TABLES: dict[type, str] = {SuiteKind: "suite", DeployBackend: "deploy", LogSink: "sink"}


def declared_keys(owner: OwnsKeys) -> dict[str, Key]:
    """The keys ``owner`` declares: ``extra_keys`` (each ``Key("any")``), then ``keys``."""
    out = {name: Key() for name in owner.extra_keys or ()}
    for name, spec in (owner.keys or {}).items():
        out[name] = Key(spec) if isinstance(spec, str) else spec
    return out


def declaration_problem(owner: OwnsKeys) -> str:
    """What is wrong with ``owner``'s declaration (checked when it is registered), or ``""``."""
    table = next((t for base, t in _TABLES.items() if isinstance(owner, base)), "")
    keys, extra = owner.keys, owner.extra_keys
    if not isinstance(keys, Mapping) or not isinstance(extra, (tuple, list)):
        return "keys must be a dict of key name -> type, extra_keys a tuple of names"
    for name, spec in {**dict.fromkeys(extra, Key()), **keys}.items():
        if not isinstance(name, str) or not isinstance(spec, (str, Key)):
            return f"keys: {name!r}: expected a type name or a Key, got {spec!r}"
        kind = spec if isinstance(spec, str) else spec.type
        if kind not in KEY_TYPES:
            return f"keys: {name!r} has the unknown type {kind!r} (types: {', '.join(KEY_TYPES)})"
        if table and name in common_keys(table):
            return f"keys: {name!r} is a key every [{table}] table has; pick another name"
        if isinstance(spec, Key) and spec.default is not None:
            try:
                Reader("default").value("keys", name, spec.default, kind)
            except ConfigError as exc:
                return str(exc)
    return ""


def parse_options(
    r: Reader,
    table: str,
    where: str,
    owner: str,
    raw: Mapping[str, Any],
    declared: Mapping[str, Key],
) -> dict[str, Any]:
    """Every declared key of one ``table`` (``suite``, ``deploy``, ``sink``), converted,
    defaults filled in; raises :class:`ConfigError` naming ``where.key`` for an unknown,
    wrong or missing key. ``owner`` names the declaring kind (``kind 'ws'``).

    Converting a converted value gives it back, so suites made in code may hold either.
    """
    for key in raw:
        if key not in declared:
            known = [*declared, *common_keys(table)]
            raise r.fail(f"{where}.{key}", f"unknown key for {owner}" + did_you_mean(key, known))
    out: dict[str, Any] = {}
    for key, spec in declared.items():
        value = raw.get(key, spec.default)
        example = f", e.g. {spec.example}" if spec.example else ""
        if spec.required and key not in raw:
            raise r.fail(f"{where}.{key}", f"required by {owner}; add it{example}")
        out[key] = None if value is None else r.value(where, key, value, spec.type)
        if spec.required and out[key] in ("", (), {}):
            raise r.fail(f"{where}.{key}", f"must not be empty ({owner} needs it){example}")
    return out


def _check(
    host: PluginHost, what: str, owner: SuiteKind | DeployBackend | LogSink, prefix: str, *args: Any
) -> None:
    """Call ``owner.validate(*args)``: an ``OptionError`` gets ``prefix`` (file and
    table), another ``ConfigError`` passes as is, anything else quarantines the plugin."""
    try:
        owner.validate(*args)
    except OptionError as exc:
        raise ConfigError(f"{prefix}.{exc.key}: {exc.problem}") from None
    except ConfigError:
        raise
    except (Exception, SystemExit) as exc:
        plugin = host.provider(what, owner.name)
        if plugin is not None:
            host.quarantine(plugin, f"{type(owner).__name__}.validate", exc)


def _suite_source(config: Config, index: int, suite: SuiteConfig) -> tuple[str, str]:
    if suite.registered_by:
        return f"plugin {suite.registered_by!r}", f"suite ({suite.name})"
    return str(config.path), f"suite[{index}] ({suite.name})"


def validate_suites(host: PluginHost, config: Config) -> Config:
    """The config with every suite's ``options`` parsed by its kind's declaration,
    after each kind's ``validate`` accepted its suites; raises :class:`ConfigError`
    (``FILE: suite[i] (name).key: ...``) for the first problem."""
    kinds = host.suite_kinds()
    failed = sum(1 for r in host.records() if r.status.startswith("quarantined"))
    parsed = []
    for index, suite in enumerate(config.suites):
        source, where = _suite_source(config, index, suite)
        kind = kinds.get(suite.kind)
        if kind is None:
            hint = f"; {failed} plugin(s) failed to load, see `netra-supervisor plugins`"
            raise ConfigError(
                f"{source}: {where}.kind: no suite kind {suite.kind!r} is loaded"
                + did_you_mean(suite.kind, kinds, "known kinds")
                + (hint if failed else "")
            )
        owner, declared = f"kind {suite.kind!r}", declared_keys(kind)
        options = parse_options(Reader(source), "suite", where, owner, suite.options, declared)
        parsed.append(replace(suite, options=options))
    config = replace(config, suites=tuple(parsed))
    for index, suite in enumerate(config.suites):
        prefix = ": ".join(_suite_source(config, index, suite))
        _check(host, "suite kind", kinds[suite.kind], prefix, suite, config)
    return config


def validate_deploy(host: PluginHost, config: Config) -> Config:
    """The config with ``[deploy]``'s ``options`` parsed by its backend's declaration
    and accepted by the backend's ``validate``; raises :class:`ConfigError`."""
    deploy, r = config.deploy, Reader(config.path)
    backends = host.deploy_backends()
    backend = backends.get(deploy.backend)
    if backend is None and deploy.backend != "none":
        raise r.fail(
            "deploy.backend",
            f"no deploy backend named {deploy.backend!r} is loaded"
            + did_you_mean(deploy.backend, ["none", *backends], "known"),
        )
    owner = f"backend {deploy.backend!r}"
    declared = declared_keys(backend) if backend is not None else {}
    options = parse_options(r, "deploy", "deploy", owner, deploy.options, declared)
    config = replace(config, deploy=replace(deploy, options=options))
    if backend is not None:
        prefix = f"{config.path}: deploy"
        _check(host, "deploy backend", backend, prefix, config)
    return config


def validate_sinks(host: PluginHost, config: Config) -> Config:
    """The config with every sink's ``options`` parsed by its kind's declaration and
    accepted by the kind's ``validate``; raises :class:`ConfigError`."""
    kinds = host.sink_kinds()
    r = Reader(config.path)
    parsed: list[SinkConfig] = []
    for index, sink in enumerate(config.sinks):
        where = sink_label(index, sink)
        kind = kinds.get(sink.kind)
        if kind is None:
            raise r.fail(
                f"{where}.kind",
                f"no sink kind {sink.kind!r} is loaded"
                + did_you_mean(sink.kind, kinds, "known kinds"),
            )
        owner = f"sink kind {sink.kind!r}"
        options = parse_options(r, "sink", where, owner, sink.options, declared_keys(kind))
        parsed.append(replace(sink, options=options))
    config = replace(config, sinks=tuple(parsed))
    for index, sink in enumerate(config.sinks):
        prefix = f"{config.path}: {sink_label(index, sink)}"
        _check(host, "sink kind", kinds[sink.kind], prefix, sink, config)
    return config
