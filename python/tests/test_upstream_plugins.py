"""The plugins of conformance/upstream/ (written only from the documented surface of
Mattermost's own Python SDK) behave as documented, in the test kit. The harness runs the same
behaviour under the real supervisor (conformance/harness/cases_upstream.go)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from mattermost_plugin import HookName
from mattermost_plugin.testing import (
    ActivationError,
    FakeMattermost,
    HookError,
    StartPlugin,
    load_plugin_module,
)

UPSTREAM = Path(__file__).resolve().parents[2] / "conformance" / "upstream"


@pytest.fixture(scope="module")
def hello() -> Any:
    return load_plugin_module(UPSTREAM / "hello_python" / "plugin.py", "upstream_hello_plugin")


@pytest.fixture(scope="module")
def guide() -> Any:
    return load_plugin_module(
        UPSTREAM / "guide_plugin" / "server" / "plugin.py", "upstream_guide_plugin"
    )


def test_hello_activation_registers_the_command_and_logs(
    hello: Any, mm_fake: FakeMattermost, mm_plugin: StartPlugin, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    handle = mm_plugin(hello.HelloPythonPlugin)
    assert sorted(handle.implemented) == [
        "ExecuteCommand",
        "MessageWillBePosted",
        "OnActivate",
        "OnDeactivate",
        "ServeHTTP",
    ]
    (command,) = mm_fake.commands
    assert (command.trigger, command.auto_complete) == ("hello", True)
    messages = [e.message for e in mm_fake.logs] + [r.getMessage() for r in caplog.records]
    assert "Hello Python plugin activated!" in messages
    assert "Connected to Mattermost server version: " + mm_fake.server_version in messages


def test_hello_message_filter_shapes(hello: Any, mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(hello.HelloPythonPlugin)

    def posted(message: str) -> tuple[Any, str]:
        post, reason = handle.fire(HookName.MessageWillBePosted, {"message": message})
        return (post.message if post is not None else None), reason

    assert posted("a badword here") == (None, "Message blocked: contains prohibited content")
    assert posted("buy spam now") == (None, "Spam detected")
    assert posted("as is") == (None, "")
    assert posted("shout hello") == ("HELLO", "")
    assert posted("plain") == ("plain", "")


def test_hello_command_dicts(hello: Any, mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(hello.HelloPythonPlugin)
    world = handle.fire(HookName.ExecuteCommand, {"command": "/hello world"})
    assert (world.response_type, world.text) == ("ephemeral", "Hello, World! :earth_americas:")
    plain = handle.fire(HookName.ExecuteCommand, {"command": "/hello"})
    assert (plain.response_type, plain.text) == ("in_channel", "Hello from Python! :wave:")


def test_hello_http_with_the_writer_helpers(hello: Any, mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(hello.HelloPythonPlugin)
    response = handle.http(
        "POST",
        "/echo",
        headers={"Content-Type": "text/plain", "X-Tag": ["a", "b"]},
        body=b"ping",
        user_id="u1",
    )
    assert response.status == 201
    assert response.headers["Set-Cookie"] == ["first=1", "second=2"]
    assert response.json() == {
        "method": "POST",
        "body": "ping",
        "content_type": "text/plain",
        "tags": ["a", "b"],
        "missing": "none",
        "user": "u1",
    }
    stream = handle.http("GET", "/stream")
    assert stream.chunks == [b"one\n", b"two\n", b"three\n"]
    assert handle.http("GET", "/nothing").status == 404


def test_guide_activation_and_its_calls(
    guide: Any, mm_fake: FakeMattermost, mm_plugin: StartPlugin
) -> None:
    handle = mm_plugin(guide.GuidePlugin)
    kv = mm_fake.kv_of(handle.plugin_id)
    assert kv["activated"] == b"yes"
    assert kv["version_seen"] == mm_fake.server_version.encode()
    (lookup,) = [e for e in mm_fake.logs if e.message == "lookup failed as expected"]
    assert lookup.fields["status"] == "404"


def test_guide_activation_failure_from_a_returned_message(
    guide: Any, mm_fake: FakeMattermost
) -> None:
    mm_fake.api.kv_set("fail_activation", b"1")
    with pytest.raises(ActivationError) as e:
        mm_fake.start(guide.GuidePlugin)
    assert e.value.app_error.message == "activation refused: fail_activation is set"


def test_guide_hook_return_shapes(
    guide: Any, mm_fake: FakeMattermost, mm_plugin: StartPlugin
) -> None:
    handle = mm_plugin(guide.GuidePlugin)
    assert handle.fire(HookName.UserWillLogIn, {"username": "blocked"}) == "Login blocked by plugin"
    assert handle.fire(HookName.UserWillLogIn, {"username": "alice"}) == ""
    kept = handle.fire(HookName.MessagesWillBeConsumed, [{"message": "a"}, {"message": "b"}])
    assert [p.message for p in kept] == ["a", "b"]
    redacted = handle.fire(HookName.MessagesWillBeConsumed, [{"message": "redact me"}])
    assert [p.message for p in redacted] == ["[redacted]"]
    assert handle.fire(HookName.RunDataRetention, 0, 100) == len(mm_fake.kv_of(handle.plugin_id))
    with pytest.raises(HookError, match="retention is switched off"):
        handle.fire(HookName.RunDataRetention, 0, 0)
    with pytest.raises(HookError, match="configuration changes are frozen"):
        handle.fire(HookName.ConfigurationWillBeSaved, {})
    assert handle.fire(HookName.OnSharedChannelsPing, {}) is True
    (data,) = handle.fire(HookName.GenerateSupportData)
    assert (data.filename, data.body) == ("guide.txt", b"support data")
    with pytest.raises(HookError) as invalid:
        handle.fire(HookName.ExecuteCommand, {"command": "/guide invalid"})
    assert (invalid.value.app_error.status_code, invalid.value.app_error.id) == (
        400,
        "guide.invalid",
    )
    ok = handle.fire(HookName.ExecuteCommand, {"command": "/guide"})
    assert ok.text == "Hello from Python!"
    handle.fire(HookName.MessageHasBeenPosted, {"message": "posted!"})
    assert mm_fake.kv_of(handle.plugin_id)["last_posted"] == b"posted!"


def test_guide_http_dict_answers(guide: Any, mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(guide.GuidePlugin)
    hello = handle.http("GET", "/api/hello")
    assert (hello.status, hello.json()) == (200, {"message": "Hello from Python!"})
    data = handle.http("POST", "/api/data", body=b'{"n": 1}')
    assert data.json() == {"received": {"n": 1}, "method": "POST"}
    missing = handle.http("GET", "/elsewhere")
    assert (missing.status, missing.text) == (404, "Not found")
