"""pytest's own output: copied (masked) to its log file, and read back to explain.

The parent never parses pytest's terminal output for results; the log's tail only
explains a pytest that could not start or died (a conftest's ImportError, a
segfault's faulthandler report).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Callable
from typing import IO

LOG_TAIL = 64 * 1024


def read_tail(path: str, size: int = LOG_TAIL) -> str:
    """The last ``size`` bytes of a log file as text ("" when unreadable)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def fatal_error(path: str) -> str:
    """The last faulthandler report in pytest's output (a segfault's stacks), or ""."""
    tail = read_tail(path)
    start = tail.rfind("Fatal Python error: ")
    return tail[start:].strip() if start >= 0 else ""


class OutputCopier:
    """pytest's output → its log file, masked, so a token a test prints never reaches
    the disk (used when the run has secrets to mask).

    It reads what piled up, then pauses: pytest writes (and flushes) once per test, and
    waking a reader for every write cost ~90 ms per 2000 trivial tests on 2 cores.
    Whole lines are masked; an unfinished one waits for its end (or pytest's).
    """

    PAUSE = 0.02  # seconds after each read
    PIPE_SIZE = 1 << 20  # a larger pipe, so pytest rarely waits for us during the pause

    def __init__(self, pipe: IO[bytes], path: str, redact: Callable[[str], str]) -> None:
        with contextlib.suppress(AttributeError, OSError):  # Linux only; a hint
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, self.PIPE_SIZE)
        self.hurry = threading.Event()  # set by wait(): no more pauses, the end is near
        self.thread = threading.Thread(
            target=self._copy, args=(pipe, path, redact), name="netra-output", daemon=True
        )
        self.thread.start()

    def _copy(self, pipe: IO[bytes], path: str, redact: Callable[[str], str]) -> None:
        fd = pipe.fileno()
        pending = b""  # an unfinished line: masked once it is whole (or at the end)
        with pipe, open(path, "ab") as out:
            while chunk := os.read(fd, 1 << 16):
                whole, newline, pending = (pending + chunk).rpartition(b"\n")
                if len(pending) > self.PIPE_SIZE:  # a line without end: do not hoard it
                    whole, newline, pending = whole + newline + pending, b"", b""
                if whole or newline:
                    out.write(self._masked(whole + newline, redact))
                    out.flush()  # a crash dump must be on disk when we read it
                self.hurry.wait(self.PAUSE)
            if pending:
                out.write(self._masked(pending, redact))

    @staticmethod
    def _masked(data: bytes, redact: Callable[[str], str]) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        return redact(text).encode("utf-8", "surrogateescape")

    def wait(self, timeout: float) -> None:
        """Until everything written so far is copied: the pipe's end (all writers gone)."""
        self.hurry.set()
        self.thread.join(timeout)
