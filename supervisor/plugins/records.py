"""What the plugin host knows and hands out: records, registrations, errors, hook lists.

Plain data, so the hook delivery thread, the CLI's error handling and the
``netra-supervisor plugins`` table can use it without the host's machinery.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from supervisor.core.kinds import DeployBackend, LogSink, SuiteKind
from supervisor.tables import Column

STRICT_ENV = "NETRA_STRICT_PLUGINS"
TRACE_ENV = "NETRA_TRACE_HOOKS"

#: Registration hooks that take no arguments: hook name → (what, base class).
REGISTRIES: dict[str, tuple[str, type]] = {
    "netra_register_suite_kinds": ("suite kind", SuiteKind),
    "netra_register_deploy_backends": ("deploy backend", DeployBackend),
    "netra_register_log_sinks": ("sink kind", LogSink),
}

#: Hooks that return nothing: :meth:`PluginHost.lifecycle_calls` (a run delivers them
#: on the hooks thread) or :meth:`PluginHost.call_lifecycle`.
LIFECYCLE_HOOKS = (
    "netra_run_started",
    "netra_iteration_started",
    "netra_deploy_finished",
    "netra_phase_finished",
    "netra_results",
    "netra_test_hung",
    "netra_iteration_finished",
    "netra_run_finished",
)

#: Hooks called once per non-passing result whose return value is kept (evidence):
#: :meth:`PluginHost.lifecycle_calls` hands them out too; the run delivers them on a
#: thread of their own (``supervisor.evidence_run``).
COLLECTING_HOOKS = ("netra_collect_evidence",)


class PluginError(Exception):
    """A plugin failed while ``NETRA_STRICT_PLUGINS=1``; ``str()`` is one line."""

    def __init__(self, plugin: str, hook: str, error: str, source: str = "") -> None:
        self.plugin, self.hook, self.error, self.source = plugin, hook, error, source
        where = f" ({source})" if source else ""
        super().__init__(
            f"plugin {plugin!r}{where} failed in {hook}: {error} [stopped because {STRICT_ENV}=1]"
        )


@dataclass
class PluginRecord:
    """One discovered plugin, whatever became of it."""

    name: str
    source: str
    version: str = ""
    status: str = "ok"  # ok | disabled | quarantined: <error> | replaced by <source>
    hooks: tuple[str, ...] = ()
    plugin: Any = None  # the registered object (usually a module), None if never loaded
    file: str = ""
    order: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class ImplCall:
    """One plugin's implementation of one lifecycle call; ``run`` isolates failures."""

    record: PluginRecord
    hook: str
    run: Callable[[], Any]


@dataclass(frozen=True)
class Registration:
    """An object a plugin registered under a name (a suite kind, backend or sink kind)."""

    what: str  # "suite kind" | "deploy backend" | "sink kind"
    name: str
    obj: Any
    plugin: str
    overrides: tuple[str, ...] = field(default=())  # plugins whose same-name entry it replaced


def plugins_table(rows: list[dict[str, Any]]) -> tuple[list[Column], list[list[str]]]:
    """The columns and rows of ``netra-supervisor plugins`` (hooks without ``netra_``)."""
    columns = [Column("NAME"), Column("VERSION"), Column("SOURCE"), Column("HOOKS")]
    cells = [
        [
            str(row["name"]),
            str(row.get("version") or "-"),
            str(row["source"]),
            ", ".join(h.removeprefix("netra_") for h in row.get("hooks", ())) or "-",
            str(row["status"]),
        ]
        for row in rows
    ]
    return [*columns, Column("STATUS")], cells
