"""Is a run's supervisor still there? A lock it holds for as long as it lives.

A supervisor that is SIGKILLed (the OOM killer, a lost VM, ``kill -9``) cannot write
its run's end: the ``runs`` row keeps ``status = 'running'`` and no ``finished_at``, and
a watcher would show it running forever. So ``run`` takes an exclusive ``flock`` on
``logs/run-N/supervisor.lock`` beside the history database and keeps the descriptor
open (not inherited by the processes it starts) until it ends; the kernel releases it
when the process dies, however it dies. A reader that finds the file but not the lock
knows the supervisor is gone.

It can only tell on the machine (and file system) the run writes to: no lock file (a
copied database, a run by an older version, no ``flock`` on this platform) means
"cannot tell", never "gone".
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, no claim either way
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "supervisor.lock"

#: What a watcher shows as the end of a run whose supervisor is gone.
GONE_REASON = "the supervisor is gone (killed?): the run did not finish"


def lock_path(db_path: str | Path, run_id: int) -> Path:
    """The lock of run ``run_id`` of the database at ``db_path`` (in its log folder)."""
    return Path(db_path).parent / "logs" / f"run-{run_id}" / LOCK_NAME


def hold(db_path: str | Path, run_id: int) -> int | None:
    """Take the run's lock for as long as this process lives (or :func:`release`);
    the descriptor, or ``None`` where it cannot be taken (then nobody can tell)."""
    if fcntl is None:
        return None
    path = lock_path(db_path, run_id)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inheritable (PEP 446)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def release(fd: int | None) -> None:
    """Let the lock go (the run has written its end)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


def gone(db_path: str | Path, run_id: int) -> bool:
    """True when run ``run_id`` has a lock file that nobody holds: its supervisor
    ended without writing the run's end. False when it is held, or cannot tell."""
    if fcntl is None:
        return False
    try:
        fd = os.open(lock_path(db_path, run_id), os.O_RDONLY)
    except OSError:
        return False  # no lock file: cannot tell
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False  # held: it runs
    finally:
        os.close(fd)  # closing drops the shared lock we may have taken
    return True
