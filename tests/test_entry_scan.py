"""The entry-point reader the plugin host uses instead of importlib.metadata
(``supervisor.plugins.entry_scan``): it must find what importlib.metadata finds."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from supervisor.plugins import discovery, entry_scan


def _installed_groups() -> set[str]:
    return {ep.group for dist in importlib.metadata.distributions() for ep in dist.entry_points}


def _facts(eps) -> list[tuple[str, str, str, str]]:
    return sorted((ep.name, ep.value, ep.dist.name, ep.dist.version) for ep in eps)


def test_every_group_of_this_environment_reads_as_importlib_metadata_reads_it():
    groups = _installed_groups()
    assert {"console_scripts", discovery.ENTRY_POINT_GROUP} <= groups
    for group in groups:
        scanned = entry_scan.scan(group)
        assert scanned is not None
        assert _facts(scanned) == _facts(importlib.metadata.entry_points(group=group)), group


def _dist_info(site: Path, folder: str, metadata: str, entry_points: str) -> None:
    info = site / folder
    info.mkdir(parents=True)
    name = "PKG-INFO" if folder.endswith((".egg-info", "EGG-INFO")) else "METADATA"
    (info / name).write_text(metadata, encoding="utf-8")
    (info / "entry_points.txt").write_text(entry_points, encoding="utf-8")


def test_a_site_folder_of_odd_but_valid_distributions(tmp_path: Path):
    first, second = tmp_path / "first", tmp_path / "second"
    _dist_info(
        first,
        "Acme_Plugin-2.0.dist-info",
        "Metadata-Version: 2.1\nName: Acme_Plugin\nVersion: 2.0\n\nName: not-this\n",
        "# a comment\n[console_scripts]\nacme = acme:main\n\n"
        "[netra_supervisor]\n# another comment\nacme =  acme_pkg.hooks : Plugin.instance [extra]\n",
    )
    _dist_info(
        second,
        "acme.plugin-1.0.dist-info",  # the same project further down the path: shadowed
        "Metadata-Version: 2.1\nName: acme.plugin\nVersion: 1.0\n",
        "[netra_supervisor]\nold = acme_old\n",
    )
    _dist_info(
        second,
        "legacy.egg-info",
        "Metadata-Version: 1.0\nName: legacy\nVersion: 0.3\n",
        "[netra_supervisor]\nlegacy = legacy_mod\n",
    )
    egg = tmp_path / "eggy-0.9-py3.11.egg"  # an unzipped egg on the path itself
    _dist_info(egg, "EGG-INFO", "Metadata-Version: 1.0\nName: eggy\nVersion: 0.9\n", "")
    (egg / "EGG-INFO" / "entry_points.txt").write_text("[netra_supervisor]\neggy = eggy\n")
    path = [str(first), str(second), str(tmp_path / "missing"), str(egg)]
    mine = entry_scan.scan("netra_supervisor", path)
    assert mine is not None
    assert [(ep.name, ep.value, ep.dist.name, ep.dist.version) for ep in mine] == [
        ("acme", "acme_pkg.hooks : Plugin.instance [extra]", "Acme_Plugin", "2.0"),
        ("legacy", "legacy_mod", "legacy", "0.3"),
        ("eggy", "eggy", "eggy", "0.9"),
    ]
    # importlib.metadata over the same folders, first distribution of a name winning
    seen: set[str] = set()
    theirs = []
    for dist in importlib.metadata.distributions(path=path):
        key = entry_scan.norm_name(dist.metadata["Name"])
        if key in seen:
            continue
        seen.add(key)
        theirs += [ep for ep in dist.entry_points if ep.group == "netra_supervisor"]
    assert sorted((ep.name, ep.value) for ep in mine) == sorted(
        (ep.name, ep.value) for ep in theirs
    )


def test_load_follows_the_module_and_the_attribute_path(tmp_path: Path, monkeypatch):
    package = tmp_path / "scan_pkg_demo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hooks.py").write_text("class Plugin:\n    instance = 'the instance'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = entry_scan.EntryPoint("x", "scan_pkg_demo.hooks : Plugin.instance [extra]", "g", None)
    assert ep.load() == "the instance"
    assert entry_scan.EntryPoint("m", "scan_pkg_demo", "g", None).load().__name__ == (
        "scan_pkg_demo"
    )
    with pytest.raises(ValueError, match="names no module"):
        entry_scan.EntryPoint("bad", ":nothing", "g", None).load()


def test_what_only_importlib_metadata_reads_is_left_to_it(tmp_path: Path, monkeypatch):
    archive = tmp_path / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
    assert entry_scan.scan("netra_supervisor", [str(archive)]) is None

    class Finder:  # an import hook with distributions of its own
        @staticmethod
        def find_spec(*args):
            return None

        @staticmethod
        def find_distributions(*args, **kwargs):
            return iter(())

    monkeypatch.setattr(sys, "meta_path", [Finder(), *sys.meta_path])
    assert entry_scan.scan("netra_supervisor", [str(tmp_path)]) is None
    builtin, _ = discovery.entry_points(None)  # the host falls back to importlib.metadata
    assert "builtin_pytest" in [ep.name for ep in builtin]


def test_run_does_not_import_importlib_metadata(tmp_path: Path):
    """The point of the reader: the plugin host's start-up without it."""
    code = (
        "import sys\n"
        "from supervisor.plugins.host import PluginHost\n"
        "host = PluginHost(None).load()\n"
        "assert 'builtin_pytest' in [r.name for r in host.records()], host.records()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('importlib.metadata', 'email'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
