"""The child side runs in the tested project's interpreter, where we are not installed.

``child_plugin.py`` and its siblings are loaded by path into whatever venv the suite
uses, and ``guard.py`` runs as ``python -I -S``: they may import the standard library
(and the child plugin, pytest) and nothing else, or a supervised suite fails to start.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import supervisor

ROOT = Path(supervisor.__file__).parent
CHILD = ROOT / "runners" / "pytest"
FILES = {
    CHILD / "child_plugin.py": {"pytest"},
    CHILD / "child_watch.py": set(),
    CHILD / "child_dump.py": set(),
    CHILD / "childpath" / "_netra_child_plugin.py": set(),
    ROOT / "guard.py": set(),
}


def imported(path: Path) -> set[str]:
    """Top-level names of every module the file imports (at any depth of the code)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted(FILES), ids=lambda p: p.name)
def test_the_child_side_imports_only_the_standard_library(path):
    allowed = set(sys.stdlib_module_names) | {"__future__"} | FILES[path]
    assert imported(path) - allowed == set()


def test_the_check_sees_a_foreign_import(tmp_path):
    """It would fail: a file importing our package is caught."""
    sample = tmp_path / "sample.py"
    sample.write_text("import os\n\ndef f():\n    from supervisor.config import load_config\n")
    assert imported(sample) - set(sys.stdlib_module_names) == {"supervisor"}


def test_a_selection_names_its_files_or_none_when_one_cannot_be_found(tmp_path):
    """Leaving test files out of a selection's collection is only safe when every
    selected id names a file that exists: otherwise nothing is left out."""
    from supervisor.runners.pytest.child_plugin import _files_of

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_a.py").write_text("def test_x(): pass\n")
    (tmp_path / "linked").symlink_to(tmp_path / "tests")
    found = _files_of({"tests/test_a.py::test_x", "linked/test_a.py::test_x[1::2]"}, tmp_path)
    assert str(tmp_path / "tests/test_a.py") in found
    assert str(tmp_path / "linked/test_a.py") in found  # as written, and resolved
    assert _files_of({"tests/test_a.py::test_x", "pkg.mod::test_y"}, tmp_path) == set()
    assert _files_of({"tests::test_x"}, tmp_path) == set()  # a folder is not a file
