"""``between = "wait-for-change"`` on watchfiles: real files, real git repositories,
real watcher threads, and a real ``netra-supervisor run`` driven by edits and commits.

Negative checks ("this did not count") wait a fixed 1.5 s: the watcher reports a
change within about 0.2 s, so a change that counted would have shown by then.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import CLI, query, write

from supervisor.core.between import Between
from supervisor.core.watch_plan import find_git, plan_watch

RETURNS = 10.0  # a generous "it returned" bound
NOT_WITHIN = 1.5


def git(cwd: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    out = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, check=True
    )
    return out.stdout


def repo(path: Path) -> Path:
    """A git repository with ``src/app.py`` committed."""
    write(path / "src/app.py", "x = 1\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "one")
    return path


def watcher_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("netra-watch")]


@pytest.fixture
def between(tmp_path: Path) -> Iterator[tuple[Between, list[str]]]:
    lines: list[str] = []
    b = Between(
        "wait-for-change",
        0.0,
        [repo(tmp_path / "proj")],
        threading.Event(),
        announce=lines.append,
        ignore=[tmp_path / "proj/out/history.db", tmp_path / "proj/out/logs"],
    )
    yield b, lines
    b.close()


class Waiting:
    """``between.wait()`` in a thread, as the loop calls it."""

    def __init__(self, between: Between) -> None:
        self.between = between
        self.result: list[bool] = []
        self.thread = threading.Thread(target=lambda: self.result.append(between.wait()))
        self.thread.start()

    def returned(self, within: float) -> bool:
        self.thread.join(within)
        return not self.thread.is_alive()

    def end(self) -> None:
        self.between.next_now.set()
        self.thread.join(RETURNS)


def waits_on(between: Between, change: Any) -> bool:
    """Does ``change()``, made while ``between`` waits, end the wait?"""
    between.iteration_started()
    waiting = Waiting(between)
    try:
        assert not waiting.returned(0.3), "the wait ended before any change"
        change()
        return waiting.returned(NOT_WITHIN if change.__name__.startswith("no_") else RETURNS)
    finally:
        waiting.end()


# ---------------------------------------------------------------- the plan (no watcher)


def test_the_plan_skips_ignored_folders_and_adds_the_git_folders(tmp_path: Path) -> None:
    root = repo(tmp_path)
    for name in (".venv", "node_modules", "__pycache__", ".netra", "out"):
        (root / name).mkdir()
    plan = plan_watch([root], ignore=[root / "out"])
    assert plan.recursive == (str(root / "src"), str(root / ".git/refs"))
    assert plan.flat == (str(root), str(root / ".git"))
    assert plan.missing == ()


def test_what_counts(tmp_path: Path) -> None:
    root = repo(tmp_path / "proj")
    (tmp_path / "proj/conf.toml").write_text("")
    db = root / "data/history.db"
    counts = plan_watch([root], ignore=[db, root / "data/logs"]).relevance
    yes = ["src/app.py", "src/new/module.py", "conf.toml", ".git/HEAD", ".git/packed-refs"]
    yes += [".git/refs/heads/main", ".git/refs/heads/main.lock", "data/other.csv"]
    no = [".git/index", ".git/objects/ab/cdef", ".git/logs/HEAD", ".git/ORIG_HEAD"]
    no += ["src/__pycache__/app.cpython-312.pyc", ".venv/lib/x.py", "node_modules/a/b.js"]
    no += [".netra/history.db", ".pytest_cache/v/cache/lastfailed", "src/.app.py.swp"]
    no += ["pytest-cache-files-k2j4/README.md"]  # pytest builds .pytest_cache there
    no += ["src/app.py~", "data/history.db", "data/history.db-wal", "data/logs/run-1/s.log"]
    no += ["venv/bin/python", ".tox/py/x", "src/4913"]
    assert [p for p in yes if not counts(None, str(root / p))] == []
    assert [p for p in no if counts(None, str(root / p))] == []
    assert not counts(None, str(tmp_path / "elsewhere.py"))


def test_a_watched_file_counts_alone(tmp_path: Path) -> None:
    root = repo(tmp_path)
    (root / "conf.toml").write_text("")
    plan = plan_watch([root / "conf.toml", root / "gone"])
    assert plan.flat == (str(root), str(root / ".git"))
    assert plan.recursive == (str(root / ".git/refs"),)
    assert plan.missing == (str(root / "gone"),)
    assert plan.relevance(None, str(root / "conf.toml"))
    assert not plan.relevance(None, str(root / "src/app.py"))
    assert "not there, so not watched: " + str(root / "gone") in plan.describe()


def test_a_git_worktree_is_found_through_its_git_file(tmp_path: Path) -> None:
    main = repo(tmp_path / "main")
    git(main, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "feature")
    places = find_git(str(tmp_path / "wt/src"))
    assert places is not None
    assert places.gitdir == str(main / ".git/worktrees/wt")
    assert places.common == str(main / ".git")
    assert find_git(str(tmp_path)) is None


# ---------------------------------------------------------------- real watchers


def test_an_edit_ends_the_wait_and_our_own_writes_do_not(between) -> None:
    b, lines = between
    root = b.watch[0]

    def edit() -> None:
        (root / "src/app.py").write_text("x = 2  # fixed\n")

    def no_own_writes() -> None:
        write(root / "out/history.db-wal", "wal")
        write(root / "out/logs/run-1/suite.log", "log")
        write(root / "src/__pycache__/app.cpython-312.pyc", "pyc")
        write(root / ".venv/lib/site.py", "x")
        write(root / "node_modules/a/index.js", "x")
        write(root / ".netra/history.db", "x")
        write(root / ".pytest_cache/v/cache/lastfailed", "{}")
        git(root, "status", "--short")  # refreshes .git/index

    (root / "out").mkdir()  # as the supervisor makes the database's folder at its start
    assert waits_on(b, edit)
    assert not waits_on(b, no_own_writes)
    assert "waiting for a change under " + str(root) in lines[0]
    assert "(inotify;" in lines[0]


def test_a_commit_and_a_checkout_end_the_wait(between) -> None:
    b, _ = between
    root = b.watch[0]

    def commit() -> None:
        git(root, "commit", "-q", "--allow-empty", "-m", "two")

    def checkout() -> None:
        git(root, "checkout", "-q", "-b", "other")

    assert waits_on(b, commit)
    assert waits_on(b, checkout)


def test_a_change_during_the_iteration_ends_the_next_wait_at_once(between) -> None:
    b, _ = between
    b.iteration_started()
    (b.watch[0] / "src/app.py").write_text("x = 3\n")  # while the tests run
    time.sleep(0.5)  # the watcher has seen it; the wait must not need another change
    waiting = Waiting(b)
    assert waiting.returned(RETURNS)
    assert waiting.result == [True]


def test_a_top_folder_made_later_is_watched_from_the_next_iteration(between) -> None:
    b, _ = between
    root = b.watch[0]
    assert waits_on(b, lambda: (root / "docs").mkdir())

    def edit_in_docs() -> None:
        (root / "docs/index.md").write_text("# hi\n")

    assert waits_on(b, edit_in_docs)


def test_next_now_and_stop_end_the_wait_and_close_ends_the_threads(between) -> None:
    b, _ = between
    b.iteration_started()
    assert watcher_threads() != []
    waiting = Waiting(b)
    b.next_now.set()
    assert waiting.returned(RETURNS) and waiting.result == [True]
    b.iteration_started()
    waiting = Waiting(b)
    b.stop.set()
    assert waiting.returned(RETURNS) and waiting.result == [False]
    b.close()
    assert watcher_threads() == []


def test_a_watched_file_works(tmp_path: Path) -> None:
    root = repo(tmp_path)
    conf = write(root / "conf.toml", "a = 1\n")
    with Between("wait-for-change", 0.0, [conf], threading.Event(), lambda _t: None) as b:

        def replace_conf() -> None:  # how editors save: a new file renamed over it
            write(root / "conf.tmp", "a = 2\n")
            os.replace(root / "conf.tmp", conf)

        def no_sibling_edit() -> None:
            (root / "src/app.py").write_text("x = 9\n")

        assert waits_on(b, replace_conf)
        assert waits_on(b, lambda: conf.write_text("a = 3\n"))  # the new file, in place
        assert not waits_on(b, no_sibling_edit)
    assert watcher_threads() == []


def test_without_inotify_it_polls_and_says_so_once(tmp_path: Path) -> None:
    """watchfiles itself, but its inotify mode refused the way a reached watch limit
    refuses (an OSError from the watcher's start)."""
    import watchfiles

    refused: list[bool] = []

    def watch(*paths: str, force_polling: bool, **kw: Any) -> Iterator[Any]:
        if not force_polling:
            refused.append(True)
            raise OSError("OS file watch limit reached")
        return watchfiles.watch(*paths, force_polling=True, **kw)

    lines: list[str] = []
    root = repo(tmp_path)
    # polling compares modification times to the second: make them an hour older
    hour_ago = time.time() - 3600
    for path in (root / "src/app.py", root / ".git/refs/heads/main"):
        os.utime(path, (hour_ago, hour_ago))
    with Between(
        "wait-for-change", 0.0, [root], threading.Event(), lines.append, watch_fn=watch
    ) as b:

        def edit() -> None:
            (root / "src/app.py").write_text("x = 2\n")

        assert waits_on(b, edit)
        assert waits_on(b, lambda: git(root, "commit", "-q", "--allow-empty", "-m", "two"))
    assert refused
    fallbacks = [line for line in lines if "inotify cannot watch here" in line]
    assert len(fallbacks) == 1 and "OS file watch limit reached" in fallbacks[0]
    assert "polling every 1s" in fallbacks[0]
    assert all("(polling every 1s;" in line for line in lines if "waiting for" in line)


# ---------------------------------------------------------------- the real CLI


def test_a_run_waits_for_an_edit_then_for_a_commit(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "tests/test_app.py", "def test_app():\n    assert True\n")
    write(
        root / "netra-supervisor.toml",
        """
        [run]
        until = "target"
        target = 1000
        max_iterations = 3
        between = "wait-for-change"
        watch = ["."]
        db = "out/history.db"   # inside the watched tree, like the sink's file below

        [[sink]]
        kind = "jsonl"
        path = "events/run.jsonl"

        [[suite]]
        name = "unit"
        args = ["tests"]        # pytest writes its .pytest_cache and __pycache__ here
        """,
    )
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "config")
    proc = subprocess.Popen(
        CLI + ["run", "--headless"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    out = proc.stdout
    assert out is not None

    def pump() -> None:
        for line in out:
            lines.put(line)

    reader = threading.Thread(target=pump)
    reader.start()

    def next_wait(within: float) -> bool:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.1)
            except queue.Empty:
                continue
            seen.append(line)
            if "waiting for a change under" in line:
                return True
        return False

    try:
        assert next_wait(120), "".join(seen)
        assert f"under {root} and git HEAD ({root / '.git/HEAD'})" in seen[-1]
        # the run wrote its database, logs and sink file (the sink even the line above),
        # pytest its caches: none of it counts, nor what we write there now
        assert (root / "events/run.jsonl").exists() and (root / "out/logs").is_dir()
        write(root / "tests/__pycache__/junk.pyc", "x")
        write(root / "out/logs/extra.log", "x")
        write(root / "src/.app.py.swp", "x")
        assert not next_wait(NOT_WITHIN), "".join(seen)
        (root / "src/app.py").write_text("x = 2  # the fix\n")
        assert next_wait(120), "".join(seen)
        git(root, "commit", "-q", "-am", "the fix")
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(RETURNS)
    seen.extend(lines.queue)
    assert proc.returncode == 0, "".join(seen)
    assert "max_iterations (3) reached" in "".join(seen)
    rows = query(root / "out/history.db", "SELECT seq FROM iterations ORDER BY seq")
    assert [r[0] for r in rows] == [1, 2, 3]
