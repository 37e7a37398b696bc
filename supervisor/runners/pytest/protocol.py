"""The parent's half of the pytest child protocol: names, folding, startup messages.

The child (``child_plugin.py``) sends one JSON object per line over a Unix stream
socket, one connection per pytest process (the main process and, under xdist, each
worker). Every message has ``t`` (its type):

=========  ============================================================================
``hello``  ``pid``, ``w`` (xdist worker id or ""), ``pt`` pytest and ``py`` Python versions
``sess``   session started; ``ctl`` is true in an xdist controller (it runs no tests)
``cfile``  ``i`` a collector's nodeid, ``f`` its path: its collection starts (a module: the import)
``coll``   ``ids``: the nodeids this process will run (after deselection), in order
``cerr``   ``i`` collector nodeid, ``o`` failed|skipped, ``m`` one-line reason, ``l`` text
``start``  ``i`` nodeid, ``to`` its own ``@pytest.mark.timeout`` seconds or null
``td``     ``i`` nodeid, ``sc`` session|module|class: its coming teardown also ends fixtures
           shared with other tests (a hang there is most likely theirs)
``done``   ``i`` nodeid, ``d`` seconds of the phases that simply passed, ``p`` the
           other phases (left out when none), ``s`` captured sections (when one failed)
``hb``     heartbeat (the child's daemon thread, every ``NETRA_CHILD_HEARTBEAT`` s)
``dump``   ``text``: thread stacks and pending asyncio tasks, the answer to a dump request;
           ``stacks`` and ``roots``: the same as data (``child_dump.dump``)
``fin``    ``s``: pytest's exit status, sent from ``pytest_sessionfinish`` (its terminal
           summary comes after)
``bye``    sent from ``pytest_unconfigure``: the report is written, the process exits now
=========  ============================================================================

A phase is ``{"w": when, "o": outcome, "d": seconds}`` plus ``x`` (``wasxfail``) when
the test was marked xfail, and ``m``/``l`` (short message / full text) unless it passed.
The parent sends ``{"cmd": "dump"}`` to ask for a ``dump``.
"""

from __future__ import annotations

import re
from typing import NamedTuple

PLUGIN_MODULE = "_netra_child_plugin"
SOCKET_ENV = "NETRA_CHILD_SOCKET"
SELECT_ENV = "NETRA_CHILD_SELECT"
IGNORE_ENV = "NETRA_CHILD_IGNORE"
SKIP_ENV = "NETRA_CHILD_SKIP"
FIRST_ENV = "NETRA_CHILD_FIRST"
STANDBY_ENV = "NETRA_CHILD_STANDBY"
HEARTBEAT_ENV = "NETRA_CHILD_HEARTBEAT"
FORWARD_ENV = "NETRA_CHILD_FORWARD"  # the suite's variables remote workers get too
REMOTE_ENV = "NETRA_CHILD_REMOTE"  # in a remote worker: where it runs (its hello's "r")

#: Variables of an outer pytest/xdist that must not leak into the child.
SCRUB_ENV = (
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
    "PYTEST_CURRENT_TEST",
    SELECT_ENV,
    IGNORE_ENV,
    FIRST_ENV,
)


class Folded(NamedTuple):
    """One test's phases folded into the result pytest's own summary would give (a
    tuple: one is made and dropped per test)."""

    outcome: str
    message: str
    longrepr: str
    duration: float


def fold_phases(
    phases: list[dict], sections: list | None = None, passed_for: float = 0.0
) -> Folded:
    """setup/call/teardown reports → one outcome, by pytest's rules.

    ``passed_for``: the seconds of phases that simply passed, sent as a sum instead of
    as phases (nothing but their time can change the outcome); ``phases``: the others.
    A list of every phase, the plain ones included, folds the same.

    A failing setup is ``error``; a skip in setup is ``skipped`` (``xfailed`` when the
    test was xfail); the call decides otherwise (``xpassed`` for a non-strict xpass, a
    strict one arrives as ``failed``); a failing teardown turns anything but ``failed``
    into ``error``.
    """
    if not sections:
        for p in phases:
            if p.get("o") != "passed" or "x" in p or "m" in p or "l" in p:
                break
        else:  # every phase passed plainly (nearly every test): nothing else to decide
            duration = sum([float(p.get("d") or 0.0) for p in phases])
            return Folded("passed", "", "", passed_for + duration)
    by_when = {p.get("w"): p for p in phases}
    setup, call, teardown = by_when.get("setup"), by_when.get("call"), by_when.get("teardown")
    duration = passed_for + sum(float(p.get("d") or 0.0) for p in phases)
    outcome, decisive = "passed", None
    if setup is not None and setup.get("o") == "failed":
        outcome, decisive = "error", setup
    elif setup is not None and setup.get("o") == "skipped":
        outcome, decisive = ("xfailed" if "x" in setup else "skipped"), setup
    elif call is not None:
        decisive = call
        if call.get("o") == "failed":
            outcome = "failed"
        elif call.get("o") == "skipped":
            outcome = "xfailed" if "x" in call else "skipped"
        else:
            outcome = "xpassed" if "x" in call else "passed"
    message = ""
    if decisive is not None:
        if outcome in ("xfailed", "xpassed"):
            message = str(decisive.get("x") or "") or str(decisive.get("m") or "")
        else:
            message = str(decisive.get("m") or "")
    texts = []
    if decisive is not None and decisive.get("l"):
        texts.append(str(decisive["l"]))
    if teardown is not None and teardown.get("o") == "failed":
        if outcome not in ("failed", "error"):
            outcome, message = "error", str(teardown.get("m") or "")
        if teardown.get("l"):
            texts.append("--- teardown ---\n" + str(teardown["l"]))
    for title, content in sections or ():
        texts.append(f"--- {title} ---\n{content}")
    return Folded(outcome, message, "\n\n".join(texts), duration)


def collect_outcome(outcome: str) -> str:
    """A failed/skipped collector's report as a result outcome."""
    return "skipped" if outcome == "skipped" else "error"


def file_of(nodeid: str) -> str:
    """The file part of a nodeid (``tests/test_x.py::T::test[a::b]`` → ``tests/test_x.py``)."""
    return nodeid.split("::", 1)[0]


_CONFTEST = re.compile(r"ImportError while loading conftest '(?P<path>.+?)'\.?\s*$")


def startup_failure(text: str, returncode: int | None) -> tuple[str, str]:
    """(conftest path or "", one-line reason) for a pytest that never got going.

    ``text`` is the tail of the child's combined stdout/stderr.
    """
    lines = [line.rstrip() for line in text.splitlines()]
    meaningful = [line for line in lines if line.strip()]
    for index, line in enumerate(lines):
        match = _CONFTEST.search(line)
        if match:
            path = match.group("path")
            reason = ""
            for later in lines[index + 1 :]:
                if later.startswith("E "):
                    reason = later[1:].strip()
            if not reason:
                reason = next((x.strip() for x in reversed(meaningful)), "")
            return path, f"ImportError while loading conftest {path}: {reason}".rstrip(": ")
    for line in meaningful:
        if ": error: " in line:  # argparse: "pytest: error: unrecognized arguments: -x"
            return "", line.split(": error: ", 1)[1].strip()
    for line in meaningful:
        if line.startswith("ERROR: ") and not line.startswith("ERROR: usage:"):
            return "", line[len("ERROR: ") :].strip()
    internal = [line for line in meaningful if line.startswith("INTERNALERROR>")]
    for line in reversed(internal):
        body = line[len("INTERNALERROR>") :].strip()
        if body.startswith("E "):
            return "", "internal error: " + body[1:].strip()
    if internal:
        return "", "internal error: " + internal[-1][len("INTERNALERROR>") :].strip()
    if meaningful:
        return "", meaningful[-1].strip()
    return "", describe_exit(returncode)


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "pytest did not exit"
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"pytest was killed by {name}"
    return f"pytest exited with code {returncode}"
