"""Shared by the tests that check no process outlives a run: find them by a mark.

A test gives every process of a run a unique environment variable (through the
suite's or the run's ``env``); everything the run starts inherits it, in the process
group or escaped from it, so a process carrying it after the run is a leftover.
"""

from __future__ import annotations

import time

import psutil


def marked_processes(name: str, mark: str, prefix: bool = False) -> list[psutil.Process]:
    """Live (not zombie) processes whose environment has ``name=mark`` (with
    ``prefix``: a value starting with ``mark``)."""
    found = []
    for proc in psutil.process_iter():
        try:
            value = proc.environ().get(name)
            hit = value is not None and (value.startswith(mark) if prefix else value == mark)
            if hit and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def wait_until_none(
    name: str, mark: str, within: float, prefix: bool = False
) -> list[psutil.Process]:
    """The marked processes still alive after waiting up to ``within`` seconds."""
    deadline = time.monotonic() + within
    left = marked_processes(name, mark, prefix)
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = marked_processes(name, mark, prefix)
    return left


def describe(procs: list[psutil.Process]) -> list[tuple[int, str]]:
    out = []
    for proc in procs:
        try:
            out.append((proc.pid, " ".join(proc.cmdline())[:120]))
        except psutil.Error:
            out.append((proc.pid, "?"))
    return out
