"""The seam between the API clients and the wire for unary calls: (method path, request
bytes) in, response bytes out, or a ``TransportError``.

Two carriers implement it (docs/internals.md §8): the lane, framed calls on a unix socket
(the default, ``_lane``), and gRPC (``MMPLUG_TRANSPORT=grpc``, and any channel a test hands
a client). Byte streams (uploads, PluginHTTP) stay on gRPC channels either way
(``streams.py``). The clients serialize and parse the contract's messages themselves, so a
carrier only moves bytes.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any, Protocol

from ._lane import BlockingLaneClient, LaneConnection, LaneError

if TYPE_CHECKING:
    import grpc

__all__ = [
    "AsyncUnary",
    "GrpcAsyncUnary",
    "GrpcSyncUnary",
    "LaneAsyncUnary",
    "LaneSyncUnary",
    "SyncUnary",
    "TransportError",
    "grpc_error",
    "rpc_error_class",
]


class TransportError(Exception):
    """A call that failed on its way, not in the server: a gRPC status code and its text."""

    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class SyncUnary(Protocol):
    def call(self, path: str, request: bytes) -> bytes: ...

    def close(self) -> None: ...


class AsyncUnary(Protocol):
    async def call(self, path: str, request: bytes) -> bytes: ...

    async def close(self) -> None: ...


def _same(raw: bytes) -> bytes:
    return raw


def grpc_error(e: grpc.RpcError) -> TransportError:
    """The ``TransportError`` for a failed gRPC call (streams use it too)."""
    import grpc

    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = (e.details() if hasattr(e, "details") else None) or str(code)
    number = code.value[0] if isinstance(code, grpc.StatusCode) else 2
    return TransportError(number, details)


class _GrpcCallables:
    """One ``unary_unary`` callable per method path, made on first use."""

    def __init__(self, channel: Any, token_metadata: tuple[tuple[str, str], ...]) -> None:
        self.channel = channel
        self.metadata = token_metadata
        self._callables: dict[str, Any] = {}

    def get(self, path: str) -> Any:
        fn = self._callables.get(path)
        if fn is None:
            fn = self.channel.unary_unary(
                path, request_serializer=_same, response_deserializer=_same
            )
            self._callables[path] = fn
        return fn


def rpc_error_class() -> type[grpc.RpcError]:
    """``grpc.RpcError``, imported by the first gRPC call that fails rather than with the SDK:
    with the lane, a plugin that makes no byte stream never loads grpcio (~20 ms and ~9 MB
    at start-up; docs/internals.md §8)."""
    import grpc

    return grpc.RpcError


class GrpcSyncUnary:
    """Unary calls over a ``grpc.Channel`` (or a test's stand-in for one)."""

    def __init__(self, channel: Any, token_metadata: tuple[tuple[str, str], ...]) -> None:
        self._grpc = _GrpcCallables(channel, token_metadata)

    def call(self, path: str, request: bytes) -> bytes:
        try:
            response: bytes = self._grpc.get(path)(request, metadata=self._grpc.metadata)
        except rpc_error_class() as e:
            raise grpc_error(e) from None
        return response

    def close(self) -> None:
        self._grpc.channel.close()


class GrpcAsyncUnary:
    """Unary calls over a ``grpc.aio.Channel`` (or a test's stand-in for one)."""

    def __init__(self, channel: Any, token_metadata: tuple[tuple[str, str], ...]) -> None:
        self._grpc = _GrpcCallables(channel, token_metadata)

    async def call(self, path: str, request: bytes) -> bytes:
        try:
            response: bytes = await self._grpc.get(path)(request, metadata=self._grpc.metadata)
        except rpc_error_class() as e:
            raise grpc_error(e) from None
        return response

    async def close(self) -> None:
        await self._grpc.channel.close()


class LaneSyncUnary:
    """Unary calls on a blocking lane connection of its own, for sync code in any thread.

    The connection is made by the first call (not at start-up, which would block the event
    loop), and made again by the next call after the bridge closed it.
    """

    def __init__(self, socket_path: str, token: str) -> None:
        self._path = socket_path
        self._token = token
        self._client: BlockingLaneClient | None = None
        self._lock = threading.Lock()

    def _connected(self) -> BlockingLaneClient:
        client = self._client
        if client is not None and not client.closed:
            return client
        with self._lock:
            if self._client is None or self._client.closed:
                self._client = BlockingLaneClient.connect(self._path, self._token)
            return self._client

    def call(self, path: str, request: bytes) -> bytes:
        try:
            return self._connected().call(path, request)
        except LaneError as e:
            raise TransportError(e.code, e.message) from None

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()


class LaneAsyncUnary:
    """Unary calls on the event loop's lane connection, the one that also serves hooks.

    That connection is opened once the plugin instance exists (its HELLO tells the bridge
    the plugin is ready for hooks); a call made before then waits for it.
    """

    def __init__(self) -> None:
        self._connection: asyncio.Future[LaneConnection] | None = None

    def _future(self) -> asyncio.Future[LaneConnection]:
        if self._connection is None:
            self._connection = asyncio.get_running_loop().create_future()
        return self._connection

    def connected(self, connection: LaneConnection) -> None:
        """Hands over the connection made by the runtime."""
        future = self._future()
        if not future.done():
            future.set_result(connection)

    async def call(self, path: str, request: bytes) -> bytes:
        connection = await self._future()
        try:
            return await connection.call(path, request)
        except LaneError as e:
            raise TransportError(e.code, e.message) from None

    async def close(self) -> None:
        future = self._connection
        if future is not None and future.done() and not future.cancelled():
            connection = future.result()
            connection.close()
            await connection.wait_closed()
