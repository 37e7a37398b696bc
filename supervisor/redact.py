"""Keep secrets (JWT secrets, tokens, webhook URLs) out of the database, logs and screen.

A :class:`Redactor` knows the literal secret values of this run and masks them in any
text; :func:`redact_config` masks config values whose key names a secret, before the
config is stored in ``runs.config``. :func:`redacting` is also where runner text is made
storable (:func:`supervisor.text.storable`), once, before anyone sees it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from supervisor.emitters import Emitter, many_of
from supervisor.text import storable

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
            # one token per iteration accumulates: a trie keeps each match attempt as
            # cheap with hundreds of secrets as with one (a flat alternation is not)
            self._pattern = re.compile(_trie_pattern(self._secrets))

    @property
    def active(self) -> bool:
        """Whether there is anything to mask (no cost per text when there is not)."""
        return self._pattern is not None

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


def _trie_pattern(words: list[str]) -> str:
    """A regex matching any of ``words``, longest first, shaped as a trie.

    Chains of single characters are walked in a loop (a PEM key is thousands of
    characters); only branch points nest.
    """
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict[str, Any]) -> str:
        out = []
        while True:
            branches = [ch for ch in node if ch]
            terminal = "" in node
            if len(branches) == 1 and not terminal:  # a plain chain: no group needed
                out.append(re.escape(branches[0]))
                node = node[branches[0]]
                continue
            if not branches:
                return "".join(out)
            alts = [re.escape(ch) + build(node[ch]) for ch in sorted(branches)]
            body = "(?:" + "|".join(alts) + ")"
            # greedy: the longer secret first, the shorter one if the longer fails
            return "".join(out) + (body + "?" if terminal else body)

    return build(trie)


E = TypeVar("E")


def redact_event(event: E, redact: Redactor) -> E:
    """The event with every text field (and tuple of texts) masked, then made storable
    (lone surrogates escaped, ``bytes`` decoded); the same object when nothing changed.
    Applied once where runner events enter the bus, so the model, plugin hooks, sinks,
    store and screen all see only masked text that any of them can encode.

    Called for every event of a run: without secrets, plain ASCII text (nearly all of
    it) is passed over after one C-speed check, and field names are looked up once per
    event type."""
    names = _TEXT_FIELDS.get(type(event))
    if names is None:
        names = _field_names(event)
    active = redact.active
    changes: dict[str, Any] = {}
    for name in names:
        value = getattr(event, name)
        if type(value) is str:
            if not active and value.isascii():
                continue
            clean: Any = _clean(value, redact)
        elif isinstance(value, (bytes, bytearray)):
            clean = _clean(value, redact)
        elif type(value) is tuple and value and all(type(v) is str for v in value):
            if not active and all(v.isascii() for v in value):
                continue
            clean = tuple(_clean(v, redact) for v in value)
        else:
            continue
        if clean is not value and clean != value:
            changes[name] = clean
    return dataclasses.replace(event, **changes) if changes else event  # type: ignore[type-var]


_TEXT_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(event: object) -> tuple[str, ...]:
    """The fields of an event type that can hold text (declared ``str``, ``bytes`` or a
    tuple of them, optional or not); numbers and flags are never looked at."""
    names: tuple[str, ...] = ()
    if dataclasses.is_dataclass(event):
        names = tuple(
            f.name
            for f in dataclasses.fields(event)  # type: ignore[arg-type]
            if not isinstance(f.type, str) or any(t in f.type for t in ("str", "bytes", "Any"))
        )
    _TEXT_FIELDS[type(event)] = names
    return names


def _clean(value: str | bytes | bytearray, redact: Redactor) -> str:
    """Masked first, on the text as it came (a secret from the environment may hold a
    surrogate itself), then storable."""
    text = value if isinstance(value, str) else storable(value)
    if redact.active:
        text = redact(text)
    return storable(text)


def redacting(emit: Callable[[Any], None], redact: Redactor) -> Emitter:
    """``emit`` behind :func:`redact_event`; its ``many`` masks a batch and hands it
    on as one."""
    many = many_of(emit)

    def emit_redacted(event: Any) -> None:
        emit(redact_event(event, redact))

    def emit_many_redacted(events: list[Any]) -> None:
        many([redact_event(event, redact) for event in events])

    return Emitter(emit_redacted, emit_many_redacted)


def redact_file(path: str, redact: Redactor) -> None:
    """Mask the secrets in a log file a child process wrote, in place, line by line.

    Used on a suite's log files once the suite finished; a missing file is fine. A file
    without any secret is only read, never rewritten.
    """
    if not redact.active or not _holds_secret(path, redact):
        return
    tmp = path + ".redacting"
    try:
        with open(path, "rb") as src, open(tmp, "wb") as dst:
            for raw in src:
                dst.write(
                    redact(raw.decode("utf-8", "surrogateescape")).encode(
                        "utf-8", "surrogateescape"
                    )
                )
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _holds_secret(path: str, redact: Redactor) -> bool:
    try:
        with open(path, "rb") as fh:
            for raw in fh:
                text = raw.decode("utf-8", "surrogateescape")
                if redact(text) != text:
                    return True
    except OSError:
        pass
    return False


def secrets_named_by_config(data: Any, env: Mapping[str, str]) -> list[str]:
    """The values of the environment variables a config names for secrets.

    The config never holds a secret itself: it names the variable (``secret_env``,
    ``url_env``, any ``*_env`` key; ``export_as`` for the minted token). Whoever renders
    from a stored config (``runs.config``) and the environment it runs in masks these
    values too, so a secret printed by a test under another name still cannot leak.
    """
    found: list[str] = []

    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                walk(v, str(k))
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and (key.endswith("_env") or key == "export_as"):
            value = env.get(node, "")
            if len(value) >= _MIN_SECRET_LEN:
                found.append(value)

    walk(data)
    return found
