"""``core.waiting``: the waiting line picked from plain stacks, and folded dumps."""

from __future__ import annotations

from supervisor.core import watchdog as wd
from supervisor.core.waiting import (
    Frame,
    Roots,
    Stack,
    crash_where,
    find_waiting,
    fold_dump,
    short_path,
    signal_name,
    stacks_from,
    waiting_line,
    where_from_answer,
    whose,
)

ROOT = "/home/me/proj"
SITE = "/home/me/proj/.venv/lib/python3.12/site-packages"
STDLIB = "/usr/lib/python3.12"
ROOTS = Roots(rootdir=ROOT, site=(SITE,), stdlib=(STDLIB,), tool=("/opt/netra/child",))


def pytest_frames(n: int = 3) -> list[Frame]:
    return [Frame(f"{SITE}/_pytest/runner.py", 100 + i, f"call{i}") for i in range(n)] + [
        Frame(f"{SITE}/pluggy/_callers.py", 103, "_multicall"),
        Frame(f"{SITE}/_pytest/python.py", 159, "pytest_pyfunc_call"),
    ]


def line(stacks: list[Stack], nodeid: str, roots: Roots = ROOTS) -> str:
    waiting = find_waiting(stacks, roots, nodeid)
    assert waiting is not None
    return waiting_line(waiting, roots)


def test_a_sync_test_names_its_line_and_the_library_call_under_it():
    main = Stack(
        "thread",
        "Thread MainThread",
        (
            *pytest_frames(),
            Frame(
                f"{ROOT}/tests/test_p1.py",
                90,
                "test_stream",
                'seen.append(json.loads(agent_ws.recv())["type"])',
                "agent_ws.recv()",
            ),
            Frame(
                f"{SITE}/websockets/sync/connection.py",
                328,
                "recv",
                "",
                "self.recv_messages.get(timeout, decode)",
            ),
            Frame(
                f"{SITE}/websockets/sync/messages.py",
                90,
                "get_next_frame",
                "frame = self.frames.get(block=True, timeout=timeout)",
                "self.frames.get(block=True, timeout=timeout)",
            ),
        ),
        main=True,
    )
    other = Stack("thread", "Thread keepalive", (Frame(f"{STDLIB}/threading.py", 320, "wait"),))
    assert line([other, main], "tests/test_p1.py::test_stream") == (
        "at tests/test_p1.py:90 in test_stream: agent_ws.recv()"
        " → websockets/sync/messages.py:90 frames.get"
    )


def test_an_asyncio_test_is_followed_into_its_task_not_the_event_loop():
    loop = Stack(
        "thread",
        "Thread MainThread",
        (
            *pytest_frames(),
            Frame(f"{SITE}/anyio/pytest_plugin.py", 160, "pytest_pyfunc_call"),
            Frame(f"{STDLIB}/asyncio/base_events.py", 607, "run_forever"),
            Frame(
                f"{STDLIB}/selectors.py",
                468,
                "select",
                "fd_event_list = self._selector.poll(timeout, max_ev)",
            ),
        ),
        main=True,
    )
    server = Stack(
        "task",
        "<Task Task-3>",
        (Frame(f"{ROOT}/tests/test_ws.py", 13, "_silent", "", "await asyncio.Event().wait()"),),
    )
    runner = Stack(
        "task",
        "<Task Task-1>",
        (
            Frame(
                f"{SITE}/anyio/_backends/_asyncio.py",
                2200,
                "_run_tests_and_fixtures",
                "",
                "retval = await coro",
            ),
            Frame(
                f"{ROOT}/tests/test_ws.py",
                21,
                "test_recv",
                "await ws.recv()  # stuck",
                "await ws.recv()",
            ),
            Frame(f"{SITE}/websockets/asyncio/messages.py", 54, "get", "", "await self.get_waiter"),
        ),
    )
    assert line([loop, server, runner], "tests/test_ws.py::test_recv[asyncio]") == (
        "at tests/test_ws.py:21 in test_recv: await ws.recv()"
        " → websockets/asyncio/messages.py:54 await get_waiter"
    )


def test_a_sync_test_that_runs_its_own_loop_is_followed_into_the_loops_task():
    main = Stack(
        "thread",
        "Thread MainThread",
        (
            *pytest_frames(),
            Frame(f"{ROOT}/t.py", 20, "test_run", "asyncio.run(consume())"),
            Frame(f"{STDLIB}/asyncio/base_events.py", 607, "run_forever"),
            Frame(f"{STDLIB}/selectors.py", 468, "select"),
        ),
        main=True,
    )
    task = Stack(
        "task",
        "<Task>",
        (
            Frame(f"{ROOT}/t.py", 18, "consume", "", "await queue.get()"),
            Frame(f"{STDLIB}/asyncio/queues.py", 158, "get", "await getter"),
        ),
    )
    assert line([main, task], "t.py::test_run") == (
        "at t.py:18 in consume: await queue.get() → asyncio/queues.py:158 await getter"
    )


def test_a_hang_in_a_fixture_names_the_fixture_and_whether_setup_or_teardown():
    def stack(pytest_func: str, func: str) -> list[Stack]:
        frames = (
            *pytest_frames(),
            Frame(f"{SITE}/_pytest/fixtures.py", 921, pytest_func),
            Frame(f"{ROOT}/conftest.py", 8, func, "time.sleep(600)  # forever", "time.sleep(600)"),
        )
        return [Stack("thread", "Thread MainThread", frames, main=True)]

    nodeid = "tests/test_a.py::test_uses_it"
    assert line(stack("call_fixture_func", "server"), nodeid) == (
        "at conftest.py:8 in fixture server (setup): time.sleep(600)"
    )
    assert line(stack("_teardown_yield_fixture", "server"), nodeid) == (
        "at conftest.py:8 in fixture server (teardown): time.sleep(600)"
    )


def test_a_hang_while_importing_names_the_import_line():
    frames = (
        Frame("<frozen importlib._bootstrap>", 1176, "_find_and_load"),
        Frame("<frozen importlib._bootstrap>", 690, "_load_unlocked"),
        Frame(f"{ROOT}/tests/test_b.py", 3, "<module>", "import slowlib"),
        Frame(f"{SITE}/slowlib/__init__.py", 5, "<module>", "connect()  # blocks"),
        Frame(f"{STDLIB}/socket.py", 120, "create_connection", "sock.connect(sa)"),
    )
    stacks = [Stack("thread", "Thread MainThread", (*pytest_frames(), *frames), main=True)]
    assert line(stacks, "tests/test_b.py") == (
        "at tests/test_b.py:3 in <module>: import slowlib → socket.py:120 sock.connect"
    )


def test_whose_code_a_frame_is():
    assert whose(f"{ROOT}/tests/a.py", ROOTS) == "own"
    assert whose(f"{SITE}/websockets/x.py", ROOTS) == "lib"  # a venv inside the project
    assert whose(f"{SITE}/_pytest/runner.py", ROOTS) == "tool"
    assert whose("/opt/netra/child/child_plugin.py", ROOTS) == "tool"
    assert whose(f"{STDLIB}/threading.py", ROOTS) == "stdlib"
    assert whose(f"{STDLIB}/runpy.py", ROOTS) == "tool"
    assert whose("<frozen runpy>", ROOTS) == "tool"
    assert whose("/elsewhere/x.py", ROOTS) == "other"
    assert short_path(f"{SITE}/websockets/x.py", ROOTS) == "websockets/x.py"
    assert short_path("/usr/lib/python3.11/site-packages/a/b.py", Roots()) == "a/b.py"
    assert short_path("/usr/lib/python3.11/threading.py", Roots()) == "threading.py"


def test_long_code_is_cut_and_comments_dropped():
    long_call = "client.request(" + ", ".join(f"arg{i}" for i in range(40)) + ")"
    stacks = [
        Stack(
            "thread",
            "T",
            (
                Frame(f"{ROOT}/a.py", 1, "test_x", long_call + "  # note"),
                Frame(f"{SITE}/lib.py", 2, "f", "return self._send('#', data)  # inner"),
            ),
            main=True,
        )
    ]
    assert line(stacks, "a.py::test_x") == "at a.py:1 in test_x: client.request(…) → lib.py:2 _send"


def test_no_own_frame_shows_where_it_is_and_nothing_malformed_breaks_it():
    stacks = [
        Stack(
            "thread",
            "T",
            (Frame(f"{STDLIB}/threading.py", 320, "wait", "waiter.acquire()"),),
            main=True,
        )
    ]
    assert line(stacks, "x.py::test_y") == "at threading.py:320 in wait: waiter.acquire()"
    assert where_from_answer(None, "x.py::t") == ""
    assert where_from_answer({"stacks": "junk", "roots": 3}, "x.py::t") == ""
    assert stacks_from([1, {"frames": [{"line": "x"}, 2]}]) == [
        Stack("thread", "", (Frame("", 0, ""),))
    ]


def test_the_child_answer_round_trip():
    answer = {
        "stacks": [
            {
                "kind": "thread",
                "name": "Thread MainThread",
                "main": True,
                "frames": [
                    {
                        "file": f"{ROOT}/t.py",
                        "line": 4,
                        "func": "test_s",
                        "code": "time.sleep(9)",
                        "expr": "time.sleep(9)",
                    }
                ],
            }
        ],
        "roots": {"rootdir": ROOT, "site": [SITE], "stdlib": [STDLIB], "netra": "/opt/netra/child"},
    }
    assert where_from_answer(answer, "t.py::test_s") == "at t.py:4 in test_s: time.sleep(9)"


FAULT = """Fatal Python error: Segmentation fault

Thread 0x00007f0000000002 (most recent call first):
  File "/usr/lib/python3.12/threading.py", line 320 in wait

Current thread 0x00007f0000000001 (most recent call first):
  File "/usr/lib/python3.12/ctypes/__init__.py", line 519 in string_at
  File "/home/me/proj/tests/test_c.py", line 9 in test_segfaults
  File "/home/me/proj/.venv/lib/python3.12/site-packages/_pytest/python.py", line 157 in pytest_pyfunc_call
"""


def test_a_crash_names_the_signal_and_the_tests_frame_in_faulthandlers_report():
    source = {
        ("/home/me/proj/tests/test_c.py", 9): "    ctypes.string_at(0)  # boom\n",
        ("/usr/lib/python3.12/ctypes/__init__.py", 519): "    return _string_at(ptr, size)\n",
    }
    where = crash_where(
        FAULT, "tests/test_c.py::test_segfaults", lambda f, n: source.get((f, n), "")
    )
    assert where == (
        "at tests/test_c.py:9 in test_segfaults: ctypes.string_at(0)"
        " → ctypes/__init__.py:519 _string_at"
    )
    assert signal_name(FAULT) == "SIGSEGV"
    assert signal_name("pytest was killed by SIGABRT") == "SIGABRT"
    assert signal_name("pytest exited with code 3") == ""
    assert crash_where("no report", "t.py::x", lambda f, n: "") == ""


def test_the_hung_message_carries_the_waiting_line():
    period = wd.Period(wd.TEST, "t.py::x", 0.0, 5.0, reason="deadline")
    where = "at t.py:4 in x: time.sleep(9)"
    assert wd.hang_message(period, 5.1, 10.0, where=where) == f"hung 5s {where}"
    assert wd.hang_message(period, 5.1, 10.0) == "still running after its deadline of 5s"
    killed = wd.Period(wd.TEST, "t.py::x", 0.0, 5.0, reason="killed")
    assert wd.hang_message(killed, 2.5, 10.0, where=where) == (
        f"killed by the user after 2.5s (deadline 5s) {where}"
    )
    collecting = wd.Period(wd.COLLECT, "t.py", 0.0, 5.0, reason="deadline")
    assert wd.hang_message(collecting, 5.1, 10.0, "still collecting t.py", where) == (
        f"still collecting t.py after its deadline of 5s {where}"
    )


DUMP = """Thread MainThread (id 1):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/v/site-packages/_pytest/main.py", line 10, in wrap_session
    session.exitstatus = doit(config, session) or 0
  File "/v/site-packages/pluggy/_hooks.py", line 513, in __call__
    return self._hookexec(self.name, self._hookimpls.copy(), kwargs, firstresult)
  File "/v/site-packages/anyio/pytest_plugin.py", line 160, in pytest_pyfunc_call
    runner.run_test(pyfuncitem.obj, testargs)
  File "/v/site-packages/_pytest/python.py", line 159, in pytest_pyfunc_call
    result = testfunction(**testargs)
  File "/usr/lib/python3.12/selectors.py", line 468, in select
    fd_event_list = self._selector.poll(timeout, max_ev)
Thread keepalive (id 2):
  File "/usr/lib/python3.12/threading.py", line 320, in wait
    waiter.acquire()

asyncio tasks not done (1):
<Task pending name='Task-1'>
  File "/p/tests/test_ws.py", line 21, in test_recv
    await ws.recv()  # stuck
"""


def test_fold_dump_folds_pytest_frames_and_puts_the_tests_task_first():
    folded = fold_dump(DUMP)
    lines = folded.splitlines()
    assert lines[:3] == [
        "<Task pending name='Task-1'>",
        '  File "/p/tests/test_ws.py", line 21, in test_recv',
        "    await ws.recv()  # stuck",
    ]
    assert "  … 3 pytest frames …" in lines  # runpy, _pytest, pluggy
    assert "pluggy" not in folded and "wrap_session" not in folded
    # a lone pytest frame stays; every other line of the dump is kept
    assert '  File "/v/site-packages/_pytest/python.py", line 159, in pytest_pyfunc_call' in lines
    assert "    waiter.acquire()" in lines and "asyncio tasks not done (1):" in lines
    assert fold_dump("") == ""
    assert fold_dump("<no dump: the test process did not answer within 5s>") == (
        "<no dump: the test process did not answer within 5s>"
    )


def test_fold_dump_puts_the_test_thread_first_and_folds_a_faulthandler_report():
    dump = (
        "Thread other (id 2):\n"
        '  File "/usr/lib/python3.12/threading.py", line 320, in wait\n'
        "Thread MainThread (id 1):\n"
        '  File "/v/site-packages/_pytest/runner.py", line 1, in a\n'
        '  File "/v/site-packages/_pytest/runner.py", line 2, in b\n'
        '  File "/p/t.py", line 3, in test_x\n'
    )
    assert fold_dump(dump).splitlines() == [
        "Thread MainThread (id 1):",
        "  … 2 pytest frames …",
        '  File "/p/t.py", line 3, in test_x',
        "Thread other (id 2):",
        '  File "/usr/lib/python3.12/threading.py", line 320, in wait',
    ]
    folded = fold_dump(FAULT)
    assert folded.splitlines()[:3] == [
        "Fatal Python error: Segmentation fault",
        "",
        "Current thread 0x00007f0000000001 (most recent call first):",
    ]
    assert "test_segfaults" in folded


def test_the_call_waited_on_is_found_in_its_line_without_column_positions():
    """Python 3.10 gives no executing expression: the call of the next frame's function
    is cut out of the line, arguments and ``await`` included, so the message reads the
    same as on 3.11+."""
    from supervisor.core.waiting import call_in

    line = 'seen.append(json.loads(agent_ws.recv())["type"])'
    assert call_in(line, "recv") == "agent_ws.recv()"
    assert call_in("return await queue.get()", "get") == "await queue.get()"
    assert call_in('frame = self.frames.get(block=True, sep=")")', "get") == (
        'self.frames.get(block=True, sep=")")'
    )
    assert call_in("time.sleep(60)", "wait") == ""  # not called on this line
    assert call_in("forget(", "forget") == ""  # unbalanced: the line is shown instead


def test_a_bare_name_as_the_executing_expression_shows_the_line():
    """Python 3.13 reports ``b`` as what ``with b:`` executes while it waits to enter;
    the line (``with b:``) says what waits."""
    from supervisor.core.waiting import Frame, Roots, Waiting, waiting_line

    own = Frame(file="/p/tests/test_x.py", line=3, func="test_x", code="with b:  # lock", expr="b")
    line = waiting_line(Waiting(own=own, leaf=own), Roots(rootdir="/p"))
    assert line.endswith("in test_x: with b:"), line
