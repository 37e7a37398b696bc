"""The plugin host: loads plugins, calls their hooks one implementation at a time.

Finding and importing is :mod:`supervisor.plugins.discovery`, checking what
registration hooks return is :mod:`supervisor.plugins.registrations`; this module
registers, calls, quarantines and reports.
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

import pluggy

from supervisor import hookspecs
from supervisor.config import Config, ConfigError, SuiteConfig, did_you_mean
from supervisor.core.events import PluginFailed
from supervisor.core.kinds import DeployBackend, LogSink, SuiteKind
from supervisor.plugins import discovery, kind_config, registrations
from supervisor.plugins.records import (
    COLLECTING_HOOKS,
    LIFECYCLE_HOOKS,
    REGISTRIES,
    STRICT_ENV,
    TRACE_ENV,
    ImplCall,
    PluginError,
    PluginRecord,
    Registration,
)

if TYPE_CHECKING:
    import importlib.metadata


class _Manager(pluggy.PluginManager):
    """Also takes unmarked ``netra_*`` functions, as pytest takes ``pytest_*`` ones."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith("netra_"):
            method = inspect.getattr_static(plugin, name, None)  # never runs properties
            if isinstance(method, (staticmethod, classmethod)) or inspect.isroutine(method):
                return {}
        return opts


def _summarize(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return f"<{len(value)} items>"
    if isinstance(value, Config):
        return f"<Config {value.path}>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class PluginHost:
    """Loads plugins and calls their hooks one implementation at a time.

    ``config`` may be ``None`` (``netra-supervisor plugins`` outside a project): only
    entry points are loaded then. ``on_error`` receives a ``PluginFailed`` for every
    failure; it may be replaced after :meth:`load` (the run points it at the bus).
    ``strict`` and ``trace`` default to ``NETRA_STRICT_PLUGINS`` / ``NETRA_TRACE_HOOKS``.
    ``entry_points`` replaces the installed entry points of the group (for tests).
    """

    def __init__(
        self,
        config: Config | None = None,
        on_error: Callable[[PluginFailed], None] | None = None,
        *,
        strict: bool | None = None,
        trace: bool | None = None,
        entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    ) -> None:
        self.config = config
        self.on_error = on_error
        self.strict = discovery.env_flag(STRICT_ENV) if strict is None else strict
        self.trace = discovery.env_flag(TRACE_ENV) if trace is None else trace
        self.errors: list[PluginFailed] = []
        self.pm = _Manager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._entry_points = None if entry_points is None else list(entry_points)
        self._records: list[PluginRecord] = []
        self._by_id: dict[int, PluginRecord] = {}
        # registration hook → plugin name → the objects it returned (validated)
        self._registered: dict[str, dict[str, list[Any]]] = {h: {} for h in REGISTRIES}
        self._lock = threading.RLock()
        self._loaded = False

    # ------------------------------------------------------------------ discovery

    def load(self) -> PluginHost:
        """Discover, import and register every plugin, then collect registrations.

        Raises :class:`ConfigError` for a ``[plugins] dirs`` folder that does not
        exist, and :class:`PluginError` on the first plugin failure in strict mode.
        """
        if self._loaded:
            return self
        self._loaded = True
        if self.trace:
            self.pm.add_hookcall_monitoring(self._trace_before, self._trace_after)
        plugins_cfg = self.config.plugins if self.config is not None else None
        disabled = set(plugins_cfg.disable) if plugins_cfg else set()
        builtin, installed = discovery.entry_points(self._entry_points)
        for ep in builtin:
            self._add(ep.name, "builtin", disabled, ep.load, discovery.ep_version(ep))
        for ep in installed:
            dist = ep.dist.name if ep.dist is not None else "?"
            self._add(ep.name, f"entry point {dist}", disabled, ep.load, discovery.ep_version(ep))
        if plugins_cfg is not None:
            for module_name in plugins_cfg.load:
                self._add(module_name, "load", disabled, discovery.import_loader(module_name))
            for folder in plugins_cfg.dirs:
                assert self.config is not None
                for name, loader, file in discovery.dir_loaders(self.config, folder):
                    self._add(name, f"dir {folder}", disabled, loader, file=file)
        for hook in REGISTRIES:
            self._collect(hook)
        return self

    def _add(
        self,
        name: str,
        source: str,
        disabled: set[str],
        loader: discovery.Loader,
        version: str = "",
        file: str = "",
    ) -> None:
        record = PluginRecord(
            name=name, source=source, version=version, file=file, order=len(self._records)
        )
        if name in disabled:
            record.status = "disabled"
            self._records.append(record)
            return
        try:
            obj = loader()
        except (Exception, SystemExit) as exc:
            self._records.append(record)
            self._fail(record, "import", discovery.failure_text(exc, file))
            return
        if self.pm.is_registered(obj):  # e.g. [plugins] load naming an entry point's module
            return
        record.plugin = obj
        record.file = record.file or getattr(obj, "__file__", "") or ""
        record.version = record.version or discovery.module_version(obj)
        for earlier in self._records:  # later overrides earlier: same name, new plugin
            if earlier.name == name and earlier.ok:
                self._unregister(earlier)
                earlier.status = f"replaced by {source}"
        self._records.append(record)
        try:
            self.pm.register(obj, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            self._fail(record, "register", discovery.failure_text(exc))
            return
        self._by_id[id(obj)] = record
        problem = self._check_hooks(record)
        if problem:
            self._fail(record, "register", problem)

    def _check_hooks(self, record: PluginRecord) -> str:
        """Record the hooks a plugin implements; text of the first problem, if any."""
        known = [n for n in dir(hookspecs) if n.startswith("netra_")]
        hooks, problem = [], ""
        for caller in self.pm.get_hookcallers(record.plugin) or []:
            impls = [i for i in caller.get_hookimpls() if i.plugin is record.plugin]
            if not caller.has_spec():
                if all(i.optionalhook for i in impls):
                    continue
                problem = problem or (
                    f"unknown hook {caller.name}" + did_you_mean(caller.name, known, "hooks")
                )
                continue
            if any(i.hookwrapper or i.wrapper for i in impls):
                problem = problem or f"{caller.name}: hook wrappers are not supported"
            hooks.append(caller.name)
        record.hooks = tuple(sorted(hooks))
        return problem

    # ------------------------------------------------------------------ failures

    def _unregister(self, record: PluginRecord) -> None:
        with self._lock:
            if record.plugin is not None and self.pm.is_registered(record.plugin):
                self.pm.unregister(record.plugin)
            for per_plugin in self._registered.values():
                per_plugin.pop(record.name, None)

    def _fail(self, record: PluginRecord, hook: str, error: str) -> PluginFailed:
        with self._lock:
            record.status = f"quarantined: {error}"
            self._unregister(record)
            event = PluginFailed(plugin=record.name, hook=hook, error=error)
            self.errors.append(event)
        if self.trace:
            print(
                f"netra hooks: plugin {record.name!r} quarantined ({hook}): {error}",
                file=sys.stderr,
            )
        if self.on_error is not None:
            self.on_error(event)
        if self.strict:
            raise PluginError(record.name, hook, error, record.source)
        return event

    def quarantine(self, plugin: str, hook: str, error: BaseException | str) -> PluginFailed | None:
        """Quarantine a plugin by name for a failure seen outside a hook call.

        For the loop: a suite kind's ``run`` or a backend's ``deploy`` raised. Find the
        plugin with :meth:`provider`. Reports through ``on_error`` (and raises
        :class:`PluginError` in strict mode) exactly like a failing hook; returns the
        event, or ``None`` when no active plugin has that name.
        """
        record = next((r for r in self._records if r.name == plugin and r.ok), None)
        if record is None:
            return None
        text = error if isinstance(error, str) else discovery.failure_text(error, record.file)
        return self._fail(record, hook, text)

    # ------------------------------------------------------------------ calling hooks

    def implements(self, hook_name: str) -> bool:
        """Some loaded, healthy plugin implements ``hook_name``."""
        return bool(self._ordered_impls(hook_name))

    def _ordered_impls(self, hook_name: str) -> list[tuple[Any, PluginRecord]]:
        """Implementations in discovery order; ``tryfirst``/``trylast`` honoured."""
        out = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            record = self._by_id.get(id(impl.plugin))
            if record is not None and record.ok:
                out.append((impl, record))
        out.sort(key=lambda p: (0 if p[0].tryfirst else 2 if p[0].trylast else 1, p[1].order))
        return out

    #: What an isolated call returns when its implementation failed (and was reported).
    FAILED = _FAILED = object()

    def _call_impl(self, impl: Any, record: PluginRecord, hook_name: str, kwargs: dict) -> Any:
        if not record.ok:  # quarantined earlier in this same call
            return self._FAILED
        args = [kwargs[name] for name in impl.argnames]
        t0 = time.perf_counter()
        if self.trace:
            shown = ", ".join(f"{k}={_summarize(v)}" for k, v in kwargs.items())
            print(f"netra hooks: {hook_name}({shown}) -> {record.name}", file=sys.stderr)
        try:
            result = impl.function(*args)
        except (Exception, SystemExit) as exc:
            if record.ok:  # else quarantined meanwhile (a hook timeout): no news
                self._fail(record, hook_name, discovery.failure_text(exc, record.file))
            return self._FAILED
        if self.trace:
            ms = (time.perf_counter() - t0) * 1000
            print(f"netra hooks: {hook_name} <- {record.name} ({ms:.1f} ms)", file=sys.stderr)
        return result

    def _check_kwargs(self, hook_name: str, kwargs: dict) -> None:
        caller = getattr(self.pm.hook, hook_name, None)
        if caller is None or caller.spec is None:
            raise ValueError(f"{hook_name!r} is not a netra hook")
        expected = set(caller.spec.argnames)
        if set(kwargs) != expected:
            raise TypeError(
                f"{hook_name} takes {', '.join(caller.spec.argnames) or 'no arguments'}; "
                f"got {', '.join(sorted(kwargs)) or 'none'}"
            )

    def lifecycle_calls(self, hook_name: str, kwargs: dict) -> list[ImplCall]:
        """One isolated call per active implementation of a lifecycle hook, in order.

        For callers that run them elsewhere (the run's hook delivery thread, with a
        timeout per call). Checks the hook and that ``kwargs`` are exactly its
        parameters; an empty list means nobody implements it. The collecting hooks
        (``COLLECTING_HOOKS``) are handed out the same way; each call's ``run()``
        returns what the implementation returned (``FAILED`` after a failure).
        """
        if hook_name not in LIFECYCLE_HOOKS and hook_name not in COLLECTING_HOOKS:
            known = ", ".join((*LIFECYCLE_HOOKS, *COLLECTING_HOOKS))
            raise ValueError(f"{hook_name!r} is not a lifecycle hook ({known})")
        self._check_kwargs(hook_name, kwargs)
        return [
            ImplCall(record, hook_name, partial(self._call_impl, impl, record, hook_name, kwargs))
            for impl, record in self._ordered_impls(hook_name)
        ]

    def call_lifecycle(self, hook_name: str, **kwargs: Any) -> None:
        """Call a lifecycle hook on every active plugin, each implementation separately.

        A plugin that raises is quarantined (reported via ``on_error``) and the other
        plugins' implementations still run; in strict mode :class:`PluginError` is
        raised instead. Keyword arguments must be exactly the hook's parameters.
        Synchronous: a run delivers through :mod:`supervisor.hook_delivery` instead.
        """
        for call in self.lifecycle_calls(hook_name, kwargs):
            call.run()

    def _returned_list(
        self, record: PluginRecord, hook: str, result: Any, base: type, what: str
    ) -> list[Any] | None:
        """The validated list a registration hook returned; ``None`` after a failure."""
        problem = registrations.returned_problem(result, base, what)
        if problem:
            self._fail(record, hook, problem)
            return None
        return [] if result is None else list(result)

    def _collect(self, hook: str) -> None:
        what, base = REGISTRIES[hook]
        for impl, record in sorted(self._ordered_impls(hook), key=lambda p: p[1].order):
            result = self._call_impl(impl, record, hook, {})
            if result is self._FAILED:
                continue
            items = self._returned_list(record, hook, result, base, what)
            if items is not None:
                with self._lock:
                    self._registered[hook].setdefault(record.name, []).extend(items)

    # ------------------------------------------------------------------ registrations

    def registrations(self, hook: str | None = None) -> list[Registration]:
        """Active registrations, in discovery order; later ones override earlier ones.

        ``hook`` limits them to one registration hook (e.g.
        ``"netra_register_suite_kinds"``). Each row names the plugin that provided it
        and the plugins whose same-name registration it replaced.
        """
        rows: list[Registration] = []
        for name in [hook] if hook else list(REGISTRIES):
            what = REGISTRIES[name][0]
            rows.extend(registrations.winners(what, self._records, self._registered[name]))
        return rows

    def _named(self, hook: str) -> dict[str, Any]:
        return {r.name: r.obj for r in self.registrations(hook)}

    def suite_kinds(self) -> dict[str, SuiteKind]:
        """Suite kinds by name (later plugins override earlier ones)."""
        return self._named("netra_register_suite_kinds")

    def deploy_backends(self) -> dict[str, DeployBackend]:
        """Deploy backends by name (later plugins override earlier ones)."""
        return self._named("netra_register_deploy_backends")

    def sink_kinds(self) -> dict[str, LogSink]:
        """Log sink kinds by name (later plugins override earlier ones)."""
        return self._named("netra_register_log_sinks")

    def provider(self, what: str, name: str) -> str | None:
        """The plugin that provided a ``"suite kind"``/``"deploy backend"``/``"sink kind"``."""
        for row in self.registrations():
            if row.what == what and row.name == name:
                return row.plugin
        return None

    def extra_suites(self, config: Config) -> list[SuiteConfig]:
        """Suites plugins define in code (``netra_register_suites``), tagged with the plugin.

        Between plugins, the later plugin's suite of a name wins. A name the config file
        already uses raises :class:`ConfigError`.
        """
        hook = "netra_register_suites"
        suites: dict[str, SuiteConfig] = {}
        for impl, record in sorted(self._ordered_impls(hook), key=lambda p: p[1].order):
            result = self._call_impl(impl, record, hook, {"config": config})
            if result is self._FAILED:
                continue
            items = self._returned_list(record, hook, result, SuiteConfig, "suite")
            if items is None:
                continue
            if any(not suite.name for suite in items):
                self._fail(record, hook, "TypeError: returned a SuiteConfig without a name")
                continue
            for suite in items:
                suites[suite.name] = replace(suite, registered_by=record.name)
        in_file = {s.name for s in config.suites if not s.registered_by}
        for name, suite in suites.items():
            if name in in_file:
                raise ConfigError(
                    f"{config.path}: suite ({name}): plugin {suite.registered_by!r} registers a "
                    "suite of the same name in code; rename one of them"
                )
        return list(suites.values())

    def validate_suites(self, config: Config) -> Config:
        """The config with every suite's kind loaded, its own keys parsed (``options``)
        and accepted by the kind's ``validate``; see :mod:`supervisor.plugins.kind_config`.

        Raises :class:`ConfigError` naming the file and the key (``suite[i]
        (name).key``) for the first problem. A kind whose ``validate`` raises something
        other than ``ConfigError`` is treated as a failing plugin (quarantined).
        """
        return kind_config.validate_suites(self, config)

    def validate_deploy(self, config: Config) -> Config:
        """The config with ``[deploy]``'s backend loaded and its keys parsed and accepted."""
        return kind_config.validate_deploy(self, config)

    def validate_sinks(self, config: Config) -> Config:
        """The config with every ``[[sink]]``'s kind loaded and its keys parsed and
        accepted (the kind's ``validate`` may check the environment, e.g. a URL)."""
        return kind_config.validate_sinks(self, config)

    # ------------------------------------------------------------------ reporting

    def records(self) -> list[PluginRecord]:
        """Every discovered plugin in discovery order (including disabled/failed ones)."""
        return list(self._records)

    def describe(self) -> list[dict[str, Any]]:
        """Rows for ``netra-supervisor plugins``: name, version, source, hooks, status.

        Each row also has ``provides``: the active registrations, e.g.
        ``"suite kind pytest"``.
        """
        provides: dict[str, list[str]] = {}
        for row in self.registrations():
            provides.setdefault(row.plugin, []).append(f"{row.what} {row.name}")
        return [
            {
                "name": r.name,
                "version": r.version,
                "source": r.source,
                "hooks": list(r.hooks),
                "status": r.status,
                "provides": provides.get(r.name, []) if r.ok else [],
            }
            for r in self._records
        ]

    # ------------------------------------------------------------------ tracing

    def _trace_before(self, hook_name: str, hook_impls: Any, kwargs: Mapping[str, Any]) -> None:
        shown = ", ".join(f"{k}={_summarize(v)}" for k, v in kwargs.items())
        names = ", ".join(i.plugin_name for i in hook_impls)
        print(f"netra hooks: pm.hook.{hook_name}({shown}) -> [{names}]", file=sys.stderr)

    def _trace_after(
        self, outcome: Any, hook_name: str, hook_impls: Any, kwargs: Mapping[str, Any]
    ) -> None:
        status = "raised" if outcome.exception is not None else "ok"
        print(f"netra hooks: pm.hook.{hook_name} {status}", file=sys.stderr)
