"""In the xdist controller: remote workers report to the supervisor through it.

Runs inside the supervised test process (the controller of ``-d --tx ...``, see
``child_plugin.py``): standard library, pytest and execnet (xdist's own dependency).
For each gateway xdist opens to a worker that cannot reach the supervisor's Unix
socket (``ssh=``, ``socket=``, ``popen`` with another ``python`` or ``chdir``), before
xdist starts its worker there:

* ``remote_agent.py`` goes over the gateway with the child plugin's sources and the
  selection lists this controller was given (a restart's remaining tests travel
  here, never as command-line nodeids: xdist would try to rsync them);
* the channel it sends back is relayed onto a new Unix connection to the supervisor,
  both ways, so the supervisor watches, dumps and ends a remote worker as it does a
  local one. The supervisor ends a remote worker by closing that connection: the
  relay closes the channel, and the worker ends its process tree and itself.

The only network path is the gateway xdist opened (ssh, usually): no new listener.

xdist also makes command-line paths relative to its rsync roots for such workers and
refuses those outside them; here they are passed as they are, relative to the
suite's folder, which the remote ``chdir`` mirrors (README: "Running across machines").
"""

from __future__ import annotations

import json
import os
import socket
import threading
from typing import Any

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCES = ("transport", "child_watch", "child_dump", "child_plugin")
_LISTS = ("NETRA_CHILD_SELECT", "NETRA_CHILD_SKIP", "NETRA_CHILD_FIRST", "NETRA_CHILD_IGNORE")
#: names of the variables (comma-separated) the remote workers get from this process
FORWARD_ENV = "NETRA_CHILD_FORWARD"
_SETUP_TIMEOUT = 120.0  # seconds for the agent to answer (a slow ssh login included)


def needs_relay(spec: Any) -> bool:
    """A worker that does not inherit our environment and Unix socket (plain local
    ``popen`` workers, ``workers = N``, report directly)."""
    return not (spec.popen and not spec.python and not spec.chdir and not spec.via)


def worker_label(spec: Any) -> str:
    if spec.ssh:
        return str(spec.ssh).split()[-1]
    if spec.vagrant_ssh:
        return str(spec.vagrant_ssh)
    if spec.socket:
        return str(spec.socket)
    return f"popen {spec.python}" if spec.python else "popen"


class Relay:
    """The controller's plugin for remote workers (registered with xdist's hooks)."""

    def __init__(self, socket_path: str, env: dict[str, str]) -> None:
        self.socket_path = socket_path
        self.env = env
        self.sources = {}
        for name in _SOURCES:
            with open(os.path.join(_HERE, f"{name}.py"), encoding="utf-8") as fh:
                self.sources[name] = fh.read()
        with open(os.path.join(_HERE, "remote_agent.py"), encoding="utf-8") as fh:
            self.agent = fh.read()
        self.lists: dict[str, list] = {}
        for name in _LISTS:
            path = os.environ.get(name)
            if path:
                with open(path, encoding="utf-8") as fh:
                    self.lists[name] = list(json.load(fh))
        if "NETRA_CHILD_IGNORE" in self.lists:
            self.lists["NETRA_CHILD_IGNORE"] = [
                os.path.relpath(p) for p in self.lists["NETRA_CHILD_IGNORE"]
            ]

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_newgateway(self, gateway: Any) -> None:
        spec = gateway.spec
        if not needs_relay(spec):
            return
        env = {
            **self.env,
            "NETRA_CHILD_SOCKET": "execnet",
            "NETRA_CHILD_REMOTE": worker_label(spec),
        }
        boot = gateway.remote_exec(self.agent)
        boot.send({"sources": self.sources, "env": env, "lists": self.lists})
        data = boot.receive(timeout=_SETUP_TIMEOUT)
        boot.waitclose(timeout=_SETUP_TIMEOUT)  # xdist's remote_exec needs the main thread
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.socket_path)
        data.setcallback(lambda item: _forward(sock, item), endmarker=None)
        threading.Thread(target=_back, args=(sock, data), name="netra-child", daemon=True).start()


def _forward(sock: socket.socket, item: Any) -> None:
    """Worker → supervisor (in execnet's receiver thread); ``None``: the link ended."""
    try:
        if item is None:
            sock.shutdown(socket.SHUT_RDWR)
        else:
            sock.sendall(item)
    except OSError:
        pass


def _back(sock: socket.socket, data: Any) -> None:
    """Supervisor → worker; the supervisor closing the connection ends the worker."""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            chunk = b""
        if not chunk:
            try:
                data.close()
            except Exception:
                pass
            sock.close()
            return
        try:
            data.send(chunk)
        except Exception:
            sock.close()
            return


def keep_paths(roots: Any, args: list[str]) -> list[str]:
    """Replaces ``xdist.workermanage.make_reltoroot``: arguments stay as given
    (absolute paths inside our folder become relative to it)."""
    out = []
    here = os.getcwd()
    for arg in args:
        path, sep, rest = arg.partition("::")
        if os.path.isabs(path) and path.startswith(here + os.sep):
            arg = os.path.relpath(path, here) + sep + rest
        out.append(arg)
    return out


def install(config: pytest.Config, socket_path: str) -> None:
    """Register the relay when this pytest is an xdist controller with ``--tx``
    workers that need one."""
    specs = getattr(config.option, "tx", None) or []
    if os.environ.get("PYTEST_XDIST_WORKER") or not specs:
        return
    import execnet
    import xdist.workermanage  # type: ignore[import-untyped]

    if not any(needs_relay(execnet.XSpec(_without_count(s))) for s in specs):
        return
    xdist.workermanage.make_reltoroot = keep_paths
    # the suite's own environment ([run] env, [[suite]] env, the [auth] token) goes
    # to the remote workers too: over the gateway, like everything else
    names = {"NETRA_CHILD_HEARTBEAT", *os.environ.get(FORWARD_ENV, "").split(",")}
    env = {k: os.environ[k] for k in names if k and k in os.environ}
    config.pluginmanager.register(Relay(socket_path, env), "netra-relay")


def _without_count(spec: str) -> str:
    head, star, rest = spec.partition("*")
    return rest if star and head.isdigit() else spec
