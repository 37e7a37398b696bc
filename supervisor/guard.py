"""The guard: ends a run's processes when its supervisor is gone, however it went.

Started by :mod:`supervisor.procs` as ``python -I -S guard.py TOKEN`` in a session of
its own (a Ctrl-C or hang-up of the supervisor's terminal does not reach it), with a
pipe from the supervisor on stdin. It blocks reading that pipe, which costs nothing;
the read returns end-of-file the moment the supervisor's end closes: at its normal
end, or because the kernel closed it (``SIGKILL``, a crash, a lost tmux session).
Then every process whose environment carries ``NETRA_RUN_TAG=TOKEN/...`` is ended:
the pytest processes, what tests started (in their group or escaped from it) and the
``local`` deploy backend's server.

Standard library only, and run with ``-S``: it must start fast and work in any venv.
"""

from __future__ import annotations

import os
import signal
import sys
import time

TAG_ENV = "NETRA_RUN_TAG"


def tagged(scope_tag: str) -> list[int]:
    """Pids (not this process) whose environment has a run tag starting with
    ``scope_tag`` (``TOKEN/`` for a whole run). Also what :mod:`supervisor.procs`
    sweeps with: one scan of ``/proc``, without psutil."""
    needle = f"{TAG_ENV}={scope_tag}".encode()
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as fh:
                data = fh.read()
        except OSError:  # gone, or not ours to read
            continue
        if data.startswith(needle) or b"\0" + needle in data:
            found.append(int(name))
    return found


def end_all(token: str, grace: float = 0.5, within: float = 3.0) -> None:
    """SIGTERM (+SIGCONT), then SIGKILL after ``grace``; again until none is left (a
    process may fork while it dies) or ``within`` seconds passed."""
    deadline = time.monotonic() + within
    signals = (signal.SIGTERM, signal.SIGKILL)
    round_ = 0
    while time.monotonic() < deadline:
        pids = tagged(f"{token}/")
        if not pids:
            return
        sig = signals[min(round_, 1)]
        for pid in pids:
            try:
                os.kill(pid, sig)
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        round_ += 1
        time.sleep(grace if round_ == 1 else 0.05)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not os.path.isdir("/proc"):
        return 2  # nothing to find processes with: the supervisor's own sweeps must do
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    end_all(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
