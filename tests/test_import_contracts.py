"""The house's shape is checked: ``lint-imports`` keeps the contracts in pyproject.toml.

The layers (cli > demo > session > views and run services > store, runners, plugin
host > ... > config > utilities), core without textual, the store without the TUI,
and the built-in plugins reached only through entry points. A second run on a
contract that the code is known to break proves the check can fail at all.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` of this interpreter's environment on the config found in ``cwd``."""
    script = Path(sys.executable).with_name("lint-imports")
    command = (
        [str(script)]
        if script.exists()
        else [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command;"
            " sys.exit(lint_imports_command())",
        ]
    )
    return subprocess.run(
        [*command, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_the_import_contracts_are_kept():
    result = lint_imports(REPO)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "4 kept, 0 broken" in out, out


def test_a_broken_contract_is_reported(tmp_path):
    """The same tool on two contracts the code breaks: ``core.loop`` imports
    ``supervisor.config`` (forbidden here), and ``session`` imports ``core`` (a layers
    contract with the two swapped)."""
    (tmp_path / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_packages = ["supervisor"]

            [[tool.importlinter.contracts]]
            name = "core without config (deliberately wrong)"
            type = "forbidden"
            source_modules = ["supervisor.core"]
            forbidden_modules = ["supervisor.config"]

            [[tool.importlinter.contracts]]
            name = "core above session (deliberately wrong)"
            type = "layers"
            layers = ["supervisor.core", "supervisor.session"]
            """
        )
    )
    result = lint_imports(tmp_path)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "0 kept, 2 broken" in out, out
    assert "supervisor.core.loop -> supervisor.config" in out, out
