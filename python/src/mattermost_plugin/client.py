"""Generic sync and async clients for the ``PluginAPI`` service: the engine of the typed ones.

No method is written by hand. The typed clients ``PluginAPIClient`` and
``AsyncPluginAPIClient`` (generated from the API schema into ``_generated/api.py``) subclass
``SyncClient``/``AsyncClient`` and each method calls ``_call`` with its RPC name; for any
other service (tests), ``make_client_classes`` walks the gRPC service descriptor and gives
each RPC one snake_case method (``KVSet`` -> ``kv_set``). Positional and
keyword arguments are the request fields from number 2 on (field 1 is the
``RequestContext`` envelope, filled in here); the return is None (no result fields), the
single result, or a tuple of them. A set ``error`` field raises ``PluginAPIError`` with
the whole AppError; transport failures raise ``PluginAPIError`` too, so callers never see
a raw ``grpc.RpcError``. Unary calls go through a carrier (``_unary``: the lane, or gRPC
with the per-launch token as metadata); byte streams use the gRPC channel.
"""

from __future__ import annotations

import abc
import contextvars
import functools
import inspect
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from ._convert import get_field, payload_fields, set_field
from ._gate import blocking_api_call
from ._lazy import LazyMapping
from ._names import snake_case
from ._unary import AsyncUnary, GrpcAsyncUnary, GrpcSyncUnary, SyncUnary, TransportError
from .errors import (
    NotImplementedAPIError,
    PluginAPIError,
    ServiceUnavailableError,
    UnauthorizedError,
    error_from_app_error,
    is_app_error_set,
)

if TYPE_CHECKING:
    import grpc
    import grpc.aio

__all__ = [
    "TOKEN_METADATA_KEY",
    "AsyncClient",
    "SyncClient",
    "current_request_id",
    "make_client_classes",
    "method_specs",
]

TOKEN_METADATA_KEY = "x-mmplug-token"

# The request id of the hook being handled, so API calls made from inside a hook carry it
# to the server (log correlation); set by the hook dispatcher.
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "mmplug_current_request_id", default=""
)

# gRPC status -> HTTP-like status, so transport failures land in the same exception
# hierarchy as server-side AppErrors. Keyed by the status's number, which the lane's ERROR
# frames carry too (grpcio's StatusCode is not needed: it loads only with a stream).
_TRANSPORT_STATUS = {
    14: (503, ServiceUnavailableError),  # UNAVAILABLE
    12: (501, NotImplementedAPIError),  # UNIMPLEMENTED
    16: (401, UnauthorizedError),  # UNAUTHENTICATED
    4: (504, PluginAPIError),  # DEADLINE_EXCEEDED
    1: (499, PluginAPIError),  # CANCELLED
}
# gRPC's status codes by number (grpc/doc/statuscodes.md), for error texts.
_STATUS_NAMES = dict(
    enumerate(
        (
            "OK",
            "CANCELLED",
            "UNKNOWN",
            "INVALID_ARGUMENT",
            "DEADLINE_EXCEEDED",
            "NOT_FOUND",
            "ALREADY_EXISTS",
            "PERMISSION_DENIED",
            "RESOURCE_EXHAUSTED",
            "FAILED_PRECONDITION",
            "ABORTED",
            "OUT_OF_RANGE",
            "UNIMPLEMENTED",
            "INTERNAL",
            "UNAVAILABLE",
            "DATA_LOSS",
            "UNAUTHENTICATED",
        )
    )
)


@dataclass(frozen=True)
class MethodSpec:
    """Everything needed to call one RPC generically."""

    rpc_name: str  # Go spelling, as in the service
    py_name: str  # snake_case
    path: str  # "/package.Service/Method"
    request_cls: type[Message]
    response_cls: type[Message]
    args: Sequence[FieldDescriptor]
    results: Sequence[FieldDescriptor]
    context_field: FieldDescriptor | None
    error_field: FieldDescriptor | None

    @classmethod
    def of(cls, service: ServiceDescriptor, method: Any) -> MethodSpec:
        req: Descriptor = method.input_type
        resp: Descriptor = method.output_type
        ctx = req.fields_by_number.get(1)
        err = resp.fields_by_number.get(1)
        return cls(
            rpc_name=method.name,
            py_name=snake_case(method.name),
            path=f"/{service.full_name}/{method.name}",
            request_cls=GetMessageClass(req),
            response_cls=GetMessageClass(resp),
            args=payload_fields(req),
            results=payload_fields(resp),
            context_field=ctx if ctx is not None and ctx.message_type is not None else None,
            error_field=err if err is not None and err.message_type is not None else None,
        )

    def build_request(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], plugin_id: str
    ) -> Message:
        if len(args) > len(self.args):
            raise TypeError(
                f"{self.py_name}() takes {len(self.args)} arguments "
                f"({', '.join(f.name for f in self.args) or 'none'}), got {len(args)}"
            )
        request = self.request_cls()
        if kwargs:
            given: dict[str, Any] = {f.name: v for f, v in zip(self.args, args, strict=False)}
            by_name = {f.name: f for f in self.args}
            for name, value in kwargs.items():
                if name not in by_name:
                    raise TypeError(f"{self.py_name}() got an unexpected keyword argument {name!r}")
                if name in given:
                    raise TypeError(f"{self.py_name}() got multiple values for argument {name!r}")
                given[name] = value
            for name, value in given.items():
                set_field(request, by_name[name], value)
        else:  # the usual call: positional arguments only, no dicts to build
            for field, value in zip(self.args, args, strict=False):
                set_field(request, field, value)
        context = self._context
        if context is not None:
            name, has_plugin_id, has_request_id = context
            ctx = getattr(request, name)
            if has_plugin_id:
                ctx.plugin_id = plugin_id
            if has_request_id:
                rid = current_request_id.get()
                if rid:
                    ctx.request_id = rid
        return request

    @functools.cached_property
    def _context(self) -> tuple[str, bool, bool] | None:
        """The request's context field, and whether it has ``plugin_id`` and ``request_id``
        (looked up once, not on every call)."""
        field = self.context_field
        if field is None or field.message_type is None:
            return None  # (MethodSpec.of sets only a message field)
        fields = field.message_type.fields_by_name
        return field.name, "plugin_id" in fields, "request_id" in fields

    def unpack(self, response: Message) -> Any:
        if self.error_field is not None and response.HasField(self.error_field.name):
            err = getattr(response, self.error_field.name)
            if is_app_error_set(err):
                raise error_from_app_error(err, method=self.rpc_name)
        values = [get_field(response, f) for f in self.results]
        if not values:
            return None
        if len(values) == 1:
            return values[0]
        return tuple(values)

    def signature(self) -> inspect.Signature:
        params = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        params += [
            inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
            for f in self.args
        ]
        return inspect.Signature(params)

    def doc(self) -> str:
        results = ", ".join(f.name for f in self.results) or "None"
        return (
            f"Call PluginAPI.{self.rpc_name}({', '.join(f.name for f in self.args)}) "
            f"-> {results}. Raises PluginAPIError on failure."
        )


def _transport_error(e: TransportError, spec: MethodSpec) -> PluginAPIError:
    status, cls = _TRANSPORT_STATUS.get(e.code, (500, PluginAPIError))
    return cls(
        f"PluginAPI.{spec.rpc_name} failed in transport: {e.details}",
        id="mmplug.client.transport",
        detailed_error=f"grpc status {_STATUS_NAMES.get(e.code, str(e.code))}",
        status_code=status,
        where=spec.rpc_name,
        method=spec.rpc_name,
    )


def _decode_config(raw: Any) -> dict[str, Any]:
    # LoadPluginConfiguration travels as the JSON document Go would unmarshal into `dest`;
    # depending on how the contract types it, that is bytes, a string or a Struct.
    if raw is None or raw in (b"", ""):
        return {}
    if isinstance(raw, dict):
        return raw
    decoded = json.loads(raw)
    if decoded is None:
        return {}
    if not isinstance(decoded, dict):
        raise PluginAPIError(
            f"plugin configuration is a JSON {type(decoded).__name__}, expected an object",
            id="mmplug.client.config",
            status_code=500,
        )
    return decoded


def method_specs(service: ServiceDescriptor) -> dict[str, MethodSpec]:
    """The unary RPCs of ``service`` by snake_case name, in declaration order."""
    specs = {}
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            continue  # streams get dedicated helpers, not the unary convention
        spec = MethodSpec.of(service, method)
        specs[spec.py_name] = spec
    return specs


# The contract services' specs by RPC name, each built on first use, by service name
# (_ClientBase._bind_contract): building all ~260 makes the classes of ~520 messages.
_CONTRACT_SPECS: dict[str, LazyMapping[Any, MethodSpec]] = {}


class _ClientBase:
    _service: ClassVar[ServiceDescriptor]
    _specs: ClassVar[Mapping[str, MethodSpec]]
    # RPC name -> spec, for ``_call``.
    _by_rpc: ClassVar[Mapping[str, MethodSpec]]
    # Set by the generated classes: the contract service they type. Its descriptors are
    # loaded when the first client is made, not when the class is imported.
    _contract: ClassVar[str] = ""

    def __init__(self, channel: Any, *, token: str, plugin_id: str) -> None:
        type(self)._bind_contract()
        # Byte streams (streams.py) always use the gRPC channel; unary calls their carrier.
        self._channel = channel
        self._metadata = ((TOKEN_METADATA_KEY, token),)
        self._plugin_id = plugin_id

    @classmethod
    def _bind_contract(cls) -> None:
        if not cls._contract or "_specs" in cls.__dict__:
            return
        from . import _contract

        service = _contract.service(cls._contract)
        # The sync and the async client of one service share their (immutable) specs.
        by_rpc = _CONTRACT_SPECS.get(service.full_name)
        if by_rpc is None:
            unary = {
                m.name: m for m in service.methods if not (m.client_streaming or m.server_streaming)
            }
            by_rpc = _CONTRACT_SPECS[service.full_name] = LazyMapping(
                unary, functools.partial(MethodSpec.of, service)
            )
        cls._service = service
        cls._specs = by_rpc.rekeyed(snake_case)
        cls._by_rpc = by_rpc

    @classmethod
    def method_names(cls) -> list[str]:
        """The snake_case names of the unary RPCs, in service declaration order."""
        cls._bind_contract()
        return list(cls._specs)

    def _spec(self, rpc_name: str) -> MethodSpec:
        spec = type(self)._by_rpc.get(rpc_name)
        if spec is None:
            # The generated client and the loaded descriptors disagree: a stale install.
            raise NotImplementedAPIError(
                f"{type(self)._service.full_name} has no unary RPC {rpc_name}: the generated "
                "client and the protobuf modules are out of step (reinstall mmplug)",
                id="mmplug.client.unknown_rpc",
                status_code=501,
                method=rpc_name,
            )
        return spec

    def _spec_for_response(self, rpc_name: str, response_cls: type[Message]) -> MethodSpec:
        """A spec that unpacks ``response_cls`` like a unary response (for streams)."""
        desc: Any = response_cls.DESCRIPTOR
        err: Any = desc.fields_by_number.get(1)
        return MethodSpec(
            rpc_name=rpc_name,
            py_name=snake_case(rpc_name),
            path="",
            request_cls=response_cls,
            response_cls=response_cls,
            args=[],
            results=payload_fields(desc),
            context_field=None,
            error_field=err if err is not None and err.message_type is not None else None,
        )

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not real methods: explain instead of a bare miss.
        if name.startswith("_"):
            raise AttributeError(name)
        import difflib  # only for this message

        close = difflib.get_close_matches(name, list(type(self)._specs), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise AttributeError(
            f"{type(self).__name__} has no method {name!r} "
            f"({type(self)._service.full_name} has no such RPC){hint}"
        )


class SyncClient(_ClientBase):
    """Blocking client: one method per RPC. Thread-safe (both carriers are).

    ``unary`` carries the unary calls (the lane, from the runtime); by default gRPC on
    ``channel``.
    """

    def __init__(
        self, channel: Any, *, token: str, plugin_id: str, unary: SyncUnary | None = None
    ) -> None:
        super().__init__(channel, token=token, plugin_id=plugin_id)
        self._unary: SyncUnary = unary or GrpcSyncUnary(channel, self._metadata)

    def _invoke(self, spec: MethodSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        request = spec.build_request(args, kwargs, self._plugin_id).SerializeToString()
        try:
            with blocking_api_call():
                raw = self._unary.call(spec.path, request)
        except TransportError as e:
            raise _transport_error(e, spec) from None
        return spec.unpack(_parse_response(spec, raw))

    def _call(self, rpc_name: str, *args: Any) -> Any:
        """Call RPC ``rpc_name`` with the request fields from number 2 on, in order."""
        return self._invoke(self._spec(rpc_name), args, {})

    def _upload(self, rpc_name: str, stream_index: int, *args: Any) -> Any:
        """Call upload RPC ``rpc_name``: ``args`` are the Go parameters in order, the one at
        ``stream_index`` being the data (bytes, a binary file or an iterable of bytes)."""
        from . import streams

        return streams.upload(self, rpc_name, stream_index, args)

    def _plugin_http(
        self, method: str, url: str, headers: Mapping[str, Sequence[str]], body: Any
    ) -> Any:
        from . import streams

        return streams.plugin_http(self, method, url, headers, body)

    def close(self) -> None:
        self._unary.close()
        self._channel.close()


class AsyncClient(_ClientBase):
    """``async def`` twin of ``SyncClient``; its default carrier is gRPC on a ``grpc.aio``
    channel."""

    def __init__(
        self, channel: Any, *, token: str, plugin_id: str, unary: AsyncUnary | None = None
    ) -> None:
        super().__init__(channel, token=token, plugin_id=plugin_id)
        self._unary: AsyncUnary = unary or GrpcAsyncUnary(channel, self._metadata)

    async def _invoke(self, spec: MethodSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        request = spec.build_request(args, kwargs, self._plugin_id).SerializeToString()
        try:
            raw = await self._unary.call(spec.path, request)
        except TransportError as e:
            raise _transport_error(e, spec) from None
        return spec.unpack(_parse_response(spec, raw))

    async def _call(self, rpc_name: str, *args: Any) -> Any:
        """Call RPC ``rpc_name`` with the request fields from number 2 on, in order."""
        return await self._invoke(self._spec(rpc_name), args, {})

    async def _upload(self, rpc_name: str, stream_index: int, *args: Any) -> Any:
        """``SyncClient._upload`` for async callers (data may be an async iterable too)."""
        from . import streams

        return await streams.aupload(self, rpc_name, stream_index, args)

    async def _plugin_http(
        self, method: str, url: str, headers: Mapping[str, Sequence[str]], body: Any
    ) -> Any:
        from . import streams

        return await streams.aplugin_http(self, method, url, headers, body)

    async def close(self) -> None:
        await self._unary.close()
        await self._channel.close()


def _parse_response(spec: MethodSpec, raw: bytes) -> Message:
    try:
        return spec.response_cls.FromString(raw)
    except Exception as e:  # protobuf's DecodeError, or whatever upb raises
        raise PluginAPIError(
            f"PluginAPI.{spec.rpc_name} answered a message that does not parse: {e}",
            id="mmplug.client.transport",
            status_code=500,
            where=spec.rpc_name,
            method=spec.rpc_name,
        ) from None


def _sync_method(spec: MethodSpec) -> Callable[..., Any]:
    def method(self: SyncClient, *args: Any, **kwargs: Any) -> Any:
        return self._invoke(spec, args, kwargs)

    return method


def _async_method(spec: MethodSpec) -> Callable[..., Any]:
    async def method(self: AsyncClient, *args: Any, **kwargs: Any) -> Any:
        return await self._invoke(spec, args, kwargs)

    return method


def _finish(fn: Callable[..., Any], spec: MethodSpec, owner: str) -> None:
    fn.__name__ = spec.py_name
    fn.__qualname__ = f"{owner}.{spec.py_name}"
    fn.__doc__ = spec.doc()
    fn.__signature__ = spec.signature()  # type: ignore[attr-defined]


def make_client_classes(
    service: ServiceDescriptor, name: str = "PluginAPIClient"
) -> tuple[type[SyncClient], type[AsyncClient]]:
    """Build untyped sync and async client classes for any ``service`` (the mmplug contract
    has the typed, generated ones: ``mattermost_plugin._generated.api``)."""
    specs = method_specs(service)
    by_rpc = {s.rpc_name: s for s in specs.values()}
    sync_ns: dict[str, Any] = {"_service": service, "_specs": specs, "_by_rpc": by_rpc}
    async_ns: dict[str, Any] = {"_service": service, "_specs": specs, "_by_rpc": by_rpc}
    async_name = f"Async{name}"
    for py_name, spec in specs.items():
        s, a = _sync_method(spec), _async_method(spec)
        _finish(s, spec, name)
        _finish(a, spec, async_name)
        sync_ns[py_name], async_ns[py_name] = s, a
    if "load_plugin_configuration" in specs:
        cfg = specs["load_plugin_configuration"]

        def load_plugin_configuration(self: SyncClient) -> dict[str, Any]:
            """The plugin's configuration, decoded from JSON into a dict."""
            return _decode_config(self._invoke(cfg, (), {}))

        async def aload_plugin_configuration(self: AsyncClient) -> dict[str, Any]:
            """The plugin's configuration, decoded from JSON into a dict."""
            return _decode_config(await self._invoke(cfg, (), {}))

        aload_plugin_configuration.__name__ = "load_plugin_configuration"
        sync_ns["load_plugin_configuration"] = load_plugin_configuration
        async_ns["load_plugin_configuration"] = aload_plugin_configuration
    sync_cls = type(name, (SyncClient,), sync_ns)
    async_cls = type(async_name, (AsyncClient,), async_ns)
    return sync_cls, async_cls


class LazyChannel(abc.ABC):
    """A gRPC channel to a unix socket, made (and grpcio imported) by its first use.

    The runtime's clients hold one each for their byte streams (uploads, PluginHTTP) and,
    with ``MMPLUG_TRANSPORT=grpc``, their unary calls. With the lane most plugins never
    stream, and importing grpcio would cost every one of them ~20 ms of start-up and ~9 MB
    (docs/internals.md §8). Only the methods the SDK calls are forwarded.
    """

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._channel: Any = None
        # Sync clients are shared by worker threads: two first calls must make one channel.
        self._lock = threading.Lock()

    @abc.abstractmethod
    def _open(self) -> Any:
        """Makes the channel (``LazySyncChannel``, ``LazyAioChannel``)."""

    def _get(self) -> Any:
        channel = self._channel
        if channel is None:
            with self._lock:
                if self._channel is None:
                    self._channel = self._open()
                channel = self._channel
        return channel

    @property
    def opened(self) -> bool:
        """Whether a call has made the real channel."""
        return self._channel is not None

    def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
        return self._get().unary_unary(*args, **kwargs)

    def stream_unary(self, *args: Any, **kwargs: Any) -> Any:
        return self._get().stream_unary(*args, **kwargs)

    def stream_stream(self, *args: Any, **kwargs: Any) -> Any:
        return self._get().stream_stream(*args, **kwargs)


class LazySyncChannel(LazyChannel):
    """A lazily made ``grpc.Channel`` (see ``LazyChannel``)."""

    def _open(self) -> grpc.Channel:
        import grpc

        return grpc.insecure_channel(f"unix:{self.socket_path}", options=CHANNEL_OPTIONS)

    def close(self) -> None:
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


class LazyAioChannel(LazyChannel):
    """A lazily made ``grpc.aio.Channel`` (see ``LazyChannel``); first used on the event
    loop, where grpc.aio makes its channels."""

    def _open(self) -> grpc.aio.Channel:
        import grpc.aio

        return grpc.aio.insecure_channel(f"unix:{self.socket_path}", options=CHANNEL_OPTIONS)

    async def close(self) -> None:
        with self._lock:
            channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()


def sync_channel(socket_path: str) -> LazySyncChannel:
    """The blocking channel of a client to the bridge's ``PluginAPI`` socket."""
    return LazySyncChannel(socket_path)


def aio_channel(socket_path: str) -> LazyAioChannel:
    """The asyncio channel of a client to the bridge's ``PluginAPI`` socket."""
    return LazyAioChannel(socket_path)


# Posts, configs and file payloads can exceed gRPC's 4 MiB default; the bridge enforces the
# real limits (the server's), so this side only needs to not be the bottleneck.
CHANNEL_OPTIONS = [
    # Over a unix socket grpc-core sends the percent-encoded socket path as :authority, which
    # the bridge's HTTP/2 server rejects as an invalid authority (RST_STREAM PROTOCOL_ERROR).
    ("grpc.default_authority", "localhost"),
    ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ("grpc.max_send_message_length", 256 * 1024 * 1024),
]


def __getattr__(name: str) -> Any:
    # `from mattermost_plugin.client import PluginAPIClient`, the import path of Mattermost's
    # own Python SDK (docs/upstream.md): the typed clients live in _generated.api, which
    # imports this module, so they are resolved on first use.
    if name in ("PluginAPIClient", "AsyncPluginAPIClient"):
        from ._generated import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
