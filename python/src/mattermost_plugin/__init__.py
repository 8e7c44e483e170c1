"""mattermost_plugin: write Mattermost server plugins in Python (the mmplug SDK).

Authoring surface::

    from mattermost_plugin import Plugin, hook, HookName, run_plugin, PluginAPIError
    from mattermost_plugin import Command, CommandResponse, Post   # protobuf messages
    from mattermost_plugin import HTTPRequest, HTTPResponseWriter
    from mattermost_plugin import Settings, command, CommandCall, ensure_bot  # helpers
    from mattermost_plugin import every, one_shot, OneShotJob                 # jobs
    from mattermost_plugin import action, dialog, Attachment, Button, open_dialog  # interactive

Every message of the contract (package ``mattermost.plugin.v1``) is importable from here
by name (``from mattermost_plugin import User``).

Every public name of Mattermost's own Python SDK (also ``mattermost_plugin``) is here too,
as the same object or an alias (``ValidationError``, ``AlreadyExistsError``,
``UnavailableError``, ``convert_grpc_error``, ``load_runtime_config``, ``PluginAPIClient``,
``AsyncPluginAPIClient``; ``mattermost_plugin.server.run_plugin``): docs/upstream.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _upstream_client
from ._generated.api import AsyncPluginAPIClient, PluginAPIClient
from .errors import (
    AlreadyExistsError,
    BadRequestError,
    ConflictError,
    ErrorKind,
    NotFoundError,
    NotImplementedAPIError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PluginAPIError,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
    convert_app_error,
    convert_grpc_error,
)
from .hooks import HookName, HookRegistrationError, HookReplyError, hook
from .http import HTTPClientDisconnected, HTTPHeaders, HTTPRequest, HTTPResponseWriter
from .kv import (
    AsyncKVMutex,
    AsyncKVStore,
    KVConflictError,
    KVDecodeError,
    KVMutex,
    KVStore,
    LockTimeoutError,
)
from .plugin import Plugin
from .runtime import RuntimeConfig, run_plugin, serve_plugin
from .runtime_config import load_runtime_config
from .settings import Settings, SettingsError, parse_settings

# The clients also take the calls of Mattermost's own Python SDK (docs/upstream.md).
_upstream_client.install(PluginAPIClient, AsyncPluginAPIClient)

__version__ = "0.1.0"

__all__ = [
    "ActionRequest",
    "ActionResponse",
    "AlreadyExistsError",
    "AsyncJobs",
    "AsyncKVMutex",
    "AsyncKVStore",
    "AsyncPluginAPIClient",
    "Attachment",
    "AttachmentField",
    "BadRequestError",
    "BoolElement",
    "BotUsernameTakenError",
    "Button",
    "Command",
    "CommandCall",
    "CommandError",
    "CommandRegistrationError",
    "CommandResponse",
    "ConflictError",
    "DialogResponse",
    "DialogSubmission",
    "ErrorKind",
    "HTTPClientDisconnected",
    "HTTPHeaders",
    "HTTPRequest",
    "HTTPResponseWriter",
    "HookName",
    "HookRegistrationError",
    "HookReplyError",
    "InteractiveDialog",
    "JobExistsError",
    "JobRegistrationError",
    "Jobs",
    "KVConflictError",
    "KVDecodeError",
    "KVMutex",
    "KVStore",
    "LockTimeoutError",
    "NotFoundError",
    "NotImplementedAPIError",
    "OneShotJob",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Plugin",
    "PluginAPIClient",
    "PluginAPIError",
    "Post",
    "RadioElement",
    "RuntimeConfig",
    "Select",
    "SelectElement",
    "ServiceUnavailableError",
    "Settings",
    "SettingsError",
    "TextElement",
    "TextareaElement",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnavailableError",
    "ValidationError",
    "action",
    "attach",
    "command",
    "convert_app_error",
    "convert_grpc_error",
    "dialog",
    "dialog_error",
    "ensure_bot",
    "ephemeral",
    "every",
    "field_errors",
    "hook",
    "load_runtime_config",
    "one_shot",
    "open_dialog",
    "parse_settings",
    "run_plugin",
    "serve_plugin",
    "update_post",
]


if TYPE_CHECKING:
    # What __getattr__ below resolves at run time, precisely typed for type checkers (without
    # this, `from mattermost_plugin import User` would be Any).
    from ._proto.mattermost.plugin.v1.models_pb2 import *  # noqa: F403
    from ._proto.mattermost.plugin.v1.models_pb2 import Command, CommandResponse, Post
    from .bots import BotUsernameTakenError, ensure_bot
    from .commands import CommandCall, CommandError, CommandRegistrationError, command
    from .interactive import (
        ActionRequest,
        ActionResponse,
        Attachment,
        AttachmentField,
        BoolElement,
        Button,
        DialogResponse,
        DialogSubmission,
        InteractiveDialog,
        RadioElement,
        Select,
        SelectElement,
        TextareaElement,
        TextElement,
        action,
        attach,
        dialog,
        dialog_error,
        ephemeral,
        field_errors,
        open_dialog,
        update_post,
    )
    from .jobs import (
        AsyncJobs,
        JobExistsError,
        JobRegistrationError,
        Jobs,
        OneShotJob,
        every,
        one_shot,
    )

# The helpers' modules load with the first name taken from them, so a plugin that uses none
# of them (bots, commands, interactive messages, jobs) never imports them: less start-up time
# and idle memory.
_LAZY = {
    name: module
    for module, names in {
        "bots": ("BotUsernameTakenError", "ensure_bot"),
        "commands": ("CommandCall", "CommandError", "CommandRegistrationError", "command"),
        "interactive": (
            "ActionRequest", "ActionResponse", "Attachment", "AttachmentField", "BoolElement",
            "Button", "DialogResponse", "DialogSubmission", "InteractiveDialog", "RadioElement",
            "Select", "SelectElement", "TextareaElement", "TextElement", "action", "attach",
            "dialog", "dialog_error", "ephemeral", "field_errors", "open_dialog", "update_post",
        ),
        "jobs": (
            "AsyncJobs", "JobExistsError", "JobRegistrationError", "Jobs", "OneShotJob",
            "every", "one_shot",
        ),
    }.items()
    for name in names
}  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value
    # Protobuf message classes of the contract (Post, User...), each made on first use: the
    # SDK's import builds none of the ~thousand (docs/internals.md §7).
    if name[:1].isupper():
        from . import _contract

        try:
            cls = _contract.message_class(name)
        except KeyError:
            pass
        else:
            globals()[name] = cls
            return cls
    raise AttributeError(f"module 'mattermost_plugin' has no attribute {name!r}")
