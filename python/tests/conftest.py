from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from mattermost_plugin import Plugin
from mattermost_plugin.client import TOKEN_METADATA_KEY
from mattermost_plugin.runtime import RuntimeConfig, serve_plugin

from fakebridge import FakeAPI, wait_ready
from testproto import API, HOOKS

TOKEN = "t0ken-for-tests"


@dataclass
class Harness:
    fake: FakeAPI
    plugin: Any
    channel: grpc.aio.Channel
    config: RuntimeConfig

    def _method(self, name: str) -> Any:
        return HOOKS.methods_by_name[name]

    async def hook(
        self, name: str, request: Message | None = None, *, token: str | None = TOKEN
    ) -> Any:
        m = self._method(name)
        req_cls = GetMessageClass(m.input_type)
        resp_cls = GetMessageClass(m.output_type)
        call = self.channel.unary_unary(
            f"/{HOOKS.full_name}/{name}",
            request_serializer=req_cls.SerializeToString,
            response_deserializer=resp_cls.FromString,
        )
        md = () if token is None else ((TOKEN_METADATA_KEY, token),)
        return await call(request if request is not None else req_cls(), metadata=md)

    def http(self, *, token: str | None = TOKEN) -> Any:
        m = self._method("ServeHTTP")
        req_cls = GetMessageClass(m.input_type)
        resp_cls = GetMessageClass(m.output_type)
        call = self.channel.stream_stream(
            f"/{HOOKS.full_name}/ServeHTTP",
            request_serializer=req_cls.SerializeToString,
            response_deserializer=resp_cls.FromString,
        )
        md = () if token is None else ((TOKEN_METADATA_KEY, token),)
        return call(metadata=md)


Start = Callable[..., Awaitable[Harness]]


@pytest.fixture
async def start_plugin() -> AsyncIterator[Start]:
    # Socket paths must stay under the ~108-byte sun_path limit: use a short /tmp dir.
    tmp = tempfile.mkdtemp(prefix="mmp-", dir="/tmp")
    cleanups: list[Callable[[], Awaitable[None]]] = []

    async def start(cls: type[Plugin], handlers: dict[str, Any] | None = None) -> Harness:
        n = len(cleanups)
        config = RuntimeConfig(
            api_socket=f"{tmp}/api{n}.sock",
            hooks_socket=f"{tmp}/hooks{n}.sock",
            token=TOKEN,
            plugin_id="com.example.test",
        )
        fake = FakeAPI(API, TOKEN, dict(handlers or {}))
        await fake.start(config.api_socket)
        stop = asyncio.Event()
        ready = asyncio.Event()
        box: dict[str, Any] = {}

        def on_ready(p: Plugin) -> None:
            box["plugin"] = p
            ready.set()

        task = asyncio.create_task(
            serve_plugin(
                cls,
                config,
                api_service=API,
                hooks_service=HOOKS,
                stop=stop,
                ready=on_ready,
                handle_signals=False,
                watch_parent=False,
            )
        )
        try:
            await wait_ready(ready, task)
        except BaseException:
            await fake.stop()
            raise
        channel = grpc.aio.insecure_channel(f"unix:{config.hooks_socket}")

        async def cleanup() -> None:
            await channel.close()
            stop.set()
            await task
            await fake.stop()

        cleanups.append(cleanup)
        return Harness(fake, box["plugin"], channel, config)

    yield start
    for c in reversed(cleanups):
        await c()
    shutil.rmtree(tmp, ignore_errors=True)
