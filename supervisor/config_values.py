"""Values of config keys: their types, their checks, and the one-line errors.

Shared by :mod:`supervisor.config` (the keys every table has) and
:mod:`supervisor.plugins.kind_config` (the keys a suite kind, deploy backend or sink kind
declares), so a value is checked, converted and complained about the same way
wherever its key is declared.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration problem; ``str()`` is the single line shown to the user."""

    def __str__(self) -> str:
        # names from the file (quoted keys, phase names) may hold line breaks
        return super().__str__().replace("\r", "\\r").replace("\n", "\\n")


class OptionError(ConfigError):
    """Raised by a kind's ``validate``: ``key`` is one of its keys, ``problem`` the rest
    of the line (what is wrong and the fix). The host adds the file and the table, so
    the user reads ``FILE: suite[2] (ws).url: PROBLEM``."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


# --------------------------------------------------------------------------- durations

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: Any) -> float:
    """``"90s"``, ``"5m"``, ``"1h30m"``, ``"250ms"`` or a number of seconds → seconds.

    Raises ``ValueError`` with a human message when the text is not a duration.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, (int, float)):
        if value != value:  # NaN
            raise ValueError(f"{value!r} is not a duration")
        if value < 0:
            raise ValueError(f"{value!r} is negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a duration")
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"{value!r} is not a duration")
    return total


def format_duration(seconds: float) -> str:
    """Seconds → a short human text such as ``1h02m`` or ``4.2s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


# --------------------------------------------------------------------------- values


def did_you_mean(word: str, options: Iterable[str], label: str = "known keys") -> str:
    """`` (did you mean 'x'?)`` for a close option, else `` (LABEL: a, b, c)``."""
    options = sorted(set(options))
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" ({label}: {', '.join(options) or 'none'})"


class Reader:
    """Validates values, producing one-line messages ``SOURCE: KEY: PROBLEM``.

    ``source`` is the config file (or ``plugin 'NAME'`` for a suite made in code).
    """

    def __init__(self, source: Path | str) -> None:
        self.path = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: {problem}")

    def check_keys(self, where: str, table: Mapping[str, Any], allowed: Mapping[str, str]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"{where}.{key}", "unknown key" + did_you_mean(key, allowed))

    def value(self, where: str, key: str, value: Any, kind: str) -> Any:
        name = f"{where}.{key}"
        if kind == "str":
            if not isinstance(value, str):
                raise self.fail(name, f"expected a string, got {type_name(value)}")
            return value
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(name, f"expected an integer, got {type_name(value)}")
            if value < 0:
                raise self.fail(name, f"must not be negative, got {value}")
            return value
        if kind == "float":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(name, f"expected a number, got {type_name(value)}")
            return float(value)
        if kind == "bool":
            if not isinstance(value, bool):
                raise self.fail(name, f"expected true or false, got {type_name(value)}")
            return value
        if kind == "duration":
            try:
                return parse_duration(value)
            except ValueError as exc:
                raise self.fail(
                    name, f'{exc}; write a duration such as "90s", "5m" or "20h"'
                ) from None
        if kind == "strlist":
            if isinstance(value, str):
                raise self.fail(name, f'expected a list of strings, write ["{value}"]')
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise self.fail(name, f"expected a list of strings, got {type_name(value)}")
            return tuple(value)
        if kind == "strmap":
            if not isinstance(value, dict):
                raise self.fail(name, f"expected a table of strings, got {type_name(value)}")
            out = {}
            for k, v in value.items():
                if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                    raise self.fail(f"{name}.{k}", f"expected a string, got {type_name(v)}")
                out[k] = str(v)
            return out
        if kind == "table":
            if not isinstance(value, dict):
                raise self.fail(name, f"expected a table, got {type_name(value)}")
            return dict(value)
        if kind == "gate":
            return self.gate(name, value)
        return value  # "any"

    def gate(self, name: str, value: Any) -> tuple[str, float]:
        if isinstance(value, str) and value in ("all-pass", "none"):
            return value, 1.0
        ratio: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ratio = float(value)
        elif isinstance(value, str):
            text = value.strip()
            try:
                ratio = float(text[:-1]) / 100 if text.endswith("%") else float(text)
            except ValueError:
                ratio = None
        if ratio is None or not (0.0 < ratio <= 1.0):
            raise self.fail(
                name, f'{value!r} is not a gate; use "all-pass", "none" or a ratio such as 0.95'
            )
        return "ratio", ratio


def type_name(value: Any) -> str:
    """How a value's type reads in a message: "a string", "a table", ..."""
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    names.update({list: "a list", dict: "a table"})
    return names.get(type(value), type(value).__name__)
