"""The bound on concurrently running sync handlers (_gate.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from mattermost_plugin._gate import SyncHandlerGate, blocking_api_call, handler_thread


async def run_gated(gate: SyncHandlerGate, pool: ThreadPoolExecutor, fn: object) -> None:
    loop = asyncio.get_running_loop()

    def in_thread() -> None:
        with handler_thread(gate):
            fn()  # type: ignore[operator]

    await gate.acquire()
    try:
        await loop.run_in_executor(pool, in_thread)
    finally:
        gate.release()


async def test_at_most_limit_handlers_run_and_all_finish() -> None:
    gate = SyncHandlerGate(3)
    lock = threading.Lock()
    running, peak, done = 0, 0, 0

    def handler() -> None:
        nonlocal running, peak, done
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1
            done += 1

    with ThreadPoolExecutor(max_workers=100) as pool:
        await asyncio.gather(*(run_gated(gate, pool, handler) for _ in range(20)))
    assert (peak, done) == (3, 20)


async def test_a_handler_blocked_in_an_api_call_leaves_room_for_a_nested_hook() -> None:
    # Limit 1: the first handler blocks "in an API call" until the second one (the nested
    # hook the server calls meanwhile) has run. Counted, it would deadlock.
    gate = SyncHandlerGate(1)
    nested_ran = threading.Event()

    def outer() -> None:
        with blocking_api_call():
            assert nested_ran.wait(5), "the nested hook never ran"

    def nested() -> None:
        nested_ran.set()

    with ThreadPoolExecutor(max_workers=4) as pool:
        first = asyncio.create_task(run_gated(gate, pool, outer))
        await asyncio.sleep(0.05)
        await asyncio.wait_for(run_gated(gate, pool, nested), 5)
        await asyncio.wait_for(first, 5)
    assert gate.running == 0


def test_a_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        SyncHandlerGate(0)


def test_threads_are_admitted_without_the_loop_and_hear_of_room() -> None:
    """The threaded lane connection's side of the gate: ``try_acquire`` from any thread,
    ``room`` as a hint, and the listeners told when a handler leaves or blocks in an API
    call (not when one comes back from it)."""
    gate = SyncHandlerGate(2)
    told: list[int] = []
    gate.on_room(lambda: told.append(gate.room()))
    assert gate.room() == 2
    assert gate.try_acquire() and gate.try_acquire()
    assert not gate.try_acquire() and gate.room() == 0
    with handler_thread(gate), blocking_api_call():
        assert told == [1]  # one blocked in an API call: room for one more
        assert gate.try_acquire()
        assert not gate.try_acquire()
    assert told == [1] and gate.room() == 0  # back from the call: over the limit again
    gate.release_from_thread()
    assert told == [1, 0]
    gate.release_from_thread()
    gate.release_from_thread()
    assert told == [1, 0, 1, 2] and gate.running == 0
