"""Generic hook dispatch: the ``PluginHooks`` gRPC service over a ``Plugin`` instance.

Nothing here knows a hook by name except ``Implemented`` and the HTTP streams. For a
unary hook ``H(HHookRequest) returns (HHookResponse)``:

* request fields from number 2 on become the handler's positional arguments (Go order);
* the handler's return fills the response fields from number 2 on: None (nothing), one
  value (the first field), or a tuple (the fields in order, possibly fewer); a reply that
  does not fit (a wrong type, too many values, a value for a hook without results, None for
  a hook whose result is a list that replaces what the server had) is a ``HookReplyError``
  naming the hook, its expected result type and what was returned, checked against the
  response descriptor (generated from the API schema), never a per-hook table;
* an exception becomes the response's ``error`` field (message = the exception text,
  detailed_error = the traceback; a ``PluginAPIError`` keeps its own fields) and a log line;
* SDK features (typed settings, declared slash commands) take part through the plugin's
  hook chain (``Plugin._hook_chain``), which runs their steps before the author's handler.

Sync handlers run in a worker thread so the event loop keeps serving (a handler may call
back into the API, which needs the loop to be free); async handlers run on the loop. On the
lane, a unary hook whose whole chain is a plain ``def`` handler is served whole on the
thread of the lane connection that read it (``lane_threaded``; ``_lane/threaded.py``).
"""

from __future__ import annotations

import asyncio
import contextvars
import datetime
import functools
import inspect
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from . import _compat
from . import logging as mmlogging
from ._backports import format_exception
from ._chunks import ChunkReader
from ._convert import field_getter, get_field, payload_fields, set_field
from ._gate import SyncHandlerGate, handler_thread
from ._generated import hooks as generated_hooks
from ._lane import Code, LaneError
from ._lane import Handler as LaneHandler
from ._lazy import LazyMapping
from ._threads import HandlerThreads
from .client import current_request_id
from .errors import PluginAPIError
from .files import UploadReader, UploadWriter
from .hooks import HookName, HookReplyError
from .http import HTTPRequest, HTTPResponseWriter, Outbox, ResponseParts
from .plugin import Plugin

if TYPE_CHECKING:
    # grpcio is imported where gRPC is served (runtime.GrpcSide), not with the SDK.
    import grpc

__all__ = ["HookDispatcher", "HookSpec", "app_error_fields"]

log = logging.getLogger("mattermost_plugin.dispatch")

HOOK_ERROR_ID = "mmplug.python.hook_error"


def app_error_fields(exc: BaseException, where: str) -> dict[str, Any]:
    """The AppError fields describing ``exc`` raised by a handler."""
    if isinstance(exc, PluginAPIError):
        fields = exc.to_fields()
        fields["where"] = fields["where"] or where
        return fields
    return {
        "id": HOOK_ERROR_ID,
        "message": str(exc) or type(exc).__name__,
        "detailed_error": "".join(format_exception(exc)).rstrip(),
        "status_code": 500,
        "where": where,
        # The server would show the id (not in its i18n bundle) instead of the message.
        "skip_translation": True,
    }


@dataclass(frozen=True)
class HookSpec:
    name: str
    request_cls: type[Message]
    response_cls: type[Message]
    args: Sequence[FieldDescriptor]
    results: Sequence[FieldDescriptor]
    error_field: FieldDescriptor | None

    @classmethod
    def of(cls, method: Any) -> HookSpec:
        req: Descriptor = method.input_type
        resp: Descriptor = method.output_type
        err = resp.fields_by_number.get(1)
        return cls(
            name=method.name,
            request_cls=GetMessageClass(req),
            response_cls=GetMessageClass(resp),
            args=payload_fields(req),
            results=payload_fields(resp),
            error_field=err if err is not None and err.message_type is not None else None,
        )

    def fill(self, response: Message, value: Any) -> None:
        """Store a handler's return value into the response's result fields.

        Raises ``HookReplyError`` when the value does not fit the hook's results.
        """
        n = len(self.results)
        if value is None:
            if n == 1 and self._replaces_argument_list(self.results[0]):
                self._reject(
                    value,
                    "a list is required (return the items you were given to change nothing; "
                    "None would stand for an empty list and drop them all)",
                )
            return
        if n == 0:
            raise HookReplyError(
                self.name,
                f"{self.name} handlers return nothing (raise an exception to report an "
                f"error), got {_show(value)}",
            )
        if n == 1:
            if isinstance(value, tuple) and len(value) == 1:
                value = value[0]
            self._store(response, self.results[0], value, value)
            return
        values = value if isinstance(value, tuple) else (value,)
        if len(values) > n:
            names = ", ".join(f.name for f in self.results)
            self._reject(
                value,
                f"{self.name} handlers return at most {n} values ({names}), got {len(values)}",
            )
        if not isinstance(value, tuple):
            problem = _mismatch(self.results[0], value)
            if problem is not None and any(_mismatch(f, value) is None for f in self.results[1:]):
                names = ", ".join(f.name for f in self.results)
                self._reject(value, f"return a tuple ({names}); {problem}")
        for f, v in zip(self.results, values, strict=False):
            self._store(response, f, v, value)

    def _replaces_argument_list(self, result: FieldDescriptor) -> bool:
        """A list result standing for a list argument (MessagesWillBeConsumed's posts)."""
        if not _is_list(result) or result.message_type is None:
            return False
        kind = result.message_type.full_name
        return any(
            _is_list(a) and a.message_type is not None and a.message_type.full_name == kind
            for a in self.args
        )

    def expected(self) -> str:
        """The hook's result type as handlers are annotated (``XResult`` of the hooks module)."""
        alias = getattr(generated_hooks, f"{self.name}Result", _NO_ALIAS)
        if alias is _NO_ALIAS:
            return _describe_results(self.results)
        if alias is None:
            return "None"
        if isinstance(alias, str):
            return alias
        return getattr(alias, "__name__", str(alias))

    def _reject(self, value: Any, problem: str) -> NoReturn:
        raise HookReplyError(
            self.name,
            f"{self.name} handler returned {_show(value)}, which does not fit its result "
            f"{self.expected()}: {problem}",
        )

    def _store(self, response: Message, field: FieldDescriptor, value: Any, whole: Any) -> None:
        problem = _mismatch(field, value)
        if problem is None:
            try:
                set_field(response, field, value)
                return
            except (TypeError, ValueError) as e:
                problem = str(e)
        self._reject(whole, problem)

    def set_error(self, response: Message, fields: dict[str, Any]) -> None:
        if self.error_field is None:
            return
        err = getattr(response, self.error_field.name)
        known = err.DESCRIPTOR.fields_by_name
        for k, v in fields.items():
            if k in known:
                setattr(err, k, v)


_NO_ALIAS = object()

_STRUCT = "google.protobuf.Struct"
_VALUE = "google.protobuf.Value"
_TIMESTAMP = "google.protobuf.Timestamp"
_F = FieldDescriptor
_INT_TYPES = {
    _F.TYPE_INT32, _F.TYPE_INT64, _F.TYPE_UINT32, _F.TYPE_UINT64, _F.TYPE_SINT32,
    _F.TYPE_SINT64, _F.TYPE_FIXED32, _F.TYPE_FIXED64, _F.TYPE_SFIXED32, _F.TYPE_SFIXED64,
}  # fmt: skip
_SCALAR_NAMES = {
    _F.TYPE_STRING: "str",
    _F.TYPE_BYTES: "bytes",
    _F.TYPE_BOOL: "bool",
    _F.TYPE_DOUBLE: "float",
    _F.TYPE_FLOAT: "float",
    _F.TYPE_ENUM: "int",
}


def _show(value: Any) -> str:
    """``value`` for an error message: its type and a bounded repr."""
    if value is None:
        return "None"
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"{type(value).__name__} {text}"


def _is_map(field: FieldDescriptor) -> bool:
    mt = field.message_type
    return bool(field.is_repeated and mt is not None and mt.GetOptions().map_entry)


def _is_list(field: FieldDescriptor) -> bool:
    return field.is_repeated and not _is_map(field)


def _type_name(field: FieldDescriptor, *, python: bool = False) -> str:
    """A field's type: the proto name for messages, the Python name for scalars."""
    mt = field.message_type
    if mt is not None:
        if mt.full_name in (_STRUCT,):
            return "dict"
        if mt.full_name == _VALUE:
            return "Any"
        return mt.name if python else mt.full_name
    if field.type in _INT_TYPES:
        return "int" if python else _go_scalar_name(field)
    return _SCALAR_NAMES.get(field.type, "value")


def _scalar_mismatch(field: FieldDescriptor, value: Any) -> bool:
    t = field.type
    if t == _F.TYPE_STRING:
        return not isinstance(value, str)
    if t == _F.TYPE_BYTES:
        return not isinstance(value, bytes | bytearray | memoryview)
    if t == _F.TYPE_BOOL:
        return not isinstance(value, bool)
    if t in _INT_TYPES:
        return isinstance(value, bool) or not isinstance(value, int)
    if t in (_F.TYPE_DOUBLE, _F.TYPE_FLOAT):
        return isinstance(value, bool) or not isinstance(value, int | float)
    if t == _F.TYPE_ENUM:
        return isinstance(value, bool) or not isinstance(value, int | str)
    return False


def _message_mismatch(field: FieldDescriptor, value: Any) -> bool:
    mt = field.message_type
    assert mt is not None
    if mt.full_name == _VALUE:
        return False  # anything JSON-like; set_field reports what it cannot store
    if isinstance(value, Message):
        return value.DESCRIPTOR.full_name != mt.full_name
    if mt.full_name == _TIMESTAMP:
        return not isinstance(value, datetime.datetime)
    return not isinstance(value, Mapping)


def _expected_type(field: FieldDescriptor) -> str:
    mt = field.message_type
    if mt is not None and mt.full_name not in (_STRUCT, _VALUE):
        return f"{mt.full_name} or None"
    return _go_scalar_name(field)


def _go_scalar_name(field: FieldDescriptor) -> str:
    if field.message_type is not None:
        return _type_name(field)
    names = {
        _F.TYPE_INT32: "int32", _F.TYPE_INT64: "int64", _F.TYPE_UINT32: "uint32",
        _F.TYPE_UINT64: "uint64", _F.TYPE_SINT32: "int32", _F.TYPE_SINT64: "int64",
        _F.TYPE_FIXED32: "uint32", _F.TYPE_FIXED64: "uint64", _F.TYPE_SFIXED32: "int32",
        _F.TYPE_SFIXED64: "int64",
    }  # fmt: skip
    return names.get(field.type) or _SCALAR_NAMES.get(field.type, "value")


def _mismatch(field: FieldDescriptor, value: Any) -> str | None:
    """Why ``value`` cannot be a handler's result for ``field``; None when it can."""
    owner = field.containing_type
    where = f"{owner.name if owner is not None else '?'}.{field.name}"
    if value is None:
        return None
    if _is_map(field):
        if isinstance(value, Mapping):
            return None
        return f"{where} expects a dict, got {_show(value)}"
    if field.is_repeated:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            return f"{where} expects a list of {_type_name(field)}, got {_show(value)}"
        return None
    if field.message_type is not None:
        if _message_mismatch(field, value):
            return f"{where} expects {_expected_type(field)}, got {_show(value)}"
        return None
    if _scalar_mismatch(field, value):
        return f"{where} expects {_go_scalar_name(field)}, got {_show(value)}"
    return None


def _describe_results(results: Sequence[FieldDescriptor]) -> str:
    """The Python type of a hook's results, from the response descriptor."""

    def one(f: FieldDescriptor) -> str:
        if _is_map(f):
            return "dict"
        inner = _type_name(f, python=True)
        if f.is_repeated:
            return f"list[{inner}]"
        if f.message_type is not None and f.message_type.full_name not in (_STRUCT, _VALUE):
            return f"{inner} | None"
        return inner

    if not results:
        return "None"
    if len(results) == 1:
        return one(results[0])
    return "tuple[" + ", ".join(one(f) for f in results) + "]"


def _is_http_stream(method: Any) -> bool:
    if not (method.client_streaming and method.server_streaming):
        return False
    req, resp = method.input_type.fields_by_name, method.output_type.fields_by_name
    return "init" in req and "body" in req and "init" in resp and "flush" in resp


def _body_chunk(part: Any) -> bytes | None:
    """A request part's body bytes; None at ``body_end``."""
    kind = part.WhichOneof("part")
    if kind == "body":
        return bytes(part.body)
    if kind == "body_end":
        return None
    raise ValueError(f"unexpected request part {kind!r} after init")


def _is_file_stream(method: Any) -> bool:
    """A hook whose request is init + chunks and whose response is chunks + result."""
    if not (method.client_streaming and method.server_streaming):
        return False
    req, resp = method.input_type.fields_by_name, method.output_type.fields_by_name
    return "init" in req and "chunk" in req and "chunk" in resp and "result" in resp


class HookDispatcher:
    """Serves one plugin instance as the ``PluginHooks`` service."""

    def __init__(
        self,
        plugin: Plugin,
        service: ServiceDescriptor,
    ) -> None:
        self.plugin = plugin
        self.service = service
        # Unbounded (idle threads are reused); the gate bounds how many handlers run, so the
        # threads in use stay near its limit (_gate.py says how a handler blocked in an API
        # call that runs a nested hook of ours stays out of it).
        self.threads = HandlerThreads("mmplug-hook")
        self.gate = SyncHandlerGate(plugin.max_sync_handlers)
        self._server_log_open = False
        self._server_log_lock = threading.Lock()
        # Each built when its hook is first served (it makes the hook's message classes).
        self.specs: Mapping[str, HookSpec] = LazyMapping(
            {m.name: m for m in service.methods if not (m.client_streaming or m.server_streaming)},
            HookSpec.of,
        )
        # How the lane serves each method (None: through unary), filled as methods are first
        # called, since a plugin's handlers never change.
        self._routes: dict[str, _HookRoute | None] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def _in_handler_thread(self, handler: Callable[..., Any], *args: Any) -> Any:
        with handler_thread(self.gate):
            return handler(*args)

    def close(self) -> None:
        self.threads.close()

    # --- running handlers -------------------------------------------------------------

    def _open_server_log(self) -> None:
        if self._server_log_open or self.plugin._api is None:
            return
        with self._server_log_lock:  # the lane's threads come here too
            if not self._server_log_open:
                # Every hook but Implemented comes after the server opened its API (the
                # bridge dials it first thing in OnActivate): log lines can go through it.
                mmlogging.open_server_log(self.plugin._api)
                self._server_log_open = True

    async def call(self, handler: Callable[..., Any], *args: Any) -> Any:
        """Run a handler: coroutine functions on the loop, others in a worker thread."""
        self._open_server_log()
        if inspect.iscoroutinefunction(handler):
            return await handler(*args)
        ctx = contextvars.copy_context()
        await self.gate.acquire()
        try:
            result = await self.threads.submit(
                functools.partial(ctx.run, self._in_handler_thread, handler, *args)
            )
        finally:
            self.gate.release()
        if inspect.isawaitable(result):  # a sync wrapper around a coroutine function
            result = await result
        return result

    def _where(self, hook: str) -> str:
        try:
            attr = self.plugin._hook_registry.get(HookName(hook))
        except ValueError:
            attr = None
        return f"{type(self.plugin).__name__}.{attr or hook}"

    # --- unary hooks ------------------------------------------------------------------

    async def unary(self, spec: HookSpec, request: Message) -> Message:
        """Runs a unary hook; raises ``HookNotImplemented`` for a hook the plugin lacks."""
        response = spec.response_cls()
        if spec.name == "Implemented":
            set_field(response, spec.results[0], self.plugin.implemented_hooks())
            return response
        chain = self.plugin._hook_chain(spec.name, self.call)
        if chain is None:
            # The server only calls hooks Implemented listed; getting here is a bridge bug.
            raise HookNotImplemented(f"the plugin does not implement hook {spec.name}")
        args = [get_field(request, f) for f in spec.args]
        token = current_request_id.set(_request_id(request))
        try:
            result = await chain(*args)
            spec.fill(response, result)
        except Exception as exc:
            response = self._failed(spec, exc)
        finally:
            current_request_id.reset(token)
        return response

    def _failed(self, spec: HookSpec, exc: Exception) -> Message:
        """The response of a hook whose handler raised ``exc`` or replied what does not fit."""
        response = spec.response_cls()
        spec.set_error(response, app_error_fields(exc, self._where(spec.name)))
        if isinstance(exc, HookReplyError):
            log.error("hook %s: invalid reply: %s", spec.name, exc)
        else:
            log.error("hook %s failed: %s", spec.name, exc, exc_info=exc)
        return response

    # --- unary hooks on the lane: a route per hook, decided once --------------------------

    def _route(self, method: str) -> _HookRoute | None:
        """How the lane serves ``method`` when the plugin's handler is all there is to it (no
        SDK step, which may await): with what it needs decided once. None sends the call
        down the general path (``unary``)."""
        route = self._routes.get(method, _UNKNOWN)
        if route is _UNKNOWN:
            route = self._routes[method] = self._make_route(method)
        return route  # type: ignore[no-any-return]

    def _make_route(self, method: str) -> _HookRoute | None:
        prefix = f"/{self.service.full_name}/"
        spec = self.specs.get(method[len(prefix) :]) if method.startswith(prefix) else None
        if spec is None or spec.name == "Implemented":
            return None
        try:
            name = HookName(spec.name)
        except ValueError:
            return None
        handler = self.plugin.hook_handler(name)
        if handler is None or self.plugin._sdk_steps(name):
            return None
        return _HookRoute(
            spec=spec,
            name=name,
            handler=handler,
            is_async=inspect.iscoroutinefunction(handler),
            getters=tuple(field_getter(f) for f in spec.args),
            context_field=_context_field(spec.request_cls),
            reply=_fast_reply(spec),
        )

    def _respond(self, route: _HookRoute, result: Any, args: list[Any]) -> bytes:
        """The response's bytes for what the handler returned: as ``unary`` makes them
        (through ``_compat.hook_result`` and ``HookSpec.fill``), straight when it is plainly
        the hook's results (``_fast_reply``). Raises ``HookReplyError`` as ``fill`` does."""
        data = route.reply(result)
        if data is not None:
            return data
        response = route.spec.response_cls()
        route.spec.fill(response, _compat.hook_result(route.name, result, tuple(args)))
        return response.SerializeToString()

    async def _serve_on_loop(self, route: _HookRoute, body: bytes) -> bytes:
        """An ``async def`` handler's hook on the loop, from request bytes to response bytes."""
        spec = route.spec
        request = _decode(spec, body, spec.name)
        self._open_server_log()
        args = [get(request) for get in route.getters]
        token = current_request_id.set(_request_id_in(request, route.context_field))
        try:
            return self._respond(route, await route.handler(*args), args)
        except Exception as exc:
            return self._failed(spec, exc).SerializeToString()
        finally:
            current_request_id.reset(token)

    def lane_threaded(self) -> tuple[list[str], Callable[[str, bytes], bytes]]:
        """What a lane connection of worker threads serves (``_lane.ThreadedLaneServer``):
        the paths of the unary hooks whose whole chain is a plain ``def`` handler, and how
        to serve one on the thread that read it. Called on the loop (a handler that returns
        an awaitable has it awaited there)."""
        self._loop = asyncio.get_running_loop()
        prefix = f"/{self.service.full_name}/"
        methods = []
        for hook in self.plugin.implemented_hooks():
            route = self._route(prefix + hook)
            if route is not None and not route.is_async:
                methods.append(prefix + hook)

        def serve(method: str, body: bytes) -> bytes:
            route = self._route(method)
            if route is None or route.is_async:
                raise LaneError(Code.UNIMPLEMENTED, f"{method} is not served on threads")
            self._open_server_log()
            return self._run_in_thread(route, body)

        return methods, serve

    def _run_in_thread(self, route: _HookRoute, body: bytes) -> bytes:
        spec = route.spec
        request = _decode(spec, body, spec.name)
        args = [get(request) for get in route.getters]
        token = current_request_id.set(_request_id_in(request, route.context_field))
        try:
            with handler_thread(self.gate):
                result = route.handler(*args)
            # (A tuple, the usual reply, is never awaitable: isawaitable's checks cost more.)
            if type(result) is not tuple and inspect.isawaitable(result):
                # A sync wrapper around a coroutine function.
                assert self._loop is not None
                result = asyncio.run_coroutine_threadsafe(_awaited(result), self._loop).result()
            return self._respond(route, result, args)
        except Exception as exc:
            return self._failed(spec, exc).SerializeToString()
        finally:
            current_request_id.reset(token)

    # --- HTTP streams (ServeHTTP, ServeMetrics) ---------------------------------------

    async def http_stream(
        self, hook: str, part_cls: type[Message], requests: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Message]:
        import grpc

        parts = ResponseParts(part_cls)
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("part") != "init":
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"{hook}: the first request part must be init"
            )
            return
        init = first.init
        loop = asyncio.get_running_loop()
        # The body is pulled from the stream as the handler reads it (never collected here).
        body = ChunkReader(loop, aiter(requests), _body_chunk) if init.has_body else None
        request = HTTPRequest.from_init(init, body, self.plugin.plugin_id)
        handler = self.plugin.hook_handler(hook)
        if handler is None:
            yield parts.init(404, {"Content-Type": ["text/plain; charset=utf-8"]})
            yield parts.body(f"this plugin does not implement {hook}\n".encode())
            return

        outbox = Outbox(loop)
        writer = HTTPResponseWriter(outbox.put, parts)

        async def run() -> None:
            token = current_request_id.set(getattr(request.plugin_context, "request_id", ""))
            try:
                await self.call(handler, request.plugin_context, writer, request)
            except Exception as exc:
                log.error("hook %s failed: %s", hook, exc, exc_info=exc)
                if not writer.headers_sent and not outbox.closed:
                    # Nothing reached the client yet: answer a clean 500.
                    writer.headers.clear()
                    writer.headers["Content-Type"] = ["text/plain; charset=utf-8"]
                    writer.write_header(500)
                    writer.write(b"Internal Server Error\n")
                else:
                    raise
            finally:
                current_request_id.reset(token)
            if not writer.headers_sent and not outbox.closed:
                writer.write_header(200)  # a handler that wrote nothing answers 200, as in Go

        task = loop.create_task(run())
        task.add_done_callback(lambda _t: outbox.finish())
        try:
            while (part := await outbox.get()) is not None:
                yield part
            if not task.cancelled() and task.exception() is not None:
                # Headers were already sent: the response cannot become a 500. Abort the
                # stream so the bridge breaks the connection instead of ending it cleanly.
                await context.abort(
                    grpc.StatusCode.INTERNAL, f"{hook} failed after the response started"
                )
        finally:
            outbox.close()
            if not task.done():
                task.cancel()  # client went away; a sync handler's thread sees its writes fail

    # --- FileWillBeUploaded (byte streams in and out) ---------------------------------

    async def file_stream(
        self, hook: str, part_cls: type[Message], requests: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Message]:
        import grpc

        parts = aiter(requests)
        first = await anext(parts, None)
        if first is None or first.WhichOneof("part") != "init":
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"{hook}: the first request part must be init"
            )
            return
        init = first.init
        result_type: Any = part_cls.DESCRIPTOR.fields_by_name["result"].message_type
        result_cls = GetMessageClass(result_type)
        init_type: Any = init.DESCRIPTOR
        spec = HookSpec(
            name=hook,
            request_cls=type(init),
            response_cls=result_cls,
            args=payload_fields(init_type),
            results=payload_fields(result_type),
            error_field=result_type.fields_by_number.get(1),
        )
        handler = self.plugin.hook_handler(hook)
        if handler is None:
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED, f"the plugin does not implement hook {hook}"
            )
            return
        loop = asyncio.get_running_loop()
        outbox = Outbox(loop)
        reader = UploadReader(loop, parts)
        writer = UploadWriter(outbox, part_cls)
        args = [get_field(init, f) for f in spec.args] + [reader, writer]
        result = result_cls()

        async def run() -> None:
            nonlocal result
            token = current_request_id.set(_request_id(init))
            try:
                spec.fill(result, await self.call(handler, *args))
            except Exception as exc:
                result = result_cls()
                spec.set_error(result, app_error_fields(exc, self._where(hook)))
                log.error("hook %s failed: %s", hook, exc, exc_info=exc)
            finally:
                current_request_id.reset(token)

        task = loop.create_task(run())
        task.add_done_callback(lambda _t: outbox.finish())
        try:
            while (part := await outbox.get()) is not None:
                yield part
            final: Any = part_cls()
            final.result.CopyFrom(result)
            yield final
        finally:
            outbox.close()
            if not task.done():
                task.cancel()

    # --- gRPC plumbing ----------------------------------------------------------------

    def generic_handler(self) -> grpc.GenericRpcHandler:
        import grpc

        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for method in self.service.methods:
            req_cls = GetMessageClass(method.input_type)
            resp_cls = GetMessageClass(method.output_type)
            if not (method.client_streaming or method.server_streaming):
                spec = self.specs[method.name]

                async def unary(request: Message, context: Any, _spec: HookSpec = spec) -> Message:
                    try:
                        return await self.unary(_spec, request)
                    except HookNotImplemented as e:
                        await context.abort(grpc.StatusCode.UNIMPLEMENTED, str(e))
                        raise AssertionError("abort returned") from None  # abort always raises

                handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                    unary,
                    request_deserializer=req_cls.FromString,
                    response_serializer=resp_cls.SerializeToString,
                )
            elif _is_http_stream(method):
                # A partial keeps the async-generator nature visible to grpc.aio, which
                # picks its streaming mode by inspecting the behaviour function.
                stream = functools.partial(self.http_stream, method.name, resp_cls)
                handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                    stream,
                    request_deserializer=req_cls.FromString,
                    response_serializer=resp_cls.SerializeToString,
                )
            elif _is_file_stream(method):
                stream = functools.partial(self.file_stream, method.name, resp_cls)
                handlers[method.name] = grpc.stream_stream_rpc_method_handler(
                    stream,
                    request_deserializer=req_cls.FromString,
                    response_serializer=resp_cls.SerializeToString,
                )
            else:
                handlers[method.name] = _unsupported_stream(method, req_cls, resp_cls)
        return grpc.method_handlers_generic_handler(self.service.full_name, handlers)

    def lane_handler(self) -> LaneHandler:
        """The unary hooks as the lane serves them: (method path, request bytes) → response
        bytes; a failure the hook's response cannot carry is a ``LaneError``."""
        prefix = f"/{self.service.full_name}/"

        def handle(method: str, body: bytes) -> Awaitable[bytes]:
            # Not a coroutine itself: an async def handler's route is awaited straight.
            route = self._route(method)
            if route is not None and route.is_async:
                return self._serve_on_loop(route, body)
            return general(method, body)

        async def general(method: str, body: bytes) -> bytes:
            spec = self.specs.get(method[len(prefix) :]) if method.startswith(prefix) else None
            if spec is None:
                raise LaneError(Code.UNIMPLEMENTED, f"no unary hook {method}")
            request = _decode(spec, body, method)
            try:
                response = await self.unary(spec, request)
            except HookNotImplemented as e:
                raise LaneError(Code.UNIMPLEMENTED, str(e)) from None
            return response.SerializeToString()

        return handle


@dataclass(frozen=True)
class _HookRoute:
    """A unary hook whose handler is all there is to it, as the lane serves it."""

    spec: HookSpec
    name: HookName
    handler: Callable[..., Any]
    is_async: bool
    # Read the handler's arguments from the request, in order (_convert.get_field's rules).
    getters: tuple[Callable[[Message], Any], ...]
    # The request's context field (its request_id is current_request_id's), if any.
    context_field: str | None
    # A plain reply's response bytes, or None for one that is not plain (_fast_reply).
    reply: Callable[[Any], bytes | None]


def _context_field(request_cls: type[Message]) -> str | None:
    """The name of a request's context field (number 1, a message), if it has one."""
    field = request_cls.DESCRIPTOR.fields_by_number.get(1)
    if field is None or field.message_type is None:
        return None
    return str(field.name)


def _fast_reply(spec: HookSpec) -> Callable[[Any], bytes | None]:
    """For a reply that is plainly the hook's results (a tuple of exactly them, or the one
    value of a one-result hook; each None or exactly the field's message class, str or
    bool), the response's bytes as ``fill`` and ``_compat.hook_result`` would make them,
    written straight from the results; None for anything else, which then takes that path.

    Why not store the results in a response message and serialize that: it copies each
    message result (a post and its props) into the response first. Served between the
    bridge's and the server's work, with cold caches, that copy and the response cost a
    hook several times what they cost in a loop (docs/operations.md, "Performance");
    serialized straight, a post is written once."""
    fields: list[tuple[bytes, Any, bool]] = []  # (tag, kind, has_presence) in number order
    for field in spec.results:
        if field.is_repeated:
            return _not_plain
        mt = field.message_type
        if mt is not None:
            if mt.full_name in (_STRUCT, _VALUE, _TIMESTAMP):
                return _not_plain
            fields.append((_varint(field.number << 3 | 2), GetMessageClass(mt), True))
        elif field.type == _F.TYPE_STRING:
            fields.append((_varint(field.number << 3 | 2), str, field.has_presence))
        elif field.type == _F.TYPE_BOOL:
            fields.append((_varint(field.number << 3), bool, field.has_presence))
        else:
            return _not_plain  # ints and floats: fill checks their range
    if not fields:
        return _not_plain
    n = len(fields)

    def reply(value: Any) -> bytes | None:
        if type(value) is not tuple:
            if n != 1 or type(value) is not fields[0][1]:
                return None
            value = (value,)
        elif len(value) != n:
            return None
        out: list[bytes] = []
        for (tag, kind, has_presence), item in zip(fields, value, strict=True):
            if item is None:
                continue
            if type(item) is not kind:
                return None
            if kind is bool:
                # Proto3 leaves a false bool out unless the field tracks presence.
                if item or has_presence:
                    out += (tag, b"\x01" if item else b"\x00")
                continue
            if kind is str:
                if not item and not has_presence:
                    continue
                try:
                    data = item.encode()
                except UnicodeEncodeError:
                    return None  # lone surrogates, which protobuf refuses: fill reports it
            else:
                data = item.SerializeToString()  # set, even if empty, as CopyFrom sets it
            out += (tag, _varint(len(data)), data)
        return b"".join(out)

    return reply


def _not_plain(value: Any) -> bytes | None:
    return None


def _varint(n: int) -> bytes:
    """``n`` (≥ 0) as a protobuf base-128 varint."""
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_UNKNOWN: Any = object()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


class HookNotImplemented(Exception):
    """A hook the plugin does not implement was called (a bridge bug: the server calls only
    the hooks ``Implemented`` listed)."""


def _unsupported_stream(
    method: Any, req_cls: type[Message], resp_cls: type[Message]
) -> grpc.RpcMethodHandler[Any, Any]:
    import grpc

    message = f"{method.name} is not supported by this SDK version yet"

    async def deny(request: Any, context: Any) -> Any:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    factory = {
        (True, True): grpc.stream_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
    }[(bool(method.client_streaming), bool(method.server_streaming))]
    return factory(
        deny,
        request_deserializer=req_cls.FromString,
        response_serializer=resp_cls.SerializeToString,
    )


def _request_id(request: Message) -> str:
    return _request_id_in(request, _context_field(type(request)))


def _request_id_in(request: Message, context_field: str | None) -> str:
    """The request id in ``request``'s context field (``_context_field``), or ""."""
    if context_field is None:
        return ""
    return str(getattr(getattr(request, context_field), "request_id", ""))


def _decode(spec: HookSpec, body: bytes, where: str) -> Message:
    """A hook's request from its bytes; INVALID_ARGUMENT (``where``: the error's prefix) for
    bytes that do not decode."""
    try:
        return spec.request_cls.FromString(body)
    except Exception as e:  # protobuf's DecodeError, or whatever upb raises
        raise LaneError(Code.INVALID_ARGUMENT, f"{where}: {e}") from None
