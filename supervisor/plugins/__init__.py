"""The plugin host: discovery, isolation and quarantine of plugins.

Plugins are found in this order, and a later one overrides an earlier one (a suite
kind, deploy backend or sink kind registered again under the same name replaces the
earlier registration; a plugin of the same name replaces the earlier plugin):

1. built-ins: entry points of the group ``netra_supervisor`` whose module lives in
   our own ``netra_supervisor_plugins`` package (``plugins/builtin_pytest.py`` and friends);
2. every other installed entry point of the group ``netra_supervisor``;
3. ``[plugins] load``: importable module names;
4. ``[plugins] dirs``: every ``*.py`` file in those folders (relative to the config
   file; names starting with ``_`` are skipped), loaded by path under a unique module
   name ``netra_local_plugins.<dirhash>.<stem>``.

Names in ``[plugins] disable`` are not imported at all.

A plugin that fails to import, or raises from any hook, is reported through
``on_error`` (a :class:`supervisor.core.events.PluginFailed`; the run wires it to the
``plugin_errors`` table and the log pane) and quarantined: it is unregistered, what it
registered is dropped, and the run goes on. Every hook implementation is called
separately, so one bad plugin never keeps the others' implementations from running.
During a run, lifecycle hooks are called on their own thread
(:mod:`supervisor.hook_delivery`): one running longer than ``[plugins] hook_timeout``
quarantines its plugin the same way.
``NETRA_STRICT_PLUGINS=1`` turns such a failure into a :class:`PluginError` (the CLI
exits 2), for plugin authors. ``NETRA_TRACE_HOOKS=1`` prints every hook call to stderr.

The package, by job: :mod:`~supervisor.plugins.discovery` finds and imports plugins,
:mod:`~supervisor.plugins.host` registers them and calls their hooks,
:mod:`~supervisor.plugins.registrations` checks what registration hooks return,
:mod:`~supervisor.plugins.kind_config` the config keys the registered kinds declare,
and :mod:`~supervisor.plugins.records` holds the plain data they hand out. Import
from ``supervisor.plugins``: the names below are the host's interface.
"""

from supervisor.plugins.discovery import (
    BUILTIN_PACKAGE,
    ENTRY_POINT_GROUP,
    LOCAL_MODULE_PREFIX,
    OWN_DISTRIBUTION,
)
from supervisor.plugins.host import PluginHost
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
    plugins_table,
)

__all__ = [
    "BUILTIN_PACKAGE",
    "ENTRY_POINT_GROUP",
    "COLLECTING_HOOKS",
    "LIFECYCLE_HOOKS",
    "LOCAL_MODULE_PREFIX",
    "OWN_DISTRIBUTION",
    "REGISTRIES",
    "STRICT_ENV",
    "TRACE_ENV",
    "ImplCall",
    "PluginError",
    "PluginHost",
    "PluginRecord",
    "Registration",
    "plugins_table",
]
