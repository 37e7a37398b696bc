"""The demo's stand-in for you, the developer: lands the fix between iterations.

After an iteration that did not pass on the buggy revision, it rewrites revision.txt
to "fixed" and commits it (when git is available), the way you would push a fix
after reading the failures; the next iteration's deploy ships it. A local plugin like
this one is loaded from ``[plugins] dirs`` by path.
"""

from __future__ import annotations

from pathlib import Path

import pluggy

hookimpl = pluggy.HookimplMarker("netra_supervisor")
FOLDER = Path(__file__).resolve().parent.parent


@hookimpl
def netra_iteration_finished(run_id: int, iteration: int, status: str, counts: dict) -> None:
    from supervisor.demo.workspace import land_fix

    if status != "passed" and land_fix(FOLDER):
        print(
            f"demo developer: iteration {iteration} {status}; committed the fix "
            "(POST /api/items answers 201, the agent sends agent_completed); "
            "the next deploy ships it",
            flush=True,
        )
