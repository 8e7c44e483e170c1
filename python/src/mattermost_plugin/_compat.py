"""What makes handlers written for Mattermost's own Python SDK work unchanged (docs/upstream.md).

That SDK's hook runner accepts some return shapes ours does not, and its HTTP handlers see a
buffered request. This module turns those shapes into ours, and only those: a value our
dispatcher accepts as it is comes back unchanged, so nothing here alters the meaning of a
handler written for mmplug.

``hook_result`` (after every unary handler, from ``Plugin._hook_chain``):

* a result with ``to_proto()`` (that SDK's wrapper dataclasses) becomes its message, also
  inside a tuple;
* hooks that can fail (an ``error`` in Go, ``ERROR_HOOKS``) take a trailing error after their
  results, ``(count, err)`` / ``(config, err)`` / ``(files, err)``: a non-empty ``str`` or an
  exception fails the hook, ``None`` or ``""`` does not;
* hooks that can fail and have no other result (``OnActivate``, ``OnInstall``, ...) take a
  ``str`` or an exception returned instead of raised (``""`` succeeds);
* ``(message | None, reason)`` hooks take a bare ``str``: the reason, nothing replaced;
* a list result that replaces an argument (``MessagesWillBeConsumed``) takes ``None``: the
  list as it came;
* ``OnSharedChannelsPing`` takes ``None`` as healthy, and any other value by truth.

``http_handler`` (ServeHTTP and ServeMetrics handlers, from ``Plugin.hook_handler``):

* a handler of the other SDK's guide's form ``(context, request)`` returning a dict
  ``{"status_code", "headers", "body"}`` answers through the writer;
* an ``async def`` handler can read ``request.body`` (as there, where bodies came buffered)
  when the request says its ``Content-Length`` is at most ``PREFETCH_LIMIT``: that much is
  read ahead before the handler runs. Larger or unsized bodies stream as always (``await
  request.abody()``).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

from ._convert import payload_fields
from .errors import PluginAPIError
from .hooks import HookName

__all__ = ["ERROR_HOOKS", "PREFETCH_LIMIT", "hook_result", "http_handler", "write_result"]

# The largest request body read ahead for an async HTTP handler (by its Content-Length).
PREFETCH_LIMIT = 1 << 20


# Hooks whose Go signature returns an error (every response has an AppError field, used for
# a Python exception too, so the descriptor cannot tell). Checked against the schema in tests.
ERROR_HOOKS = frozenset(
    {
        "OnActivate",
        "OnDeactivate",
        "OnConfigurationChange",
        "ExecuteCommand",
        "RunDataRetention",
        "OnInstall",
        "ConfigurationWillBeSaved",
        "OnSharedChannelsSyncMsg",
        "OnSharedChannelsAttachmentSyncMsg",
        "OnSharedChannelsProfileImageSyncMsg",
        "GenerateSupportData",
        "OnSAMLLogin",
    }
)


@dataclass(frozen=True)
class _Shape:
    results: tuple[FieldDescriptor, ...]
    has_error: bool
    # The index of the argument a list result stands for (MessagesWillBeConsumed's posts).
    replaced_arg: int | None


@functools.cache
def _shape(name: str) -> _Shape | None:
    from . import _contract

    try:
        method = _contract.hooks_service().methods_by_name.get(name)
    except RuntimeError:
        return None
    if method is None or method.client_streaming or method.server_streaming:
        return None
    request, response = method.input_type, method.output_type
    err = response.fields_by_number.get(1)
    results = tuple(payload_fields(response))
    replaced: int | None = None
    if len(results) == 1 and _is_list(results[0]) and results[0].message_type is not None:
        kind = results[0].message_type.full_name
        for i, arg in enumerate(payload_fields(request)):
            arg_kind = arg.message_type.full_name if arg.message_type is not None else None
            if _is_list(arg) and arg_kind == kind:
                replaced = i
                break
    has_error = name in ERROR_HOOKS and err is not None and err.message_type is not None
    return _Shape(results, has_error, replaced)


def _is_list(field: FieldDescriptor) -> bool:
    mt = field.message_type
    return field.is_repeated and not (mt is not None and mt.GetOptions().map_entry)


def _error_like(value: Any) -> bool:
    return value is None or isinstance(value, str | BaseException)


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _fail(hook: str, err: Any) -> None:
    """Raise the error a handler returned (an exception, or a non-empty message)."""
    if isinstance(err, BaseException):
        raise err
    if err:
        raise PluginAPIError(
            str(err), id=f"plugin.{_snake(hook)}.error", status_code=500, where=hook
        )


def _to_proto(value: Any) -> Any:
    convert = getattr(value, "to_proto", None)
    if callable(convert) and not isinstance(value, type):
        return convert()
    return value


def hook_result(name: HookName | str, value: Any, args: tuple[Any, ...]) -> Any:
    """``value`` returned by the handler of hook ``name``, in the shape our dispatch takes."""
    shape = _shape(str(name))
    if shape is None:
        return value
    value = tuple(_to_proto(v) for v in value) if isinstance(value, tuple) else _to_proto(value)
    n = len(shape.results)
    if name == HookName.OnSharedChannelsPing and not isinstance(value, bool):
        return True if value is None else bool(value)
    if (
        shape.has_error
        and isinstance(value, tuple)
        and len(value) == n + 1
        and _error_like(value[-1])
    ):
        _fail(str(name), value[-1])
        rest = value[:-1]
        value = None if n == 0 else rest[0] if n == 1 else rest
    if shape.has_error and n == 0 and isinstance(value, str | BaseException):
        _fail(str(name), value)
        return None
    if (
        n == 2
        and isinstance(value, str)
        and shape.results[0].message_type is not None
        and shape.results[1].type == FieldDescriptor.TYPE_STRING
    ):
        return None, value
    if value is None and shape.replaced_arg is not None and shape.replaced_arg < len(args):
        return args[shape.replaced_arg]
    return value


# --- HTTP handlers ------------------------------------------------------------------------


def _positional_count(fn: Callable[..., Any]) -> int | None:
    """How many positional arguments ``fn`` takes (None when it takes any number)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for p in params:
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            return None
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def write_result(writer: Any, result: Any) -> None:
    """Answer with a dict ``{"status_code", "headers", "body"}`` (the other SDK's guide)."""
    if result is None:
        return
    if not isinstance(result, Mapping):
        raise TypeError(
            "an HTTP handler taking (context, request) returns a dict with status_code, "
            f"headers and body, got {type(result).__name__}"
        )
    headers = result.get("headers") or {}
    for key, value in headers.items():
        writer.headers[key] = [value] if isinstance(value, str) else list(value)
    status = result.get("status_code", 200)
    writer.write_header(int(status) if status is not None else 200)
    body = result.get("body")
    if body:
        writer.write(body)


async def _prefetch(request: Any) -> None:
    reader = getattr(request, "body_reader", None)
    if reader is None:
        return
    length = request.content_length
    if 0 <= length <= PREFETCH_LIMIT:
        await reader.prefetch(PREFETCH_LIMIT)


@functools.lru_cache(maxsize=256)
def _http_kind(fn: Callable[..., Any], bound: bool) -> tuple[bool, bool, bool]:
    """(the SDK's own, an async def, the guide's two-argument form) for a handler function."""
    own = getattr(fn, "__module__", "").startswith("mattermost_plugin")
    count = _positional_count(fn)
    if bound and count is not None:
        count -= 1  # self
    return own, inspect.iscoroutinefunction(fn), count == 2


def http_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` ready for the dispatcher's ``(context, writer, request)`` call."""
    fn = getattr(handler, "__func__", None)
    try:
        own, is_async, dict_form = _http_kind(fn or handler, fn is not None)
    except TypeError:  # an unhashable callable object
        own, is_async, dict_form = False, inspect.iscoroutinefunction(handler), False
    if own:
        return handler  # the SDK's own (ASGI, WSGI): never adapted
    if is_async:

        @functools.wraps(handler)
        async def run_async(context: Any, writer: Any, request: Any) -> Any:
            await _prefetch(request)
            if dict_form:
                write_result(writer, await handler(context, request))
                return None
            return await handler(context, writer, request)

        return run_async
    if not dict_form:
        return handler

    @functools.wraps(handler)
    def run_sync(context: Any, writer: Any, request: Any) -> None:
        write_result(writer, handler(context, request))

    return run_sync
