"""The channel to the pytest processes: a Unix socket, one connection per process.

Every pytest process of a suite (the main one and, under xdist, each worker; a
standby has a listener of its own) connects to the socket named in its environment
and sends JSON lines (``protocol.py``). :meth:`Channel.wait` sleeps until something
arrives, a process exits (its pidfd) or the timeout passes, and hands back decoded
messages per connection, in batches: after a read it lets a few more tests' lines
pile up (for as long as ``pacing.py`` says) instead of waking once per test.

Nothing here knows what a message means or what a deadline is.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from supervisor.core.watchdog import Track

#: Bytes per socket read: 1 MiB cost an allocation and page faults on every read,
#: once per test (bench/overhead.py); 64 KiB holds hundreds of messages.
_RECV_BYTES = 65536
_RECV_ROUNDS = 16  # recv calls per wake-up and connection (up to 1 MiB)


@dataclass(eq=False)
class Conn:
    """One pytest process's connection, and what it told us about itself."""

    sock: socket.socket
    track: Track
    buf: bytes = b""
    pid: int = 0
    worker: str = ""  # the xdist worker id ("" for the main process)
    remote: str = ""  # a remote xdist worker's host: its pid is not ours to signal
    controller: bool = False  # an xdist controller: runs no tests itself
    session: bool = False  # reached pytest_sessionstart
    finished: bool = False  # sent "fin"
    exitstatus: int | None = None
    fd: int = -1

    def ask(self, cmd: str, **fields: Any) -> None:
        """Send a command (``dump``, ``pause``, ``resume``, ``go``); a closed socket is
        the process's end, which the reader notices."""
        line = json.dumps({"cmd": cmd, **fields}, separators=(",", ":"))
        with contextlib.suppress(OSError):
            self.sock.sendall(line.encode("ascii") + b"\n")


@dataclass
class Arrived:
    """What one :meth:`Channel.wait` brought: new connections, messages, ends."""

    accepted: list[Conn] = field(default_factory=list)
    messages: list[tuple[Conn, list[dict]]] = field(default_factory=list)
    closed: list[Conn] = field(default_factory=list)
    exited: bool = False  # the watched process exited
    #: the most messages one connection brought, and the seconds since the read
    #: before (how fast the busiest process talks: ``pacing.py``)
    lines: int = 0
    over: float = 0.0


def _loads(line: bytes) -> object:
    """One line's message; ``None`` for a line that is not JSON (dropped)."""
    try:
        return json.loads(line)
    except ValueError:
        return None


class Channel:
    """Listeners, connections and the selector that waits on them (one per suite run)."""

    def __init__(self, path: str, new_track) -> None:
        self.path = path
        self._new_track = new_track  # () -> Track: every connection is watched
        self.selector = selectors.DefaultSelector()
        self.listener = self.listen(path, backlog=64)
        self.selector.register(self.listener, selectors.EVENT_READ, "listen")
        self.conns: dict[int, Conn] = {}
        #: standby listener fd -> what its "go" says: the selection, the tests first
        self._go: dict[int, dict[str, list[str] | None]] = {}
        self._pidfd: int | None = None
        self._read_at = time.monotonic()  # the last wait() that brought messages

    @staticmethod
    def listen(path: str, backlog: int = 4) -> socket.socket:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(path)
            listener.listen(backlog)
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)
        return listener

    # -- what to wait for --------------------------------------------------------------
    def add_standby(
        self, listener: socket.socket, selection: list[str] | None, first: list[str]
    ) -> None:
        """A standby's listener: its connection gets ``go`` at once, with the tests to
        run (``selection``, ``None``: all) and those to run first."""
        self._go[listener.fileno()] = {"sel": selection, "first": first}
        self.selector.register(listener, selectors.EVENT_READ, "go")

    def remove_standby(self, listener: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(listener)
        self._go.pop(listener.fileno(), None)

    def watch_exit(self, pid: int) -> None:
        """Wake the moment ``pid`` exits (Linux pidfd; elsewhere the timeout does)."""
        self.unwatch_exit()
        if hasattr(os, "pidfd_open"):
            try:
                self._pidfd = os.pidfd_open(pid)
                self.selector.register(self._pidfd, selectors.EVENT_READ, "exit")
            except OSError:
                self._pidfd = None

    def unwatch_exit(self) -> None:
        if self._pidfd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None

    # -- waiting -----------------------------------------------------------------------
    def wait(self, timeout: float) -> Arrived:
        arrived = Arrived()
        for key, _ in self.selector.select(timeout):
            if key.data == "listen":
                self._accept(key.fileobj, None, arrived)
            elif key.data == "go":
                self._accept(key.fileobj, self._go.get(key.fd), arrived)
            elif key.data == "exit":
                arrived.exited = True
            else:
                self._read(key.data, arrived)
        if arrived.messages:
            now = time.monotonic()
            arrived.lines = max(len(messages) for _, messages in arrived.messages)
            arrived.over, self._read_at = now - self._read_at, now
        return arrived

    def pause_for_more(self, pause: float) -> None:
        """After a read: let ``pause`` seconds of messages pile up (one wake-up per
        batch: ``pacing.py``), and end the pause at once if the watched process exits."""
        if pause <= 0:
            return
        if self._pidfd is not None:
            select.select([self._pidfd], [], [], pause)
        else:
            time.sleep(pause)

    def _accept(
        self, listener: Any, go: dict[str, list[str] | None] | None, arrived: Arrived
    ) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn = Conn(sock, self._new_track(), fd=sock.fileno())
            if go is not None:  # what to run rides in the message (not known at its start)
                conn.ask("go", **go)
            sock.setblocking(False)
            self.conns[conn.fd] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)
            arrived.accepted.append(conn)

    def _read(self, conn: Conn, arrived: Arrived) -> None:
        chunks: list[bytes] = []
        eof = False
        for _ in range(_RECV_ROUNDS):  # what piled up while we waited, within reason
            try:
                chunk = conn.sock.recv(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            if not chunk:
                eof = True
                break
            chunks.append(chunk)
            if len(chunk) < _RECV_BYTES:
                break
        if chunks:
            arrived.messages.append((conn, self._decode(conn, b"".join(chunks))))
        if eof:
            self.close(conn)
            arrived.closed.append(conn)

    @staticmethod
    def _decode(conn: Conn, chunk: bytes) -> list[dict]:
        """Complete lines → messages: one decode for the whole read (the lines joined as
        one JSON array: one call into the C decoder instead of one per line), line by
        line only when some line is not JSON. (msgspec decoded it in about 60 % of the
        time, 1.5-2 us a test, but importing it cost 35 ms: more than it saved in a
        run of fewer than ~20 000 results.)"""
        data = conn.buf + chunk
        end = data.rfind(b"\n")
        if end < 0:
            conn.buf = data
            return []
        conn.buf = data[end + 1 :]
        body = data[:end].replace(b"\n\n", b"\n").strip(b"\n")
        if not body:
            return []
        try:
            decoded = json.loads(b"[" + body.replace(b"\n", b",") + b"]")
        except ValueError:
            decoded = [_loads(line) for line in body.split(b"\n")]
        return [msg for msg in decoded if type(msg) is dict]

    # -- ending ------------------------------------------------------------------------
    def close(self, conn: Conn) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(conn.sock)
        self.conns.pop(conn.fd, None)
        with contextlib.suppress(OSError):
            conn.sock.close()

    def close_all(self) -> list[Conn]:
        """Close every connection (their processes are ending); returns them."""
        conns = list(self.conns.values())
        for conn in conns:
            self.close(conn)
        return conns

    def shutdown(self) -> None:
        self.close_all()
        self.unwatch_exit()
        self._go.clear()  # standby listeners belong to their standby, which closes them
        with contextlib.suppress(OSError):
            self.listener.close()
        self.selector.close()
