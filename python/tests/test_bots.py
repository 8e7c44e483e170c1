"""ensure_bot against FakeMattermost: create, update, reactivate, images, old servers, clashes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mattermost_plugin import (
    Bot,
    BotUsernameTakenError,
    HookName,
    NotImplementedAPIError,
    Plugin,
    ensure_bot,
    hook,
)
from mattermost_plugin.bots import BOT_ID_KEY
from mattermost_plugin.testing import FakeMattermost


@pytest.fixture
def images(mm_fake: FakeMattermost) -> dict[str, bytes]:
    """SetProfileImage is not modelled by the fake: record the images set."""
    seen: dict[str, bytes] = {}

    def set_image(request: Any) -> None:
        seen[request.user_id] = request.data

    mm_fake.on("SetProfileImage", set_image)
    return seen


def test_creates_the_bot_and_remembers_it(mm_fake: FakeMattermost) -> None:
    bot_id = ensure_bot(mm_fake.api, "moderator", display_name="Moderator", description="Rules")
    bot = mm_fake.bots[bot_id]
    assert (bot.username, bot.display_name, bot.description) == ("moderator", "Moderator", "Rules")
    assert bot.owner_id == mm_fake.plugin_id  # the server makes the plugin the owner
    assert mm_fake.users[bot_id].is_bot
    assert mm_fake.kv[BOT_ID_KEY] == bot_id.encode()
    # A second call finds the same bot.
    assert (
        ensure_bot(mm_fake.api, "moderator", display_name="Moderator", description="Rules")
        == bot_id
    )
    assert len(mm_fake.bots) == 1
    assert not mm_fake.called("PatchBot")  # nothing differed


def test_updates_display_name_and_description(mm_fake: FakeMattermost) -> None:
    bot_id = ensure_bot(mm_fake.api, "moderator", display_name="Old")
    assert (
        ensure_bot(mm_fake.api, "moderator", display_name="New", description="Now described")
        == bot_id
    )
    bot = mm_fake.bots[bot_id]
    assert (bot.display_name, bot.description) == ("New", "Now described")


def test_adopts_an_existing_bot_account_and_patches_it(mm_fake: FakeMattermost) -> None:
    # A bot with that username exists but the plugin never remembered it (e.g. KV wiped).
    existing = mm_fake.api.create_bot(Bot(username="helper", display_name="Stale"))
    mm_fake.api.kv_delete(BOT_ID_KEY)
    bot_id = ensure_bot(mm_fake.api, "helper", display_name="Helper")
    assert bot_id == existing.user_id
    assert mm_fake.bots[bot_id].display_name == "Helper"
    assert mm_fake.kv[BOT_ID_KEY] == bot_id.encode()


def test_a_remembered_bot_takes_a_new_username(mm_fake: FakeMattermost) -> None:
    # As with Go's EnsureBot: the plugin has one bot, whatever it is called now.
    bot_id = ensure_bot(mm_fake.api, "moderator")
    assert ensure_bot(mm_fake.api, "guardian") == bot_id
    assert mm_fake.bots[bot_id].username == "guardian"


def test_reactivates_a_deactivated_bot(mm_fake: FakeMattermost) -> None:
    bot_id = ensure_bot(mm_fake.api, "moderator")
    mm_fake.api.update_bot_active(bot_id, False)
    assert mm_fake.bots[bot_id].delete_at
    assert ensure_bot(mm_fake.api, "moderator") == bot_id
    assert mm_fake.bots[bot_id].delete_at == 0
    assert mm_fake.users[bot_id].delete_at == 0


def test_refuses_a_human_account(mm_fake: FakeMattermost) -> None:
    person = mm_fake.add_user("moderator", email="moderator@example.com")
    with pytest.raises(BotUsernameTakenError) as e:
        ensure_bot(mm_fake.api, "moderator")
    assert e.value.user_id == person.id
    assert "a regular user account" in str(e.value)
    assert "mmctl user convert moderator --bot" in str(e.value)
    assert not mm_fake.bots


def test_profile_image_from_bytes_or_bundle_path(
    mm_fake: FakeMattermost, images: dict[str, bytes], tmp_path: Path
) -> None:
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "bot.png").write_bytes(b"\x89PNG-from-file")
    mm_fake.on("GetBundlePath", lambda request: str(tmp_path))
    bot_id = ensure_bot(mm_fake.api, "moderator", profile_image=b"\x89PNG-bytes")
    assert images[bot_id] == b"\x89PNG-bytes"
    ensure_bot(mm_fake.api, "moderator", profile_image="assets/bot.png")  # bundle-relative
    assert images[bot_id] == b"\x89PNG-from-file"
    ensure_bot(mm_fake.api, "moderator", profile_image=tmp_path / "assets" / "bot.png")
    with pytest.raises(OSError, match="cannot read the bot's profile image"):
        ensure_bot(mm_fake.api, "moderator", profile_image="assets/missing.png")


def test_servers_without_ensure_bot_user(mm_fake: FakeMattermost) -> None:
    mm_fake.on(
        "EnsureBotUser",
        NotImplementedAPIError("EnsureBotUser needs server 7.1", id="mmplug.api.unsupported"),
    )
    bot_id = ensure_bot(mm_fake.api, "moderator", display_name="Mod")
    assert mm_fake.bots[bot_id].display_name == "Mod"
    assert mm_fake.kv[BOT_ID_KEY] == bot_id.encode()
    # Remembered: patched in place.
    assert ensure_bot(mm_fake.api, "moderator", display_name="Moderator") == bot_id
    assert mm_fake.bots[bot_id].display_name == "Moderator"
    # Remembered bot deleted for good: a new one is made.
    mm_fake.api.permanent_delete_bot(bot_id)
    new_id = ensure_bot(mm_fake.api, "moderator")
    assert new_id != bot_id
    assert mm_fake.kv[BOT_ID_KEY] == new_id.encode()
    # A bot account with the name, not remembered: adopted.
    mm_fake.api.kv_delete(BOT_ID_KEY)
    assert ensure_bot(mm_fake.api, "moderator") == new_id
    # A person with the name (and no remembered bot): refused.
    mm_fake.api.kv_delete(BOT_ID_KEY)
    mm_fake.add_user("someone", email="someone@example.com")
    with pytest.raises(BotUsernameTakenError):
        ensure_bot(mm_fake.api, "someone")


def test_username_is_required(mm_fake: FakeMattermost) -> None:
    with pytest.raises(ValueError, match="non-empty bot username"):
        ensure_bot(mm_fake.api, " ")


async def test_async_client(mm_fake: FakeMattermost, images: dict[str, bytes]) -> None:
    bot_id = await ensure_bot(mm_fake.aapi, "moderator", display_name="Mod", profile_image=b"img")
    assert mm_fake.bots[bot_id].display_name == "Mod"
    assert images[bot_id] == b"img"
    await mm_fake.aapi.update_bot_active(bot_id, False)
    assert await ensure_bot(mm_fake.aapi, "moderator", display_name="Moderator") == bot_id
    assert mm_fake.bots[bot_id].delete_at == 0
    assert mm_fake.bots[bot_id].display_name == "Moderator"
    await mm_fake.aapi.kv_delete(BOT_ID_KEY)
    mm_fake.add_user("person", email="person@example.com")
    with pytest.raises(BotUsernameTakenError):
        await ensure_bot(mm_fake.aapi, "person")


async def test_async_client_on_old_servers(mm_fake: FakeMattermost) -> None:
    mm_fake.on("EnsureBotUser", NotImplementedAPIError("too old"))
    bot_id = await ensure_bot(mm_fake.aapi, "moderator")
    assert mm_fake.kv[BOT_ID_KEY] == bot_id.encode()
    assert await ensure_bot(mm_fake.aapi, "moderator", description="d") == bot_id
    assert mm_fake.bots[bot_id].description == "d"
    await mm_fake.aapi.permanent_delete_bot(bot_id)
    assert await ensure_bot(mm_fake.aapi, "moderator") != bot_id
    await mm_fake.aapi.kv_delete(BOT_ID_KEY)
    mm_fake.add_user("person", email="person@example.com")
    with pytest.raises(BotUsernameTakenError):
        await ensure_bot(mm_fake.aapi, "person")


def test_from_on_activate(mm_plugin: Any) -> None:
    class WithBot(Plugin):
        @hook(HookName.OnActivate)
        def on_activate(self) -> None:
            self.bot_id = ensure_bot(self.api, "helper", display_name="Helper")

    handle = mm_plugin(WithBot)
    assert handle.fake.bots[handle.plugin.bot_id].username == "helper"
