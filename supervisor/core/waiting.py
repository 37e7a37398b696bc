"""Where a hung or crashed test was waiting, in one line; and dumps a person can read.

A hang dump is 100+ lines of pytest and pluggy frames with the one line that matters
deep inside. This module picks that line from the stacks the test process sent
(``runners/pytest/child_dump.py``: plain data, outermost frame first) or from the
faulthandler report of a crash: the innermost frame in the project's own code (under
the suite's rootdir, not in an installed library or the standard library) and the
innermost frame of all, e.g.::

    at tests/test_p1_critical.py:90 in test_the_agent_stream_completes: agent_ws.recv()
    → websockets/sync/messages.py:90 frames.get

For an asyncio test the stack is the test's task followed through its awaits; a hang
in a fixture names the fixture; a hang while importing names the import's line.
:func:`fold_dump` folds the test runner's own frames of a text dump and puts the
test's thread or task first. Plain code over plain data: no processes, no files (the
caller passes a line reader where source lines are wanted).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

#: how frames of the test runner itself are recognised (folded, never "the project's")
_TOOL_PARTS = ("/_pytest/", "/pluggy/", "/pytest/__main__.py", "/supervisor/runners/pytest/")
_TOOL_NAMES = ("runpy.py", "_netra_child_plugin.py")
_TOOL_FROZEN = ("<frozen importlib._bootstrap", "<frozen runpy>")
_SITE_PARTS = ("/site-packages/", "/dist-packages/")
_STDLIB = re.compile(r"/lib/python\d+\.\d+/")
_OWN_WIDTH = 80  # characters of the project's own expression shown
_LEAF_WIDTH = 40

OWN, LIB, STDLIB, TOOL, OTHER = "own", "lib", "stdlib", "tool", "other"


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    func: str
    code: str = ""  # the whole source line, stripped
    expr: str = ""  # the part of it being executed (Python 3.11+), else ""


@dataclass(frozen=True)
class Stack:
    kind: str  # "thread" | "task"
    name: str
    frames: tuple[Frame, ...]  # outermost first
    main: bool = False


@dataclass(frozen=True)
class Roots:
    """Folders that say whose code a frame is (from the test process)."""

    rootdir: str = ""
    site: tuple[str, ...] = ()
    stdlib: tuple[str, ...] = ()
    tool: tuple[str, ...] = ()  # netra's own child-side folder


@dataclass(frozen=True)
class Waiting:
    own: Frame | None  # innermost frame of the project's own code
    leaf: Frame | None  # innermost frame of all
    fixture: str = ""
    fixture_when: str = ""  # setup | teardown
    stack: str = ""  # the thread or task it was found in
    called: str = ""  # the function ``own`` called (the next frame in), if any


# --------------------------------------------------------------------------- data in


def stacks_from(data: object) -> list[Stack]:
    """The child's ``stacks`` (JSON) as :class:`Stack`; anything malformed is dropped."""
    out: list[Stack] = []
    if not isinstance(data, list):
        return out
    for item in data:
        if not isinstance(item, Mapping):
            continue
        frames = tuple(
            Frame(
                file=str(f.get("file") or ""),
                line=_int(f.get("line")),
                func=str(f.get("func") or ""),
                code=str(f.get("code") or ""),
                expr=str(f.get("expr") or ""),
            )
            for f in item.get("frames") or ()
            if isinstance(f, Mapping)
        )
        out.append(
            Stack(
                kind=str(item.get("kind") or "thread"),
                name=str(item.get("name") or ""),
                frames=frames,
                main=bool(item.get("main")),
            )
        )
    return out


def roots_from(data: object) -> Roots:
    if not isinstance(data, Mapping):
        return Roots()

    def paths(key: str) -> tuple[str, ...]:
        value = data.get(key)
        return tuple(str(p) for p in value if p) if isinstance(value, list) else ()

    netra = data.get("netra")
    return Roots(
        rootdir=str(data.get("rootdir") or ""),
        site=paths("site"),
        stdlib=paths("stdlib"),
        tool=(str(netra),) if netra else (),
    )


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload,no-any-return]
    except (TypeError, ValueError):
        return 0


# --------------------------------------------------------------------------- whose code


def _under(path: str, folder: str) -> bool:
    folder = folder.rstrip("/")
    return bool(folder) and (path == folder or path.startswith(folder + "/"))


def whose(path: str, roots: Roots) -> str:
    """``tool`` (pytest, pluggy, runpy, importlib's bootstrap, netra's child side),
    ``lib`` (installed), ``stdlib``, ``own`` (under the rootdir) or ``other``."""
    if path.startswith(_TOOL_FROZEN) or path.rsplit("/", 1)[-1] in _TOOL_NAMES:
        return TOOL
    if any(part in path for part in _TOOL_PARTS) or any(_under(path, t) for t in roots.tool):
        return TOOL
    if any(_under(path, d) for d in roots.site) or any(p in path for p in _SITE_PARTS):
        return LIB
    if any(_under(path, d) for d in roots.stdlib) or path.startswith("<"):
        return STDLIB
    if roots.rootdir and _under(path, roots.rootdir):
        return OWN
    if not roots.stdlib and _STDLIB.search(path):
        return STDLIB
    return OTHER


def short_path(path: str, roots: Roots) -> str:
    """The path as a person names it: ``tests/x.py``, ``websockets/sync/messages.py``,
    ``threading.py``."""
    bases = [roots.rootdir, *roots.site, *roots.stdlib]
    best = max((b.rstrip("/") for b in bases if b and _under(path, b)), key=len, default="")
    if best:
        return path[len(best) + 1 :]
    for part in _SITE_PARTS:
        if part in path:
            return path.split(part, 1)[1]
    match = _STDLIB.search(path)
    return path[match.end() :] if match else path


# --------------------------------------------------------------------------- picking


def test_name(nodeid: str) -> tuple[str, str]:
    """(file, function) of a nodeid: ``("tests/a.py", "test_x")`` for
    ``tests/a.py::Cls::test_x[1]``; ("tests/a.py", "") for a file."""
    file, _, rest = nodeid.partition("::")
    func = rest.rsplit("::", 1)[-1].split("[", 1)[0] if rest else ""
    return file, func


def _has_func(stack: Stack, func: str, roots: Roots) -> bool:
    return bool(func) and any(
        f.func == func and whose(f.file, roots) in (OWN, OTHER) for f in stack.frames
    )


def _own(stack: Stack, roots: Roots) -> Frame | None:
    return next((f for f in reversed(stack.frames) if whose(f.file, roots) == OWN), None)


def _in_event_loop(stack: Stack) -> bool:
    return any("/asyncio/" in f.file and f.func.startswith("run_") for f in stack.frames)


def pick_stack(stacks: Sequence[Stack], roots: Roots, nodeid: str) -> Stack | None:
    """The test's own stack: the task or thread running the test function (a task
    first: an asyncio test waits there, its thread only in the event loop); else the
    main thread; else the first stack with the project's code in it."""
    _, func = test_name(nodeid)
    tasks = [s for s in stacks if s.kind == "task"]
    threads = [s for s in stacks if s.kind != "task"]
    mains = [s for s in threads if s.main] or threads[:1]
    for group in (tasks, threads):
        for stack in group:
            if _has_func(stack, func, roots):
                if stack.kind != "task" and _in_event_loop(stack):
                    # a sync test that runs a loop itself (asyncio.run): its tasks wait
                    waiting = [t for t in tasks if _own(t, roots) is not None]
                    if waiting:
                        return waiting[0]
                return stack
    for stack in mains:
        if _own(stack, roots) is not None and not _in_event_loop(stack):
            return stack
    for stack in (*tasks, *mains, *threads):
        if _own(stack, roots) is not None:
            return stack
    return mains[0] if mains else None


def _fixture(stack: Stack, roots: Roots) -> tuple[str, str]:
    """(fixture, setup|teardown) when the stack is inside a fixture pytest called."""
    found = ("", "")
    frames = stack.frames
    for i, frame in enumerate(frames[:-1]):
        if not frame.file.endswith("fixtures.py") or whose(frame.file, roots) != TOOL:
            continue
        if frame.func == "call_fixture_func":
            found = (frames[i + 1].func, "setup")
        elif frame.func == "_teardown_yield_fixture":
            found = (frames[i + 1].func, "teardown")
    return found


def find_waiting(stacks: Sequence[Stack], roots: Roots, nodeid: str) -> Waiting | None:
    """Where the test (or the import of a file, ``nodeid`` being the file) waits."""
    stack = pick_stack(stacks, roots, nodeid)
    if stack is None or not stack.frames:
        return None
    fixture, when = _fixture(stack, roots)
    own = _own(stack, roots)
    called = ""
    if own is not None:
        at = max(i for i, f in enumerate(stack.frames) if f is own)
        if at + 1 < len(stack.frames):
            called = stack.frames[at + 1].func
    return Waiting(own, stack.frames[-1], fixture, when, stack.name, called)


# --------------------------------------------------------------------------- the line


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _no_comment(text: str) -> str:
    """The code without a trailing ``# comment`` (a ``#`` inside quotes stays)."""
    quote = ""
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#":
            return text[:i].rstrip()
    return text


def _callee(text: str) -> str:
    """``frames.get`` of ``frame = self.frames.get(block=True)``; ``await get_waiter``
    of ``await self.get_waiter``; the code itself when it calls nothing."""
    text = _no_comment(text)
    awaited = text.startswith("await ") or " await " in text
    match = re.search(r"(?<![\w.])([A-Za-z_][\w.]*)\s*\(", text)
    if match:
        body = match.group(1)
    else:
        body = text.split("await ", 1)[1] if awaited else text
    body = body[len("self.") :] if body.startswith("self.") else body
    return ("await " if awaited else "") + _clip(body, _LEAF_WIDTH)


def call_in(code: str, func: str) -> str:
    """The call of ``func`` in a line of code, with its arguments (and ``await``):
    ``agent_ws.recv()`` of ``seen.append(json.loads(agent_ws.recv())["type"])``. What
    Python 3.11+ gives as the frame's executing expression; on 3.10 (no column
    positions) it is found by the callee's name. "" when the line has no such call."""
    if not func or not func.isidentifier():
        return ""
    match = re.search(rf"(?<![\w.])((?:[A-Za-z_]\w*\s*\.\s*)*{re.escape(func)})\s*\(", code)
    if match is None:
        return ""
    depth, quote, end = 0, "", -1
    for i in range(match.end() - 1, len(code)):
        char = code[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                end = i + 1
                break
    if end < 0:
        return ""
    call = code[match.start() : end]
    return "await " + call if code[: match.start()].rstrip().endswith("await") else call


def _own_text(frame: Frame, called: str = "") -> str:
    expr = frame.expr
    if expr and "(" not in expr and not expr.startswith("await"):
        expr = ""  # a bare name (3.13 gives `b` for a `with b:` stuck entering): the line
    text = _no_comment(expr or call_in(frame.code, called) or frame.code)
    if len(text) > _OWN_WIDTH:
        match = re.match(r"((?:await )?[\w.]+)\s*\(", text)
        text = f"{match.group(1)}(…)" if match else _clip(text, _OWN_WIDTH)
    return text


def waiting_line(waiting: Waiting, roots: Roots) -> str:
    """``at FILE:LINE in FUNC: CODE → LIBFILE:LINE CALL`` (see the module's doc)."""
    own, leaf = waiting.own, waiting.leaf
    main = own or leaf
    if main is None:
        return ""
    func = main.func
    if waiting.fixture:
        if func == waiting.fixture:
            func = f"fixture {func} ({waiting.fixture_when})"
        else:
            func += f" (in fixture {waiting.fixture}, {waiting.fixture_when})"
    line = f"at {short_path(main.file, roots)}:{main.line} in {func}"
    text = _own_text(main, waiting.called if main is own else "")
    if text:
        line += f": {text}"
    if own is not None and leaf is not None and leaf != own:
        leaf_text = _callee(leaf.expr or leaf.code) if (leaf.expr or leaf.code) else leaf.func
        line += f" → {short_path(leaf.file, roots)}:{leaf.line} {leaf_text}"
    return line


def where_from_answer(answer: Mapping[str, object] | None, nodeid: str) -> str:
    """The waiting line of a dump answer (``{"stacks", "roots"}``), or ""."""
    if not answer:
        return ""
    roots = roots_from(answer.get("roots"))
    waiting = find_waiting(stacks_from(answer.get("stacks")), roots, nodeid)
    return "" if waiting is None else waiting_line(waiting, roots)


# --------------------------------------------------------------------------- crashes

_FAULT_FRAME = re.compile(r'^\s+File "(?P<file>[^"]*)", line (?P<line>\d+),? in (?P<func>\S+)')


def parse_faulthandler(text: str) -> list[Stack]:
    """faulthandler's report (``Current thread 0x… (most recent call first):``) as
    stacks, outermost frame first; the crashing thread marked ``main``."""
    stacks: list[Stack] = []
    name, current = "", False
    frames: list[Frame] = []

    def close() -> None:
        if name:
            stacks.append(Stack("thread", name, tuple(reversed(frames)), current))

    for raw in text.splitlines():
        if raw.startswith(("Current thread ", "Thread ")):
            close()
            name, frames, current = raw.rstrip(":"), [], raw.startswith("Current")
            continue
        match = _FAULT_FRAME.match(raw)
        if match and name:
            frames.append(Frame(match["file"], int(match["line"]), match["func"]))
    close()
    return stacks


def rootdir_of(stacks: Iterable[Stack], nodeid: str) -> str:
    """The rootdir implied by a frame of the test's own file (nodeids are relative to
    it): ``/p`` when ``/p/tests/a.py`` runs ``tests/a.py::test_x``."""
    file, _ = test_name(nodeid)
    if not file:
        return ""
    for stack in stacks:
        for frame in stack.frames:
            if frame.file.endswith("/" + file):
                return frame.file[: -len(file) - 1]
    return ""


def crash_where(fatal: str, nodeid: str, getline: Callable[[str, int], str]) -> str:
    """The waiting line of a crash's faulthandler report (the crashing thread, the
    test's own frame); ``getline(file, line)`` reads source lines."""
    stacks = parse_faulthandler(fatal)
    if not stacks:
        return ""
    roots = Roots(rootdir=rootdir_of(stacks, nodeid))
    current = [s for s in stacks if s.main] or stacks[:1]
    waiting = find_waiting(current, roots, nodeid)
    if waiting is None:
        return ""

    def filled(frame: Frame | None) -> Frame | None:
        if frame is None or frame.code:
            return frame
        code = getline(frame.file, frame.line).strip()
        return Frame(frame.file, frame.line, frame.func, code)

    waiting = Waiting(
        filled(waiting.own), filled(waiting.leaf), waiting.fixture, waiting.fixture_when
    )
    return waiting_line(waiting, roots)


def signal_name(text: str) -> str:
    """``SIGSEGV`` from "pytest was killed by SIGSEGV" / "Fatal Python error:
    Segmentation fault"; "" when none is named."""
    match = re.search(r"\bSIG[A-Z]+\b", text)
    if match:
        return match.group(0)
    fatal = {"Segmentation fault": "SIGSEGV", "Aborted": "SIGABRT", "Bus error": "SIGBUS"}
    for words, name in fatal.items():
        if f"Fatal Python error: {words}" in text:
            return name
    return ""


# --------------------------------------------------------------------------- folding

_HEADER = re.compile(r"^\S")
_FRAME_LINE = re.compile(r'^\s+File "(?P<file>[^"]*)", line \d+,? in (?P<func>\S+)')


def _is_test_frame(file: str, func: str) -> bool:
    kind = whose(file, Roots())
    return func.startswith("test") and kind not in (TOOL, LIB, STDLIB)


def fold_dump(dump: str) -> str:
    """The dump as a person reads it: runs of pytest, pluggy, runpy and importlib
    bootstrap frames (and netra's own) folded to ``… 23 pytest frames …``, and the
    test's task or thread first. The stored dump keeps everything."""
    sections: list[list[str]] = [[]]
    for line in dump.splitlines():
        if _HEADER.match(line):  # a thread, a task, faulthandler's first line
            sections.append([line])
        else:
            sections[-1].append(line)
    sections = [s for s in sections if s]
    test_at = next(
        (i for i, s in enumerate(sections) if s[0].startswith("<Task") and _has_test(s)),
        next((i for i, s in enumerate(sections) if _has_test(s)), None),
    )
    head = 1 if sections and sections[0][0].startswith("Fatal Python error") else 0
    if test_at is not None and test_at > head:
        sections.insert(head, sections.pop(test_at))
    out: list[str] = []
    for section in sections:
        out.extend(_fold(section))
    return "\n".join(out)


def _has_test(section: list[str]) -> bool:
    for line in section:
        match = _FRAME_LINE.match(line)
        if match and _is_test_frame(match["file"], match["func"]):
            return True
    return False


def _fold(section: list[str]) -> list[str]:
    """One section with its runs of two or more tool frames folded."""
    entries: list[tuple[bool, list[str]]] = []  # (a tool frame, its lines)
    for line in section:
        match = _FRAME_LINE.match(line)
        if match:
            entries.append((whose(match["file"], Roots()) == TOOL, [line]))
        elif entries and line.startswith("    "):
            entries[-1][1].append(line)  # the frame's source (or caret) line
        else:
            entries.append((False, [line]))
    out: list[str] = []
    i = 0
    while i < len(entries):
        j = i
        while j < len(entries) and entries[j][0]:
            j += 1
        if j - i >= 2:
            indent = re.match(r"\s*", entries[i][1][0]).group(0)  # type: ignore[union-attr]
            out.append(f"{indent}… {j - i} pytest frames …")
            i = j
            continue
        out.extend(entries[i][1])
        i += 1
    return out
