"""The report as one self-contained HTML file: inline CSS, an inline SVG chart, no
script and nothing fetched, so it opens offline, attached to a ticket or mailed.

Every text from the history is test output, hostile until escaped: it all passes
through :func:`e` (the data is already redacted by :mod:`supervisor.report.gather`).
"""

from __future__ import annotations

from html import escape

from supervisor.history_cli import secs_text as secs
from supervisor.history_cli import time_text as when
from supervisor.report.chart import Point, trend_svg
from supervisor.report.gather import FailureGroup, Iteration, Report

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;
max-width:1100px;padding:0 16px;color:#1f2328;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;
border-bottom:1px solid #d0d7de;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}
th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:8px;overflow:auto;
white-space:pre-wrap;word-break:break-word;font:12px/1.4 ui-monospace,monospace}
code{font:12px ui-monospace,monospace;word-break:break-all}
.muted{color:#656d76}.summary td:first-child{width:12em;color:#656d76}
.passed{color:#1a7f37}.failed,.gate-failed,.hung,.crashed,.error{color:#cf222e}
.group{border:1px solid #d0d7de;border-radius:6px;padding:4px 12px;margin:10px 0}
.waiting{font-weight:600}
svg.trend{max-width:100%;height:auto}
svg .axis{stroke:#8c959f}svg .tick,svg .axis-label,svg .target-label{font:11px sans-serif;
fill:#656d76}svg .target{stroke:#bf8700;stroke-dasharray:6 4}
svg polyline{fill:none;stroke-width:2}svg .passed{stroke:#1a7f37}
svg .ran{stroke:#8c959f;stroke-dasharray:2 3}svg circle.point{fill:#1a7f37}
svg circle.point.gate-failed,svg circle.point.failed{fill:#cf222e}
"""


def e(value: object) -> str:
    """Escaped text (quotes too: safe inside attributes)."""
    return escape("" if value is None else str(value), quote=True)


def render_html(report: Report) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # no script and nothing from elsewhere may run or load, whatever the text holds
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        " style-src 'unsafe-inline'; img-src data:\">",
        f"<title>netra-supervisor report: run {report.run_id}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>netra-supervisor report: run {report.run_id}</h1>",
        f'<p class="muted">generated {e(when(report.generated_at))} UTC from the history'
        " database; secrets masked</p>",
        _summary(report),
        _trend(report),
        _iterations(report.iterations),
        _failures(report),
        _hung(report),
        _flaky(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(report: Report) -> str:
    last = report.iterations[-1] if report.iterations else None
    rows = [
        ("status", f'<span class="{e(report.status)}">{e(report.status)}</span>'),
        ("started", e(when(report.started_at))),
        ("finished", e(when(report.finished_at)) or "still running (or interrupted)"),
        ("took", e(secs(report.duration)) if report.duration is not None else "-"),
        ("iterations", str(len(report.iterations))),
        ("target", str(report.target) if report.target else "none set"),
        ("last iteration", _counts_text(last) if last else "none"),
        ("host", e(report.host)),
        ("git", f"<code>{e(report.git_sha)}</code>" if report.git_sha else "-"),
        ("version", e(report.version)),
    ]
    cells = "".join(f"<tr><td>{k}</td><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="summary">{cells}</table>'


def _counts_text(it: Iteration) -> str:
    shown = [f"{n} {k}" for k, n in it.counts.items() if n or k in ("passed", "failed")]
    return e(f"{it.label} {it.status}: " + ", ".join(shown))


def _trend(report: Report) -> str:
    points = [Point(it.label, it.passed, it.total, it.status) for it in report.iterations]
    if not points:
        return "<h2>Trend</h2><p>No iteration recorded yet.</p>"
    toward = f" toward the target of {report.target}" if report.target else ""
    return (
        f'<h2 id="trend">Trend</h2><p class="muted">tests passed per iteration{toward}'
        " (solid); tests that ran (dotted)</p>"
        f'<figure class="trend">{trend_svg(points, report.target)}</figure>'
    )


def _iterations(iterations: list[Iteration]) -> str:
    out = ['<h2 id="iterations">Iterations, phases and gates</h2>']
    if not iterations:
        out.append("<p>No iteration recorded yet.</p>")
    for it in iterations:
        deploy = "; ".join(
            f"{d.backend} {d.status}"
            + (f" in {secs(d.duration)}" if d.duration is not None else "")
            + (f": {d.message}" if d.message else "")
            for d in it.deploys
        )
        out.append(
            f'<h3>iteration {e(it.label)} <span class="{e(it.status)}">{e(it.status)}</span></h3>'
            f'<p class="muted">started {e(when(it.started_at))}, took {e(secs(it.duration))};'
            f" revision <code>{e(it.revision or '-')}</code>;"
            f" deploy: {e(deploy or 'none')}<br>{_counts_text(it)}</p>"
        )
        if not it.phases:
            continue
        out.append(
            "<table><tr><th>phase</th><th>status</th><th>gate</th><th>held</th>"
            "<th>passed</th><th>failed</th><th>errors</th><th>hung</th><th>crashed</th>"
            "<th>skipped</th><th>took</th><th>note</th></tr>"
        )
        for p in it.phases:
            held = "-" if p.gate_held is None else ("yes" if p.gate_held else "no")
            out.append(
                f'<tr><td>{e(p.name)}</td><td class="{e(p.status)}">{e(p.status)}</td>'
                f"<td>{e(p.gate)}</td><td>{held}</td>"
                + "".join(
                    f'<td class="n">{n}</td>'
                    for n in (p.passed, p.failed, p.errors, p.hung, p.crashed, p.skipped)
                )
                + f'<td class="n">{e(secs(p.duration))}</td><td>{e(p.impact)}</td></tr>'
            )
        out.append("</table>")
    return "\n".join(out)


def _failures(report: Report) -> str:
    out = ['<h2 id="failures">Failures by signature</h2>']
    if not report.groups:
        return out[0] + "<p>No test failed, hung or crashed in this run.</p>"
    total = sum(g.count for g in report.groups)
    out.append(
        f'<p class="muted">{total} non-passing results in {len(report.groups)} groups, largest'
        " first; one signature per cause, as <code>history failures</code> groups them</p>"
    )
    out.extend(_group(g, report.has_evidence) for g in report.groups)
    return "\n".join(out)


def _group(g: FailureGroup, has_evidence: bool) -> str:
    outcomes = ", ".join(f"{n} {k}" for k, n in g.outcomes.items())
    parts = [
        '<section class="group">',
        f"<h3><code>{e(g.signature)}</code></h3>",
        f'<p class="muted">{g.count} results ({e(outcomes)}) of {len(g.tests)} tests;'
        f" first seen in iteration {e(g.first_iteration)}"
        f" (revision <code>{e(g.first_revision or '-')}</code>),"
        f" last in {e(g.last_iteration)}</p>",
        f'<pre class="waiting">{e(g.message)}</pre>',
        "<table><tr><th>iteration</th><th>test</th><th>outcome</th><th>try</th></tr>",
    ]
    for f in g.results:
        retry = " (passed on a retry)" if f.passed_on_retry else ""
        parts.append(
            f"<tr><td>{e(f.iteration)}</td><td><code>{e(f.suite)}: {e(f.nodeid)}</code></td>"
            f'<td class="{e(f.outcome)}">{e(f.outcome)}{retry}</td>'
            f'<td class="n">{f.attempt}</td></tr>'
        )
    parts.append("</table>")
    if g.count > len(g.results):
        parts.append(f'<p class="muted">… and {g.count - len(g.results)} more results</p>')
    for f in g.results:
        for ev in f.evidence:
            span = f", {e(when(ev.first_at))} .. {e(when(ev.last_at))}" if ev.first_at else ""
            more = f"\n… {ev.omitted} more lines" if ev.omitted else ""
            parts.append(
                f'<p class="muted">what <code>{e(ev.source)}</code> logged while'
                f" <code>{e(f.nodeid)}</code> ran (iteration {e(f.iteration)}{span}):</p>"
                f'<pre class="evidence">{e(chr(10).join(ev.lines))}{e(more)}</pre>'
            )
    if has_evidence and not any(f.evidence for f in g.results):
        parts.append('<p class="muted">no backend log lines were recorded for these.</p>')
    if g.longrepr:
        parts.append(
            f"<details><summary>the first one's report</summary><pre>{e(g.longrepr)}</pre>"
            "</details>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _hung(report: Report) -> str:
    out = ['<h2 id="hung">Hung and crashed tests</h2>']
    if not report.hung:
        return out[0] + "<p>None in this run.</p>"
    for i, h in enumerate(report.hung):
        took = f" after {secs(h.duration)}" if h.duration is not None else ""
        out.append(
            f'<h3 class="{e(h.outcome)}">{e(h.outcome)}: <code>{e(h.nodeid)}</code></h3>'
            f'<p class="muted">suite {e(h.suite)}, iteration {e(h.iteration)}{e(took)}</p>'
            f'<pre class="waiting">{e(h.message)}</pre>'
        )
        if h.dump:
            opened = " open" if i == 0 else ""
            out.append(
                f"<details{opened}><summary>its dump</summary>"
                f'<pre class="dump">{e(h.dump)}</pre></details>'
            )
    if report.hung_total > len(report.hung):
        out.append(f'<p class="muted">… and {report.hung_total - len(report.hung)} more</p>')
    return "\n".join(out)


def _flaky(report: Report) -> str:
    out = ['<h2 id="flaky">Flaky tests</h2>']
    if not report.flaky:
        return out[0] + (
            "<p>No test both passed and failed under one revision since this run started.</p>"
        )
    out.append(
        '<p class="muted">passed and failed (or hung) under one revision since this run'
        " started (<code>history flaky</code>)</p>"
        "<table><tr><th>test</th><th>revision</th><th>passed</th><th>failed</th>"
        "<th>hung</th><th>flips</th><th>last</th></tr>"
    )
    for f in report.flaky:
        rate = "-" if f.flip_rate is None else f"{f.flip_rate:.0%}"
        out.append(
            f"<tr><td><code>{e(f.suite)}: {e(f.nodeid)}</code></td><td><code>{e(f.revision)}"
            f'</code></td><td class="n">{f.passed}</td><td class="n">{f.failed}</td>'
            f'<td class="n">{f.hung}</td><td class="n">{rate}</td>'
            f"<td>{e(f.last_outcome)} in {e(f.last_iteration)}</td></tr>"
        )
    out.append("</table>")
    return "\n".join(out)
