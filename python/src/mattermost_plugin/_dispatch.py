"""Generic hook dispatch: the ``PluginHooks`` gRPC service over a ``Plugin`` instance.

Nothing here knows a hook by name except ``Implemented`` and the HTTP streams. For a
unary hook ``H(HHookRequest) returns (HHookResponse)``:

* request fields from number 2 on become the handler's positional arguments (Go order);
* the handler's return fills the response fields from number 2 on: None (nothing), one
  value (the first field), or a tuple (the fields in order, possibly fewer);
* an exception becomes the response's ``error`` field (message = the exception text,
  detailed_error = the traceback; a ``PluginAPIError`` keeps its own fields) and a log line.

Sync handlers run in a worker thread so the event loop keeps serving (a handler may call
back into the API, which needs the loop to be free); async handlers run on the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import traceback
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.aio
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from ._chunks import ChunkReader
from ._convert import get_field, payload_fields, set_field
from .client import current_request_id
from .errors import PluginAPIError
from .files import UploadReader, UploadWriter
from .hooks import HookName
from .http import HTTPRequest, HTTPResponseWriter, Outbox, ResponseParts
from .plugin import Plugin

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
        "detailed_error": "".join(traceback.format_exception(exc)).rstrip(),
        "status_code": 500,
        "where": where,
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
        """Store a handler's return value into the response's result fields."""
        if value is None:
            return
        n = len(self.results)
        if n == 0:
            raise TypeError(
                f"{self.name} handlers return nothing (raise an exception to report an "
                f"error), got {type(value).__name__}"
            )
        if n == 1:
            if isinstance(value, tuple) and len(value) == 1:
                value = value[0]
            set_field(response, self.results[0], value)
            return
        values = value if isinstance(value, tuple) else (value,)
        if len(values) > n:
            names = ", ".join(f.name for f in self.results)
            raise TypeError(
                f"{self.name} handlers return at most {n} values ({names}), got {len(values)}"
            )
        for f, v in zip(self.results, values, strict=False):
            set_field(response, f, v)

    def set_error(self, response: Message, fields: dict[str, Any]) -> None:
        if self.error_field is None:
            return
        err = getattr(response, self.error_field.name)
        known = err.DESCRIPTOR.fields_by_name
        for k, v in fields.items():
            if k in known:
                setattr(err, k, v)


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


# See HookDispatcher.__init__: sync handlers must never wait for a free thread.
UNBOUNDED_WORKERS = 1_000_000


class HookDispatcher:
    """Serves one plugin instance as the ``PluginHooks`` service."""

    def __init__(
        self,
        plugin: Plugin,
        service: ServiceDescriptor,
        *,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.plugin = plugin
        self.service = service
        self._own_executor = executor is None
        # Effectively unbounded (idle threads are reused, new ones start only when all are
        # busy): a sync handler may block on an API call that makes the server call another
        # hook of ours (CreatePost -> MessageWillBePosted). With a fixed pool, enough
        # concurrent handlers blocked that way would leave no thread for the nested hook and
        # deadlock; Go plugins have no such limit either.
        self.executor = executor or ThreadPoolExecutor(
            max_workers=UNBOUNDED_WORKERS, thread_name_prefix="mmplug-hook"
        )
        self.specs = {
            m.name: HookSpec.of(m)
            for m in service.methods
            if not (m.client_streaming or m.server_streaming)
        }

    def close(self) -> None:
        if self._own_executor:
            self.executor.shutdown(wait=False, cancel_futures=True)

    # --- running handlers -------------------------------------------------------------

    async def call(self, handler: Callable[..., Any], *args: Any) -> Any:
        """Run a handler: coroutine functions on the loop, others in a worker thread."""
        if inspect.iscoroutinefunction(handler):
            return await handler(*args)
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        result = await loop.run_in_executor(
            self.executor, functools.partial(ctx.run, handler, *args)
        )
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

    async def unary(self, spec: HookSpec, request: Message, context: Any) -> Message:
        response = spec.response_cls()
        if spec.name == "Implemented":
            set_field(response, spec.results[0], self.plugin.implemented_hooks())
            return response
        handler = self.plugin.hook_handler(spec.name)
        if handler is None:
            # The server only calls hooks Implemented listed; getting here is a bridge bug.
            await context.abort(
                grpc.StatusCode.UNIMPLEMENTED,
                f"the plugin does not implement hook {spec.name}",
            )
        args = [get_field(request, f) for f in spec.args]
        token = current_request_id.set(_request_id(request))
        try:
            result = await self.call(handler, *args)  # type: ignore[arg-type]
            spec.fill(response, result)
        except Exception as exc:
            response = spec.response_cls()
            spec.set_error(response, app_error_fields(exc, self._where(spec.name)))
            log.error("hook %s failed: %s", spec.name, exc, exc_info=exc)
        finally:
            current_request_id.reset(token)
        return response

    # --- HTTP streams (ServeHTTP, ServeMetrics) ---------------------------------------

    async def http_stream(
        self, hook: str, part_cls: type[Message], requests: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Message]:
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
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
        for method in self.service.methods:
            req_cls = GetMessageClass(method.input_type)
            resp_cls = GetMessageClass(method.output_type)
            if not (method.client_streaming or method.server_streaming):
                spec = self.specs[method.name]

                async def unary(request: Message, context: Any, _spec: HookSpec = spec) -> Message:
                    return await self.unary(_spec, request, context)

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


def _unsupported_stream(
    method: Any, req_cls: type[Message], resp_cls: type[Message]
) -> grpc.RpcMethodHandler[Any, Any]:
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
    ctx_field = request.DESCRIPTOR.fields_by_number.get(1)
    if ctx_field is None or ctx_field.message_type is None:
        return ""
    ctx = getattr(request, ctx_field.name)
    return str(getattr(ctx, "request_id", ""))
