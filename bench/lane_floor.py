"""The lane's Python end on this machine: microseconds per call round trip.

    .venv/bin/python bench/lane_floor.py [--calls N] [--rounds R]

The peer is a bridge stand-in in a child process, written in Python on the SDK's own frame
code (``mattermost_plugin._lane.frames``) with ``asyncio.BufferedProtocol``: it checks the
HELLO, answers every ``/bench/Echo`` request with its body, and on ``/bench/Hooks`` makes N
serial hook calls to this process and answers their round-trip times. The real bridge
(crates/lane) is Rust, so every figure here carries a Python peer's share too: read them as
upper bounds for the SDK's end (the transport study's Rust peer answered in ~8 µs of CPU).

Figures (1 KiB messages, after 500 warm-up calls; p50 over all rounds):

* ``api_async``: ``LaneConnection.call``, serial, timed around each call;
* ``api_async_64``: 64 calls in flight on one loop, calls per second;
* ``hook_async``: the stand-in calls this process's handler (an ``async def`` echo), serial,
  timed by the stand-in;
* ``hook_sdk_sync`` and ``hook_sdk_async``: the same, but the handler is the SDK's own
  (``HookDispatcher``, its connections set up as the runtime sets them up: the threaded one
  for the plain ``def`` handler) over bench/plugin-python's plugin, called with a 1 KiB
  post as ``MessageWillBePosted`` (its plain ``def`` handler) and ``MessageWillBeUpdated``
  (its ``async def`` one): p50 and this process's CPU per call (user and system);
* ``api_sync``: ``BlockingLaneClient.call`` from one thread, serial;
* ``api_sync_32``: 32 threads calling at once, calls per second.

Prints one JSON object. Not part of any make target.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, ClassVar

from mattermost_plugin import Plugin
from mattermost_plugin._contract import hooks_service
from mattermost_plugin._dispatch import HookDispatcher
from mattermost_plugin._lane import SERVE_HOOKS, BlockingLaneClient, ThreadedLaneServer, connect
from mattermost_plugin._lane.frames import (
    HELLO,
    REQUEST,
    RESPONSE,
    FrameDecoder,
    encode_hello,
    encode_request,
    encode_response,
    parse_hello,
)
from mattermost_plugin._proto.mattermost.plugin.v1 import hooks_pb2

TOKEN = b"bench-token"
PAYLOAD = bytes(range(256)) * 4  # 1 KiB
WARMUP = 500


# ============================== the bridge stand-in (child process) ==============================


class StandIn(asyncio.BufferedProtocol):
    # The connection that named its hooks (ServeHooks), and those hooks: the stand-in sends
    # them there, as the bridge does.
    named: ClassVar[tuple[StandIn, set[bytes]] | None] = None
    # Hook calls waiting for their answer, by (connection, call id).
    pending: ClassVar[dict[tuple[int, int], asyncio.Future[bytes]]] = {}

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.transport: asyncio.Transport | None = None
        self.next_id = 1

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.decoder.buffer()

    def buffer_updated(self, nbytes: int) -> None:
        assert self.transport is not None
        for kind, call_id, method, body, _ in self.decoder.consume(nbytes):
            assert body is not None
            if kind == REQUEST and method == "/bench/Echo":
                self.transport.write(encode_response(call_id, body))
            elif kind == REQUEST and method == SERVE_HOOKS:
                StandIn.named = (self, set(bytes(body).split(b"\n")))
                self.transport.write(encode_response(call_id, b""))
            elif kind == REQUEST and method == "/bench/Hooks":
                # b"<n> <method path>\n<request message>": n serial calls of that request.
                head, _, message = bytes(body).partition(b"\n")
                n, _, path = head.partition(b" ")
                path = path or b"/bench/Hook"
                to = self
                if StandIn.named is not None and path in StandIn.named[1]:
                    to = StandIn.named[0]
                hooks = self.hooks(call_id, int(n), path, message or PAYLOAD, to)
                asyncio.get_running_loop().create_task(hooks)
            elif kind == RESPONSE:
                StandIn.pending.pop((id(self), call_id)).set_result(body)
            elif kind == HELLO:
                _, _, token = parse_hello(body)
                if token != TOKEN:
                    self.transport.close()
                    return
                self.transport.write(encode_hello(0, b""))
        if self.decoder.violation is not None:
            raise self.decoder.violation

    async def hooks(self, call_id: int, n: int, method: bytes, message: bytes, to: StandIn) -> None:
        """Makes ``n`` serial hook calls on connection ``to`` and answers their times."""
        assert self.transport is not None and to.transport is not None
        loop = asyncio.get_running_loop()
        times = []
        clock = time.perf_counter_ns
        for _ in range(n):
            hook_id = to.next_id
            to.next_id += 1
            fut: asyncio.Future[bytes] = loop.create_future()
            StandIn.pending[(id(to), hook_id)] = fut
            t0 = clock()
            to.transport.write(encode_request(hook_id, method, message))
            await fut
            times.append(clock() - t0)
        self.transport.write(encode_response(call_id, json.dumps(times).encode()))


def stand_in_main(path: str) -> None:
    async def main() -> None:
        server = await asyncio.get_running_loop().create_unix_server(StandIn, path)
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# ============================== the SDK's end (this process) ==============================


def p50_us(samples_ns: list[int]) -> float:
    return round(statistics.median(samples_ns) / 1000, 1)


async def bench_async(path: str, calls: int, rounds: int) -> dict[str, Any]:
    async def echo(method: str, body: bytes) -> bytes:
        return body

    conn = await connect(path, TOKEN, handler=echo)
    clock = time.perf_counter_ns
    for _ in range(WARMUP):
        await conn.call("/bench/Echo", PAYLOAD)
    serial: list[int] = []
    hooks: list[int] = []
    rates = []
    for _ in range(rounds):
        for _ in range(calls):
            t0 = clock()
            out = await conn.call("/bench/Echo", PAYLOAD, timeout=10)
            serial.append(clock() - t0)
            assert out == PAYLOAD

        async def worker(k: int) -> None:
            for _ in range(k):
                await conn.call("/bench/Echo", PAYLOAD, timeout=10)

        t0 = clock()
        await asyncio.gather(*(worker(calls // 64) for _ in range(64)))
        rates.append(64 * (calls // 64) / ((clock() - t0) / 1e9))
        hooks += json.loads(await conn.call("/bench/Hooks", b"%d" % calls, timeout=60))
    conn.close()
    return {
        "api_async_p50_us": p50_us(serial),
        "api_async_64_calls_per_s": round(statistics.median(rates)),
        "hook_async_p50_us": p50_us(hooks),
        "hook_sdk_sync": await bench_sdk_hook(path, "MessageWillBePosted", calls, rounds),
        "hook_sdk_async": await bench_sdk_hook(path, "MessageWillBeUpdated", calls, rounds),
    }


def bench_plugin_class() -> type[Plugin]:
    """bench/plugin-python's plugin class, loaded from its file (it is not a package)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugin-python", "plugin.py")
    spec = importlib.util.spec_from_file_location("bench_plugin_python", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    cls: type[Plugin] = module.Bench
    return cls


def post_request(hook: str) -> bytes:
    """A request of ``hook`` carrying 1 KiB posts (both posts for MessageWillBeUpdated)."""
    request_cls = getattr(hooks_pb2, f"{hook}HookRequest")
    request = request_cls()
    for field in request.DESCRIPTOR.fields:
        if field.message_type is not None and field.message_type.name == "Post":
            post = getattr(request, field.name)
            post.id, post.user_id, post.channel_id = "p" * 26, "u" * 26, "c" * 26
            post.message = "x" * 1024
    return bytes(request.SerializeToString())


async def bench_sdk_hook(path: str, hook: str, calls: int, rounds: int) -> dict[str, float]:
    """The stand-in calls ``hook`` of bench/plugin-python's plugin through the SDK's
    dispatcher on connections set up as the runtime sets them up (a plain ``def`` handler's
    hook on the threaded connection that names it, an ``async def`` one's on the asyncio
    connection): p50, and this process's CPU per call."""
    plugin = bench_plugin_class().create(api=None, aapi=None, plugin_id="bench", config=None)
    dispatcher = HookDispatcher(plugin, hooks_service())
    methods, serve = dispatcher.lane_threaded()
    threaded = await asyncio.to_thread(
        ThreadedLaneServer.start, path, TOKEN, methods, serve, dispatcher.gate
    )
    conn = await connect(path, TOKEN, handler=dispatcher.lane_handler())
    ask = b"%d /mattermost.plugin.v1.PluginHooks/%s\n" % (calls, hook.encode()) + post_request(hook)
    try:
        await conn.call("/bench/Hooks", ask, timeout=120)  # warm-up
        times: list[int] = []
        before = resource.getrusage(resource.RUSAGE_SELF)
        for _ in range(rounds):
            times += json.loads(await conn.call("/bench/Hooks", ask, timeout=120))
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        conn.close()
        threaded.close()
        dispatcher.close()
    n = calls * rounds
    return {
        "p50_us": p50_us(times),
        "cpu_user_us": round((after.ru_utime - before.ru_utime) * 1e6 / n, 1),
        "cpu_system_us": round((after.ru_stime - before.ru_stime) * 1e6 / n, 1),
    }


def bench_sync(path: str, calls: int, rounds: int) -> dict[str, Any]:
    client = BlockingLaneClient.connect(path, TOKEN)
    clock = time.perf_counter_ns
    for _ in range(WARMUP):
        client.call("/bench/Echo", PAYLOAD)
    serial: list[int] = []
    rates = []
    n_threads = 32
    for _ in range(rounds):
        for _ in range(calls):
            t0 = clock()
            out = client.call("/bench/Echo", PAYLOAD, timeout=10)
            serial.append(clock() - t0)
            assert out == PAYLOAD
        barrier = threading.Barrier(n_threads + 1)

        def worker(k: int, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            for _ in range(k):
                client.call("/bench/Echo", PAYLOAD, timeout=10)

        threads = [
            threading.Thread(target=worker, args=(calls // n_threads,)) for _ in range(n_threads)
        ]
        for th in threads:
            th.start()
        barrier.wait()
        t0 = clock()
        for th in threads:
            th.join()
        rates.append(n_threads * (calls // n_threads) / ((clock() - t0) / 1e9))
    client.close()
    return {
        "api_sync_p50_us": p50_us(serial),
        "api_sync_32_calls_per_s": round(statistics.median(rates)),
    }


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "stand-in":
        stand_in_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per batch")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mmlb-", dir="/tmp") as tmp:
        path = os.path.join(tmp, "lane.sock")
        peer = subprocess.Popen(
            [sys.executable, __file__, "stand-in", path], stdout=subprocess.PIPE, text=True
        )
        try:
            assert peer.stdout is not None and peer.stdout.readline().strip() == "ready"
            figures = asyncio.run(bench_async(path, args.calls, args.rounds))
            figures |= bench_sync(path, args.calls, args.rounds)
        finally:
            peer.terminate()
            peer.wait(5)
    figures["machine"] = f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
