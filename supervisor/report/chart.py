"""The pass-count trend as an inline SVG: one point per iteration, the target as a line.

Plain SVG text (no script, no fonts to fetch), so the report stays one file that opens
offline and in any browser. Labels are escaped here: an iteration label or a revision
is text from the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH = 720
HEIGHT = 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 16, 16, 40


@dataclass(frozen=True)
class Point:
    label: str  # the iteration, RUN.SEQ
    passed: int
    total: int  # tests that ran and counted (passed + failed + errors + hung + crashed)
    status: str


def trend_svg(points: list[Point], target: int | None) -> str:
    """``<svg class="trend">`` with a ``circle.point`` per iteration (``data-iteration``,
    ``data-passed``), the passed line, the ran-tests line and the target line."""
    top = max([target or 0, *(p.passed for p in points), *(p.total for p in points), 1])
    plot_w = WIDTH - _LEFT - _RIGHT
    plot_h = HEIGHT - _TOP - _BOTTOM
    n = len(points)

    def x(i: int) -> float:
        return _LEFT + (plot_w / 2 if n == 1 else plot_w * i / (n - 1))

    def y(value: int) -> float:
        return _TOP + plot_h * (1 - value / top)

    parts = [
        f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="{WIDTH}" height="{HEIGHT}" role="img"'
        ' aria-label="tests passed per iteration, toward the target">',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{WIDTH - _RIGHT}"'
        f' y2="{_TOP + plot_h}"/>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_TOP + plot_h}"/>',
    ]
    for value in _ticks(top):
        parts.append(
            f'<text class="tick" x="{_LEFT - 6}" y="{y(value) + 4:.1f}"'
            f' text-anchor="end">{value}</text>'
        )
    if target:
        parts.append(
            f'<line class="target" x1="{_LEFT}" y1="{y(target):.1f}" x2="{WIDTH - _RIGHT}"'
            f' y2="{y(target):.1f}"/>'
            f'<text class="target-label" x="{WIDTH - _RIGHT}" y="{y(target) - 5:.1f}"'
            f' text-anchor="end">target {target}</text>'
        )
    if n > 1:
        ran = " ".join(f"{x(i):.1f},{y(p.total):.1f}" for i, p in enumerate(points))
        passed = " ".join(f"{x(i):.1f},{y(p.passed):.1f}" for i, p in enumerate(points))
        parts.append(f'<polyline class="ran" points="{ran}"/>')
        parts.append(f'<polyline class="passed" points="{passed}"/>')
    every = max(1, n // 12)  # at most ~12 labels under the axis
    for i, p in enumerate(points):
        label = escape(p.label)
        parts.append(
            f'<circle class="point {escape(p.status)}" cx="{x(i):.1f}" cy="{y(p.passed):.1f}"'
            f' r="4" data-iteration="{label}" data-passed="{p.passed}" data-total="{p.total}">'
            f"<title>iteration {label}: {p.passed} passed of {p.total} run"
            f" ({escape(p.status)})</title></circle>"
        )
        if i % every == 0 or i == n - 1:
            parts.append(
                f'<text class="tick" x="{x(i):.1f}" y="{_TOP + plot_h + 16}"'
                f' text-anchor="middle">{label}</text>'
            )
    parts.append(
        f'<text class="axis-label" x="{_LEFT + plot_w / 2:.1f}" y="{HEIGHT - 4}"'
        ' text-anchor="middle">iteration</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _ticks(top: int) -> list[int]:
    """0, the top, and up to three round values between."""
    step = max(1, top // 4)
    magnitude = 10 ** (len(str(step)) - 1)
    step = max(1, round(step / magnitude) * magnitude)
    values = list(range(0, top, step))
    if top - values[-1] < step / 2 and len(values) > 1:
        values.pop()
    return [*values, top]


def bar(passed: int, target: int, width: int = 20) -> str:
    """``█████░░░░░`` for Markdown, where an SVG does not render."""
    if target <= 0:
        return ""
    filled = max(0, min(width, round(width * passed / target)))
    return "█" * filled + "░" * (width - filled)
