"""Typed plugin settings: a dataclass loaded from the plugin's configuration.

The author declares the settings of ``plugin.json``'s ``settings_schema`` as a dataclass
and attaches it to the plugin class with the ``Settings`` descriptor::

    @dataclass(frozen=True)
    class ModerationSettings:
        enabled: bool = True
        max_length: int = 4000
        mode: Literal["warn", "reject"] = "warn"
        banned_words: list[str] = field(default_factory=list)
        api_token: str = field(default="", metadata={"key": "APIToken"})

    class Moderation(Plugin):
        settings = Settings(ModerationSettings)

        @hook(HookName.MessageWillBePosted)
        def check(self, context, post):
            if len(post.message) > self.settings.max_length: ...   # typed: int

How values are read and checked (``parse_settings`` does it, and is usable on its own):

* **Keys.** A field matches the configuration key with the same letters, ignoring case and
  underscores (``max_length`` matches ``MaxLength`` and the lower-cased ``maxlength`` some
  servers store). ``field(metadata={"key": "Exact"})`` names the key explicitly. Keys the class
  does not declare are ignored.
* **Types.** ``bool`` (also the strings ``true``/``false``, as environment overrides give),
  ``int`` and ``float`` (also numeric strings), ``str``, an ``enum.Enum`` subclass or
  ``Literal[...]`` (one of the options; an Enum also by member name), ``list[T]`` /
  ``tuple[T, ...]`` (a JSON list, or a text setting split on commas and new lines),
  ``dict[str, T]`` (an object, or a text setting holding a JSON object), a nested dataclass (an
  object), ``T | None`` and ``Any``.
* **Missing values.** A key that is absent or null, and an empty text for a non-text field,
  takes the field's default; a field without a default is required (for a required ``str``
  the empty text counts as missing too); a ``T | None`` field without a default is None.
* **Errors.** Every problem is collected into one ``SettingsError`` naming each key and what
  is wrong with it.

When the SDK loads them (the policy): on every ``OnConfigurationChange`` the settings are
reloaded *before* the author's own ``OnConfigurationChange`` handler runs (the server calls
that hook once before ``OnActivate`` too). If the new configuration is invalid, the previous
valid settings stay in place, the error is logged and returned to the server (which logs it),
and the author's handler is not called. ``OnActivate`` fails with the error when there has never
been a valid configuration, so a plugin never runs with settings it could not read.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import re
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

if TYPE_CHECKING:
    from .plugin import Plugin

__all__ = ["Settings", "SettingsError", "parse_settings"]

log = logging.getLogger("mattermost_plugin.settings")

T = TypeVar("T")

# The dataclass field metadata entry naming the configuration key explicitly.
KEY_METADATA = "key"

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
# Text settings used as lists: one item per comma or line.
_LIST_SEPARATORS = re.compile(r"[,\n]")
_MISSING = object()


class SettingsError(ValueError):
    """The plugin configuration does not fit the settings class.

    ``problems`` lists ``(key, problem)`` pairs, one per bad setting; the message names them
    all.
    """

    def __init__(self, problems: list[tuple[str, str]], settings_name: str = "") -> None:
        self.problems = problems
        where = f" ({settings_name})" if settings_name else ""
        details = "; ".join(f"{key}: {problem}" for key, problem in problems)
        super().__init__(f"invalid plugin settings{where}: {details}")


def _normalize(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def _camel(name: str) -> str:
    # The spelling plugin.json keys conventionally use, for messages about missing keys.
    return "".join(part[:1].upper() + part[1:] for part in name.split("_") if part)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


class _Problem(Exception):
    """One setting's value does not fit; ``path`` locates it inside nested values."""

    def __init__(self, problem: str, path: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = path


def _convert(tp: Any, value: Any) -> Any:
    """``value`` (decoded JSON) as the type ``tp``; raises ``_Problem``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return value
    if origin is typing.Annotated:
        return _convert(args[0], value)
    if origin is typing.Union or origin is types.UnionType:
        options = [a for a in args if a is not type(None)]
        if value is None and len(options) < len(args):
            return None
        problems = []
        for option in options:
            try:
                return _convert(option, value)
            except _Problem as e:
                problems.append(e.problem)
        raise _Problem(" or ".join(dict.fromkeys(problems)))
    if origin is typing.Literal:
        for option in args:
            if value == option and type(value) is type(option):
                return option
            if isinstance(value, str) and not isinstance(option, str):
                try:
                    if _convert(type(option), value) == option:
                        return option
                except _Problem:
                    pass
        choices = ", ".join(repr(a) for a in args)
        raise _Problem(f"expected one of {choices}, got {_show(value)}")
    if origin in (list, tuple, set, frozenset) or tp in (list, tuple, set, frozenset):
        return _convert_sequence(tp, origin or tp, args, value)
    if origin is dict or tp is dict:
        return _convert_mapping(args, value)
    if isinstance(tp, type):
        if issubclass(tp, enum.Enum):
            return _convert_enum(tp, value)
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, Mapping):
                raise _Problem(f"expected an object, got {_kind(value)} {_show(value)}")
            return _parse(tp, value)
        scalar = _SCALARS.get(tp)
        if scalar is not None:
            return scalar(value)
    raise _Problem(f"the settings class uses the unsupported type {tp!r}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Problem(f"expected true or false, got {_kind(value)} {_show(value)}")


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _Problem(f"expected a whole number, got {_kind(value)} {_show(value)}")


def _to_float(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise _Problem(f"expected a number, got {_kind(value)} {_show(value)}")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise _Problem(f"expected text, got {_kind(value)} {_show(value)}")


_SCALARS: dict[type, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
}


def _convert_enum(tp: type[enum.Enum], value: Any) -> enum.Enum:
    for member in tp:
        if member.value == value and type(member.value) is type(value):
            return member
    if isinstance(value, str):
        for member in tp:
            if member.name.lower() == value.strip().lower() or str(member.value) == value:
                return member
    choices = ", ".join(repr(m.value) for m in tp)
    raise _Problem(f"expected one of {choices}, got {_show(value)}")


def _convert_sequence(tp: Any, container: Any, args: tuple[Any, ...], value: Any) -> Any:
    if isinstance(value, str):
        items: list[Any] = [s.strip() for s in _LIST_SEPARATORS.split(value) if s.strip()]
    elif isinstance(value, list):
        items = value
    else:
        raise _Problem(f"expected a list, got {_kind(value)} {_show(value)}")
    if container is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if len(items) != len(args):
            raise _Problem(f"expected {len(args)} items, got {len(items)}")
        item_types: Iterable[Any] = args
    else:
        item_types = [args[0] if args else Any] * len(items)
    out = []
    for i, (item_tp, item) in enumerate(zip(item_types, items, strict=True)):
        try:
            out.append(_convert(item_tp, item))
        except _Problem as e:
            raise _Problem(f"item {i + 1}: {e.problem}", e.path) from None
    return container(out)


def _convert_mapping(args: tuple[Any, ...], value: Any) -> dict[Any, Any]:
    if isinstance(value, str) and value.strip():
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise _Problem(f"expected an object or a JSON object text ({e.msg})") from None
    if not isinstance(value, Mapping):
        raise _Problem(f"expected an object, got {_kind(value)} {_show(value)}")
    key_tp, value_tp = args if len(args) == 2 else (Any, Any)
    out = {}
    for k, v in value.items():
        try:
            out[_convert(key_tp, k)] = _convert(value_tp, v)
        except _Problem as e:
            raise _Problem(f"entry {k!r}: {e.problem}", e.path) from None
    return out


def _is_optional(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _is_optional(typing.get_args(tp)[0])
    return (origin is typing.Union or origin is types.UnionType) and type(None) in typing.get_args(
        tp
    )


def _is_text(tp: Any) -> bool:
    if typing.get_origin(tp) is typing.Annotated:
        return _is_text(typing.get_args(tp)[0])
    return tp is str


def _lookup(config: Mapping[str, Any], f: dataclasses.Field[Any]) -> tuple[str, Any]:
    """The configuration key matching field ``f`` and its value (``_MISSING`` if absent)."""
    explicit = f.metadata.get(KEY_METADATA)
    if explicit is not None:
        if explicit in config:
            return explicit, config[explicit]
        wanted = str(explicit).lower()
        for key, value in config.items():
            if key.lower() == wanted:
                return key, value
        return str(explicit), _MISSING
    wanted = _normalize(f.name)
    for key, value in config.items():
        if _normalize(key) == wanted:
            return key, value
    return _camel(f.name), _MISSING


def _parse(cls: type[T], config: Mapping[str, Any]) -> T:
    problems: list[tuple[str, str]] = []
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as e:  # an annotation naming something undefined
        raise TypeError(f"cannot read the field types of {cls.__qualname__}: {e}") from e
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if not f.init:
            continue
        tp = hints.get(f.name, Any)
        key, raw = _lookup(config, f)
        has_default = (
            f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        )
        empty = raw is None or (isinstance(raw, str) and raw == "" and not _is_text(tp))
        if raw is _MISSING or empty:
            if has_default:
                continue
            if _is_optional(tp):
                values[f.name] = None
                continue
            problems.append((key, f"required (field {f.name}), but not set"))
            continue
        if raw == "" and _is_text(tp) and not has_default:
            problems.append((key, f"required (field {f.name}), but empty"))
            continue
        try:
            values[f.name] = _convert(tp, raw)
        except _Problem as e:
            problems.append((f"{key}{e.path}", e.problem))
        except SettingsError as e:  # a nested dataclass: prefix its keys with ours
            problems.extend((f"{key}.{k}", p) for k, p in e.problems)
    if problems:
        raise SettingsError(problems, cls.__qualname__)
    try:
        return cls(**values)
    except (TypeError, ValueError) as e:  # the class' own __post_init__ checks
        raise SettingsError([("(settings)", str(e))], cls.__qualname__) from e


def parse_settings(cls: type[T], config: Mapping[str, Any] | None) -> T:
    """Build the settings dataclass ``cls`` from a plugin configuration mapping.

    ``config`` is what ``load_plugin_configuration()`` returns. Raises ``SettingsError``
    naming every key whose value is missing or does not fit (see the module docstring for
    the rules), and ``TypeError`` when ``cls`` is not a dataclass.
    """
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"settings classes are dataclasses, got {cls!r}")
    return _parse(cls, config or {})


class Settings(Generic[T]):
    """Declares a plugin's typed settings: ``settings = Settings(MySettings)``.

    On an instance the attribute is the loaded ``MySettings`` (typed for mypy and IDEs); on
    the class it is this descriptor. Reading it before the first successful load raises
    ``SettingsError`` (or the error of the failed load). Assigning a ``MySettings`` instance
    replaces the current settings (handy in tests).
    """

    def __init__(self, settings_class: type[T]) -> None:
        if not (isinstance(settings_class, type) and dataclasses.is_dataclass(settings_class)):
            raise TypeError(f"Settings() expects a dataclass, got {settings_class!r}")
        self.settings_class: type[T] = settings_class
        self.name = "settings"

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @property
    def _value_attr(self) -> str:
        return f"_mmplug_settings_{self.name}"

    @property
    def _error_attr(self) -> str:
        return f"_mmplug_settings_error_{self.name}"

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> Settings[T]: ...
    @overload
    def __get__(self, instance: Plugin, owner: type | None = None) -> T: ...
    def __get__(self, instance: Plugin | None, owner: type | None = None) -> Settings[T] | T:
        if instance is None:
            return self
        state = vars(instance)
        value = state.get(self._value_attr, _MISSING)
        if value is _MISSING:
            error = state.get(self._error_attr)
            if isinstance(error, Exception):
                raise SettingsError(
                    [("(all)", f"no valid configuration was loaded yet ({error})")],
                    self.settings_class.__qualname__,
                )
            raise SettingsError(
                [
                    (
                        "(all)",
                        "not loaded yet: settings load on OnConfigurationChange, "
                        "which the server calls before OnActivate",
                    )
                ],
                self.settings_class.__qualname__,
            )
        result: T = value
        return result

    def __set__(self, instance: Plugin, value: T) -> None:
        if not isinstance(value, self.settings_class):
            raise TypeError(
                f"{self.name} must be a {self.settings_class.__qualname__}, "
                f"got {type(value).__name__}"
            )
        state = vars(instance)
        state[self._value_attr] = value
        state.pop(self._error_attr, None)

    def is_loaded(self, instance: Plugin) -> bool:
        return self._value_attr in vars(instance)

    def apply(self, instance: Plugin, config: Mapping[str, Any] | None) -> T:
        """Parse ``config`` and make it the instance's settings; on error keep the old ones.

        The error is remembered, so reading the settings before any valid load reports it.
        """
        try:
            value = parse_settings(self.settings_class, config)
        except SettingsError as e:
            vars(instance)[self._error_attr] = e
            raise
        self.__set__(instance, value)
        return value

    async def reload(self, plugin: Plugin) -> T:
        """Load the configuration through ``plugin.aapi`` and apply it."""
        try:
            config = await plugin.aapi.load_plugin_configuration()
        except Exception as e:
            vars(plugin)[self._error_attr] = e
            raise
        return self.apply(plugin, config)

    # --- hook steps (see Plugin._hook_chain) ---------------------------------------------

    async def on_configuration_change(
        self,
        plugin: Plugin,
        run: Callable[..., Awaitable[Any]],
        then: Callable[..., Awaitable[Any]] | None,
        *args: Any,
    ) -> Any:
        try:
            await self.reload(plugin)
        except Exception as e:
            kept = "keeping the previous settings" if self.is_loaded(plugin) else "no settings"
            plugin.logger.error("plugin configuration rejected (%s): %s", kept, e)
            raise
        return None if then is None else await then(*args)

    async def on_activate(
        self,
        plugin: Plugin,
        run: Callable[..., Awaitable[Any]],
        then: Callable[..., Awaitable[Any]] | None,
        *args: Any,
    ) -> Any:
        if not self.is_loaded(plugin):
            error = vars(plugin).get(self._error_attr)
            if error is not None:
                raise SettingsError(
                    [("(all)", f"cannot activate without valid settings: {error}")],
                    self.settings_class.__qualname__,
                )
            # OnConfigurationChange did not run first (a harness that skips it): load now.
            await self.reload(plugin)
        return None if then is None else await then(*args)


def find_settings(cls: type) -> Settings[Any] | None:
    """The ``Settings`` descriptor declared on ``cls`` or a base; at most one is allowed."""
    found: dict[str, Settings[Any]] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            if name == "_settings_descriptor":
                continue  # Plugin's record of what this finds for a base class, not a declaration
            if isinstance(value, Settings):
                found[name] = value
            elif name in found:
                del found[name]  # overridden by something that is not a Settings
    if len(found) > 1:
        names = ", ".join(sorted(found))
        raise TypeError(f"{cls.__qualname__} declares several Settings attributes ({names})")
    return next(iter(found.values()), None)
