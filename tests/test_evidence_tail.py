"""Following real log files: when each line arrived, across appends, rotation and globs.

The tail's clock is injected, so "when" is exact: each :meth:`LogTail.poll` is one look.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from supervisor.core.evidence import EvidenceWindow, select
from supervisor.evidence_tail import LogTail


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def window(start: float, end: float) -> EvidenceWindow:
    return EvidenceWindow(
        datetime.fromtimestamp(start, timezone.utc), datetime.fromtimestamp(end, timezone.utc)
    )


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def test_lines_carry_the_time_the_tail_saw_them_arrive(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("written before the run\n")
    clock = Clock(1000.0)
    tail = LogTail([str(log)], clock=clock, rescan=0.0)
    tail.poll()
    clock.now = 1010.0
    append(log, "first\nsecond\n")
    tail.poll()
    clock.now = 1020.0
    append(log, "third\n")
    tail.poll()
    clock.now = 1030.0
    append(log, "partial, no newline yet")
    found = tail.lines(window(1009.0, 1021.0))
    assert found == {
        str(log): [
            (1010.0, "first"),
            (1010.0, "second"),
            (1020.0, "third"),
            (1030.0, "partial, no newline yet"),
        ]
    }
    # what the file held before the run never counts, whatever the window
    assert "written before the run" not in str(tail.lines(window(0.0, 2000.0)))
    # far from the window: nothing is read
    assert tail.lines(window(1100.0, 1200.0)) == {}


def test_a_window_starting_mid_file_drops_the_partial_line_before_it(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    clock = Clock(1000.0)
    tail = LogTail([str(log)], clock=clock, rescan=0.0)
    tail.poll()
    clock.now = 1010.0
    append(log, "old line one\nold ")
    tail.poll()
    clock.now = 1020.0
    append(log, "line two\nnew line\n")
    tail.poll()
    lines = [line for _, line in tail.lines(window(1019.0, 1021.0))[str(log)]]
    assert lines == ["new line"]  # "line two" began before the window's bytes


def test_rotation_and_files_that_appear_later(tmp_path):
    (tmp_path / "logs").mkdir()
    api = tmp_path / "logs" / "api.log"
    api.write_text("old api line\n")
    clock = Clock(1000.0)
    tail = LogTail([str(tmp_path / "logs" / "*.log")], clock=clock, rescan=0.0)
    tail.poll()
    clock.now = 1010.0
    worker = tmp_path / "logs" / "worker.log"
    worker.write_text("worker started\n")  # a file that appears during the run
    api.rename(tmp_path / "logs" / "api.log.1")  # rotated: a new file, a new generation
    api.write_text("after rotation\n")
    tail.poll()
    found = tail.lines(window(1005.0, 1011.0))
    assert found == {
        str(api): [(1010.0, "after rotation")],
        str(worker): [(1010.0, "worker started")],
    }
    early = window(990.0, 1001.0)  # read around it, but nothing arrived in it
    assert all(select(lines, early) == [] for lines in tail.lines(early).values())
    clock.now = 1020.0
    api.write_text("")  # copytruncate: the same file, shorter
    tail.poll()
    clock.now = 1030.0
    append(api, "after truncation\n")
    assert tail.lines(window(1025.0, 1031.0)) == {str(api): [(1030.0, "after truncation")]}


def test_the_thread_follows_until_closed(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("")
    tail = LogTail([str(log)], interval=0.01).start()
    try:
        append(log, "seen by the thread or by lines()\n")
        lines = tail.lines(window(0.0, 4e9))
    finally:
        tail.close()
    assert [line for _, line in lines[str(log)]] == ["seen by the thread or by lines()"]
    assert tail._thread is not None and not tail._thread.is_alive()


def test_overlapping_windows_read_each_line_once_and_alike(tmp_path):
    """Failures close together have overlapping windows: what was read is kept, and an
    unfinished last line is shown, then read whole once its newline came."""
    log = tmp_path / "app.log"
    log.write_text("")
    clock = Clock(1000.0)
    tail = LogTail([str(log)], clock=clock, rescan=0.0)
    tail.poll()
    for second in range(1, 21):
        clock.now = 1000.0 + second
        append(log, f"line {second}\n")
        tail.poll()
    clock.now = 1021.0
    append(log, "half a li")
    tail.poll()

    def texts(start: float, end: float) -> list[str]:
        return [line for _, line in tail.lines(window(start, end)).get(str(log), [])]

    assert texts(1005.0, 1006.0) == [f"line {n}" for n in range(5, 10)]  # 0.5 s before, 2 s after
    assert texts(1006.0, 1007.0) == [f"line {n}" for n in range(6, 11)]
    assert texts(1019.0, 1020.0) == ["line 19", "line 20", "half a li"]
    clock.now = 1022.0
    append(log, "ne, now whole\n")
    assert texts(1019.0, 1020.0)[-1] == "half a line, now whole"
    fresh = LogTail([str(log)], clock=clock, rescan=0.0)
    fresh._files, fresh._scanned_at, fresh._polled_at = tail._files, 0.0, clock.now
    assert texts(1003.0, 1010.0) == [
        line for _, line in fresh.lines(window(1003.0, 1010.0))[str(log)]
    ]  # an earlier window again: read afresh, the same lines
