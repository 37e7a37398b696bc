"""Built-in plugin: the ``jsonl`` and ``webhook`` log sink kinds.

Registered through the ``netra_supervisor`` entry point like any team's plugin; both
run behind the bounded queue and thread of :mod:`supervisor.sinks`.

* ``jsonl`` writes one JSON object per event and line (``event`` names the type,
  ``time`` is UTC ISO-8601, then the event's fields), flushed after every batch. Past
  ``max_bytes`` (0: never) the file is rotated: ``events.jsonl`` becomes
  ``events.jsonl.1``, the older ones move up, and at most :attr:`JsonlSink.backups`
  rotated files are kept.
* ``webhook`` POSTs each selected event as one JSON object to the URL held by the
  environment variable ``url_env`` (default events: ``iteration_finished``,
  ``test_hung``, ``run_finished``). Each request waits at most ``timeout``; a failed
  request (connection error, timeout, 5xx, 408, 429) is retried with exponential
  backoff, jitter and a cap (:attr:`WebhookSink.retry`). The URL is a secret: it is
  masked everywhere, and errors name the sink.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from urllib.parse import unquote

import pluggy

from supervisor.config import Config, OptionError, SinkConfig
from supervisor.core.backoff import Backoff
from supervisor.core.events import Event
from supervisor.core.kinds import Key, LogSink
from supervisor.sinks import event_record
from supervisor.text import exception_line

hookimpl = pluggy.HookimplMarker("netra_supervisor")


def _line(event: Event) -> bytes:
    return (json.dumps(event_record(event), default=str, ensure_ascii=False) + "\n").encode()


class _JsonlHandle:
    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "ab")  # noqa: SIM115 - kept open for the whole run
        self._size = self._fh.tell()

    def write(self, events: list[Event]) -> None:
        for event in events:
            line = _line(event)
            if self.max_bytes and self._size and self._size + len(line) > self.max_bytes:
                self._rotate()
            self._fh.write(line)
            self._size += len(line)
        self._fh.flush()

    def _rotate(self) -> None:
        self._fh.close()
        name = self.path.name
        oldest = self.path.with_name(f"{name}.{self.backups}")
        if oldest.exists():
            oldest.unlink()
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{name}.1"))
        self._fh = open(self.path, "ab")  # noqa: SIM115
        self._size = 0

    def close(self) -> None:
        self._fh.close()


class JsonlSink(LogSink):
    """``kind = "jsonl"``: every event (or ``events``), one JSON line each, rotated."""

    name = "jsonl"
    keys = {
        "path": Key("str", required=True, example='path = ".netra/events.jsonl"'),
        "max_bytes": Key("int", default=50_000_000),  # rotate past this size; 0: never
    }
    backups = 5  # rotated files kept: events.jsonl.1 (newest) .. events.jsonl.5

    def open(self, sink: SinkConfig, config: Config) -> _JsonlHandle:
        path, max_bytes = sink.options["path"], sink.options["max_bytes"]
        return _JsonlHandle(config.resolve(path), max_bytes, self.backups)


class SinkDeliveryError(Exception):
    """A webhook delivery failed; the text never holds the URL."""


class _Retryable(Exception):
    """A delivery that may succeed if tried again (connection error, timeout, 5xx, 408, 429)."""


class _Refused(Exception):
    """The server refuses this request: trying again will not help."""


class _WebhookHandle:
    def __init__(self, url: str, timeout: float, policy: Backoff) -> None:
        import httpx  # here: only runs with a webhook sink pay its ~100 ms import
        import tenacity

        self._httpx = httpx
        self._url = url
        self._client = httpx.Client(timeout=timeout, follow_redirects=False)
        self._timeout = timeout
        self._hurry = threading.Event()
        self._retrying = policy.retrying(
            tenacity.retry_if_exception_type(_Retryable), wake=self._hurry
        )

    def hurry(self) -> None:
        """The run is ending: retry without waiting."""
        self._hurry.set()

    def write(self, events: list[Event]) -> None:
        for event in events:
            self._post(json.dumps(event_record(event), default=str).encode())

    def _post(self, body: bytes) -> None:
        tries = 0
        try:
            for attempt in self._retrying:
                with attempt:
                    tries = attempt.retry_state.attempt_number
                    self._post_once(body)
        except (_Retryable, _Refused) as exc:
            raise SinkDeliveryError(f"{exc} (after {tries} attempt(s))") from None

    def _post_once(self, body: bytes) -> None:
        try:
            response = self._client.post(
                self._url, content=body, headers={"content-type": "application/json"}
            )
        except self._httpx.TimeoutException:
            raise _Retryable(f"no answer within {self._timeout:g}s") from None
        except self._httpx.HTTPError as exc:
            # httpx messages hold no URL, but never trust that: keep the type only
            # when the message mentions the address
            error = exception_line(exc)
            if self._url in error or "://" in error:
                error = type(exc).__name__
            raise _Retryable(error) from None
        status = response.status_code
        if status < 300:
            return
        if 400 <= status < 500 and status not in (408, 429):
            raise _Refused(f"HTTP {status}")
        raise _Retryable(f"HTTP {status}")

    def close(self) -> None:
        self._client.close()


def url_secrets(url: str) -> list[str]:
    """What to mask for a webhook URL: the URL, its path and query, its credentials,
    and every token-like part of them, so that a shortened URL (pytest's assertion
    messages abbreviate long strings with "...") still shows no secret."""
    if not url:
        return []
    import httpx

    out = [url]
    try:
        parsed = httpx.URL(url)
    except Exception:  # noqa: BLE001 - still mask the literal value
        return out
    out.append(str(parsed))
    path = parsed.raw_path.decode("ascii", "replace")
    if len(path) > 1:
        out.append(path)
    if parsed.userinfo:
        out.append(parsed.userinfo.decode("ascii", "replace"))
    if parsed.password:
        out.append(parsed.password)
    for part in re.split(r"[/?&=;:@]", path):
        for text in {part, unquote(part)}:
            if len(text) >= 16 or (len(text) >= 8 and any(c.isdigit() for c in text)):
                out.append(text)
    return out


class WebhookSink(LogSink):
    """``kind = "webhook"``: POST selected events to the URL in ``$url_env``."""

    name = "webhook"
    keys = {
        "url_env": Key("str", required=True, example='url_env = "NETRA_WEBHOOK_URL"'),
        "timeout": Key("duration", default="10s"),  # per request
    }
    default_events = ("iteration_finished", "test_hung", "run_finished")
    queue_size = 256  # one request per event: keep the backlog short
    batch_size = 1  # so a failure counts per event
    max_failures = 5  # consecutive failed deliveries before quarantine
    #: Per event: the first try and 2 retries, 0.5 s then 1 s apart (plus jitter).
    retry = Backoff(first=0.5, cap=4.0, jitter=0.25, attempts=3)

    def validate(self, sink: SinkConfig, config: Config) -> None:
        import httpx

        name = sink.options["url_env"]
        url = _url(sink)
        if not url:
            raise OptionError(
                "url_env",
                f"the environment variable {name} is not set; "
                f"export {name}=https://... with the webhook URL",
            )
        try:
            parsed = httpx.URL(url)
        except Exception:  # noqa: BLE001 - never echo the value
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            raise OptionError(
                "url_env",
                f"${name} is not an http(s) URL (its value is not shown: it is a secret)",
            )

    def secrets(self, sink: SinkConfig) -> list[str]:
        return url_secrets(_url(sink))

    def open(self, sink: SinkConfig, config: Config) -> _WebhookHandle:
        return _WebhookHandle(_url(sink), sink.options["timeout"], self.retry)


def _url(sink: SinkConfig) -> str:
    """The webhook URL: the value of the environment variable ``url_env`` names."""
    return os.environ.get(sink.options["url_env"], "").strip()


@hookimpl
def netra_register_log_sinks() -> list[LogSink]:
    return [JsonlSink(), WebhookSink()]
