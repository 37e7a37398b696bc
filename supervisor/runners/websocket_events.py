"""The ``websocket-events`` suite kind: does a WebSocket stream the expected events?

Chat-agent backends stream a conversation as JSON events (``{"type": "agent_started",
...}``). This kind connects to ``url`` (with ``Authorization: Bearer <token>`` when
``[auth]`` is set), sends ``send`` (a table as JSON, or a string as is), and checks that
the ``expect`` event types arrive in that order within ``timeout``. Other messages may
come in between. Each expected event is one test (``SUITE::agent_started``), so a
dashboard counts them like any test: passed when it arrived in order; failed when it
did not arrive, arrived out of order, or the connection was refused or closed first,
with a message that says which and what arrived instead.

It emits the same events as the pytest kind (TestsCollected, TestStarted, TestResult,
SuiteFinished), so the model, the store and the reporter need nothing new. A verify
pass (``ctx.only``) reports only the ids it asks for, still checking the order from the
first event, and stops listening after the last of them; ``ctx.cut`` stops it early.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from supervisor.config import OptionError
from supervisor.core.events import SuiteFinished, TestResult, TestsCollected, TestStarted, utc_now
from supervisor.core.kinds import Key, RunContext, SuiteKind
from supervisor.text import exception_line, one_line, storable

if TYPE_CHECKING:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import ClientConnection

    from supervisor.config import Config, SuiteConfig

TICK = 0.2  # seconds between checks of ctx.stop while waiting for a message
MAX_SHOWN = 20  # event types listed in a failure message
MAX_TRANSCRIPT = 200  # messages kept for the longrepr
MAX_MESSAGE_CHARS = 500  # of one message in the longrepr


def test_ids(suite: SuiteConfig) -> list[str]:
    """``SUITE::event`` per expected event; a repeated event gets ``[2]``, ``[3]``..."""
    seen: dict[str, int] = {}
    ids = []
    for name in suite.options["expect"]:
        seen[name] = seen.get(name, 0) + 1
        suffix = f"[{seen[name]}]" if seen[name] > 1 else ""
        ids.append(f"{suite.name}::{name}{suffix}")
    return ids


def payload(send: Any) -> str | None:
    """What to send: a table as JSON, a string as it is, nothing for None."""
    if send is None:
        return None
    if isinstance(send, str):
        return send
    return json.dumps(send, default=str)


class WebSocketEventsKind(SuiteKind):
    """``kind = "websocket-events"``."""

    name = "websocket-events"
    keys = {
        "url": Key("str", required=True, example='url = "ws://127.0.0.1:8000/ws"'),
        "send": Key("any"),  # a table (sent as JSON) or a string: checked in validate
        "expect": Key("strlist", required=True, example='expect = ["agent_started"]'),
        "timeout": Key("duration", default="30s"),
    }

    def validate(self, suite: SuiteConfig, config: Config) -> None:
        url, send = suite.options["url"], suite.options["send"]
        if not url.startswith(("ws://", "wss://")):
            raise OptionError("url", f'{url!r} is not a WebSocket URL; write "ws://host:port/path"')
        if send is not None and not isinstance(send, (str, dict)):
            raise OptionError(
                "send",
                'expected a table (sent as JSON) or a string, e.g. send = { type = "ping" }',
            )
        if suite.options["timeout"] <= 0:
            raise OptionError("timeout", 'must be longer than 0s, e.g. timeout = "30s"')

    def collect(self, suite: SuiteConfig, config: Config, env: Mapping[str, str]) -> list[str]:
        return test_ids(suite)  # the ids come from the config: no connection needed

    def run(self, suite: SuiteConfig, ctx: RunContext) -> None:
        _EventsRun(suite, ctx).run()


@dataclass
class _Arrived:
    """The messages received so far: their event types, and a short transcript."""

    types: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    def add(self, raw: str | bytes) -> str:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        kind = _event_type(text)
        self.types.append(kind)
        if len(self.transcript) < MAX_TRANSCRIPT:
            self.transcript.append(text[:MAX_MESSAGE_CHARS])
        return kind

    def summary(self) -> str:
        if not self.types:
            return "nothing arrived"
        shown = self.types[:MAX_SHOWN]
        more = f", … ({len(self.types) - MAX_SHOWN} more)" if len(self.types) > MAX_SHOWN else ""
        return "arrived: " + ", ".join(shown) + more

    def longrepr(self, url: str) -> str:
        lines = [f"messages received from {url} ({len(self.types)}):"]
        lines += [f"  {i}. {t}" for i, t in enumerate(self.transcript, start=1)]
        if len(self.types) > len(self.transcript):
            lines.append(f"  … {len(self.types) - len(self.transcript)} more not kept")
        return "\n".join(lines)


def _event_type(text: str) -> str:
    """A message's ``type``; non-JSON or untyped messages are named as such."""
    try:
        data = json.loads(text)
    except ValueError:
        return "(not JSON)"
    if isinstance(data, dict) and isinstance(data.get("type"), str):
        return data["type"]
    return "(JSON without a type)"


class _EventsRun:
    """One run of one suite: a single connection, one result per expected event."""

    def __init__(self, suite: SuiteConfig, ctx: RunContext) -> None:
        self.suite = suite
        self.ctx = ctx
        self.url: str = suite.options["url"]
        self.timeout: float = suite.options["timeout"]
        self.ids = test_ids(suite)
        self.expect = list(suite.options["expect"])
        #: the indexes reported (a verify pass: ``ctx.only``), and the last to wait for
        self.selected = {i for i, t in enumerate(self.ids) if ctx.only is None or t in ctx.only}
        self.last = max(self.selected, default=-1)
        self.arrived = _Arrived()
        self.next = 0  # index of the expected event being waited for
        self.t_wait = 0.0  # when waiting for it began
        self.started_at = ""
        self.deadline = time.monotonic() + self.timeout  # for the whole stream
        #: expected index → (its arrival position, the event it came before): an
        #: expected event that arrived while an earlier one was still awaited
        self.early: dict[int, tuple[int, int]] = {}

    def _start(self, index: int) -> None:
        self.t_wait, self.started_at = time.monotonic(), utc_now()
        if index not in self.selected:
            return
        self.ctx.report(
            TestStarted,
            self.suite.name,
            nodeid=self.ids[index],
            deadline=max(0.0, self.deadline - time.monotonic()),  # what is left of it
        )

    def _result(self, index: int, outcome: str, message: str = "", longrepr: str = "") -> None:
        if index not in self.selected:
            return
        self.ctx.report(
            TestResult,
            self.suite.name,
            nodeid=self.ids[index],
            outcome=outcome,
            duration=time.monotonic() - self.t_wait,
            started_at=self.started_at,
            message=message,
            longrepr=longrepr,
        )

    def _finished(self, status: str, message: str = "") -> None:
        self.ctx.report(
            SuiteFinished,
            self.suite.name,
            status=status,
            message=message,
        )

    # -- the run ---------------------------------------------------------------------
    def run(self) -> None:
        if not self.selected:  # a verify pass with none of this suite's ids
            self._finished("ok")
            return
        self.ctx.report(
            TestsCollected,
            self.suite.name,
            nodeids=tuple(t for i, t in enumerate(self.ids) if i in self.selected),
        )
        self.deadline = time.monotonic() + self.timeout
        self._start(0)
        # websockets is imported here, so runs without this kind do not pay for it
        from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI
        from websockets.sync.client import connect

        try:
            ws = connect(
                self.url,
                additional_headers=self._headers(),
                open_timeout=max(0.1, self.timeout),
                close_timeout=2.0,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            reason = exc.response.reason_phrase
            body = _short(exc.response.body)
            why = f"handshake refused: HTTP {status} {reason}".rstrip()
            if status in (401, 403):
                why += " (the bearer token was " + (
                    "sent; was it rejected?)" if self._token() else "not sent: is [auth] set?)"
                )
            self._fail_rest(why + (f": {body}" if body else ""), suite_error=True)
            return
        except (InvalidHandshake, InvalidURI, OSError, TimeoutError) as exc:
            self._fail_rest(f"cannot connect to {self.url}: {exception_line(exc)}", True)
            return
        with ws:
            self._converse(ws, self.deadline)

    def _token(self) -> str:
        auth = self.ctx.config.auth
        return self.ctx.env.get(auth.export_as, "") if auth is not None else ""

    def _headers(self) -> dict[str, str]:
        token = self._token()
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _converse(self, ws: ClientConnection, deadline: float) -> None:
        from websockets.exceptions import ConnectionClosed

        text = payload(self.suite.options["send"])
        try:
            if text is not None:
                ws.send(text)
            while self.next <= self.last:
                if self.ctx.stop.is_set():
                    self._finished("interrupted", "stopped by the user")
                    return
                if self.ctx.cut.is_set():
                    not_run = sum(1 for i in self.selected if i >= self.next)
                    why = f"stopped: the phase's gate can no longer hold ({not_run} not run)"
                    self._finished("cut", why)
                    return
                left = deadline - time.monotonic()
                if left <= 0:
                    self._fail_rest(f"did not arrive within {self.timeout:g}s")
                    return
                try:
                    raw = ws.recv(timeout=min(TICK, left))
                except TimeoutError:
                    continue
                self._arrived(self.arrived.add(raw))
        except ConnectionClosed as exc:
            self._fail_rest(_closed(exc))
            return
        self._finished("ok")

    def _arrived(self, kind: str) -> None:
        """Match one arrival against the expected order."""
        if kind == self.expect[self.next]:
            self._result(self.next, "passed")
            self.next += 1
            if self.next <= self.last:
                self._start(self.next)
            return
        for later in range(self.next + 1, len(self.expect)):
            if self.expect[later] == kind and later not in self.early:
                self.early[later] = (len(self.arrived.types), self.next)
                return

    def _fail_rest(self, why: str, suite_error: bool = False) -> None:
        """Every expected event not yet arrived in order fails, saying why."""
        longrepr = self.arrived.longrepr(self.url)
        summary = self.arrived.summary()
        for index in range(self.next, self.last + 1):
            if index != self.next:
                self._start(index)
            position, before = self.early.get(index, (0, self.next))
            if before < self.next:  # it came before an event that did arrive after it
                message = (
                    f"wrong order: it arrived as message {position}, before "
                    f"{self.expect[before]}, and not again after it ({why}); {summary}"
                )
            elif index == self.next or suite_error:
                message = f"{why}; {summary}"
            else:
                message = (
                    f"not checked: {self.expect[self.next]} never arrived before it"
                    f" ({why}); {summary}"
                )
            self._result(index, "failed", message, longrepr)
        self._finished("error" if suite_error else "ok", why if suite_error else "")


def _closed(exc: ConnectionClosed) -> str:
    """How the server ended the connection, e.g. ``closed with code 1011 (internal
    error): boom``."""
    if exc.rcvd is not None:
        return f"the server closed the connection with code {exc.rcvd}"
    if exc.sent is not None:  # e.g. 1009: a message over the 1 MiB limit
        return f"the connection was closed from our side with code {exc.sent}"
    return "the connection was lost without a close frame (code 1006)"


def _short(body: bytes | bytearray | None, limit: int = 200) -> str:
    """The head of a rejected handshake's body, on one line of at most ``limit`` bytes."""
    return one_line(storable(body), limit) if body else ""
