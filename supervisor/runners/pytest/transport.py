"""How a child pytest process reaches its supervisor: the transports of the protocol.

Runs inside the supervised test process (see ``child_plugin.py``): STANDARD LIBRARY
ONLY. The protocol (``protocol.py``) is JSON lines both ways; what carries them is a
*transport*: any object with the four methods of a connected stream socket the child
uses, ``sendall(bytes)``, ``recv(n) -> bytes`` (``b""``: the other end is gone),
``shutdown(how)`` and ``close()``, and optionally ``lost()`` (what to do when the
supervisor's end goes away; without it the child ends its own process group).

* :func:`connect_unix`: the local transport, a Unix stream socket (the supervisor
  listens on the path in ``NETRA_CHILD_SOCKET``). Not on Windows before Python 3.x
  grows AF_UNIX there, so local runs need Linux or macOS today.
* :class:`ExecnetTransport`: a remote xdist worker's transport, an execnet channel
  over the gateway xdist itself opened (ssh, socket or popen). The xdist controller
  relays it onto a Unix connection of its own (``child_remote.py``), so the
  supervisor sees one more process, and nothing new listens anywhere.

``NETRA_CHILD_SOCKET=execnet`` selects the channel :data:`REMOTE` holds (set by
``remote_agent.py`` in the remote interpreter before pytest loads the plugin).
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import sys
import threading
import time
from typing import Any

#: the address that means "the execnet channel this interpreter was given"
EXECNET = "execnet"
#: set by ``remote_agent.py``: the :class:`ExecnetTransport` of this remote worker
REMOTE: ExecnetTransport | None = None


def connect(address: str) -> Any:
    """The transport for ``address`` (``NETRA_CHILD_SOCKET``); ``OSError`` when the
    supervisor cannot be reached."""
    if address == EXECNET:
        if REMOTE is None:
            raise OSError("no execnet channel to the supervisor in this interpreter")
        return REMOTE
    return connect_unix(address)


def connect_unix(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


class ExecnetTransport:
    """A socket's interface over an execnet channel (bytes both ways).

    The channel's callback runs in execnet's receiver thread, which also sees the link
    end: the controller closed the channel (the supervisor ended this worker: a hang,
    the run's end), or the link broke (ssh gone, the supervisor killed). Either way
    nothing records what this worker would do next, so it ends its process tree and
    itself (:meth:`lost`), even when pytest never loaded the plugin.
    """

    def __init__(self, channel: Any, grace: float = 0.5) -> None:
        self.channel = channel
        self.grace = grace  # a normal end exits by itself within this
        self._inbox: queue.Queue[bytes] = queue.Queue()
        self._ended = threading.Event()
        channel.setcallback(self._arrived, endmarker=None)

    def _arrived(self, data: Any) -> None:
        if data is None:  # the channel closed, or the gateway's link ended
            self._inbox.put(b"")
            if not self._ended.is_set():
                self._ended.set()
                threading.Thread(target=self._end_soon, name="netra-child", daemon=True).start()
        elif isinstance(data, bytes):
            self._inbox.put(data)

    def sendall(self, data: bytes) -> None:
        try:
            self.channel.send(data)
        except Exception as exc:  # execnet raises its own errors for a closed channel
            raise OSError(f"execnet channel closed: {exc}") from None

    def recv(self, size: int) -> bytes:
        data = self._inbox.get()
        if not data:
            self._inbox.put(b"")  # EOF stays EOF for the next reader
        return data

    def shutdown(self, how: int) -> None:
        pass

    def close(self) -> None:
        try:
            self.channel.close()
        except Exception:
            pass

    def _end_soon(self) -> None:
        time.sleep(self.grace)
        self.lost()

    def lost(self) -> None:
        """End everything this worker started, then the worker itself."""
        kill_tree(os.getpid())
        sys.stderr.flush()
        os._exit(3)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (``/proc``, else ``ps``), children first."""
    parents: dict[int, int] = {}
    if os.path.isdir("/proc"):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    stat = fh.read()
                parents[int(name)] = int(stat.rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    else:
        import subprocess

        try:
            out = subprocess.run(
                ["ps", "-A", "-o", "pid=,ppid="], capture_output=True, text=True, timeout=5
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        for line in out.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0].isdigit() and fields[1].isdigit():
                parents[int(fields[0])] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [p for p, pp in parents.items() if pp == parent and p not in found]
        found.extend(children)
        frontier.extend(children)
    return found


def kill_tree(pid: int) -> None:
    """SIGKILL every process below ``pid`` (stopped first, so none starts another)."""
    below = descendants(pid)
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for child in below:
            try:
                os.kill(child, sig)
            except OSError:
                pass
