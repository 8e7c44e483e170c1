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
* ``hook_async``: the stand-in calls this process's handler (an ``async def`` echo, one task
  per request), serial, timed by the stand-in;
* ``api_sync``: ``BlockingLaneClient.call`` from one thread, serial;
* ``api_sync_32``: 32 threads calling at once, calls per second.

Prints one JSON object. Not part of any make target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from mattermost_plugin._lane import BlockingLaneClient, connect
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

TOKEN = b"bench-token"
PAYLOAD = bytes(range(256)) * 4  # 1 KiB
WARMUP = 500


# ============================== the bridge stand-in (child process) ==============================


class StandIn(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.transport: asyncio.Transport | None = None
        self.pending: dict[int, asyncio.Future[bytes]] = {}
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
            elif kind == REQUEST and method == "/bench/Hooks":
                asyncio.get_running_loop().create_task(self.hooks(call_id, int(body)))
            elif kind == RESPONSE:
                self.pending.pop(call_id).set_result(body)
            elif kind == HELLO:
                _, _, token = parse_hello(body)
                if token != TOKEN:
                    self.transport.close()
                    return
                self.transport.write(encode_hello(0, b""))
        if self.decoder.violation is not None:
            raise self.decoder.violation

    async def hooks(self, call_id: int, n: int) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        times = []
        clock = time.perf_counter_ns
        for _ in range(n):
            hook_id = self.next_id
            self.next_id += 1
            fut: asyncio.Future[bytes] = loop.create_future()
            self.pending[hook_id] = fut
            t0 = clock()
            self.transport.write(encode_request(hook_id, b"/bench/Hook", PAYLOAD))
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
