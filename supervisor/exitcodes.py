"""The process exit codes of the CLI contract, in one place.

A utility at the bottom of the layers (standard library only): the loop decides
OK/FAILED/INTERRUPTED, the session and the CLI add USAGE and INTERNAL, and scripts
and plugins (``netra_run_finished``'s ``exit_code``) read the same numbers.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """What ``netra-supervisor`` exits with (documented in the README; never renumber)."""

    #: the stop condition was met with every selected test passing
    OK = 0
    #: the run ended with failures, hangs or crashes left
    FAILED = 1
    #: usage or configuration error: one clear message, nothing run
    USAGE = 2
    #: internal error (a traceback file is written)
    INTERNAL = 3
    #: interrupted (Ctrl-C, SIGTERM); results so far are kept
    INTERRUPTED = 130

    def __str__(self) -> str:
        # The number, as Python 3.11+ prints an IntEnum; 3.10 would say "ExitCode.OK".
        return str(self.value)
