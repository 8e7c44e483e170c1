"""The API methods ``FakeMattermost`` answers by itself, behaving like the server.

Each handler takes the fake and the request message and returns the result value(s) (or
raises ``PluginAPIError``, which the fake turns into the response's ``AppError``). Error ids,
status codes and edge cases follow Mattermost's app and store layers: a missing user is
``app.user.missing_account.const`` (404), a taken username
``app.user.save.username_exists.app_error`` (400), ``KVGet`` of a missing or expired key is
empty, ``KVSet`` with an empty value deletes (gob sends an empty slice as nil), and so on.
Methods that fail with a plain Go ``error`` on the server (``EnsureBotUser``,
``RegisterCommand``) fail with an ``ERROR_STRING`` kind here too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from .._proto.mattermost.plugin.v1.models_pb2 import (
    Bot,
    BotPatch,
    Channel,
    ChannelMember,
    Command,
    Config,
    Post,
    PostList,
    Team,
    TeamMember,
    User,
)
from ..errors import (
    BadRequestError,
    ErrorKind,
    NotFoundError,
    PluginAPIError,
)

if TYPE_CHECKING:
    from ._fake import FakeMattermost

__all__ = ["MODELS"]

Model = Callable[["FakeMattermost", Any], Any]
MODELS: dict[str, Model] = {}


def model(*names: str) -> Callable[[Model], Model]:
    def register(fn: Model) -> Model:
        for name in names:
            MODELS[name] = fn
        return fn

    return register


def _plugin(fake: FakeMattermost, request: Any) -> str:
    return str(request.context.plugin_id) or fake.plugin_id


def not_found(where: str, id: str, message: str, detail: str = "") -> NotFoundError:
    # Imitates the server's own errors: their ids are in its i18n bundle and get translated.
    return NotFoundError(
        message, id=id, where=where, detailed_error=detail, status_code=404, skip_translation=False
    )


def bad_request(where: str, id: str, message: str, detail: str = "") -> BadRequestError:
    return BadRequestError(
        message, id=id, where=where, detailed_error=detail, status_code=400, skip_translation=False
    )


def go_error(message: str) -> PluginAPIError:
    """A plain Go ``error`` (not an AppError), as the bridge carries it."""
    return PluginAPIError(message, kind=ErrorKind.ERROR_STRING, status_code=0)


M = TypeVar("M", bound=Message)


def _copy(message: M) -> M:
    out = type(message)()
    out.CopyFrom(message)
    return out


def _is_id(value: str) -> bool:
    return len(value) == 26 and value.isalnum()


# --- KV store (app/plugin_key_value_store.go, store SetWithOptions / CompareAndSet) --------

KV_KEY_MAX_RUNES = 150


def _kv_check_key(key: str, where: str) -> None:
    if not key or len(key) > KV_KEY_MAX_RUNES:
        raise bad_request(
            where,
            "model.plugin_key_value.is_valid.key.app_error",
            "Invalid key, must be between 1 and 150 characters.",
            f"key={key[:160]!r}",
        )


def _kv_live(fake: FakeMattermost, pid: str, key: str) -> bytes | None:
    row = fake.kv_namespace(pid).get(key)
    if row is None:
        return None
    value, expire_at = row
    if expire_at and expire_at <= fake.now():
        del fake.kv_namespace(pid)[key]
        return None
    return value


def kv_set_with_options(
    fake: FakeMattermost,
    pid: str,
    key: str,
    value: bytes,
    *,
    atomic: bool = False,
    old_value: bytes = b"",
    expire_in_seconds: int = 0,
) -> bool:
    where = "SetPluginKeyWithOptions"
    if not atomic and old_value:
        raise bad_request(
            where,
            "model.plugin_kvset_options.is_valid.old_value.app_error",
            "Invalid old value, it shouldn't be set when the operation is not atomic.",
        )
    _kv_check_key(key, where)
    rows = fake.kv_namespace(pid)
    expire_at = fake.now() + expire_in_seconds * 1000 if expire_in_seconds > 0 else 0
    current = _kv_live(fake, pid, key)
    if not atomic:
        if not value:  # an empty []byte travels as nil: the server deletes the key
            rows.pop(key, None)
        else:
            rows[key] = (bytes(value), expire_at)
        return True
    if not value:  # compare-and-delete
        if not old_value or current != old_value:
            return False
        del rows[key]
        return True
    if not old_value:  # insert only if absent
        if current is not None:
            return False
    elif current != old_value:
        return False
    rows[key] = (bytes(value), expire_at)
    return True


@model("KVSet")
def _kv_set(fake: FakeMattermost, req: Any) -> None:
    kv_set_with_options(fake, _plugin(fake, req), req.key, req.value)


@model("KVSetWithExpiry")
def _kv_set_with_expiry(fake: FakeMattermost, req: Any) -> None:
    kv_set_with_options(
        fake, _plugin(fake, req), req.key, req.value, expire_in_seconds=req.expire_in_seconds
    )


@model("KVSetWithOptions")
def _kv_set_options(fake: FakeMattermost, req: Any) -> bool:
    opts = req.options
    return kv_set_with_options(
        fake,
        _plugin(fake, req),
        req.key,
        req.value,
        atomic=opts.atomic,
        old_value=opts.old_value,
        expire_in_seconds=opts.expire_in_seconds,
    )


@model("KVCompareAndSet")
def _kv_cas(fake: FakeMattermost, req: Any) -> bool:
    return kv_set_with_options(
        fake, _plugin(fake, req), req.key, req.new_value, atomic=True, old_value=req.old_value
    )


@model("KVCompareAndDelete")
def _kv_cad(fake: FakeMattermost, req: Any) -> bool:
    pid = _plugin(fake, req)
    _kv_check_key(req.key, "CompareAndDeletePluginKey")
    if not req.old_value:  # nil can't be stored: nothing to compare against
        return False
    if _kv_live(fake, pid, req.key) != req.old_value:
        return False
    del fake.kv_namespace(pid)[req.key]
    return True


@model("KVGet")
def _kv_get(fake: FakeMattermost, req: Any) -> bytes:
    return _kv_live(fake, _plugin(fake, req), req.key) or b""


@model("KVDelete")
def _kv_delete(fake: FakeMattermost, req: Any) -> None:
    _kv_check_key(req.key, "DeletePluginKey")
    fake.kv_namespace(_plugin(fake, req)).pop(req.key, None)


@model("KVDeleteAll")
def _kv_delete_all(fake: FakeMattermost, req: Any) -> None:
    fake.kv_namespace(_plugin(fake, req)).clear()


@model("KVList")
def _kv_list(fake: FakeMattermost, req: Any) -> list[str]:
    pid = _plugin(fake, req)
    if req.page < 0 or req.per_page < 0:
        raise bad_request("ListPluginKeys", "app.plugin_store.list.app_error", "negative paging")
    keys = sorted(k for k in list(fake.kv_namespace(pid)) if _kv_live(fake, pid, k) is not None)
    start = req.page * req.per_page
    return keys[start : start + req.per_page]


# --- configuration ---------------------------------------------------------------------------


def _config_for(fake: FakeMattermost) -> Config:
    cfg = _copy(fake.config)
    for pid, values in fake._settings.items():
        json_format.ParseDict(values, cfg.plugin_settings.plugins[pid])
    return cfg


@model("GetConfig", "GetUnsanitizedConfig")
def _get_config(fake: FakeMattermost, req: Any) -> Config:
    return _config_for(fake)


@model("SaveConfig")
def _save_config(fake: FakeMattermost, req: Any) -> None:
    fake.config = _copy(req.config)
    for pid, struct in req.config.plugin_settings.plugins.items():
        fake._settings[pid] = json_format.MessageToDict(struct)
    fake.config.plugin_settings.ClearField("plugins")


@model("GetPluginConfig")
def _get_plugin_config(fake: FakeMattermost, req: Any) -> dict[str, Any]:
    return dict(fake.settings_for(_plugin(fake, req)))


@model("SavePluginConfig")
def _save_plugin_config(fake: FakeMattermost, req: Any) -> None:
    fake._settings[_plugin(fake, req)] = json_format.MessageToDict(req.config)


@model("LoadPluginConfiguration")
def _load_plugin_configuration(fake: FakeMattermost, req: Any) -> bytes:
    return json.dumps(fake.settings_for(_plugin(fake, req))).encode()


@model("GetServerVersion")
def _server_version(fake: FakeMattermost, req: Any) -> str:
    return fake.server_version


# --- logs ------------------------------------------------------------------------------------


def _log(level: str) -> Model:
    def handler(fake: FakeMattermost, req: Any) -> None:
        from .._convert import value_to_python
        from ._fake import LogEntry

        pairs = [value_to_python(v) for v in req.key_value_pairs]
        if len(pairs) % 2:
            pairs.append(None)  # hclog logs a lone key with no value
        fields = {str(pairs[i]): pairs[i + 1] for i in range(0, len(pairs), 2)}
        fake.logs.append(LogEntry(level, req.msg, fields, _plugin(fake, req)))

    return handler


for _level in ("debug", "info", "warn", "error"):
    MODELS[f"Log{_level.capitalize()}"] = _log(_level)


# --- users (app/user.go; store validation from model.User.IsValid) ----------------------------

USERNAME_RE = re.compile(r"^[a-z][a-z0-9.\-_]{2,63}$")
RESERVED_USERNAMES = {"all", "channel", "here", "matterbot", "system"}


def _check_username(username: str, where: str, user_id: str = "") -> None:
    if not USERNAME_RE.match(username) or username in RESERVED_USERNAMES:
        raise bad_request(
            where,
            "model.user.is_valid.username.app_error",
            "Invalid username.",
            f"user_id={user_id}",
        )


def _user_by_username(fake: FakeMattermost, username: str) -> User | None:
    name = username.lower()
    return next((u for u in fake.users.values() if u.username == name), None)


def _user_by_email(fake: FakeMattermost, email: str) -> User | None:
    addr = email.lower()
    return next((u for u in fake.users.values() if u.email == addr), None)


def insert_user(fake: FakeMattermost, **fields: Any) -> User:
    user = User(**fields) if fields else User()
    return _save_new_user(fake, user, "CreateUser")


def _save_new_user(fake: FakeMattermost, user: User, where: str) -> User:
    user = _copy(user)
    user.username = user.username.lower()
    user.email = user.email.lower() or (f"{user.username}@localhost" if user.is_bot else "")
    _check_username(user.username, where)
    if "@" not in user.email:
        raise bad_request(
            where, "model.user.is_valid.email.app_error", "Invalid email.", f"user_id={user.id}"
        )
    if _user_by_username(fake, user.username) is not None:
        raise bad_request(
            where,
            "app.user.save.username_exists.app_error",
            "An account with that username already exists.",
        )
    if _user_by_email(fake, user.email) is not None:
        raise bad_request(
            where,
            "app.user.save.email_exists.app_error",
            "An account with that email already exists.",
        )
    now = fake.now()
    user.id = user.id or fake.new_id()
    user.create_at = user.create_at or now
    user.update_at = now
    user.roles = user.roles or "system_user"
    user.locale = user.locale or "en"
    user.password = ""  # the server returns users sanitized
    fake.users[user.id] = user
    return _copy(user)


def get_user(fake: FakeMattermost, user_id: str, where: str = "GetUser") -> User:
    user = fake.users.get(user_id)
    if user is None:
        raise not_found(
            where,
            "app.user.missing_account.const",
            "We couldn't find an existing account matching your user ID for this team.",
            f"user_id={user_id}",
        )
    return user


@model("CreateUser")
def _create_user(fake: FakeMattermost, req: Any) -> User:
    return _save_new_user(fake, req.user, "CreateUser")


@model("GetUser")
def _get_user(fake: FakeMattermost, req: Any) -> User:
    return _copy(get_user(fake, req.user_id))


@model("GetUserByUsername")
def _get_user_by_username(fake: FakeMattermost, req: Any) -> User:
    user = _user_by_username(fake, req.name)
    if user is None:
        raise not_found(
            "GetUserByUsername",
            "app.user.get_by_username.app_error",
            "Unable to find an existing account matching your username for this team.",
            f"username={req.name}",
        )
    return _copy(user)


@model("GetUserByEmail")
def _get_user_by_email(fake: FakeMattermost, req: Any) -> User:
    user = _user_by_email(fake, req.email)
    if user is None:
        raise not_found(
            "GetUserByEmail",
            "app.user.missing_account.const",
            "We couldn't find an existing account matching your email address for this team.",
            f"email={req.email}",
        )
    return _copy(user)


@model("GetUsersByIds")
def _get_users_by_ids(fake: FakeMattermost, req: Any) -> list[User]:
    return [_copy(fake.users[i]) for i in req.user_i_ds if i in fake.users]


@model("GetUsersByUsernames")
def _get_users_by_usernames(fake: FakeMattermost, req: Any) -> list[User]:
    found = (_user_by_username(fake, n) for n in req.usernames)
    return [_copy(u) for u in found if u is not None]


@model("GetUsers")
def _get_users(fake: FakeMattermost, req: Any) -> list[User]:
    opts = req.options
    users = sorted(fake.users.values(), key=lambda u: u.username)
    if opts.in_team_id:
        users = [u for u in users if (opts.in_team_id, u.id) in fake.team_members]
    if opts.in_channel_id:
        users = [u for u in users if (opts.in_channel_id, u.id) in fake.channel_members]
    if opts.inactive:
        users = [u for u in users if u.delete_at]
    elif opts.active:
        users = [u for u in users if not u.delete_at]
    if opts.role:
        users = [u for u in users if opts.role in u.roles.split()]
    per_page = opts.per_page or 60  # the server's default page size
    start = opts.page * per_page
    return [_copy(u) for u in users[start : start + per_page]]


@model("GetUsersInTeam")
def _get_users_in_team(fake: FakeMattermost, req: Any) -> list[User]:
    users = sorted(
        (u for u in fake.users.values() if (req.team_id, u.id) in fake.team_members),
        key=lambda u: u.username,
    )
    start = req.page * req.per_page
    return [_copy(u) for u in users[start : start + req.per_page]]


@model("UpdateUser")
def _update_user(fake: FakeMattermost, req: Any) -> User:
    current = get_user(fake, req.user.id, "UpdateUser")
    user: User = _copy(req.user)
    user.username = user.username.lower()
    user.email = user.email.lower()
    _check_username(user.username, "UpdateUser", user.id)
    other = _user_by_username(fake, user.username)
    if other is not None and other.id != user.id:
        raise bad_request(
            "UpdateUser",
            "app.user.save.username_exists.app_error",
            "An account with that username already exists.",
        )
    other = _user_by_email(fake, user.email)
    if other is not None and other.id != user.id:
        raise bad_request(
            "UpdateUser",
            "app.user.save.email_exists.app_error",
            "An account with that email already exists.",
        )
    user.create_at = current.create_at
    user.update_at = fake.now()
    user.password = ""
    fake.users[user.id] = user
    return _copy(user)


def _set_user_active(fake: FakeMattermost, user_id: str, active: bool, where: str) -> None:
    user = get_user(fake, user_id, where)
    user.delete_at = 0 if active else fake.now()
    user.update_at = fake.now()


@model("UpdateUserActive")
def _update_user_active(fake: FakeMattermost, req: Any) -> None:
    _set_user_active(fake, req.user_id, req.active, "UpdateUserActive")


@model("DeleteUser")
def _delete_user(fake: FakeMattermost, req: Any) -> None:
    # The plugin API deactivates (soft-deletes) the user, as the REST API does.
    _set_user_active(fake, req.user_id, False, "DeleteUser")


# --- bots (app/bot.go) -----------------------------------------------------------------------


def get_bot(fake: FakeMattermost, bot_user_id: str, include_deleted: bool, where: str) -> Bot:
    bot = fake.bots.get(bot_user_id)
    if bot is None or (bot.delete_at and not include_deleted):
        raise not_found(
            where,
            "store.sql_bot.get.missing.app_error",
            "Unable to find bot.",
            f"user_id={bot_user_id}",
        )
    return bot


def create_bot(fake: FakeMattermost, bot: Bot, owner: str) -> Bot:
    bot = _copy(bot)
    bot.owner_id = bot.owner_id or owner
    if len(bot.description) > 1024:
        raise bad_request(
            "CreateBot", "model.bot.is_valid.description.app_error", "Invalid description."
        )
    user = _save_new_user(
        fake,
        User(
            username=bot.username,
            nickname=bot.display_name,
            first_name=bot.display_name,
            is_bot=True,
            bot_description=bot.description,
        ),
        "CreateBot",
    )
    bot.user_id = user.id
    bot.username = user.username
    bot.create_at = bot.update_at = user.create_at
    bot.delete_at = 0
    fake.bots[bot.user_id] = bot
    return _copy(bot)


@model("CreateBot")
def _create_bot(fake: FakeMattermost, req: Any) -> Bot:
    return create_bot(fake, req.bot, _plugin(fake, req))


@model("GetBot")
def _get_bot(fake: FakeMattermost, req: Any) -> Bot:
    return _copy(get_bot(fake, req.bot_user_id, req.include_deleted, "GetBot"))


@model("GetBots")
def _get_bots(fake: FakeMattermost, req: Any) -> list[Bot]:
    opts = req.options
    bots = sorted(fake.bots.values(), key=lambda b: b.username)
    if opts.owner_id:
        bots = [b for b in bots if b.owner_id == opts.owner_id]
    if not opts.include_deleted:
        bots = [b for b in bots if not b.delete_at]
    if opts.only_orphaned:
        bots = [b for b in bots if b.owner_id not in fake.users]
    per_page = opts.per_page or 60
    start = opts.page * per_page
    return [_copy(b) for b in bots[start : start + per_page]]


def patch_bot(fake: FakeMattermost, bot_user_id: str, patch: Any, where: str) -> Bot:
    bot = get_bot(fake, bot_user_id, True, where)
    user = fake.users[bot.user_id]
    if patch.HasField("username") and patch.username.lower() != user.username:
        username = patch.username.lower()
        _check_username(username, where, bot.user_id)
        if _user_by_username(fake, username) is not None:
            raise bad_request(
                where,
                "app.user.save.username_exists.app_error",
                "An account with that username already exists.",
            )
        bot.username = user.username = username
    if patch.HasField("display_name"):
        bot.display_name = user.first_name = user.nickname = patch.display_name
    if patch.HasField("description"):
        bot.description = user.bot_description = patch.description
    bot.update_at = user.update_at = fake.now()
    return _copy(bot)


@model("PatchBot")
def _patch_bot(fake: FakeMattermost, req: Any) -> Bot:
    return patch_bot(fake, req.bot_user_id, req.bot_patch, "PatchBot")


@model("UpdateBotActive")
def _update_bot_active(fake: FakeMattermost, req: Any) -> Bot:
    bot = get_bot(fake, req.bot_user_id, True, "UpdateBotActive")
    _set_user_active(fake, bot.user_id, req.active, "UpdateBotActive")
    bot.delete_at = 0 if req.active else fake.now()
    bot.update_at = fake.now()
    return _copy(bot)


@model("PermanentDeleteBot")
def _permanent_delete_bot(fake: FakeMattermost, req: Any) -> None:
    bot = get_bot(fake, req.bot_user_id, True, "PermanentDeleteBot")
    del fake.bots[bot.user_id]
    fake.users.pop(bot.user_id, None)


# The server keeps the id of the bot EnsureBotUser made in the plugin's own KV store.
ENSURE_BOT_KV_KEY = "mmi_botid"


@model("EnsureBotUser")
def _ensure_bot_user(fake: FakeMattermost, req: Any) -> str:
    pid = _plugin(fake, req)
    if not req.HasField("bot"):
        raise go_error("passed a nil bot")
    bot = req.bot
    if not bot.username:
        raise go_error("passed a bot with no username")
    stored = _kv_live(fake, pid, ENSURE_BOT_KV_KEY)
    if stored is not None:
        bot_id = stored.decode()
        patch = BotPatch(
            username=bot.username, display_name=bot.display_name, description=bot.description
        )
        try:
            patch_bot(fake, bot_id, patch, "EnsureBot")
        except PluginAPIError as e:
            raise go_error(f"failed to patch bot: {e}") from None
        return bot_id
    existing = _user_by_username(fake, bot.username)
    if existing is not None:
        if existing.is_bot:
            kv_set_with_options(fake, pid, ENSURE_BOT_KV_KEY, existing.id.encode())
        else:
            # The server logs this and hands back the human account's id anyway.
            from ._fake import LogEntry

            fake.logs.append(
                LogEntry(
                    "error",
                    "Plugin attempted to use an account that already exists. Convert user to "
                    "a bot account in the CLI by running 'mmctl user convert <username> --bot'.",
                    {"username": existing.username, "user_id": existing.id},
                    pid,
                )
            )
        return existing.id
    created = create_bot(fake, Bot(**_fields(bot, "username", "display_name", "description")), pid)
    kv_set_with_options(fake, pid, ENSURE_BOT_KV_KEY, created.user_id.encode())
    return created.user_id


def _fields(message: Any, *names: str) -> dict[str, Any]:
    return {n: getattr(message, n) for n in names}


# --- slash commands (app/plugin_commands.go) -------------------------------------------------


@model("RegisterCommand")
def _register_command(fake: FakeMattermost, req: Any) -> None:
    pid = _plugin(fake, req)
    if not req.HasField("command") or not req.command.trigger:
        raise go_error("invalid command")
    cmd = _copy(req.command)
    cmd.trigger = cmd.trigger.lower()
    cmd.plugin_id = pid
    if cmd.trigger.startswith("/") or " " in cmd.trigger or len(cmd.trigger) > 128:
        raise go_error(f"invalid command: trigger {req.command.trigger!r}")
    for i, existing in enumerate(fake.commands):
        if (existing.trigger, existing.team_id, existing.plugin_id) == (
            cmd.trigger,
            cmd.team_id,
            pid,
        ):
            fake.commands[i] = cmd  # re-registering replaces, as on the server
            return
    fake.commands.append(cmd)


@model("UnregisterCommand")
def _unregister_command(fake: FakeMattermost, req: Any) -> None:
    pid = _plugin(fake, req)
    trigger = req.trigger.lower()
    fake.commands[:] = [
        c
        for c in fake.commands
        if not (c.plugin_id == pid and c.trigger == trigger and c.team_id == req.team_id)
    ]


@model("ListPluginCommands")
def _list_plugin_commands(fake: FakeMattermost, req: Any) -> list[Command]:
    return [_copy(c) for c in fake.commands if c.team_id in ("", req.team_id)]


# --- teams -----------------------------------------------------------------------------------

TEAM_NAME_RE = re.compile(r"^[a-z0-9]+([a-z0-9\-_]*[a-z0-9]+)?$")


def insert_team(fake: FakeMattermost, **fields: Any) -> Team:
    return _save_new_team(fake, Team(**fields))


def _save_new_team(fake: FakeMattermost, team: Team) -> Team:
    team = _copy(team)
    team.name = team.name.lower()
    if not 2 <= len(team.name) <= 64 or not TEAM_NAME_RE.match(team.name):
        raise bad_request("CreateTeam", "model.team.is_valid.name.app_error", "Invalid name.")
    if any(t.name == team.name for t in fake.teams.values()):
        raise bad_request(
            "CreateTeam",
            "app.team.save.existing.app_error",
            "A team with that name already exists.",
        )
    team.id = team.id or fake.new_id()
    team.create_at = team.update_at = fake.now()
    team.display_name = team.display_name or team.name
    team.type = team.type or "O"
    team.invite_id = team.invite_id or fake.new_id()
    fake.teams[team.id] = team
    return _copy(team)


def get_team(fake: FakeMattermost, team_id: str, where: str = "GetTeam") -> Team:
    team = fake.teams.get(team_id)
    if team is None:
        raise not_found(
            where,
            "app.team.get.find.app_error",
            "Unable to find the existing team.",
            f"team_id={team_id}",
        )
    return team


@model("CreateTeam")
def _create_team(fake: FakeMattermost, req: Any) -> Team:
    return _save_new_team(fake, req.team)


@model("GetTeam")
def _get_team(fake: FakeMattermost, req: Any) -> Team:
    return _copy(get_team(fake, req.team_id))


@model("GetTeamByName")
def _get_team_by_name(fake: FakeMattermost, req: Any) -> Team:
    team = next((t for t in fake.teams.values() if t.name == req.name.lower()), None)
    if team is None:
        raise not_found(
            "GetTeamByName",
            "app.team.get_by_name.missing.app_error",
            "Unable to find the existing team.",
            f"name={req.name}",
        )
    return _copy(team)


@model("GetTeams")
def _get_teams(fake: FakeMattermost, req: Any) -> list[Team]:
    return [_copy(t) for t in sorted(fake.teams.values(), key=lambda t: t.name)]


@model("UpdateTeam")
def _update_team(fake: FakeMattermost, req: Any) -> Team:
    current = get_team(fake, req.team.id, "UpdateTeam")
    team: Team = _copy(req.team)
    team.create_at = current.create_at
    team.update_at = fake.now()
    fake.teams[team.id] = team
    return _copy(team)


@model("DeleteTeam")
def _delete_team(fake: FakeMattermost, req: Any) -> None:
    team = get_team(fake, req.team_id, "DeleteTeam")
    team.delete_at = team.update_at = fake.now()


def insert_team_member(fake: FakeMattermost, team_id: str, user_id: str) -> TeamMember:
    get_team(fake, team_id, "CreateTeamMember")
    get_user(fake, user_id, "CreateTeamMember")
    member = fake.team_members.get((team_id, user_id))
    if member is None or member.delete_at:
        member = TeamMember(
            team_id=team_id,
            user_id=user_id,
            roles="team_user",
            scheme_user=True,
            create_at=fake.now(),
        )
        fake.team_members[(team_id, user_id)] = member
    return _copy(member)


@model("CreateTeamMember")
def _create_team_member(fake: FakeMattermost, req: Any) -> TeamMember:
    return insert_team_member(fake, req.team_id, req.user_id)


def _team_member(fake: FakeMattermost, team_id: str, user_id: str, where: str) -> TeamMember:
    member = fake.team_members.get((team_id, user_id))
    if member is None or member.delete_at:
        raise not_found(
            where,
            "app.team.get_member.missing.app_error",
            "No team member found for that user ID and team ID.",
            f"team_id={team_id}, user_id={user_id}",
        )
    return member


@model("GetTeamMember")
def _get_team_member(fake: FakeMattermost, req: Any) -> TeamMember:
    return _copy(_team_member(fake, req.team_id, req.user_id, "GetTeamMember"))


@model("GetTeamMembers")
def _get_team_members(fake: FakeMattermost, req: Any) -> list[TeamMember]:
    found = [m for (t, _), m in sorted(fake.team_members.items()) if t == req.team_id]
    found = [m for m in found if not m.delete_at]
    start = req.page * req.per_page
    return [_copy(m) for m in found[start : start + req.per_page]]


@model("GetTeamMembersForUser")
def _get_team_members_for_user(fake: FakeMattermost, req: Any) -> list[TeamMember]:
    found = [m for (_, u), m in sorted(fake.team_members.items()) if u == req.user_id]
    found = [m for m in found if not m.delete_at]
    start = req.page * req.per_page
    return [_copy(m) for m in found[start : start + req.per_page]]


@model("GetTeamsForUser")
def _get_teams_for_user(fake: FakeMattermost, req: Any) -> list[Team]:
    ids = [t for (t, u), m in sorted(fake.team_members.items()) if u == req.user_id]
    return [_copy(fake.teams[t]) for t in ids if t in fake.teams]


@model("DeleteTeamMember")
def _delete_team_member(fake: FakeMattermost, req: Any) -> None:
    member = _team_member(fake, req.team_id, req.user_id, "DeleteTeamMember")
    member.delete_at = fake.now()


@model("UpdateTeamMemberRoles")
def _update_team_member_roles(fake: FakeMattermost, req: Any) -> TeamMember:
    member = _team_member(fake, req.team_id, req.user_id, "UpdateTeamMemberRoles")
    member.roles = req.new_roles
    member.scheme_admin = "team_admin" in req.new_roles.split()
    return _copy(member)


# --- channels ----------------------------------------------------------------------------------

CHANNEL_NAME_RE = re.compile(r"^[a-z0-9]+([a-z0-9\-_]*[a-z0-9]+)?$")


def insert_channel(fake: FakeMattermost, **fields: Any) -> Channel:
    return _save_new_channel(fake, Channel(**fields), "CreateChannel")


def _save_new_channel(fake: FakeMattermost, channel: Channel, where: str) -> Channel:
    channel = _copy(channel)
    channel.type = channel.type or "O"
    if channel.type in ("O", "P"):
        if not channel.name or len(channel.name) > 64 or not CHANNEL_NAME_RE.match(channel.name):
            raise bad_request(
                where,
                "model.channel.is_valid.2_or_more.app_error",
                "Name must be 2 or more lowercase alphanumeric characters.",
            )
        get_team(fake, channel.team_id, where)
    if channel.type not in ("O", "P", "D", "G"):
        raise bad_request(where, "model.channel.is_valid.type.app_error", "Invalid type.")
    for other in fake.channels.values():
        if other.team_id == channel.team_id and other.name == channel.name:
            raise bad_request(
                where,
                "store.sql_channel.save_channel.exists.app_error",
                "A channel with that name already exists on the same team.",
                f"id={other.id}",
            )
    channel.id = channel.id or fake.new_id()
    channel.create_at = channel.update_at = fake.now()
    channel.display_name = channel.display_name or channel.name
    fake.channels[channel.id] = channel
    return _copy(channel)


def get_channel(fake: FakeMattermost, channel_id: str, where: str = "GetChannel") -> Channel:
    channel = fake.channels.get(channel_id)
    if channel is None:
        raise not_found(
            where,
            "app.channel.get.existing.app_error",
            "Unable to find the existing channel.",
            f"channel_id={channel_id}",
        )
    return channel


@model("CreateChannel")
def _create_channel(fake: FakeMattermost, req: Any) -> Channel:
    channel = _save_new_channel(fake, req.channel, "CreateChannel")
    if channel.creator_id in fake.users:
        insert_channel_member(fake, channel.id, channel.creator_id)
    return channel


@model("GetChannel")
def _get_channel(fake: FakeMattermost, req: Any) -> Channel:
    return _copy(get_channel(fake, req.channel_id))


@model("GetChannelByName")
def _get_channel_by_name(fake: FakeMattermost, req: Any) -> Channel:
    for c in fake.channels.values():
        if c.team_id == req.team_id and c.name == req.name:
            if c.delete_at and not req.include_deleted:
                break
            return _copy(c)
    raise not_found(
        "GetChannelByName",
        "app.channel.get_by_name.missing.app_error",
        "Channel does not exist.",
        f"team_id={req.team_id}, name={req.name}",
    )


@model("GetPublicChannelsForTeam")
def _get_public_channels_for_team(fake: FakeMattermost, req: Any) -> list[Channel]:
    found = sorted(
        (
            c
            for c in fake.channels.values()
            if c.team_id == req.team_id and c.type == "O" and not c.delete_at
        ),
        key=lambda c: c.display_name,
    )
    start = req.page * req.per_page
    return [_copy(c) for c in found[start : start + req.per_page]]


@model("UpdateChannel")
def _update_channel(fake: FakeMattermost, req: Any) -> Channel:
    current = get_channel(fake, req.channel.id, "UpdateChannel")
    channel: Channel = _copy(req.channel)
    channel.create_at = current.create_at
    channel.update_at = fake.now()
    fake.channels[channel.id] = channel
    return _copy(channel)


@model("DeleteChannel")
def _delete_channel(fake: FakeMattermost, req: Any) -> None:
    channel = get_channel(fake, req.channel_id, "DeleteChannel")
    if channel.type in ("D", "G"):
        raise bad_request(
            "DeleteChannel",
            "api.channel.delete_channel.type.invalid",
            "Unable to delete direct or group message channels",
        )
    channel.delete_at = channel.update_at = fake.now()


@model("RestoreChannel")
def _restore_channel(fake: FakeMattermost, req: Any) -> None:
    channel = get_channel(fake, req.channel_id, "RestoreChannel")
    channel.delete_at = 0
    channel.update_at = fake.now()


def direct_channel_name(user_id1: str, user_id2: str) -> str:
    """``model.GetDMNameFromIds``: the two ids sorted and joined by ``__``."""
    a, b = sorted((user_id1, user_id2))
    return f"{a}__{b}"


@model("GetDirectChannel")
def _get_direct_channel(fake: FakeMattermost, req: Any) -> Channel:
    for uid in (req.user_id1, req.user_id2):
        if uid not in fake.users:
            raise bad_request(
                "GetOrCreateDirectChannel",
                "api.channel.create_direct_channel.invalid_user.app_error",
                "Invalid user ID for direct channel creation.",
                f"user_id={uid}",
            )
    name = direct_channel_name(req.user_id1, req.user_id2)
    existing = next((c for c in fake.channels.values() if c.name == name), None)
    if existing is not None:
        return _copy(existing)
    channel = _save_new_channel(
        fake, Channel(name=name, type="D", creator_id=req.user_id1), "GetDirectChannel"
    )
    for uid in {req.user_id1, req.user_id2}:
        insert_channel_member(fake, channel.id, uid)
    return channel


def insert_channel_member(fake: FakeMattermost, channel_id: str, user_id: str) -> ChannelMember:
    get_channel(fake, channel_id, "AddChannelMember")
    get_user(fake, user_id, "AddChannelMember")
    member = fake.channel_members.get((channel_id, user_id))
    if member is None:
        member = ChannelMember(
            channel_id=channel_id,
            user_id=user_id,
            roles="channel_user",
            scheme_user=True,
            notify_props={"desktop": "default", "mark_unread": "all"},
            last_update_at=fake.now(),
        )
        fake.channel_members[(channel_id, user_id)] = member
    return _copy(member)


@model("AddChannelMember")
def _add_channel_member(fake: FakeMattermost, req: Any) -> ChannelMember:
    return insert_channel_member(fake, req.channel_id, req.user_id)


@model("AddUserToChannel")
def _add_user_to_channel(fake: FakeMattermost, req: Any) -> ChannelMember:
    return insert_channel_member(fake, req.channel_id, req.user_id)


def _channel_member(
    fake: FakeMattermost, channel_id: str, user_id: str, where: str
) -> ChannelMember:
    member = fake.channel_members.get((channel_id, user_id))
    if member is None:
        raise not_found(
            where,
            "app.channel.get_member.missing.app_error",
            "No channel member found for that user ID and channel ID.",
            f"channel_id={channel_id}, user_id={user_id}",
        )
    return member


@model("GetChannelMember")
def _get_channel_member(fake: FakeMattermost, req: Any) -> ChannelMember:
    return _copy(_channel_member(fake, req.channel_id, req.user_id, "GetChannelMember"))


@model("GetChannelMembers")
def _get_channel_members(fake: FakeMattermost, req: Any) -> list[ChannelMember]:
    found = [m for (c, _), m in sorted(fake.channel_members.items()) if c == req.channel_id]
    start = req.page * req.per_page
    return [_copy(m) for m in found[start : start + req.per_page]]


@model("DeleteChannelMember")
def _delete_channel_member(fake: FakeMattermost, req: Any) -> None:
    _channel_member(fake, req.channel_id, req.user_id, "DeleteChannelMember")
    del fake.channel_members[(req.channel_id, req.user_id)]


# --- posts ---------------------------------------------------------------------------------------


def _check_post(fake: FakeMattermost, post: Post, where: str) -> None:
    if not _is_id(post.user_id):
        raise bad_request(
            where, "model.post.is_valid.user_id.app_error", "Invalid user id.", f"id={post.id}"
        )
    if not _is_id(post.channel_id):
        raise bad_request(
            where,
            "model.post.is_valid.channel_id.app_error",
            "Invalid channel id.",
            f"id={post.id}",
        )


def get_post(fake: FakeMattermost, post_id: str, where: str = "GetPost") -> Post:
    post = fake.posts.get(post_id)
    if post is None or post.delete_at:
        raise not_found(
            where, "app.post.get.app_error", "Unable to get the post.", f"post_id={post_id}"
        )
    return post


@model("CreatePost")
def _create_post(fake: FakeMattermost, req: Any) -> Post:
    post: Post = _copy(req.post)
    _check_post(fake, post, "CreatePost")
    channel = get_channel(fake, post.channel_id, "CreatePost")
    if post.root_id:
        get_post(fake, post.root_id, "CreatePost")
    now = fake.now()
    post.id = fake.new_id()
    post.create_at = post.create_at or now
    post.update_at = now
    fake.posts[post.id] = post
    channel.last_post_at = post.create_at
    channel.total_msg_count += 1
    return _copy(post)


@model("GetPost")
def _get_post(fake: FakeMattermost, req: Any) -> Post:
    return _copy(get_post(fake, req.post_id))


@model("UpdatePost")
def _update_post(fake: FakeMattermost, req: Any) -> Post:
    current = get_post(fake, req.post.id, "UpdatePost")
    post: Post = _copy(req.post)
    now = fake.now()
    # Only what a user may edit changes; identity and timestamps stay the server's.
    updated = _copy(current)
    updated.message = post.message
    updated.is_pinned = post.is_pinned
    updated.file_ids[:] = post.file_ids
    updated.props.Clear()
    updated.props.MergeFrom(post.props)
    updated.has_reactions = post.has_reactions
    if updated.message != current.message:
        updated.edit_at = now
    updated.update_at = now
    fake.posts[updated.id] = updated
    return _copy(updated)


@model("DeletePost")
def _delete_post(fake: FakeMattermost, req: Any) -> None:
    post = get_post(fake, req.post_id, "DeletePost")
    post.delete_at = post.update_at = fake.now()


@model("GetPostsForChannel")
def _get_posts_for_channel(fake: FakeMattermost, req: Any) -> PostList:
    posts = list(reversed(fake.posts_in(req.channel_id)))  # newest first, as the server
    start = req.page * req.per_page
    page = posts[start : start + req.per_page]
    result = PostList(order=[p.id for p in page])
    for p in page:
        result.posts[p.id].CopyFrom(p)
    return result


@model("SendEphemeralPost")
def _send_ephemeral_post(fake: FakeMattermost, req: Any) -> Post:
    post: Post = _copy(req.post)
    now = fake.now()
    post.id = post.id or fake.new_id()
    post.create_at = post.create_at or now
    post.update_at = now
    post.type = "system_ephemeral"
    fake.ephemeral_posts.append((req.user_id, post))
    return _copy(post)


@model("UpdateEphemeralPost")
def _update_ephemeral_post(fake: FakeMattermost, req: Any) -> Post:
    post: Post = _copy(req.post)
    post.update_at = fake.now()
    post.type = "system_ephemeral"
    fake.ephemeral_posts.append((req.user_id, post))
    return _copy(post)


@model("DeleteEphemeralPost")
def _delete_ephemeral_post(fake: FakeMattermost, req: Any) -> None:
    fake.ephemeral_posts[:] = [
        (u, p) for u, p in fake.ephemeral_posts if not (u == req.user_id and p.id == req.post_id)
    ]


# --- interactive dialogs (app/integration_action.go OpenInteractiveDialog) ------------------

# The server accepts a trigger id for ServiceSettings.OutgoingIntegrationRequestsTimeout
# (30 s by default) after it issued it for a slash command or an action.
TRIGGER_ID_TIMEOUT_MILLIS = 30_000


@model("OpenInteractiveDialog")
def _open_interactive_dialog(fake: FakeMattermost, req: Any) -> None:
    where = "DecodeAndVerifyTriggerId"
    request = _copy(req.dialog)
    issued = fake.trigger_ids.get(request.trigger_id)
    if issued is None:
        # The server's trigger ids are signed; one it did not issue fails verification.
        raise bad_request(
            where,
            "interactive_message.decode_trigger_id.verify_signature_failed",
            "Failed to verify signature of trigger ID for interactive dialog.",
        )
    user_id, at = issued
    if fake.now() - at > TRIGGER_ID_TIMEOUT_MILLIS:
        raise bad_request(
            where,
            "interactive_message.decode_trigger_id.expired",
            "Trigger ID for interactive dialog is expired.",
        )
    fake.dialogs.append((user_id, request))
