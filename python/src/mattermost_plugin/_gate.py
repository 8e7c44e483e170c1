"""How many synchronous hook handlers run at once.

Each sync handler runs in a worker thread. Without a bound, a flood of slow requests (1,500
slow uploads, issue 16) holds a thread each: 1,247 threads that never go away. With a plain
bound, a handler blocked in an API call that makes the server call another hook of ours
(``CreatePost`` runs ``MessageWillBePosted``) could wait for a thread that only another blocked
handler could free: a deadlock. So the bound counts handlers that *run*: one blocked in an API
call (the sync client tells the gate) does not count while it waits, as Go's scheduler does
not count a goroutine blocked in a system call. Handlers over the bound wait, in arrival order,
on no thread, within their hook's time limit: on the event loop (``acquire``), or in the queue
of the lane connection whose threads serve plain ``def`` hooks (``try_acquire``; it hears of
room through ``on_room``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Callable

__all__ = ["DEFAULT_MAX_SYNC_HANDLERS", "SyncHandlerGate", "blocking_api_call", "handler_thread"]

DEFAULT_MAX_SYNC_HANDLERS = 64

_thread = threading.local()


class SyncHandlerGate:
    """At most ``limit`` sync handlers running, not counting those blocked in API calls."""

    def __init__(self, limit: int = DEFAULT_MAX_SYNC_HANDLERS) -> None:
        if limit < 1:
            raise ValueError(f"max_sync_handlers must be at least 1, got {limit}")
        self.limit = limit
        # Both under _lock: the loop admits and releases, worker threads count API calls.
        self._admitted = 0
        self._in_api = 0
        self._lock = threading.Lock()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Called (outside the lock, from any thread) when a handler may now be admitted:
        # what waits off the loop (_lane/threaded.py's queue) hears it so.
        self._room_listeners: list[Callable[[], None]] = []

    @property
    def running(self) -> int:
        """Handlers admitted and not blocked in an API call."""
        with self._lock:
            return self._admitted - self._in_api

    async def acquire(self) -> None:
        loop = self._loop = asyncio.get_running_loop()
        while True:
            # The check and the queueing are one step under the lock, so a worker thread's
            # _api_call_started sees this waiter or this check sees its handler as blocked.
            with self._lock:
                if not self._waiters and self._admit_now():
                    return
                waiter = loop.create_future()
                self._waiters.append(waiter)
            try:
                await waiter
            finally:
                with self._lock:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
            with self._lock:
                if self._admit_now():
                    return

    def try_acquire(self) -> bool:
        """Admits a handler now if ``acquire`` would without waiting; from any thread."""
        with self._lock:
            return not self._waiters and self._admit_now()

    def _admit_now(self) -> bool:
        """Admits one more handler if there is room (with _lock held)."""
        if self._admitted - self._in_api < self.limit:
            self._admitted += 1
            return True
        return False

    def room(self) -> int:
        """How many more handlers would be admitted now (a hint: it may change at once)."""
        with self._lock:
            return max(0, self.limit - (self._admitted - self._in_api))

    def on_room(self, listener: Callable[[], None]) -> None:
        """Calls ``listener`` whenever a handler leaves or blocks in an API call."""
        self._room_listeners.append(listener)

    def release(self) -> None:
        with self._lock:
            self._admitted -= 1
        self._wake()
        self._tell_room()

    def release_from_thread(self) -> None:
        """``release`` from a worker thread: the loop is woken only for a waiting handler."""
        with self._lock:
            self._admitted -= 1
            wake = bool(self._waiters)
        loop = self._loop
        if wake and loop is not None:
            with contextlib.suppress(RuntimeError):  # a closed loop has nobody waiting
                loop.call_soon_threadsafe(self._wake)
        self._tell_room()

    def _tell_room(self) -> None:
        for listener in self._room_listeners:
            listener()

    def _wake(self) -> None:
        # Wake the first waiter; it re-checks the count when it runs.
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                if not waiter.done():
                    waiter.set_result(None)
                    return

    def _api_call_started(self) -> None:
        with self._lock:
            self._in_api += 1
            # Only a waiting handler needs the loop woken: an idle loop stays asleep, which
            # spares every API call from a handler thread a wake-up and a GIL hand-off.
            wake = bool(self._waiters)
        loop = self._loop
        if wake and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake)
        self._tell_room()

    def _api_call_finished(self) -> None:
        with self._lock:
            self._in_api -= 1


class handler_thread:
    """Marks the current worker thread as running a sync handler admitted by ``gate``.

    A class rather than a ``@contextmanager`` generator: it is on every sync hook's path,
    and costs a third as much."""

    __slots__ = ("gate", "previous")

    def __init__(self, gate: SyncHandlerGate) -> None:
        self.gate = gate
        self.previous: SyncHandlerGate | None = None

    def __enter__(self) -> None:
        self.previous = getattr(_thread, "gate", None)
        _thread.gate = self.gate

    def __exit__(self, *exc: object) -> None:
        _thread.gate = self.previous


class blocking_api_call:
    """Around a blocking API call: the handler making it does not count while it waits.
    (A class for the reason ``handler_thread`` is one: it is on every sync API call's path.)"""

    __slots__ = ("gate",)

    def __enter__(self) -> None:
        self.gate: SyncHandlerGate | None = getattr(_thread, "gate", None)
        if self.gate is not None:
            self.gate._api_call_started()

    def __exit__(self, *exc: object) -> None:
        if self.gate is not None:
            self.gate._api_call_finished()
