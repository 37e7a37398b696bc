"""Finding and importing plugins: entry points, ``[plugins] load`` and ``dirs``.

Each source becomes a *loader* (a function that imports the plugin object), so the
host can import them one at a time and quarantine the one that fails.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from supervisor import hookspecs
from supervisor.config import Config, ConfigError
from supervisor.plugins.entry_scan import norm_name as norm_dist
from supervisor.plugins.entry_scan import scan
from supervisor.text import EXCEPTION_BYTES, exception_line, utf8_size

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
BUILTIN_PACKAGE = "netra_supervisor_plugins"  # the plugins/ folder, installed under this name
OWN_DISTRIBUTION = "netra-supervisor"
LOCAL_MODULE_PREFIX = "netra_local_plugins"

#: Imports a plugin and returns the object to register (usually a module).
Loader = Callable[[], Any]


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def entry_points(given: Iterable[Any] | None) -> tuple[list[Any], list[Any]]:
    """(built-in, installed) entry points of the group, each in load order.

    ``given`` replaces the installed ones (tests); duplicates are dropped.
    """
    if given is not None:
        eps = list(given)
    else:
        scanned: list[Any] | None = scan(ENTRY_POINT_GROUP)  # cheaper: see entry_scan
        if scanned is None:  # a path or an import hook only importlib.metadata reads
            import importlib.metadata

            scanned = list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
        eps = scanned
    seen: set[tuple[str, str]] = set()
    builtin: list[Any] = []
    installed: list[Any] = []
    for ep in eps:
        if (ep.name, ep.value) in seen:
            continue
        seen.add((ep.name, ep.value))
        (builtin if is_builtin(ep) else installed).append(ep)
    builtin.sort(key=lambda ep: ep.name)
    installed.sort(key=lambda ep: (norm_dist(ep.dist.name) if ep.dist else "", ep.name))
    return builtin, installed


#: id(distribution) -> (that distribution, its Name, its Version); see _dist_facts
_FACTS: dict[int, tuple[Any, str, str]] = {}


def _dist_facts(dist: Any) -> tuple[str, str]:
    """(Name, Version) of an entry point's distribution, its metadata parsed once:
    ``dist.name`` and ``dist.version`` each parse the whole METADATA file again (ours
    carries the README), which was ~0.1 s of every run's start-up for our four
    built-in entry points. Entry points of one distribution share its object."""
    hit = _FACTS.get(id(dist))
    if hit is not None and hit[0] is dist:
        return hit[1], hit[2]
    meta = getattr(dist, "metadata", None)
    if meta is not None:
        name, version = meta["Name"], meta["Version"]
    else:  # not an importlib.metadata distribution: what it says
        name, version = dist.name, dist.version
    facts = (str(name or ""), str(version or ""))
    _FACTS[id(dist)] = (dist, *facts)
    return facts


def is_builtin(ep: Any) -> bool:
    """An entry point into our own ``netra_supervisor_plugins`` package, from our own distribution."""
    module = ep.value.split(":")[0].strip()
    if not (module == BUILTIN_PACKAGE or module.startswith(BUILTIN_PACKAGE + ".")):
        return False
    return ep.dist is None or norm_dist(_dist_facts(ep.dist)[0]) == OWN_DISTRIBUTION


def ep_version(ep: Any) -> str:
    try:
        return _dist_facts(ep.dist)[1] if ep.dist is not None else ""
    except Exception:  # noqa: BLE001 - broken metadata: no version, not a failure
        return ""


def import_loader(module_name: str) -> Loader:
    """``[plugins] load``: an importable module name."""

    def load() -> Any:
        try:
            return importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.split(".")[0] == exc.name.split(".")[0]:
                raise ModuleNotFoundError(
                    f"No module named {exc.name!r} (install it in this environment, "
                    "or put the file in a [plugins] dirs folder)",
                    name=exc.name,
                ) from None
            raise

    return load


def dir_loaders(config: Config, folder: str) -> list[tuple[str, Loader, str]]:
    """``[plugins] dirs``: (name, loader, file) for every ``*.py`` in ``folder``."""
    path = config.resolve(folder)
    if not path.is_dir():
        raise ConfigError(
            f"{config.path}: plugins.dirs: {folder!r} is not a folder "
            f"(looked for {path}); create it or remove it from the list"
        )
    import hashlib  # here: 2.5 ms of every run's start-up, for plugin folders only

    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    out = []
    for file in sorted(path.glob("*.py")):
        if file.name.startswith("_"):
            continue
        stem = re.sub(r"\W", "_", file.stem)
        module_name = f"{LOCAL_MODULE_PREFIX}.{digest}.{stem}"
        out.append((file.stem, file_loader(module_name, file), str(file)))
    return out


def file_loader(module_name: str, file: Path) -> Loader:
    def load() -> Any:
        spec = importlib.util.spec_from_file_location(module_name, file)
        if spec is None or spec.loader is None:  # pragma: no cover - .py always loads
            raise ImportError(f"cannot load {file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module

    return load


def module_version(obj: Any) -> str:
    """``__version__``, else the version of the distribution that ships the module."""
    version = getattr(obj, "__version__", "")
    if isinstance(version, str) and version:
        return version
    top = getattr(obj, "__name__", "").split(".")[0]
    if not top or top == LOCAL_MODULE_PREFIX:
        return ""
    try:
        import importlib.metadata  # only for a plugin without __version__

        dists = importlib.metadata.packages_distributions().get(top, [])
        return importlib.metadata.version(dists[0]) if dists else ""
    except Exception:  # noqa: BLE001 - best effort only
        return ""


def failure_text(exc: BaseException, file: str = "") -> str:
    """``Type: message (file.py:12)``: :func:`~supervisor.text.exception_line` and the
    innermost frame in the plugin's own file (a SyntaxError names its place itself)."""
    where = ""
    if not isinstance(exc, SyntaxError):
        frames = traceback.extract_tb(exc.__traceback__)
        mine = [f for f in frames if file and os.path.abspath(f.filename) == os.path.abspath(file)]
        candidates = mine or frames
        if candidates:
            frame = candidates[-1]
            where = f" ({os.path.basename(frame.filename)}:{frame.lineno})"
    return exception_line(exc, EXCEPTION_BYTES - utf8_size(where)) + where
