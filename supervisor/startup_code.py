"""The code ``@dataclass`` compiles is kept between runs, the way Python keeps bytecode.

Every ``@dataclass`` writes the source of its ``__init__``, ``__repr__``, ``__eq__``,
``__hash__`` and (frozen) ``__setattr__`` and compiles it with ``exec`` when its module
is imported. The source is the same on every run, and compiling it was about a third
of the CPU ``run``'s imports take (32 of 97 ms for its 76 dataclasses, this
machine, Python 3.11: ``bench/README.md``). So while ``run`` starts, the ``exec`` the
:mod:`dataclasses` module calls compiles each source text once and keeps the code
object in a file beside our own bytecode (``__pycache__``, or under
``PYTHONPYCACHEPREFIX``); the next run executes the stored code instead of compiling
it. It is exactly what ``exec`` of the text would compile (same file name, no inherited
``__future__`` flags); the file is keyed by the interpreter's bytecode magic number and
ignored when it does not match or does not load; nothing is written under
``PYTHONDONTWRITEBYTECODE`` or where the folder is not writable.

Only the ``run`` command's own process does this (``cli.main`` called without
``argv``, like :mod:`supervisor.startup_gc`), from its start to its end
(:func:`install` / :func:`finish`): the suite runners' modules are imported when the
first suite starts, the TUI's when the view opens, a hang's waiting line at the first
hang.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import importlib.util
import marshal
import os
import sys
from pathlib import Path
from types import CodeType
from typing import Any

#: a process that makes more distinct dataclasses than this keeps only the first ones
MAX_ENTRIES = 20_000

_codes: dict[str, CodeType] = {}
_used: dict[str, CodeType] = {}  # what this process executed: what the file keeps
_added = 0
_installed = False


def cache_path() -> Path | None:
    """Where the compiled code is kept: beside this module's own bytecode."""
    tag = sys.implementation.cache_tag
    if tag is None:
        return None
    try:
        pyc = importlib.util.cache_from_source(__file__)
    except (NotImplementedError, ValueError):
        return None
    return Path(pyc).with_name(f"dataclass-code.{tag}.bin")


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:  # noqa: A002
    """``exec`` for :mod:`dataclasses`: the source's code object, compiled once."""
    global _added
    if type(source) is str:
        code = _codes.get(source)
        if code is None:
            # dont_inherit: the flags of exec's own caller (dataclasses.py: none)
            code = _codes[source] = compile(source, "<string>", "exec", dont_inherit=True)
            _added += 1
        if len(_used) < MAX_ENTRIES:
            _used[source] = code
        source = code
    builtins.exec(source, globals, locals)


def _load(path: Path) -> dict[str, CodeType]:
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    magic = importlib.util.MAGIC_NUMBER
    if not data.startswith(magic):
        return {}
    try:
        codes = marshal.loads(data[len(magic) :])
    except (EOFError, ValueError, TypeError):
        return {}
    if type(codes) is not dict:
        return {}
    return {k: v for k, v in codes.items() if type(k) is str and type(v) is CodeType}


def install() -> None:
    """Load the kept code and route :mod:`dataclasses`' ``exec`` through it."""
    global _installed, _added
    if _installed:
        return
    path = cache_path()
    _codes.clear()
    _used.clear()
    _added = 0
    if path is not None:
        _codes.update(_load(path))
    dataclasses.exec = _exec  # type: ignore[attr-defined]
    _installed = True


def finish() -> int:
    """Stop routing ``exec``; write the file if this start compiled something new.
    Returns how many code objects were new (0: everything came from the file)."""
    global _installed
    if not _installed:
        return 0
    _installed = False
    with contextlib.suppress(AttributeError):
        del dataclasses.exec  # type: ignore[attr-defined]
    added = _added
    path = cache_path()
    if added and path is not None and not sys.dont_write_bytecode:
        _write(path, _used)  # what an older version compiled and this one did not: gone
    _codes.clear()
    _used.clear()
    return added


def _write(path: Path, codes: dict[str, CodeType]) -> None:
    """Atomically (another run may be reading it); an unwritable folder is no error."""
    import tempfile

    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o644)  # as readable as the bytecode beside it
        with os.fdopen(fd, "wb") as fh:
            fh.write(importlib.util.MAGIC_NUMBER)
            marshal.dump(codes, fh)
        os.replace(tmp, path)
        tmp = None
    except (OSError, ValueError):
        pass
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
