"""Meta-tests of the plugin API (datasette style): every hook is documented and tested.

Adding a ``netra_*`` hook to ``supervisor/hookspecs.py`` makes these fail until it has
a docstring naming each parameter, a place in the host (``supervisor/plugins/``), an
entry in the pinned contract below, and a ``test_hook_<name>`` test that calls it.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from supervisor import hookspecs
from supervisor.plugins import COLLECTING_HOOKS, LIFECYCLE_HOOKS, REGISTRIES, PluginHost

TESTS = Path(__file__).parent
THIS_FILE = Path(__file__).name

#: The public contract: hook name → parameter names. Change only on purpose.
CONTRACT = {
    "netra_register_suite_kinds": (),
    "netra_register_suites": ("config",),
    "netra_register_deploy_backends": (),
    "netra_register_log_sinks": (),
    "netra_run_started": ("run_id", "config"),
    "netra_iteration_started": ("run_id", "iteration"),
    "netra_deploy_finished": ("run_id", "iteration", "backend", "revision", "ok", "message"),
    "netra_phase_finished": ("run_id", "iteration", "phase", "status", "counts"),
    "netra_results": ("batch",),
    "netra_test_hung": ("event",),
    "netra_iteration_finished": ("run_id", "iteration", "status", "counts", "changes"),
    "netra_run_finished": ("run_id", "status", "exit_code"),
    "netra_collect_evidence": ("result", "window"),
}

HOOK_NAMES = sorted(
    name
    for name, obj in vars(hookspecs).items()
    if name.startswith("netra_") and inspect.isfunction(obj)
)


def _test_sources() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(TESTS.rglob("test_*.py")) if p.name != THIS_FILE}


def test_there_are_hooks_and_the_contract_is_pinned():
    assert HOOK_NAMES == sorted(CONTRACT)
    for name in HOOK_NAMES:
        params = tuple(inspect.signature(getattr(hookspecs, name)).parameters)
        assert params == CONTRACT[name], f"{name} changed its parameters"


def test_markers_use_the_project_name():
    assert hookspecs.PROJECT_NAME == "netra_supervisor"
    assert hookspecs.hookspec.project_name == "netra_supervisor"
    assert hookspecs.hookimpl.project_name == "netra_supervisor"


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_netra_function_is_a_hookspec(name):
    function = getattr(hookspecs, name)
    assert hasattr(function, "netra_supervisor_spec"), f"{name} lacks @hookspec"
    assert PluginHost(None, entry_points=[]).pm.hook.__dict__[name].has_spec()


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_is_documented(name):
    doc = inspect.getdoc(getattr(hookspecs, name))
    assert doc, f"{name} has no docstring"
    assert "Called" in doc, f"{name}: say when it is called"
    assert "batch" in doc or "per-result" in doc, f"{name}: say whether it is called with batches"
    assert ":return:" in doc, f"{name}: document the return value"
    for param in inspect.signature(getattr(hookspecs, name)).parameters:
        assert f":param {param}:" in doc, f"{name}: document parameter {param!r}"
    documented = set(re.findall(r":param (\w+):", doc))
    assert documented <= set(inspect.signature(getattr(hookspecs, name)).parameters), (
        f"{name} documents parameters it does not have: {documented}"
    )


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_has_a_place_in_the_host(name):
    wired = (
        set(LIFECYCLE_HOOKS) | set(COLLECTING_HOOKS) | set(REGISTRIES) | {"netra_register_suites"}
    )
    assert name in wired, f"{name} is not called by the plugin host (supervisor/plugins/)"


@pytest.mark.parametrize("name", HOOK_NAMES)
def test_every_hook_is_tested(name):
    """HOOKS_TESTED: the hook is used by a test file and has its own test_hook_<name>."""
    sources = _test_sources()
    used = re.compile(rf"\b{name}\b")
    users = [file for file, text in sources.items() if used.search(text)]
    assert users, f"plugin hook {name} is not used by any test in {TESTS}"
    pattern = re.compile(rf"^def test_hook_{name}\b", re.M)
    assert any(pattern.search(text) for text in sources.values()), (
        f"plugin hook {name} has no test_hook_{name} test"
    )
