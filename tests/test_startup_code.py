"""What ``@dataclass`` compiles is kept between runs (startup_code), and changes nothing."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import subprocess
import sys

import pytest

from supervisor import startup_code

# A module without ``from __future__ import annotations``: the generated ``__init__``
# then carries real annotation objects, which a compile that inherited this test
# module's flags would turn into strings.
SOURCE = """
import dataclasses

@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 2
    tags: tuple = ()
    notes: list = dataclasses.field(default_factory=list, compare=False, repr=False)

@dataclasses.dataclass(order=True)
class Plain:
    name: str
    n: float = 0.5
"""


def _module(name: str) -> dict:
    namespace: dict = {"__name__": name}
    exec(compile(SOURCE, f"<{name}>", "exec", dont_inherit=True), namespace)
    return namespace


@pytest.fixture
def cache_file(tmp_path, monkeypatch):
    path = tmp_path / "pycache" / "dataclass-code.test.bin"
    monkeypatch.setattr(startup_code, "cache_path", lambda: path)
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    yield path
    startup_code.finish()  # never leave dataclasses routed through it


def _same(with_cache: dict, without: dict) -> None:
    cached, plain = with_cache["Point"], without["Point"]
    assert cached(1) == cached(1, 2, (), [9]) and cached(1) != cached(3)
    assert repr(cached(1, tags=("a",))) == "Point(x=1, y=2, tags=('a',))"
    assert hash(cached(1)) == hash(cached(1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cached(1).x = 5  # type: ignore[misc]
    assert cached.__slots__ == plain.__slots__
    assert cached.__init__.__annotations__ == plain.__init__.__annotations__
    assert cached.__init__.__annotations__["x"] is int  # not the string "int"
    assert [f.name for f in dataclasses.fields(cached)] == ["x", "y", "tags", "notes"]
    assert dataclasses.replace(cached(1), y=7) == cached(1, 7)
    assert with_cache["Plain"]("a") < with_cache["Plain"]("b")
    assert cached.__init__.__code__.co_filename == plain.__init__.__code__.co_filename


def test_the_code_is_compiled_once_then_read_back_and_behaves_the_same(cache_file):
    without = _module("plain")
    startup_code.install()
    first = _module("first")
    assert startup_code.finish() > 0
    assert cache_file.read_bytes().startswith(importlib.util.MAGIC_NUMBER)
    assert not hasattr(dataclasses, "exec")  # stdlib's own exec again
    _same(first, without)

    written = cache_file.stat().st_mtime_ns
    startup_code.install()
    second = _module("second")
    assert startup_code.finish() == 0  # nothing new: every method came from the file
    assert cache_file.stat().st_mtime_ns == written  # and the file was not rewritten
    _same(second, without)


@pytest.mark.parametrize(
    "content",
    [b"", b"junk", importlib.util.MAGIC_NUMBER + b"\x00\x01garbage", b"\x00\x00\x00\x00{}"],
)
def test_a_damaged_or_foreign_file_is_ignored_and_replaced(cache_file, content):
    cache_file.parent.mkdir(parents=True)
    cache_file.write_bytes(content)
    startup_code.install()
    made = _module("damaged")
    assert startup_code.finish() > 0
    _same(made, _module("plain"))
    startup_code.install()
    _module("again")
    assert startup_code.finish() == 0  # the replacement is read back


def test_the_file_keeps_what_the_last_writing_run_used(cache_file):
    """Code an older version compiled (a changed dataclass) does not pile up."""
    import marshal

    cache_file.parent.mkdir(parents=True)
    stale = {"x = 1": compile("x = 1", "<string>", "exec")}
    cache_file.write_bytes(importlib.util.MAGIC_NUMBER + marshal.dumps(stale))
    startup_code.install()
    _module("now")
    assert startup_code.finish() > 0
    kept = marshal.loads(cache_file.read_bytes()[len(importlib.util.MAGIC_NUMBER) :])
    assert "x = 1" not in kept and kept  # this run's code only


def test_nothing_is_written_without_bytecode_or_where_it_cannot_be(cache_file, monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    startup_code.install()
    _module("a")
    assert startup_code.finish() > 0
    assert not cache_file.exists()

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    blocker = cache_file.parent.parent / "not-a-folder"
    blocker.write_text("a file where the folder would be")
    monkeypatch.setattr(startup_code, "cache_path", lambda: blocker / "x.bin")
    startup_code.install()
    _module("b")
    assert startup_code.finish() > 0  # no error, nothing written
    assert blocker.is_file()


def test_the_run_command_keeps_its_dataclasses_code_for_the_next_run(tmp_path):
    """A real ``run`` writes the file beside its bytecode (here under
    ``PYTHONPYCACHEPREFIX``), and the next run, finding everything in it, leaves it."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_a.py").write_text("def test_a(): pass\n")
    (tmp_path / "netra-supervisor.toml").write_text(
        '[run]\nuntil = "once"\n\n[[suite]]\nname = "s"\nargs = ["tests", "-p", "no:cacheprovider"]\n'
    )
    prefix = tmp_path / "pycache"
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(prefix)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "supervisor.cli", "run", "--headless"]
    first = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stdout + first.stderr
    tag = sys.implementation.cache_tag
    found = list(prefix.rglob(f"dataclass-code.{tag}.bin"))
    assert len(found) == 1, sorted(str(p.relative_to(prefix)) for p in prefix.rglob("*.bin"))
    assert found[0].parent.name == "supervisor"  # beside supervisor's own .pyc files
    written = found[0].stat().st_mtime_ns
    second = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert found[0].stat().st_mtime_ns == written
