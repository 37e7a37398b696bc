"""Log sinks end to end: real ``netra-supervisor run`` subprocesses, real pytest, real
SQLite, a real HTTP receiver on 127.0.0.1 (``http.server`` in a thread) for the webhook.

Nothing here measures time: a slow sink is shown not to hold the run back by the run
finishing with its events dropped and counted while the receiver never answered.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import textwrap
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_helpers import CLI, query, write

from supervisor.config import SinkConfig
from supervisor.core.events import LogLine

TOKEN = "tok-s3cr3t-5f2a9c"  # the secret part of the webhook URL
URL_ENV = "TEAM_NOTIFY_URL"  # a name the generic secret filter would not catch


def run_cli(args, cwd: Path, env: dict | None = None, timeout: float = 180):
    full = {k: v for k, v in os.environ.items() if k not in ("NETRA_STRICT_PLUGINS", URL_ENV)}
    full.update(env or {})
    return subprocess.run(
        CLI + args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full
    )


def assert_secret_nowhere(root: Path, *texts: str, raw_pytest_logs: bool = True) -> None:
    """The token is in no file under ``root`` (DB, WAL, logs, sinks) and no output.

    ``raw_pytest_logs=False`` skips pytest's own terminal output (``.netra/logs/*/*.log``,
    written by the child, not by us) for a test that prints the URL itself.
    """
    for text in texts:
        assert TOKEN not in text
    for path in root.rglob("*"):
        if not raw_pytest_logs and path.parent.parent.name == "logs" and path.suffix == ".log":
            continue
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"secret leaked into {path}"
    db = root / ".netra/history.db"
    if db.exists():
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            tables = [
                r[0] for r in conn.execute("select name from sqlite_master where type='table'")
            ]
            for table in tables:
                for row in conn.execute(f"select * from [{table}]"):
                    assert TOKEN not in repr(row), f"secret in table {table}: {row}"
        finally:
            conn.close()


class Receiver:
    """A webhook receiver on 127.0.0.1: records requests, answers ``status``.

    With ``block`` it holds every request until the event is set (a stuck server).
    """

    def __init__(self, status: int = 200, block: threading.Event | None = None) -> None:
        self.status, self.block = status, block
        self.requests: list[tuple[str, str, dict | None]] = []  # (path, content-type, body)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with outer.lock:
                    outer.requests.append(
                        (self.path, self.headers.get("content-type", ""), json.loads(body))
                    )
                if outer.block is not None:
                    outer.block.wait(120)
                self.send_response(outer.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{TOKEN}?key={TOKEN}"

    def close(self) -> None:
        if self.block is not None:
            self.block.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made: list[Receiver] = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


def project(tmp_path: Path, sinks: str, tests: str, suite: str = "") -> Path:
    write(tmp_path / "t/test_things.py", tests)
    write(
        tmp_path / "netra-supervisor.toml",
        f"""
[run]
until = "once"

[watchdog]
grace = "1s"

[[suite]]
name = "things"
args = ["t"]
{suite}
"""
        + textwrap.dedent(sinks),
    )
    return tmp_path


PASSING = """
    import pytest
    @pytest.mark.parametrize("n", range({n}))
    def test_p(n): assert n >= 0
"""


# --------------------------------------------------------------------------- jsonl


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_lines_parse_and_the_file_rotates(tmp_path):
    root = project(
        tmp_path,
        """
        [[sink]]
        kind = "jsonl"
        path = "out/events.jsonl"
        max_bytes = 3000
        """,
        PASSING.format(n=10),
    )
    proc = run_cli(["run", "--headless"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    current = root / "out/events.jsonl"
    rotated = sorted(root.glob("out/events.jsonl.*"), key=lambda p: -int(p.suffix[1:]))
    assert rotated, "nothing was rotated past max_bytes"
    assert len(rotated) <= 5
    records = []
    for path in [*rotated, current]:  # oldest first
        assert path.stat().st_size <= 3000
        records += _lines(path)
    kinds = [r["event"] for r in records]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.count("test_result") == 10 and kinds.count("test_started") == 10
    for kind in ("iteration_started", "phase_started", "phase_finished", "iteration_finished"):
        assert kind in kinds
    for record in records:
        datetime.fromisoformat(record["time"])
    started = next(r for r in records if r["event"] == "test_started")
    datetime.fromisoformat(started["at"])  # the monotonic clock became wall-clock text
    result = next(r for r in records if r["event"] == "test_result")
    assert result["outcome"] == "passed" and result["nodeid"].startswith("t/test_things.py::")
    assert records[-1]["status"] == "passed" and records[-1]["exit_code"] == 0
    assert query(root / ".netra/history.db", "select count(*) from results") == [(10,)]


def test_jsonl_rotation_keeps_five_files(tmp_path):
    from netra_supervisor_plugins.builtin_sinks import JsonlSink
    from supervisor.config import parse_config

    config = parse_config({}, tmp_path / "netra-supervisor.toml")
    handle = JsonlSink().open(
        SinkConfig(kind="jsonl", options={"path": "e.jsonl", "max_bytes": 500}), config
    )
    for i in range(300):
        handle.write([LogLine("info", "test", f"line {i}")])
    handle.close()
    names = sorted(p.name for p in tmp_path.glob("e.jsonl*"))
    assert names == ["e.jsonl", *(f"e.jsonl.{i}" for i in range(1, 6))]
    texts = []
    for name in ["e.jsonl.5", "e.jsonl.4", "e.jsonl.3", "e.jsonl.2", "e.jsonl.1", "e.jsonl"]:
        path = tmp_path / name
        assert 0 < path.stat().st_size <= 500
        texts += [r["text"] for r in _lines(path)]
    n = len(texts)
    assert texts == [f"line {i}" for i in range(300 - n, 300)]  # newest kept, in order


def test_jsonl_is_flushed_on_sigint(tmp_path):
    root = project(
        tmp_path,
        """
        [[sink]]
        kind = "jsonl"
        path = "events.jsonl"
        """,
        """
        import time, pytest
        @pytest.mark.parametrize("n", range(200))
        def test_slow(n): time.sleep(0.1)
        """,
    )
    env = {k: v for k, v in os.environ.items() if k != "NETRA_STRICT_PLUGINS"}
    proc = subprocess.Popen(
        CLI + ["run", "--headless"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sink = root / "events.jsonl"
    try:
        for _ in range(600):  # wait for results to reach the sink's file, not a time
            if sink.exists() and sink.read_text().count('"test_result"') >= 3:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    records = _lines(sink)
    assert records[-1]["event"] == "run_finished"
    assert records[-1]["status"] == "interrupted" and records[-1]["exit_code"] == 130
    in_sink = sum(1 for r in records if r["event"] == "test_result")
    assert in_sink >= 3
    assert query(root / ".netra/history.db", "select count(*) from results") == [(in_sink,)]


# --------------------------------------------------------------------------- webhook


HANGS = """
    import time
    def test_ok(): pass
    def test_fails(): assert 1 == 2, "one is not two"
    def test_hangs(): time.sleep(60)
"""


def test_webhook_posts_selected_events_and_the_url_stays_secret(tmp_path, receiver):
    hook = receiver()
    root = project(
        tmp_path,
        f"""
        [[sink]]
        kind = "webhook"
        url_env = "{URL_ENV}"
        events = ["test_hung", "phase_finished", "iteration_finished", "run_finished"]
        timeout = "10s"

        [[sink]]
        kind = "jsonl"
        path = "events.jsonl"
        """,
        HANGS,
        suite='test_timeout = "1s"',
    )
    proc = run_cli(["run", "--headless", "-v"], root, env={URL_ENV: hook.url})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    kinds = [body["event"] for _, _, body in hook.requests]
    assert kinds == ["test_hung", "phase_finished", "iteration_finished", "run_finished"]
    assert {path for path, _, _ in hook.requests} == {f"/hooks/{TOKEN}?key={TOKEN}"}
    assert {ctype for _, ctype, _ in hook.requests} == {"application/json"}
    hung = hook.requests[0][2]
    assert hung["nodeid"] == "t/test_things.py::test_hangs" and hung["reason"] == "deadline"
    finished = hook.requests[2][2]
    assert finished["counts"]["passed"] == 1 and finished["counts"]["failed"] == 1
    assert finished["counts"]["hung"] == 1 and finished["status"] == "failed"
    assert hook.requests[3][2]["exit_code"] == 1
    assert "] sinks:" not in proc.stdout  # every event delivered: nothing to report
    assert_secret_nowhere(root, proc.stdout, proc.stderr)


def test_webhook_server_down_is_retried_then_quarantined(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hooks/{TOKEN}"
    root = project(
        tmp_path,
        f"""
        [[sink]]
        kind = "webhook"
        url_env = "{URL_ENV}"
        events = ["test_result", "phase_finished", "iteration_finished", "run_finished"]
        """,
        textwrap.dedent(PASSING.format(n=12)) + "\ndef test_fails(): assert False\n",
    )
    proc = run_cli(["run", "--headless"], root, env={URL_ENV: url})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    db = root / ".netra/history.db"
    assert query(db, "select outcome, count(*) from results group by outcome") == [
        ("failed", 1),
        ("passed", 12),
    ]
    errors = query(db, "select plugin, hook, error from plugin_errors")
    assert len(errors) == 1, errors
    plugin, hook, error = errors[0]
    assert plugin == "builtin_sinks" and hook == "sink[0] (webhook).write"
    assert "5 consecutive failed writes" in error and "Connection refused" in error
    assert "sink[0] (webhook).write" in proc.stdout and "quarantined" in proc.stdout
    logs = query(db, "select text from logs where source = 'sinks'")
    assert len(logs) == 1 and "sink[0] (webhook) (quarantined)" in logs[0][0]
    assert query(db, "select status, exit_code from runs") == [("failed", 1)]
    assert_secret_nowhere(root, proc.stdout, proc.stderr)


def test_webhook_5xx_is_retried_three_times_per_event_then_quarantined(tmp_path, receiver):
    hook = receiver(status=503)
    root = project(
        tmp_path,
        f"""
        [[sink]]
        kind = "webhook"
        url_env = "{URL_ENV}"
        events = ["test_result"]
        """,
        PASSING.format(n=10),
    )
    proc = run_cli(["run", "--headless"], root, env={URL_ENV: hook.url})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # 5 events × 3 attempts, then quarantine: the other 5 results never reach it
    assert len(hook.requests) == 15
    assert [body["nodeid"] for _, _, body in hook.requests[::3]] == [
        f"t/test_things.py::test_p[{n}]" for n in range(5)
    ]
    errors = query(root / ".netra/history.db", "select hook, error from plugin_errors")
    assert errors[0][0] == "sink[0] (webhook).write" and "HTTP 503" in errors[0][1]
    assert query(root / ".netra/history.db", "select count(*) from results") == [(10,)]
    assert_secret_nowhere(root, proc.stdout, proc.stderr)


def test_a_stuck_webhook_drops_and_counts_events_instead_of_holding_the_run(tmp_path, receiver):
    hook = receiver(block=threading.Event())  # answers nothing until the test ends
    root = project(
        tmp_path,
        f"""
        [[sink]]
        kind = "webhook"
        url_env = "{URL_ENV}"
        events = ["test_started", "test_result"]
        timeout = "120s"
        """,
        PASSING.format(n=400),
    )
    proc = run_cli(["run", "--headless"], root, env={URL_ENV: hook.url})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    db = root / ".netra/history.db"
    assert query(db, "select count(*) from results where outcome = 'passed'") == [(400,)]
    assert len(hook.requests) == 1  # the first event is still waiting for an answer
    (line,) = [text for (text,) in query(db, "select text from logs where source = 'sinks'")]
    assert line in proc.stdout
    dropped = int(re.search(r"(\d+) event\(s\) dropped because its queue was full", line)[1])
    undelivered = int(re.search(r"(\d+) event\(s\) not delivered", line)[1])
    # 800 events: one in flight, the queue (256) kept the newest, the rest dropped
    assert undelivered == 256 and dropped == 800 - 1 - 256, line
    assert query(db, "select count(*) from plugin_errors") == [(0,)]
    assert_secret_nowhere(root, proc.stdout, proc.stderr)


# --------------------------------------------------------------------------- config errors


def test_webhook_without_its_environment_variable_is_exit_2(tmp_path):
    root = project(
        tmp_path,
        f"""
        [[sink]]
        kind = "webhook"
        url_env = "{URL_ENV}"
        """,
        PASSING.format(n=1),
    )
    proc = run_cli(["run", "--headless"], root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "sink[0] (webhook).url_env" in lines[0] and f"{URL_ENV} is not set" in lines[0]
    assert not (root / ".netra").exists()  # nothing ran


def test_webhook_url_that_is_not_http_is_exit_2_without_showing_it(tmp_path):
    root = project(
        tmp_path,
        f"""
        [[sink]]
        kind = "webhook"
        url_env = "{URL_ENV}"
        """,
        PASSING.format(n=1),
    )
    proc = run_cli(["run", "--headless"], root, env={URL_ENV: f"ftp://host/{TOKEN}"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not an http(s) URL" in proc.stderr
    assert TOKEN not in proc.stdout + proc.stderr


def test_unknown_event_name_is_exit_2_with_a_suggestion(tmp_path):
    root = project(
        tmp_path,
        """
        [[sink]]
        kind = "jsonl"
        path = "e.jsonl"
        events = ["test_hang"]
        """,
        PASSING.format(n=1),
    )
    proc = run_cli(["run", "--headless"], root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "sink[0] (jsonl).events" in proc.stderr and "did you mean 'test_hung'" in proc.stderr


def test_unknown_sink_kind_and_unwritable_path_are_exit_2(tmp_path):
    root = project(tmp_path, '[[sink]]\nkind = "jsnl"\npath = "x"\n', PASSING.format(n=1))
    proc = run_cli(["run", "--headless"], root)
    assert proc.returncode == 2 and "did you mean 'jsonl'" in proc.stderr, proc.stderr
    (root / "adir").mkdir()
    write(
        root / "netra-supervisor.toml",
        '[[suite]]\nname = "t"\nargs = ["t"]\n[[sink]]\nkind = "jsonl"\npath = "adir"\n',
    )
    proc = run_cli(["run", "--headless"], root)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "sink[0] (jsonl): cannot open" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_test_that_shows_the_webhook_url_does_not_leak_it(tmp_path, receiver):
    """A test under supervision prints the URL and fails with it: the whole URL and its
    token-like parts are masked in what we record, post and print."""
    hook = receiver()
    root = project(
        tmp_path,
        f"""
        [[sink]]
        kind = "webhook"
        url_env = "{URL_ENV}"
        events = ["test_result"]

        [[sink]]
        kind = "jsonl"
        path = "events.jsonl"
        """,
        f"""
        import os
        def test_shows_url():
            url = os.environ["{URL_ENV}"]
            print("posting to", url, "token", url.split("/")[-1].split("?")[0])
            assert False, "bad answer from " + url
        """,
    )
    proc = run_cli(["run", "--headless", "-v"], root, env={URL_ENV: hook.url})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    (posted,) = [body for _, _, body in hook.requests]
    assert posted["outcome"] == "failed" and posted["message"].startswith("AssertionError")
    assert "***" in posted["message"] and "***" in posted["longrepr"]
    assert TOKEN not in json.dumps(posted)
    message, longrepr = query(root / ".netra/history.db", "select message, longrepr from results")[
        0
    ]
    assert "bad answer from ***" in message and "posting to ***" in longrepr
    assert_secret_nowhere(root, proc.stdout, proc.stderr, raw_pytest_logs=False)


# --------------------------------------------------------------------------- plugin sinks

SINK_PLUGIN = """
from supervisor.core.kinds import LogSink
from supervisor.hookspecs import hookimpl


class _Raising:
    def write(self, events):
        raise RuntimeError("disk on fire")

    def close(self):
        pass


class Flaky(LogSink):
    name = "flaky"
    max_failures = 3

    def open(self, sink, config):
        return _Raising()


class Broken(LogSink):
    name = "broken"

    def open(self, sink, config):
        raise ValueError("cannot reach the log service")


@hookimpl
def netra_register_log_sinks():
    return [Flaky(), Broken()]
"""


def test_a_failing_plugin_sink_is_quarantined_and_the_others_go_on(tmp_path):
    write(tmp_path / "team/teamsinks.py", SINK_PLUGIN)
    root = project(
        tmp_path,
        """
        [plugins]
        dirs = ["team"]

        [[sink]]
        kind = "flaky"

        [[sink]]
        kind = "broken"

        [[sink]]
        kind = "jsonl"
        path = "events.jsonl"
        """,
        PASSING.format(n=5),
    )
    proc = run_cli(["run", "--headless"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    db = root / ".netra/history.db"
    errors = query(db, "select plugin, hook, error from plugin_errors order by id")
    assert [(p, h) for p, h, _ in errors] == [
        ("teamsinks", "sink[1] (broken).open"),
        ("teamsinks", "sink[0] (flaky).write"),
    ]
    assert "ValueError: cannot reach the log service" in errors[0][2]
    assert "3 consecutive failed writes" in errors[1][2] and "disk on fire" in errors[1][2]
    kinds = [r["event"] for r in _lines(root / "events.jsonl")]
    # the open failure happened before the run started; the jsonl sink has it too
    assert kinds[:2] == ["plugin_error", "run_started"] and kinds[-1] == "run_finished"
    assert kinds.count("test_result") == 5
    assert query(db, "select count(*) from results") == [(5,)]

    strict = run_cli(["run", "--headless"], root, env={"NETRA_STRICT_PLUGINS": "1"})
    assert strict.returncode == 2, strict.stdout + strict.stderr
    assert "sink[1] (broken).open" in strict.stderr and "NETRA_STRICT_PLUGINS" in strict.stderr


class _Gate:
    """A handle whose first write blocks until released: a stuck sink."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.written: list[str] = []
        self.closed = False

    def write(self, events) -> None:
        self.entered.set()
        self.release.wait(30)
        self.written += [e.text for e in events]

    def close(self) -> None:
        self.closed = True


def test_a_full_queue_drops_the_oldest_and_counts_them():
    from supervisor.sinks import SinkSet, SinkWorker

    gate = _Gate()
    worker = SinkWorker("sink[0] (gate)", "test", gate, queue_size=3, batch_size=10)
    sinks = SinkSet([worker])
    reports = []
    sinks.start(reports.append)
    sinks(LogLine("info", "t", "first"))
    assert gate.entered.wait(30)  # the thread is stuck in write() with "first"
    for i in range(10):
        sinks(LogLine("info", "t", f"e{i}"))  # returns at once although the sink is stuck
    assert worker.dropped == 7
    gate.release.set()
    assert sinks.close() == [
        "sink[0] (gate): 7 event(s) dropped because its queue was full; 4 delivered"
    ]
    assert gate.written == ["first", "e7", "e8", "e9"] and gate.closed
    assert [r.text for r in reports] == [sinks.workers[0].summary()]


def test_events_selects_by_type_name(tmp_path):
    root = project(
        tmp_path,
        """
        [[sink]]
        kind = "jsonl"
        path = "events.jsonl"
        events = ["phase_finished", "run_finished"]
        """,
        PASSING.format(n=3),
    )
    proc = run_cli(["run", "--headless"], root)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [r["event"] for r in _lines(root / "events.jsonl")] == ["phase_finished", "run_finished"]


def test_a_run_reports_brief_starts_only_if_some_sink_gets_test_started():
    """The session tells the runners (``every_start``) whether any sink selects
    ``test_started``; without one, a start its result follows in the same read is
    left out (see tests/test_batches.py)."""
    from supervisor.sinks import SinkSet, SinkWorker

    results_only = SinkWorker("a", "p", object(), kinds=frozenset({"test_result"}))
    everything = SinkWorker("b", "p", object())
    assert not SinkSet().wants("test_started")
    assert not SinkSet([results_only]).wants("test_started")
    assert SinkSet([results_only, everything]).wants("test_started")
    assert SinkSet([results_only]).wants("test_result")
