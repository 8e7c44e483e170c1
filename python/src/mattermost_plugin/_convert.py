"""Generic conversion between Python values and protobuf fields.

The client and the hook dispatcher never know a method by name: they walk the request
and response descriptors. These helpers put a Python value into a field and take one out,
following one set of rules everywhere:

* scalars and enums are plain Python values; an unset ``optional`` scalar reads as None;
* a message field reads as the message, or None when unset; it accepts a message of the
  same type, or a dict (parsed with protobuf's JSON rules);
* ``google.protobuf.Struct``/``Value`` read as dict/plain values (whole numbers come back
  as ``int``, since Go's integers travel as doubles inside a Struct) and accept them;
* ``google.protobuf.Timestamp`` also accepts a ``datetime``;
* repeated fields read as lists, maps as dicts.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

__all__ = [
    "get_field",
    "payload_fields",
    "python_to_value",
    "set_field",
    "struct_to_python",
    "value_to_python",
]

_STRUCT = "google.protobuf.Struct"
_VALUE = "google.protobuf.Value"
_TIMESTAMP = "google.protobuf.Timestamp"
# Doubles hold integers exactly up to 2**53; beyond that a float is the honest answer.
_MAX_EXACT = 2**53


def payload_fields(descriptor: Descriptor) -> list[FieldDescriptor]:
    """The fields after the envelope (number 1: context or error), in number order."""
    return sorted((f for f in descriptor.fields if f.number >= 2), key=lambda f: f.number)


def value_to_python(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind is None or kind == "null_value":
        return None
    if kind == "number_value":
        n = value.number_value
        if n.is_integer() and abs(n) <= _MAX_EXACT:
            return int(n)
        return n
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        return struct_to_python(value.struct_value)
    return [value_to_python(v) for v in value.list_value.values]


def struct_to_python(struct: struct_pb2.Struct) -> dict[str, Any]:
    return {k: value_to_python(v) for k, v in struct.fields.items()}


def python_to_value(obj: Any, out: struct_pb2.Value | None = None) -> struct_pb2.Value:
    value = struct_pb2.Value() if out is None else out
    if obj is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(obj, bool):  # before int: bool is an int subclass
        value.bool_value = obj
    elif isinstance(obj, int | float):
        value.number_value = obj
    elif isinstance(obj, str):
        value.string_value = obj
    elif isinstance(obj, Mapping):
        value.struct_value.Clear()
        _fill_struct(value.struct_value, obj)
    elif isinstance(obj, list | tuple):
        value.list_value.Clear()
        for item in obj:
            python_to_value(item, value.list_value.values.add())
    else:
        raise TypeError(f"cannot store {type(obj).__name__} in a google.protobuf.Value")
    return value


def _fill_struct(struct: struct_pb2.Struct, obj: Mapping[Any, Any]) -> None:
    for k, v in obj.items():
        if not isinstance(k, str):
            raise TypeError(f"Struct keys must be str, got {type(k).__name__}")
        python_to_value(v, struct.fields[k])


def _store_message(target: Message, value: Any, where: str) -> None:
    full_name = target.DESCRIPTOR.full_name
    if not isinstance(value, Message | Mapping) and callable(getattr(value, "to_proto", None)):
        value = value.to_proto()  # a wrapper dataclass (mattermost_plugin.wrappers)
    if isinstance(value, Message):
        if value.DESCRIPTOR.full_name != full_name:
            raise TypeError(f"{where} expects {full_name}, got {value.DESCRIPTOR.full_name}")
        target.CopyFrom(value)
    elif full_name == _STRUCT and isinstance(value, Mapping):
        target.Clear()
        _fill_struct(target, value)  # type: ignore[arg-type]
    elif full_name == _VALUE:
        python_to_value(value, target)  # type: ignore[arg-type]
    elif full_name == _TIMESTAMP and isinstance(value, datetime.datetime):
        ts: timestamp_pb2.Timestamp = target  # type: ignore[assignment]
        ts.FromDatetime(value)
    elif isinstance(value, Mapping):
        # Imported here: a plugin that never passes a dict for a message does not load it
        # (~1 ms of every start-up).
        from google.protobuf import json_format

        try:
            json_format.ParseDict(dict(value), target)
        except json_format.ParseError as e:
            raise TypeError(f"{where}: {e}") from None
    else:
        raise TypeError(f"{where} expects {full_name}, got {type(value).__name__}")


def _is_map(field: FieldDescriptor) -> bool:
    mt = field.message_type
    return bool(field.is_repeated and mt is not None and mt.GetOptions().map_entry)


def set_field(msg: Message, field: FieldDescriptor, value: Any) -> None:
    """Store ``value`` into ``msg.<field>``; None leaves the field unset."""
    if value is None:
        return
    where = f"{msg.DESCRIPTOR.name}.{field.name}"
    current = getattr(msg, field.name)
    if _is_map(field):
        if not isinstance(value, Mapping):
            raise TypeError(f"{where} expects a mapping, got {type(value).__name__}")
        value_field = field.message_type.fields_by_name["value"]  # type: ignore[union-attr]
        for k, v in value.items():
            if value_field.message_type is not None:
                _store_message(current[k], v, f"{where}[{k!r}]")
            else:
                current[k] = v
        return
    if field.is_repeated:
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            raise TypeError(f"{where} expects a list, got {type(value).__name__}")
        if field.message_type is not None:
            for item in value:
                _store_message(current.add(), item, f"{where}[]")
        else:
            current.extend(value)
        return
    if field.message_type is not None:
        _store_message(current, value, where)
        return
    try:
        setattr(msg, field.name, value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{where}: {e}") from None


def get_field(msg: Message, field: FieldDescriptor) -> Any:
    """Read ``msg.<field>`` as the Python value described in the module docstring."""
    return field_getter(field)(msg)


def field_getter(field: FieldDescriptor) -> Callable[[Message], Any]:
    """``get_field`` for one field, decided once: the hook dispatch reads every request's
    arguments with these."""
    getter = _GETTERS.get(field)
    if getter is None:
        getter = _GETTERS[field] = _make_getter(field)
    return getter


_GETTERS: dict[FieldDescriptor, Callable[[Message], Any]] = {}


def _make_getter(field: FieldDescriptor) -> Callable[[Message], Any]:
    name = field.name
    if _is_map(field):
        return lambda msg: dict(getattr(msg, name))
    if field.is_repeated:
        return lambda msg: list(getattr(msg, name))
    if field.message_type is not None:
        full_name = field.message_type.full_name
        convert: Callable[[Any], Any] | None = None
        if full_name == _STRUCT:
            convert = struct_to_python
        elif full_name == _VALUE:
            convert = value_to_python
        if convert is None:
            return lambda msg: getattr(msg, name) if msg.HasField(name) else None
        to_python = convert
        return lambda msg: to_python(getattr(msg, name)) if msg.HasField(name) else None
    if field.has_presence:
        return lambda msg: getattr(msg, name) if msg.HasField(name) else None
    return lambda msg: getattr(msg, name)
