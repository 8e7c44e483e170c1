"""What the SDK's hook dispatch costs on this machine, with no transport: microseconds per
``MessageWillBePosted`` (request bytes in, response bytes out) as the lane serves it: an
``async def`` handler through ``HookDispatcher.lane_handler`` on one event loop
(``dispatch_async_def``), a plain ``def`` one as the threaded connection's reader serves it,
inline (``dispatch_plain_def_inline``, ``HookDispatcher.lane_threaded``), and a plain ``def``
one through ``lane_handler``'s general path, which hands it to a worker thread
(``dispatch_plain_def_handed_off``: hooks with SDK steps take it); the inline one again, each
call after its thread slept 200 µs (``dispatch_plain_def_inline_cold``: the CPU of the call
alone, as a lane reader serves one request at a time); and the bare worker-thread
hand-off that path pays (``HandlerThreads``, ``_threads.py``), beside
``loop.run_in_executor`` with a ``ThreadPoolExecutor``, which it replaced.

    .venv/bin/python bench/dispatch_floor.py [--calls N]

Both handlers do what bench/plugin-python's does (a mark on the message, a prop).
``make bench``'s ``hook_round_trip_p50`` (plain ``def``) and ``hook_async_round_trip_p50``
(``async def``) are the same hooks end to end. Prints one JSON
object of wall and CPU microseconds per call. Not part of any make target.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mattermost_plugin import HookName, Plugin, Post, hook
from mattermost_plugin._contract import hooks_service
from mattermost_plugin._dispatch import HookDispatcher
from mattermost_plugin._proto.mattermost.plugin.v1 import hooks_pb2
from mattermost_plugin._threads import HandlerThreads

PATH = "/mattermost.plugin.v1.PluginHooks/MessageWillBePosted"
WARM_UP = 300


class AsyncHandler(Plugin):
    @hook(HookName.MessageWillBePosted)
    async def check(self, context: Any, post: Post) -> tuple[Post, str]:
        post.message += " [checked]"
        post.props["checked_by"] = "bench"
        return post, ""


class SyncHandler(Plugin):
    @hook(HookName.MessageWillBePosted)
    def check(self, context: Any, post: Post) -> tuple[Post, str]:
        post.message += " [checked]"
        post.props["checked_by"] = "bench"
        return post, ""


async def per_call(call: Callable[[], Awaitable[object]], calls: int) -> dict[str, float]:
    """Wall and CPU (this process, all threads) microseconds per call, after a warm-up."""
    for _ in range(WARM_UP):
        await call()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        await call()
    return {
        "wall_us": round(1e6 * (time.perf_counter() - wall) / calls, 1),
        "cpu_us": round(1e6 * (time.process_time() - cpu) / calls, 1),
    }


def request_body() -> bytes:
    """A MessageWillBePosted request with a 1 KiB post."""
    request = hooks_pb2.MessageWillBePostedHookRequest()
    request.post.id = "p" * 26
    request.post.message = "x" * 1024
    return bytes(request.SerializeToString())


async def dispatch(plugin_cls: type[Plugin], calls: int) -> dict[str, float]:
    body = request_body()
    dispatcher = HookDispatcher(
        plugin_cls.create(api=None, aapi=None, plugin_id="bench", config=None), hooks_service()
    )
    handler = dispatcher.lane_handler()
    try:
        return await per_call(lambda: handler(PATH, body), calls)
    finally:
        dispatcher.close()


async def dispatch_inline(calls: int) -> dict[str, float]:
    body = request_body()
    dispatcher = HookDispatcher(
        SyncHandler.create(api=None, aapi=None, plugin_id="bench", config=None), hooks_service()
    )
    methods, serve = dispatcher.lane_threaded()
    assert methods == [PATH]

    async def call() -> bytes:
        # What the reader thread does, less the gate's admission (the connection's).
        return serve(PATH, body)

    try:
        return await per_call(call, calls)
    finally:
        dispatcher.close()


def dispatch_inline_cold(calls: int) -> dict[str, float]:
    """``dispatch_inline`` with this thread asleep for 200 µs before each call, as a lane
    reader is between requests while the bridge and the server have the cores: the CPU of
    the call alone, its caches cold. Called on the loop (lane_threaded needs it), which it
    blocks: nothing else runs there."""
    body = request_body()
    dispatcher = HookDispatcher(
        SyncHandler.create(api=None, aapi=None, plugin_id="bench", config=None), hooks_service()
    )
    _, serve = dispatcher.lane_threaded()
    try:
        for _ in range(WARM_UP):
            serve(PATH, body)
        cpu = 0.0
        for _ in range(calls):
            time.sleep(0.0002)
            start = time.thread_time()
            serve(PATH, body)
            cpu += time.thread_time() - start
        return {"cpu_us": round(1e6 * cpu / calls, 1)}
    finally:
        dispatcher.close()


async def hand_off(calls: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return await per_call(lambda: loop.run_in_executor(pool, int), calls)


async def handler_threads(calls: int) -> dict[str, float]:
    threads = HandlerThreads("bench")
    try:
        return await per_call(lambda: threads.submit(int), calls)
    finally:
        threads.close()


async def main(calls: int) -> None:
    print(
        json.dumps(
            {
                "dispatch_async_def": await dispatch(AsyncHandler, calls),
                "dispatch_plain_def_inline": await dispatch_inline(calls),
                "dispatch_plain_def_inline_cold": dispatch_inline_cold(calls),
                "dispatch_plain_def_handed_off": await dispatch(SyncHandler, calls),
                "run_in_executor_alone": await hand_off(calls),
                "handler_threads_alone": await handler_threads(calls),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    asyncio.run(main(parser.parse_args().calls))
