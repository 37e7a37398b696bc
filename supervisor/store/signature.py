"""Failure signatures: one key for failures that share a cause.

Two failures have the same signature when their error type and first message line are
equal once the parts that change from run to run are replaced by placeholders:
timestamps, UUIDs, hex addresses and hashes, temporary paths, and numbers (ids, ports,
counts, durations). ``history failures`` groups by it, and the Datasette plugin in
``supervisor/datasette/plugins`` exposes it to SQL as ``netra_signature(outcome,
message)``, so this module uses the standard library only and imports nothing else
from the project (the plugin may load it by path).
"""

from __future__ import annotations

import re
import tempfile

_MAX = 300  # characters of the normalised message kept in a signature

#: ``supervisor.text.LINE_BREAK``: what the writer puts where a message had line breaks
#: (spelled out, since this module imports nothing from the project; a test pins it).
LINE_BREAK = " ⏎ "

# "ValueError: ...", "pkg.errors.ApiError: ...", pytest's "Failed: ...", a bare "KeyError"
_TYPE = re.compile(
    r"^((?:[A-Za-z_][\w.]*)?(?:Error|Exception|Exit|Interrupt|Failed|Failure|Warning"
    r"|StopIteration|StopAsyncIteration))(?::\s*|$)"
)

_TEMP_ROOTS = sorted(
    {"/tmp", "/var/tmp", "/var/folders", "/private/var/folders", tempfile.gettempdir()},
    key=len,
    reverse=True,
)

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # 2026-11-24T18:41:43.123+00:00, 2026-11-24 18:41:43Z, 18:41:43.5
    (
        re.compile(
            r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?"
        ),
        "<ts>",
    ),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"), "<ts>"),
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<addr>"),
    # hashes and hex ids: 8+ hex characters with at least one digit and one letter
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (
        re.compile(
            r"(?:"
            + "|".join(re.escape(root) for root in _TEMP_ROOTS)
            + r")(?:/[^\s'\"`,;:)\]}>]*)?"
        ),
        "<tmp>",
    ),
    # numbers not glued to a preceding letter: ids (user_42, #17), counts, ports, 0.25s
    (re.compile(r"(?<![A-Za-z0-9])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"), "<n>"),
)


def normalise(text: str) -> str:
    """``text`` with its run-to-run parts replaced by placeholders."""
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())[:_MAX]


def error_type(outcome: str, message: str) -> str:
    """The exception type the message starts with, else the outcome (hung, crashed ...)."""
    match = _TYPE.match(message.strip())
    return match.group(1) if match else outcome


def signature(outcome: str | None, message: str | None) -> str:
    """``"TYPE: normalised first line"``; the grouping key of ``history failures``."""
    outcome = outcome or "failed"
    lines = (message or "").strip().splitlines()
    first = lines[0].split(LINE_BREAK, 1)[0].strip() if lines else ""
    kind = error_type(outcome, first)
    match = _TYPE.match(first)
    rest = first[match.end() :] if match else first
    rest = normalise(rest)
    return f"{kind}: {rest}" if rest else kind
