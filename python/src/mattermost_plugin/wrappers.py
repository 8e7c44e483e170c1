"""Frozen dataclasses for Mattermost entities, as Mattermost's own Python SDK has them.

That SDK returns these from its client (``User``, ``Post``, ``Team``, ...) and takes them as
arguments; each has ``from_proto(message)`` and ``to_proto()``. mmplug's client returns the
contract's protobuf messages, which have the same field names (docs/upstream.md lists the
few that differ), and takes these dataclasses wherever it takes a message. So code written
for that SDK can keep building them (``Post(id="", channel_id=c, message="hi")``), and
``Post.from_proto(api.get_post(post_id))`` turns what mmplug returns into one.

``from_proto`` reads any message with the fields (ours; missing fields keep their
defaults); ``to_proto`` builds mmplug's message. Every wrapper of that SDK's newest
``_internal/wrappers.py`` is here with its fields and defaults; where its field differs
from Go's (``OAuthApp.callback_urls`` a comma-separated string, ``GroupSyncable.syncable_type``,
``DialogElement.subtype``, ``PushNotification.badge`` a string, ``SharedChannel.home``, the
flat ``AuditRecord``), the conversion maps it onto mmplug's message. A wrapper of any other
entity (a message name of mmplug's) is made on first use with that message's fields.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

__all__ = [
    "AuditRecord",
    "Bot",
    "BotGetOptions",
    "BotPatch",
    "Channel",
    "ChannelMember",
    "ChannelStats",
    "ChannelType",
    "Command",
    "CommandArgs",
    "CommandResponse",
    "CustomStatus",
    "Dialog",
    "DialogElement",
    "Emoji",
    "FileInfo",
    "Group",
    "GroupMember",
    "GroupSyncable",
    "OAuthApp",
    "OpenDialogRequest",
    "OrderedSidebarCategories",
    "PluginInfo",
    "PluginKVSetOptions",
    "PluginStatus",
    "Post",
    "PostList",
    "Preference",
    "PushNotification",
    "Reaction",
    "Session",
    "SharedChannel",
    "SidebarCategoryWithChannels",
    "Team",
    "TeamMember",
    "TeamMemberWithError",
    "TeamStats",
    "TeamType",
    "TeamUnread",
    "UploadSession",
    "User",
    "UserAccessToken",
    "UserAuth",
    "UserStatus",
    "ViewUsersRestrictions",
    "Wrapper",
]

W = TypeVar("W", bound="Wrapper")


class TeamType(str, enum.Enum):
    """A team's ``type``."""

    OPEN = "O"
    INVITE = "I"


class ChannelType(str, enum.Enum):
    """A channel's ``type``."""

    OPEN = "O"
    PRIVATE = "P"
    DIRECT = "D"
    GROUP = "G"


def _message_class(name: str) -> type[Message]:
    import mattermost_plugin

    cls: type[Message] = getattr(mattermost_plugin, name)
    return cls


def _python(message: Message, fd: FieldDescriptor, nested: Any) -> Any:
    from ._convert import get_field

    value = get_field(message, fd)
    if nested is None or value is None:
        return value
    if isinstance(value, dict):
        return {k: nested.from_proto(v) for k, v in value.items()}
    if isinstance(value, list):
        return [nested.from_proto(v) for v in value]
    return nested.from_proto(value)


class Wrapper:
    """``from_proto``/``to_proto`` by field name, for the dataclasses below."""

    _message: ClassVar[str] = ""
    # wrapper field -> message field, where the names differ.
    _renames: ClassVar[dict[str, str]] = {}
    # wrapper field -> wrapper class of its value (or of its values' items).
    _nested: ClassVar[dict[str, Any]] = {}
    # wrapper field -> conversion of its value, to the message's and from it.
    _to_message: ClassVar[dict[str, Any]] = {}
    _from_message: ClassVar[dict[str, Any]] = {}

    @classmethod
    def from_proto(cls: type[W], proto: Message) -> W:
        """The dataclass of a message (mmplug's, or any with the same field names)."""
        by_name: Any = proto.DESCRIPTOR.fields_by_name
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            fd = by_name.get(cls._renames.get(f.name, f.name))
            if fd is None:
                continue
            value = _python(proto, fd, cls._nested.get(f.name))
            convert = cls._from_message.get(f.name)
            if convert is not None:
                value = convert(value)
            if value is None and f.default is dataclasses.MISSING:
                value = "" if fd.type == FieldDescriptor.TYPE_STRING else value
            if value is not None or f.default is None:
                kwargs[f.name] = value
        return cls(**kwargs)

    def to_proto(self) -> Message:
        """mmplug's message with these fields (None leaves a field unset)."""
        from ._convert import set_field

        message = _message_class(self._message or type(self).__name__)()
        by_name: Any = message.DESCRIPTOR.fields_by_name
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            fd = by_name.get(self._renames.get(f.name, f.name))
            value = getattr(self, f.name)
            convert = self._to_message.get(f.name)
            if convert is not None and value is not None:
                value = convert(value)
            if fd is None or value is None:
                continue
            if value == {} and fd.message_type is not None and not fd.is_repeated:
                continue  # an empty props/meta Struct stays unset, as Go's nil map
            if isinstance(value, enum.Enum):
                value = value.value
            if isinstance(value, Wrapper):
                value = value.to_proto()
            elif isinstance(value, list):
                value = [v.to_proto() if isinstance(v, Wrapper) else v for v in value]
            elif isinstance(value, dict):
                value = {k: v.to_proto() if isinstance(v, Wrapper) else v for k, v in value.items()}
            set_field(message, fd, value)
        return message


@dataclass(frozen=True)
class User(Wrapper):
    id: str
    username: str = ""
    email: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    email_verified: bool = False
    nickname: str = ""
    first_name: str = ""
    last_name: str = ""
    position: str = ""
    roles: str = ""
    locale: str = ""
    timezone: dict[str, str] = field(default_factory=dict)
    is_bot: bool = False
    bot_description: str = ""
    auth_data: str | None = None
    auth_service: str = ""
    props: dict[str, str] = field(default_factory=dict)
    notify_props: dict[str, str] = field(default_factory=dict)
    last_password_update: int = 0
    last_picture_update: int = 0
    failed_attempts: int = 0
    mfa_active: bool = False
    remote_id: str | None = None
    last_activity_at: int = 0
    bot_last_icon_update: int = 0
    terms_of_service_id: str = ""
    terms_of_service_create_at: int = 0
    disable_welcome_email: bool = False
    last_login: int = 0


@dataclass(frozen=True)
class UserStatus(Wrapper):
    _message: ClassVar[str] = "Status"

    user_id: str
    status: str
    manual: bool = False
    last_activity_at: int = 0
    dnd_end_time: int = 0


@dataclass(frozen=True)
class CustomStatus(Wrapper):
    emoji: str = ""
    text: str = ""
    duration: str = ""
    expires_at: Any = None


@dataclass(frozen=True)
class UserAuth(Wrapper):
    auth_data: str | None = None
    auth_service: str = ""


@dataclass(frozen=True)
class Session(Wrapper):
    _renames: ClassVar[dict[str, str]] = {"is_oauth": "is_o_auth"}

    id: str
    token: str = ""
    create_at: int = 0
    expires_at: int = 0
    last_activity_at: int = 0
    user_id: str = ""
    device_id: str = ""
    roles: str = ""
    is_oauth: bool = False
    expired_notify: bool = False
    props: dict[str, str] = field(default_factory=dict)
    local: bool = False


@dataclass(frozen=True)
class UserAccessToken(Wrapper):
    id: str
    token: str = ""
    user_id: str = ""
    description: str = ""
    is_active: bool = True


@dataclass(frozen=True)
class Team(Wrapper):
    id: str
    display_name: str = ""
    name: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    description: str = ""
    email: str = ""
    type: str = "O"
    company_name: str = ""
    allowed_domains: str = ""
    invite_id: str = ""
    allow_open_invite: bool = False
    last_team_icon_update: int = 0
    scheme_id: str | None = None
    group_constrained: bool | None = None
    policy_id: str | None = None
    cloud_limits_archived: bool = False


@dataclass(frozen=True)
class TeamMember(Wrapper):
    team_id: str
    user_id: str
    roles: str = ""
    delete_at: int = 0
    scheme_guest: bool = False
    scheme_user: bool = False
    scheme_admin: bool = False
    create_at: int = 0


@dataclass(frozen=True)
class TeamMemberWithError(Wrapper):
    user_id: str
    member: TeamMember | None = None
    error: str | None = None

    @classmethod
    def from_proto(cls, proto: Message) -> TeamMemberWithError:
        message: Any = proto
        member = TeamMember.from_proto(message.member) if message.HasField("member") else None
        error = message.error if message.HasField("error") else None
        return cls(
            user_id=str(message.user_id),
            member=member,
            error=(error.message or error.id or None) if error is not None else None,
        )


@dataclass(frozen=True)
class TeamUnread(Wrapper):
    team_id: str
    msg_count: int = 0
    mention_count: int = 0
    mention_count_root: int = 0
    msg_count_root: int = 0
    thread_count: int = 0
    thread_mention_count: int = 0


@dataclass(frozen=True)
class TeamStats(Wrapper):
    team_id: str
    total_member_count: int = 0
    active_member_count: int = 0


@dataclass(frozen=True)
class Channel(Wrapper):
    id: str
    team_id: str = ""
    display_name: str = ""
    name: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    type: str = "O"
    header: str = ""
    purpose: str = ""
    last_post_at: int = 0
    total_msg_count: int = 0
    extra_update_at: int = 0
    creator_id: str = ""
    scheme_id: str | None = None
    props: dict[str, Any] = field(default_factory=dict)
    group_constrained: bool | None = None
    auto_translation: bool = False
    shared: bool | None = None
    total_msg_count_root: int = 0
    policy_id: str | None = None
    last_root_post_at: int = 0
    policy_enforced: bool = False
    policy_is_active: bool = False
    default_category_name: str = ""


@dataclass(frozen=True)
class ChannelMember(Wrapper):
    channel_id: str
    user_id: str
    roles: str = ""
    last_viewed_at: int = 0
    msg_count: int = 0
    mention_count: int = 0
    mention_count_root: int = 0
    msg_count_root: int = 0
    notify_props: dict[str, str] = field(default_factory=dict)
    last_update_at: int = 0
    scheme_guest: bool = False
    scheme_user: bool = False
    scheme_admin: bool = False
    urgent_mention_count: int = 0


@dataclass(frozen=True)
class ChannelStats(Wrapper):
    _renames: ClassVar[dict[str, str]] = {"pinnedpost_count": "pinned_post_count"}

    channel_id: str
    member_count: int = 0
    guest_count: int = 0
    pinnedpost_count: int = 0
    files_count: int = 0


@dataclass(frozen=True)
class SidebarCategoryWithChannels(Wrapper):
    """Flat, as the other SDK has it; mmplug's message (as Go's) nests the category."""

    id: str = ""
    user_id: str = ""
    team_id: str = ""
    display_name: str = ""
    type: str = ""
    sorting: str = ""  # Go's SidebarCategorySorting ("", "alpha", "recent", "manual")
    muted: bool = False
    collapsed: bool = False
    channel_ids: list[str] = field(default_factory=list)

    _CATEGORY: ClassVar[tuple[str, ...]] = (
        "id",
        "user_id",
        "team_id",
        "display_name",
        "type",
        "sorting",
        "muted",
        "collapsed",
    )

    @classmethod
    def from_proto(cls, proto: Message) -> SidebarCategoryWithChannels:
        if "sidebar_category" not in proto.DESCRIPTOR.fields_by_name:
            return super().from_proto(proto)
        message: Any = proto
        category = message.sidebar_category
        values = {k: getattr(category, k) for k in cls._CATEGORY if hasattr(category, k)}
        return cls(**values, channel_ids=list(message.channels))

    def to_proto(self) -> Message:
        message: Any = _message_class("SidebarCategoryWithChannels")()
        category = message.sidebar_category
        for k in self._CATEGORY:
            if k in category.DESCRIPTOR.fields_by_name:
                value = getattr(self, k)
                setattr(category, k, value if k != "sorting" else str(value or ""))
        message.channels.extend(self.channel_ids)
        return message  # type: ignore[no-any-return]


@dataclass(frozen=True)
class OrderedSidebarCategories(Wrapper):
    _nested: ClassVar[dict[str, Any]] = {"categories": SidebarCategoryWithChannels}

    categories: list[SidebarCategoryWithChannels] = field(default_factory=list)
    order: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ViewUsersRestrictions(Wrapper):
    teams: list[str] = field(default_factory=list)
    channels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Reaction(Wrapper):
    user_id: str
    post_id: str
    emoji_name: str
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    remote_id: str | None = None
    channel_id: str | None = None


@dataclass(frozen=True)
class Post(Wrapper):
    id: str
    channel_id: str
    user_id: str = ""
    message: str = ""
    create_at: int = 0
    update_at: int = 0
    edit_at: int = 0
    delete_at: int = 0
    is_pinned: bool = False
    root_id: str = ""
    original_id: str = ""
    message_source: str = ""
    type: str = ""
    props: dict[str, Any] = field(default_factory=dict)
    hashtags: str = ""
    file_ids: list[str] = field(default_factory=list)
    pending_post_id: str = ""
    has_reactions: bool = False
    remote_id: str | None = None
    reply_count: int = 0
    last_reply_at: int = 0
    is_following: bool | None = None


@dataclass(frozen=True)
class PostList(Wrapper):
    _nested: ClassVar[dict[str, Any]] = {"posts": Post}

    order: list[str] = field(default_factory=list)
    posts: dict[str, Post] = field(default_factory=dict)
    next_post_id: str = ""
    prev_post_id: str = ""
    has_next: bool = False


@dataclass(frozen=True)
class FileInfo(Wrapper):
    id: str
    creator_id: str = ""
    post_id: str = ""
    channel_id: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    name: str = ""
    extension: str = ""
    size: int = 0
    mime_type: str = ""
    width: int = 0
    height: int = 0
    has_preview_image: bool = False
    mini_preview: bytes | None = None
    remote_id: str | None = None
    archived: bool = False


@dataclass(frozen=True)
class UploadSession(Wrapper):
    id: str = ""
    type: str = "attachment"
    create_at: int = 0
    user_id: str = ""
    channel_id: str = ""
    filename: str = ""
    path: str = ""
    file_size: int = 0
    file_offset: int = 0
    remote_id: str = ""
    req_file_id: str = ""


@dataclass(frozen=True)
class PluginKVSetOptions(Wrapper):
    atomic: bool = False
    old_value: bytes | None = None
    expire_in_seconds: int = 0


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y", "t")
    return bool(value)


def _url_list(value: Any) -> Any:
    if isinstance(value, str):
        return [u.strip() for u in value.split(",") if u.strip()]
    return value


def _url_text(value: Any) -> Any:
    return ",".join(value) if isinstance(value, list) else value


def _badge(value: Any) -> Any:
    if isinstance(value, str):
        return int(value) if value.strip() else 0
    return value


@dataclass(frozen=True)
class Bot(Wrapper):
    user_id: str = ""
    username: str = ""
    display_name: str = ""
    description: str = ""
    owner_id: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    last_icon_update: int = 0


@dataclass(frozen=True)
class BotPatch(Wrapper):
    """None leaves a field as it is."""

    username: str | None = None
    display_name: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class BotGetOptions(Wrapper):
    owner_id: str = ""
    include_deleted: bool = False
    only_orphaned: bool = False
    page: int = 0
    per_page: int = 60


@dataclass(frozen=True)
class Command(Wrapper):
    id: str = ""
    token: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    creator_id: str = ""
    team_id: str = ""
    trigger: str = ""
    method: str = "P"
    username: str = ""
    icon_url: str = ""
    auto_complete: bool = False
    auto_complete_desc: str = ""
    auto_complete_hint: str = ""
    display_name: str = ""
    description: str = ""
    url: str = ""
    plugin_id: str = ""


@dataclass(frozen=True)
class CommandArgs(Wrapper):
    user_id: str = ""
    channel_id: str = ""
    team_id: str = ""
    root_id: str = ""
    parent_id: str = ""
    trigger_id: str = ""
    command: str = ""
    site_url: str = ""


@dataclass(frozen=True)
class CommandResponse(Wrapper):
    response_type: str = ""
    text: str = ""
    username: str = ""
    channel_id: str = ""
    icon_url: str = ""
    type: str = ""
    props: dict[str, Any] = field(default_factory=dict)
    goto_location: str = ""
    trigger_id: str = ""
    skip_slack_parsing: bool = False


@dataclass(frozen=True)
class Preference(Wrapper):
    user_id: str = ""
    category: str = ""
    name: str = ""
    value: str = ""


@dataclass(frozen=True)
class OAuthApp(Wrapper):
    """``callback_urls`` is a comma-separated string, as the other SDK has it (Go: a list)."""

    _to_message: ClassVar[dict[str, Any]] = {"callback_urls": _url_list}
    _from_message: ClassVar[dict[str, Any]] = {"callback_urls": _url_text}

    id: str = ""
    creator_id: str = ""
    create_at: int = 0
    update_at: int = 0
    client_secret: str = ""
    name: str = ""
    description: str = ""
    icon_url: str = ""
    callback_urls: str = ""
    homepage: str = ""
    is_trusted: bool = False
    mattermost_app_id: str = ""


@dataclass(frozen=True)
class Group(Wrapper):
    id: str = ""
    name: str = ""
    display_name: str = ""
    description: str = ""
    source: str = ""
    remote_id: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    allow_reference: bool = False


@dataclass(frozen=True)
class GroupMember(Wrapper):
    group_id: str = ""
    user_id: str = ""
    create_at: int = 0
    delete_at: int = 0


@dataclass(frozen=True)
class GroupSyncable(Wrapper):
    """``syncable_type`` is Go's ``Type`` ("team" or "channel")."""

    _renames: ClassVar[dict[str, str]] = {"syncable_type": "type"}

    group_id: str = ""
    syncable_id: str = ""
    syncable_type: str = ""
    auto_add: bool = False
    scheme_admin: bool = False
    create_at: int = 0
    delete_at: int = 0
    update_at: int = 0


@dataclass(frozen=True)
class SharedChannel(Wrapper):
    """``home`` is typed ``str`` there and a bool in Go; either is taken ("true" is True)."""

    _to_message: ClassVar[dict[str, Any]] = {"home": _truthy}

    channel_id: str = ""
    team_id: str = ""
    home: Any = ""
    read_only: bool = False
    share_name: str = ""
    share_display_name: str = ""
    share_purpose: str = ""
    share_header: str = ""
    creator_id: str = ""
    create_at: int = 0
    update_at: int = 0
    remote_id: str = ""
    type: str = ""


@dataclass(frozen=True)
class Emoji(Wrapper):
    id: str = ""
    create_at: int = 0
    update_at: int = 0
    delete_at: int = 0
    creator_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class PluginInfo(Wrapper):
    """A plugin's manifest as a dict (``from_proto`` of a ``Manifest`` message)."""

    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_proto(cls, proto: Message) -> PluginInfo:
        from google.protobuf import json_format

        return cls(manifest=json_format.MessageToDict(proto, preserving_proto_field_name=True))

    def to_proto(self) -> Message:
        from google.protobuf import json_format

        message = _message_class("Manifest")()
        json_format.ParseDict(self.manifest, message, ignore_unknown_fields=True)
        return message


@dataclass(frozen=True)
class PluginStatus(Wrapper):
    plugin_id: str = ""
    plugin_path: str = ""
    state: int = 0
    name: str = ""
    description: str = ""
    version: str = ""


def _options_in(value: Any) -> Any:
    return [{"text": o.text, "value": o.value} for o in value or ()]


@dataclass(frozen=True)
class DialogElement(Wrapper):
    """``subtype`` is Go's ``SubType``; ``options`` are ``{"text", "value"}`` dicts."""

    _renames: ClassVar[dict[str, str]] = {"subtype": "sub_type"}
    _from_message: ClassVar[dict[str, Any]] = {"options": _options_in}

    display_name: str = ""
    name: str = ""
    type: str = ""
    subtype: str = ""
    default: str = ""
    placeholder: str = ""
    help_text: str = ""
    optional: bool = False
    min_length: int = 0
    max_length: int = 0
    data_source: str = ""
    options: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Dialog(Wrapper):
    _nested: ClassVar[dict[str, Any]] = {"elements": DialogElement}

    callback_id: str = ""
    title: str = ""
    introduction_text: str = ""
    elements: list[DialogElement] = field(default_factory=list)
    submit_label: str = ""
    notify_on_cancel: bool = False
    state: str = ""
    icon_url: str = ""


@dataclass(frozen=True)
class OpenDialogRequest(Wrapper):
    _nested: ClassVar[dict[str, Any]] = {"dialog": Dialog}

    trigger_id: str = ""
    url: str = ""
    dialog: Dialog | None = None


@dataclass(frozen=True)
class AuditRecord(Wrapper):
    """Flat, as the other SDK has it; Go's record nests the actor and keeps ``api_path`` in
    ``meta``. ``id``, ``create_at`` and ``level`` have no place in Go's record and are not
    sent (``log_audit_rec_with_level`` takes the level)."""

    id: str = ""
    create_at: int = 0
    level: str = ""
    api_path: str = ""
    event: str = ""
    status: str = ""
    user_id: str = ""
    session_id: str = ""
    client: str = ""
    ip_address: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    _ACTOR: ClassVar[tuple[str, ...]] = ("user_id", "session_id", "client", "ip_address")

    @classmethod
    def from_proto(cls, proto: Message) -> AuditRecord:
        from ._convert import struct_to_python

        message: Any = proto
        meta = struct_to_python(message.meta) if message.HasField("meta") else {}
        actor = message.actor
        return cls(
            event=message.event_name,
            status=message.status,
            api_path=str(meta.pop("api_path", "")),
            meta=meta,
            **{k: getattr(actor, k) for k in cls._ACTOR},
        )

    def to_proto(self) -> Message:
        from ._convert import python_to_value

        message: Any = _message_class("AuditRecord")()
        message.event_name = self.event
        message.status = self.status
        for k in self._ACTOR:
            setattr(message.actor, k, getattr(self, k))
        meta = dict(self.meta)
        if self.api_path:
            meta["api_path"] = self.api_path
        for k, v in meta.items():
            python_to_value(v, message.meta.fields[k])
        return message  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PushNotification(Wrapper):
    """``badge`` is a string there and a number in Go; a numeric string is taken."""

    _to_message: ClassVar[dict[str, Any]] = {"badge": _badge}
    _from_message: ClassVar[dict[str, Any]] = {"badge": lambda v: str(v) if v else ""}

    ack_id: str = ""
    platform: str = ""
    server_id: str = ""
    device_id: str = ""
    post_id: str = ""
    category: str = ""
    sound: str = ""
    message: str = ""
    badge: str = ""
    team_id: str = ""
    channel_id: str = ""
    root_id: str = ""
    sender_id: str = ""
    sender_name: str = ""
    channel_name: str = ""
    type: str = ""


_made: dict[str, type[Wrapper]] = {}


def _make(name: str) -> type[Wrapper]:
    """A frozen dataclass with the fields of mmplug's message ``name`` (all defaulted)."""
    message = _message_class(name)
    fields: list[Any] = []
    for fd in message.DESCRIPTOR.fields:
        if fd.is_repeated:
            is_map = fd.message_type is not None and fd.message_type.GetOptions().map_entry
            factory: Any = dict if is_map else list
            fields.append((fd.name, Any, field(default_factory=factory)))
        else:
            fields.append((fd.name, Any, field(default=None)))
    cls = dataclasses.make_dataclass(
        name,
        fields,
        bases=(Wrapper,),
        frozen=True,
        namespace={"__module__": __name__, "_message": name},
    )
    return cls


def __getattr__(name: str) -> Any:
    # Any other entity of the contract (a message name), with that message's fields.
    if name[:1].isupper():
        made = _made.get(name)
        if made is None:
            try:
                made = _make(name)
            except AttributeError:
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
            _made[name] = made
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
