"""Hook names, typed handler signatures and the ``@hook`` decorator.

``HookName`` lists every hook of ``plugin.Hooks`` in
``github.com/mattermost/mattermost/server/public`` v0.4.4, in interface declaration
order, spelled exactly as in Go (the spelling the server uses in ``Implemented``).
``Implemented`` itself is not listed: the SDK answers it from the registry.
The test suite checks this list against ``plugin/hooks.go`` of the pinned module.

For every hook ``X`` this module also exports ``XHandler`` (a ``Protocol`` of the bound
handler, with the Go documentation) and ``XResult`` (what the handler returns), so handlers
can be annotated::

    @hook(HookName.MessageWillBePosted)
    def filter(self, context: PluginContext, post: Post) -> MessageWillBePostedResult: ...

``HookName`` and the signatures are generated from the API schema (``_generated/hooks.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

from ._generated.hooks import *  # noqa: F403  (the generated names are listed in its __all__)
from ._generated.hooks import HookName
from ._generated.hooks import __all__ as _generated_all

__all__ = [
    "HOOK_ATTR",
    "HOOK_MARKER_ATTR",
    "VALID_HOOK_NAMES",
    "HookRegistrationError",
    "HookReplyError",
    "get_hook_name",
    "hook",
    "is_hook_handler",
    *_generated_all,
]


class HookRegistrationError(ValueError):
    """A hook name is unknown, or a hook is registered more than once."""


class HookReplyError(TypeError):
    """A hook handler returned something that does not fit the hook's results.

    The message names the hook, what it expects (its ``XResult`` type) and what was returned.
    The server receives it as the hook's error, so nothing is applied: for hooks without an
    error result (``MessageWillBePosted`` and the like) the bridge answers "unchanged".
    """

    def __init__(self, hook: str, message: str) -> None:
        self.hook = hook
        super().__init__(message)


# The attribute the decorator sets on the function; Plugin.__init_subclass__ reads it.
HOOK_ATTR = "__mmplug_hook__"
#: The same attribute under the name of Mattermost's own SDK.
HOOK_MARKER_ATTR = HOOK_ATTR

#: Every hook name ``@hook`` accepts (Mattermost's own SDK's name for the set).
VALID_HOOK_NAMES: frozenset[str] = frozenset(h.value for h in HookName)


def get_hook_name(func: Callable[..., Any]) -> str | None:
    """The hook ``func`` was registered for with ``@hook`` (its Go name), or None."""
    name = getattr(func, HOOK_ATTR, None)
    return None if name is None else str(name)


def is_hook_handler(func: Callable[..., Any]) -> bool:
    """Whether ``func`` carries a ``@hook`` registration."""
    return getattr(func, HOOK_ATTR, None) is not None


F = TypeVar("F", bound=Callable[..., Any])


def _resolve(name: HookName | str) -> HookName:
    if isinstance(name, HookName):
        return name
    if not isinstance(name, str):
        raise HookRegistrationError(
            f"@hook expects a HookName or a hook name string, got {type(name).__name__}"
        )
    try:
        return HookName(name)
    except ValueError:
        raise HookRegistrationError(
            f"unknown hook {name!r}: hook names are the Go method names of plugin.Hooks "
            f"(for example 'OnActivate'); see HookName"
        ) from None


def _mark(fn: F, name: HookName) -> F:
    if not callable(fn):
        raise HookRegistrationError(f"@hook({name.value}) must decorate a function")
    existing = getattr(fn, HOOK_ATTR, None)
    if existing is not None:
        raise HookRegistrationError(
            f"{getattr(fn, '__qualname__', fn)!s} is already registered for hook "
            f"{existing}; one function handles one hook"
        )
    setattr(fn, HOOK_ATTR, name)
    return fn


@overload
def hook(name: F, /) -> F: ...
@overload
def hook(name: HookName | str, /) -> Callable[[F], F]: ...
@overload
def hook(*, name_or_func: HookName | str | None = None) -> Callable[[F], F]: ...


def hook(name: Any = None, /, *, name_or_func: Any = None) -> Any:
    """Register a ``Plugin`` method as the handler of a hook.

    Three forms: ``@hook(HookName.OnActivate)``, ``@hook("OnActivate")`` and a bare
    ``@hook`` (or ``@hook()``) on a method named exactly like the hook (``def
    OnActivate(self)``). Unknown names raise ``HookRegistrationError`` here, at decoration
    time. The original function is returned, so it stays callable directly (handy in tests).
    ``name_or_func=`` is the keyword of Mattermost's own SDK for the same argument.
    """
    if name is None:
        name = name_or_func
    if name is None:
        return lambda fn: _mark(fn, _resolve(getattr(fn, "__name__", "")))
    if callable(name) and not isinstance(name, str):
        return _mark(name, _resolve(getattr(name, "__name__", "")))
    resolved = _resolve(name)
    return lambda fn: _mark(fn, resolved)
