"""Acceptance: on real projects' test suites, our per-test outcomes equal pytest's own.

Each project's sdist (which ships its tests) is downloaded from PyPI and installed into
its own venv with its test dependencies; the venvs are cached under
``$NETRA_TEST_CACHE`` (default ``~/.cache/netra-supervisor-tests``), keyed by project
version, Python version and dependency list, so only the first run pays for setup.
The projects pin different pytest majors on purpose: the child plugin must work in
whatever pytest the project under test has.

The suite runs once through ``PytestSuiteKind`` with ``--junitxml`` added to its args;
the outcomes we emitted are then compared, test by test, with the junit file that same
pytest process wrote. junit keys a test by (classname, name), which pytest derives
from the nodeid; we derive the same key from our nodeids. junit cannot tell a
non-strict xpass from a pass, so ``xpassed`` is compared as ``passed``.

Set ``NETRA_SKIP_THIRD_PARTY=1`` to skip these (offline machines).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
from runner_helpers import run_pytest_kind

from supervisor.config import parse_config
from supervisor.core.events import SuiteFinished, TestResult

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("NETRA_SKIP_THIRD_PARTY") == "1", reason="NETRA_SKIP_THIRD_PARTY=1"
    ),
]

RECIPE = 1  # bump to rebuild every cached venv


@dataclass(frozen=True)
class Project:
    name: str
    version: str
    deps: tuple[str, ...]  # test dependencies, installed beside the sdist
    args: tuple[str, ...] = ("tests",)

    @property
    def key(self) -> str:
        digest = hashlib.sha256("\n".join((str(RECIPE), *self.deps)).encode()).hexdigest()[:10]
        py = f"{sys.version_info[0]}.{sys.version_info[1]}"
        return f"{self.name}-{self.version}-py{py}-{digest}"


PROJECTS = {
    p.name: p
    for p in (
        Project("click", "8.5.1", ("pytest==9.2.0", "pytest-xdist")),
        Project(
            "markdown-it-py",
            "4.3.0",
            (
                "pytest==8.3.5",
                "pytest-xdist",
                "pytest-regressions",
                "pytest-timeout",
                "requests",
                "flit_core>=3.4,<5",
            ),
        ),
        Project(
            "sqlite-utils",
            "4.2.1",
            ("pytest==7.4.4", "pytest-xdist", "hypothesis", "cogapp", "black"),
        ),
        Project(
            "attrs",
            "26.1.0",
            ("pytest==8.4.2", "pytest-xdist", "hypothesis", "pympler", "cloudpickle"),
        ),
    )
}


def cache_dir() -> Path:
    root = os.environ.get("NETRA_TEST_CACHE") or "~/.cache/netra-supervisor-tests"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(path: Path):
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run(cmd: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{tail}")


def prepare(project: Project) -> tuple[str, Path]:
    """(python of the project's venv, folder of its unpacked sdist), cached."""
    cache = cache_dir()
    home = cache / project.key
    ready = home / ".ready"
    with locked(cache / f"{project.key}.lock"):
        python = home / "venv" / "bin" / "python"
        if ready.exists() and python.exists():  # exists(): its interpreter is still there
            return str(python), Path(ready.read_text())
        shutil.rmtree(home, ignore_errors=True)
        home.mkdir(parents=True)
        log = home / "setup.log"
        sdists = home / "sdist"
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",  # the project's sdist (its tests are in it); its build
                project.name,  # requirements may come as wheels (from source: minutes)
                "-d",
                str(sdists),
                f"{project.name}=={project.version}",
            ],
            log,
        )
        (archive,) = sdists.glob("*.tar.gz")
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(home / "src", filter="data")
            else:  # pragma: no cover - Python without extraction filters
                tar.extractall(home / "src")
        (source,) = (home / "src").iterdir()
        venv = home / "venv"
        # from the real interpreter, not this test venv's python (a venv's python is a
        # link to the one that made it: a cache built from a since-deleted clone's venv
        # pointed nowhere and every third-party test failed)
        _run([os.path.realpath(sys.executable), "-m", "venv", str(venv)], log)
        _run(
            [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
            + [str(archive), *project.deps],
            log,
        )
        ready.write_text(str(source))
        return str(python), source


_prepared: dict[str, concurrent.futures.Future] = {}
_prepared_lock = threading.Lock()


def prepared(name: str) -> tuple[str, Path]:
    """Set up every project at once (in parallel) the first time any is asked for."""
    with _prepared_lock:
        if not _prepared:
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(PROJECTS))
            for key, project in PROJECTS.items():
                _prepared[key] = pool.submit(prepare, project)
            pool.shutdown(wait=False)
    return _prepared[name].result()


# --------------------------------------------------------------------------- junit


def junit_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) as pytest's junitxml derives them from a nodeid."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def junit_outcomes(path: Path) -> dict[tuple[str, str], list[str]]:
    """junit testcases → outcomes per (classname, name).

    When a test fails in its call and again in teardown, pytest's junit writes two
    testcases (a failure, then an error "failed on teardown with ...") for the one test
    we report as ``failed``; that second testcase is folded into the first here.
    """
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    teardown_errors: dict[tuple[str, str], int] = defaultdict(int)
    for case in ET.parse(path).getroot().iter("testcase"):
        key = (case.get("classname", ""), case.get("name", ""))
        tags = {child.tag: child for child in case}
        if "failure" in tags:
            outcome = "failed"
        elif "error" in tags:
            outcome = "error"
            if tags["error"].get("message", "").startswith("failed on teardown with"):
                teardown_errors[key] += 1
        elif "skipped" in tags:
            xfail = tags["skipped"].get("type") == "pytest.xfail"
            outcome = "xfailed" if xfail else "skipped"
        else:
            outcome = "passed"
        out[key].append(outcome)
    for key, count in teardown_errors.items():
        for _ in range(min(count, out[key].count("failed"))):
            out[key].remove("error")
    return {key: sorted(v) for key, v in out.items()}


def our_outcomes(results: list[TestResult]) -> dict[tuple[str, str], list[str]]:
    as_junit = {"xpassed": "passed"}
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for result in results:
        out[junit_key(result.nodeid)].append(as_junit.get(result.outcome, result.outcome))
    return {key: sorted(v) for key, v in out.items()}


def diff(ours: dict, theirs: dict) -> list[str]:
    lines = []
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            lines.append(f"{key}: ours={ours.get(key)} junit={theirs.get(key)}")
    return lines


@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "xdist2"])
@pytest.mark.parametrize("name", list(PROJECTS))
def test_outcomes_equal_pytest_junitxml(name, workers, tmp_path):
    project = PROJECTS[name]
    python, source = prepared(name)
    junit = tmp_path / "junit.xml"
    config = parse_config(
        {
            "suite": [
                {
                    "name": name,
                    "python": python,
                    "cwd": str(source),
                    "workers": workers,
                    "args": [*project.args, "-p", "no:cacheprovider", f"--junitxml={junit}"],
                }
            ]
        },
        tmp_path / "netra-supervisor.toml",
    )
    events, _ = run_pytest_kind(config, log_dir=str(tmp_path / "logs"))

    finished = [e for e in events if isinstance(e, SuiteFinished)]
    assert [f.status for f in finished] == ["ok"], finished
    results = [e for e in events if isinstance(e, TestResult)]
    theirs = junit_outcomes(junit)
    ours = our_outcomes(results)
    differences = diff(ours, theirs)
    assert not differences, f"{len(differences)} tests differ:\n" + "\n".join(differences[:30])
    assert len(results) == sum(len(v) for v in theirs.values())
    assert len(results) > 500  # a real suite ran, not an empty one
    if workers > 1:
        assert {r.worker for r in results} >= {"gw0", "gw1"}


# --------------------------------------------------------------------------- fast checks

FIXTURES = Path(__file__).parent / "fixtures" / "pytest_suites"


def run_with_junit(tmp_path: Path, python: str, cwd: Path, args: list[str], workers: int):
    junit = tmp_path / "junit.xml"
    config = parse_config(
        {
            "suite": [
                {
                    "name": cwd.name,
                    "python": python,
                    "cwd": str(cwd),
                    "workers": workers,
                    "args": [*args, "-p", "no:cacheprovider", f"--junitxml={junit}"],
                }
            ]
        },
        tmp_path / "netra-supervisor.toml",
    )
    events, _ = run_pytest_kind(config, env={"PYTHONDONTWRITEBYTECODE": "1"})
    return [e for e in events if isinstance(e, TestResult)], junit_outcomes(junit)


@pytest.mark.parametrize("workers", [1, 2], ids=["serial", "xdist2"])
@pytest.mark.parametrize("suite", ["outcomes", "collect_error", "weird_ids"])
def test_fixture_suites_equal_their_junitxml(suite, workers, tmp_path):
    """Every outcome kind, collection errors and odd ids, checked the same way."""
    results, theirs = run_with_junit(tmp_path, sys.executable, FIXTURES / suite, [], workers)
    assert results
    assert diff(our_outcomes(results), theirs) == []


def test_the_comparison_notices_a_difference(tmp_path):
    results, theirs = run_with_junit(tmp_path, sys.executable, FIXTURES / "outcomes", [], 1)
    tampered = [
        r
        if r.nodeid != "test_outcomes.py::test_skipped"
        else TestResult(
            iteration=r.iteration, phase=r.phase, suite=r.suite, nodeid=r.nodeid, outcome="passed"
        )
        for r in results
    ]
    assert diff(our_outcomes(tampered), theirs) == [
        "('test_outcomes', 'test_skipped'): ours=['passed'] junit=['skipped']"
    ]
    assert junit_key("a/b.py::C::t[x::y.py]") == ("a.b.C", "t[x::y.py]")
