"""Interactive messages and dialogs: posts with buttons and menus, and dialogs, whose answers
come back to the plugin's own HTTP handler.

::

    class Approvals(Plugin):
        @command("approve")
        def ask(self, call: CommandCall) -> None:
            post = Post(channel_id=call.channel_id, user_id=self.bot_id, message="Deploy?")
            attach(post, self.plugin_id, Attachment(
                text="Production deploy of v2",
                actions=[Button("approve", "Approve", context={"release": "v2"}, style="good")],
            ))
            self.api.create_post(post)

        @action("approve")
        def approve(self, request: ActionRequest) -> ActionResponse:
            # request.user_id is who clicked, from the server's Mattermost-User-Id header
            return ephemeral(f"Approved {request.context['release']}")

        @command("ask")
        def open_form(self, call: CommandCall) -> None:
            open_dialog(self.api, call.args.trigger_id, "feedback", InteractiveDialog(
                title="Feedback", elements=[TextElement("comment", "Comment")]))

        @dialog("feedback")
        def feedback(self, submission: DialogSubmission) -> DialogResponse | None:
            if not submission.values.get("comment"):
                return field_errors(comment="Say something")
            return None                     # closes the dialog

**Routes.** A button or menu made with ``Button``/``Select`` carries the integration URL
``/plugins/<plugin id>/mmplug/actions/<name>``; a dialog opened with ``open_dialog`` submits
to ``/plugins/<plugin id>/mmplug/dialogs/<name>``. The server sends those requests to the
plugin's ``ServeHTTP`` with ``Mattermost-User-Id`` set from the session of the user who
clicked or submitted; the SDK answers them itself (before the plugin's own ``ServeHTTP``
handler, which gets every other path), parses the JSON into ``ActionRequest`` /
``DialogSubmission`` and calls the ``@action`` / ``@dialog`` handler. The acting user is
always that header: the body's ``user_id`` is not trusted, and a request without the header
(not from the server on behalf of a logged-in user) is refused with 401.

**What to trust.** ``ActionRequest.context`` comes from the post the button is on; any
user who can post could post a button with a context of their choosing that points at your
plugin, and a dialog's ``state`` and ``callback_id`` come from the user's client. Check that
``user_id`` may do what the request asks (keep the facts in the KV store, key them by an id
from the context).

**Answers.** An ``@action`` handler returns an ``ActionResponse`` (``update_post(post)``
replaces the post the button is on, ``ephemeral(text)`` tells the clicking user something,
both can be combined), a ``str`` (ephemeral text) or None (nothing). A ``@dialog`` handler
returns None (the dialog closes), ``field_errors(name="problem", ...)`` (the dialog stays
open showing them), ``dialog_error("...")`` (a general error), or a ``DialogResponse``. A
handler that raises answers with a generic error to the user and logs the traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._marks import INTERACTIVE_ATTR
from ._proto.mattermost.plugin.v1.models_pb2 import OpenDialogRequest, Post
from .client import AsyncClient

if TYPE_CHECKING:
    from ._generated.api import AsyncPluginAPIClient, PluginAPIClient
    from .http import HTTPRequest, HTTPResponseWriter
    from .plugin import Plugin

__all__ = [
    "ActionRequest",
    "ActionResponse",
    "Attachment",
    "AttachmentField",
    "BoolElement",
    "Button",
    "DialogResponse",
    "DialogSubmission",
    "Element",
    "InteractiveDialog",
    "InteractiveRegistrationError",
    "RadioElement",
    "Select",
    "SelectElement",
    "TextElement",
    "TextareaElement",
    "action",
    "action_url",
    "attach",
    "dialog",
    "dialog_error",
    "dialog_url",
    "ephemeral",
    "field_errors",
    "open_dialog",
    "update_post",
]

log = logging.getLogger("mattermost_plugin.interactive")

# The paths below /plugins/<id> that the SDK answers itself.
ACTION_PATH = "/mmplug/actions/"
DIALOG_PATH = "/mmplug/dialogs/"
# An action or dialog request is a small JSON document; more is refused (413) unread.
MAX_REQUEST_BYTES = 1 << 20

# Go's model limits (integration_action.go), checked before a dialog is sent so a mistake
# is a clear error here rather than a 400 from the server.
DIALOG_TITLE_MAX = 24
ELEMENT_DISPLAY_NAME_MAX = 24
ELEMENT_NAME_MAX = 300
ELEMENT_HELP_TEXT_MAX = 150
TEXT_MAX = 150
TEXTAREA_MAX = 3000
SELECT_MAX = 3000
TEXT_SUBTYPES = ("", "text", "email", "number", "tel", "url", "password")
BUTTON_STYLES = ("", "default", "primary", "success", "good", "warning", "danger")

F = TypeVar("F", bound=Callable[..., Any])
Runner = Callable[..., Awaitable[Any]]
_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_HEX_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


class InteractiveRegistrationError(ValueError):
    """An ``@action`` or ``@dialog`` declaration is malformed or clashes with another."""


# --- declarations ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RouteSpec:
    kind: str  # "action" or "dialog"
    name: str


def _check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InteractiveRegistrationError(
            f"@{kind}({name!r}): a name is letters, digits, '_', '.' and '-' (it is part of a URL)"
        )
    return name


def _marker(kind: str, name: str) -> Callable[[F], F]:
    spec = RouteSpec(kind, _check_name(kind, name))

    def mark(fn: F) -> F:
        if not callable(fn):
            raise InteractiveRegistrationError(f"@{kind}({name!r}) must decorate a function")
        if getattr(fn, INTERACTIVE_ATTR, None) is not None:
            raise InteractiveRegistrationError(
                f"{getattr(fn, '__qualname__', fn)!s} already handles an action or dialog"
            )
        setattr(fn, INTERACTIVE_ATTR, spec)
        return fn

    return mark


def action(name: str) -> Callable[[F], F]:
    """Make the decorated ``Plugin`` method answer the buttons and menus made with
    ``Button(name, ...)`` / ``Select(name, ...)``. It gets an ``ActionRequest``."""
    return _marker("action", name)


def dialog(name: str) -> Callable[[F], F]:
    """Make the decorated ``Plugin`` method receive the submissions (and, with
    ``notify_on_cancel``, cancellations) of dialogs opened with ``open_dialog(..., name,
    ...)``. It gets a ``DialogSubmission``."""
    return _marker("dialog", name)


def action_url(plugin_id: str, name: str) -> str:
    """The integration URL of action ``name`` of plugin ``plugin_id``."""
    return f"/plugins/{plugin_id}{ACTION_PATH}{_check_name('action', name)}"


def dialog_url(plugin_id: str, name: str) -> str:
    """The URL dialog ``name`` of plugin ``plugin_id`` submits to."""
    return f"/plugins/{plugin_id}{DIALOG_PATH}{_check_name('dialog', name)}"


# --- requests and answers ---------------------------------------------------------------------


def _str(body: Mapping[str, Any], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


def _dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


@dataclasses.dataclass
class ActionRequest:
    """A click on a button or a choice in a menu (Go's ``PostActionIntegrationRequest``).

    ``user_id`` is the acting user, from the server's ``Mattermost-User-Id`` header.
    ``context`` is the ``context`` the button was made with (a menu adds
    ``selected_option``). ``trigger_id`` opens a dialog in answer (``open_dialog``).
    """

    action: str
    user_id: str
    user_name: str = ""
    channel_id: str = ""
    channel_name: str = ""
    team_id: str = ""
    team_name: str = ""
    post_id: str = ""
    trigger_id: str = ""
    type: str = ""
    data_source: str = ""
    context: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def selected_option(self) -> str:
        """The value chosen in a menu ("" for a button)."""
        value = self.context.get("selected_option")
        return value if isinstance(value, str) else ""

    @classmethod
    def from_json(cls, action: str, user_id: str, body: Mapping[str, Any]) -> ActionRequest:
        return cls(
            action=action,
            user_id=user_id,
            user_name=_str(body, "user_name"),
            channel_id=_str(body, "channel_id"),
            channel_name=_str(body, "channel_name"),
            team_id=_str(body, "team_id"),
            team_name=_str(body, "team_domain"),
            post_id=_str(body, "post_id"),
            trigger_id=_str(body, "trigger_id"),
            type=_str(body, "type"),
            data_source=_str(body, "data_source"),
            context=_dict(body.get("context")),
        )

    def to_json(self) -> dict[str, Any]:
        """The body the server sends (the test kit uses it)."""
        body: dict[str, Any] = {
            "user_id": self.user_id,
            "user_name": self.user_name,
            "channel_id": self.channel_id,
            "channel_name": self.channel_name,
            "team_id": self.team_id,
            "team_domain": self.team_name,
            "post_id": self.post_id,
            "trigger_id": self.trigger_id,
            "type": self.type,
            "data_source": self.data_source,
        }
        if self.context:
            body["context"] = self.context
        return body


@dataclasses.dataclass
class ActionResponse:
    """The answer to an action (Go's ``PostActionIntegrationResponse``).

    ``update`` replaces the post the button is on (the server keeps its id, channel and
    author); ``ephemeral_text`` is shown to the acting user only; ``goto_location`` sends
    their client to a URL.
    """

    update: Post | None = None
    ephemeral_text: str = ""
    skip_slack_parsing: bool = False
    goto_location: str = ""

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "update": None,
            "ephemeral_text": self.ephemeral_text,
            "skip_slack_parsing": self.skip_slack_parsing,
        }
        if self.update is not None:
            body["update"] = _update_json(self.update)
        if self.goto_location:
            body["goto_location"] = self.goto_location
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ActionResponse:
        from google.protobuf.json_format import ParseDict

        update = body.get("update")
        return cls(
            update=ParseDict(update, Post(), ignore_unknown_fields=True)
            if isinstance(update, dict)
            else None,
            ephemeral_text=_str(body, "ephemeral_text"),
            skip_slack_parsing=bool(body.get("skip_slack_parsing")),
            goto_location=_str(body, "goto_location"),
        )


def _update_json(post: Post) -> dict[str, Any]:
    """The fields of Go's ``model.Post`` JSON that the server takes from an action's update
    (its message, props, files, pinning and reactions; it keeps the post's id, channel and
    author itself). Only these: protobuf's JSON writes 64-bit integers as strings, which Go's
    decoder refuses, and the timestamps are the server's to set anyway."""
    from google.protobuf.json_format import MessageToDict

    body: dict[str, Any] = {
        "id": post.id,
        "channel_id": post.channel_id,
        "user_id": post.user_id,
        "root_id": post.root_id,
        "message": post.message,
        "type": post.type,
        "is_pinned": post.is_pinned,
        "has_reactions": post.has_reactions,
        "file_ids": list(post.file_ids),
    }
    if post.HasField("props"):
        # An empty object clears the props; without the key the server keeps the post's.
        body["props"] = MessageToDict(post.props)
    return body


def update_post(post: Post, ephemeral_text: str = "") -> ActionResponse:
    """Answer an action by replacing its post with ``post`` (and, optionally, telling the
    acting user something)."""
    if not isinstance(post, Post):
        raise TypeError(f"update_post takes a Post, got {type(post).__name__}")
    return ActionResponse(update=post, ephemeral_text=ephemeral_text)


def ephemeral(text: str) -> ActionResponse:
    """Answer an action with a message only the acting user sees."""
    return ActionResponse(ephemeral_text=text)


@dataclasses.dataclass
class DialogSubmission:
    """A dialog submitted or cancelled (Go's ``SubmitDialogRequest``).

    ``values`` holds the fields by element name (text as str, bool as bool, a select's
    chosen value); ``cancelled`` is True when the user closed a dialog opened with
    ``notify_on_cancel``. ``user_id`` is the acting user, from the server's header.
    """

    dialog: str
    user_id: str
    channel_id: str = ""
    team_id: str = ""
    callback_id: str = ""
    state: str = ""
    values: dict[str, Any] = dataclasses.field(default_factory=dict)
    cancelled: bool = False
    type: str = ""
    file_ids: list[str] = dataclasses.field(default_factory=list)

    @classmethod
    def from_json(cls, dialog: str, user_id: str, body: Mapping[str, Any]) -> DialogSubmission:
        file_ids = body.get("file_ids")
        return cls(
            dialog=dialog,
            user_id=user_id,
            channel_id=_str(body, "channel_id"),
            team_id=_str(body, "team_id"),
            callback_id=_str(body, "callback_id"),
            state=_str(body, "state"),
            values=_dict(body.get("submission")),
            cancelled=body.get("cancelled") is True,
            type=_str(body, "type"),
            file_ids=[f for f in file_ids if isinstance(f, str)]
            if isinstance(file_ids, list)
            else [],
        )

    def to_json(self) -> dict[str, Any]:
        """The body the server sends (the test kit uses it)."""
        body: dict[str, Any] = {
            "type": self.type or "dialog_submission",
            "callback_id": self.callback_id,
            "state": self.state,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "team_id": self.team_id,
            "submission": self.values,
            "cancelled": self.cancelled,
        }
        if self.file_ids:
            body["file_ids"] = self.file_ids
        return body


@dataclasses.dataclass
class DialogResponse:
    """The answer to a dialog submission (Go's ``SubmitDialogResponse``): ``errors`` by
    field name and a general ``error`` keep the dialog open showing them."""

    error: str = ""
    errors: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {}
        if self.error:
            body["error"] = self.error
        if self.errors:
            body["errors"] = dict(self.errors)
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> DialogResponse:
        errors = body.get("errors")
        return cls(
            error=_str(body, "error"),
            errors={str(k): str(v) for k, v in errors.items()} if isinstance(errors, dict) else {},
        )

    @property
    def ok(self) -> bool:
        """True when the dialog closes (no error)."""
        return not self.error and not self.errors


def field_errors(errors: Mapping[str, str] | None = None, /, **by_name: str) -> DialogResponse:
    """Keep the dialog open with a problem shown under each named field."""
    merged = {**(errors or {}), **by_name}
    if not merged:
        raise ValueError("field_errors needs at least one field and its problem")
    return DialogResponse(errors={str(k): str(v) for k, v in merged.items()})


def dialog_error(message: str) -> DialogResponse:
    """Keep the dialog open with a general error."""
    if not message:
        raise ValueError("dialog_error needs a message")
    return DialogResponse(error=message)


# --- building posts ---------------------------------------------------------------------------


def _check_style(style: str) -> str:
    if style not in BUTTON_STYLES and not _HEX_COLOR.match(style):
        raise ValueError(
            f"button style {style!r} is not one of {', '.join(s for s in BUTTON_STYLES if s)} "
            f"or a hex color"
        )
    return style


def _json_context(context: Mapping[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(context)
    except (TypeError, ValueError) as e:
        raise TypeError(f"an action's context must be JSON: {e}") from None
    return dict(context)


@dataclasses.dataclass
class Button:
    """A button that calls the ``@action(action)`` handler with ``context``."""

    action: str
    text: str
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    style: str = ""
    tooltip: str = ""
    disabled: bool = False
    id: str = ""

    def to_json(self, plugin_id: str) -> dict[str, Any]:
        if not self.text:
            raise ValueError(f"button for action {self.action!r} needs a text")
        body: dict[str, Any] = {
            "type": "button",
            "name": self.text,
            "integration": {
                "url": action_url(plugin_id, self.action),
                "context": _json_context(self.context),
            },
        }
        if self.id:
            body["id"] = _checked_id(self.id)
        if _check_style(self.style):
            body["style"] = self.style
        if self.tooltip:
            body["tooltip"] = self.tooltip
        if self.disabled:
            body["disabled"] = True
        return body


@dataclasses.dataclass
class Select:
    """A menu that calls the ``@action(action)`` handler with ``context`` plus
    ``selected_option``: ``options`` as ``(text, value)`` pairs, or ``data_source``
    ``"users"`` / ``"channels"``."""

    action: str
    text: str
    options: Sequence[tuple[str, str]] = ()
    data_source: str = ""
    default_option: str = ""
    context: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    id: str = ""

    def to_json(self, plugin_id: str) -> dict[str, Any]:
        if bool(self.options) == bool(self.data_source):
            raise ValueError(
                f"menu for action {self.action!r} needs either options or a data_source"
            )
        if self.data_source not in ("", "users", "channels"):
            raise ValueError(f"data_source must be 'users' or 'channels', not {self.data_source!r}")
        body: dict[str, Any] = {
            "type": "select",
            "name": self.text,
            "integration": {
                "url": action_url(plugin_id, self.action),
                "context": _json_context(self.context),
            },
        }
        if self.options:
            body["options"] = [{"text": t, "value": v} for t, v in self.options]
        if self.data_source:
            body["data_source"] = self.data_source
        if self.default_option:
            body["default_option"] = self.default_option
        if self.id:
            body["id"] = _checked_id(self.id)
        return body


def _checked_id(value: str) -> str:
    # The client calls /api/v4/posts/<post>/actions/<id>: letters and digits only.
    if not value.isalnum() or not value.isascii():
        raise ValueError(f"an action id is letters and digits only, got {value!r}")
    return value


@dataclasses.dataclass
class AttachmentField:
    """A title/value pair shown in an attachment (``short`` ones sit side by side)."""

    title: str
    value: str
    short: bool = False


@dataclasses.dataclass
class Attachment:
    """A message attachment (Go's ``MessageAttachment``) with its buttons and menus."""

    text: str = ""
    title: str = ""
    title_link: str = ""
    pretext: str = ""
    fallback: str = ""
    color: str = ""
    author_name: str = ""
    footer: str = ""
    image_url: str = ""
    thumb_url: str = ""
    fields: Sequence[AttachmentField] = ()
    actions: Sequence[Button | Select] = ()

    def to_json(self, plugin_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {}
        for name in (
            "text",
            "title",
            "title_link",
            "pretext",
            "fallback",
            "color",
            "author_name",
            "footer",
            "image_url",
            "thumb_url",
        ):
            value = getattr(self, name)
            if value:
                body[name] = value
        if self.fields:
            body["fields"] = [
                {"title": f.title, "value": f.value, "short": f.short} for f in self.fields
            ]
        if self.actions:
            body["actions"] = [a.to_json(plugin_id) for a in self.actions]
        return body


def attach(post: Post, plugin_id: str, *attachments: Attachment) -> Post:
    """Set ``post``'s attachments (``props["attachments"]``, replacing any) and return it."""
    if not attachments:
        raise ValueError("attach needs at least one Attachment")
    post.props["attachments"] = [a.to_json(plugin_id) for a in attachments]
    return post


# --- dialogs ------------------------------------------------------------------------------------


def _limit(what: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise ValueError(f"{what} is {len(value)} characters; the server allows {limit}")


@dataclasses.dataclass
class Element:
    """A dialog field (Go's ``DialogElement``): build one with its subclass for the field's
    type (``TextElement``, ``TextareaElement``, ``SelectElement``, ``RadioElement``,
    ``BoolElement``), or set ``type`` yourself for another (``date``, ``datetime``)."""

    name: str
    display_name: str
    type: str = "text"
    subtype: str = ""
    default: str = ""
    placeholder: str = ""
    help_text: str = ""
    optional: bool = False
    min_length: int = 0
    max_length: int = 0
    data_source: str = ""
    options: Sequence[tuple[str, str]] = ()

    def check(self) -> None:
        if not self.name:
            raise ValueError("a dialog element needs a name")
        _limit(f"element {self.name!r} display_name", self.display_name, ELEMENT_DISPLAY_NAME_MAX)
        _limit(f"element {self.name!r} name", self.name, ELEMENT_NAME_MAX)
        _limit(f"element {self.name!r} help_text", self.help_text, ELEMENT_HELP_TEXT_MAX)
        if self.min_length < 0 or (self.max_length and self.min_length > self.max_length):
            raise ValueError(f"element {self.name!r}: min_length must be 0..max_length")
        limit = {"text": TEXT_MAX, "textarea": TEXTAREA_MAX, "select": SELECT_MAX}.get(
            self.type, TEXT_MAX
        )
        _limit(f"element {self.name!r} default", self.default, limit)
        _limit(f"element {self.name!r} placeholder", self.placeholder, limit)
        if self.type in ("text", "textarea") and self.subtype not in TEXT_SUBTYPES:
            raise ValueError(
                f"element {self.name!r}: subtype {self.subtype!r} is not one of {TEXT_SUBTYPES}"
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "display_name": self.display_name,
            "name": self.name,
            "type": self.type,
            "subtype": self.subtype,
            "default": self.default,
            "placeholder": self.placeholder,
            "help_text": self.help_text,
            "optional": self.optional,
            "min_length": self.min_length,
            "max_length": self.max_length,
            "data_source": self.data_source,
            "options": [{"text": t, "value": v} for t, v in self.options],
        }


class TextElement(Element):
    """A one-line text field (``subtype``: email, number, tel, url, password)."""

    def __init__(
        self,
        name: str,
        display_name: str,
        *,
        subtype: str = "",
        default: str = "",
        placeholder: str = "",
        help_text: str = "",
        optional: bool = False,
        min_length: int = 0,
        max_length: int = 0,
    ) -> None:
        super().__init__(
            name, display_name, "text", subtype, default, placeholder, help_text, optional,
            min_length, max_length,
        )  # fmt: skip


class TextareaElement(Element):
    """A multi-line text field."""

    def __init__(
        self,
        name: str,
        display_name: str,
        *,
        default: str = "",
        placeholder: str = "",
        help_text: str = "",
        optional: bool = False,
        min_length: int = 0,
        max_length: int = 0,
    ) -> None:
        super().__init__(
            name, display_name, "textarea", "", default, placeholder, help_text, optional,
            min_length, max_length,
        )  # fmt: skip


class SelectElement(Element):
    """A menu: ``options`` as ``(text, value)`` pairs, or ``data_source`` users/channels."""

    def __init__(
        self,
        name: str,
        display_name: str,
        options: Sequence[tuple[str, str]] = (),
        *,
        data_source: str = "",
        default: str = "",
        placeholder: str = "",
        help_text: str = "",
        optional: bool = False,
    ) -> None:
        super().__init__(
            name, display_name, "select", "", default, placeholder, help_text, optional,
            data_source=data_source, options=tuple(options),
        )  # fmt: skip


class RadioElement(Element):
    """Radio buttons: ``options`` as ``(text, value)`` pairs."""

    def __init__(
        self,
        name: str,
        display_name: str,
        options: Sequence[tuple[str, str]],
        *,
        default: str = "",
        help_text: str = "",
        optional: bool = False,
    ) -> None:
        super().__init__(
            name, display_name, "radio", "", default, "", help_text, optional,
            options=tuple(options),
        )  # fmt: skip


class BoolElement(Element):
    """A checkbox (``placeholder`` is the text beside it); submitted as a bool."""

    def __init__(
        self,
        name: str,
        display_name: str,
        *,
        default: bool = False,
        placeholder: str = "",
        help_text: str = "",
        optional: bool = True,
    ) -> None:
        # Go's DialogElement.Default is a string: "true" checks the box.
        super().__init__(
            name, display_name, "bool", "", "true" if default else "", placeholder, help_text,
            optional,
        )  # fmt: skip


@dataclasses.dataclass
class InteractiveDialog:
    """An interactive dialog (Go's ``model.Dialog``; ``mattermost_plugin.Dialog`` is the
    contract's message of that name); ``open_dialog`` sends it."""

    title: str
    elements: Sequence[Element] = ()
    introduction_text: str = ""
    submit_label: str = ""
    notify_on_cancel: bool = False
    state: str = ""
    callback_id: str = ""
    icon_url: str = ""

    def check(self) -> None:
        if not self.title or len(self.title) > DIALOG_TITLE_MAX:
            raise ValueError(
                f"a dialog title is 1 to {DIALOG_TITLE_MAX} characters, got {self.title!r}"
            )
        seen: set[str] = set()
        for element in self.elements:
            element.check()
            if element.name in seen:
                raise ValueError(f"dialog {self.title!r} has two elements named {element.name!r}")
            seen.add(element.name)

    def request(self, plugin_id: str, name: str, trigger_id: str) -> OpenDialogRequest:
        """The ``OpenDialogRequest`` that opens this dialog for ``@dialog(name)``."""
        from google.protobuf.json_format import ParseDict

        if not trigger_id:
            raise ValueError(
                "open_dialog needs the trigger_id of the slash command or action being answered "
                "(CommandCall.args.trigger_id, ActionRequest.trigger_id)"
            )
        self.check()
        body = {
            "callback_id": self.callback_id,
            "title": self.title,
            "introduction_text": self.introduction_text,
            "icon_url": self.icon_url,
            # Go's JSON spells it "subtype", the contract's field "sub_type".
            "elements": [_proto_names(e.to_json()) for e in self.elements],
            "submit_label": self.submit_label,
            "notify_on_cancel": self.notify_on_cancel,
            "state": self.state,
        }
        request = OpenDialogRequest(trigger_id=trigger_id, url=dialog_url(plugin_id, name))
        ParseDict(body, request.dialog)
        return request


def _proto_names(element: dict[str, Any]) -> dict[str, Any]:
    element = dict(element)
    element["sub_type"] = element.pop("subtype")
    return element


@overload
def open_dialog(
    api: PluginAPIClient, trigger_id: str, name: str, dialog: InteractiveDialog
) -> None: ...
@overload
def open_dialog(
    api: AsyncPluginAPIClient, trigger_id: str, name: str, dialog: InteractiveDialog
) -> Awaitable[None]: ...
def open_dialog(
    api: PluginAPIClient | AsyncPluginAPIClient,
    trigger_id: str,
    name: str,
    dialog: InteractiveDialog,
) -> Awaitable[None] | None:
    """Open ``dialog`` for the user of ``trigger_id``; its submissions reach ``@dialog(name)``.

    With ``self.api`` it blocks; with ``self.aapi`` it returns an awaitable. The trigger id
    of a slash command or action is valid for a short while (the server's outgoing
    integration timeout), so open the dialog while answering it.
    """
    request = dialog.request(api._plugin_id, name, trigger_id)
    if isinstance(api, AsyncClient):
        return api.open_interactive_dialog(request)
    api.open_interactive_dialog(request)
    return None


# --- routing ------------------------------------------------------------------------------------


class InteractiveRoutes:
    """The ``@action`` and ``@dialog`` handlers of one plugin class, and their HTTP routing."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.actions: dict[str, str] = {}  # name -> attr
        self.dialogs: dict[str, str] = {}

    @classmethod
    def collect(cls, plugin_cls: type) -> InteractiveRoutes | None:
        found: dict[str, RouteSpec] = {}
        for klass in reversed(plugin_cls.__mro__):
            for attr, value in vars(klass).items():
                spec = getattr(value, INTERACTIVE_ATTR, None)
                if isinstance(spec, RouteSpec):
                    found[attr] = spec
                elif attr in found:
                    del found[attr]
        if not found:
            return None
        routes = cls(plugin_cls.__qualname__)
        for attr, spec in found.items():
            table = routes.actions if spec.kind == "action" else routes.dialogs
            if spec.name in table:
                raise InteractiveRegistrationError(
                    f"{routes.owner}: @{spec.kind}({spec.name!r}) is declared twice "
                    f"({table[spec.name]} and {attr})"
                )
            table[spec.name] = attr
        return routes

    def match(self, path: str) -> tuple[str, str] | None:
        """``(kind, name)`` when ``path`` is one of the SDK's routes."""
        for kind, prefix in (("action", ACTION_PATH), ("dialog", DIALOG_PATH)):
            if path.startswith(prefix):
                return kind, path[len(prefix) :]
        return None

    def http_handler(
        self, plugin: Plugin, own: Callable[..., Any] | None
    ) -> Callable[..., Awaitable[None]]:
        """The ``ServeHTTP`` handler: the SDK's routes, then the plugin's own handler."""

        async def serve(context: Any, writer: HTTPResponseWriter, request: HTTPRequest) -> None:
            matched = self.match(request.path)
            if matched is None:
                if own is None:
                    _reply(writer, 404, {"error": f"no route for {request.path}"})
                    return
                await _run(plugin, own, context, writer, request)
                return
            await self._serve(plugin, matched[0], matched[1], writer, request)

        return serve

    async def _serve(
        self,
        plugin: Plugin,
        kind: str,
        name: str,
        writer: HTTPResponseWriter,
        request: HTTPRequest,
    ) -> None:
        table = self.actions if kind == "action" else self.dialogs
        attr = table.get(name)
        if attr is None:
            _reply(writer, 404, {"error": f"this plugin has no {kind} named {name!r}"})
            return
        if request.method != "POST":
            writer.headers["Allow"] = ["POST"]
            _reply(writer, 405, {"error": f"{kind} requests are POST"})
            return
        user_id = request.user_id
        if not user_id:
            # Only the server, on behalf of a logged-in user, sets the header.
            _reply(writer, 401, {"error": "not logged in"})
            return
        if request.content_length > MAX_REQUEST_BYTES:
            _reply(writer, 413, {"error": f"a {kind} request is at most {MAX_REQUEST_BYTES} bytes"})
            return
        data = await request.abody()
        if len(data) > MAX_REQUEST_BYTES:
            _reply(writer, 413, {"error": f"a {kind} request is at most {MAX_REQUEST_BYTES} bytes"})
            return
        try:
            body = json.loads(data) if data else {}
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            _reply(writer, 400, {"error": f"the {kind} request is not JSON: {e}"})
            return
        if not isinstance(body, dict):
            _reply(writer, 400, {"error": f"the {kind} request is not a JSON object"})
            return
        handler = getattr(plugin, attr)
        where = f"{type(plugin).__name__}.{attr}"
        try:
            if kind == "action":
                result = await _run(plugin, handler, ActionRequest.from_json(name, user_id, body))
                answer = _action_answer(result, where).to_json()
            else:
                submission = DialogSubmission.from_json(name, user_id, body)
                result = await _run(plugin, handler, submission)
                answer = _dialog_answer(result, where).to_json()
        except Exception as e:
            log.error("%s handler %s failed: %s", kind, where, e, exc_info=e)
            failure = "Something went wrong; the error is in the server log."
            if kind == "action":
                _reply(writer, 500, {"ephemeral_text": failure})
            else:
                _reply(writer, 500, {"error": failure})
            return
        _reply(writer, 200, answer)


def _action_answer(value: Any, where: str) -> ActionResponse:
    if value is None:
        return ActionResponse()
    if isinstance(value, ActionResponse):
        return value
    if isinstance(value, str):
        return ephemeral(value)
    raise TypeError(
        f"action handler {where} must return an ActionResponse, a str or None, "
        f"got {type(value).__name__}"
    )


def _dialog_answer(value: Any, where: str) -> DialogResponse:
    if value is None:
        return DialogResponse()
    if isinstance(value, DialogResponse):
        return value
    raise TypeError(
        f"dialog handler {where} must return a DialogResponse (field_errors, dialog_error) "
        f"or None, got {type(value).__name__}"
    )


def _reply(writer: HTTPResponseWriter, status: int, body: Mapping[str, Any]) -> None:
    writer.headers["Content-Type"] = ["application/json"]
    writer.write_header(status)
    writer.write(json.dumps(body).encode())


async def _run(plugin: Plugin, handler: Callable[..., Any], *args: Any) -> Any:
    """Run a handler as the dispatcher does (the runner captured at OnActivate): async ones
    on the loop, sync ones in a worker thread within the plugin's handler limit."""
    run = plugin._handler_runner
    if run is not None:
        result = await run(handler, *args)
    elif inspect.iscoroutinefunction(handler):
        result = await handler(*args)
    else:  # not activated through the runtime (a hand-built test): a plain thread
        result = await asyncio.to_thread(handler, *args)
    if inspect.isawaitable(result):
        result = await result
    return result


async def on_activate(
    plugin: Plugin, run: Runner, then: Callable[..., Awaitable[Any]] | None, *args: Any
) -> Any:
    """The ``OnActivate`` step: remember how the dispatcher runs handlers (ServeHTTP
    handlers are not given it), then the rest of the chain."""
    plugin._handler_runner = run
    return None if then is None else await then(*args)
