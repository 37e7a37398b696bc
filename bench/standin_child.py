#!/usr/bin/env python3
"""A stand-in for a suite's Python that speaks the child protocol without pytest.

Set a suite's ``python`` to this file (it is executable) and the supervisor starts it
as ``standin_child.py -m pytest ...``: it ignores the arguments, connects to
``NETRA_CHILD_SOCKET`` and sends what the child plugin would for ``STANDIN_TESTS``
passing tests (default 20000), ``STANDIN_BATCH`` tests (default 50) at a time with a
``STANDIN_PAUSE`` second sleep between batches (default 0.002). pytest's own cost is
out, so a profile of the supervisor shows its per-result path alone
(``bench/README.md``, "Profiling recipes").
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time


def main() -> int:
    path = os.environ.get("NETRA_CHILD_SOCKET")
    if not path:
        print("standin_child: NETRA_CHILD_SOCKET is not set", file=sys.stderr)
        return 2
    if "--collect-only" in sys.argv or "--co" in sys.argv:
        return 0
    count = int(os.environ.get("STANDIN_TESTS", "20000"))
    batch = int(os.environ.get("STANDIN_BATCH", "50"))
    pause = float(os.environ.get("STANDIN_PAUSE", "0.002"))
    ids = [f"tests/test_m{i // 100:03d}.py::test_{i % 100:03d}" for i in range(count)]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    hello = {"t": "hello", "pid": os.getpid(), "w": "", "pt": "8.3.2", "py": "3.11.7", "r": ""}
    sock.sendall((json.dumps(hello) + "\n" + '{"t":"sess","ctl":false}\n').encode())
    sock.sendall((json.dumps({"t": "coll", "ids": ids}) + "\n").encode())
    if os.environ.get("NETRA_CHILD_STANDBY") == "1":
        ids = _wait_for_go(sock, ids)
    for first in range(0, len(ids), batch):
        lines = []
        for nodeid in ids[first : first + batch]:
            quoted = json.dumps(nodeid)
            lines.append(f'{{"t":"start","i":{quoted},"to":null,"at":{time.time():.3f}}}\n')
            lines.append(f'{{"t":"done","i":{quoted},"d":0.000300}}\n')
        sock.sendall("".join(lines).encode())
        time.sleep(pause)
    sock.sendall(b'{"t":"fin","s":0}\n{"t":"bye"}\n')
    sock.close()
    return 0


def _wait_for_go(sock: socket.socket, ids: list[str]) -> list[str]:
    """A standby waits after collection for ``{"cmd":"go","sel":[...]}``."""
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            sys.exit(0)
        buf += data
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            msg = json.loads(line)
            if msg.get("cmd") == "go":
                sel = msg.get("sel")
                return list(sel) if isinstance(sel, list) else ids


if __name__ == "__main__":
    sys.exit(main())
