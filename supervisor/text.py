"""Text any consumer can keep: storable, bounded, one line.

The bottom layer: standard library only, imports nothing from ``supervisor``, so a
runner, a sink, the store and the screen can all share one answer to "what do we do
with this string a test produced?". Three helpers, and one built on them:

- :func:`storable`: any value → text that SQLite and UTF-8 files accept. A lone
  surrogate (``'\\udcff'`` from bytes decoded with ``surrogateescape``) becomes the six
  characters ``\\udcff``; a high+low surrogate pair becomes the character it encodes;
  NUL and other control characters are kept; ``bytes`` are decoded as UTF-8 with
  U+FFFD for what is invalid. It never raises.
- :func:`clip`: the longest head (or tail) of a text that fits in N UTF-8 bytes,
  cut on a character boundary, without encoding the whole text.
- :func:`one_line`: line breaks folded into :data:`LINE_BREAK`, optionally clipped.
- :func:`exception_line`: an exception as ``Type: message`` on one bounded line, the
  way every report of a failure (a plugin, a sink, a suite kind, a deploy) names it.
"""

from __future__ import annotations

import re

#: What :func:`one_line` puts where a text had line breaks.
LINE_BREAK = " ⏎ "

#: Appended by :func:`one_line` when it dropped the end of a text.
ELLIPSIS = "…"

#: UTF-8 bytes :func:`exception_line` keeps by default: a log line, a table cell.
EXCEPTION_BYTES = 300

_SURROGATES = re.compile("[\ud800-\udfff]")
_PAIR_OR_LONE = re.compile("[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")
# every line boundary str.splitlines knows, with the blanks around a run of them
_BREAKS = re.compile(r"\s*(?:\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029])\s*")
_BLANK = re.compile(r"\s*")


def storable(value: object) -> str:
    """``value`` as text SQLite and strict UTF-8 accept; ``None`` → ``""``.

    A ``str`` without surrogates is returned as is (no copy), so calling this on every
    text is cheap. Never raises: a value whose ``str()`` fails is named by its type.
    """
    if isinstance(value, str):
        text = value
    elif value is None:
        return ""
    elif isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", "replace")
    else:
        try:
            text = str(value)
        except Exception:
            try:
                text = repr(value)
            except Exception:
                return f"<unprintable {type(value).__name__}>"
    if text.isascii() or _SURROGATES.search(text) is None:
        return text
    return _PAIR_OR_LONE.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    found = match.group()
    if len(found) == 2:  # a high+low pair: the astral character it spells
        return found.encode("utf-16-le", "surrogatepass").decode("utf-16-le")
    return f"\\u{ord(found):04x}"


def utf8_size(text: str) -> int:
    """Bytes of ``text`` in UTF-8 (a lone surrogate counts 3); copies only non-ASCII text."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def clip(text: str, max_bytes: int, *, tail: bool = False) -> str:
    """The longest head (``tail=True``: end) of ``text`` within ``max_bytes`` UTF-8 bytes.

    Cut on a character boundary, never inside a multi-byte character. Returns ``text``
    itself when it fits, so ``clip(t, n) is t`` tells whether anything was cut. Only
    the at most ``max_bytes`` characters that can survive are encoded.
    """
    if max_bytes <= 0:
        return "" if text else text
    if len(text) <= max_bytes // 4:  # even 4-byte characters fit: nothing to measure
        return text
    piece = text[-max_bytes:] if tail else text[:max_bytes]
    data = piece.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text if len(piece) == len(text) else piece
    if tail:
        start = len(data) - max_bytes
        while start < len(data) and data[start] & 0xC0 == 0x80:  # inside a character
            start += 1
        return data[start:].decode("utf-8", "surrogatepass")
    end = max_bytes
    while end > 0 and data[end] & 0xC0 == 0x80:  # data[end] continues a character
        end -= 1
    return data[:end].decode("utf-8", "surrogatepass")


def one_line(text: str, max_bytes: int | None = None) -> str:
    """``text`` on one line: ends stripped, each run of line breaks (and the blanks
    around it) replaced by :data:`LINE_BREAK`.

    With ``max_bytes``, the result is at most that many UTF-8 bytes and ends with
    :data:`ELLIPSIS` when something was dropped; only the head of a huge text is read.
    """
    if max_bytes is None:
        return _BREAKS.sub(LINE_BREAK, text.strip())
    window = max_bytes * 2 + 16  # folding breaks shrinks a text; rarely by half
    line = _BREAKS.sub(LINE_BREAK, text[:window].strip())
    rest_blank = len(text) <= window or _BLANK.fullmatch(text, window) is not None
    if rest_blank and clip(line, max_bytes) is line:
        return line
    room = max(0, max_bytes - len(ELLIPSIS.encode()))
    return clip(line, room).rstrip() + ELLIPSIS


def exception_line(exc: BaseException, max_bytes: int | None = EXCEPTION_BYTES) -> str:
    """``Type: message`` on one line (:func:`one_line`), within ``max_bytes``.

    Just ``Type`` when the message is empty. Never raises, even for an exception whose
    ``str()`` does (:func:`storable`).
    """
    name = type(exc).__name__
    message = storable(exc).strip()
    return one_line(f"{name}: {message}" if message else name, max_bytes)
