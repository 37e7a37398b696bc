"""Passing count per iteration, previous runs included, from the history (read-only)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from supervisor.core.model import ModelView, counted_phases

MAX_POINTS = 120


def load_history(db_path: str | Path | None) -> list[tuple[int, int, int]]:
    """(run_id, seq, passed) of the last iterations in the database (``mode=ro``)."""
    if not db_path:
        return []
    from supervisor.store.queries import connect_readonly

    try:
        conn = connect_readonly(db_path, timeout=1.0)
    except (FileNotFoundError, sqlite3.Error):
        return []
    try:
        rows = conn.execute(
            "SELECT run_id, seq, passed FROM iterations WHERE finished_at IS NOT NULL"
            " ORDER BY id DESC LIMIT ?",
            (MAX_POINTS,),
        ).fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()
    return [(int(r[0]), int(r[1]), int(r[2] or 0)) for r in reversed(rows)]


class TrendPane(Vertical):
    def __init__(self, history: list[tuple[int, int, int]] | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.history = history or []
        self._points: list[int] = []

    def compose(self) -> ComposeResult:
        # held, not queried per refresh: a refresh tick while the app ends finds the
        # children already removed (a query then raises NoMatches)
        self._label = Static("", id="trend-label")
        self._sparkline = Sparkline([0], id="sparkline")
        yield self._label
        yield self._sparkline

    def points(self, view: ModelView) -> list[int]:
        """History rows, then this run's finished iterations, then the live count."""
        seen = {(run, seq) for run, seq, _ in self.history}
        points = [passed for _, _, passed in self.history]
        for it in view.iterations:
            if (view.run_id, it.seq) not in seen:
                points.append(it.counts.get("passed", 0))
        if view.phases and (not view.iterations or view.iterations[-1].seq != view.iteration):
            points.append(sum(p.counts.get("passed", 0) for p in counted_phases(view.phases)))
        return points[-MAX_POINTS:]

    def show(self, view: ModelView) -> None:
        points = self.points(view)
        if points == self._points:
            return
        self._points = points
        self._sparkline.data = points or [0]
        tail = " → ".join(str(p) for p in points[-4:]) or "-"
        self._label.update(f"passing per iteration ({len(points)}): {tail}")
