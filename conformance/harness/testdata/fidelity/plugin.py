"""The conformance harness's fidelity plugin (`harness -fidelity`).

Nothing here names an API method or a hook: everything is walked from the gRPC descriptors.

* On activation it calls every unary ``PluginAPI`` method once, with a request filled by the
  fidelity value rule, and reports ``{sent, got, error}`` (the flattened request it sent and
  response it got) through ``KVSet("mmplug-fidelity/api/<Method>")``.
* Every unary hook has a handler that reports the flattened arguments it received
  (``KVSet("mmplug-fidelity/hook/<Hook>")``) and returns results filled by the rule.
* Error direction: after the sweep it fetches the plan
  (``KVGet("mmplug-fidelity/plan/api-errors")``: the methods with an error result, which the
  harness now answers with an AppError) and calls each through the SDK's typed client method
  (``self.api.<snake_name>``), reporting the ``PluginAPIError`` it caught through
  ``KVSet("mmplug-fidelity/api-error/<Method>")``. Every hook handler first asks
  ``KVGet("mmplug-fidelity/mode/hook/<Hook>")``; on ``raise`` it raises the
  ``PluginAPIError`` of the error rule (``rule_error``) instead of answering.

The Go harness is the judge: it compares the Go values it received and the flattened values
reported here with its own reflection-built fill of the Go types. The value rule and the
flattened form are defined on the wire contract; conformance/harness/fidelity_fill.go states
them and this module implements the same rule on protobuf descriptors.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from mattermost_plugin import Plugin, PluginAPIError, hook
from mattermost_plugin._contract import api_service, hooks_service
from mattermost_plugin._convert import get_field, payload_fields, set_field
from mattermost_plugin._unary import TransportError

# gRPC's status names by number, for the report's error text (as grpc.RpcError shows them).
_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}

REPORT_PREFIX = "mmplug-fidelity/"
# Struct levels filled below a request/response message; must equal fidelityDepth in Go.
DEPTH = 5

TIMESTAMP = "google.protobuf.Timestamp"
STRUCT = "google.protobuf.Struct"
VALUE = "google.protobuf.Value"
EMPTY = "google.protobuf.Empty"
APP_ERROR = "mattermost.plugin.v1.AppError"
# model.AppError's exported fields are 1..7; `kind` and `code` (16, 17) describe other Go error
# types (plugin.ErrorString, pq.Error), which the Go fill never uses.
APP_ERROR_FIELDS = range(1, 8)

# Real HTTP statuses the error rule picks from (Go: errorStatuses), so the SDK's subclasses are
# exercised.
ERROR_STATUSES = (400, 401, 403, 404, 409, 413, 429, 500, 501, 502, 503, 504)
ERROR_PLAN_KEY = REPORT_PREFIX + "plan/api-errors"
HOOK_MODE_PREFIX = REPORT_PREFIX + "mode/hook/"
HOOK_MODE_RAISE = b"raise"

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1

F = FieldDescriptor
_INT64 = {F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64}
_UINT64 = {F.TYPE_UINT64, F.TYPE_FIXED64}
_INT32 = {F.TYPE_INT32, F.TYPE_SINT32, F.TYPE_SFIXED32, F.TYPE_UINT32, F.TYPE_FIXED32}


def path_hash(path: str) -> int:
    """FNV-1a 64 of the path's UTF-8 bytes (Go: hash/fnv New64a)."""
    h = _FNV_OFFSET
    for b in path.encode():
        h = ((h ^ b) * _FNV_PRIME) & _MASK64
    return h


def any_shape(path: str) -> dict[str, Any]:
    """The fixed interface{} shape (Go: fillAny). Its integers become doubles in the Struct,
    as Go's do on their way here."""
    return {
        "s": path + "{s}",
        "b": True,
        "f": float(path_hash(path) % 1000) + 0.5,
        "i": 42,
        "n": (1 << 53) + 1,
        "l": [path + "{l}[0]", True, -7],
        "m": {"s": path + "{m}{s}", "n": -(1 << 53) - 3},
    }


def scalar(field: FieldDescriptor, path: str) -> Any:
    t = field.type
    h = path_hash(path)
    if t == F.TYPE_STRING:
        return path
    if t == F.TYPE_BYTES:
        return path.encode()
    if t == F.TYPE_BOOL:
        return True
    if t in _INT64:
        return h % (1 << 62) + 1
    if t in _UINT64:
        return h | (1 << 63)
    if t in _INT32:
        # An int32/uint32 may stand for a Go int8/uint8: stay within 1..127.
        return h % 127 + 1
    if t == F.TYPE_DOUBLE:
        return float(h % 1_000_000) + 0.5
    if t == F.TYPE_FLOAT:
        return float(h % 1000) + 0.25
    raise TypeError(f"{path}: no fill rule for proto type {t}")


def is_map(field: FieldDescriptor) -> bool:
    mt = field.message_type
    return bool(field.is_repeated and mt is not None and mt.GetOptions().map_entry)


def is_wrapper(d: Descriptor) -> bool:
    # <Elem>List / <K><V>Map: one repeated or map field `values` = 1, no Go struct of its own.
    return len(d.fields) == 1 and d.fields[0].name == "values" and d.fields[0].number == 1


def is_cut(d: Descriptor, depth: int) -> bool:
    """Whether a message of type d below `depth` is past the recursion limit."""
    if d.full_name in (TIMESTAMP, STRUCT, VALUE, EMPTY):
        return False
    if is_wrapper(d):
        inner = d.fields[0]
        if is_map(inner):
            inner = inner.message_type.fields_by_name["value"]
        return inner.message_type is not None and is_cut(inner.message_type, depth)
    return depth + 1 > DEPTH


def fill_message(m: Message, path: str, depth: int) -> None:
    d = m.DESCRIPTOR
    name = d.full_name
    if name == TIMESTAMP:
        h = path_hash(path)
        m.seconds = 1_600_000_000 + h % 100_000_000  # type: ignore[attr-defined]
        m.nanos = ((h >> 32) % 1_000_000) * 1000  # type: ignore[attr-defined]
    elif name == STRUCT:
        m.update(any_shape(path))  # type: ignore[attr-defined]
    elif name == VALUE:
        m.struct_value.update(any_shape(path))  # type: ignore[attr-defined]
    elif name == EMPTY:
        m.SetInParent()
    elif is_wrapper(d):
        fill_field(m, d.fields[0], path + ".1", depth)
    else:
        m.SetInParent()
        for f in d.fields:
            if name == APP_ERROR and f.number not in APP_ERROR_FIELDS:
                continue
            fill_field(m, f, f"{path}.{f.number}", depth + 1)


def fill_field(m: Message, f: FieldDescriptor, path: str, depth: int) -> None:
    value = getattr(m, f.name)
    if is_map(f):
        vf = f.message_type.fields_by_name["value"]
        if f.message_type.fields_by_name["key"].type != F.TYPE_STRING:
            raise TypeError(f"{path}: map key is not a string")
        if vf.message_type is not None and is_cut(vf.message_type, depth):
            return
        for i in range(2):
            k = f"k{i}"
            kp = path + "{" + k + "}"
            if vf.message_type is not None:
                fill_message(value[k], kp, depth)
            else:
                value[k] = scalar(vf, kp)
        return
    if f.is_repeated:
        if f.message_type is not None:
            if is_cut(f.message_type, depth):
                return
            for i in range(2):
                fill_message(value.add(), f"{path}[{i}]", depth)
        else:
            value.extend(scalar(f, f"{path}[{i}]") for i in range(2))
        return
    if f.message_type is not None:
        if not is_cut(f.message_type, depth):
            fill_message(value, path, depth)
        return
    if f.enum_type is not None:
        return  # no Go field is an enum; only AppError.kind is, skipped above
    setattr(m, f.name, scalar(f, path))


def fill_payload(m: Message, root: str) -> None:
    """Fill a request/response message's fields from number 2 (1 is the envelope)."""
    for f in payload_fields(m.DESCRIPTOR):
        fill_field(m, f, f"{root}.{f.number}", 0)


def fmt_float(x: float) -> str:
    # Go: strconv.FormatFloat(x, 'f', -1, 64) for the magnitudes the rule uses.
    if x.is_integer() and abs(x) < 1e21:
        return str(int(x))
    return repr(x)


def scalar_leaf(f: FieldDescriptor, x: Any, path: str, out: dict[str, str], present: bool) -> None:
    if not x and not present:
        return
    t = f.type
    if t == F.TYPE_STRING:
        out[path] = "s:" + x
    elif t == F.TYPE_BYTES:
        out[path] = "x:" + bytes(x).hex()
    elif t == F.TYPE_BOOL:
        out[path] = "b:" + ("true" if x else "false")
    elif t in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        out[path] = "f:" + fmt_float(float(x))
    else:
        out[path] = f"n:{int(x)}"


def flatten_value(v: Message, path: str, out: dict[str, str]) -> None:
    kind = v.WhichOneof("kind")
    if kind is None or kind == "null_value":
        out[path] = "null"
    elif kind == "number_value":
        out[path] = "f:" + fmt_float(v.number_value)  # type: ignore[attr-defined]
    elif kind == "string_value":
        out[path] = "s:" + v.string_value  # type: ignore[attr-defined]
    elif kind == "bool_value":
        out[path] = "b:" + ("true" if v.bool_value else "false")  # type: ignore[attr-defined]
    elif kind == "struct_value":
        for k, e in v.struct_value.fields.items():  # type: ignore[attr-defined]
            flatten_value(e, path + "{" + k + "}", out)
    else:
        for i, e in enumerate(v.list_value.values):  # type: ignore[attr-defined]
            flatten_value(e, f"{path}[{i}]", out)


def flatten_message(m: Message, path: str, out: dict[str, str]) -> None:
    name = m.DESCRIPTOR.full_name
    if name == TIMESTAMP:
        if m.seconds or m.nanos:  # type: ignore[attr-defined]
            out[path] = f"t:{m.seconds}.{m.nanos:09d}"  # type: ignore[attr-defined]
        return
    if name == STRUCT:
        for k, e in m.fields.items():  # type: ignore[attr-defined]
            flatten_value(e, path + "{" + k + "}", out)
        return
    if name == VALUE:
        flatten_value(m, path, out)
        return
    for f in m.DESCRIPTOR.fields:
        flatten_field(m, f, f"{path}.{f.number}", out)


def flatten_field(m: Message, f: FieldDescriptor, path: str, out: dict[str, str]) -> None:
    value = getattr(m, f.name)
    if is_map(f):
        vf = f.message_type.fields_by_name["value"]
        for k in sorted(value):
            kp = path + "{" + str(k) + "}"
            if vf.message_type is not None:
                flatten_message(value[k], kp, out)
            else:
                scalar_leaf(vf, value[k], kp, out, present=False)
    elif f.is_repeated:
        for i, x in enumerate(value):
            if f.message_type is not None:
                flatten_message(x, f"{path}[{i}]", out)
            else:
                scalar_leaf(f, x, f"{path}[{i}]", out, present=False)
    elif f.message_type is not None:
        if m.HasField(f.name):
            flatten_message(value, path, out)
    else:
        present = f.has_presence and m.HasField(f.name)
        scalar_leaf(f, value, path, out, present=present)


def flatten_payload(m: Message, root: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in payload_fields(m.DESCRIPTOR):
        flatten_field(m, f, f"{root}.{f.number}", out)
    return out


def app_error_text(resp: Message) -> str:
    fields = resp.DESCRIPTOR.fields_by_number
    err_field = fields.get(1)
    if err_field is None or err_field.message_type is None or not resp.HasField(err_field.name):
        return ""
    err = getattr(resp, err_field.name)
    if not (err.id or err.message):
        return ""
    return f"AppError id={err.id!r} message={err.message!r} status={err.status_code}"


def report(
    plugin: Plugin,
    key: str,
    sent: dict[str, str],
    got: dict[str, str],
    error: str,
    sdk_error: str = "",
    raised: dict[str, Any] | None = None,
) -> None:
    body = json.dumps(
        {"sent": sent, "got": got, "error": error, "sdk_error": sdk_error, "raised": raised},
        sort_keys=True,
    ).encode()
    plugin.api.kv_set(REPORT_PREFIX + key, body)


def rule_error(prefix: str) -> PluginAPIError:
    """The error rule (Go: ruleAppError): every field set, each string naming its field."""
    return PluginAPIError(
        prefix + ".message",
        id=prefix + ".id",
        detailed_error=prefix + ".detailed_error",
        request_id=prefix + ".request_id",
        status_code=ERROR_STATUSES[path_hash(prefix) % len(ERROR_STATUSES)],
        where=prefix + ".where",
        skip_translation=True,
    )


def describe_error(e: PluginAPIError) -> dict[str, Any]:
    """Every field of a caught PluginAPIError, with its class and bases (most derived first)."""
    return {
        "type": type(e).__name__,
        "bases": [c.__name__ for c in type(e).__mro__],
        "id": e.id,
        "message": e.message,
        "detailed_error": e.detailed_error,
        "request_id": e.request_id,
        "status_code": e.status_code,
        "where": e.where,
        "skip_translation": e.skip_translation,
        "kind": int(e.kind),
        "code": e.code,
        "method": e.method,
        "text": str(e),
    }


def sdk_error_of(plugin: Plugin, spec: Any, request: Message) -> str:
    """What the SDK's own method raises, called with the same arguments, when the server lacks
    the method. The harness (against an older server module) expects NotImplementedAPIError,
    status 501.
    """
    args = tuple(get_field(request, f) for f in spec.args)
    try:
        getattr(plugin.api, spec.py_name)(*args)
    except PluginAPIError as e:
        return f"{type(e).__name__} status={e.status_code}: {e}"
    except Exception as e:
        return f"not a PluginAPIError: {type(e).__name__}: {e}"
    return "no error raised"


def api_sweep(plugin: Plugin) -> None:
    """Call every unary PluginAPI method once and report what went and came back."""
    api: Any = plugin.api
    specs = {s.rpc_name: s for s in type(api)._specs.values()}
    for method in api_service().methods:
        if method.client_streaming or method.server_streaming:
            continue  # byte streams: not part of this mechanism (the harness says so)
        spec = specs[method.name]
        request = spec.build_request((), {}, plugin.plugin_id)
        sent: dict[str, str] = {}
        got: dict[str, str] = {}
        error = ""
        sdk_error = ""
        try:
            fill_payload(request, f"{method.name}.in")
            sent = flatten_payload(request, f"{method.name}.in")
            # The client's carrier (the lane, or gRPC), past its unpacking: the response
            # exactly as it came, AppError included.
            raw = api._unary.call(spec.path, request.SerializeToString())
            response = spec.response_cls.FromString(raw)
            got = flatten_payload(response, f"{method.name}.out")
            error = app_error_text(response)
        except TransportError as e:
            error = f"gRPC StatusCode.{_STATUS_NAMES.get(e.code, e.code)}: {e.details}"
            if e.code == grpc.StatusCode.UNIMPLEMENTED.value[0]:
                sdk_error = sdk_error_of(plugin, spec, request)
        except Exception as e:  # a fill bug must show up as this method's failure
            error = f"{type(e).__name__}: {e}"
        report(plugin, "api/" + method.name, sent, got, error, sdk_error)


def api_error_sweep(plugin: Plugin) -> None:
    """Call every planned method again through the SDK's typed client method; the harness
    answers each with an AppError, and the report carries what the SDK raised."""
    api: Any = plugin.api
    plan = json.loads(api.kv_get(ERROR_PLAN_KEY))
    specs = {s.rpc_name: s for s in type(api)._specs.values()}
    for name in plan:
        error = ""
        raised: dict[str, Any] | None = None
        spec = specs.get(name)
        if spec is None:
            error = f"the contract has no API method {name}"
        else:
            try:
                request = spec.build_request((), {}, plugin.plugin_id)
                fill_payload(request, f"{name}.in")
                args = tuple(get_field(request, f) for f in spec.args)
                getattr(api, spec.py_name)(*args)
                error = "the typed method returned instead of raising"
            except PluginAPIError as e:
                raised = describe_error(e)
            except Exception as e:  # anything else is this method's failure, reported
                error = f"not a PluginAPIError: {type(e).__name__}: {e}"
        report(plugin, "api-error/" + name, {}, {}, error, raised=raised)


def make_hook_handler(method: MethodDescriptor) -> Any:
    name = method.name
    request_cls = GetMessageClass(method.input_type)
    response_cls = GetMessageClass(method.output_type)
    arg_fields = payload_fields(method.input_type)
    result_fields = payload_fields(method.output_type)

    def handler(self: Plugin, *args: Any) -> Any:
        # The harness drives each hook with an error result a second time, telling it to raise.
        if self.api.kv_get(HOOK_MODE_PREFIX + name) == HOOK_MODE_RAISE:
            raise rule_error("hook-error." + name)
        # Rebuild the request from the SDK's converted arguments (what a handler sees).
        request = request_cls()
        got: dict[str, str] = {}
        sent: dict[str, str] = {}
        error = ""
        response = response_cls()
        try:
            for f, v in zip(arg_fields, args, strict=True):
                set_field(request, f, v)
            got = flatten_payload(request, f"{name}.in")
            fill_payload(response, f"{name}.out")
            sent = flatten_payload(response, f"{name}.out")
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
        report(self, "hook/" + name, sent, got, error)
        values = tuple(get_field(response, f) for f in result_fields)
        return values or None

    handler.__name__ = f"handle_{name}"
    return handler


def on_activate(self: Plugin) -> None:
    api_sweep(self)
    api_error_sweep(self)


def build_plugin_class() -> type[Plugin]:
    ns: dict[str, Any] = {"on_activate": hook("OnActivate")(on_activate)}
    for method in hooks_service().methods:
        if method.client_streaming or method.server_streaming:
            continue
        if method.name in ("Implemented", "OnActivate"):
            continue
        ns[f"handle_{method.name}"] = hook(method.name)(make_hook_handler(method))
    return type("Fidelity", (Plugin,), ns)


Fidelity = build_plugin_class()
