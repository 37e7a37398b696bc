"""What a hung test process is doing: every thread's stack and its asyncio tasks.

Runs inside the supervised test process (see ``child_plugin.py``): STANDARD LIBRARY
ONLY. Loaded when the supervisor first asks for a dump, not at start-up.

The answer is the text dump a person reads (and the history stores) plus the same
stacks as plain data, so the parent can name the line the test waits on
(``supervisor/core/waiting.py``) without parsing text.
"""

from __future__ import annotations

import linecache
import os
import sys
import sysconfig
import threading
from typing import Any

#: frames kept per stack (a runaway recursion must not make a huge answer)
_MAX_FRAMES = 200


def dump(rootdir: str = "") -> dict:
    """``{"text", "stacks", "roots"}``: the dump, its stacks (each ``{"kind": "thread" |
    "task", "name", "main", "frames": [{"file", "line", "func", "code", "expr"}]}``,
    outermost frame first) and the folders that say whose code a frame is."""
    names = {t.ident: t.name for t in threading.enumerate()}
    main_ident = threading.main_thread().ident
    me = threading.get_ident()
    stacks: list[dict] = []
    for ident, frame in sys._current_frames().items():
        if ident == me or names.get(ident) == "netra-child":
            continue
        frames = []
        f: Any = frame
        while f is not None:
            frames.append(f)
            f = f.f_back
        frames.reverse()
        stacks.append(
            {
                "kind": "thread",
                "name": f"Thread {names.get(ident, '?')} (id {ident})",
                "main": ident == main_ident,
                "frames": [_frame(f) for f in frames[-_MAX_FRAMES:]],
            }
        )
    for task in _asyncio_tasks():
        stacks.append(
            {
                "kind": "task",
                "name": _task_name(task),
                "main": False,
                "frames": [_frame(f) for f in _await_chain(task)[-_MAX_FRAMES:]],
            }
        )
    return {"text": _text(stacks), "stacks": stacks, "roots": _roots(rootdir)}


def dump_stacks() -> str:
    """Every thread's stack, then the pending asyncio tasks and where they wait."""
    return str(dump()["text"])


def _text(stacks: list[dict]) -> str:
    """The traceback-style text of the stacks: threads, then the tasks."""
    parts: list[str] = []
    tasks = [s for s in stacks if s["kind"] == "task"]
    for stack in stacks:
        if stack["kind"] == "thread":
            parts.append(f"{stack['name']}:\n")
            parts.extend(_frame_text(f) for f in stack["frames"])
    if tasks:
        parts.append(f"\nasyncio tasks not done ({len(tasks)}):\n")
        for stack in tasks:
            parts.append(f"{stack['name']}\n")
            parts.extend(_frame_text(f) for f in stack["frames"])
    return "".join(parts)


def _frame_text(frame: dict) -> str:
    text = f'  File "{frame["file"]}", line {frame["line"]}, in {frame["func"]}\n'
    return text + (f"    {frame['code']}\n" if frame["code"] else "")


def _frame(frame) -> dict:
    code = frame.f_code
    line = frame.f_lineno or 0
    return {
        "file": code.co_filename,
        "line": line,
        "func": code.co_name,
        "code": linecache.getline(code.co_filename, line).strip(),
        "expr": _expr(frame),
    }


def _expr(frame) -> str:
    """The source of the expression the frame is executing (``agent_ws.recv()`` of
    ``seen.append(json.loads(agent_ws.recv()))``), from the instruction's position
    (Python 3.11+); "" when unknown (the caller then shows the whole line)."""
    positions = getattr(frame.f_code, "co_positions", None)
    if positions is None or frame.f_lasti < 0:
        return ""
    try:
        import itertools

        position = next(itertools.islice(positions(), frame.f_lasti // 2, None), None)
        if position is None:
            return ""
        first, last, col, end_col = position
        if None in (first, last, col, end_col):
            return ""
        lines = [
            linecache.getline(frame.f_code.co_filename, n).encode() for n in range(first, last + 1)
        ]
        if not lines or not lines[0]:
            return ""
        if len(lines) == 1:
            text = lines[0][col:end_col]
        else:  # a statement over lines (``with lock:`` and its body): its first line
            text = lines[0][col:]
        return " ".join(text.decode(errors="replace").split())
    except Exception:  # an odd code object: the whole line will do
        return ""


def _roots(rootdir: str) -> dict:
    """Where the project, its installed libraries and the standard library live."""
    paths = sysconfig.get_paths()
    site_dirs = {paths.get("purelib", ""), paths.get("platlib", "")}
    try:
        import site

        site_dirs.update(site.getsitepackages())
        site_dirs.add(site.getusersitepackages())
    except Exception:
        pass
    stdlib = {paths.get("stdlib", ""), paths.get("platstdlib", "")}
    return {
        "rootdir": rootdir,
        "site": sorted(d for d in site_dirs if d),
        "stdlib": sorted(d for d in stdlib if d),
        "netra": os.path.dirname(os.path.abspath(__file__)),
    }


def _task_name(task: object) -> str:
    try:
        return repr(task)
    except Exception:
        return "<task>"


def _await_chain(task: object) -> list:
    """A task's frames, outermost first, down to the innermost ``await``.

    ``Task.get_stack()`` gives only the task's own coroutine frame; a test run by a
    plugin's runner task (anyio) or awaiting a library call (``ws.recv()``) waits
    further down. Python 3.14+ says so itself (``asyncio.capture_call_graph``); before
    it, follow the coroutines' public ``cr_await`` (and its generator/async-generator
    kin), and fall back to ``get_stack()``.
    """
    frames = _call_graph(task)
    if frames:
        return frames
    coro = task.get_coro() if hasattr(task, "get_coro") else None
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


def _call_graph(task: object) -> list:
    """The task's await chain from ``asyncio.capture_call_graph`` (3.14+), outermost
    first; [] before 3.14 or when it fails."""
    mod = sys.modules.get("asyncio")
    capture = getattr(mod, "capture_call_graph", None)
    if capture is None:
        return []
    try:
        graph = capture(task)
        frames = [entry.frame for entry in graph.call_stack]
    except Exception:
        return []
    coro = task.get_coro() if hasattr(task, "get_coro") else None
    outer = getattr(coro, "cr_frame", None)
    if frames and outer is not None and frames[-1] is outer:
        frames.reverse()  # innermost first: turn it round
    return frames


def _asyncio_tasks() -> list:
    """The pending tasks of every loop. ``asyncio.all_tasks()`` needs the loop (run in
    another thread); the registries it reads are the only way from here."""
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
