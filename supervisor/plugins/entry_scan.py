"""The entry points of one group, read from the ``*.dist-info`` folders on ``sys.path``.

Why not :func:`importlib.metadata.entry_points`: on every ``run`` it cost about 18 ms
of CPU before the first test (importing :mod:`importlib.metadata` with the email
and zip modules it pulls in, 9 ms; building a distribution object for every
installed package, 2.5 ms; parsing our own METADATA, README included, with the
email parser to learn its name and version, 6.6 ms), a tenth of the supervisor's
whole start-up (``bench/README.md``). What a plugin host needs is much less: the
``entry_points.txt`` files that name the group, and the Name and Version headers of
the few distributions that have one.

The rules are those of :mod:`importlib.metadata` for the common case: each folder
of ``sys.path`` in order, the first distribution of a (normalized) name wins, an
``.egg-info`` folder counts like a ``.dist-info`` one. Where the path holds
something else (a zip file, an egg file) or an import hook finds distributions of
its own, :func:`scan` returns ``None`` and the caller asks :mod:`importlib.metadata`.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Any

#: ``module[:attr.attr] [extras]``, as importlib.metadata.EntryPoint reads a value
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")
_SUFFIXES = (".dist-info", ".egg-info")
#: the finders of the standard library: they find distributions only on sys.path
_STANDARD_FINDERS = ("BuiltinImporter", "FrozenImporter", "PathFinder")


@dataclass(frozen=True)
class Dist:
    """The distribution an entry point comes from: what its METADATA headers say."""

    name: str
    version: str


@dataclass(frozen=True)
class EntryPoint:
    """``name = value`` of one group, loaded the way importlib.metadata loads it."""

    name: str
    value: str
    group: str
    dist: Dist | None

    def load(self) -> Any:
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r}: {self.value!r} names no module")
        module = importlib.import_module(match.group("module"))
        attrs = filter(None, (match.group("attr") or "").split("."))
        return functools.reduce(getattr, attrs, module)


def norm_name(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Acme_Plugin`` = ``acme-plugin``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def scan(group: str, path: list[str] | None = None) -> list[EntryPoint] | None:
    """The entry points of ``group``; ``None`` when this reader cannot see every
    distribution (see the module's docstring)."""
    if any(
        type(finder).__name__ not in _STANDARD_FINDERS
        and getattr(finder, "__name__", "") not in _STANDARD_FINDERS
        and hasattr(finder, "find_distributions")
        for finder in sys.meta_path
    ):
        return None
    found: list[EntryPoint] = []
    seen: set[str] = set()
    for folder in sys.path if path is None else path:
        folder = folder or "."
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except NotADirectoryError:
            return None  # a zip or egg file on the path
        except OSError:
            continue  # gone, or not ours to read: importlib.metadata skips it too
        infos = [(e.name, e.path) for e in entries if e.name.lower().endswith(_SUFFIXES)]
        if folder.lower().endswith(".egg"):  # an unzipped egg on the path: its EGG-INFO
            infos += [(os.path.basename(folder), e.path) for e in entries if e.name == "EGG-INFO"]
        for info_name, info_dir in infos:
            key = norm_name(info_name.rsplit(".", 1)[0].split("-", 1)[0])
            if key in seen:
                continue
            seen.add(key)
            points = _group_of(os.path.join(info_dir, "entry_points.txt"), group)
            if points:
                dist = _dist(info_dir)
                found += [EntryPoint(name, value, group, dist) for name, value in points]
    return found


def _group_of(file: str, group: str) -> list[tuple[str, str]]:
    """(name, value) of ``group``'s section in an ``entry_points.txt`` (INI syntax)."""
    try:
        with open(file, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError):
        return []
    if f"[{group}]" not in text:
        return []
    points: list[tuple[str, str]] = []
    inside = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside and "=" in line:
            name, _, value = line.partition("=")
            points.append((name.strip(), value.strip()))
    return points


def _dist(folder: str) -> Dist:
    """Name and Version from the METADATA (or an egg's PKG-INFO) headers, which end
    at the first blank line: the description after it is never read."""
    headers: dict[str, str] = {}
    for file in ("METADATA", "PKG-INFO"):
        try:
            with open(os.path.join(folder, file), encoding="utf-8") as fh:
                for line in fh:
                    if not line.strip():
                        break
                    key, sep, value = line.partition(":")
                    if sep and key in ("Name", "Version") and key not in headers:
                        headers[key] = value.strip()
        except (OSError, UnicodeDecodeError):
            continue
        break
    base = os.path.basename(folder)
    if base == "EGG-INFO":  # an unzipped egg: its folder is named after the project
        base = os.path.basename(os.path.dirname(folder))
    fallback = base.rsplit(".", 1)[0].split("-")
    return Dist(
        headers.get("Name") or fallback[0],
        headers.get("Version") or (fallback[1] if len(fallback) > 1 else ""),
    )
