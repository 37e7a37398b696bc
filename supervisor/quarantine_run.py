"""The quarantine in a run: the file's entries, and ``[run] auto_quarantine``.

Wires :class:`supervisor.core.quarantine.RunQuarantine` (the decisions) to the file
(:mod:`supervisor.quarantine_file`) and the history (read-only queries). Kept apart
from the session, which only hands the result to the loop.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from supervisor.config import Config, ConfigError
from supervisor.core.flips import auto_reason, most_flipped, to_auto_quarantine
from supervisor.core.quarantine import Entry, RunQuarantine
from supervisor.quarantine_file import add_entries, quarantine_path, read_quarantine
from supervisor.store import queries
from supervisor.store.triage import flaky

#: ``added_by`` of the entries ``[run] auto_quarantine`` writes
AUTO_BY = "netra-supervisor auto_quarantine"


def run_quarantine(
    config: Config,
    db_path: Path,
    flush: Callable[[], object],
    today: Callable[[], date] = date.today,
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
) -> RunQuarantine:
    """The run's quarantine. Reads the file once now, so a broken one is a
    :class:`ConfigError` (exit 2) before anything runs; ``flush`` writes what the
    history writer holds, so the auto-quarantine sees the iteration just finished."""
    path = quarantine_path(config)
    read_quarantine(path)  # a broken file stops the run before it starts
    quarantine: RunQuarantine

    def auto() -> list[str]:
        settings = config.run.auto_quarantine
        assert settings is not None
        flush()
        since = (now() - timedelta(seconds=settings.within)).isoformat(timespec="milliseconds")
        try:
            conn = queries.connect_readonly(db_path)
            try:
                rows = flaky(conn, since)
            finally:
                conn.close()
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(f"{db_path}: cannot read the history: {exc}") from None
        found = to_auto_quarantine(most_flipped(rows), quarantine.active, settings.flips)
        if not found:
            return []
        day = today()
        entries = [
            Entry(
                nodeid=f.nodeid,
                suite=f.suite,
                reason=auto_reason(f, settings.within_text),
                added_by=AUTO_BY,
                added=day,
            )
            for f in found
        ]
        add_entries(path, entries)
        return [
            f"auto_quarantine: quarantined {e.label()} ({e.reason}); it applies from the next "
            f"iteration; see {path}"
            for e in entries
        ]

    quarantine = RunQuarantine(
        lambda: read_quarantine(path),
        today,
        auto if config.run.auto_quarantine is not None else None,
    )
    return quarantine
