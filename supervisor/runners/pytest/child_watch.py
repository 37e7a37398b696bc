"""The child's watch on its supervisor: when it is gone, nothing of its run goes on.

Runs inside the supervised test process (see ``child_plugin.py``): STANDARD LIBRARY
ONLY. Started at the plugin's import, before conftests: a thread waits on a pidfd of
the supervisor (no wake-ups) or polls it every 0.25 s, and when the supervisor ends,
however it ended, it ends every process of the run and then its own process group.
"""

from __future__ import annotations

import os
import signal
import threading
import time

TAG_ENV = "NETRA_RUN_TAG"
SUPERVISOR_PID_ENV = "NETRA_SUPERVISOR_PID"


def _own_session() -> bool:
    """The supervisor starts pytest in a new session: only then is our process group
    ours to end (a pytest someone started by hand with our variables never kills
    their shell)."""
    try:
        return os.getpgrp() == os.getsid(0)
    except OSError:
        return False


def end_own_group() -> None:
    if _own_session():
        try:
            os.killpg(os.getpgrp(), signal.SIGKILL)
        except OSError:
            pass


def end_everything() -> None:
    """The supervisor is gone: end every process of its run, then our own group.

    Processes of the run carry ``NETRA_RUN_TAG=<token>/...`` in their environment
    (the supervisor sets it; everything started below inherits it), so those that
    left our process group are found too (``/proc``; elsewhere only the group goes),
    and so is a deploy backend's local server.
    """
    if not _own_session():
        return
    token = os.environ.get(TAG_ENV, "").split("/", 1)[0]
    if token and os.path.isdir("/proc"):
        needle = f"{TAG_ENV}={token}/".encode()
        me = os.getpid()
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) == me:
                continue
            try:
                with open(f"/proc/{name}/environ", "rb") as fh:
                    data = fh.read()
                if data.startswith(needle) or b"\0" + needle in data:
                    os.kill(int(name), signal.SIGKILL)
            except OSError:
                continue
    end_own_group()


def _supervisor_gone(pid: int) -> bool:
    """Without a pidfd: the process is gone or a zombie (killed, not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


_watched = {"pid": 0, "fd": -1}  # the supervisor, and a pidfd of it when we have one


def supervisor_ends_within(timeout: float) -> bool:
    """Whether the supervisor is gone now or within ``timeout`` seconds."""
    import select

    pid, fd = _watched["pid"], _watched["fd"]
    if pid <= 0:
        return False
    if fd >= 0:
        return bool(select.select([fd], [], [], timeout)[0])
    end = time.monotonic() + timeout
    while not _supervisor_gone(pid):
        if time.monotonic() >= end:
            return False
        time.sleep(0.05)
    return True


def _watch() -> None:
    """Until the supervisor is gone, however it went; then end everything.

    A pidfd becomes readable when its process exits, so the thread sleeps in the
    kernel and costs nothing; without one (not Linux, old kernels) it polls every
    0.25 s. Unlike the socket, this does not depend on anyone reading or writing.
    """
    while not supervisor_ends_within(3600.0 if _watched["fd"] >= 0 else 0.25):
        pass
    end_everything()


def start_watch() -> None:
    try:
        pid = int(os.environ.get(SUPERVISOR_PID_ENV) or 0)
    except ValueError:
        pid = 0
    if pid <= 0 or pid == os.getpid():
        return
    _watched["pid"] = pid
    if hasattr(os, "pidfd_open"):
        try:
            _watched["fd"] = os.pidfd_open(pid)
        except OSError:
            _watched["fd"] = -1
    if _supervisor_gone(pid):
        end_everything()  # it died before we got here
    threading.Thread(target=_watch, name="netra-child", daemon=True).start()
