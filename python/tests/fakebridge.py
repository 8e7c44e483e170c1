"""A fake bridge for in-process tests: serves the test PluginAPI generically.

Handlers are plain functions ``request -> response`` keyed by RPC name; every call is
recorded with its metadata, and calls without the right token fail UNAUTHENTICATED, as
the real bridge does.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import grpc.aio
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from mattermost_plugin.client import TOKEN_METADATA_KEY


@dataclass
class Call:
    method: str
    request: Message
    metadata: dict[str, str]


@dataclass
class FakeAPI:
    service: ServiceDescriptor
    token: str
    handlers: dict[str, Callable[[Message], Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    server: grpc.aio.Server | None = None

    async def start(self, socket_path: str) -> None:
        rpcs = {}
        for method in self.service.methods:
            req_cls = GetMessageClass(method.input_type)
            resp_cls = GetMessageClass(method.output_type)

            async def behave(
                request: Message, context: Any, _m: str = method.name, _resp: Any = resp_cls
            ) -> Message:
                md = {k: v for k, v in context.invocation_metadata()}
                if md.get(TOKEN_METADATA_KEY) != self.token:
                    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
                self.calls.append(Call(_m, request, md))
                fn = self.handlers.get(_m)
                if fn is None:
                    await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"fake has no {_m}")
                result = fn(request)
                if inspect.isawaitable(result):
                    result = await result
                return result if result is not None else _resp()

            if method.client_streaming and method.server_streaming:
                rpcs[method.name] = grpc.stream_stream_rpc_method_handler(
                    self._bidi(method.name),
                    request_deserializer=req_cls.FromString,
                    response_serializer=resp_cls.SerializeToString,
                )
                continue
            if method.client_streaming:
                rpcs[method.name] = grpc.stream_unary_rpc_method_handler(
                    self._collecting(method.name, resp_cls),
                    request_deserializer=req_cls.FromString,
                    response_serializer=resp_cls.SerializeToString,
                )
                continue
            rpcs[method.name] = grpc.unary_unary_rpc_method_handler(
                behave,
                request_deserializer=req_cls.FromString,
                response_serializer=resp_cls.SerializeToString,
            )
        self.server = grpc.aio.server()
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(self.service.full_name, rpcs),)
        )
        assert self.server.add_insecure_port(f"unix:{socket_path}") != 0
        await self.server.start()

    async def _check(self, name: str, context: Any) -> dict[str, str]:
        md = {k: v for k, v in context.invocation_metadata()}
        if md.get(TOKEN_METADATA_KEY) != self.token:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        if name not in self.handlers:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"fake has no {name}")
        return md

    def _collecting(self, name: str, resp_cls: Any) -> Callable[..., Any]:
        """A client-streaming RPC: the handler gets the list of request parts."""

        async def behave(requests: Any, context: Any) -> Message:
            md = await self._check(name, context)
            parts = [p async for p in requests]
            self.calls.append(Call(name, parts[0] if parts else resp_cls(), md))
            result = self.handlers[name](parts)
            return result if result is not None else resp_cls()

        return behave

    def _bidi(self, name: str) -> Callable[..., Any]:
        """A bidirectional RPC: the handler gets the request parts, returns response parts."""

        async def behave(requests: Any, context: Any) -> Any:
            md = await self._check(name, context)
            parts = [p async for p in requests]
            self.calls.append(Call(name, parts[0], md))
            for out in self.handlers[name](parts):
                yield out

        return behave

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)


async def wait_ready(ev: asyncio.Event, task: asyncio.Task[Any]) -> None:
    """Wait until the runtime is serving, or surface the runtime's own failure."""
    waiter = asyncio.ensure_future(ev.wait())
    done, _ = await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        waiter.cancel()
        task.result()  # raises the runtime's exception
        raise AssertionError("runtime exited before it was ready")
