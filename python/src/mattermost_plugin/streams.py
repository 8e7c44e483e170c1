"""Byte streams through the ``PluginAPI``: uploads (``InstallPlugin``, ``UploadData``,
``ReceiveSharedChannelAttachmentSyncMsg``) and inter-plugin HTTP (``PluginHTTP``).

An upload RPC is ``rpc M(stream MRequestPart) returns (MResponse)``: the first part is
``init`` (the other parameters, as for a unary call), then the bytes as ``chunk`` parts of
at most 64 KiB, read from the caller's data as the bridge forwards them to the server; the
server sees the end of the bytes when the stream closes (docs/internals.md §7). Nothing is
read into memory whole: a file object is read 64 KiB at a time.

``PluginHTTP`` is ``rpc (stream PluginHTTPRequestPart) returns (stream HTTPResponsePart)``:
``init`` (method, url, headers), the body parts, ``body_end``; the answer is ``init``
(status, headers) then body parts.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from ._convert import payload_fields, set_field
from ._unary import grpc_error, rpc_error_class
from .errors import PluginAPIError

if TYPE_CHECKING:
    import grpc

    from .client import AsyncClient, SyncClient, _ClientBase

__all__ = ["CHUNK", "UploadData", "iter_chunks"]

CHUNK = 64 * 1024


class _Readable(Protocol):
    def read(self, n: int = ..., /) -> bytes: ...


# What an upload accepts: bytes, a binary file object, or an iterable of byte pieces.
UploadData = bytes | bytearray | memoryview | _Readable | Iterable[bytes]


def iter_chunks(data: Any) -> Iterator[bytes]:
    """Splits ``data`` into pieces of at most ``CHUNK`` bytes, reading lazily."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), CHUNK):
            yield bytes(view[start : start + CHUNK])
        return
    read = getattr(data, "read", None)
    if callable(read):
        while piece := read(CHUNK):
            if not isinstance(piece, (bytes, bytearray)):
                raise TypeError(f"upload file objects must be binary; read() gave {type(piece)}")
            yield bytes(piece)
        return
    if isinstance(data, str):
        raise TypeError("uploads take bytes, a binary file or an iterable of bytes, not str")
    for piece in data:
        yield from iter_chunks(piece)


async def aiter_chunks(data: Any) -> AsyncIterator[bytes]:
    """``iter_chunks`` that also accepts an async iterable of bytes."""
    if isinstance(data, AsyncIterable):
        async for piece in data:
            for chunk in iter_chunks(piece):
                yield chunk
        return
    for chunk in iter_chunks(data):
        yield chunk


class _UploadSpec:
    """The descriptors of one upload RPC."""

    def __init__(self, client: _ClientBase, rpc_name: str) -> None:
        service = type(client)._service
        method = service.methods_by_name.get(rpc_name)
        if method is None or not method.client_streaming:
            raise PluginAPIError(
                f"{service.full_name} has no upload RPC {rpc_name}",
                id="mmplug.client.unknown_rpc",
                status_code=501,
                method=rpc_name,
            )
        self.rpc_name = rpc_name
        self.path = f"/{service.full_name}/{rpc_name}"
        self.part_cls: type[Message] = GetMessageClass(method.input_type)
        self.response_cls: type[Message] = GetMessageClass(method.output_type)
        init_type: Any = method.input_type.fields_by_name["init"].message_type
        self.init_cls: type[Message] = GetMessageClass(init_type)
        self.init_args = payload_fields(init_type)

    def init_part(self, client: _ClientBase, args: Sequence[Any]) -> Message:
        if len(args) != len(self.init_args):
            names = ", ".join(f.name for f in self.init_args) or "none"
            raise TypeError(f"{self.rpc_name} takes the arguments ({names}), got {len(args)}")
        init = self.init_cls()
        for field, value in zip(self.init_args, args, strict=True):
            set_field(init, field, value)
        ctx = getattr(init, "context", None)
        if ctx is not None:
            ctx.plugin_id = client._plugin_id
        part: Any = self.part_cls()
        part.init.CopyFrom(init)
        return part  # type: ignore[no-any-return]

    def chunk_part(self, chunk: bytes) -> Message:
        part = self.part_cls()
        part.chunk = chunk  # type: ignore[attr-defined]
        return part


def _split(args: Sequence[Any], stream_index: int) -> tuple[Any, list[Any]]:
    return args[stream_index], [a for i, a in enumerate(args) if i != stream_index]


def upload(client: SyncClient, rpc_name: str, stream_index: int, args: Sequence[Any]) -> Any:
    """Makes an upload call; ``args`` are the Go parameters in order, the one at
    ``stream_index`` being the data."""
    from .client import _transport_error

    spec = _UploadSpec(client, rpc_name)
    data, rest = _split(args, stream_index)
    first = spec.init_part(client, rest)

    def parts() -> Iterator[Message]:
        yield first
        for chunk in iter_chunks(data):
            yield spec.chunk_part(chunk)

    call = client._channel.stream_unary(
        spec.path,
        request_serializer=spec.part_cls.SerializeToString,
        response_deserializer=spec.response_cls.FromString,
    )
    unary = client._spec_for_response(rpc_name, spec.response_cls)
    try:
        response = call(parts(), metadata=client._metadata)
    except rpc_error_class() as e:
        raise _transport_error(grpc_error(e), unary) from None
    return unary.unpack(response)


async def aupload(
    client: AsyncClient, rpc_name: str, stream_index: int, args: Sequence[Any]
) -> Any:
    """``upload`` for the async client (the data may also be an async iterable)."""
    from .client import _transport_error

    spec = _UploadSpec(client, rpc_name)
    data, rest = _split(args, stream_index)
    first = spec.init_part(client, rest)

    async def parts() -> AsyncIterator[Message]:
        yield first
        async for chunk in aiter_chunks(data):
            yield spec.chunk_part(chunk)

    call = client._channel.stream_unary(
        spec.path,
        request_serializer=spec.part_cls.SerializeToString,
        response_deserializer=spec.response_cls.FromString,
    )
    unary = client._spec_for_response(rpc_name, spec.response_cls)
    try:
        response = await call(parts(), metadata=client._metadata)
    except rpc_error_class() as e:
        raise _transport_error(grpc_error(e), unary) from None
    return unary.unpack(response)


class _HTTPSpec:
    def __init__(self, client: _ClientBase) -> None:
        service = type(client)._service
        method = service.methods_by_name["PluginHTTP"]
        self.path = f"/{service.full_name}/PluginHTTP"
        self.part_cls: type[Message] = GetMessageClass(method.input_type)
        self.response_cls: type[Message] = GetMessageClass(method.output_type)

    def parts(
        self,
        client: _ClientBase,
        method: str,
        url: str,
        headers: Mapping[str, Sequence[str]],
        has_body: bool,
    ) -> Message:
        part = self.part_cls()
        init = part.init  # type: ignore[attr-defined]
        init.context.plugin_id = client._plugin_id
        init.method = method
        init.url = url
        for name, values in headers.items():
            init.headers[name].values.extend(values)
        init.has_body = has_body
        return part

    def body(self, chunk: bytes) -> Message:
        part = self.part_cls()
        part.body = chunk  # type: ignore[attr-defined]
        return part

    def end(self) -> Message:
        part = self.part_cls()
        part.body_end = True  # type: ignore[attr-defined]
        return part


def _http_error(e: grpc.RpcError) -> PluginAPIError:
    import grpc

    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = (e.details() if hasattr(e, "details") else None) or str(code)
    status = 404 if code == grpc.StatusCode.NOT_FOUND else 502
    return PluginAPIError(
        f"PluginAPI.PluginHTTP failed: {details}",
        id="mmplug.client.plugin_http",
        detailed_error=f"grpc status {code.name if code else 'UNKNOWN'}",
        status_code=status,
        where="PluginHTTP",
        method="PluginHTTP",
    )


def _collect(responses: Iterable[Message]) -> tuple[Message, bytes]:
    init: Message | None = None
    body = bytearray()
    for part in responses:
        kind = part.WhichOneof("part")
        if kind == "init" and init is None:
            init = part.init  # type: ignore[attr-defined]
        elif kind == "body":
            body += part.body  # type: ignore[attr-defined]
    if init is None:
        raise PluginAPIError(
            "PluginAPI.PluginHTTP: the response had no status line",
            id="mmplug.client.plugin_http",
            status_code=502,
            method="PluginHTTP",
        )
    return init, bytes(body)


def plugin_http(
    client: SyncClient,
    method: str,
    url: str,
    headers: Mapping[str, Sequence[str]],
    body: Any,
) -> tuple[Any, bytes]:
    """Makes an inter-plugin HTTP request; returns the response init (status and headers)
    and the body."""
    spec = _HTTPSpec(client)
    has_body = body is not None and body != b""

    def parts() -> Iterator[Message]:
        yield spec.parts(client, method, url, headers, has_body)
        if has_body:
            for chunk in iter_chunks(body):
                yield spec.body(chunk)
            yield spec.end()

    call = client._channel.stream_stream(
        spec.path,
        request_serializer=spec.part_cls.SerializeToString,
        response_deserializer=spec.response_cls.FromString,
    )
    try:
        return _collect(call(parts(), metadata=client._metadata))
    except rpc_error_class() as e:
        raise _http_error(e) from None


async def aplugin_http(
    client: AsyncClient,
    method: str,
    url: str,
    headers: Mapping[str, Sequence[str]],
    body: Any,
) -> tuple[Any, bytes]:
    """``plugin_http`` for the async client."""
    spec = _HTTPSpec(client)
    has_body = body is not None and body != b""

    async def parts() -> AsyncIterator[Message]:
        yield spec.parts(client, method, url, headers, has_body)
        if has_body:
            async for chunk in aiter_chunks(body):
                yield spec.body(chunk)
            yield spec.end()

    call = client._channel.stream_stream(
        spec.path,
        request_serializer=spec.part_cls.SerializeToString,
        response_deserializer=spec.response_cls.FromString,
    )
    try:
        collected = [part async for part in call(parts(), metadata=client._metadata)]
    except rpc_error_class() as e:
        raise _http_error(e) from None
    return _collect(collected)
