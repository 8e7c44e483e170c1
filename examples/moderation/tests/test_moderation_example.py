"""examples/moderation on the SDK's test kit: every behaviour its README describes, and the
error paths (bad settings, refused commands, failing server calls, a racing strike)."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mattermost_plugin import (
    CommandResponse,
    HookName,
    Post,
    ServiceUnavailableError,
    User,
)
from mattermost_plugin.testing import (
    ActivationError,
    FakeMattermost,
    HookError,
    PluginHandle,
    StartPlugin,
)
from moderation.rules import ModerationSettings
from moderation_plugin import BOT_USERNAME, PLUGIN_ID, Moderation

SETTINGS = {
    "BannedWords": "spam\nbad phrase, Scam",
    "Action": "reject",
    "MatchWholeWords": True,
    "LogChannel": "mod-log",
    "ExemptUsers": "",
    "ExemptRoles": "system_admin",
}


@dataclass
class World:
    """A team with a town square and a log channel, a member, a second member and an admin."""

    fake: FakeMattermost
    team_id: str
    town_square: str
    log: str
    alice: User
    bob: User
    admin: User

    def post(self, message: str, *, user: User | None = None, **fields: Any) -> Post:
        fields.setdefault("channel_id", self.town_square)
        return Post(user_id=(user or self.alice).id, message=message, **fields)

    def log_messages(self) -> list[str]:
        return [p.message for p in self.fake.posts_in(self.log)]

    def strikes(self, user: User) -> int:
        raw = self.fake.kv.get(f"strikes_{user.id}")
        return int(json.loads(raw)["count"]) if raw else 0


@pytest.fixture
def world(mm_fake: FakeMattermost) -> World:
    alice = mm_fake.add_user("alice", email="alice@example.com")
    bob = mm_fake.add_user("bob", email="bob@example.com")
    admin = mm_fake.add_user("root", email="root@example.com", roles="system_user system_admin")
    team = mm_fake.add_team("crew")
    members = [alice.id, bob.id, admin.id]
    for user_id in members:
        mm_fake.add_team_member(team.id, user_id)
    town_square = mm_fake.add_channel(team.id, "town-square", members=members)
    log = mm_fake.add_channel(team.id, "mod-log", members=[admin.id])
    return World(mm_fake, team.id, town_square.id, log.id, alice, bob, admin)


def start(mm_plugin: StartPlugin, **changes: Any) -> PluginHandle:
    return mm_plugin(Moderation, plugin_id=PLUGIN_ID, settings={**SETTINGS, **changes})


@pytest.fixture
def moderation(world: World, mm_plugin: StartPlugin) -> PluginHandle:
    return start(mm_plugin)


def command(handle: PluginHandle, line: str, user: User, world: World) -> CommandResponse:
    answer: CommandResponse = handle.fire(
        HookName.ExecuteCommand,
        {
            "command": line,
            "user_id": user.id,
            "channel_id": world.town_square,
            "team_id": world.team_id,
        },
    )
    return answer


# --- activation and settings -------------------------------------------------------------


def test_activation_ensures_the_bot_and_registers_moderation(
    world: World, moderation: PluginHandle
) -> None:
    [bot] = world.fake.bots.values()
    assert (bot.username, bot.display_name) == (BOT_USERNAME, "Moderation")
    assert moderation.plugin.bot_id == bot.user_id
    [registered] = world.fake.commands
    assert registered.trigger == "moderation"
    subcommands = {s.trigger: s.hint for s in registered.autocomplete_data.sub_commands}
    assert subcommands == {
        "status": "",
        "words": "",
        "strikes": "[@username]",
        "reset": "@username",
        "help": "",
    }
    assert set(moderation.implemented) == {
        "OnConfigurationChange",
        "OnActivate",
        "MessageWillBePosted",
        "MessageWillBeUpdated",
        "ExecuteCommand",
        "ServeHTTP",
    }


def test_activation_adopts_the_bot_it_made_before(world: World, mm_plugin: StartPlugin) -> None:
    first = start(mm_plugin)
    bot_id = first.plugin.bot_id
    first.stop()
    assert start(mm_plugin).plugin.bot_id == bot_id
    assert len(world.fake.bots) == 1


def test_the_defaults_of_plugin_json_activate(world: World, mm_plugin: StartPlugin) -> None:
    manifest = json.loads((Path(__file__).parents[1] / "plugin.json").read_text())
    schema = manifest["settings_schema"]["settings"]
    defaults = {s["key"]: s["default"] for s in schema}
    # Every setting of the manifest is a field of the settings class, with the same default.
    assert {k.lower() for k in defaults} == {
        f.name.replace("_", "") for f in dataclasses.fields(ModerationSettings) if f.init
    }
    handle = mm_plugin(Moderation, plugin_id=PLUGIN_ID, settings=defaults)
    assert handle.plugin.settings == ModerationSettings()
    assert handle.fire(HookName.MessageWillBePosted, world.post("spam")) == (None, "")


def test_settings_are_normalized(world: World, mm_plugin: StartPlugin) -> None:
    handle = start(
        mm_plugin,
        BannedWords="Spam, spam\n  Bad Phrase \n\n",
        ExemptUsers="@Bob, carol",
        ExemptRoles="Team_Admin",
        LogChannel="~Crew/Mod-Log",
        MatchWholeWords="false",
    )
    settings: ModerationSettings = handle.plugin.settings
    assert settings.banned_words == ("spam", "bad phrase")
    assert settings.exempt_users == ("bob", "carol")
    assert settings.exempt_roles == ("team_admin",)
    assert settings.log_channel == "crew/mod-log"
    assert settings.match_whole_words is False


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"Action": "delete"}, "Action: expected one of 'reject', 'flag', got 'delete'"),
        ({"MatchWholeWords": "sometimes"}, "MatchWholeWords: expected true or false"),
        ({"ExemptUsers": "alice, not a name!"}, "ExemptUsers: 'not a name!' is not a username"),
        ({"ExemptRoles": "admins?"}, "ExemptRoles: 'admins?' is not a role name"),
        ({"LogChannel": "a/b/c"}, "LogChannel: 'a/b/c' is not a channel name"),
        ({"LogChannel": "Mod Log"}, "LogChannel: 'Mod Log' is not a channel name"),
        ({"BannedWords": "x" * 101}, "BannedWords: 'xxxxxxxxxxxxxxxxxxxx'... is longer than 100"),
    ],
)
def test_invalid_settings_fail_activation(
    world: World, mm_plugin: StartPlugin, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ActivationError) as failure:
        start(mm_plugin, **changes)
    assert message in failure.value.app_error.message
    assert world.fake.bots == {}  # OnActivate's own work never ran


def test_bad_settings_keep_the_previous_ones(
    world: World, moderation: PluginHandle, caplog: pytest.LogCaptureFixture
) -> None:
    before = moderation.plugin.settings
    with caplog.at_level(logging.ERROR), pytest.raises(HookError) as failure:
        moderation.configure({**SETTINGS, "BannedWords": "other", "Action": "warn"})
    assert "Action: expected one of 'reject', 'flag', got 'warn'" in str(failure.value)
    assert any("keeping the previous settings" in m for m in caplog.messages)
    assert moderation.plugin.settings is before
    post, reason = moderation.fire(HookName.MessageWillBePosted, world.post("spam"))
    assert post is None and "`spam`" in reason


def test_new_settings_apply_at_once_and_are_logged(
    world: World, moderation: PluginHandle, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        moderation.configure({**SETTINGS, "BannedWords": "eggs", "Action": "flag"})
    assert (
        "moderation settings loaded: 1 banned words, action flag, log channel mod-log"
        in caplog.messages
    )
    assert moderation.fire(HookName.MessageWillBePosted, world.post("spam")) == (None, "")
    post, _ = moderation.fire(HookName.MessageWillBePosted, world.post("green eggs"))
    assert post.props["moderation_flagged"] is True


# --- new posts ---------------------------------------------------------------------------


def test_a_banned_word_is_rejected_explained_counted_and_reported(
    world: World, moderation: PluginHandle
) -> None:
    post, reason = moderation.fire(HookName.MessageWillBePosted, world.post("Buy SPAM now"))
    assert post is None
    assert reason == "Your message contains words that are not allowed here: `spam`."
    [(user_id, notice)] = world.fake.ephemeral_posts
    assert (user_id, notice.channel_id) == (world.alice.id, world.town_square)
    assert (notice.user_id, notice.message) == (moderation.plugin.bot_id, reason)
    assert world.strikes(world.alice) == 1
    [report] = world.fake.posts_in(world.log)
    assert report.user_id == moderation.plugin.bot_id
    assert report.message == (
        "Rejected a message by @alice in ~town-square: banned `spam` (strike 1)."
    )


def test_every_banned_word_is_named_once_and_phrases_match(
    world: World, moderation: PluginHandle
) -> None:
    _, reason = moderation.fire(
        HookName.MessageWillBePosted, world.post("scam! what a BAD   phrase, bad phrase. scam")
    )
    assert reason.endswith("`scam`, `bad phrase`.")
    _, reason = moderation.fire(HookName.MessageWillBePosted, world.post("bad\nphrase"))
    assert reason == ""  # a phrase is matched as written, not across other whitespace
    assert world.strikes(world.alice) == 1


def test_clean_posts_pass_without_any_server_call(world: World, moderation: PluginHandle) -> None:
    world.fake.clear_calls()
    assert moderation.fire(HookName.MessageWillBePosted, world.post("all good")) == (None, "")
    assert world.fake.calls == []


def test_whole_words_only_unless_configured_otherwise(world: World, mm_plugin: StartPlugin) -> None:
    whole = start(mm_plugin)
    assert whole.fire(HookName.MessageWillBePosted, world.post("spammers, scampi")) == (None, "")
    whole.stop()
    anywhere = start(mm_plugin, MatchWholeWords=False)
    _, reason = anywhere.fire(HookName.MessageWillBePosted, world.post("spammers, scampi"))
    assert reason.endswith("`spam`, `scam`.")


def test_flag_mode_lets_the_post_through_marked(world: World, mm_plugin: StartPlugin) -> None:
    handle = start(mm_plugin, Action="flag")
    post, reason = handle.fire(
        HookName.MessageWillBePosted, world.post("spam and scam", props={"from_app": "x"})
    )
    assert reason == ""
    assert dict(post.props) | {"moderation_words": None} == {
        "from_app": "x",
        "moderation_flagged": True,
        "moderation_words": None,
    }
    assert list(post.props["moderation_words"]) == ["spam", "scam"]
    assert world.fake.ephemeral_posts == []
    assert world.strikes(world.alice) == 1
    assert world.log_messages() == [
        "Flagged a message by @alice in ~town-square: banned `spam`, `scam` (strike 1)."
    ]


def test_exempt_users_and_roles_are_not_moderated(world: World, mm_plugin: StartPlugin) -> None:
    handle = start(mm_plugin, ExemptUsers="@bob")
    for user in (world.bob, world.admin):
        assert handle.fire(HookName.MessageWillBePosted, world.post("spam", user=user)) == (
            None,
            "",
        )
    assert world.fake.kv_namespace(PLUGIN_ID).keys() == {"mmi_botid"}
    post, _ = handle.fire(HookName.MessageWillBePosted, world.post("spam"))
    assert post is None


def test_team_roles_are_looked_up_when_exempt(world: World, mm_plugin: StartPlugin) -> None:
    world.fake.api.update_team_member_roles(world.team_id, world.bob.id, "team_user team_admin")
    handle = start(mm_plugin, ExemptRoles="team_admin")
    assert handle.fire(HookName.MessageWillBePosted, world.post("spam", user=world.bob)) == (
        None,
        "",
    )
    # system_admin is no longer exempt with these settings
    post, _ = handle.fire(HookName.MessageWillBePosted, world.post("spam", user=world.admin))
    assert post is None


def test_own_notices_and_system_messages_pass(world: World, moderation: PluginHandle) -> None:
    bot = moderation.plugin.bot_id
    own = Post(user_id=bot, channel_id=world.log, message="Rejected ... `spam`")
    assert moderation.fire(HookName.MessageWillBePosted, own) == (None, "")
    system = world.post("alice renamed the channel to spam", type="system_displayname_change")
    assert moderation.fire(HookName.MessageWillBePosted, system) == (None, "")


def test_a_fixed_log_channel_serves_every_team(world: World, mm_plugin: StartPlugin) -> None:
    other_team = world.fake.add_team("other")
    world.fake.add_team_member(other_team.id, world.alice.id)
    elsewhere = world.fake.add_channel(other_team.id, "general", members=[world.alice.id])
    handle = start(mm_plugin, LogChannel="crew/mod-log")
    handle.fire(HookName.MessageWillBePosted, world.post("spam", channel_id=elsewhere.id))
    assert world.log_messages() == [
        "Rejected a message by @alice in ~general: banned `spam` (strike 1)."
    ]


def test_direct_messages_report_only_to_a_fixed_log_channel(
    world: World, moderation: PluginHandle, mm_plugin: StartPlugin
) -> None:
    direct = world.fake.api.get_direct_channel(world.alice.id, world.bob.id)
    in_direct = world.post("spam", channel_id=direct.id)
    post, _ = moderation.fire(HookName.MessageWillBePosted, in_direct)
    assert post is None
    assert world.strikes(world.alice) == 1
    assert world.log_messages() == []
    fixed = start(mm_plugin, LogChannel="crew/mod-log")
    fixed.fire(HookName.MessageWillBePosted, in_direct)
    assert world.log_messages() == [
        f"Rejected a message by @alice in ~{direct.name}: banned `spam` (strike 2)."
    ]


def test_a_missing_log_channel_is_logged_and_moderation_goes_on(
    world: World, mm_plugin: StartPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    handle = start(mm_plugin, LogChannel="no-such-channel")
    with caplog.at_level(logging.WARNING):
        post, _ = handle.fire(HookName.MessageWillBePosted, world.post("spam"))
    assert post is None
    assert (
        f"moderation: the log channel 'no-such-channel' (setting LogChannel) does not exist "
        f"in team {world.team_id}" in caplog.messages
    )
    no_log = start(mm_plugin, LogChannel="")
    world.fake.clear_calls()
    no_log.fire(HookName.MessageWillBePosted, world.post("spam"))
    assert not world.fake.called("GetChannelByName")


def test_a_failing_store_still_rejects(
    world: World, moderation: PluginHandle, caplog: pytest.LogCaptureFixture
) -> None:
    world.fake.on("KVSetWithOptions", ServiceUnavailableError("store down", id="test.down"))
    with caplog.at_level(logging.ERROR):
        post, reason = moderation.fire(HookName.MessageWillBePosted, world.post("spam"))
    assert post is None and reason
    assert any(
        m.startswith(f"moderation: could not count a strike for {world.alice.id}: ")
        for m in caplog.messages
    )
    assert world.log_messages() == [
        "Rejected a message by @alice in ~town-square: banned `spam` (strike not counted)."
    ]


def test_moderation_fails_closed_when_the_author_is_unknown(
    world: World, moderation: PluginHandle
) -> None:
    world.fake.on("GetUser", ServiceUnavailableError("users down", id="test.down"))
    world.fake.on("SendEphemeralPost", ServiceUnavailableError("down", id="test.down"))
    post, _ = moderation.fire(HookName.MessageWillBePosted, world.post("spam", user=world.admin))
    assert post is None  # an admin is exempt, but the server could not say this is one
    assert world.log_messages() == [
        f"Rejected a message by user {world.admin.id} in ~town-square: banned `spam` (strike 1)."
    ]


# --- edits ---------------------------------------------------------------------------------


def test_an_edit_bringing_in_a_banned_word_is_rejected(
    world: World, moderation: PluginHandle
) -> None:
    old = world.post("hello", id="p1")
    new = world.post("hello spam", id="p1")
    post, reason = moderation.fire(HookName.MessageWillBeUpdated, new, old)
    assert post is None and "`spam`" in reason
    assert world.strikes(world.alice) == 1
    assert world.log_messages() == [
        "Rejected an edit by @alice in ~town-square: banned `spam` (strike 1)."
    ]


def test_edits_of_flagged_posts(world: World, mm_plugin: StartPlugin) -> None:
    handle = start(mm_plugin, Action="flag")
    flagged, _ = handle.fire(HookName.MessageWillBePosted, world.post("spam", id="p1"))
    # Fixing a typo keeps the flag but is no new strike.
    typo_fixed = world.post("spam!", id="p1", props=dict(flagged.props))
    post, _ = handle.fire(HookName.MessageWillBeUpdated, typo_fixed, flagged)
    assert post.props["moderation_flagged"] is True
    assert world.strikes(world.alice) == 1
    # A new banned word is a strike, naming only that word in the report.
    worse = world.post("spam and scam", id="p1", props=dict(post.props))
    post, _ = handle.fire(HookName.MessageWillBeUpdated, worse, typo_fixed)
    assert list(post.props["moderation_words"]) == ["spam", "scam"]
    assert world.strikes(world.alice) == 2
    assert world.log_messages()[-1] == (
        "Flagged an edit by @alice in ~town-square: banned `scam` (strike 2)."
    )
    # A clean edit drops the flag (the server saves exactly what the hook returns).
    clean = world.post("all good", id="p1", props={**dict(post.props), "keep": "me"})
    post, reason = handle.fire(HookName.MessageWillBeUpdated, clean, worse)
    assert (dict(post.props), reason) == ({"keep": "me"}, "")


# --- strikes under compare-and-set ----------------------------------------------------------


def test_strikes_counted_elsewhere_meanwhile_are_not_lost(
    world: World, moderation: PluginHandle
) -> None:
    # The fake answers API calls one at a time, so the race is staged: twice, another server
    # counts a strike for alice between this plugin's read and its compare-and-set.
    key = f"strikes_{world.alice.id}"
    world.fake.api.kv_set(key, b'{"count":4,"last_at":1}')
    rows = world.fake.kv_namespace(PLUGIN_ID)
    races = [b'{"count":5,"last_at":2}', b'{"count":6,"last_at":3}']

    def kv_get_then_race(request: Any) -> bytes:
        value = rows[request.key][0] if request.key in rows else b""
        if request.key == key and races:
            rows[key] = (races.pop(0), 0)
        return value

    world.fake.on("KVGet", kv_get_then_race)
    world.fake.clear_calls()
    moderation.fire(HookName.MessageWillBePosted, world.post("spam"))
    assert world.strikes(world.alice) == 7
    assert [c.result for c in world.fake.calls_to("KVSetWithOptions")] == [False, False, True]
    assert world.log_messages() == [
        "Rejected a message by @alice in ~town-square: banned `spam` (strike 7)."
    ]


def test_a_strike_store_that_keeps_changing_is_logged_not_fatal(
    world: World, moderation: PluginHandle, caplog: pytest.LogCaptureFixture
) -> None:
    world.fake.on("KVSetWithOptions", lambda request: False)  # every compare-and-set loses
    with caplog.at_level(logging.ERROR):
        post, _ = moderation.fire(HookName.MessageWillBePosted, world.post("spam"))
    assert post is None
    assert len(world.fake.calls_to("KVSetWithOptions")) == 20
    assert any("update gave up after 20 attempts" in m for m in caplog.messages)


# --- /moderation ------------------------------------------------------------------------------


def offend(world: World, handle: PluginHandle, user: User, times: int) -> None:
    for _ in range(times):
        handle.fire(HookName.MessageWillBePosted, world.post("spam", user=user))


def test_bare_command_and_help_list_the_subcommands(world: World, moderation: PluginHandle) -> None:
    for line in ("/moderation", "/moderation help", "/moderation dance"):
        answer = command(moderation, line, world.alice, world)
        assert answer.response_type == "ephemeral"
        assert "`/moderation reset @username` — Clear a user's strikes (system admins)" in (
            answer.text
        )
    assert command(moderation, "/moderation dance", world.alice, world).text.startswith(
        "Unknown subcommand `dance`"
    )


def test_status(world: World, moderation: PluginHandle) -> None:
    offend(world, moderation, world.alice, 2)
    offend(world, moderation, world.bob, 1)
    answer = command(moderation, "/moderation status", world.alice, world)
    assert answer.text == "\n".join(
        [
            "**Moderation**: posts with banned words are **rejected**.",
            "- Banned words: 3 (whole words only)",
            "- Log channel: ~mod-log",
            "- Exempt: system_admin",
            "- Users with strikes: 2 (3 strikes in all)",
        ]
    )


def test_words(world: World, mm_plugin: StartPlugin) -> None:
    handle = start(mm_plugin)
    answer = command(handle, "/moderation words", world.alice, world)
    assert answer.text == "Banned words (3): `spam`, `bad phrase`, `scam`"
    handle.configure({**SETTINGS, "BannedWords": ""})
    answer = command(handle, "/moderation words", world.alice, world)
    assert answer.text == "No words are banned (System Console > Plugins > Moderation)."


def test_strikes_of_yourself_and_as_an_admin_of_anyone(
    world: World, moderation: PluginHandle
) -> None:
    assert command(moderation, "/moderation strikes", world.alice, world).text == (
        "@alice has no strikes."
    )
    offend(world, moderation, world.alice, 1)
    assert command(moderation, "/moderation strikes", world.alice, world).text == (
        "@alice has 1 strike."
    )
    offend(world, moderation, world.alice, 2)
    assert command(moderation, "/moderation strikes @alice", world.alice, world).text == (
        "@alice has 3 strikes."
    )
    assert command(moderation, "/moderation strikes Alice", world.admin, world).text == (
        "@alice has 3 strikes."
    )


def test_strikes_of_others_are_for_admins(world: World, moderation: PluginHandle) -> None:
    offend(world, moderation, world.alice, 1)
    answer = command(moderation, "/moderation strikes @alice", world.bob, world)
    assert (answer.response_type, answer.text) == (
        "ephemeral",
        "Only system admins can see other users' strikes.",
    )


def test_command_argument_errors(world: World, moderation: PluginHandle) -> None:
    cases = {
        "/moderation strikes @nobody": "There is no user @nobody.",
        "/moderation strikes @a @b": "Usage: /moderation strikes [@username]",
        "/moderation reset": "Usage: /moderation reset @username",
        "/moderation reset @ghost": "There is no user @ghost.",
    }
    for line, text in cases.items():
        assert command(moderation, line, world.admin, world).text == text


def test_reset_by_an_admin(world: World, moderation: PluginHandle) -> None:
    offend(world, moderation, world.alice, 3)
    offend(world, moderation, world.bob, 1)
    answer = command(moderation, "/moderation reset @alice", world.admin, world)
    assert answer.text == "Reset the strikes of @alice (had 3)."
    assert world.strikes(world.alice) == 0
    assert f"strikes_{world.alice.id}" not in world.fake.kv
    assert world.strikes(world.bob) == 1
    assert world.log_messages()[-1] == "@root reset the strikes of @alice (had 3)."
    again = command(moderation, "/moderation reset @alice", world.admin, world)
    assert again.text == "Reset the strikes of @alice (had 0)."


def test_reset_is_refused_to_others(world: World, moderation: PluginHandle) -> None:
    offend(world, moderation, world.alice, 2)
    before = len(world.log_messages())
    for user in (world.alice, world.bob):
        answer = command(moderation, "/moderation reset @alice", user, world)
        assert answer.text == "Only system admins can reset strikes."
    assert world.strikes(world.alice) == 2
    assert len(world.log_messages()) == before


# --- HTTP ---------------------------------------------------------------------------------


def test_http_needs_a_logged_in_system_admin(world: World, moderation: PluginHandle) -> None:
    for path in ("/", "/api/strikes"):
        anonymous = moderation.http("GET", path)
        assert (anonymous.status, anonymous.text) == (401, "log in to Mattermost first")
        unknown = moderation.http("GET", path, user_id="x" * 26)
        assert unknown.status == 401
        member = moderation.http("GET", path, user_id=world.alice.id)
        assert (member.status, member.text) == (
            403,
            "only system admins can see the moderation status",
        )
        assert moderation.http("GET", path, user_id=world.admin.id).status == 200


def test_strikes_json(world: World, moderation: PluginHandle) -> None:
    offend(world, moderation, world.alice, 1)
    offend(world, moderation, world.bob, 2)
    world.fake.api.kv_set("strikes_" + "g" * 26, b'{"count":1,"last_at":5}')  # a deleted user
    response = moderation.http("GET", "/api/strikes", user_id=world.admin.id)
    assert response.headers["Content-Type"] == ["application/json"]
    assert response.headers["Cache-Control"] == ["no-store"]
    rows = response.json()["strikes"]
    assert [(r["username"], r["count"]) for r in rows] == [("bob", 2), ("alice", 1), ("", 1)]
    assert rows[0]["user_id"] == world.bob.id
    assert all(isinstance(r["last_at"], int) and r["last_at"] > 0 for r in rows)


def test_status_page(world: World, mm_plugin: StartPlugin) -> None:
    handle = start(mm_plugin, BannedWords="spam, <b>bold</b>")
    offend(world, handle, world.alice, 2)
    response = handle.http("GET", "/", user_id=world.admin.id)
    assert response.status == 200
    assert response.headers["Content-Type"] == ["text/html; charset=utf-8"]
    page = response.text
    assert "<dt>Banned words (2)</dt><dd>spam, &lt;b&gt;bold&lt;/b&gt;</dd>" in page
    assert "<b>bold" not in page
    assert "<dt>Action</dt><dd>reject</dd>" in page
    assert "<tr><td>@alice</td><td>2</td>" in page
    assert f'href="/admin_console/plugins/plugin_{PLUGIN_ID}"' in page
    empty = start(mm_plugin)
    world.fake.api.kv_delete(f"strikes_{world.alice.id}")
    assert "No strikes recorded." in empty.http("GET", "/", user_id=world.admin.id).text


def test_http_other_paths_and_methods(world: World, moderation: PluginHandle) -> None:
    missing = moderation.http("GET", "/nope", user_id=world.admin.id)
    assert (missing.status, missing.text) == (404, "not found")
    post = moderation.http("POST", "/api/strikes", user_id=world.admin.id, body=b"{}")
    assert (post.status, post.headers["Allow"]) == (405, ["GET"])


def test_usernames_on_servers_before_get_users_by_ids(
    world: World, moderation: PluginHandle
) -> None:
    from mattermost_plugin import NotImplementedAPIError

    offend(world, moderation, world.alice, 1)
    world.fake.on(
        "GetUsersByIds",
        NotImplementedAPIError("needs 9.8", id="mmplug.not_implemented", status_code=501),
    )
    rows = moderation.http("GET", "/api/strikes", user_id=world.admin.id).json()["strikes"]
    assert [(r["username"], r["count"]) for r in rows] == [("alice", 1)]
