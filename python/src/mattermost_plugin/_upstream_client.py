"""The API clients take the calls of Mattermost's own Python SDK too (docs/upstream.md).

Both SDKs name the methods the same way (the Go method in snake_case) and take the Go
arguments in order, so most calls need nothing. That SDK also lets callers:

* leave out paging and similar trailing arguments (``page`` 0, ``per_page`` 60 or, for
  ``kv_list``, 100; ``requestor_id``, ``parent_id``, ``sort_by``, ... empty);
* pass an options struct's fields as keywords (``get_users(in_team_id=..., per_page=10)``,
  ``search_users("term", team_id=...)``, ``create_post(channel_id=..., message=...)``), or
  leave the struct out;
* name arguments its way (``user_ids`` for our ``user_i_ds``, ``username`` for ``name``,
  ``message`` for ``msg``), and pass ``log_*`` fields as keywords (``log_info("x", user="u")``);
* pass its wrapper dataclasses (``to_proto()``) where messages go (``_convert``);
* build a client itself, ``PluginAPIClient()`` (or with a ``target``), ``connect()``,
  ``close()``, ``with``/``async with``, ``target``, ``connected``: inside a running plugin it
  shares the plugin's own connection to the bridge.

``install`` wraps every method of the generated classes once; a call made our way (every
argument given, positionally or by our names) goes straight to the original method.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor

__all__ = ["install", "register_running"]

# Trailing arguments that may be left out, and what they then are (None: the zero value).
_OPTIONAL = {
    "page": None,
    "per_page": 60,
    "sort_by": None,
    "requestor_id": None,
    "parent_id": None,
    "include_deleted": None,
    "as_user_id": None,
    "replace": None,
    "key_value_pairs": None,
    "broadcast": None,
}
# Per method, where the other SDK's default differs.
_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {"kv_list": {"per_page": 100}}
# Defaults of option struct fields the other SDK sets when they are passed as keywords.
_STRUCT_DEFAULTS: dict[str, dict[str, Any]] = {
    "get_users": {"per_page": 60},
    "search_users": {"limit": 100},
}
# Its argument names that no spelling rule maps onto ours.
_ALIASES: dict[str, dict[str, str]] = {
    "get_user_by_username": {"username": "name"},
    "get_plugin_status": {"plugin_id": "id"},
    "install_plugin": {"data": "file", "force": "replace"},
    **{f"log_{level}": {"message": "msg"} for level in ("debug", "info", "warn", "error")},
}
# Arguments it takes that ours does not need (load_plugin_configuration's Go ``dest``).
_IGNORED: dict[str, set[str]] = {"load_plugin_configuration": {"dest"}}
_LOG_METHODS = {f"log_{level}" for level in ("debug", "info", "warn", "error")}
_WELL_KNOWN = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.Timestamp"}

# The running plugin's own clients (sync, async), for clients its code builds itself.
_running: list[Any] = [None, None]


def register_running(api: Any, aapi: Any) -> None:
    """Record the clients the runtime made for the plugin (``Plugin.create``)."""
    if api is not None:
        _running[0] = api
    if aapi is not None:
        _running[1] = aapi


def _norm(name: str) -> str:
    return name.replace("_", "").lower()


class _Shape:
    """One method's parameters and how the other SDK's arguments map onto them."""

    def __init__(self, name: str, fn: Callable[..., Any], spec: Any) -> None:
        self.name = name
        params = list(inspect.signature(fn).parameters.values())[1:]
        self.params = [p.name for p in params]
        self.own_defaults = {
            p.name: p.default for p in params if p.default is not inspect.Parameter.empty
        }
        self.by_norm = {_norm(p): p for p in self.params}
        self.aliases = _ALIASES.get(name, {})
        self.ignored = _IGNORED.get(name, set())
        self.defaults = {**_OPTIONAL, **_METHOD_DEFAULTS.get(name, {})}
        # The single options-struct parameter whose fields may come as keywords.
        self.struct: str | None = None
        self.struct_fields: dict[str, str] = {}
        fields = list(getattr(spec, "args", ()) or ())
        if fields and [f.name for f in fields] == self.params:
            structs = [
                f
                for f in fields
                if f.message_type is not None
                and not f.is_repeated
                and f.message_type.full_name not in _WELL_KNOWN
            ]
            if len(structs) == 1:
                self.struct = structs[0].name
                self.struct_fields = {
                    _norm(sf.name): sf.name for sf in structs[0].message_type.fields
                }
                self.struct_kind: FieldDescriptor = structs[0]

    def target(self, key: str) -> str | None:
        if key in self.params:
            return key
        alias = self.aliases.get(key)
        if alias is not None:
            return alias
        return self.by_norm.get(_norm(key))

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """The arguments in our order, from a call made either SDK's way."""
        args = args[: len(self.params) + len(self.ignored)]
        if self.ignored and len(args) > len(self.params):
            args = args[: len(self.params)]
        values: dict[str, Any] = dict(zip(self.params, args, strict=False))
        extra: dict[str, Any] = {}
        for key, value in kwargs.items():
            if key in self.ignored:
                continue
            target = self.target(key)
            if target is None:
                extra[key] = value
                continue
            if target in values:
                raise TypeError(f"{self.name}() got multiple values for argument {key!r}")
            values[target] = value
        if extra:
            self._place_extra(values, extra)
        if self.struct is not None and self.struct not in values:
            values[self.struct] = self._struct_value({})
        out = []
        for p in self.params:
            if p in values:
                out.append(values[p])
            elif p in self.own_defaults:
                out.append(self.own_defaults[p])
            elif p in self.defaults or p == self.struct:
                out.append(self.defaults.get(p))
            else:
                raise TypeError(f"{self.name}() missing required argument {p!r}")
        return out

    def _struct_value(self, given: dict[str, Any]) -> Any:
        defaults = _STRUCT_DEFAULTS.get(self.name)
        if not given and not defaults:
            return None
        return {**(defaults or {}), **given}

    def _place_extra(self, values: dict[str, Any], extra: dict[str, Any]) -> None:
        if self.name in _LOG_METHODS:
            pairs = list(values.get("key_value_pairs") or ())
            for key, value in extra.items():
                pairs += [key, value]
            values["key_value_pairs"] = pairs
            return
        if self.struct is not None and self.struct not in values:
            fields: dict[str, Any] = {}
            unknown = []
            for key, value in extra.items():
                field = self.struct_fields.get(_norm(key))
                if field is None:
                    unknown.append(key)
                else:
                    fields[field] = value
            if not unknown:
                values[self.struct] = self._struct_value(fields)
                return
            extra = {k: extra[k] for k in unknown}
        names = ", ".join(self.params) or "none"
        raise TypeError(
            f"{self.name}() got unexpected keyword argument(s) {', '.join(map(repr, extra))} "
            f"(it takes {names}"
            + (f"; or the fields of {self.struct} as keywords" if self.struct else "")
            + ")"
        )


def _wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    count = len(inspect.signature(fn).parameters) - 1
    shapes: list[_Shape] = []  # built on the first call that needs it (loads the contract)

    def bind(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if not shapes:
            cls = type(client)
            cls._bind_contract()
            spec = next((s for s in cls._specs.values() if s.py_name == name), None)
            shapes.append(_Shape(name, fn, spec))
        return tuple(shapes[0].bind(args, kwargs))

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def amethod(self: Any, *args: Any, **kwargs: Any) -> Any:
            if kwargs or len(args) != count:
                args = bind(self, args, kwargs)
            _check_connected(self)
            return await fn(self, *args)

        return amethod

    @functools.wraps(fn)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) != count:
            args = bind(self, args, kwargs)
        _check_connected(self)
        return fn(self, *args)

    return method


def _check_connected(client: Any) -> None:
    if getattr(client, "_upstream_unconnected", False):
        raise RuntimeError(
            "Client is not connected. Use a 'with' statement or call connect() first."
        )


# --- building a client the other SDK's way --------------------------------------------------


def _compat_init(original: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        upstream = (
            len(args) <= 1
            and (not args or args[0] is None or isinstance(args[0], str))
            and not set(kwargs) - {"target", "credentials", "options"}
        )
        if not upstream:  # ours: (channel, *, token, plugin_id)
            original(self, *args, **kwargs)
            return
        target = args[0] if args else kwargs.get("target")
        self._upstream_target = target
        self._upstream_unconnected = True
        self._callables = {}

    return __init__


def _running_for(client: Any) -> Any:
    running = _running[1] if inspect.iscoroutinefunction(type(client).close) else _running[0]
    if running is None:
        raise RuntimeError(
            f"{type(client).__name__}() reaches the Mattermost API through the running "
            "plugin's connection to the mmplug bridge, and no plugin is running in this "
            "process (use self.api in a plugin, and mattermost_plugin.testing in tests)"
        )
    target = getattr(client, "_upstream_target", None)
    config = _current_config()
    if target and config is not None and target not in (config.api_target, config.api_socket):
        raise RuntimeError(
            f"{type(client).__name__}(target={target!r}): under mmplug the API is reached "
            f"through the bridge ({config.api_target}), not over TCP; build the client "
            "without a target"
        )
    return running


def _current_config() -> Any:
    from .runtime import current_config

    return current_config()


def _adopt(client: Any, running: Any) -> None:
    state = {k: v for k, v in vars(running).items() if k != "_callables"}
    client.__dict__.update(state)
    client._callables = {}
    client._upstream_unconnected = False
    client._upstream_shared = True


def _connect(self: Any) -> None:
    """Connect (the other SDK's lifecycle); a client of ours is connected already."""
    if not getattr(self, "_upstream_unconnected", False):
        raise RuntimeError("Client is already connected")
    _adopt(self, _running_for(self))


async def _aconnect(self: Any) -> None:
    _connect(self)


def _close(original: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def aclose(self: Any) -> None:
            if getattr(self, "_upstream_unconnected", False):
                return
            if getattr(self, "_upstream_shared", False):
                # The plugin's own connection stays open: only this client lets go of it.
                self._upstream_unconnected = True
                return
            await original(self)

        return aclose

    @functools.wraps(original)
    def close(self: Any) -> None:
        if getattr(self, "_upstream_unconnected", False):
            return
        if getattr(self, "_upstream_shared", False):
            self._upstream_unconnected = True
            return
        original(self)

    return close


def _target(self: Any) -> str:
    """Where the client reaches the API (the bridge's socket under mmplug)."""
    target = getattr(self, "_upstream_target", None)
    if target:
        return str(target)
    config = _current_config()
    return str(config.api_target) if config is not None else ""


def _connected(self: Any) -> bool:
    return not getattr(self, "_upstream_unconnected", False)


def _enter(self: Any) -> Any:
    if getattr(self, "_upstream_unconnected", False):
        _connect(self)
    return self


def _exit(self: Any, *exc: object) -> None:
    self.close()


async def _aenter(self: Any) -> Any:
    if getattr(self, "_upstream_unconnected", False):
        _connect(self)
    return self


async def _aexit(self: Any, *exc: object) -> None:
    await self.close()


def install(sync_cls: type[Any], async_cls: type[Any]) -> None:
    """Make ``sync_cls``/``async_cls`` (the generated clients) take the other SDK's calls.

    Their methods and constructor are wrapped; the lifecycle (``connect``, ``close``, the
    context managers, ``target``, ``connected``) goes on their base classes, so the classes
    keep exactly one method per RPC.
    """
    for cls in (sync_cls, async_cls):
        if cls.__dict__.get("_upstream_installed"):
            continue
        for name, fn in list(vars(cls).items()):
            if name.startswith("_") or not inspect.isfunction(fn):
                continue
            setattr(cls, name, _wrap(name, fn))
        cls.__init__ = _compat_init(cls.__init__)
        cls._upstream_installed = True
        base: Any = cls.__mro__[1]
        if base.__dict__.get("_upstream_lifecycle"):
            continue
        base.close = _close(base.close)
        base.target = property(_target)
        base.connected = property(_connected)
        if cls is async_cls:
            base.connect = _aconnect
            base.__aenter__ = _aenter
            base.__aexit__ = _aexit
        else:
            base.connect = _connect
            base.__enter__ = _enter
            base.__exit__ = _exit
        base._upstream_lifecycle = True
