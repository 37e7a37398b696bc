"""Every process a run starts: tagged, watched over, and ended with the run.

A test may start processes that leave its process group (``start_new_session=True``,
a double-forked daemon): killing pytest's group does not end them. So:

* the supervisor makes itself a *child subreaper* (Linux ``PR_SET_CHILD_SUBREAPER``):
  a process orphaned anywhere below it is re-parented to it, not to init, and so stays
  one of its descendants;
* every process it starts carries a *run tag* in its environment
  (``NETRA_RUN_TAG=<token>/<scope>/``), which every descendant inherits, so the
  processes of one pytest attempt, one suite or the whole run can be found by scope
  (``/proc/PID/environ``) even after they escaped their group;
* a *guard* (``supervisor/guard.py``, a tiny process in a session of its own, started
  with the first tagged process) holds a pipe from the supervisor; when the pipe
  closes (the supervisor ended, even by ``SIGKILL``) it ends every process carrying
  the run's token. A deploy backend's server is covered as much as pytest.

Where the platform has no subreaper (not Linux), an orphan goes to init; it is still
found by its tag where ``psutil`` can read environments. A process that clears its own
environment *and* leaves its group escapes both nets until the run ends, when every
remaining descendant is ended (the README says so).

Imports stay cheap (psutil is imported where a process is ended): the first pytest is
started through here while the supervisor is still starting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor import guard

if TYPE_CHECKING:
    import psutil

TAG_ENV = guard.TAG_ENV
#: the supervisor's pid, so a child can watch it (pidfd) and end itself when it is gone
SUPERVISOR_PID_ENV = "NETRA_SUPERVISOR_PID"
GUARD_SCRIPT = Path(__file__).resolve().with_name("guard.py")
#: from SIGTERM to SIGKILL when ending processes
STOP_GRACE = 3.0

#: this supervisor's token: unique per process, so runs never end each other's processes
TOKEN = os.urandom(6).hex()

_lock = threading.Lock()
_guard: subprocess.Popen | None = None
_guard_pipe: int | None = None
_subreaper = False
_seen_zombies: set[int] = set()


def tag(*scope: object) -> str:
    """The tag value for a scope: ``tag("i1", "p1", "unit", "a2")``.

    Every part ends with ``/``, so the tag of a scope is a prefix of the tags of the
    scopes inside it and of nothing else (``p1/`` is not a prefix of ``p10/``).
    """
    return "".join(f"{_safe(part)}/" for part in (TOKEN, *scope))


def _safe(part: object) -> str:
    return "".join(c if c.isalnum() or c in "-_.:" else "_" for c in str(part)) or "_"


def tagged_env(env: Mapping[str, str], scope_tag: str) -> dict[str, str]:
    """``env`` with the run tag and the supervisor's pid set (an outer tag is replaced)."""
    out = dict(env)
    out[TAG_ENV] = scope_tag
    out[SUPERVISOR_PID_ENV] = str(os.getpid())
    return out


def popen(cmd: Sequence[str], *, env: Mapping[str, str], scope_tag: str, **kwargs: Any):
    """``subprocess.Popen`` in a new session, tagged; the guard (and the subreaper
    setting) follow at once, while the new process starts: a run's first pytest is
    on the critical path, and nothing it starts is orphaned within those milliseconds
    (its own watch covers the supervisor's death meanwhile)."""
    kwargs.setdefault("start_new_session", True)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.Popen(list(cmd), env=tagged_env(env, scope_tag), **kwargs)
    start_guard()
    return proc


# --------------------------------------------------------------------------- set-up


def become_subreaper() -> bool:
    """Make this process the child subreaper of everything it starts (Linux only)."""
    global _subreaper
    if _subreaper or not sys.platform.startswith("linux"):
        return _subreaper
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_child_subreaper = 36
        _subreaper = libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        _subreaper = False
    return _subreaper


def start_guard() -> None:
    """Start the guard once per supervisor (it ends our tagged processes if we die)."""
    global _guard, _guard_pipe
    if _guard is not None:
        return
    with _lock:
        if _guard is not None:
            return
        become_subreaper()
        read_end, write_end = os.pipe()  # not inheritable: only the guard gets read_end
        try:
            _guard = subprocess.Popen(
                [sys.executable, "-I", "-S", str(GUARD_SCRIPT), TOKEN],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C or hang-up of our group spares it
                close_fds=True,
            )
        except OSError:
            os.close(write_end)
            _guard = None
            return
        finally:
            os.close(read_end)
        _guard_pipe = write_end


def stop_guard() -> None:
    """At a clean end: close the pipe (the guard sweeps what is left, then exits; no
    need to wait for it). Later processes get a new token, so that sweep cannot reach
    them (a second run in the same process)."""
    global _guard, _guard_pipe, TOKEN
    with _lock:
        guard, pipe = _guard, _guard_pipe
        _guard = _guard_pipe = None
        TOKEN = os.urandom(6).hex()
    if pipe is not None:
        with contextlib.suppress(OSError):
            os.close(pipe)
    if guard is not None:  # reaped in the background: no zombie left, nobody waits
        threading.Thread(target=guard.wait, name="netra-guard-reaper", daemon=True).start()


def guard_pid() -> int | None:
    return _guard.pid if _guard is not None else None


# --------------------------------------------------------------------------- finding


def tagged_pids(scope_tag: str) -> list[int]:
    """Pids of the live processes whose run tag starts with ``scope_tag`` (not ours).

    Reads ``/proc`` directly (the guard's scan): a sweep that finds nothing, the usual
    case, costs a few milliseconds and no psutil import.
    """
    if os.path.isdir("/proc/self"):
        return guard.tagged(scope_tag)
    import psutil

    me = os.getpid()
    found = []
    for proc in psutil.process_iter():  # no /proc: slower, same answer where readable
        with contextlib.suppress(psutil.Error):
            if proc.pid != me and proc.environ().get(TAG_ENV, "").startswith(scope_tag):
                found.append(proc.pid)
    return found


def tagged(scope_tag: str) -> list[psutil.Process]:
    """Live processes whose run tag starts with ``scope_tag`` (not this process)."""
    return _processes(tagged_pids(scope_tag))


def _processes(pids: Iterable[int]) -> list[psutil.Process]:
    import psutil

    out = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            out.append(psutil.Process(pid))
    return out


def children_pids(pid: int | None = None) -> list[int]:
    """Direct children of ``pid`` (this process by default), zombies included."""
    pid = os.getpid() if pid is None else pid
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        import psutil

        with contextlib.suppress(psutil.Error):
            return [c.pid for c in psutil.Process(pid).children()]
        return []
    out: list[int] = []
    for task in tasks:
        with contextlib.suppress(OSError, ValueError):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(p) for p in fh.read().split())
    return out


def _state(pid: int) -> str:
    """A process's state letter (``Z`` for a zombie), "" when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def pipe_holders(
    pid: int, among: Iterable[psutil.Process], peers: Iterable[psutil.Process] = ()
) -> list[psutil.Process]:
    """Those of ``among`` that hold one of ``pid``'s own pipes or sockets open (not
    one it shares with ``peers``, such as an output pipe every xdist worker writes to).

    A process forked from a test process (a double-forked daemon) keeps copies of its
    file descriptors: an xdist worker's pipes to its controller among them. While one
    copy is open the controller never sees the worker's end, so the worker is not
    replaced. Such holders are ended with the worker.
    """

    def endpoints(p: int) -> set[str]:
        out = set()
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{p}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{p}/fd/{fd}")
                    if target.startswith(("pipe:", "socket:")):
                        out.add(target)
        return out

    mine = endpoints(pid)
    for peer in peers:
        if peer.pid != pid:
            mine -= endpoints(peer.pid)
    if not mine:
        return []
    return [proc for proc in among if proc.pid != pid and mine & endpoints(proc.pid)]


def tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (empty when it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


# --------------------------------------------------------------------------- ending


def end(procs: Iterable[psutil.Process], grace: float = STOP_GRACE) -> None:
    """SIGTERM (and SIGCONT, so a stopped process sees it) to each, and to what each
    started meanwhile; SIGKILL what is left after ``grace``; wait until all are gone."""
    import psutil

    procs = _with_descendants(procs)
    if not procs:
        return
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGTERM)
            proc.send_signal(signal.SIGCONT)
    _gone, alive = psutil.wait_procs(procs, timeout=grace)
    for _ in range(3):  # a process may fork while dying: take its new children too
        alive = _with_descendants(alive)
        if not alive:
            return
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        _gone, alive = psutil.wait_procs(alive, timeout=1.0)


def _with_descendants(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    import psutil

    out: dict[int, psutil.Process] = {}
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.setdefault(proc.pid, proc)
                for child in proc.children(recursive=True):
                    out.setdefault(child.pid, child)
    out.pop(os.getpid(), None)
    return list(out.values())


def end_group(proc: subprocess.Popen, grace: float = STOP_GRACE) -> None:
    """End ``proc``'s process group (it leads one: started in a new session) and every
    descendant of it, then reap ``proc`` so its exit status is known."""
    import psutil

    members = tree(proc.pid)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGCONT)
    try:
        parent = psutil.Process(proc.pid)
    except psutil.Error:
        parent = None
    # wait on the Popen itself (psutil would reap it behind subprocess's back)
    others = [p for p in members if p.pid != proc.pid]
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    if proc.returncode is None and parent is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # group members that outlived their leader
    end(others, grace=min(grace, 1.0))


def sweep(scope_tag: str, grace: float = 1.0) -> int:
    """End every process of a scope (found by tag) and what it started; reap orphans
    that died on their own. Returns how many processes were still alive."""
    found = tagged_pids(scope_tag)
    if found:
        end(_processes(found), grace)
    reap_orphans()
    return len(found)


def reap_orphans(everything: bool = False) -> None:
    """Reap zombie children nobody waits for.

    As a subreaper we inherit orphans, and their exit status is ours to collect. A
    zombie child could also be one a ``Popen`` is about to wait for (a plugin's
    ``git``), so during the run only zombies already seen at the previous call are
    reaped; ``everything`` (the run's end, nothing else running) reaps all.
    """
    global _seen_zombies
    if not _subreaper:
        return
    zombies = {pid for pid in children_pids() if _state(pid) == "Z"}
    ripe = zombies if everything else zombies & _seen_zombies
    for pid in ripe:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(pid, os.WNOHANG)
    _seen_zombies = zombies - ripe


def end_run(descendants: bool = False) -> None:
    """At the run's end: every process carrying this supervisor's tag is ended and,
    with ``descendants`` (the CLI, which owns its whole process), every descendant but
    the guard; then the guard is let go."""
    spare = {os.getpid(), guard_pid()}
    pids = {pid for pid in tagged_pids(tag()) if pid not in spare}
    if descendants:
        pids |= {p for p in children_pids() if p not in spare and _state(p) not in ("Z", "")}
    if pids:
        end(_processes(pids), grace=1.0)  # end() takes their descendants along
    reap_orphans(everything=descendants)
    stop_guard()
