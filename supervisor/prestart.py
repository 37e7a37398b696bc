"""Start a run's first suite process while the supervisor itself is still starting.

Before its first test, a run pays for the supervisor's start-up (imports, plugins, the
history database) and then for the suite's (pytest's imports and collection). The two
need not wait for each other when nothing that happens before the first suite can
change what the suite sees: no deploy, no ``[auth]`` token, not a ``--resume``, no
plugin hook that runs before the first test, no secret to mask in its output.

A suite kind offers this by naming, in its ``early_start`` attribute, a
``"module:function"`` that starts its process ahead of need (for the pytest kind:
``supervisor.runners.pytest.early:start``) and returns an :class:`Early`. Plugins are
not loaded yet when the early start must happen, so the kinds that offered one in the
project's previous run are remembered in ``.netra/logs/early-starts.json`` (written by
:func:`remember`); a project's first run starts nothing early. Once plugins are loaded,
:func:`keep_if_offered` discards the early process unless the kind registered under
that name still offers the same starter; the kind itself adopts it (:func:`take`) only
if it is exactly the process it would start. A wrong guess costs CPU, never a result.
``NETRA_NO_PRESTART=1`` turns this off.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.config import Config, SuiteConfig, load_config, select_phases
from supervisor.redact import secrets_from_environment, secrets_named_by_config

OFF_ENV = "NETRA_NO_PRESTART"
REMEMBERED = "early-starts.json"


@dataclass
class Early:
    """A suite's process started ahead of its suite, waiting to be taken."""

    suite: str
    kind: str
    starter: str  # the kind's ``early_start``
    handle: Any  # the kind's own object (for pytest: the waiting process and its socket)
    kill: Callable[[], None]


_waiting: Early | None = None


def first_suite(config: Config, phase_names: Sequence[str]) -> SuiteConfig | None:
    """The suite a run of ``config`` starts with, as far as the config file tells."""
    phases = select_phases(config, tuple(phase_names))
    if not phases:
        return None
    # only the first selector: with a tag, a suite a plugin registers may come first,
    # and then the kind simply does not take this one
    chosen = config.select_suites(phases[0].suites[:1])
    return chosen[0] if chosen else None


def log_folder(config: Config, db: str | None) -> Path:
    """Where the runs' log folders live (beside the history database)."""
    return (Path(db) if db else config.resolve(config.run.db)).parent / "logs"


def _needs_masking(config: Config, environ: Mapping[str, str]) -> bool:
    """Output the early process writes unmasked could hold a secret: one in the
    environment, or one the config names (``secret_env``, a sink's ``url_env``, any
    ``*_env`` key: the values the run's masking would look for)."""
    return bool(secrets_from_environment(environ) or secrets_named_by_config(config.raw, environ))


def start_for_run(
    config_path: str | None, phase_names: Sequence[str], resume: bool, db: str | None
) -> bool:
    """Start the first suite's process now, when nothing before it can change what it
    sees and its kind offered an early start in this project's previous run.

    Never raises: any problem only means no early start (the run reports it properly).
    """
    global _waiting
    if os.environ.get(OFF_ENV) == "1" or resume or _waiting is not None:
        return False
    try:
        config = load_config(config_path)
        if config.deploy.backend != "none" or config.auth is not None:
            return False
        if _needs_masking(config, os.environ):
            return False
        suite = first_suite(config, phase_names)
        folder = log_folder(config, db)
        starter = _remembered(folder).get(suite.kind) if suite is not None else None
        if suite is None or not starter or not folder.is_dir():
            return False
        _waiting = _load(starter)(config, suite, folder)
    except Exception:  # ConfigError, OSError, a bad TOML byte: the run itself will say
        return False
    return _waiting is not None


def _remembered(folder: Path) -> dict[str, str]:
    try:
        data = json.loads((folder / REMEMBERED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _load(starter: str) -> Callable[..., Early | None]:
    module, _, name = starter.partition(":")
    return getattr(importlib.import_module(module), name)


def remember(folder: Path, kinds: Mapping[str, object]) -> None:
    """Note which loaded kinds offer an early start, for the project's next run."""
    offered = {
        name: starter
        for name, kind in kinds.items()
        if isinstance(starter := getattr(kind, "early_start", ""), str) and starter
    }
    if not folder.is_dir() or _remembered(folder) == offered:
        return
    with contextlib.suppress(OSError):
        (folder / REMEMBERED).write_text(json.dumps(offered, sort_keys=True), encoding="utf-8")


def keep_if_offered(kinds: Mapping[str, object]) -> None:
    """After plugins loaded: the kind now registered under the early process's kind
    name must still offer the same starter (a plugin may have replaced it)."""
    waiting = _waiting
    if waiting is not None and getattr(kinds.get(waiting.kind), "early_start", "") != (
        waiting.starter
    ):
        discard()


def pending() -> bool:
    """An early process is waiting to be taken."""
    return _waiting is not None


def take(suite: str, kind: str) -> Any:
    """The early process's handle, if it was started for this suite and kind. The first
    call (from whichever suite runs first) ends any other."""
    global _waiting
    waiting, _waiting = _waiting, None
    if waiting is None:
        return None
    if waiting.suite == suite and waiting.kind == kind:
        return waiting.handle
    waiting.kill()
    return None


def discard() -> None:
    """End an early process nobody took (the run ended, or changed what it needs)."""
    global _waiting
    waiting, _waiting = _waiting, None
    if waiting is not None:
        waiting.kill()


def finish() -> None:
    """At the end of the run: discard what was not taken."""
    discard()
