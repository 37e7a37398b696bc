"""The commented starter ``netra-supervisor.toml`` that ``netra-supervisor init`` writes.

The starter runs the repository's ``tests`` folder with pytest, deploys nothing, and
re-runs when the code changes until everything passes. Optional sections ([auth],
[[sink]], a websocket-events suite) are present but commented out, so a team sees every
key of the configuration contract without having to read the docs first.
"""

from __future__ import annotations

from pathlib import Path

STARTER_CONFIG = """\
# netra-supervisor configuration: the test-deploy loop for this repository.
# Durations are written like "90s", "5m", "20h" or "1h30m". Unknown keys are errors.
# Relative paths are relative to this file's folder.

[run]
target = 0                    # the test count the dashboard grows toward (0: no target)
until = "all-pass"            # stop when: all-pass | once | target (needs target > 0)
verify = false                # true: after a failing iteration, first re-run what failed
max_iterations = 50           # never run more iterations than this
max_duration = "20h"          # never run longer than this
between = "wait-for-change"   # between iterations: immediate | wait-for-change | manual | "10m"
watch = ["."]                 # what wait-for-change watches (git HEAD and files)
db = ".netra/history.db"      # the SQLite history of every run
env = {}                      # extra environment for every suite, e.g. { APP_ENV = "staging" }
order = "failed-first"        # what did not pass last time runs first | as-collected
quarantine = "netra-quarantine.toml"   # tests that run but never gate (quarantine add ...)
# auto_quarantine = { flips = 3, within = "7d" }   # quarantine tests that flip that often
retries = 0                   # re-run what did not pass, at the end of its suite, N more times
flaky_counts_as = "pass"      # a test that passed only on a retry (flaky), for gates: pass | fail

[deploy]
backend = "none"              # a registered deploy backend; "none" skips deploying
# backend = "command"         # run a command before each iteration, e.g.:
# command = ["./scripts/deploy.sh", "staging"]
# health_url = "http://127.0.0.1:8000/health"   # polled after the deploy until it answers
health_timeout = "120s"       # how long to wait for health_url after a deploy
when = "every-iteration"      # deploy on: every-iteration | on-change | first
# logs = ["/var/log/app/*.log"]   # the backend's logs: lines written while a failing test ran

# [auth]                      # optional: mint a short-lived JWT for the tests (pyjwt)
# secret_env = "NETRA_JWT_SECRET"                # environment variable holding the secret
# algorithm = "HS256"                            # HS256 | HS384 | HS512 | RS256 | ...
# claims = { sub = "e2e-bot", aud = "staging" }  # claims put in every token
# ttl = "1h"                                     # how long each token stays valid
# export_as = "NETRA_E2E_TOKEN"                  # environment variable the tests read

[watchdog]
test_timeout = "120s"         # a test running longer than this is hung
silence_timeout = "60s"       # no heartbeat from the test process for this long is hung
grace = "5s"                  # from the diagnostic dump request to the kill

[[phase]]
name = "all tests"            # shown on the dashboard; --phase NAME runs only this phase
suites = ["tests"]            # suite names below, or "tag:TAG" for every suite with that tag
gate = "all-pass"             # all-pass | none | 0.95 ; a failed gate ends the iteration
# test_timeout = "90s"        # overrides [watchdog] test_timeout for this phase
# impact = "$120K MRR"        # free label shown on the dashboard
# stop_on_gate = true         # stop the phase once its gate can no longer hold
# retries = 1                 # overrides [run] retries for this phase

# A second phase could run only the critical suites first, e.g.:
# [[phase]]
# name = "P1 critical"
# suites = ["tag:critical"]

[[suite]]
name = "tests"                # phases refer to suites by this name
kind = "pytest"               # pytest | websocket-events | a kind a plugin registers
args = ["tests"]              # pytest arguments: paths, -m markers, -k expressions
cwd = "."                     # where pytest runs
# python = ".venv/bin/python" # the interpreter of the project under test (default: ours)
workers = 1                   # > 1 runs the suite on pytest-xdist
# test_timeout = "60s"        # overrides the phase and [watchdog] timeouts
# retries = 2                 # overrides the phase's and [run] retries
tags = []                     # labels a phase can select with "tag:NAME"
# env = { LOG_LEVEL = "debug" }   # extra environment for this suite only

# [[suite]]                   # a websocket check: send one message, expect these events
# name = "ws-events"
# kind = "websocket-events"
# url = "ws://127.0.0.1:8000/ws"
# send = { type = "user_message", text = "ping" }
# expect = ["agent_started", "agent_completed"]
# timeout = "30s"

# [[sink]]                    # also append every event to a JSON-lines file
# kind = "jsonl"
# path = ".netra/events.jsonl"

# [[sink]]                    # POST chosen events to a webhook (URL read from the environment)
# kind = "webhook"
# url_env = "NETRA_WEBHOOK_URL"
# events = ["iteration_finished", "test_hung"]

[plugins]
dirs = []                     # local plugin folders of this repository, e.g. ["plugins"]
load = []                     # extra importable modules to load as plugins
disable = []                  # plugin names not to load
# hook_timeout = "30s"        # a hook running longer is reported and its plugin quarantined
"""


def write_starter(path: Path, force: bool = False) -> Path:
    """Write :data:`STARTER_CONFIG` to ``path``; an existing file is kept unless ``force``.

    Raises :class:`FileExistsError` when ``path`` exists and ``force`` is false.
    """
    path = Path(path)
    mode = "w" if force else "x"  # "x" refuses an existing file, without a race
    with path.open(mode, encoding="utf-8", newline="\n") as fh:
        fh.write(STARTER_CONFIG)
    return path
