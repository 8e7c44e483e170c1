"""The runtime on the lane (docs/internals.md §8): the lane's HELLO is the readiness signal,
and the gRPC side (the byte-stream hooks and health on the hooks socket) starts only when the
bridge asks for it with ``START_GRPC_METHOD``, so a plugin that never streams never loads
grpcio."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from test_lane import TOKEN, BridgeConn, BridgeError, FakeBridge

from mattermost_plugin import HookName, HTTPRequest, HTTPResponseWriter, Plugin, hook
from mattermost_plugin.client import TOKEN_METADATA_KEY
from mattermost_plugin.runtime import START_GRPC_METHOD, RuntimeConfig, serve_plugin

from fakebridge import wait_ready
from testproto import API, HOOKS
from testproto import plugin_pb2 as p

pytestmark = pytest.mark.timeout(30)


class Streams(Plugin):
    @hook(HookName.ServeHTTP)
    def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        w.write(f"hello {r.url}".encode())


@dataclass
class Running:
    bridge: FakeBridge
    conn: BridgeConn
    config: RuntimeConfig


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    # Socket paths must stay under the ~108-byte sun_path limit: a short /tmp dir.
    tmp = tempfile.mkdtemp(prefix="mmr-", dir="/tmp")
    bridge = FakeBridge(f"{tmp}/lane.sock")
    await bridge.start()
    config = RuntimeConfig(
        api_socket=f"{tmp}/api.sock",
        hooks_socket=f"{tmp}/hooks.sock",
        lane_socket=bridge.path,
        token=TOKEN,
        plugin_id="com.example.lane",
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        serve_plugin(
            Streams,
            config,
            api_service=API,
            hooks_service=HOOKS,
            stop=stop,
            ready=lambda _p: ready.set(),
            handle_signals=False,
            watch_parent=False,
        )
    )
    try:
        await wait_ready(ready, task)
        yield Running(bridge, await bridge.conn(), config)
    finally:
        stop.set()
        await task
        await bridge.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def listening(socket: str) -> bool:
    """Whether something made the hooks socket (a sync helper: a stat is instant here)."""
    return os.path.exists(socket)


async def serve_http(socket: str, url: str) -> bytes:
    """One ServeHTTP call over gRPC, as the bridge makes it; the response body."""
    method = HOOKS.methods_by_name["ServeHTTP"]
    async with grpc.aio.insecure_channel(f"unix:{socket}") as channel:
        call = channel.stream_stream(
            f"/{HOOKS.full_name}/ServeHTTP",
            request_serializer=p.HTTPRequestPart.SerializeToString,
            response_deserializer=p.HTTPResponsePart.FromString,
        )
        assert method.client_streaming and method.server_streaming
        stream = call(metadata=((TOKEN_METADATA_KEY, TOKEN),))
        await stream.write(p.HTTPRequestPart(init=p.HTTPRequestInit(method="GET", url=url)))
        await stream.done_writing()
        return b"".join([part.body async for part in stream if part.WhichOneof("part") == "body"])


async def test_ready_on_the_lane_without_a_grpc_server(running: Running) -> None:
    # The HELLO said "serves hooks" and is all the readiness there is: nothing listens on
    # the hooks socket until the bridge asks.
    assert running.conn.roles == 1
    assert not listening(running.config.hooks_socket)


async def test_start_grpc_then_the_first_stream_is_served(running: Running) -> None:
    assert await running.conn.call(START_GRPC_METHOD, b"") == b""
    assert listening(running.config.hooks_socket)
    assert await serve_http(running.config.hooks_socket, "/first") == b"hello /first"
    # Health says SERVING at once (the plugin was ready before it was asked), behind the token.
    async with grpc.aio.insecure_channel(f"unix:{running.config.hooks_socket}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        resp = await health.Check(
            health_pb2.HealthCheckRequest(service=""), metadata=((TOKEN_METADATA_KEY, TOKEN),)
        )
        assert resp.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await health.Check(health_pb2.HealthCheckRequest(service=""))
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_concurrent_and_repeated_starts_share_one_server(running: Running) -> None:
    answers = await asyncio.gather(*(running.conn.call(START_GRPC_METHOD, b"") for _ in range(8)))
    assert answers == [b""] * 8
    # Asked again later (a bridge that lost track), it answers at once, same server.
    assert await running.conn.call(START_GRPC_METHOD, b"") == b""
    bodies = await asyncio.gather(
        *(serve_http(running.config.hooks_socket, f"/{i}") for i in range(4))
    )
    assert bodies == [f"hello /{i}".encode() for i in range(4)]


async def test_a_start_that_cannot_listen_fails_its_call_and_may_be_retried(
    running: Running,
) -> None:
    # A directory where the socket should be: the bind fails, the bridge hears why.
    os.mkdir(running.config.hooks_socket)
    with pytest.raises(BridgeError) as e:
        await running.conn.call(START_GRPC_METHOD, b"")
    assert e.value.code == 14  # UNAVAILABLE
    assert "cannot serve gRPC" in e.value.message and "hooks.sock" in e.value.message
    # Hooks still work on the lane meanwhile.
    implemented = await running.conn.call(
        f"/{HOOKS.full_name}/Implemented", p.ImplementedHookRequest().SerializeToString()
    )
    assert "ServeHTTP" in p.ImplementedHookResponse.FromString(implemented).hooks
    os.rmdir(running.config.hooks_socket)
    assert await running.conn.call(START_GRPC_METHOD, b"") == b""
    assert await serve_http(running.config.hooks_socket, "/retried") == b"hello /retried"


def test_importing_the_sdk_does_not_load_grpcio() -> None:
    # A process of its own: this one has grpcio loaded by the tests.
    code = (
        "import sys, mattermost_plugin\n"
        "from mattermost_plugin import PluginAPIClient, Plugin, run_plugin, User\n"
        "import mattermost_plugin.runtime, mattermost_plugin.client\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'grpc_health'))\n"
        "assert not loaded, loaded\n"
        "from mattermost_plugin.runtime import TokenInterceptor\n"
        "import grpc.aio\n"
        "assert issubclass(TokenInterceptor, grpc.aio.ServerInterceptor)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
