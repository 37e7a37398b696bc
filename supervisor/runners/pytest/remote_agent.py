"""Sent over an execnet gateway (``gateway.remote_exec``) before xdist starts its worker.

STANDARD LIBRARY ONLY: this runs in the remote worker's interpreter, where only
pytest and pytest-xdist are installed. It receives the child plugin's source files
(nothing of ours is installed there), installs them as the modules the plugin loads
(``_netra_child_plugin``, ``_netra_transport``, ...), opens the execnet channel the
plugin reports through (:class:`transport.ExecnetTransport`, watched from the start:
a lost link ends this worker), writes the selection lists the controller had (the
tests a restart runs) to a folder of its own (the plugin removes it once it has read
them: ``NETRA_CHILD_LISTS_DIR``), and sends the channel back. xdist's own
``remote_exec`` comes next and loads the plugin by name (``-p _netra_child_plugin``).

Payload: ``{"sources": {module: text}, "env": {name: value}, "lists": {env name: list}}``.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
import types


def _install(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__file__ = f"<netra>/{name}.py"
    sys.modules[name] = module
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def serve(channel) -> None:  # type: ignore[no-untyped-def]
    payload = channel.receive()
    data = channel.gateway.newchannel()
    transport = _install("_netra_transport", payload["sources"]["transport"])
    transport.REMOTE = transport.ExecnetTransport(data)  # type: ignore[attr-defined]
    env = dict(payload["env"])
    lists = payload["lists"]
    folder = tempfile.mkdtemp(prefix="netra-remote-") if lists else ""
    if folder:  # the plugin reads the lists at its start, then removes the folder
        env["NETRA_CHILD_LISTS_DIR"] = folder
        atexit.register(shutil.rmtree, folder, True)  # if the plugin never got that far
    for name, values in lists.items():
        path = os.path.join(folder, name.lower() + ".json")
        if name == "NETRA_CHILD_IGNORE":  # paths relative to the suite's folder
            values = [os.path.join(os.getcwd(), v) for v in values]
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(values, fh)
        env[name] = path
    os.environ.update(env)
    for name in ("child_watch", "child_dump"):
        _install(f"_netra_{name}", payload["sources"][name])
    _install("_netra_child_plugin", payload["sources"]["child_plugin"])
    channel.send(data)


if __name__ == "__channelexec__":
    serve(channel)  # type: ignore[name-defined]  # noqa: F821
