"""Where an internal error's traceback goes, so the terminal gets one line."""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path


def report_crash(exc: BaseException) -> Path:
    """Write the traceback to a file and return its path."""
    fd, name = tempfile.mkstemp(prefix="netra-supervisor-crash-", suffix=".txt")
    with open(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    return Path(name)
