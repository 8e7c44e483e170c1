"""Hook names and the ``@hook`` decorator.

``HookName`` lists every hook of ``plugin.Hooks`` in
``github.com/mattermost/mattermost/server/public`` v0.4.4, in interface declaration
order, spelled exactly as in Go (the spelling the server uses in ``Implemented``).
``Implemented`` itself is not listed: the SDK answers it from the registry.
The test suite checks this list against ``plugin/hooks.go`` of the pinned module.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, TypeVar, overload

__all__ = ["HOOK_ATTR", "HookName", "HookRegistrationError", "hook"]


class HookRegistrationError(ValueError):
    """A hook name is unknown, or a hook is registered more than once."""


class HookName(enum.StrEnum):
    """Every hook a plugin can implement (Go spelling)."""

    OnActivate = "OnActivate"
    OnDeactivate = "OnDeactivate"
    OnConfigurationChange = "OnConfigurationChange"
    ServeHTTP = "ServeHTTP"
    ExecuteCommand = "ExecuteCommand"
    UserHasBeenCreated = "UserHasBeenCreated"
    UserWillLogIn = "UserWillLogIn"
    UserHasLoggedIn = "UserHasLoggedIn"
    MessageWillBePosted = "MessageWillBePosted"
    MessageWillBeUpdated = "MessageWillBeUpdated"
    MessageHasBeenPosted = "MessageHasBeenPosted"
    MessageHasBeenUpdated = "MessageHasBeenUpdated"
    MessagesWillBeConsumed = "MessagesWillBeConsumed"
    MessagesWillBeConsumedWithContext = "MessagesWillBeConsumedWithContext"
    MessageHasBeenDeleted = "MessageHasBeenDeleted"
    ChannelHasBeenCreated = "ChannelHasBeenCreated"
    ChannelWillBeArchived = "ChannelWillBeArchived"
    ChannelMemberWillBeAdded = "ChannelMemberWillBeAdded"
    UserHasJoinedChannel = "UserHasJoinedChannel"
    UserHasLeftChannel = "UserHasLeftChannel"
    TeamMemberWillBeAdded = "TeamMemberWillBeAdded"
    UserHasJoinedTeam = "UserHasJoinedTeam"
    UserHasLeftTeam = "UserHasLeftTeam"
    FileWillBeUploaded = "FileWillBeUploaded"
    FileWillBeDownloaded = "FileWillBeDownloaded"
    ReactionHasBeenAdded = "ReactionHasBeenAdded"
    ReactionHasBeenRemoved = "ReactionHasBeenRemoved"
    OnPluginClusterEvent = "OnPluginClusterEvent"
    OnWebSocketConnect = "OnWebSocketConnect"
    OnWebSocketDisconnect = "OnWebSocketDisconnect"
    WebSocketMessageHasBeenPosted = "WebSocketMessageHasBeenPosted"
    RunDataRetention = "RunDataRetention"
    OnInstall = "OnInstall"
    OnSendDailyTelemetry = "OnSendDailyTelemetry"
    OnCloudLimitsUpdated = "OnCloudLimitsUpdated"
    ConfigurationWillBeSaved = "ConfigurationWillBeSaved"
    EmailNotificationWillBeSent = "EmailNotificationWillBeSent"
    NotificationWillBePushed = "NotificationWillBePushed"
    UserHasBeenDeactivated = "UserHasBeenDeactivated"
    ServeMetrics = "ServeMetrics"
    OnSharedChannelsSyncMsg = "OnSharedChannelsSyncMsg"
    OnSharedChannelsPing = "OnSharedChannelsPing"
    PreferencesHaveChanged = "PreferencesHaveChanged"
    OnSharedChannelsAttachmentSyncMsg = "OnSharedChannelsAttachmentSyncMsg"
    OnSharedChannelsProfileImageSyncMsg = "OnSharedChannelsProfileImageSyncMsg"
    GenerateSupportData = "GenerateSupportData"
    OnSAMLLogin = "OnSAMLLogin"
    ChannelWillBeUpdated = "ChannelWillBeUpdated"
    ChannelWillBeRestored = "ChannelWillBeRestored"
    ScheduledPostWillBeCreated = "ScheduledPostWillBeCreated"
    DraftWillBeUpserted = "DraftWillBeUpserted"


# The attribute the decorator sets on the function; Plugin.__init_subclass__ reads it.
HOOK_ATTR = "__mmplug_hook__"

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
            f"{existing.value}; one function handles one hook"
        )
    setattr(fn, HOOK_ATTR, name)
    return fn


@overload
def hook(name: F, /) -> F: ...
@overload
def hook(name: HookName | str, /) -> Callable[[F], F]: ...
@overload
def hook() -> Callable[[F], F]: ...


def hook(name: Any = None, /) -> Any:
    """Register a ``Plugin`` method as the handler of a hook.

    Three forms: ``@hook(HookName.OnActivate)``, ``@hook("OnActivate")`` and a bare
    ``@hook`` on a method named exactly like the hook (``def OnActivate(self)``). Unknown
    names raise ``HookRegistrationError`` here, at decoration time. The original function
    is returned, so it stays callable directly (handy in tests).
    """
    if name is None:
        return lambda fn: _mark(fn, _resolve(getattr(fn, "__name__", "")))
    if callable(name) and not isinstance(name, str):
        return _mark(name, _resolve(getattr(name, "__name__", "")))
    resolved = _resolve(name)
    return lambda fn: _mark(fn, resolved)
