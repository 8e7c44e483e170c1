"""The Python side of a hook on this machine, layer by layer, under one grpcio client.

Three servers, each in a child process, answer the same serial calls over a unix socket (as
the bridge makes them):

* ``echo``: a trivial ``grpc.aio`` unary echo of a 1 KiB message, the floor under any hook
  served by grpcio (what the SDK's runtime uses);
* ``sdk_sync``: the SDK's own runtime (``serve_plugin``: token check, generic dispatch,
  protobuf conversion) serving bench/plugin-python's MessageWillBePosted, a sync handler,
  which the SDK runs in a worker thread;
* ``sdk_async``: the same with the handler written ``async def``, which runs on the loop.

Prints one JSON object, per server: the client-side p50 in microseconds, and the server
process's CPU time and context switches per call (all its threads, from /proc). ``make
bench`` runs it (conformance/harness reads the JSON), so ``hook_round_trip_p50`` can be read
as grpcio's floor, plus the SDK's share, plus the bridge's (bench/README.md).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import grpc.aio

SERVICE, METHOD = "mmplug.bench.Floor", "Echo"
WARM_UP, CALLS = 500, 5000
TOKEN = "bench-token"
BENCH_PLUGIN = Path(__file__).resolve().parent / "plugin-python" / "plugin.py"


def serve_echo(socket_path: str) -> None:
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


def serve_sdk(socket_path: str, handler_kind: str) -> None:
    from mattermost_plugin import HookName, Post, hook
    from mattermost_plugin.runtime import RuntimeConfig, serve_plugin

    spec = importlib.util.spec_from_file_location("bench_plugin", BENCH_PLUGIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    plugin_cls: Any = module.Bench
    if handler_kind == "async":

        class AsyncBench(plugin_cls):  # type: ignore[misc]
            @hook(HookName.MessageWillBePosted)
            async def check(self, context: Any, post: Post) -> tuple[Post | None, str]:
                # The plugin's own handler, run on the loop instead of in a worker thread.
                result: tuple[Post | None, str] = module.Bench.check(self, context, post)
                return result

        plugin_cls = AsyncBench
    # Nothing here calls the API: its socket need not exist (channels connect lazily).
    config = RuntimeConfig(
        api_socket=socket_path + ".api",
        hooks_socket=socket_path,
        token=TOKEN,
        plugin_id="com.mmplug.bench.python",
    )
    asyncio.run(
        serve_plugin(
            plugin_cls, config, ready=lambda _plugin: print("ready", flush=True), watch_parent=False
        )
    )


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


def echo_call(channel: grpc.Channel) -> Callable[[], None]:
    echo: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(f"/{SERVICE}/{METHOD}")
    payload = b"x" * 1024

    def call() -> None:
        if echo(payload) != payload:
            raise RuntimeError("the echo server answered something else")

    return call


def hook_call(channel: grpc.Channel) -> Callable[[], None]:
    from google.protobuf.message_factory import GetMessageClass
    from mattermost_plugin import _contract
    from mattermost_plugin.client import TOKEN_METADATA_KEY

    service = _contract.hooks_service()
    method = service.methods_by_name["MessageWillBePosted"]
    request_cls = GetMessageClass(method.input_type)
    response_cls = GetMessageClass(method.output_type)
    hook: grpc.UnaryUnaryMultiCallable[Any, Any] = channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=request_cls.SerializeToString,
        response_deserializer=response_cls.FromString,
    )
    request: Any = request_cls()
    request.post.id, request.post.channel_id, request.post.user_id = "p" * 26, "c" * 26, "u" * 26
    request.post.message = "x" * 1024
    metadata = ((TOKEN_METADATA_KEY, TOKEN),)

    def call() -> None:
        reply = hook(request, metadata=metadata)
        if not reply.post.message.endswith(" [checked]") or reply.HasField("error"):
            raise RuntimeError(f"the SDK answered {reply}")

    return call


def measure(server_kind: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="mmplug-floor-") as tmp:
        socket_path = os.path.join(tmp, "floor.sock")
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", server_kind, socket_path],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            if server.stdout.readline().strip() != "ready":
                raise RuntimeError(f"the {server_kind} server did not start")
            with grpc.insecure_channel(f"unix:{socket_path}") as channel:
                call = echo_call(channel) if server_kind == "echo" else hook_call(channel)
                for _ in range(WARM_UP):
                    call()
                cpu_before = threads_total(server.pid, "schedstat", 0)
                switches_before = context_switches(server.pid)
                times = []
                for _ in range(CALLS):
                    start = time.perf_counter_ns()
                    call()
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


SERVERS = ("echo", "sdk_sync", "sdk_async")

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        if sys.argv[2] == "echo":
            serve_echo(sys.argv[3])
        else:
            serve_sdk(sys.argv[3], sys.argv[2].removeprefix("sdk_"))
    else:
        print(json.dumps({kind: measure(kind) for kind in SERVERS}))
