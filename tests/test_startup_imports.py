"""Start-up stays lean: a plain headless run does not import what only some runs need.

httpx (~100 ms with rich), pyjwt with cryptography (~40 ms), websockets, textual,
sqlite-utils and tenacity are imported where they are used: the webhook sink and health
check, ``[auth]``, the websocket-events kind, the TUI, a pending migration, a retry;
watchfiles by ``between = "wait-for-change"`` only, tomlkit by a quarantine edit; our
own modules for a hang's or crash's waiting line and for watching the tree likewise,
and the other commands' parsers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

HEAVY = (
    "httpx",
    "jwt",
    "websockets",
    "textual",
    "sqlite_utils",
    "rich",
    "tomlkit",
    "watchfiles",
    "tenacity",
    # our own, for what only some runs meet: a hang or crash, a wait for a change
    "supervisor.core.waiting",
    "supervisor.core.tree_watch",
    "supervisor.core.watch_plan",
    # the other commands' parsers: `run` builds only its own (cli.build_parser)
    "supervisor.history_cli",
    "supervisor.quarantine_cli",
    "supervisor.report",
)

PROBE = textwrap.dedent(
    """
    import json, sys
    from supervisor.cli import main
    try:
        main(["run", "--headless", "--once"])
    except SystemExit:
        pass
    print(json.dumps(sorted(m for m in HEAVY if m in sys.modules)))
    """
).replace("HEAVY", repr(HEAVY))


def test_a_plain_headless_run_imports_none_of_the_heavy_libraries(tmp_path):
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    (tmp_path / "netra-supervisor.toml").write_text(
        '[[suite]]\nname = "s"\nargs = ["test_one.py", "-p", "no:cacheprovider"]\n'
    )
    run = [sys.executable, "-c", PROBE]
    first = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    # the second run opens an up-to-date database: no migration, no sqlite-utils
    second = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout.strip().splitlines()[-1]) == []


FREEZE_PROBE = """
import gc, os
from supervisor.hookspecs import hookimpl


@hookimpl
def netra_phase_finished(run_id, iteration, phase, status, counts):
    with open(os.environ["FREEZE_OUT"], "w") as fh:
        fh.write(str(gc.get_freeze_count()))
"""


def test_what_start_up_built_is_kept_out_of_the_garbage_collectors_walks(tmp_path):
    """gc.freeze() after start-up: the collections during the run, and the last one at
    interpreter exit (while the user waits), skip the modules, plugins and config."""
    (tmp_path / "test_one.py").write_text("def test_one():\n    pass\n")
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "probe.py").write_text(FREEZE_PROBE)
    (tmp_path / "netra-supervisor.toml").write_text(
        '[[suite]]\nname = "s"\nargs = ["test_one.py", "-p", "no:cacheprovider"]\n'
        '[plugins]\ndirs = ["plugins"]\n'
    )
    out = tmp_path / "frozen.txt"
    run = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "run", "--headless", "--once"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "FREEZE_OUT": str(out)},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert int(out.read_text()) > 10_000  # objects start-up made, now frozen
