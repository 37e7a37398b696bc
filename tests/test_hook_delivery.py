"""Hook delivery with real threads and real plugin files (``supervisor/hook_delivery.py``).

Plugins are files loaded by a real :class:`PluginHost` from a ``[plugins] dirs`` folder;
a stuck plugin waits on an event the test sets, so nothing here sleeps for long. The
end-to-end cases (a real run with a plugin sleeping 120 s, the iteration barriers,
strict mode) are in ``tests/test_hook_timeout.py``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from supervisor.config import load_config
from supervisor.core.events import LogLine, PluginFailed, TestResult
from supervisor.hook_delivery import HookDelivery
from supervisor.plugins import PluginError, PluginHost

RECORDER = """
import threading
from supervisor.hookspecs import hookimpl
CALLS = []
THREADS = set()

@hookimpl
def netra_results(batch):
    THREADS.add(threading.current_thread().name)
    CALLS.append([r.nodeid for r in batch])

@hookimpl
def netra_phase_finished(phase):
    CALLS.append(phase)

@hookimpl
def netra_iteration_finished(iteration):
    CALLS.append(f"iteration {iteration}")
"""

# Stuck in netra_results until the test sets RELEASE; raises then if RAISE is set.
STUCK = """
import threading
from supervisor.hookspecs import hookimpl
RELEASE = threading.Event()
ENTERED = threading.Event()
RAISE = False
CALLS = []
THREADS = []

@hookimpl
def netra_results(batch):
    THREADS.append(threading.current_thread())
    CALLS.append([r.nodeid for r in batch])
    ENTERED.set()
    RELEASE.wait(60)  # STUCK HERE
    if RAISE:
        raise RuntimeError("too late")

@hookimpl
def netra_phase_finished(phase):
    CALLS.append(phase)
"""

STUCK_LINE = next(i for i, line in enumerate(STUCK.splitlines(), 1) if "STUCK HERE" in line)


class Setup:
    """A host with the given plugin files, a delivery on it, and what both reported."""

    def __init__(
        self, tmp_path: Path, timeout: float, strict: bool = False, **plugins: str
    ) -> None:
        folder = tmp_path / "p"
        folder.mkdir(exist_ok=True)
        for name, source in plugins.items():
            (folder / f"{name}.py").write_text(source)
        (tmp_path / "netra-supervisor.toml").write_text('[plugins]\ndirs = ["p"]\n')
        self.errors: list[PluginFailed] = []
        self.reports: list[LogLine] = []
        self.fatal: list[PluginError] = []
        self.host = PluginHost(
            load_config(str(tmp_path / "netra-supervisor.toml")),
            on_error=self.errors.append,
            entry_points=[],
            strict=strict,
        ).load()
        self.delivery = HookDelivery(
            timeout,
            quarantine=self.host.quarantine,
            report=self.reports.append,
            on_fatal=self.fatal.append,
            queue_size=self.queue_size,
        )

    queue_size = 1000

    def module(self, name: str):
        return next(r.plugin for r in self.host.records() if r.name == name)

    def results(self, *nodeids: str) -> None:
        batch = [TestResult(1, 1, "s", nodeid, "passed") for nodeid in nodeids]
        self.delivery.submit(
            self.host.lifecycle_calls("netra_results", {"batch": batch}), len(batch)
        )

    def lifecycle(self, hook: str, **kwargs: object) -> None:
        self.delivery.submit(self.host.lifecycle_calls(hook, kwargs))

    def phase(self, name: str) -> None:
        counts: dict[str, int] = {}
        self.lifecycle(
            "netra_phase_finished",
            run_id=1,
            iteration=1,
            phase=name,
            status="passed",
            counts=counts,
        )


def settle_within(delivery: HookDelivery, seconds: float) -> None:
    """settle(), failing the test (instead of hanging it) past a generous bound."""
    done = threading.Event()
    threading.Thread(target=lambda: (delivery.settle(), done.set()), daemon=True).start()
    assert done.wait(seconds), "settle() did not return"


def test_calls_are_delivered_in_order_on_the_hooks_thread(tmp_path):
    s = Setup(tmp_path, 30.0, b_recorder=RECORDER)
    expected: list[object] = []
    for i in range(50):
        s.results(f"t{i}a", f"t{i}b")
        expected.append([f"t{i}a", f"t{i}b"])
        if i % 10 == 9:
            s.phase(f"P{i}")
            expected.append(f"P{i}")
    settle_within(s.delivery, 30)
    recorder = s.module("b_recorder")
    assert recorder.CALLS == expected
    assert recorder.THREADS == {"netra hooks"}
    assert s.errors == [] and s.reports == []
    s.delivery.close()


def test_a_stuck_hook_times_out_and_the_others_go_on(tmp_path):
    s = Setup(tmp_path, 0.5, a_stuck=STUCK, b_recorder=RECORDER)
    stuck, recorder = s.module("a_stuck"), s.module("b_recorder")
    stuck.RAISE = True
    t0 = time.monotonic()
    s.results("t1")
    assert stuck.ENTERED.wait(10)
    s.phase("P1")
    s.results("t2")
    assert time.monotonic() - t0 < 5  # the producer never waited for the stuck hook
    settle_within(s.delivery, 30)
    # the stuck plugin: quarantined once, with the hook, the limit and its stuck line
    assert stuck.CALLS == [["t1"]]
    (error,) = s.errors
    assert (error.plugin, error.hook) == ("a_stuck", "netra_results")
    assert error.error == (
        f"TimeoutError: still running after hook_timeout 0.5s (a_stuck.py:{STUCK_LINE})"
    )
    assert s.host.records()[0].status == f"quarantined: {error.error}"
    assert any("abandoned" in r.text and r.level == "error" for r in s.reports)
    # every other implementation ran, in order: the stuck call's too
    assert recorder.CALLS == [["t1"], "P1", ["t2"]]
    # the abandoned call returns (raising): nothing more is reported or delivered by it
    stuck.RELEASE.set()
    stuck.THREADS[0].join(10)
    assert not stuck.THREADS[0].is_alive()
    assert len(s.errors) == 1
    s.results("t3")
    settle_within(s.delivery, 30)
    assert recorder.CALLS[-1] == ["t3"] and stuck.CALLS == [["t1"]]
    assert s.delivery.timed_out == ["a_stuck: netra_results"]
    s.delivery.close()


class SmallQueue(Setup):
    queue_size = 3


def test_a_full_queue_drops_the_oldest_results_batches_never_other_calls(tmp_path):
    s = SmallQueue(tmp_path, 30.0, a_stuck=STUCK, b_recorder=RECORDER)
    stuck, recorder = s.module("a_stuck"), s.module("b_recorder")
    s.results("t0")
    assert stuck.ENTERED.wait(10)  # in flight; the queue holds the next 3 calls
    s.results("t1", "t1b")
    s.results("t2")
    s.phase("P1")
    s.results("t3")  # full: t1's batch goes
    s.results("t4")  # t2's
    s.lifecycle(
        "netra_iteration_finished", run_id=1, iteration=1, status="passed", counts={}, changes={}
    )
    assert (s.delivery.dropped_batches, s.delivery.dropped_results) == (3, 4)  # and t3's
    stuck.RELEASE.set()
    settle_within(s.delivery, 30)
    assert recorder.CALLS == [["t0"], "P1", ["t4"], "iteration 1"]
    (warning,) = [r for r in s.reports if r.level == "warning"]
    assert "3 netra_results batch(es) (4 results) dropped" in warning.text
    assert s.errors == []
    s.delivery.close()


def test_a_full_queue_keeps_lifecycle_calls_beyond_its_bound(tmp_path):
    s = SmallQueue(tmp_path, 30.0, a_stuck=STUCK, b_recorder=RECORDER)
    stuck, recorder = s.module("a_stuck"), s.module("b_recorder")
    s.results("t0")
    assert stuck.ENTERED.wait(10)
    for name in ("P1", "P2", "P3", "P4"):
        s.phase(name)
    s.results("t1")  # no batch queued to make room: this one is dropped
    stuck.RELEASE.set()
    s.delivery.close()  # settles first
    assert recorder.CALLS == [["t0"], "P1", "P2", "P3", "P4"]
    assert (s.delivery.dropped_batches, s.delivery.dropped_results) == (1, 1)
    assert any("1 netra_results batch(es) (1 results)" in r.text for r in s.reports)


def test_strict_mode_makes_a_timeout_fatal(tmp_path):
    s = Setup(tmp_path, 0.3, strict=True, a_stuck=STUCK, b_recorder=RECORDER)
    stuck = s.module("a_stuck")
    s.results("t1")
    s.phase("P1")
    settle_within(s.delivery, 30)
    (fatal,) = s.fatal
    assert (fatal.plugin, fatal.hook) == ("a_stuck", "netra_results")
    assert "still running after hook_timeout 0.3s" in str(fatal)
    assert "[stopped because NETRA_STRICT_PLUGINS=1]" in str(fatal)
    assert s.module("b_recorder").CALLS == [["t1"], "P1"]  # delivery went on
    stuck.RELEASE.set()
    s.delivery.close()


def test_a_raising_hook_in_strict_mode_is_fatal_too(tmp_path):
    raising = "def netra_phase_finished(phase):\n    raise ValueError('no dashboard')\n"
    s = Setup(tmp_path, 30.0, strict=True, a_raising=raising)
    s.phase("P1")
    s.delivery.close()
    (fatal,) = s.fatal
    assert "failed in netra_phase_finished: ValueError: no dashboard" in str(fatal)


def test_nothing_submitted_means_no_thread_and_no_wait(tmp_path):
    s = Setup(tmp_path, 30.0, b_recorder=RECORDER)
    before = threading.active_count()
    s.lifecycle("netra_run_finished", run_id=1, status="passed", exit_code=0)  # nobody
    s.delivery.settle()
    s.delivery.close()
    assert threading.active_count() == before


def test_close_delivers_what_is_queued_then_ignores_later_calls(tmp_path):
    slow = RECORDER.replace(
        "    CALLS.append(phase)", "    import time; time.sleep(0.2); CALLS.append(phase)"
    )
    s = Setup(tmp_path, 30.0, b_recorder=slow)
    s.phase("P1")
    s.phase("P2")
    s.delivery.close()
    recorder = s.module("b_recorder")
    assert recorder.CALLS == ["P1", "P2"]
    s.phase("P3")
    s.delivery.settle()
    assert recorder.CALLS == ["P1", "P2"]


@pytest.mark.parametrize("hook", ["netra_results", "netra_register_suites"])
def test_lifecycle_calls_checks_the_hook_like_call_lifecycle(tmp_path, hook):
    s = Setup(tmp_path, 30.0, b_recorder=RECORDER)
    if hook == "netra_results":
        with pytest.raises(TypeError, match="netra_results takes batch"):
            s.host.lifecycle_calls(hook, {"results": []})
    else:
        with pytest.raises(ValueError, match="not a lifecycle hook"):
            s.host.lifecycle_calls(hook, {"config": None})
