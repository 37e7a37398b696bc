"""What a hung test process is doing: every thread's stack and its asyncio tasks.

Runs inside the supervised test process (see ``child_plugin.py``): STANDARD LIBRARY
ONLY. Loaded when the supervisor first asks for a dump, not at start-up.
"""

from __future__ import annotations

import linecache
import sys
import threading


def dump_stacks() -> str:
    """Every thread's stack, then the pending asyncio tasks and where they wait."""
    import traceback

    names = {t.ident: t.name for t in threading.enumerate()}
    me = threading.get_ident()
    parts = []
    for ident, frame in sys._current_frames().items():
        if ident == me or names.get(ident) == "netra-child":
            continue
        parts.append(f"Thread {names.get(ident, '?')} (id {ident}):\n")
        parts.append("".join(traceback.format_stack(frame)))
    tasks = _asyncio_tasks()
    if tasks:
        parts.append(f"\nasyncio tasks not done ({len(tasks)}):\n")
        for task in tasks:
            parts.append(f"{task!r}\n")
            for frame in _await_chain(task):
                parts.append(
                    f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, '
                    f"in {frame.f_code.co_name}\n"
                )
                line = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
                if line:
                    parts.append(f"    {line}\n")
    return "".join(parts)


def _await_chain(task: object) -> list:
    """A task's frames, outermost first, down to the innermost ``await``.

    ``Task.get_stack()`` gives only the task's own coroutine frame; a test run by a
    plugin's runner task (anyio) or awaiting a library call (``ws.recv()``) waits
    further down, so follow ``cr_await`` (and its generator/async-generator kin).
    """
    frames: list = []
    coro = task.get_coro() if hasattr(task, "get_coro") else getattr(task, "_coro", None)
    while coro is not None and len(frames) < 100:
        frame = (
            getattr(coro, "cr_frame", None)
            or getattr(coro, "gi_frame", None)
            or getattr(coro, "ag_frame", None)
        )
        if frame is None:
            break
        frames.append(frame)
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "gi_yieldfrom", None)
            or getattr(coro, "ag_await", None)
        )
    if not frames:
        frames = list(task.get_stack())  # type: ignore[attr-defined]
    return frames


def _asyncio_tasks() -> list:
    mod = sys.modules.get("asyncio")
    if mod is None:
        return []
    tasks = mod.tasks
    found: list = []
    for name in ("_all_tasks", "_scheduled_tasks"):  # 3.7-3.11 / 3.12+
        registry = getattr(tasks, name, None)
        if registry is not None:
            found.extend(list(registry))
    found.extend(getattr(tasks, "_eager_tasks", ()) or ())
    seen: set[int] = set()
    out = []
    for task in found:
        try:
            if id(task) in seen or task.done():
                continue
        except Exception:
            continue
        seen.add(id(task))
        out.append(task)
    return out
