"""The cyclic garbage collector is off while the supervisor starts.

Start-up (imports, dataclass creation, config, plugins) allocates a few hundred
thousand objects and frees almost none: every collection of a growing young
generation walks them in vain (about a tenth of the supervisor's CPU on a 2000-test
run, ``perf``). So ``run`` starts with the collector off and, when the loop is about
to run, moves everything made so far into the permanent generation
(:func:`gc.freeze`, which later full collections skip) and turns it back on; if the
run ends before its loop (a config error), ``cli.main`` turns it on on the way out.
Only the ``run`` command's own process does this (``cli.main`` called without
``argv``): a test or a program calling ``main([...])`` in-process, and every other
command (``watch`` runs for hours), keep the collector as it is.
"""

from __future__ import annotations

import gc

_paused = False


def pause() -> None:
    """Turn the collector off for start-up (if it is on)."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume(freeze: bool = True) -> None:
    """Turn it back on if :func:`pause` turned it off; ``freeze``: first move what
    start-up made out of its way."""
    global _paused
    if not _paused:
        return
    _paused = False
    if freeze:
        gc.freeze()
    gc.enable()
