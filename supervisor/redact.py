"""Keep secrets (JWT secrets, tokens, webhook URLs) out of the database, logs and screen.

A :class:`Redactor` knows the literal secret values of this run and masks them in any
text; :func:`redact_config` masks config values whose key names a secret, before the
config is stored in ``runs.config``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
_SECRET_KEY = re.compile(
    r"(secret|token|password|passwd|api[_-]?key|auth|credential|webhook)", re.I
)
_MIN_SECRET_LEN = 4  # masking "ab" everywhere would wreck every message


class Redactor:
    """Masks every known secret value in a text."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self._secrets: list[str] = []
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets or []:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= _MIN_SECRET_LEN and secret not in self._secrets:
            self._secrets.append(secret)
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(re.escape(s) for s in ordered))

    def __call__(self, text: str) -> str:
        if not text or self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)


def redact_config(data: Any, key: str = "") -> Any:
    """A copy of raw config data with values under secret-looking keys masked."""
    if isinstance(data, Mapping):
        return {k: redact_config(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [redact_config(v, key) for v in data]
    if isinstance(data, str) and key and _SECRET_KEY.search(key) and not key.endswith("_env"):
        return MASK
    return data


def secrets_from_environment(env: Mapping[str, str]) -> list[str]:
    """Values of environment variables whose names say they hold a secret."""
    return [v for k, v in env.items() if _SECRET_KEY.search(k) and len(v) >= _MIN_SECRET_LEN]
