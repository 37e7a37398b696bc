"""[auth]: the per-iteration JWT, its errors, and that neither it nor the secret leaks.

The leak test is a real run (CLI subprocess, real pytest children, real SQLite) whose
tests print the token, fail with it, write it to stderr, crash after printing it and
hang with it in a thread name; then every byte the run wrote is searched for it.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
import time
from pathlib import Path

import jwt
import pytest
from cli_helpers import CLI
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from supervisor.auth import load_minter
from supervisor.config import ConfigError, parse_config
from supervisor.redact import Redactor

SECRET = "leak-test-secret-0123456789-abcdefghijklmnop"


def config_with(tmp_path: Path, auth: dict):
    return parse_config({"auth": auth}, tmp_path / "netra-supervisor.toml")


def pem(key) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# ------------------------------------------------------------------ minting


def test_hs256_token_has_the_claims_iat_and_exp(tmp_path):
    config = config_with(
        tmp_path,
        {"secret_env": "MY_SECRET", "claims": {"sub": "e2e-bot", "aud": "staging"}, "ttl": "15m"},
    )
    minter = load_minter(config, {"MY_SECRET": SECRET}, clock=lambda: 1_700_000_000.0)
    redactor = Redactor()
    env = minter.iteration_env(redactor)
    assert list(env) == ["NETRA_E2E_TOKEN"]
    token = env["NETRA_E2E_TOKEN"]
    claims = jwt.decode(
        token, SECRET, algorithms=["HS256"], audience="staging", options={"verify_exp": False}
    )
    assert claims == {
        "sub": "e2e-bot",
        "aud": "staging",
        "iat": 1_700_000_000,
        "exp": 1_700_000_900,
    }
    assert redactor(f"Bearer {token}") == "Bearer ***"
    # a shortened repr keeps the signature's tail: masked on its own too
    assert token.rsplit(".", 1)[-1] not in redactor("..." + token[-60:])


def test_every_iteration_gets_a_fresh_token(tmp_path):
    config = config_with(tmp_path, {"secret_env": "S", "ttl": "1h"})
    now = [1_700_000_000.0]
    minter = load_minter(config, {"S": SECRET}, clock=lambda: now[0])
    first = minter.mint()
    now[0] += 61
    second = minter.mint()
    assert first != second
    assert jwt.decode(second, SECRET, algorithms=["HS256"], options={"verify_exp": False})[
        "iat"
    ] == int(now[0])


def test_rs256_with_key_file(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys/jwt.pem").write_text(pem(key))
    config = config_with(
        tmp_path, {"algorithm": "RS256", "key_file": "keys/jwt.pem", "claims": {"sub": "bot"}}
    )
    minter = load_minter(config, {})
    claims = jwt.decode(minter.mint(), key.public_key(), algorithms=["RS256"])
    assert claims["sub"] == "bot" and claims["exp"] - claims["iat"] == 3600


def test_es256_with_the_key_in_the_environment(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    config = config_with(tmp_path, {"algorithm": "ES256", "secret_env": "JWT_KEY"})
    minter = load_minter(config, {"JWT_KEY": pem(key)})
    assert jwt.decode(minter.mint(), key.public_key(), algorithms=["ES256"])["exp"] > time.time()


def test_no_auth_no_minter(tmp_path):
    assert load_minter(parse_config({}, tmp_path / "x.toml"), {}) is None


@pytest.mark.parametrize(
    ("auth", "environ", "expected"),
    [
        (
            {"secret_env": "UNSET_VAR"},
            {},
            r"auth\.secret_env: the environment variable UNSET_VAR is not set; export UNSET_VAR",
        ),
        (
            {"algorithm": "RS256", "key_file": "missing.pem"},
            {},
            r"auth\.key_file: cannot read .*missing\.pem: No such file",
        ),
        (
            {"algorithm": "ES256", "secret_env": "K"},
            {"K": "not a pem key"},
            r"auth: cannot sign with ES256: ",
        ),
        (
            {"secret_env": "S", "claims": {"exp": 5}},
            {"S": SECRET},
            r"auth\.claims\.exp: the supervisor sets exp itself",
        ),
        (
            {"secret_env": "S", "key_file": "k.pem"},
            {"S": SECRET},
            r"auth\.key_file: HS256 signs with a shared secret",
        ),
    ],
)
def test_bad_auth_is_one_clear_config_error(tmp_path, auth, environ, expected):
    with pytest.raises(ConfigError, match=expected) as info:
        load_minter(config_with(tmp_path, auth), environ)
    assert "\n" not in str(info.value)
    for value in environ.values():
        assert value not in str(info.value)


def test_es256_with_an_rsa_key_is_rejected(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "rsa.pem").write_text(pem(key))
    config = config_with(tmp_path, {"algorithm": "ES256", "key_file": "rsa.pem"})
    with pytest.raises(ConfigError, match=r"auth: cannot sign with ES256"):
        load_minter(config, {})


# ------------------------------------------------------------------ through the CLI


def write_config(project: Path, auth: str, suites: str = "", run: str = "") -> None:
    project.mkdir(parents=True, exist_ok=True)
    (project / "netra-supervisor.toml").write_text(
        f'[run]\ndb = ".netra/history.db"\n{run}\n'
        + textwrap.dedent(auth)
        + textwrap.dedent(
            suites
            or """
            [[suite]]
            name = "s"
            args = ["tests"]
            """
        )
    )


@pytest.mark.parametrize(
    ("auth", "expected"),
    [
        ('[auth]\nsecret_env = "NETRA_TEST_UNSET_SECRET"\n', "auth.secret_env"),
        ('[auth]\nalgorithm = "RS256"\nkey_file = "nope.pem"\n', "auth.key_file"),
        ('[auth]\nalgorithm = "HS257"\n', "auth.algorithm"),
    ],
)
def test_cli_exits_2_before_anything_runs(tmp_path, auth, expected):
    write_config(tmp_path, auth)
    env = {k: v for k, v in os.environ.items() if k != "NETRA_TEST_UNSET_SECRET"}
    proc = subprocess.run(
        [*CLI, "run", "--headless", "--once"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], proc.stderr
    assert not (tmp_path / ".netra").exists()  # nothing ran, no history was opened


# ------------------------------------------------------------------ nothing leaks

LEAKY_TESTS = """
import os, sys
import pytest

TOKEN = os.environ["E2E_TOKEN"]
SECRET = os.environ["LEAK_TEST_SIGNING_MATERIAL"]


def test_records_the_token_it_received():
    with open(os.environ["RECEIVED_FILE"], "a") as fh:
        fh.write(TOKEN + "\\n")


def test_prints_writes_stderr_and_fails_with_the_token():
    print("stdout token:", TOKEN, "secret:", SECRET)
    print("stderr token:", TOKEN, file=sys.stderr)
    assert TOKEN == "the expected token", f"token was {TOKEN} (secret {SECRET})"


@pytest.mark.parametrize("n", [1], ids=[TOKEN])
def test_named_after_the_token(n):
    assert n == 2

"""

#: a team's plugin that copies every result and hang it is handed to a file (a sink)
RECORDING_PLUGIN = """
import json, os, pluggy

hookimpl = pluggy.HookimplMarker("netra_supervisor")
OUT = os.path.join(os.path.dirname(__file__), "..", ".netra", "plugin-sink.jsonl")


@hookimpl
def netra_results(batch):
    with open(OUT, "a") as fh:
        for r in batch:
            fh.write(json.dumps([r.nodeid, r.message, r.longrepr, r.dump]) + "\\n")


@hookimpl
def netra_test_hung(event):
    with open(OUT, "a") as fh:
        fh.write(json.dumps([event.nodeid, event.dump]) + "\\n")
"""

HANGING_TESTS = """
import os, threading, time


def test_hangs_with_the_token_in_a_thread_name():
    threading.current_thread().name = "holder-" + os.environ["E2E_TOKEN"]
    time.sleep(120)
"""

RAW_TESTS = """
import os, sys


def test_prints_uncaptured_then_crashes():
    print("raw stdout token:", os.environ["E2E_TOKEN"], flush=True)
    print("raw stderr secret:", os.environ["LEAK_TEST_SIGNING_MATERIAL"], file=sys.stderr, flush=True)
    os._exit(3)
"""


def test_neither_token_nor_secret_reaches_anything_the_run_wrote(tmp_path):
    project = tmp_path / "project"
    outside = tmp_path / "outside"  # what the tests themselves write: not ours to redact
    outside.mkdir()
    (project / "leaky").mkdir(parents=True)
    (project / "leaky/test_leaky.py").write_text(LEAKY_TESTS)
    (project / "hangs").mkdir()
    (project / "hangs/test_hangs.py").write_text(HANGING_TESTS)
    (project / "raw").mkdir()
    (project / "netra_plugins").mkdir()
    (project / "netra_plugins/recorder.py").write_text(RECORDING_PLUGIN)
    (project / "raw/test_raw.py").write_text(RAW_TESTS)
    write_config(
        project,
        """
        [auth]
        secret_env = "LEAK_TEST_SIGNING_MATERIAL"
        claims = { sub = "e2e-bot", aud = "staging", role = "tester" }
        ttl = "10m"
        export_as = "E2E_TOKEN"
        [watchdog]
        grace = "2s"
        [plugins]
        dirs = ["netra_plugins"]
        """,
        """
        [[suite]]
        name = "leaky"
        args = ["leaky", "-p", "no:cacheprovider"]
        [[suite]]
        name = "hangs"
        args = ["hangs", "-p", "no:cacheprovider"]
        test_timeout = "3s"  # recorded hung, with a dump of the threads
        [[suite]]
        name = "raw"
        args = ["raw", "-s", "-p", "no:cacheprovider"]
        """,
        run="max_iterations = 2",
    )

    env = {
        **os.environ,
        "LEAK_TEST_SIGNING_MATERIAL": SECRET,
        "RECEIVED_FILE": str(outside / "received.txt"),
    }
    proc = subprocess.run(
        [*CLI, "run", "--headless", "-v"],
        cwd=project,
        capture_output=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 1, proc.stdout.decode() + proc.stderr.decode()

    # the tests got a valid token per iteration: the secret verifies it, claims and exp
    tokens = (outside / "received.txt").read_text().split()
    assert len(tokens) == 2
    for token in tokens:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="staging")
        assert claims["sub"] == "e2e-bot" and claims["role"] == "tester"
        assert claims["exp"] - claims["iat"] == 600 and claims["exp"] > time.time()

    # everything the run wrote: the .netra folder (database, -wal/-shm, logs) and its
    # stdout and stderr
    written = {"stdout": proc.stdout, "stderr": proc.stderr}
    netra = project / ".netra"
    files = [p for p in netra.rglob("*") if p.is_file()]
    assert any(p.name == "history.db" for p in files)
    assert any(p.suffix == ".log" for p in files)  # pytest's own output was kept
    sink = (netra / "plugin-sink.jsonl").read_text()
    assert "token was *** (secret ***)" in sink and "holder-***" in sink
    for path in files:
        written[str(path.relative_to(project))] = path.read_bytes()
    needles = {"secret": SECRET.encode()}
    for n, token in enumerate(tokens):
        needles[f"token {n}"] = token.encode()
        needles[f"signature {n}"] = token.rsplit(".", 1)[-1].encode()
    for where, data in written.items():
        for what, needle in needles.items():
            assert needle not in data, f"the {what} leaked into {where}"

    # and the vectors really carried it: masked text is where the token was
    db = netra / "history.db"
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = conn.execute(
        "select t.nodeid, r.outcome, r.message, r.longrepr, r.dump from results r "
        "join tests t on t.id = r.test_id"
    ).fetchall()
    conn.close()
    by_test = {}
    for nodeid, outcome, message, longrepr, dump in rows:
        by_test.setdefault(nodeid.split("::")[-1], []).append(
            (outcome, message or "", longrepr or "", dump or "")
        )
    failed = by_test["test_prints_writes_stderr_and_fails_with_the_token"]
    assert all("token was *** (secret ***)" in m for _, m, _, _ in failed)
    assert all("stdout token: *** secret: ***" in lr for _, _, lr, _ in failed)
    assert all("stderr token: ***" in lr for _, _, lr, _ in failed)
    assert "test_named_after_the_token[***]" in by_test
    hung = by_test["test_hangs_with_the_token_in_a_thread_name"]
    assert [o for o, *_ in hung] == ["hung", "hung"]
    assert all("holder-***" in d for *_, d in hung)
    crashed = by_test["test_prints_uncaptured_then_crashes"]
    assert [o for o, *_ in crashed] == ["crashed", "crashed"]
    assert all("raw stdout token: ***" in lr for _, _, lr, _ in crashed)
    logs = {
        name: b"".join(p.read_bytes() for p in files if p.name.startswith(f"{name}-"))
        for name in ("leaky", "raw")
    }
    assert b"stdout token: *** secret: ***" in logs["leaky"]  # pytest's failure report
    assert b"raw stdout token: ***" in logs["raw"] and b"raw stderr secret: ***" in logs["raw"]
    assert b"token was *** (secret ***)" in proc.stdout  # -v prints failures and dumps
    assert b"Thread holder-***" in proc.stdout


# ------------------------------------------------------------------ the redactor


def test_redactor_prefers_the_longest_secret_and_scales_to_many():
    redactor = Redactor(["abcd", "abcdef", "cdefgh"])
    assert redactor("xabcdefghx abcdx abcdeX") == "x***ghx ***x ***eX"
    tokens = [jwt.encode({"i": i}, SECRET, algorithm="HS256") for i in range(300)]
    for token in tokens:
        redactor.add(token)
    assert redactor(f"a {tokens[0]} b {tokens[299]}.") == "a *** b ***."
    assert redactor(tokens[5][:-1]) == tokens[5][:-1]  # a different text stays


def test_redactor_handles_a_long_pem_key():
    key = pem(rsa.generate_private_key(public_exponent=65537, key_size=4096))
    assert Redactor([key])(f"key:\n{key}\nend") == "key:\n***\nend"


def test_redact_file_masks_in_place_and_leaves_clean_files_alone(tmp_path):
    redactor = Redactor(["s3cr3t-value"])
    dirty, clean = tmp_path / "dirty.log", tmp_path / "clean.log"
    dirty.write_bytes(b"line 1\nthe s3cr3t-value here \xff\n")
    clean.write_text("nothing here\n")
    before = clean.stat().st_mtime_ns
    from supervisor.redact import redact_file

    redact_file(str(dirty), redactor)
    redact_file(str(clean), redactor)
    assert dirty.read_bytes() == b"line 1\nthe *** here \xff\n"
    assert clean.stat().st_mtime_ns == before
    assert not list(tmp_path.glob("*.redacting"))


def test_redact_event_masks_text_and_tuples_and_keeps_clean_events():
    from supervisor.core.events import TestResult, TestsCollected
    from supervisor.redact import redact_event

    redactor = Redactor(["s3cr3t-value"])
    event = TestResult(1, 1, "s", "t::x[s3cr3t-value]", "failed", message="got s3cr3t-value")
    masked = redact_event(event, redactor)
    assert (masked.nodeid, masked.message, masked.outcome) == ("t::x[***]", "got ***", "failed")
    collected = redact_event(TestsCollected(1, 1, "s", ("a", "b[s3cr3t-value]")), redactor)
    assert collected.nodeids == ("a", "b[***]")
    clean = TestResult(1, 1, "s", "t::y", "passed")
    assert redact_event(clean, redactor) is clean


def test_suites_collect_hands_the_token_to_collection(tmp_path):
    """``suites --collect``: a module reading the token at import collects, and a
    websocket-events suite is counted without connecting (nothing listens there)."""
    (tmp_path / "e2e").mkdir()
    (tmp_path / "e2e/test_needs_token.py").write_text(
        "import os\nTOKEN = os.environ['E2E_TOKEN']\ndef test_a(): pass\ndef test_b(): pass\n"
    )
    write_config(
        tmp_path,
        """
        [auth]
        secret_env = "COLLECT_TEST_SIGNING"
        export_as = "E2E_TOKEN"
        """,
        """
        [[suite]]
        name = "e2e"
        args = ["e2e", "-p", "no:cacheprovider"]
        [[suite]]
        name = "ws"
        kind = "websocket-events"
        url = "ws://127.0.0.1:9/never"
        expect = ["agent_started", "agent_completed"]
        """,
    )
    proc = subprocess.run(
        [*CLI, "suites", "--collect"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLLECT_TEST_SIGNING": SECRET},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = {line.split()[0]: line.split()[-1] for line in proc.stdout.splitlines()[1:]}
    assert counts == {"e2e": "2", "ws": "2"}


LINGERING_TEST = """
import os, pathlib, sys, time

def test_prints_the_token_then_waits():
    out = pathlib.Path(os.environ["LINGER_DIR"])
    (out / "token.txt").write_text(os.environ["E2E_TOKEN"])
    print("token is", os.environ["E2E_TOKEN"], flush=True)  # -s: straight to the log
    (out / "printed").touch()
    for _ in range(600):
        if (out / "release").exists():
            return
        time.sleep(0.05)
"""


def test_the_token_never_reaches_the_log_file_even_while_the_suite_runs(tmp_path):
    project, outside = tmp_path / "project", tmp_path / "outside"
    outside.mkdir()
    (project / "lingering").mkdir(parents=True)
    (project / "lingering/test_lingering.py").write_text(LINGERING_TEST)
    write_config(
        project,
        """
        [auth]
        secret_env = "LEAK_TEST_SIGNING_MATERIAL"
        export_as = "E2E_TOKEN"
        """,
        """
        [[suite]]
        name = "lingering"
        args = ["lingering", "-s", "-p", "no:cacheprovider"]
        """,
    )
    env = {**os.environ, "LEAK_TEST_SIGNING_MATERIAL": SECRET, "LINGER_DIR": str(outside)}
    proc = subprocess.Popen(
        [*CLI, "run", "--headless", "--once"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not (outside / "printed").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (outside / "printed").exists(), "the test never ran"
        token = (outside / "token.txt").read_text()
        logs = project / ".netra" / "logs"
        seen = ""
        while "token is" not in seen and time.monotonic() < deadline:
            time.sleep(0.05)  # the line reaches the file through the masking copier
            seen = "".join(p.read_text(errors="replace") for p in logs.rglob("*.log"))
        # mid-suite: the line is on disk, the token in it is not
        assert "token is ***" in seen
        assert token not in seen
    finally:
        (outside / "release").touch()
        assert proc.wait(timeout=60) == 0
