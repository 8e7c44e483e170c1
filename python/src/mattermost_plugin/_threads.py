"""The worker threads sync handlers run in, handed work by the event loop.

``loop.run_in_executor`` with a ``ThreadPoolExecutor`` costs ~43 µs a call on this kind of
machine (the executor's own future, work item and thread accounting, then asyncio's wrapper
future chained to it); one ``SimpleQueue.put`` to a parked thread and one
``call_soon_threadsafe`` back cost ~27 µs (``bench/dispatch_floor.py`` prints both). The
thread count is not bounded here: ``_gate.py`` bounds how many handlers run, and a handler
blocked in an API call that runs a nested hook of ours must not wait for a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["HandlerThreads"]

T = TypeVar("T")

# What a worker is handed: the loop to answer on, the future to settle, the work.
_Item = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[[], Any]]


class HandlerThreads:
    """Runs blocking callables in worker threads and settles an asyncio future with the
    outcome. Idle threads stay parked on the queue and are reused; a call that finds none
    idle starts a new one."""

    def __init__(self, name_prefix: str) -> None:
        self._name_prefix = name_prefix
        self._work: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # parked threads not yet promised an item (under _lock)
        self._started = 0
        self._closed = False

    def submit(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """Runs ``work()`` in a worker thread; the returned future (of the running loop)
        gets its result or exception. Cancelling the future does not stop ``work``: its
        outcome is then dropped."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the handler threads are closed")
            start = self._idle == 0
            if start:
                self._started += 1
                name = f"{self._name_prefix}_{self._started - 1}"
            else:
                self._idle -= 1
        if start:
            threading.Thread(target=self._serve, name=name, daemon=True).start()
        self._work.put((loop, future, work))
        return future

    def close(self) -> None:
        """Parked threads exit; work handed over and not started yet is cancelled."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = self._started
        for _ in range(started):
            self._work.put(None)

    def _serve(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            loop, future, work = item
            if self._closed:
                _settle_soon(loop, future, _cancel, None)
                continue
            settle: Callable[[asyncio.Future[Any], Any], None]
            try:
                outcome: Any = work()
                settle = _set_result
            except BaseException as e:  # handed to the awaiting task, as an executor does
                outcome, settle = e, _set_exception
            with self._lock:
                self._idle += 1
            _settle_soon(loop, future, settle, outcome)
            del item, future, work, outcome  # nothing of this call outlives it in the thread


def _settle_soon(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    settle: Callable[[asyncio.Future[Any], Any], None],
    outcome: Any,
) -> None:
    # A closed loop raises RuntimeError: nobody waits for this outcome any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(settle, future, outcome)


def _set_result(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():  # cancelled while the work ran (a hook past its time limit)
        future.set_result(value)


def _set_exception(future: asyncio.Future[Any], error: BaseException) -> None:
    if future.done():
        return
    if isinstance(error, StopIteration):
        # A future refuses StopIteration (it would end the awaiting coroutine's frame).
        wrapped = RuntimeError(f"a handler raised StopIteration: {error}")
        wrapped.__cause__ = error
        error = wrapped
    future.set_exception(error)


def _cancel(future: asyncio.Future[Any], _: Any) -> None:
    future.cancel()
