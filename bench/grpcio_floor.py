"""The floor under any grpcio-based hook: a trivial unary echo, on this machine.

A ``grpc.aio`` server (what the SDK's runtime uses) in a child process answers each request
with itself; a client in this process sends a 1 KiB message serially over a unix socket, as the
bridge does. Prints one JSON object: the client-side p50 in microseconds, and the server
process's CPU time and context switches per call (all its threads, from /proc).

``make bench`` runs it (conformance/harness reads the JSON) to show how much of
``hook_round_trip_p50`` is grpcio itself rather than the bridge or the SDK's dispatch.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import grpc.aio

SERVICE, METHOD = "mmplug.bench.Floor", "Echo"
WARM_UP, CALLS = 500, 5000


def serve(socket_path: str) -> None:
    async def echo(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return request

    async def main() -> None:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            SERVICE, {METHOD: grpc.unary_unary_rpc_method_handler(echo)}
        )
        server.add_generic_rpc_handlers((handler,))
        server.add_insecure_port(f"unix:{socket_path}")
        await server.start()
        print("ready", flush=True)
        await server.wait_for_termination()

    asyncio.run(main())


def threads_total(pid: int, read: str, pick: int) -> int:
    """Sums one number over all threads of pid: field ``pick`` of each task's ``read`` file."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / read).read_text().split()[pick])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended between listing and reading
    return total


def context_switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def measure() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="mmplug-floor-") as tmp:
        socket_path = os.path.join(tmp, "floor.sock")
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", socket_path],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            if server.stdout.readline().strip() != "ready":
                raise RuntimeError("the echo server did not start")
            with grpc.insecure_channel(f"unix:{socket_path}") as channel:
                echo: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
                    f"/{SERVICE}/{METHOD}"
                )
                payload = b"x" * 1024
                for _ in range(WARM_UP):
                    echo(payload)
                cpu_before = threads_total(server.pid, "schedstat", 0)
                switches_before = context_switches(server.pid)
                times = []
                for _ in range(CALLS):
                    start = time.perf_counter_ns()
                    if echo(payload) != payload:
                        raise RuntimeError("the echo server answered something else")
                    times.append(time.perf_counter_ns() - start)
                cpu_ns = threads_total(server.pid, "schedstat", 0) - cpu_before
                switches = context_switches(server.pid) - switches_before
        finally:
            server.terminate()
            server.wait()
    times.sort()
    return {
        "p50_us": times[len(times) // 2] / 1e3,
        "server_cpu_us_per_call": cpu_ns / CALLS / 1e3,
        "server_context_switches_per_call": switches / CALLS,
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(sys.argv[2])
    else:
        print(json.dumps(measure()))
