"""The watcher behind ``wait-for-change``: watchfiles in background threads.

watchfiles (a Rust core over inotify) waits for the kernel instead of walking the
tree: nothing runs while nothing changes but a check of the stop flag every
:data:`STEP_MS`. One thread watches the plan's folders recursively, another its flat
folders (each watched folder's own entries, the git folders); both set ``changed`` on
a change that counts (:class:`~supervisor.core.watch_plan.Relevance`).

When inotify cannot be used (the watch limit ``fs.inotify.max_user_watches`` is
reached, a file system refuses it) a thread falls back to watchfiles' polling mode and
says so once; a watcher that fails even then retries, and never ends the run. Polling
compares modification times to the second (notify's poll watcher): a file written
twice within one second may count once.
``WATCHFILES_FORCE_POLLING=1`` (watchfiles' own switch) polls from the start, for file
systems that accept inotify but never report (network mounts, WSL's ``/mnt``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from supervisor.core.watch_plan import WatchPlan

#: How often the watcher threads look at the stop flag (and group a burst of changes).
STEP_MS = 100
#: At most this long from a change's first event to its report (a steady stream of
#: ignored events, such as our own log writes, must not hold a real change back).
DEBOUNCE_MS = 500
#: Polling mode's period, the same as the walk this watcher replaced.
POLL_DELAY_MS = 1000
#: How long :meth:`TreeWatch.start` waits for the watches to be in place.
READY_TIMEOUT = 60.0
_RETRY_AFTER = 5.0

#: ``watchfiles.watch`` or a stand-in with the same keywords (tests).
WatchFn = Callable[..., Iterable[Any]]


def polling_forced(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """watchfiles' own ``WATCHFILES_FORCE_POLLING`` switch, read the way it reads it."""
    value = environ.get("WATCHFILES_FORCE_POLLING", "")
    return bool(value) and value.lower() not in {"false", "disable", "disabled"}


class _StopFlag:
    """watchfiles' ``stop_event``: set when the watch is closed or the run stopped.

    watchfiles asks it every step once its watches are in place, so the first question
    also tells :meth:`TreeWatch.start` that the watcher is ready.
    """

    def __init__(self, closed: threading.Event, run_stop: threading.Event) -> None:
        self.closed, self.run_stop = closed, run_stop
        self.ready = threading.Event()

    def is_set(self) -> bool:
        self.ready.set()
        return self.closed.is_set() or self.run_stop.is_set()


class TreeWatch:
    """Sets ``changed`` whenever a change that counts happens, until :meth:`close`."""

    def __init__(
        self,
        plan: WatchPlan,
        changed: threading.Event,
        announce: Callable[[str], None],
        run_stop: threading.Event,
        watch_fn: WatchFn | None = None,
        force_polling: bool | None = None,
    ) -> None:
        self.plan = plan
        self.changed = changed
        self.announce = announce
        self._watch_fn = watch_fn
        self._closed = threading.Event()
        self._run_stop = run_stop
        self.polling = polling_forced() if force_polling is None else force_polling
        #: why inotify is not used, once it is not (said once in the log)
        self.fallback_reason = ""
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._flags: list[_StopFlag] = []

    def describe(self) -> str:
        """How the watch works now, for the announce line."""
        if self.polling:
            return f"polling every {POLL_DELAY_MS / 1000:g}s"
        return "inotify"

    def start(self) -> None:
        """Start the watcher threads and wait until their watches are in place."""
        for paths, recursive in ((self.plan.recursive, True), (self.plan.flat, False)):
            if not paths:
                continue
            flag = _StopFlag(self._closed, self._run_stop)
            thread = threading.Thread(
                target=self._run,
                args=(paths, recursive, flag),
                name=f"netra-watch-{'tree' if recursive else 'flat'}",
                daemon=True,
            )
            self._flags.append(flag)
            self._threads.append(thread)
            thread.start()
        for flag, thread in zip(self._flags, self._threads):
            while not flag.ready.wait(0.05):
                if not thread.is_alive() or self._run_stop.is_set():
                    break

    def close(self) -> None:
        """Stop the watchers (watchfiles sees the flag within a step) and join them."""
        self._closed.set()
        for thread in self._threads:
            thread.join(READY_TIMEOUT)

    def _run(self, paths: tuple[str, ...], recursive: bool, flag: _StopFlag) -> None:
        watch = self._watch_fn
        if watch is None:
            import watchfiles  # here: `netra-supervisor --help` and other modes do not pay

            watch = watchfiles.watch
        while not (self._closed.is_set() or self._run_stop.is_set()):
            polling = self.polling
            try:
                for _changes in watch(
                    *paths,
                    watch_filter=self.plan.relevance,
                    debounce=DEBOUNCE_MS,
                    step=STEP_MS,
                    stop_event=flag,
                    rust_timeout=0,
                    raise_interrupt=False,
                    force_polling=polling,
                    poll_delay_ms=POLL_DELAY_MS,
                    recursive=recursive,
                    ignore_permission_denied=True,
                ):
                    self.changed.set()
                return
            except FileNotFoundError:
                # a watched folder went away while the watch started: that is a change;
                # watch what is left (the next iteration's plan sees what came back)
                self.changed.set()
                paths = tuple(p for p in paths if os.path.exists(p))
                if not paths:
                    flag.ready.set()
                    return
            except Exception as exc:  # noqa: BLE001 - the watch must never end the run
                if not polling:
                    self._fall_back(exc)
                else:
                    flag.ready.set()  # as ready as it gets; retry, and say so
                    self.announce(
                        f"watching for changes failed ({exc}); trying again in {_RETRY_AFTER:g}s"
                    )
                    self._closed.wait(_RETRY_AFTER)

    def _fall_back(self, exc: BaseException) -> None:
        with self._lock:
            if self.polling:
                return
            self.polling = True
            self.fallback_reason = f"{type(exc).__name__}: {exc}"
        self.announce(
            f"inotify cannot watch here ({self.fallback_reason}); "
            f"polling every {POLL_DELAY_MS / 1000:g}s instead (raise fs.inotify.max_user_watches"
            " if the watch limit was reached)"
        )
