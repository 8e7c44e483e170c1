"""``ensure_bot``: create the plugin's bot account, or bring the existing one up to date.

Call it from ``OnActivate``; it returns the bot's user id::

    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        self.bot_id = ensure_bot(
            self.api, "moderator", display_name="Moderator",
            description="Enforces the channel rules", profile_image="assets/bot.png",
        )

    # in an async handler, the same call on the async client is awaited:
    self.bot_id = await ensure_bot(self.aapi, "moderator", display_name="Moderator")

What it does, in order:

1. The server's ``EnsureBotUser`` finds the plugin's bot by the id remembered in the plugin's
   KV store (key ``mmi_botid``, shared with Go's ``pluginapi.EnsureBot`` and the server), or a
   bot account with that username, or creates one owned by the plugin; it remembers the id.
   A server older than 7.1 has no ``EnsureBotUser``: the SDK does the same steps itself.
2. A bot that was deactivated is reactivated.
3. The display name and description are patched when they differ from the arguments.
4. The profile image is set when given (bytes, or a path; a relative path is resolved against
   the plugin bundle directory, as ``pluginapi``'s ``ProfileImagePath``).

If the username belongs to a regular user account, ``BotUsernameTakenError`` is raised instead
of adopting that person's account (the server and Go's ``pluginapi`` would return its id).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, overload

from ._proto.mattermost.plugin.v1.models_pb2 import Bot, BotPatch
from .client import AsyncClient
from .errors import NotFoundError, NotImplementedAPIError

if TYPE_CHECKING:
    from ._generated.api import AsyncPluginAPIClient, PluginAPIClient

__all__ = ["BOT_ID_KEY", "BotUsernameTakenError", "ensure_bot"]

# The KV key under which the server's EnsureBotUser and Go's pluginapi remember the bot id.
BOT_ID_KEY = "mmi_botid"

ProfileImage = bytes | str | os.PathLike[str]


class BotUsernameTakenError(RuntimeError):
    """The bot's username belongs to a regular (human) user account."""

    def __init__(self, username: str, user_id: str) -> None:
        self.username = username
        self.user_id = user_id
        super().__init__(
            f"cannot use {username!r} as the plugin's bot: a regular user account "
            f"({user_id}) has that username. Rename that user, convert it to a bot "
            f"(mmctl user convert {username} --bot), or pick another bot username"
        )


def _check_args(username: str) -> None:
    if not isinstance(username, str) or not username.strip():
        raise ValueError("ensure_bot needs a non-empty bot username")


def _image_path(image: str | os.PathLike[str], bundle_path: str) -> Path:
    path = Path(image)
    return path if path.is_absolute() else Path(bundle_path) / path


def _read_image(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise OSError(f"cannot read the bot's profile image {str(path)!r}: {e}") from e


def _wanted_patch(bot: Bot, display_name: str, description: str) -> BotPatch | None:
    patch = BotPatch()
    if bot.display_name != display_name:
        patch.display_name = display_name
    if bot.description != description:
        patch.description = description
    return patch if patch.ListFields() else None


# --- sync --------------------------------------------------------------------------------


def _ensure_sync(
    api: PluginAPIClient,
    username: str,
    display_name: str,
    description: str,
    profile_image: ProfileImage | None,
    owner_id: str,
) -> str:
    _check_args(username)
    wanted = Bot(
        username=username, display_name=display_name, description=description, owner_id=owner_id
    )
    try:
        user_id = api.ensure_bot_user(wanted)
    except NotImplementedAPIError:
        user_id = _find_or_create_sync(api, wanted)
    try:
        bot = api.get_bot(user_id, True)
    except NotFoundError:
        raise BotUsernameTakenError(username, user_id) from None
    if bot.delete_at:
        bot = api.update_bot_active(user_id, True)
    patch = _wanted_patch(bot, display_name, description)
    if patch is not None:
        api.patch_bot(user_id, patch)
    if profile_image is not None:
        if not isinstance(profile_image, bytes):
            profile_image = _read_image(_image_path(profile_image, api.get_bundle_path()))
        api.set_profile_image(user_id, profile_image)
    return user_id


def _find_or_create_sync(api: PluginAPIClient, wanted: Bot) -> str:
    """EnsureBotUser's steps, for servers that lack it."""
    remembered = api.kv_get(BOT_ID_KEY)
    if remembered:
        user_id = remembered.decode()
        patch = BotPatch(
            username=wanted.username,
            display_name=wanted.display_name,
            description=wanted.description,
        )
        try:
            api.patch_bot(user_id, patch)
            return user_id
        except NotFoundError:
            pass  # the remembered bot was deleted for good: find or create another
    try:
        user = api.get_user_by_username(wanted.username)
    except NotFoundError:
        user = None
    if user is not None:
        if not user.is_bot:
            raise BotUsernameTakenError(wanted.username, user.id)
        api.kv_set(BOT_ID_KEY, user.id.encode())
        return user.id
    created = api.create_bot(wanted)
    api.kv_set(BOT_ID_KEY, created.user_id.encode())
    return created.user_id


# --- async -------------------------------------------------------------------------------


async def _ensure_async(
    aapi: AsyncPluginAPIClient,
    username: str,
    display_name: str,
    description: str,
    profile_image: ProfileImage | None,
    owner_id: str,
) -> str:
    _check_args(username)
    wanted = Bot(
        username=username, display_name=display_name, description=description, owner_id=owner_id
    )
    try:
        user_id = await aapi.ensure_bot_user(wanted)
    except NotImplementedAPIError:
        user_id = await _find_or_create_async(aapi, wanted)
    try:
        bot = await aapi.get_bot(user_id, True)
    except NotFoundError:
        raise BotUsernameTakenError(username, user_id) from None
    if bot.delete_at:
        bot = await aapi.update_bot_active(user_id, True)
    patch = _wanted_patch(bot, display_name, description)
    if patch is not None:
        await aapi.patch_bot(user_id, patch)
    if profile_image is not None:
        if not isinstance(profile_image, bytes):
            path = _image_path(profile_image, await aapi.get_bundle_path())
            profile_image = _read_image(path)
        await aapi.set_profile_image(user_id, profile_image)
    return user_id


async def _find_or_create_async(aapi: AsyncPluginAPIClient, wanted: Bot) -> str:
    remembered = await aapi.kv_get(BOT_ID_KEY)
    if remembered:
        user_id = remembered.decode()
        patch = BotPatch(
            username=wanted.username,
            display_name=wanted.display_name,
            description=wanted.description,
        )
        try:
            await aapi.patch_bot(user_id, patch)
            return user_id
        except NotFoundError:
            pass
    try:
        user = await aapi.get_user_by_username(wanted.username)
    except NotFoundError:
        user = None
    if user is not None:
        if not user.is_bot:
            raise BotUsernameTakenError(wanted.username, user.id)
        await aapi.kv_set(BOT_ID_KEY, user.id.encode())
        return user.id
    created = await aapi.create_bot(wanted)
    await aapi.kv_set(BOT_ID_KEY, created.user_id.encode())
    return created.user_id


# --- the public entry point --------------------------------------------------------------


@overload
def ensure_bot(
    api: PluginAPIClient,
    username: str,
    *,
    display_name: str = "",
    description: str = "",
    profile_image: ProfileImage | None = None,
    owner_id: str = "",
) -> str: ...
@overload
def ensure_bot(
    api: AsyncPluginAPIClient,
    username: str,
    *,
    display_name: str = "",
    description: str = "",
    profile_image: ProfileImage | None = None,
    owner_id: str = "",
) -> Awaitable[str]: ...
def ensure_bot(
    api: PluginAPIClient | AsyncPluginAPIClient,
    username: str,
    *,
    display_name: str = "",
    description: str = "",
    profile_image: ProfileImage | None = None,
    owner_id: str = "",
) -> str | Awaitable[str]:
    """Create or update the plugin's bot and return its user id (see the module docstring).

    With ``self.api`` it blocks and returns the id; with ``self.aapi`` it returns an awaitable.
    ``display_name`` and ``description`` are the wanted values (patched when they differ);
    ``owner_id`` defaults to the plugin (the server's rule).
    """
    if isinstance(api, AsyncClient):
        return _ensure_async(api, username, display_name, description, profile_image, owner_id)
    return _ensure_sync(api, username, display_name, description, profile_image, owner_id)
