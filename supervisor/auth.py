"""Mint the short-lived JWT the e2e tests authenticate with (``[auth]``, pyjwt).

One token per iteration: the configured ``claims`` plus ``iat`` and ``exp = now + ttl``,
signed with the secret from the environment variable ``secret_env`` (HS*) or with a
private key from ``key_file`` or that variable (RS*/ES*). Every suite gets it in the
environment variable ``export_as``; the websocket-events kind also sends it as a
bearer header.

The key is read and a token minted once when the run starts, so a missing variable,
an unreadable key file or a key that does not fit the algorithm is one
:class:`ConfigError` line (exit 2) before anything runs. The secret and every minted
token are handed to the run's redactor, so neither reaches the database, logs, sinks
or the screen.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from supervisor.config import AuthConfig, Config, ConfigError
from supervisor.redact import Redactor

#: Claims the supervisor sets itself from ``ttl``; configuring them is a mistake.
_OWN_CLAIMS = ("iat", "exp")


class TokenMinter:
    """Signs a fresh token on every :meth:`mint`; knows its own secret for redaction."""

    def __init__(
        self, auth: AuthConfig, key: str, where: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.auth = auth
        self.secret = key  # the HMAC secret or the private key's PEM text
        self._where = where
        self._clock = clock

    @property
    def export_as(self) -> str:
        return self.auth.export_as

    def mint(self) -> str:
        """A new token: the configured claims, ``iat`` now and ``exp`` now + ttl."""
        now = int(self._clock())
        claims: dict[str, Any] = {**self.auth.claims, "iat": now, "exp": now + int(self.auth.ttl)}
        with warnings.catch_warnings():
            # pyjwt warns about HMAC keys under 32 bytes; the user's secret is theirs
            warnings.simplefilter("ignore")
            import jwt

            return jwt.encode(claims, self.secret, algorithm=self.auth.algorithm)

    def iteration_env(self, redactor: Redactor) -> dict[str, str]:
        """A fresh token for one iteration, registered with ``redactor`` before any
        suite can see (and print) it: ``{export_as: token}``."""
        token = self.mint()
        for secret in self.secrets_of(token):
            redactor.add(secret)
        return {self.export_as: token}

    def secrets_of(self, token: str) -> list[str]:
        """What to mask for one token: the token, and its signature on its own.

        The signature too, because pytest shortens long reprs in assertion messages
        (``'eyJ...xyz'``), and a token without its signature is of no use to anyone.
        """
        return [token, token.rsplit(".", 1)[-1]]


def load_minter(
    config: Config, environ: Mapping[str, str], clock: Callable[[], float] = time.time
) -> TokenMinter | None:
    """The run's minter, or None without ``[auth]``; raises ConfigError naming the fix."""
    auth = config.auth
    if auth is None:
        return None
    import jwt  # here: runs without [auth] do not pay its import (~40 ms with cryptography)

    where = f"{config.path}: auth"
    if auth.ttl < 1:
        raise ConfigError(f'{where}.ttl: must be at least 1s, e.g. ttl = "1h"')
    if not auth.export_as:
        raise ConfigError(f'{where}.export_as: name the variable the tests read, e.g. "E2E_TOKEN"')
    for claim in _OWN_CLAIMS:
        if claim in auth.claims:
            raise ConfigError(
                f"{where}.claims.{claim}: the supervisor sets {claim} itself (from ttl); remove it"
            )
    key = _read_key(config, auth, environ, where)
    minter = TokenMinter(auth, key, where, clock)
    try:
        minter.mint()  # proves the key fits the algorithm and the claims serialize
    except NotImplementedError:
        raise ConfigError(
            f"{where}.algorithm: {auth.algorithm} needs the 'cryptography' package; "
            "pip install 'pyjwt[crypto]'"
        ) from None
    except (TypeError, ValueError) as exc:  # InvalidKeyError is a ValueError
        raise ConfigError(
            f"{where}: cannot sign with {auth.algorithm}: {_clean(exc, key)}"
        ) from None
    except jwt.PyJWTError as exc:
        raise ConfigError(
            f"{where}: cannot sign with {auth.algorithm}: {_clean(exc, key)}"
        ) from None
    return minter


def _read_key(config: Config, auth: AuthConfig, environ: Mapping[str, str], where: str) -> str:
    hmac = auth.algorithm.startswith("HS")
    if auth.key_file and not hmac:
        path = config.resolve(auth.key_file)
        try:
            key = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{where}.key_file: cannot read {path}: {exc.strerror or exc}; "
                f"point key_file at the PEM private key for {auth.algorithm}"
            ) from None
        if not key.strip():
            raise ConfigError(
                f"{where}.key_file: {path} is empty; it should hold a PEM private key"
            )
        return key
    if auth.key_file and hmac:
        raise ConfigError(
            f"{where}.key_file: {auth.algorithm} signs with a shared secret from secret_env, "
            'not a key file; remove key_file or use algorithm = "RS256"'
        )
    if not auth.secret_env:
        raise ConfigError(
            f'{where}.secret_env: name the variable holding the secret, e.g. "NETRA_JWT_SECRET"'
        )
    key = environ.get(auth.secret_env, "")
    if not key:
        what = "the JWT secret" if hmac else f"the PEM private key for {auth.algorithm}"
        raise ConfigError(
            f"{where}.secret_env: the environment variable {auth.secret_env} is not set; "
            f"export {auth.secret_env} with {what}" + ("" if hmac else ", or set auth.key_file")
        )
    return key


def _clean(exc: BaseException, key: str) -> str:
    """An exception's first line, with the key masked should a library quote it.

    Not :func:`~supervisor.text.exception_line`: folding the other lines in would keep a
    PEM key quoted over several lines, which the mask (the key as one text) misses.
    """
    text = (str(exc) or type(exc).__name__).splitlines()[0]
    return text.replace(key, "***") if len(key) >= 4 else text
