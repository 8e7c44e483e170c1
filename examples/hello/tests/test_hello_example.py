"""examples/hello against the test kit: every behaviour its README specifies."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

import pytest
from hello_plugin import Hello
from mattermost_plugin import CommandArgs, HookName, NotFoundError, Post
from mattermost_plugin.testing import (
    ActivationError,
    FakeMattermost,
    HookError,
    PluginHandle,
)

StartPlugin = Callable[..., PluginHandle]
PLUGIN_ID = "com.mmplug.hello"  # plugin.json


@pytest.fixture
def hello(mm_plugin: StartPlugin) -> PluginHandle:
    return mm_plugin(Hello, plugin_id=PLUGIN_ID)


def test_activation_registers_the_command_and_logs(
    mm_fake: FakeMattermost, mm_plugin: StartPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        handle = mm_plugin(Hello, plugin_id=PLUGIN_ID)
    assert set(handle.implemented) == {
        "OnConfigurationChange",
        "OnActivate",
        "OnDeactivate",
        "MessageWillBePosted",
        "ExecuteCommand",
        "ServeHTTP",
    }
    [command] = mm_fake.api.list_plugin_commands("")
    assert (command.trigger, command.auto_complete, command.auto_complete_hint) == (
        "hello",
        True,
        "[fail|post]",
    )
    assert "hello activated" in caplog.messages
    # The settings are loaded before OnActivate, as the server does for Go plugins.
    methods = [c.method for c in mm_fake.calls]
    assert methods.index("LoadPluginConfiguration") < methods.index("RegisterCommand")


def test_fail_activation_setting_refuses_activation(
    mm_fake: FakeMattermost, mm_plugin: StartPlugin
) -> None:
    with pytest.raises(ActivationError) as failure:
        mm_plugin(Hello, plugin_id=PLUGIN_ID, settings={"FailActivation": True})
    assert failure.value.app_error.message == "activation refused by configuration"
    assert mm_fake.commands == []


def test_settings_reload_on_configuration_change(hello: PluginHandle) -> None:
    assert hello.plugin.settings == {}
    hello.configure({"FailActivation": False, "Extra": 3})
    assert hello.plugin.settings == {"FailActivation": False, "Extra": 3}


def test_deactivation_logs(hello: PluginHandle, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        hello.stop()
    assert "hello deactivated" in caplog.messages


def test_forbidden_messages_are_rejected(hello: PluginHandle) -> None:
    post, reason = hello.fire(HookName.MessageWillBePosted, Post(message="this is forbidden"))
    assert (post, reason) == (None, "not allowed here")


def test_other_messages_are_marked_and_keep_their_props(hello: PluginHandle) -> None:
    post, reason = hello.fire(
        HookName.MessageWillBePosted, {"message": "hi", "props": {"n": 7, "tag": "x"}}
    )
    assert reason == ""
    assert dict(post.props) == {"n": 7, "tag": "x", "checked_by": "hello"}


def test_hello_answers_with_the_server_version(
    mm_fake: FakeMattermost, hello: PluginHandle
) -> None:
    mm_fake.server_version = "9.11.2"
    answer = hello.fire(HookName.ExecuteCommand, CommandArgs(command="/hello"))
    assert (answer.response_type, answer.text) == ("ephemeral", "Hello from 9.11.2")


def test_hello_fail_returns_the_whole_app_error(hello: PluginHandle) -> None:
    with pytest.raises(HookError) as failure:
        hello.fire(HookName.ExecuteCommand, CommandArgs(command="/hello fail"))
    error = failure.value.app_error
    assert (error.id, error.message, error.detailed_error) == (
        "hello.fail",
        "hello failed on purpose",
        "details",
    )
    assert (error.status_code, error.where) == (418, "Hello.ExecuteCommand")


@pytest.mark.asyncio
async def test_hello_post_creates_a_post_as_the_caller(
    mm_fake: FakeMattermost, hello: PluginHandle
) -> None:
    user = mm_fake.add_user("alice", email="alice@example.com")
    team = mm_fake.add_team("crew")
    channel = mm_fake.add_channel(team.id, "town-square", members=[user.id])
    answer = await hello.afire(
        HookName.ExecuteCommand,
        CommandArgs(command="/hello post", channel_id=channel.id, user_id=user.id),
    )
    [post] = mm_fake.posts_in(channel.id)
    assert (post.user_id, post.message) == (user.id, "posted by /hello")
    assert answer.text == f"Posted {post.id}"


def test_unknown_subcommand(hello: PluginHandle) -> None:
    answer = hello.fire(HookName.ExecuteCommand, CommandArgs(command="/hello dance"))
    assert answer.text == "Unknown subcommand dance: try /hello, /hello fail or /hello post"


def test_version_route(mm_fake: FakeMattermost, hello: PluginHandle) -> None:
    response = hello.http("GET", "/version")
    assert response.status == 200
    assert response.headers["Content-Type"] == ["text/plain"]
    assert response.text == mm_fake.server_version


def test_echo_route(hello: PluginHandle) -> None:
    body = b"\x00binary\xff" * 1000
    response = hello.http(
        "POST",
        "/echo",
        headers={"content-type": "application/x-test", "X-Many": ["1", "2"]},
        body=body,
        user_id="u" * 26,
    )
    assert response.status == 200
    assert response.body == body
    assert response.headers["Content-Type"] == ["application/x-test"]
    assert response.headers["X-Sha256"] == [hashlib.sha256(body).hexdigest()]
    assert response.headers["X-Multi"] == ["a", "b"]
    assert response.headers["X-User-Id"] == ["u" * 26]
    seen = json.loads(response.headers["X-Request-Headers"][0])
    assert seen["X-Many"] == ["1", "2"]
    assert seen["Content-Type"] == ["application/x-test"]


def test_echo_defaults_to_octet_stream(hello: PluginHandle) -> None:
    response = hello.http("POST", "/echo", body=b"")
    assert response.headers["Content-Type"] == ["application/octet-stream"]
    assert response.headers["X-User-Id"] == [""]


def test_kv_routes(mm_fake: FakeMattermost, hello: PluginHandle) -> None:
    assert hello.http("GET", "/kv/color").status == 404
    stored = hello.http("POST", "/kv/color", body=b"blue")
    assert (stored.status, stored.body) == (204, b"")
    assert mm_fake.kv == {"color": b"blue"}
    got = hello.http("GET", "/kv/color")
    assert (got.status, got.body) == (200, b"blue")
    assert got.headers["Content-Type"] == ["application/octet-stream"]
    missing = hello.http("POST", "/kv/", body=b"x")
    assert (missing.status, missing.text) == (400, "missing key")


def test_post_route_posts_and_records_in_kv(mm_fake: FakeMattermost, hello: PluginHandle) -> None:
    user = mm_fake.add_user("bob", email="bob@example.com")
    channel = mm_fake.add_channel(mm_fake.add_team("crew").id, "general")
    response = hello.http(
        "POST", f"/post?channel_id={channel.id}", body=b"hello there", user_id=user.id
    )
    assert response.status == 201
    post = mm_fake.posts[response.text]
    assert (post.channel_id, post.user_id, post.message) == (channel.id, user.id, "hello there")
    assert mm_fake.kv[f"post:{post.id}"] == b"hello there"


def test_api_failures_become_502_with_the_app_error(
    mm_fake: FakeMattermost, hello: PluginHandle
) -> None:
    mm_fake.on(
        "KVGet",
        NotFoundError("store is gone", id="test.kv.gone", detailed_error="d", where="KVGet"),
    )
    response = hello.http("GET", "/kv/anything")
    assert response.status == 502
    assert response.headers["Content-Type"] == ["application/json"]
    assert response.json() == {
        "id": "test.kv.gone",
        "message": "store is gone",
        "detailed_error": "d",
        "request_id": "",
        "status_code": 404,
        "where": "KVGet",
    }
    # A post into a channel that does not exist: the server's own validation error.
    bad = hello.http("POST", "/post?channel_id=nope", body=b"x", user_id="u" * 26)
    assert bad.status == 502
    assert bad.json()["id"] == "model.post.is_valid.channel_id.app_error"


@pytest.mark.parametrize(("method", "path"), [("GET", "/nowhere"), ("DELETE", "/version")])
def test_other_routes_are_404(hello: PluginHandle, method: str, path: str) -> None:
    response = hello.http(method, path)
    assert (response.status, response.text) == (404, "not found")
    assert response.headers["Content-Type"] == ["text/plain"]
