"""What registration hooks return: checked before use, and who wins a shared name.

Pure functions over the host's records, so the rules (return instances, not classes;
a name; a valid key declaration; later plugins override earlier ones) read in one
place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from supervisor.config import SuiteConfig
from supervisor.plugins import kind_config
from supervisor.plugins.records import PluginRecord, Registration


def returned_problem(result: Any, base: type[Any], what: str) -> str:
    """Why a registration hook's return value cannot be used (``TypeError: ...``), or
    ``""``. ``None`` is an empty list; items must be instances of ``base`` with a name
    (suites are named later) and a valid key declaration."""
    if result is None:
        return ""
    if not isinstance(result, (list, tuple)):
        return f"TypeError: returned {type(result).__name__}, not a list"
    for item in result:
        problem = ""
        if isinstance(item, type) and issubclass(item, base):
            problem = f"returned the class {item.__name__}; return an instance: {item.__name__}()"
        elif not isinstance(item, base):
            problem = f"returned {type(item).__name__}, not a {base.__name__}"
        elif base is not SuiteConfig and (not isinstance(item.name, str) or not item.name):
            problem = f"returned a {what} ({type(item).__name__}) without a name"
        elif base is not SuiteConfig:
            declared = kind_config.declaration_problem(item)
            problem = declared and f"the {what} {item.name!r} declares {declared}"
        if problem:
            return f"TypeError: {problem}"
    return ""


def winners(
    what: str, records: Sequence[PluginRecord], registered: Mapping[str, list[Any]]
) -> list[Registration]:
    """The active registration of each name, in discovery order: a later plugin's
    replaces an earlier one's, and names the plugins it replaced."""
    out: dict[str, Registration] = {}
    for record in records:
        for obj in registered.get(record.name, []) if record.ok else []:
            before = out.get(obj.name)
            overrides = (*before.overrides, before.plugin) if before else ()
            if before and before.plugin == record.name:
                overrides = before.overrides
            out[obj.name] = Registration(what, obj.name, obj, record.name, overrides)
    return list(out.values())
