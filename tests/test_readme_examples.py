"""The configs the README shows are real: each passes the shipped validation."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def toml_blocks(title: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return re.findall(r"```toml\n(.*?)```", text[start:end], flags=re.S)


def test_the_staging_example_is_a_complete_valid_config(tmp_path):
    (config,) = toml_blocks("Pointing it at your staging")
    path = tmp_path / "netra-supervisor.toml"
    path.write_text(config, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "supervisor.cli", "suites", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    for name in ("critical", "core", "ws-events"):
        assert name in proc.stdout
    assert "websocket-events" in proc.stdout
