"""In-process harness shared by the examples' tests: an example plugin served by the SDK's real
runtime over gRPC, with a small fake bridge answering the two API methods the examples call
(real contract types). Each example's ``tests/<name>_harness.py`` binds it to its plugin.

The SDK's test kit (``mattermost_plugin.testing``, a later issue) is meant to replace this."""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message_factory import GetMessageClass
from mattermost_plugin import _contract
from mattermost_plugin.client import TOKEN_METADATA_KEY
from mattermost_plugin.runtime import RuntimeConfig, serve_plugin

TOKEN = "example-test-token"
USERS = {"u1": "alice"}


def load_example(example_dir: Path) -> Any:
    """Imports ``<example_dir>/plugin.py`` under a unique module name (every example's entry
    is called plugin.py)."""
    spec = importlib.util.spec_from_file_location(
        f"mmplug_example_{example_dir.name}", example_dir / "plugin.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_api() -> grpc.GenericRpcHandler:
    service = _contract.api_service()
    methods = service.methods_by_name

    def handler(name: str, behave: Any) -> grpc.RpcMethodHandler[Any, Any]:
        m = methods[name]
        req_cls, resp_cls = GetMessageClass(m.input_type), GetMessageClass(m.output_type)

        async def call(request: Any, context: Any) -> Any:
            if dict(context.invocation_metadata()).get(TOKEN_METADATA_KEY) != TOKEN:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
            resp = resp_cls()
            behave(request, resp)
            return resp

        return grpc.unary_unary_rpc_method_handler(
            call,
            request_deserializer=req_cls.FromString,
            response_serializer=resp_cls.SerializeToString,
        )

    def version(req: Any, resp: Any) -> None:
        resp.value = "10.11.0"

    def user(req: Any, resp: Any) -> None:
        if req.user_id in USERS:
            resp.user.id, resp.user.username = req.user_id, USERS[req.user_id]
        else:
            resp.error.id, resp.error.message = "app.user.missing.app_error", "not found"
            resp.error.status_code = 404

    return grpc.method_handlers_generic_handler(
        service.full_name,
        {
            "GetServerVersion": handler("GetServerVersion", version),
            "GetUser": handler("GetUser", user),
        },
    )


@dataclass
class Harness:
    plugin: Any
    channel: grpc.aio.Channel

    def _call(self, name: str, streaming: bool) -> Any:
        m = _contract.hooks_service().methods_by_name[name]
        req_cls, resp_cls = GetMessageClass(m.input_type), GetMessageClass(m.output_type)
        make = self.channel.stream_stream if streaming else self.channel.unary_unary
        return make(
            f"/{_contract.hooks_service().full_name}/{name}",
            request_serializer=req_cls.SerializeToString,
            response_deserializer=resp_cls.FromString,
        ), req_cls

    async def hook(self, name: str) -> Any:
        call, req_cls = self._call(name, streaming=False)
        return await call(req_cls(), metadata=((TOKEN_METADATA_KEY, TOKEN),))

    def http(self) -> Any:
        call, _ = self._call("ServeHTTP", streaming=True)
        return call(metadata=((TOKEN_METADATA_KEY, TOKEN),))


@asynccontextmanager
async def serve(plugin_cls: type[Any], plugin_id: str) -> AsyncIterator[Harness]:
    """Runs ``plugin_cls`` in the SDK's runtime against the fake bridge until the block ends."""
    tmp = tempfile.mkdtemp(prefix="mmx-", dir="/tmp")  # short: unix socket path limit
    config = RuntimeConfig(
        api_socket=f"{tmp}/api.sock",
        hooks_socket=f"{tmp}/hooks.sock",
        token=TOKEN,
        plugin_id=plugin_id,
    )
    fake = grpc.aio.server()
    fake.add_generic_rpc_handlers((_fake_api(),))
    fake.add_insecure_port(f"unix:{config.api_socket}")
    await fake.start()
    stop, ready = asyncio.Event(), asyncio.Event()
    box: dict[str, Any] = {}

    def on_ready(plugin: Any) -> None:
        box["plugin"] = plugin
        ready.set()

    task = asyncio.create_task(
        serve_plugin(
            plugin_cls,
            config,
            stop=stop,
            ready=on_ready,
            handle_signals=False,
            watch_parent=False,
        )
    )
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # the runtime's own failure
    channel = grpc.aio.insecure_channel(f"unix:{config.hooks_socket}")
    try:
        yield Harness(box["plugin"], channel)
    finally:
        await channel.close()
        stop.set()
        await task
        await fake.stop(None)
        shutil.rmtree(tmp, ignore_errors=True)
