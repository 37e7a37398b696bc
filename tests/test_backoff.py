"""The three retry policies (supervisor/core/backoff.py), each against the real thing:
the health check and the webhook sink against a real HTTP server on 127.0.0.1 that
fails a given number of times, the history writer against a real SQLite file that
another connection holds locked. No waiting is faked: the waits are the policies' own.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from netra_supervisor_plugins.builtin_sinks import SinkDeliveryError, WebhookSink, _WebhookHandle
from supervisor.core.backoff import Backoff
from supervisor.core.events import TestResult, utc_now
from supervisor.core.health import HEALTH_BACKOFF, wait_healthy
from supervisor.store.writer import WRITE_BACKOFF, HistoryStore, StoreError


class Flaky:
    """An HTTP server on 127.0.0.1 answering ``failures`` requests with ``status``,
    then 200. ``on_request(n)`` runs as request ``n`` (1-based) arrives."""

    def __init__(self, failures: int, status: int = 503, on_request=None) -> None:
        self.failures, self.status, self.on_request = failures, status, on_request
        self.seen = 0
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length", 0))
                if length:
                    self.rfile.read(length)
                with outer.lock:
                    outer.seen += 1
                    n = outer.seen
                if outer.on_request is not None:
                    outer.on_request(n)
                self.send_response(outer.status if n <= outer.failures else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers() -> Iterator[list[Flaky]]:
    started: list[Flaky] = []
    yield started
    for server in started:
        server.close()


def serve(servers: list[Flaky], *args, **kwargs) -> Flaky:
    server = Flaky(*args, **kwargs)
    servers.append(server)
    return server


# --------------------------------------------------------------------------- the policy


@pytest.mark.parametrize("policy", [HEALTH_BACKOFF, WebhookSink.retry, WRITE_BACKOFF])
def test_each_wait_doubles_gets_its_jitter_and_stays_under_the_cap(policy):
    for failures in range(1, 12):
        floor = min(policy.first * 2 ** (failures - 1), policy.cap - policy.jitter)
        delays = [policy.delay(failures) for _ in range(200)]
        assert all(floor <= d <= floor + policy.jitter <= policy.cap for d in delays)
        assert len(set(delays)) > 1  # jittered: not all the same
    assert policy.delay(1) < policy.first + policy.jitter + 1e-9


# --------------------------------------------------------------------------- health


def test_health_passes_once_the_server_stops_answering_503(servers):
    server = serve(servers, failures=3)
    lines: list[str] = []
    ok, message = wait_healthy(server.url, 30.0, threading.Event(), lines.append)
    assert ok, message
    assert message.startswith("healthy after ")
    assert server.seen == 4  # three 503s, then the 200: no request after it


def test_never_healthy_ends_at_the_deadline_with_the_last_problem(servers):
    server = serve(servers, failures=10_000)
    lines: list[str] = []
    ok, message = wait_healthy(server.url, 1.0, threading.Event(), lines.append, report_every=0.3)
    assert not ok
    assert message == f"not healthy after 1s ({server.url}: HTTP 503)"
    assert server.seen >= 3  # retried until the deadline, not given up early
    assert lines and all(line.startswith(f"waiting for {server.url}: ") for line in lines)
    assert lines[-1].endswith("(HTTP 503)")


def test_a_server_that_is_not_there_names_the_connection_error(servers):
    server = serve(servers, failures=0)
    url = server.url
    server.close()
    servers.clear()
    ok, message = wait_healthy(url, 0.5, threading.Event(), lambda line: None)
    assert not ok and message.startswith(f"not healthy after 0.5s ({url}: ConnectError")


def test_stop_ends_a_long_wait_at_once_and_sends_no_further_request(servers):
    stop = threading.Event()
    # the server sets stop as the first request arrives: the check is then in a
    # 60 s wait, which the stop must end without another request
    server = serve(servers, failures=10_000, on_request=lambda n: stop.set())
    slow = Backoff(first=60.0, cap=60.0, jitter=0.0)
    outcome: list[tuple[bool, str]] = []
    waiter = threading.Thread(
        target=lambda: outcome.append(
            wait_healthy(server.url, 300.0, stop, lambda line: None, backoff=slow)
        ),
        daemon=True,
    )
    waiter.start()
    waiter.join(30)  # far below the 60 s wait: only an interrupted wait ends by then
    assert not waiter.is_alive(), "a stopped health check sat in its backoff wait"
    assert outcome == [(False, "interrupted while waiting for the health check")]
    assert server.seen == 1


def test_a_stop_set_before_the_check_sends_no_request(servers):
    server = serve(servers, failures=0)
    stop = threading.Event()
    stop.set()
    ok, message = wait_healthy(server.url, 10.0, stop, lambda line: None)
    assert (ok, message) == (False, "interrupted while waiting for the health check")
    assert server.seen == 0


# --------------------------------------------------------------------------- webhook


def handle(url: str) -> _WebhookHandle:
    return _WebhookHandle(url, 5.0, WebhookSink.retry)


def event(i: int) -> TestResult:
    return TestResult(
        iteration=1,
        phase=1,
        suite="s",
        nodeid=f"t.py::test_{i}",
        outcome="failed",
        duration=0.01,
        started_at=utc_now(),
    )


def test_webhook_that_fails_twice_then_accepts_gets_the_event(servers):
    server = serve(servers, failures=2)
    sink = handle(server.url)
    try:
        sink.write([event(1)])
    finally:
        sink.close()
    assert server.seen == 3


def test_webhook_gives_up_after_three_attempts_naming_the_last_error(servers):
    server = serve(servers, failures=10_000)
    sink = handle(server.url)
    try:
        with pytest.raises(SinkDeliveryError) as info:
            sink.write([event(1)])
    finally:
        sink.close()
    assert str(info.value) == "HTTP 503 (after 3 attempt(s))"
    assert server.url not in str(info.value)
    assert server.seen == 3


def test_webhook_refusal_is_not_retried(servers):
    server = serve(servers, failures=10_000, status=404)
    sink = handle(server.url)
    try:
        with pytest.raises(SinkDeliveryError, match=r"^HTTP 404 \(after 1 attempt\(s\)\)$"):
            sink.write([event(1)])
    finally:
        sink.close()
    assert server.seen == 1


def test_webhook_hurried_retries_without_waiting(servers):
    # a policy whose waits last a minute: once hurried, all three tries go out at once
    server = serve(servers, failures=10_000)
    sink = _WebhookHandle(server.url, 5.0, Backoff(first=60.0, cap=60.0, jitter=0.0, attempts=3))
    sink.hurry()
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            sink.write([event(1)])
        except SinkDeliveryError as exc:
            errors.append(exc)

    sender = threading.Thread(target=deliver, daemon=True)
    sender.start()
    sender.join(30)
    sink.close()
    assert not sender.is_alive(), "a hurried webhook sat in its backoff wait"
    assert [str(e) for e in errors] == ["HTTP 503 (after 3 attempt(s))"]
    assert server.seen == 3


# --------------------------------------------------------------------------- history writer


def lock(path: Path) -> sqlite3.Connection:
    """Hold ``path`` locked against every other connection until released."""
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locker.execute("PRAGMA journal_mode=WAL")
    locker.execute("BEGIN EXCLUSIVE")
    return locker


def release(locker: sqlite3.Connection) -> None:
    locker.execute("ROLLBACK")
    locker.close()


def test_open_retries_while_the_file_is_locked_then_writes_the_run(tmp_path):
    path = tmp_path / "h.db"
    locker = lock(path)
    # SQLite itself waits only 0.1 s (busy_timeout): the lock, held longer, is
    # outlasted by the setup retries (0.2 s, 0.4 s, 0.8 s apart)
    timer = threading.Timer(0.3, release, (locker,))
    timer.start()
    try:
        store = HistoryStore.open(path, busy_timeout=0.1)
    finally:
        timer.join()
    assert store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT id, status FROM runs").fetchall() == [(store.run_id, "running")]
    finally:
        conn.close()


def test_open_on_a_file_that_stays_locked_is_one_clear_error(tmp_path):
    path = tmp_path / "h.db"
    locker = lock(path)
    try:
        with pytest.raises(StoreError) as info:
            HistoryStore.open(path, busy_timeout=0.05)
    finally:
        release(locker)
    assert str(info.value) == f"cannot migrate history database {path}: database is locked"


def test_close_while_locked_gives_up_at_its_deadline_and_counts_the_events(tmp_path):
    path = tmp_path / "h.db"
    errors: list[str] = []
    store = HistoryStore.open(path, busy_timeout=0.05, flush_interval=0.1, on_error=errors.append)
    assert store.flush()
    locker = lock(path)
    try:
        for i in range(20):
            store.put(event(i))
        assert store.close(timeout=1.0) is False
    finally:
        release(locker)
    assert store.closed and store.unsaved == 20
    assert "kept in memory, retrying" in errors[0]
    assert errors[-1].startswith(f"history database {path}: 20 event(s) could not be written")
