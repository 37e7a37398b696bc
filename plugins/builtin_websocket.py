"""Built-in plugin: the ``websocket-events`` suite kind.

Registered through the ``netra_supervisor`` entry point like any team's plugin.
"""

from __future__ import annotations

import pluggy

from supervisor.runners.websocket_events import WebSocketEventsKind

hookimpl = pluggy.HookimplMarker("netra_supervisor")


@hookimpl
def netra_register_suite_kinds() -> list:
    return [WebSocketEventsKind()]
