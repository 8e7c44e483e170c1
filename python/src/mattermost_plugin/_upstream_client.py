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
* call the methods whose arguments it shapes differently from Go the way its mixins do
  (``_ADAPT``: ``get_file_infos(user_id=...)``, ``publish_plugin_cluster_event(id, data)``,
  ``get_property_field(field_id)``, ...) and pass its plainer values (``_CONVERT``: a
  ``(channel_id, user_id)`` tuple, a search string, a level name, property JSON bytes);
* build a client itself, ``PluginAPIClient()`` (or with a ``target``), ``connect()``,
  ``close()``, ``with``/``async with``, ``target``, ``connected``: inside a running plugin it
  shares the plugin's own connection to the bridge.

``install`` wraps every method of the generated classes once; a call made our way (every
argument given, positionally or by our names) goes straight to the original method, except
for the few methods in ``_ADAPT``/``_CONVERT``, whose arguments are always looked at.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable, Mapping
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
# Per method, where the other SDK's default differs or it has one where Go has none.
_METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "kv_list": {"per_page": 100},
    "get_groups": {"opts": None, "view_restrictions": None},
    "request_trial_license": {"terms_accepted": False, "receive_emails_accepted": False},
    "invite_remote_to_channel": {"share_if_not_shared": False},
    "plugin_http": {"headers": None, "body": b""},
}
# Defaults of option struct fields the other SDK sets when they are passed as keywords
# (or, for get_bots, when the options are left out: its BotGetOptions pages by 60).
_STRUCT_DEFAULTS: dict[str, dict[str, Any]] = {
    "get_users": {"per_page": 60},
    "search_users": {"limit": 100},
    "get_bots": {"per_page": 60},
}
_PLUGIN_ID = {"plugin_id": "id"}
# Its argument names that no spelling rule maps onto ours.
_ALIASES: dict[str, dict[str, str]] = {
    "get_user_by_username": {"username": "name"},
    "get_plugin_status": _PLUGIN_ID,
    "enable_plugin": _PLUGIN_ID,
    "disable_plugin": _PLUGIN_ID,
    "remove_plugin": _PLUGIN_ID,
    "install_plugin": {"data": "file", "force": "replace"},
    **{f"log_{level}": {"message": "msg"} for level in ("debug", "info", "warn", "error")},
    "patch_bot": {"patch": "bot_patch"},
    "execute_slash_command": {"args": "command_args"},
    "create_command": {"command": "cmd"},
    "update_command": {"command": "updated_cmd"},
    "get_groups_by_source": {"source": "group_source"},
    "upsert_group_syncable": {"syncable": "group_syncable"},
    "update_group_syncable": {"syncable": "group_syncable"},
    "share_channel": {"shared_channel": "sc"},
    "update_shared_channel": {"shared_channel": "sc"},
    "update_shared_channel_cursor": {"cursor": "cusror"},  # Go's parameter is spelled so
    "log_audit_rec": {"record": "rec"},
    "log_audit_rec_with_level": {"record": "rec"},
    "open_interactive_dialog": {"dialog_request": "dialog"},
    "get_emoji_list": {"sort": "sort_by"},
    "create_upload_session": {"session": "us"},
    "upload_data": {"session": "us", "data": "rd"},
    "search_posts_in_team": {"terms": "params_list"},
    "search_posts_in_team_for_user": {"terms": "search_params"},
    "get_property_group": {"group_id": "name"},
    "create_property_field": {"field_json": "field"},
    "update_property_field": {"field_json": "field"},
    "update_property_fields": {"fields_json": "fields"},
    **{
        f"{verb}_property_value": {"value_json": "value"} for verb in ("create", "update", "upsert")
    },
    **{f"{verb}_property_values": {"values_json": "values"} for verb in ("update", "upsert")},
}
# Arguments it takes that ours does not need (load_plugin_configuration's Go ``dest``).
_IGNORED: dict[str, set[str]] = {"load_plugin_configuration": {"dest"}}
_LOG_METHODS = {f"log_{level}" for level in ("debug", "info", "warn", "error")}
_WELL_KNOWN = {"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.Timestamp"}

Args = tuple[Any, ...]
Kwargs = dict[str, Any]
Adapter = Callable[[Args, Kwargs], tuple[Args, Kwargs]]


def _message(kind: str, /, **fields: Any) -> Any:
    import mattermost_plugin

    return getattr(mattermost_plugin, kind)(**fields)


def _take(
    method: str,
    names: tuple[str, ...],
    defaults: Mapping[str, Any],
    args: Args,
    kwargs: Kwargs,
) -> dict[str, Any]:
    """The other SDK's arguments of ``method`` by name (its signature: ``names``, then
    keyword ones with ``defaults``)."""
    if len(args) > len(names):
        raise TypeError(f"{method}() takes {len(names)} positional arguments ({len(args)} given)")
    bound: dict[str, Any] = dict(zip(names, args, strict=False))
    for key, value in kwargs.items():
        if key in bound or (key not in names and key not in defaults):
            raise TypeError(f"{method}() got an unexpected or repeated argument {key!r}")
        bound[key] = value
    missing = [n for n in names if n not in bound and n not in defaults]
    if missing:
        raise TypeError(f"{method}() missing required argument {missing[0]!r}")
    return {**defaults, **bound}


# --- values the other SDK passes where ours takes a message --------------------------------


def _member_ids(members: Any) -> Any:
    """patch_channel_members_notifications: ``(channel_id, user_id)`` pairs."""
    if members is None or isinstance(members, str | bytes | Mapping):
        return members
    return [
        {"channel_id": m[0], "user_id": m[1]} if isinstance(m, tuple | list) and len(m) == 2 else m
        for m in members
    ]


def _header_lists(headers: Any) -> Any:
    """plugin_http: ``{name: value}`` (and no headers at all) as well as ours."""
    if headers is None:
        return {}
    return {k: [v] if isinstance(v, str) else v for k, v in headers.items()}


def _terms_list(value: Any) -> Any:
    """search_posts_in_team: the search terms as a string."""
    return [_message("SearchParams", terms=value)] if isinstance(value, str) else value


def _terms(value: Any) -> Any:
    """search_posts_in_team_for_user: the search terms as a string."""
    return _message("SearchParameter", terms=value) if isinstance(value, str) else value


# Go's mlog levels by name (shared/mlog/levels.go): what log_audit_rec_with_level's
# string level stands for.
_LEVELS = {
    "panic": 0,
    "fatal": 1,
    "error": 2,
    "warn": 3,
    "info": 4,
    "debug": 5,
    "trace": 6,
    "critical": 7,
    "audit-api": 100,
    "audit-content": 101,
    "audit-permissions": 102,
    "audit-cli": 103,
}


def _level(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    name = value.strip().lower()
    if name not in _LEVELS:
        raise ValueError(f"unknown log level {value!r} (one of {', '.join(_LEVELS)})")
    return _message("LogrLevel", id=_LEVELS[name], name=name)


def _property(kind: str) -> Callable[[Any], Any]:
    """A property field or value (or a list) given as Go's JSON, as the other SDK takes them."""

    def one(data: Any) -> Any:
        from google.protobuf import json_format

        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        raw = data.pop("value", None) if kind == "PropertyValue" else None
        message = _message(kind)
        try:
            json_format.ParseDict(data, message, ignore_unknown_fields=True)
        except json_format.ParseError as e:
            raise TypeError(f"{kind} JSON: {e}") from None
        if raw is not None:
            message.value = json.dumps(raw).encode()  # Go's json.RawMessage
        return message

    def convert(value: Any) -> Any:
        if isinstance(value, bytes | bytearray | str):
            data = json.loads(value)
            return [one(d) for d in data] if isinstance(data, list) else one(data)
        return value

    return convert


_FIELD = _property("PropertyField")
_VALUE = _property("PropertyValue")

# Per method, per parameter (ours): the other SDK's value turned into ours.
_CONVERT: dict[str, dict[str, Callable[[Any], Any]]] = {
    "patch_channel_members_notifications": {"members": _member_ids},
    "plugin_http": {"headers": _header_lists},
    "search_posts_in_team": {"params_list": _terms_list},
    "search_posts_in_team_for_user": {"search_params": _terms},
    "log_audit_rec_with_level": {"level": _level},
    "create_property_field": {"field": _FIELD},
    "update_property_field": {"field": _FIELD},
    "update_property_fields": {"fields": _FIELD},
    **{f"{verb}_property_value": {"value": _VALUE} for verb in ("create", "update", "upsert")},
    **{f"{verb}_property_values": {"values": _VALUE} for verb in ("update", "upsert")},
}


# --- calls the other SDK shapes differently from Go ----------------------------------------

_FILE_FILTERS = ("user_id", "channel_id", "include_deleted", "sort_by", "sort_order")


def _get_file_infos(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    # get_file_infos(*, page, per_page, user_id, channel_id, include_deleted, sort_by,
    # sort_order): the filters of Go's GetFileInfosOptions, one user and channel each.
    if "opt" in kwargs or len(args) >= 3 or not set(_FILE_FILTERS) & kwargs.keys():
        return args, kwargs
    rest = {k: v for k, v in kwargs.items() if k not in _FILE_FILTERS}
    opt: dict[str, Any] = {"include_deleted": bool(kwargs.get("include_deleted"))}
    for key in ("user_id", "channel_id"):
        if kwargs.get(key):
            opt[f"{key}s"] = [kwargs[key]]
    if kwargs.get("sort_by"):
        opt["sort_by"] = kwargs["sort_by"]
    order = str(kwargs.get("sort_order") or "")
    if order:
        opt["sort_descending"] = order.lower() == "desc"
    return args, {**rest, "opt": opt}


def _create_default_syncable_memberships(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    # (*, since, scope_teams, scope_channels, re_add_removed_members): Go always processes
    # both teams and channels; the scope flags have no counterpart.
    return args, {k: v for k, v in kwargs.items() if k not in ("scope_teams", "scope_channels")}


def _register_plugin_for_shared_channels(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    # (plugin_id, display_name, description=""): Go's RegisterPluginOpts has no description.
    if not (args and isinstance(args[0], str)) and not {"display_name", "description"} & set(
        kwargs
    ):
        return args, kwargs
    names = ("plugin_id", "display_name", "description")
    extra = {k: v for k, v in kwargs.items() if k not in names}
    given = {k: v for k, v in kwargs.items() if k in names}
    b = _take("register_plugin_for_shared_channels", names, {"description": ""}, args, given)
    return ({"plugin_id": b["plugin_id"], "displayname": b["display_name"], **extra},), {}


def _update_shared_channel_cursor(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    # (channel_id, remote_id, last_post_update_at, last_post_id)
    if len(args) != 4 and not {"last_post_update_at", "last_post_id"} & kwargs.keys():
        return args, kwargs
    b = _take(
        "update_shared_channel_cursor",
        ("channel_id", "remote_id", "last_post_update_at", "last_post_id"),
        {},
        args,
        kwargs,
    )
    cursor = _message(
        "GetPostsSinceForSyncCursor",
        last_post_update_at=b["last_post_update_at"],
        last_post_update_id=b["last_post_id"],
    )
    return (b["channel_id"], b["remote_id"], cursor), {}


def _publish_plugin_cluster_event(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    # (event_id, data, *, send_type="reliable", target_id="")
    if not (args and isinstance(args[0], str)) and "event_id" not in kwargs:
        return args, kwargs
    b = _take(
        "publish_plugin_cluster_event",
        ("event_id", "data"),
        {"send_type": "reliable", "target_id": ""},
        args,
        kwargs,
    )
    event = _message("PluginClusterEvent", id=b["event_id"], data=bytes(b["data"]))
    opts = _message(
        "PluginClusterEventSendOptions", send_type=b["send_type"], target_id=b["target_id"]
    )
    return (event, opts), {}


def _register_property_group(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    # (group_id, group_name): Go registers a group by name, and get_property_group(group_id)
    # looks it up by the same string, so the group is registered under group_id.
    if len(args) != 2 and not {"group_id", "group_name"} & kwargs.keys():
        return args, kwargs
    b = _take(
        "register_property_group", ("group_id", "group_name"), {"group_name": ""}, args, kwargs
    )
    return (b["group_id"] or b["group_name"],), {}


def _group_left_out(second: str) -> Adapter:
    """(``second``) there, (group_id, ``second``) in Go: an empty group id matches every
    group (Go's property stores filter by group only when one is given)."""

    def adapt(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
        if "group_id" in kwargs or len(args) > 1 or (args and second in kwargs):
            return args, kwargs
        if len(args) == 1:
            return ("", args[0]), kwargs
        return args, {"group_id": "", **kwargs} if second in kwargs else kwargs

    return adapt


def _group_from(name: str, upstream: str, convert: Callable[[Any], Any]) -> Adapter:
    """(``upstream``: Go's JSON) there, (group_id, ``name``) in Go: the group id is the
    object's (the first one's, for a list)."""

    def adapt(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
        given = {k: v for k, v in kwargs.items() if k in (name, upstream)}
        if "group_id" in kwargs or len(args) > 1 or (args and given) or len(given) > 1:
            return args, kwargs
        if not args and not given:
            return args, kwargs
        value = convert(args[0] if args else next(iter(given.values())))
        first = value[0] if isinstance(value, list) and value else value
        group = getattr(first, "group_id", None)
        if group is None and isinstance(first, Mapping):
            group = first.get("group_id")
        rest = {k: v for k, v in kwargs.items() if k not in given}
        return (), {**rest, "group_id": group or "", name: value}

    return adapt


def _get_property_field_by_name(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    # (group_id, name): Go's also takes the target id; "" is a field of no target.
    if "target_id" in kwargs or len(args) > 2 or (len(args) == 2 and "name" in kwargs):
        return args, kwargs
    if len(args) == 2:
        return (args[0], "", args[1]), kwargs
    return args, {**kwargs, "target_id": ""}


def _delete_property_values_for_target(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
    # (target_id, target_type) there; (group_id, target_type, target_id) in Go, where an
    # empty group id deletes the target's values in every group.
    if "group_id" in kwargs or len(args) + len({"target_type", "target_id"} & kwargs.keys()) > 2:
        return args, kwargs
    b = _take("delete_property_values_for_target", ("target_id", "target_type"), {}, args, kwargs)
    return ("", b["target_type"], b["target_id"]), {}


def _no_counterpart(
    method: str, ours: str, why: str, shape: Callable[[Args, Kwargs], bool]
) -> Adapter:
    """A call shaped as the other SDK's ``method``, which Go's API cannot answer: a
    TypeError saying what to call instead (the other runtime's own server takes Go's
    arguments for these too)."""

    def adapt(args: Args, kwargs: Kwargs) -> tuple[Args, Kwargs]:
        if shape(args, kwargs):
            raise TypeError(f"{method}: {why}; call {ours}")
        return args, kwargs

    return adapt


def _str_second(args: Args, kwargs: Kwargs) -> bool:
    return len(args) >= 2 and isinstance(args[1], str)


_PAGING = {"page", "per_page"}

_ADAPT: dict[str, Adapter] = {
    "get_file_infos": _get_file_infos,
    "create_default_syncable_memberships": _create_default_syncable_memberships,
    "register_plugin_for_shared_channels": _register_plugin_for_shared_channels,
    "update_shared_channel_cursor": _update_shared_channel_cursor,
    "publish_plugin_cluster_event": _publish_plugin_cluster_event,
    "register_property_group": _register_property_group,
    "get_property_field": _group_left_out("field_id"),
    "delete_property_field": _group_left_out("field_id"),
    "delete_property_values_for_field": _group_left_out("field_id"),
    "get_property_value": _group_left_out("value_id"),
    "delete_property_value": _group_left_out("value_id"),
    "get_property_field_by_name": _get_property_field_by_name,
    "update_property_field": _group_from("field", "field_json", _FIELD),
    "update_property_fields": _group_from("fields", "fields_json", _FIELD),
    "update_property_value": _group_from("value", "value_json", _VALUE),
    "update_property_values": _group_from("values", "values_json", _VALUE),
    "delete_property_values_for_target": _delete_property_values_for_target,
    "count_property_fields_for_target": _no_counterpart(
        "count_property_fields_for_target(target_id, target_type)",
        "count_property_fields_for_target(group_id, target_type, target_id)",
        "Go counts one group's fields of a target, so the group is needed",
        lambda a, k: len(a) == 2 and not {"group_id", "target_type", "target_id"} & k.keys(),
    ),
    "get_property_fields": _no_counterpart(
        "get_property_fields(group_id, page=, per_page=)",
        "get_property_fields(group_id, ids), or search_property_fields(group_id, "
        "{'per_page': n, 'cursor': ...}) to list a group's fields",
        "Go fetches fields by their ids and lists them by cursor, not by page",
        lambda a, k: bool(_PAGING & k.keys()) or (len(a) == 1 and "ids" not in k),
    ),
    "get_property_values": _no_counterpart(
        "get_property_values(group_id, target_id, page=, per_page=)",
        "get_property_values(group_id, ids), or search_property_values(group_id, "
        "{'target_i_ds': [target_id], 'per_page': n})",
        "Go fetches values by their ids and lists them by cursor, not by page",
        lambda a, k: bool(_PAGING & k.keys()) or _str_second(a, k) or "target_id" in k,
    ),
    "search_property_fields": _no_counterpart(
        "search_property_fields(group_id, search_term, ...)",
        "search_property_fields(group_id, opts) with Go's PropertyFieldSearchOpts",
        "Go's search takes options (targets, object type, cursor), not a search term",
        lambda a, k: _str_second(a, k) or "search_term" in k,
    ),
    "search_property_values": _no_counterpart(
        "search_property_values(group_id, search_term, ...)",
        "search_property_values(group_id, opts) with Go's PropertyValueSearchOpts",
        "Go's search takes options (targets, field, cursor), not a search term",
        lambda a, k: _str_second(a, k) or "search_term" in k,
    ),
}

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
        self.adapt = _ADAPT.get(name)
        self.convert = _CONVERT.get(name, {})
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
        if self.adapt is not None:
            args, kwargs = self.adapt(args, kwargs)
        if len(args) > len(self.params) + len(self.ignored):
            raise TypeError(
                f"{self.name}() takes {len(self.params)} arguments "
                f"({', '.join(self.params) or 'none'}); {len(args)} were given"
            )
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
        for i, p in enumerate(self.params):
            convert = self.convert.get(p)
            if convert is not None:
                out[i] = convert(out[i])
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


def _parameter_count(fn: Callable[..., Any]) -> int:
    """``len(inspect.signature(fn).parameters)``, read off the code object: ``install`` wraps
    every method of both clients when the SDK is imported, and building ~520 signatures
    there cost ~5 ms of every plugin's start-up."""
    code = fn.__code__
    varargs = bool(code.co_flags & inspect.CO_VARARGS)
    varkw = bool(code.co_flags & inspect.CO_VARKEYWORDS)
    return code.co_argcount + code.co_kwonlyargcount + varargs + varkw


def _wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    count = _parameter_count(fn) - 1
    if name in _ADAPT or name in _CONVERT:
        count = -1  # their arguments are always looked at
    shapes: list[_Shape] = []  # built on the first call that needs it (loads the contract)

    def bind(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
        if not shapes:
            cls = type(client)
            cls._bind_contract()
            spec = cls._specs.get(name)
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
    if client._upstream_unconnected:
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
        # Found on the class, so the check on every call (_check_connected) does not fall
        # through to the client's __getattr__ and raise and catch an AttributeError.
        cls._upstream_unconnected = False
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
