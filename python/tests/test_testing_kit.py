"""The test kit (``mattermost_plugin.testing``): the fake server's semantics, running plugins
through the real dispatch path, HTTP (whole and streamed), the pytest fixtures, and the
examples in docs/testing.md."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mattermost_plugin import (
    BadRequestError,
    Bot,
    BotGetOptions,
    BotPatch,
    Channel,
    Command,
    CommandArgs,
    CommandResponse,
    ErrorKind,
    FileInfo,
    HookName,
    HTTPClientDisconnected,
    HTTPRequest,
    HTTPResponsePart,
    HTTPResponseWriter,
    NotFoundError,
    Plugin,
    PluginAPIError,
    PluginKVSetOptions,
    Post,
    User,
    UserGetOptions,
    hook,
)
from mattermost_plugin.asgi import USER_ID_KEY, serve_asgi
from mattermost_plugin.testing import (
    ActivationError,
    FakeClock,
    FakeMattermost,
    HookError,
    HookNotImplementedError,
    PluginHandle,
    UnmodelledMethodError,
    direct_channel_name,
    new_id,
)
from mattermost_plugin.wsgi import serve_wsgi

from doc_examples import PYTESTER_INI, REPO, python_examples, run_examples

pytest_plugins = ["pytester"]

StartPlugin = Callable[..., PluginHandle]
GUARD = 30  # seconds; only guards against a hang, never a timing assertion
MM_ID = re.compile(r"^[ybndrfg8ejkmcpqxot1uwisza345h769]{26}$")
DOCS = REPO / "docs" / "testing.md"


@pytest.fixture
def fake() -> FakeMattermost:
    return FakeMattermost()


# --- ids and clock ---------------------------------------------------------------------------


def test_ids_look_like_mattermost_ids_and_follow_the_seed() -> None:
    assert MM_ID.match(new_id())
    assert [FakeMattermost(seed=7).new_id() for _ in range(2)] == [
        FakeMattermost(seed=7).new_id() for _ in range(2)
    ]
    a = FakeMattermost(seed=7)
    assert a.new_id() != a.new_id()


def test_clock_moves_only_when_told() -> None:
    clock = FakeClock(1_000)
    assert clock.now_millis() == 1_000
    assert clock.advance(1.5) == 2_500
    assert clock.advance(millis=5) == 2_505
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)


# --- KV ------------------------------------------------------------------------------------


def test_kv_set_get_delete(fake: FakeMattermost) -> None:
    api = fake.api
    assert api.kv_get("missing") == b""  # Go's nil
    api.kv_set("k", b"v")
    assert api.kv_get("k") == b"v"
    api.kv_set("k", b"")  # an empty value travels as nil: the server deletes the key
    assert fake.kv == {}
    api.kv_set("a", b"1")
    api.kv_delete("a")
    assert api.kv_get("a") == b""


def test_kv_rejects_bad_keys(fake: FakeMattermost) -> None:
    for key in ("", "k" * 151):
        with pytest.raises(BadRequestError) as failure:
            fake.api.kv_set(key, b"v")
        assert failure.value.id == "model.plugin_key_value.is_valid.key.app_error"
    fake.api.kv_set("k" * 150, b"v")


def test_kv_compare_and_set(fake: FakeMattermost) -> None:
    api = fake.api
    assert api.kv_compare_and_set("k", b"", b"first")  # insert if absent
    assert not api.kv_compare_and_set("k", b"", b"again")
    assert not api.kv_compare_and_set("k", b"wrong", b"x")
    assert api.kv_compare_and_set("k", b"first", b"second")
    assert fake.kv == {"k": b"second"}
    assert not api.kv_compare_and_delete("k", b"first")
    assert not api.kv_compare_and_delete("k", b"")
    assert api.kv_compare_and_delete("k", b"second")
    assert fake.kv == {}


def test_kv_set_with_options(fake: FakeMattermost) -> None:
    api = fake.api
    atomic = PluginKVSetOptions(atomic=True)
    assert api.kv_set_with_options("k", b"1", atomic)
    assert not api.kv_set_with_options("k", b"2", atomic)
    swap = PluginKVSetOptions(atomic=True, old_value=b"1")
    assert api.kv_set_with_options("k", b"2", swap)
    assert not api.kv_set_with_options("k", b"3", swap)
    # Atomic with an empty value: compare-and-delete.
    assert api.kv_set_with_options("k", b"", PluginKVSetOptions(atomic=True, old_value=b"2"))
    assert fake.kv == {}
    assert api.kv_set_with_options("plain", b"x", PluginKVSetOptions())
    with pytest.raises(BadRequestError) as failure:
        api.kv_set_with_options("k", b"v", PluginKVSetOptions(old_value=b"x"))
    assert failure.value.id == "model.plugin_kvset_options.is_valid.old_value.app_error"


def test_kv_expiry_follows_the_clock(fake: FakeMattermost) -> None:
    api = fake.api
    api.kv_set_with_expiry("short", b"s", 10)
    api.kv_set_with_options("long", b"l", PluginKVSetOptions(expire_in_seconds=60))
    api.kv_set("forever", b"f")
    fake.clock.advance(9.999)
    assert api.kv_get("short") == b"s"
    fake.clock.advance(millis=1)
    assert api.kv_get("short") == b""
    assert api.kv_list(0, 10) == ["forever", "long"]
    # An expired key counts as absent for an atomic insert.
    fake.clock.advance(60)
    assert api.kv_set_with_options("long", b"new", PluginKVSetOptions(atomic=True))
    assert fake.kv == {"forever": b"f", "long": b"new"}


def test_kv_list_pages_in_key_order_and_delete_all(fake: FakeMattermost) -> None:
    for key in ("c", "a", "e", "b", "d"):
        fake.api.kv_set(key, b"x")
    assert fake.api.kv_list(0, 2) == ["a", "b"]
    assert fake.api.kv_list(1, 2) == ["c", "d"]
    assert fake.api.kv_list(2, 2) == ["e"]
    assert fake.api.kv_list(3, 2) == []
    fake.api.kv_delete_all()
    assert fake.api.kv_list(0, 100) == []


def test_kv_is_per_plugin(fake: FakeMattermost) -> None:
    other, _ = fake.clients("com.example.other")
    fake.api.kv_set("k", b"mine")
    other.kv_set("k", b"theirs")
    assert fake.api.kv_get("k") == b"mine"
    assert fake.kv_of("com.example.other") == {"k": b"theirs"}


# --- users, teams, channels, posts ----------------------------------------------------------


def test_users(fake: FakeMattermost) -> None:
    fake.clock.set(5_000)
    created = fake.api.create_user(User(username="Alice", email="Alice@Example.com", password="p"))
    assert MM_ID.match(created.id)
    assert (created.username, created.email, created.password) == ("alice", "alice@example.com", "")
    assert (created.create_at, created.update_at, created.roles) == (5_000, 5_000, "system_user")
    assert fake.api.get_user(created.id) == created
    assert fake.api.get_user_by_username("ALICE").id == created.id
    assert fake.api.get_user_by_email("alice@example.COM").id == created.id
    with pytest.raises(BadRequestError) as dup:
        fake.api.create_user(User(username="alice", email="other@example.com"))
    assert dup.value.id == "app.user.save.username_exists.app_error"
    with pytest.raises(BadRequestError) as dup:
        fake.api.create_user(User(username="alice2", email="alice@example.com"))
    assert dup.value.id == "app.user.save.email_exists.app_error"
    with pytest.raises(BadRequestError) as bad:
        fake.api.create_user(User(username="x", email="x@example.com"))
    assert bad.value.id == "model.user.is_valid.username.app_error"
    fake.clock.advance(1)
    created.nickname = "Al"
    updated = fake.api.update_user(created)
    assert (updated.nickname, updated.create_at, updated.update_at) == ("Al", 5_000, 6_000)


def test_missing_user_is_a_404_app_error(fake: FakeMattermost) -> None:
    with pytest.raises(NotFoundError) as failure:
        fake.api.get_user("u" * 26)
    assert failure.value.id == "app.user.missing_account.const"
    assert failure.value.status_code == 404
    assert failure.value.where == "GetUser"
    with pytest.raises(NotFoundError) as failure:
        fake.api.get_user_by_username("nobody")
    assert failure.value.id == "app.user.get_by_username.app_error"


def test_user_lists(fake: FakeMattermost) -> None:
    team = fake.add_team("crew")
    names = ["dave", "bob", "carol", "alice"]
    ids = {n: fake.add_user(n, email=f"{n}@example.com").id for n in names}
    fake.add_team_member(team.id, ids["bob"])
    fake.api.update_user_active(ids["dave"], False)
    page = fake.api.get_users(UserGetOptions(page=0, per_page=2))
    assert [u.username for u in page] == ["alice", "bob"]
    assert [u.username for u in fake.api.get_users(UserGetOptions(inactive=True))] == ["dave"]
    in_team = fake.api.get_users(UserGetOptions(in_team_id=team.id, per_page=10))
    assert [u.username for u in in_team] == ["bob"]
    found = fake.api.get_users_by_ids([ids["carol"], "x" * 26])
    assert [u.username for u in found] == ["carol"]


def test_teams_and_members(fake: FakeMattermost) -> None:
    team = fake.api.create_team({"name": "crew", "display_name": "Crew"})
    assert fake.api.get_team_by_name("crew").id == team.id
    with pytest.raises(BadRequestError) as dup:
        fake.api.create_team({"name": "crew"})
    assert dup.value.id == "app.team.save.existing.app_error"
    with pytest.raises(NotFoundError) as missing:
        fake.api.get_team("t" * 26)
    assert missing.value.id == "app.team.get.find.app_error"
    user = fake.add_user("bob", email="bob@example.com")
    member = fake.api.create_team_member(team.id, user.id)
    assert (member.team_id, member.user_id, member.roles) == (team.id, user.id, "team_user")
    assert [t.id for t in fake.api.get_teams_for_user(user.id)] == [team.id]
    fake.api.delete_team_member(team.id, user.id, "")
    with pytest.raises(NotFoundError) as gone:
        fake.api.get_team_member(team.id, user.id)
    assert gone.value.id == "app.team.get_member.missing.app_error"


def test_channels_and_members(fake: FakeMattermost) -> None:
    team = fake.add_team("crew")
    channel = fake.api.create_channel(Channel(team_id=team.id, name="town-square", type="O"))
    assert fake.api.get_channel_by_name(team.id, "town-square", False).id == channel.id
    with pytest.raises(BadRequestError) as dup:
        fake.api.create_channel(Channel(team_id=team.id, name="town-square"))
    assert dup.value.id == "store.sql_channel.save_channel.exists.app_error"
    with pytest.raises(NotFoundError) as missing:
        fake.api.get_channel("c" * 26)
    assert missing.value.id == "app.channel.get.existing.app_error"
    user = fake.add_user("bob", email="bob@example.com")
    fake.api.add_channel_member(channel.id, user.id)
    assert fake.api.get_channel_member(channel.id, user.id).roles == "channel_user"
    fake.api.delete_channel(channel.id)
    with pytest.raises(NotFoundError):
        fake.api.get_channel_by_name(team.id, "town-square", False)
    assert fake.api.get_channel_by_name(team.id, "town-square", True).delete_at


def test_direct_channels(fake: FakeMattermost) -> None:
    a = fake.add_user("alice", email="a@example.com")
    b = fake.add_user("bob", email="b@example.com")
    dm = fake.api.get_direct_channel(a.id, b.id)
    assert (dm.type, dm.name) == ("D", direct_channel_name(a.id, b.id))
    assert dm.name == "__".join(sorted((a.id, b.id)))
    assert fake.api.get_direct_channel(b.id, a.id).id == dm.id  # one channel per pair
    assert {m.user_id for m in fake.api.get_channel_members(dm.id, 0, 10)} == {a.id, b.id}
    with pytest.raises(BadRequestError) as bad:
        fake.api.get_direct_channel(a.id, "z" * 26)
    assert bad.value.id == "api.channel.create_direct_channel.invalid_user.app_error"


def test_posts(fake: FakeMattermost) -> None:
    user = fake.add_user("bob", email="bob@example.com")
    channel = fake.add_channel(fake.add_team("crew").id, "general")
    post = fake.api.create_post(
        Post(channel_id=channel.id, user_id=user.id, message="hi", props={"n": 1})
    )
    assert MM_ID.match(post.id) and post.create_at == fake.now()
    assert fake.api.get_post(post.id).props["n"] == 1
    fake.clock.advance(2)
    post.message = "edited"
    edited = fake.api.update_post(post)
    assert (edited.message, edited.edit_at, edited.create_at) == (
        "edited",
        fake.now(),
        post.create_at,
    )
    fake.api.delete_post(post.id)
    with pytest.raises(NotFoundError) as gone:
        fake.api.get_post(post.id)
    assert gone.value.id == "app.post.get.app_error"
    with pytest.raises(BadRequestError) as bad:
        fake.api.create_post(Post(channel_id=channel.id, message="no author"))
    assert bad.value.id == "model.post.is_valid.user_id.app_error"


def test_ephemeral_posts_are_recorded_separately(fake: FakeMattermost) -> None:
    sent = fake.api.send_ephemeral_post("u" * 26, Post(channel_id="c" * 26, message="psst"))
    assert sent is not None and sent.type == "system_ephemeral"
    assert fake.posts == {}
    [(user_id, post)] = fake.ephemeral_posts
    assert (user_id, post.message, post.id) == ("u" * 26, "psst", sent.id)


# --- config, bots, commands, logs -----------------------------------------------------------


def test_plugin_configuration(fake: FakeMattermost) -> None:
    fake.plugin_settings = {"Greeting": "hi", "Count": 3}
    assert fake.api.load_plugin_configuration() == {"Greeting": "hi", "Count": 3}
    assert fake.api.get_plugin_config() == {"Greeting": "hi", "Count": 3}
    fake.api.save_plugin_config({"Greeting": "yo"})
    assert fake.plugin_settings == {"Greeting": "yo"}
    config = fake.api.get_config()
    assert config is not None
    assert config.service_settings.site_url == "http://localhost:8065"
    assert dict(config.plugin_settings.plugins[fake.plugin_id]) == {"Greeting": "yo"}
    config.service_settings.site_url = "https://chat.example.com"
    fake.api.save_config(config)
    assert fake.config.service_settings.site_url == "https://chat.example.com"
    with pytest.raises(TypeError):
        fake.plugin_settings = {"bad": object()}


def test_bots(fake: FakeMattermost) -> None:
    bot = fake.api.create_bot(Bot(username="helper", display_name="Helper"))
    assert MM_ID.match(bot.user_id) and bot.owner_id == fake.plugin_id
    user = fake.api.get_user(bot.user_id)
    assert (user.is_bot, user.username) == (True, "helper")
    with pytest.raises(BadRequestError):
        fake.api.create_bot(Bot(username="helper"))
    patched = fake.api.patch_bot(bot.user_id, BotPatch(description="does things"))
    assert (patched.display_name, patched.description) == ("Helper", "does things")
    fake.api.update_bot_active(bot.user_id, False)
    with pytest.raises(NotFoundError) as missing:
        fake.api.get_bot(bot.user_id, False)
    assert missing.value.id == "store.sql_bot.get.missing.app_error"
    assert fake.api.get_bot(bot.user_id, True).delete_at
    assert fake.api.get_bots(BotGetOptions(include_deleted=False)) == []
    assert len(fake.api.get_bots(BotGetOptions(include_deleted=True))) == 1


def test_ensure_bot_user(fake: FakeMattermost) -> None:
    bot_id = fake.api.ensure_bot_user(Bot(username="helper", display_name="Helper"))
    # The server remembers the bot in the plugin's own KV store.
    assert fake.kv == {"mmi_botid": bot_id.encode()}
    again = fake.api.ensure_bot_user(Bot(username="helper", display_name="Renamed"))
    assert again == bot_id
    assert fake.api.get_bot(bot_id, False).display_name == "Renamed"
    assert len(fake.bots) == 1
    with pytest.raises(PluginAPIError) as failure:
        fake.api.ensure_bot_user(Bot())
    assert failure.value.kind == ErrorKind.ERROR_STRING
    assert failure.value.message == "passed a bot with no username"


def test_ensure_bot_user_adopts_an_existing_bot_account(fake: FakeMattermost) -> None:
    other, _ = fake.clients("com.example.other")
    existing = other.create_bot(Bot(username="shared"))
    assert fake.api.ensure_bot_user(Bot(username="shared")) == existing.user_id
    assert fake.kv == {"mmi_botid": existing.user_id.encode()}


def test_commands(fake: FakeMattermost) -> None:
    fake.api.register_command(Command(trigger="Hello", auto_complete=True))
    fake.api.register_command(Command(trigger="hello", auto_complete_desc="again"))
    fake.api.register_command(Command(trigger="team-only", team_id="t" * 26))
    listed = fake.api.list_plugin_commands("")
    assert [(c.trigger, c.auto_complete_desc) for c in listed] == [("hello", "again")]
    assert [c.trigger for c in fake.api.list_plugin_commands("t" * 26)] == ["hello", "team-only"]
    assert listed[0].plugin_id == fake.plugin_id
    fake.api.unregister_command("", "HELLO")
    assert fake.api.list_plugin_commands("") == []
    with pytest.raises(PluginAPIError, match="invalid command"):
        fake.api.register_command(Command(trigger=""))


def test_logs_and_version(fake: FakeMattermost) -> None:
    fake.api.log_info("started", ["user", "u1", "n", 2])
    fake.api.log_error("odd", ["lonely"])
    assert [(e.level, e.message, e.fields) for e in fake.logs] == [
        ("info", "started", {"user": "u1", "n": 2}),
        ("error", "odd", {"lonely": None}),
    ]
    fake.server_version = "9.5.1"
    assert fake.api.get_server_version() == "9.5.1"


async def test_async_client_uses_the_same_server(fake: FakeMattermost) -> None:
    await fake.aapi.kv_set("k", b"v")
    assert fake.api.kv_get("k") == b"v"
    with pytest.raises(NotFoundError):
        await fake.aapi.get_user("u" * 26)
    assert [c.method for c in fake.calls] == ["KVSet", "KVGet", "GetUser"]


# --- recording and stubbing -----------------------------------------------------------------


def test_calls_are_recorded(fake: FakeMattermost) -> None:
    fake.api.kv_set("k", b"v")
    fake.api.kv_get("k")
    with pytest.raises(NotFoundError):
        fake.api.get_user("u" * 26)
    kv_set = fake.calls_to("KVSet")
    assert len(kv_set) == 1
    assert kv_set[0].args == {"key": "k", "value": b"v"}
    assert kv_set[0]["key"] == "k"
    assert kv_set[0].request.context.plugin_id == fake.plugin_id
    assert fake.calls_to("kv_get")[0].result == b"v"  # snake_case works too
    [get_user] = fake.calls_to("GetUser")
    assert get_user.result is None
    assert isinstance(get_user.error, NotFoundError)
    with pytest.raises(KeyError, match="it has: key, value"):
        kv_set[0]["nope"]
    with pytest.raises(ValueError, match="did you mean KVSet"):
        fake.calls_to("KVSett")
    assert repr(kv_set[0]) == "<Call KVSet(key='k', value=b'v') -> None>"
    assert repr(get_user).startswith("<Call GetUser(user_id='uuuu")
    assert "raised NotFoundError(id='app.user.missing_account.const'" in repr(get_user)
    fake.clear_calls()
    assert fake.calls == []


def test_on_overrides_a_modelled_method(fake: FakeMattermost) -> None:
    fake.on("GetServerVersion", lambda request: "1.2.3")
    assert fake.api.get_server_version() == "1.2.3"
    fake.on("kv_get", NotFoundError("gone", id="test.gone"))
    with pytest.raises(NotFoundError) as failure:
        fake.api.kv_get("k")
    assert (failure.value.id, failure.value.where) == ("test.gone", "KVGet")
    assert isinstance(fake.calls_to("KVGet")[0].error, NotFoundError)
    fake.on("KVGet", None)  # back to the model
    assert fake.api.kv_get("k") == b""


def test_on_stubs_any_method(fake: FakeMattermost) -> None:
    seen: list[Any] = []

    def emoji_image(request: Any) -> tuple[bytes, str]:
        seen.append(request.emoji_id)
        return b"\x89PNG", "png"

    fake.on("GetEmojiImage", emoji_image)
    assert fake.api.get_emoji_image("e1") == (b"\x89PNG", "png")
    assert seen == ["e1"]
    response_cls = type(fake.calls_to("GetEmojiImage")[0].response)
    fake.on("GetEmojiImage", lambda request: response_cls(value="gif"))
    assert fake.api.get_emoji_image("e1") == (b"", "gif")
    fake.on("GetEmojiImage", lambda request: (b"", "png", "extra"))
    with pytest.raises(TypeError, match="at most 2 values"):
        fake.api.get_emoji_image("e1")


def test_unmodelled_method_says_how_to_stub_it(fake: FakeMattermost) -> None:
    assert not fake.is_modelled("GetTeamIcon")
    with pytest.raises(UnmodelledMethodError) as failure:
        fake.api.get_team_icon("t1")
    message = str(failure.value)
    assert "PluginAPI.GetTeamIcon" in message
    assert "fake.on('GetTeamIcon', handler)" in message
    assert isinstance(fake.calls_to("GetTeamIcon")[0].error, UnmodelledMethodError)
    fake.on("GetTeamIcon", lambda request: b"icon")
    assert fake.api.get_team_icon("t1") == b"icon"


def test_on_rejects_unknown_methods(fake: FakeMattermost) -> None:
    with pytest.raises(ValueError, match="no method 'KVSett'; did you mean KVSet"):
        fake.on("KVSett", lambda request: None)
    assert "KVSet" in FakeMattermost.modelled_methods()


def test_byte_stream_methods_can_be_stubbed(fake: FakeMattermost) -> None:
    def plugin_http(parts: list[Any]) -> list[Any]:
        body = b"".join(p.body for p in parts if p.WhichOneof("part") == "body")
        head = HTTPResponsePart()
        head.init.status_code = 201
        head.init.headers["X-Seen"].values.append(parts[0].init.url)
        return [head, HTTPResponsePart(body=body.upper())]

    fake.on("PluginHTTP", plugin_http)
    init, body = fake.api.plugin_http("POST", "/other.plugin/x", {}, b"hello")
    assert (init.status_code, list(init.headers["X-Seen"].values), body) == (
        201,
        ["/other.plugin/x"],
        b"HELLO",
    )


# --- running plugins ------------------------------------------------------------------------


class Recorder(Plugin):
    """Records the order of its lifecycle hooks and the threads its handlers ran on."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.threads: dict[str, str] = {}

    @hook(HookName.OnConfigurationChange)
    def on_configuration_change(self) -> None:
        self.events.append(f"config:{self.api.load_plugin_configuration()}")

    @hook(HookName.OnActivate)
    async def on_activate(self) -> None:
        self.events.append(f"activate:{await self.aapi.get_server_version()}")

    @hook(HookName.OnDeactivate)
    def on_deactivate(self) -> None:
        self.events.append("deactivate")
        if self.plugin_id == "com.example.fails-deactivate":
            raise RuntimeError("cannot stop")

    @hook(HookName.MessageWillBePosted)
    def message_will_be_posted(self, context: Any, post: Post) -> Any:
        self.threads["sync"] = threading.current_thread().name
        if post.message == "wrong type":
            return 42
        if post.message == "raise":
            raise ValueError("bad post")
        if post.message == "not found":
            raise NotFoundError("no such thing", id="test.missing", where="test")
        post.props["seen_request_id"] = context.request_id
        return post, ""

    @hook(HookName.ExecuteCommand)
    async def execute_command(self, context: Any, args: CommandArgs) -> CommandResponse:
        self.threads["async"] = threading.current_thread().name
        return CommandResponse(text=f"ran {args.command}")


def test_start_runs_the_bridge_activation_sequence(fake: FakeMattermost) -> None:
    with fake.start(Recorder, settings={"A": 1}) as handle:
        assert handle.plugin.events == ["config:{'A': 1}", "activate:10.11.0"]
        assert "MessageWillBePosted" in handle.implemented
        handle.configure({"A": 2})
        assert handle.plugin.events[-1] == "config:{'A': 2}"
    assert handle.plugin.events[-1] == "deactivate"
    assert handle.stopped
    with pytest.raises(RuntimeError, match="stopped"):
        handle.fire(HookName.OnActivate)
    with pytest.raises(RuntimeError, match="stopped"):
        handle.http("GET", "/")
    handle.stop()  # a second stop does nothing


def test_api_calls_before_activation_fail_as_under_the_bridge(fake: FakeMattermost) -> None:
    class EarlyCaller(Plugin):
        def __init__(self) -> None:
            super().__init__()
            self.api.get_server_version()

    with pytest.raises(PluginAPIError, match="available from OnActivate on"):
        fake.start(EarlyCaller)
    assert fake.api.get_server_version() == "10.11.0"  # the fake itself is still usable


def test_configuration_failure_is_logged_and_activation_goes_on(fake: FakeMattermost) -> None:
    class BadConfig(Plugin):
        @hook(HookName.OnConfigurationChange)
        def on_configuration_change(self) -> None:
            raise ValueError("bad settings")

        @hook(HookName.OnActivate)
        def on_activate(self) -> None:
            self.api.log_info("activated anyway")

    with fake.start(BadConfig) as handle:
        assert handle.configuration_error is not None
        assert [(e.level, e.message) for e in fake.logs] == [
            ("error", "on configuration change failed"),
            ("info", "activated anyway"),
        ]
        assert fake.logs[0].fields == {"error": "bad settings"}


def test_activation_failure(fake: FakeMattermost) -> None:
    class Refuses(Plugin):
        @hook(HookName.OnActivate)
        def on_activate(self) -> None:
            raise PluginAPIError("no", id="test.refused", status_code=403)

    with pytest.raises(ActivationError) as failure:
        fake.start(Refuses)
    assert (failure.value.app_error.id, failure.value.app_error.status_code) == (
        "test.refused",
        403,
    )


def test_failing_deactivation_is_raised_by_stop(fake: FakeMattermost) -> None:
    handle = fake.start(Recorder, plugin_id="com.example.fails-deactivate")
    with pytest.raises(HookError, match="cannot stop"):
        handle.stop()
    assert handle.stopped


def test_fire_sync_and_async_handlers(fake: FakeMattermost) -> None:
    with fake.start(Recorder) as handle:
        post, reason = handle.fire(HookName.MessageWillBePosted, Post(message="hi"))
        assert reason == ""
        assert MM_ID.match(post.props["seen_request_id"])  # a context was made up
        context = handle.new_context(request_id="r1", session_id="s1")
        post, _ = handle.fire("MessageWillBePosted", context, {"message": "hi"})
        assert post.props["seen_request_id"] == "r1"
        post, _ = handle.fire(HookName.MessageWillBePosted, post={"message": "kw"})
        assert post.message == "kw"
        answer = handle.fire(HookName.ExecuteCommand, CommandArgs(command="/x"))
        assert answer.text == "ran /x"
        # Sync handlers ran in worker threads, async ones on the plugin's loop thread.
        assert handle.plugin.threads["sync"].startswith("mmplug-hook")
        assert handle.plugin.threads["async"].startswith("mmplug-plugin")


async def test_afire_from_an_async_test(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Recorder)
    answer = await handle.afire(HookName.ExecuteCommand, {"command": "/async"})
    assert answer.text == "ran /async"
    post, _ = await handle.afire(HookName.MessageWillBePosted, Post(message="hi"))
    assert post.message == "hi"


class Stuck(Plugin):
    """An async handler that never finishes (it waits for an event nobody sets)."""

    @hook(HookName.MessageHasBeenPosted)
    async def posted(self, context: Any, post: Post) -> None:
        await asyncio.Event().wait()


async def test_a_stuck_handler_is_a_timeout_that_says_what(mm_plugin: StartPlugin) -> None:
    # On Python 3.10 asyncio.wait_for raises asyncio's own TimeoutError, not the builtin one:
    # the test kit's message must come through there too (make test-python-versions).
    handle = mm_plugin(Stuck)
    handle.timeout = 0.2
    with pytest.raises(TimeoutError, match=r"MessageHasBeenPosted did not finish within 0.2 s"):
        await handle.afire(HookName.MessageHasBeenPosted, Post(message="hi"))
    with pytest.raises(TimeoutError, match=r"hook MessageHasBeenPosted did not finish within"):
        await asyncio.to_thread(handle.fire, HookName.MessageHasBeenPosted, Post(message="hi"))


def test_hook_errors_are_the_real_ones(fake: FakeMattermost) -> None:
    with fake.start(Recorder) as handle:
        with pytest.raises(HookError) as wrong:
            handle.fire(HookName.MessageWillBePosted, Post(message="wrong type"))
        assert "expects mattermost.plugin.v1.Post" in wrong.value.app_error.message
        with pytest.raises(HookError) as raised:
            handle.fire(HookName.MessageWillBePosted, Post(message="raise"))
        error = raised.value.app_error
        assert (error.id, error.message, error.status_code) == (
            "mmplug.python.hook_error",
            "bad post",
            500,
        )
        assert "ValueError: bad post" in error.detailed_error
        assert error.where == "Recorder.message_will_be_posted"
        with pytest.raises(HookError) as kept:
            handle.fire(HookName.MessageWillBePosted, Post(message="not found"))
        assert isinstance(kept.value.app_error, NotFoundError)
        assert kept.value.app_error.id == "test.missing"


def test_fire_argument_errors(fake: FakeMattermost) -> None:
    with fake.start(Recorder) as handle:
        with pytest.raises(HookNotImplementedError, match="does not implement hook OnSAMLLogin"):
            handle.fire(HookName.OnSAMLLogin, {}, {}, {})
        with pytest.raises(ValueError, match="not a hook"):
            handle.fire("NoSuchHook")
        with pytest.raises(TypeError, match=r"use handle\.http"):
            handle.fire(HookName.ServeHTTP)
        with pytest.raises(TypeError, match="takes 2 arguments"):
            handle.fire(HookName.MessageWillBePosted, None, Post(), "extra")
        with pytest.raises(TypeError, match="has no argument 'nope'"):
            handle.fire(HookName.MessageWillBePosted, nope=1)


def test_plugin_classes_only(fake: FakeMattermost) -> None:
    with pytest.raises(TypeError, match="Plugin subclass"):
        fake.start(object)


# --- HTTP -------------------------------------------------------------------------------------


class Web(Plugin):
    """ServeHTTP routes for the kit's HTTP tests."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.disconnected = threading.Event()
        self.reads: list[bytes] = []

    @hook(HookName.ServeHTTP)
    def serve_http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        if r.path == "/info":
            w.headers["Content-Type"] = ["application/json"]
            w.headers["Set-Cookie"] = ["a=1", "b=2"]
            w.write_header(202)
            info = {
                "method": r.method,
                "query": r.query.get("x", [""])[0],
                "user": r.user_id,
                "uri": r.request_uri,
                "forwarded": r.headers.get("X-Many", []),
            }
            w.write(json.dumps(info))
        elif r.path == "/pieces":
            self.reads.extend(r.stream())
            w.write(b"%d" % len(self.reads))
        elif r.path == "/stream":
            w.write(b"first")
            w.flush()
            self.gate.wait(GUARD)  # the test opens the gate after it saw the first piece
            try:
                w.write(b"second")
                w.flush()
            except HTTPClientDisconnected:
                self.disconnected.set()
        elif r.path == "/fail-early":
            raise RuntimeError("before anything was written")
        elif r.path == "/fail-late":
            w.write(b"partial")
            w.flush()
            raise RuntimeError("after the response started")
        else:
            w.write_header(404)


def test_http_request_and_response(fake: FakeMattermost) -> None:
    with fake.start(Web, plugin_id="com.example.web") as handle:
        response = handle.http(
            "get",
            "/info?x=1",
            headers={"x-many": ["1", "2"], "Mattermost-User-Id": "spoofed"},
            user_id="u" * 26,
        )
    assert response.status == 202
    assert response.headers["set-cookie"] == ["a=1", "b=2"]  # any case, all values
    assert response.json() == {
        "method": "GET",
        "query": "1",
        "user": "u" * 26,  # the server's, never the client's
        "uri": "/plugins/com.example.web/info?x=1",
        "forwarded": ["1", "2"],
    }


def test_http_body_pieces_arrive_as_sent(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Web)
    big = b"z" * (64 * 1024 + 1)
    response = handle.http("POST", "/pieces", body=iter([b"a", b"bc", big]))
    # Pieces over 64 KiB are split as the bridge splits them.
    assert handle.plugin.reads == [b"a", b"bc", b"z" * 64 * 1024, b"z"]
    assert response.text == "4"


def test_http_streamed_response(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Web)
    with handle.open_http("GET", "/stream") as stream:
        assert stream.status == 200
        assert stream.next_chunk() == b"first"  # before "second" can exist
        assert not stream.finished
        handle.plugin.gate.set()
        assert stream.next_chunk() == b"second"
        assert stream.next_chunk() is None
        assert stream.flushes == 2


def test_http_client_disconnect_reaches_the_handler(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Web)
    with handle.open_http("GET", "/stream") as stream:
        assert stream.next_chunk() == b"first"
    handle.plugin.gate.set()
    assert handle.plugin.disconnected.wait(GUARD)


def test_http_errors(mm_plugin: StartPlugin, caplog: pytest.LogCaptureFixture) -> None:
    handle = mm_plugin(Web)
    early = handle.http("GET", "/fail-early")
    assert (early.status, early.text) == (500, "Internal Server Error\n")
    assert "before anything was written" in caplog.text
    with pytest.raises(HookError, match="failed after the response started"):
        handle.http("GET", "/fail-late")
    with handle.open_http("GET", "/fail-late") as stream:
        assert stream.next_chunk() == b"partial"
        with pytest.raises(HookError):
            stream.next_chunk()
    assert handle.http("GET", "/other").status == 404
    with pytest.raises(ValueError, match="must start with '/'"):
        handle.http("GET", "relative")


def test_http_without_serve_http_is_404(mm_plugin: StartPlugin) -> None:
    response = mm_plugin(Recorder).http("GET", "/")
    assert response.status == 404
    assert response.text == "this plugin does not implement ServeHTTP\n"


async def test_asgi_app_through_the_kit(mm_plugin: StartPlugin) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return  # no lifespan support: served without it
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"x-path", scope["path"].encode()), (b"x-a", b"1"), (b"x-a", b"2")],
            }
        )
        for piece in (scope[USER_ID_KEY].encode(), b":", body):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    class AsgiPlugin(Plugin):
        http = serve_asgi(app)

    handle = mm_plugin(AsgiPlugin, plugin_id="com.example.asgi")
    response = await handle.ahttp("PUT", "/x/y", body=[b"12", b"34"], user_id="u1")
    assert response.status == 200
    assert response.headers["X-Path"] == ["/plugins/com.example.asgi/x/y"]
    assert response.headers["X-A"] == ["1", "2"]
    assert response.chunks == [b"u1", b":", b"1234"]


def test_wsgi_app_through_the_kit(mm_plugin: StartPlugin) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("201 Created", [("Content-Type", "text/plain")])
        yield environ["PATH_INFO"].encode()
        yield environ["wsgi.input"].read()

    class WsgiPlugin(Plugin):
        http = serve_wsgi(app)

    response = mm_plugin(WsgiPlugin).http("POST", "/w", body="data")
    assert (response.status, response.body) == (201, b"/wdata")


# --- FileWillBeUploaded -----------------------------------------------------------------------


class Uploads(Plugin):
    @hook(HookName.FileWillBeUploaded)
    def file_will_be_uploaded(self, context: Any, info: FileInfo, file: Any, output: Any) -> Any:
        data = file.read()
        if info.name.endswith(".exe"):
            return None, "no executables"
        if info.name.endswith(".txt"):
            output.write(data.upper())
            info.size = len(data)
            return info, ""
        return None, ""


def test_upload_file(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Uploads)
    changed = handle.upload_file({"name": "a.txt"}, [b"hello ", b"world"])
    assert (changed.replacement, changed.rejection_reason) == (b"HELLO WORLD", "")
    assert changed.file_info.size == 11
    rejected = handle.upload_file(FileInfo(name="x.exe"), b"MZ")
    assert (rejected.file_info, rejected.rejection_reason) == (None, "no executables")
    kept = handle.upload_file(FileInfo(name="p.png"), b"\x89PNG")
    assert (kept.file_info, kept.rejection_reason, kept.replacement) == (None, "", b"")


# --- the pytest plugin and the documentation ---------------------------------------------------


def test_fixtures_are_registered_and_stop_plugins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from mattermost_plugin import HookName, Plugin, hook

        STOPPED = []

        class P(Plugin):
            @hook(HookName.OnDeactivate)
            def on_deactivate(self):
                STOPPED.append(self.plugin_id)

        def test_start(mm_fake, mm_plugin):
            handle = mm_plugin(P, plugin_id="com.example.p")
            assert mm_fake.plugin_id == "com.example.p"
            assert not handle.stopped

        def test_stopped_after_the_test():
            assert STOPPED == ["com.example.p"]
        """
    )
    pytester.makeini(PYTESTER_INI)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_docs_examples_run(pytester: pytest.Pytester) -> None:
    examples = python_examples(DOCS)
    assert len(examples) >= 5
    assert run_examples(pytester, examples, "testing_md") >= 10


def test_loop_guard_rejects_waiting_on_the_plugin_from_its_own_loop(
    mm_plugin: StartPlugin,
) -> None:
    box: dict[str, Any] = {}

    class Reentrant(Plugin):
        @hook(HookName.ExecuteCommand)
        async def execute_command(self, context: Any, args: Any) -> CommandResponse:
            try:
                box["handle"].fire(HookName.OnActivate)
            except RuntimeError as e:
                return CommandResponse(text=str(e))
            return CommandResponse(text="no error")

    box["handle"] = mm_plugin(Reentrant)
    answer = box["handle"].fire(HookName.ExecuteCommand, {"command": "/x"})
    assert "cannot wait for the plugin from its own event loop" in answer.text
    assert asyncio.iscoroutinefunction(Reentrant.execute_command)
