"""The report as GitHub-flavoured Markdown, for pasting into an issue or pull request.

Tables for the iterations, phases, failure groups and flaky tests; the trend as a
bar per iteration (GitHub shows no inline SVG); messages, evidence and dumps in fenced
blocks, each bounded, longer ones folded in ``<details>``. Test output is hostile
text: outside a fence it is escaped (:func:`md`), and a fence is always longer than
any run of backticks inside it, so nothing can close it early.
"""

from __future__ import annotations

import re
from html import escape

from supervisor.history_cli import secs_text as secs
from supervisor.history_cli import time_text as when
from supervisor.report.chart import bar
from supervisor.report.gather import FailureGroup, Iteration, Report

#: Lines of a message / evidence shown inline in Markdown (a dump is bounded already).
_BLOCK_LINES = 60
_MD_SPECIAL = re.compile(r"([\\`*_\[\]#!|~<>])")


def md(value: object) -> str:
    """Text safe in a Markdown paragraph or table cell: HTML and Markdown syntax
    escaped, on one line."""
    text = escape("" if value is None else str(value), quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return " ".join(text.split())


def code(value: object, cell: bool = False) -> str:
    """Inline code whose delimiters outlast any backticks in it (GFM), on one line; in a
    table ``cell``, ``|`` escaped so the cell stays one cell."""
    text = " ".join(("" if value is None else str(value)).split())
    if cell:
        text = text.replace("|", "\\|")
    if not text:
        return ""
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, most: int = _BLOCK_LINES) -> str:
    """A fenced block of ``text``, at most ``most`` lines (the cut counted)."""
    lines = text.rstrip().splitlines() or [""]
    if len(lines) > most:
        lines = [*lines[:most], f"… {len(lines) - most} more lines"]
    body = "\n".join(lines)
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", body)), default=0) + 1)
    return f"{fence}text\n{body}\n{fence}"


def render_markdown(report: Report) -> str:
    parts = [
        f"## netra-supervisor report: run {report.run_id}",
        "",
        _summary(report),
        "",
        _trend(report),
        "",
        _iterations(report.iterations),
        "",
        _failures(report),
        "",
        _hung(report),
        "",
        _flaky(report),
        "",
        f"<sub>generated {md(when(report.generated_at))} UTC by netra-supervisor report;"
        " secrets masked</sub>",
    ]
    return "\n".join(parts) + "\n"


def _summary(report: Report) -> str:
    last = report.iterations[-1] if report.iterations else None
    took = secs(report.duration) if report.duration is not None else "-"
    lines = [
        f"**{md(report.status)}** after {len(report.iterations)} iterations ({md(took)});"
        f" started {md(when(report.started_at))} UTC on {md(report.host)}",
        "",
        f"- target: {report.target if report.target else 'none set'}",
        f"- last iteration: {_counts(last) if last else 'none'}",
    ]
    if report.git_sha:
        lines.append(f"- git: {code(report.git_sha)}")
    return "\n".join(lines)


def _counts(it: Iteration) -> str:
    shown = [f"{n} {k}" for k, n in it.counts.items() if n or k in ("passed", "failed")]
    return md(f"{it.label} {it.status}: " + ", ".join(shown))


def _trend(report: Report) -> str:
    if not report.iterations:
        return "### Trend\n\nNo iteration recorded yet."
    goal = report.target or max(it.total for it in report.iterations) or 1
    toward = f"target {report.target}" if report.target else f"most run: {goal}"
    rows = [
        "### Trend",
        "",
        f"| iteration | passed | ran | toward {md(toward)} | status |",
        "|---|--:|--:|---|---|",
    ]
    for it in report.iterations:
        pct = f" {100 * it.passed / goal:.0f}%"
        rows.append(
            f"| {md(it.label)} | {it.passed} | {it.total} | `{bar(it.passed, goal)}`{pct}"
            f" | {md(it.status)} |"
        )
    return "\n".join(rows)


def _iterations(iterations: list[Iteration]) -> str:
    if not iterations:
        return "### Iterations, phases and gates\n\nNo iteration recorded yet."
    rows = [
        "### Iterations, phases and gates",
        "",
        "| iteration | phase | status | gate | held | passed | failed | hung | took | note |",
        "|---|---|---|---|---|--:|--:|--:|--:|---|",
    ]
    for it in iterations:
        deploy = ", ".join(f"{d.backend} {d.status}" for d in it.deploys) or "no deploy"
        rows.append(
            f"| **{md(it.label)}** | {md('revision ' + (it.revision or '-'))}; {md(deploy)}"
            f" | **{md(it.status)}** | | | {it.passed} | {it.counts.get('failed', 0)}"
            f" | {it.counts.get('hung', 0)} | {md(secs(it.duration))} | |"
        )
        for p in it.phases:
            held = "" if p.gate_held is None else ("yes" if p.gate_held else "**no**")
            rows.append(
                f"| | {md(p.name)} | {md(p.status)} | {md(p.gate)} | {held} | {p.passed}"
                f" | {p.failed} | {p.hung} | {md(secs(p.duration))} | {md(p.impact)} |"
            )
    return "\n".join(rows)


def _failures(report: Report) -> str:
    if not report.groups:
        return "### Failures by signature\n\nNo test failed, hung or crashed in this run."
    total = sum(g.count for g in report.groups)
    rows = [
        "### Failures by signature",
        "",
        f"{total} non-passing results in {len(report.groups)} groups, largest first.",
        "",
        "| results | tests | outcomes | signature | first seen | last seen |",
        "|--:|--:|---|---|---|---|",
    ]
    for g in report.groups:
        outcomes = ", ".join(f"{n} {k}" for k, n in g.outcomes.items())
        first = f"{g.first_iteration} ({g.first_revision or '-'})"
        rows.append(
            f"| {g.count} | {len(g.tests)} | {md(outcomes)} | {code(g.signature, cell=True)}"
            f" | {md(first)} | {md(g.last_iteration)} |"
        )
    rows.extend(_group(g) for g in report.groups)
    return "\n".join(rows)


def _group(g: FailureGroup) -> str:
    parts = ["", f"#### {code(g.signature)}", "", fenced(g.message), ""]
    for f in g.results:
        retry = " (passed on a retry)" if f.passed_on_retry else ""
        parts.append(
            f"- {md(f.iteration)}: {code(f.suite + ': ' + f.nodeid)} {md(f.outcome + retry)}"
        )
    if g.count > len(g.results):
        parts.append(f"- … and {g.count - len(g.results)} more results")
    for f in g.results:
        for ev in f.evidence:
            span = f", {when(ev.first_at)} .. {when(ev.last_at)}" if ev.first_at else ""
            lines = list(ev.lines)
            if ev.omitted:
                lines.append(f"… {ev.omitted} more lines")
            parts += [
                "",
                f"What {code(ev.source)} logged while {code(f.nodeid)} ran"
                f" (iteration {md(f.iteration)}{md(span)}):",
                "",
                fenced("\n".join(lines)),
            ]
    if g.longrepr:
        parts += [
            "",
            "<details><summary>the first one's report</summary>",
            "",
            fenced(g.longrepr, most=120),
            "",
            "</details>",
        ]
    return "\n".join(parts)


def _hung(report: Report) -> str:
    if not report.hung:
        return "### Hung and crashed tests\n\nNone in this run."
    parts = ["### Hung and crashed tests"]
    for h in report.hung:
        took = f"after {secs(h.duration)}" if h.duration is not None else ""
        parts += [
            "",
            f"**{md(h.outcome)}** {code(h.nodeid)} (suite {md(h.suite)},"
            f" iteration {md(h.iteration)}{' ' + md(took) if took else ''})",
            "",
            fenced(h.message),
        ]
        if h.dump:
            parts += [
                "",
                "<details><summary>its dump</summary>",
                "",
                fenced(h.dump, most=10_000),  # bounded once, by _shown_dump
                "",
                "</details>",
            ]
    if report.hung_total > len(report.hung):
        parts.append(f"\n… and {report.hung_total - len(report.hung)} more")
    return "\n".join(parts)


def _flaky(report: Report) -> str:
    if not report.flaky:
        return (
            "### Flaky tests\n\n"
            "No test both passed and failed under one revision since this run started."
        )
    rows = [
        "### Flaky tests",
        "",
        "Passed and failed (or hung) under one revision since this run started.",
        "",
        "| test | revision | passed | failed | hung | flips | last |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for f in report.flaky:
        rate = "-" if f.flip_rate is None else f"{f.flip_rate:.0%}"
        rows.append(
            f"| {code(f.suite + ': ' + f.nodeid, cell=True)} | {code(f.revision, cell=True)}"
            f" | {f.passed}"
            f" | {f.failed} | {f.hung} | {rate} | {md(f.last_outcome)} in"
            f" {md(f.last_iteration)} |"
        )
    return "\n".join(rows)
