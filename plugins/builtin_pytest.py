"""Built-in plugin: the ``pytest`` suite kind.

Registered through the ``netra_supervisor`` entry point like any team's plugin.
"""

from __future__ import annotations

import pluggy

from supervisor.runners.pytest.kind import PytestSuiteKind

hookimpl = pluggy.HookimplMarker("netra_supervisor")


@hookimpl
def netra_register_suite_kinds() -> list:
    return [PytestSuiteKind()]
