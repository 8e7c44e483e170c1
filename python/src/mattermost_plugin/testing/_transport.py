"""Stand-ins for the gRPC channels the API clients hold, answering from a ``FakeMattermost``.

The generated clients call ``channel.unary_unary(path, request_serializer=...,
response_deserializer=...)`` and then the returned callable with the request message
(client.py ``_ClientBase._callable``); the byte-stream helpers (streams.py) use
``stream_unary`` and ``stream_stream`` the same way. These channels hand each request to
``FakeMattermost.dispatch`` instead of the network. Messages are serialized and parsed on
both sides, as on the wire, so the fake and the plugin never share a mutable message and a
value that would not survive the wire does not survive here either.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc

if TYPE_CHECKING:
    from ._fake import FakeMattermost

__all__ = ["FakeAsyncChannel", "FakeRpcError", "FakeSyncChannel"]

Serializer = Callable[[Any], bytes]
Deserializer = Callable[[bytes], Any]


class FakeRpcError(grpc.RpcError):
    """A transport failure as ``grpc`` raises it, so the client's own handling runs."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def _method(path: str) -> str:
    return path.rsplit("/", 1)[-1]


class _Wire:
    """Serializes what crosses the fake hop, in both directions."""

    def __init__(
        self, fake: FakeMattermost, path: str, serialize: Serializer, deserialize: Deserializer
    ) -> None:
        self.fake = fake
        self.method = _method(path)
        self.serialize = serialize
        self.deserialize = deserialize

    def request(self, message: Any) -> Any:
        return self.fake._parse_request(self.method, self.serialize(message))

    def response(self, message: Any) -> Any:
        return self.deserialize(message.SerializeToString())


class FakeSyncChannel:
    """What ``grpc.Channel`` offers the sync client, answered in the calling thread."""

    def __init__(self, fake: FakeMattermost) -> None:
        self._fake = fake

    def unary_unary(
        self, path: str, request_serializer: Serializer, response_deserializer: Deserializer
    ) -> Callable[..., Any]:
        wire = _Wire(self._fake, path, request_serializer, response_deserializer)

        def call(request: Any, metadata: Any = None, **_: Any) -> Any:
            return wire.response(self._fake.dispatch(wire.method, wire.request(request)))

        return call

    def stream_unary(
        self, path: str, request_serializer: Serializer, response_deserializer: Deserializer
    ) -> Callable[..., Any]:
        wire = _Wire(self._fake, path, request_serializer, response_deserializer)

        def call(parts: Iterable[Any], metadata: Any = None, **_: Any) -> Any:
            collected = [wire.request(p) for p in parts]
            return wire.response(self._fake.dispatch(wire.method, collected))

        return call

    def stream_stream(
        self, path: str, request_serializer: Serializer, response_deserializer: Deserializer
    ) -> Callable[..., Any]:
        wire = _Wire(self._fake, path, request_serializer, response_deserializer)

        def call(parts: Iterable[Any], metadata: Any = None, **_: Any) -> Any:
            collected = [wire.request(p) for p in parts]
            answer = self._fake.dispatch(wire.method, collected)
            return iter([wire.response(p) for p in answer])

        return call

    def close(self) -> None:
        pass


class FakeAsyncChannel:
    """What ``grpc.aio.Channel`` offers the async client."""

    def __init__(self, fake: FakeMattermost) -> None:
        self._fake = fake

    def unary_unary(
        self, path: str, request_serializer: Serializer, response_deserializer: Deserializer
    ) -> Callable[..., Any]:
        wire = _Wire(self._fake, path, request_serializer, response_deserializer)

        async def call(request: Any, metadata: Any = None, **_: Any) -> Any:
            return wire.response(self._fake.dispatch(wire.method, wire.request(request)))

        return call

    def stream_unary(
        self, path: str, request_serializer: Serializer, response_deserializer: Deserializer
    ) -> Callable[..., Any]:
        wire = _Wire(self._fake, path, request_serializer, response_deserializer)

        async def call(parts: AsyncIterable[Any], metadata: Any = None, **_: Any) -> Any:
            collected = [wire.request(p) async for p in parts]
            return wire.response(self._fake.dispatch(wire.method, collected))

        return call

    def stream_stream(
        self, path: str, request_serializer: Serializer, response_deserializer: Deserializer
    ) -> Callable[..., Any]:
        wire = _Wire(self._fake, path, request_serializer, response_deserializer)

        def call(parts: AsyncIterable[Any], metadata: Any = None, **_: Any) -> Any:
            async def answer() -> Any:
                collected = [wire.request(p) async for p in parts]
                for part in self._fake.dispatch(wire.method, collected):
                    yield wire.response(part)

            return answer()

        return call

    async def close(self) -> None:
        pass
