"""Mattermost's own Python SDK's surface on mmplug (docs/upstream.md).

Each test uses a name or shape of that SDK as its docs, examples and docstrings show it and
checks what happens, through the real dispatch path (the test kit) where a hook is involved.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import grpc
import pytest

import mattermost_plugin
from mattermost_plugin import (
    AlreadyExistsError,
    AsyncPluginAPIClient,
    BadRequestError,
    ConflictError,
    HookName,
    HookRegistrationError,
    NotFoundError,
    PermissionDeniedError,
    Plugin,
    PluginAPIClient,
    PluginAPIError,
    Post,
    RuntimeConfig,
    ServiceUnavailableError,
    TooManyRequestsError,
    UnauthorizedError,
    UnavailableError,
    ValidationError,
    _compat,
    convert_app_error,
    convert_grpc_error,
    exceptions,
    hook,
    hooks,
    load_runtime_config,
    runtime_config,
    server,
)
from mattermost_plugin.http import HTTPRequest, HTTPResponseWriter
from mattermost_plugin.testing import ActivationError, FakeMattermost, HookError, StartPlugin

ROOT = Path(__file__).resolve().parents[2]


# --- names -----------------------------------------------------------------------------

UPSTREAM_INIT_NAMES = [
    "Plugin",
    "hook",
    "HookName",
    "HookRegistrationError",
    "Command",
    "CommandResponse",
    "RuntimeConfig",
    "load_runtime_config",
    "PluginAPIClient",
    "AsyncPluginAPIClient",
    "PluginAPIError",
    "NotFoundError",
    "PermissionDeniedError",
    "ValidationError",
    "AlreadyExistsError",
    "UnavailableError",
    "convert_grpc_error",
    "__version__",
]


def test_every_name_of_the_other_sdks_init_is_exported() -> None:
    for name in UPSTREAM_INIT_NAMES:
        assert hasattr(mattermost_plugin, name), name
        if name != "__version__":
            assert name in mattermost_plugin.__all__, name
    assert mattermost_plugin.__version__ == "0.1.0"
    assert mattermost_plugin.PluginAPIClient is PluginAPIClient
    assert mattermost_plugin.AsyncPluginAPIClient is AsyncPluginAPIClient


def test_module_paths_of_the_other_sdk_import() -> None:
    from mattermost_plugin.exceptions import convert_grpc_error as from_exceptions
    from mattermost_plugin.runtime_config import load_runtime_config as from_runtime_config
    from mattermost_plugin.server import run_plugin, serve_plugin

    assert from_exceptions is convert_grpc_error
    assert from_runtime_config is load_runtime_config
    assert run_plugin is mattermost_plugin.run_plugin
    assert asyncio.iscoroutinefunction(serve_plugin)
    assert exceptions.ValidationError is BadRequestError
    assert runtime_config.RuntimeConfig is RuntimeConfig


# --- errors ----------------------------------------------------------------------------


def test_error_aliases_and_hierarchy_match_the_status_mapping() -> None:
    assert ValidationError is BadRequestError
    assert AlreadyExistsError is ConflictError
    assert issubclass(UnauthorizedError, PermissionDeniedError)
    assert issubclass(ServiceUnavailableError, UnavailableError)
    assert issubclass(TooManyRequestsError, UnavailableError)
    for cls in (NotFoundError, PermissionDeniedError, ValidationError, AlreadyExistsError):
        assert issubclass(cls, PluginAPIError)
    # By HTTP status, as the other SDK's convert_app_error picks them.
    cases = {
        404: NotFoundError,
        403: PermissionDeniedError,
        401: PermissionDeniedError,
        400: ValidationError,
        409: AlreadyExistsError,
        503: UnavailableError,
        429: UnavailableError,
        500: PluginAPIError,
    }
    for status, expected in cases.items():
        app_error = mattermost_plugin.AppError(
            id="x.y", message="m", status_code=status, detailed_error="d", where="w"
        )
        err = convert_app_error(app_error)
        assert isinstance(err, expected), status
        assert (err.error_id, err.message, err.status_code) == ("x.y", "m", status)
        assert (err.detailed_error, err.where, err.params) == ("d", "w", {})


def test_error_attributes_of_the_other_sdk() -> None:
    err = NotFoundError(
        "no such user",
        code=grpc.StatusCode.NOT_FOUND,
        error_id="api.user.missing",
        status_code=404,
        detailed_error=None,
        where=None,
        params={"UserId": "u1"},
    )
    assert err.message == "no such user"
    assert err.code is grpc.StatusCode.NOT_FOUND
    assert err.error_id == err.id == "api.user.missing"
    assert (err.status_code, err.detailed_error, err.where) == (404, "", "")
    assert err.params == {"UserId": "u1"}
    assert err.grpc_code is grpc.StatusCode.NOT_FOUND
    # Our fields still carry the server's error to it (code is ours when not a status).
    assert err.to_fields()["code"] == 0
    assert PluginAPIError("x", status_code=409).grpc_code is grpc.StatusCode.ALREADY_EXISTS
    assert PluginAPIError("x", status_code=418).grpc_code is grpc.StatusCode.INTERNAL


class _RpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "cls", "status", "message"),
    [
        (grpc.StatusCode.NOT_FOUND, NotFoundError, 404, "gone"),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError, 403, "gone"),
        (grpc.StatusCode.UNAUTHENTICATED, PermissionDeniedError, 401, "Not authenticated: gone"),
        (grpc.StatusCode.INVALID_ARGUMENT, ValidationError, 400, "gone"),
        (grpc.StatusCode.FAILED_PRECONDITION, ValidationError, 400, "Precondition failed: gone"),
        (grpc.StatusCode.OUT_OF_RANGE, ValidationError, 400, "Value out of range: gone"),
        (grpc.StatusCode.ALREADY_EXISTS, AlreadyExistsError, 409, "gone"),
        (grpc.StatusCode.UNAVAILABLE, UnavailableError, 503, "gone"),
        (grpc.StatusCode.DEADLINE_EXCEEDED, UnavailableError, 504, "Request timed out: gone"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, UnavailableError, 429, "Resource exhausted: gone"),
        (grpc.StatusCode.INTERNAL, PluginAPIError, 500, "Internal server error: gone"),
        (grpc.StatusCode.UNIMPLEMENTED, PluginAPIError, 501, "Method not implemented: gone"),
    ],
)
def test_convert_grpc_error(
    code: grpc.StatusCode, cls: type[PluginAPIError], status: int, message: str
) -> None:
    err = convert_grpc_error(_RpcError(code, "gone"))
    assert isinstance(err, cls)
    assert (err.message, err.code, err.status_code) == (message, code, status)
    assert err.grpc_code is code


# --- runtime configuration -------------------------------------------------------------


def test_runtime_config_has_the_other_sdks_fields_and_defaults() -> None:
    config = RuntimeConfig()
    assert (config.plugin_id, config.hook_timeout, config.log_level) == ("", 30.0, "INFO")
    config = RuntimeConfig(plugin_id="p", plugin_path="/plugins/p", log_level="DEBUG")
    assert config.plugin_dir == config.plugin_path == "/plugins/p"
    assert RuntimeConfig(api_socket="/s/api").api_target == "unix:/s/api"


def test_load_runtime_config_reads_either_environment_without_failing() -> None:
    upstream_env = {
        "MATTERMOST_PLUGIN_ID": "com.example.p",
        "MATTERMOST_PLUGIN_API_TARGET": "127.0.0.1:9999",
        "MATTERMOST_PLUGIN_PATH": "/plugins/p",
        "MATTERMOST_PLUGIN_HOOK_TIMEOUT": "12.5",
        "MATTERMOST_PLUGIN_LOG_LEVEL": "DEBUG",
    }
    config = load_runtime_config(upstream_env)
    assert (config.plugin_id, config.api_target, config.plugin_path) == (
        "com.example.p",
        "127.0.0.1:9999",
        "/plugins/p",
    )
    assert (config.hook_timeout, config.log_level) == (12.5, "DEBUG")
    assert load_runtime_config({"MATTERMOST_PLUGIN_HOOK_TIMEOUT": "soon"}).hook_timeout == 30.0
    ours = load_runtime_config(
        {"MMPLUG_PLUGIN_ID": "com.mmplug.x", "MMPLUG_API_SOCKET": "/run/a.sock"}
    )
    assert (ours.plugin_id, ours.api_target) == ("com.mmplug.x", "unix:/run/a.sock")
    assert load_runtime_config({}).api_target == runtime_config.DEFAULT_API_TARGET


def test_configure_logging_sends_records_at_the_level() -> None:
    from mattermost_plugin.logging import ServerLogHandler

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        RuntimeConfig(log_level="warning").configure_logging()
        assert root.getEffectiveLevel() == logging.WARNING
        assert any(isinstance(h, ServerLogHandler) for h in root.handlers)
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)


def test_server_module_helpers() -> None:
    assert server.format_handshake_line(4321) == "1|1|tcp|127.0.0.1:4321|grpc"
    assert server.GO_PLUGIN_CORE_PROTOCOL_VERSION == server.GO_PLUGIN_APP_PROTOCOL_VERSION == "1"
    assert dict(server.DEFAULT_SERVER_OPTIONS)["grpc.max_send_message_length"] == 64 << 20


def test_serve_plugin_outside_the_bridge_says_how_to_run(monkeypatch: Any) -> None:
    for name in ("MMPLUG_API_SOCKET", "MMPLUG_HOOKS_SOCKET", "MMPLUG_TOKEN", "MMPLUG_PLUGIN_ID"):
        monkeypatch.delenv(name, raising=False)

    class P(Plugin):
        pass

    with pytest.raises(ValueError, match="mmplug dev"):
        asyncio.run(server.serve_plugin(P, RuntimeConfig(plugin_id="x")))
    with pytest.raises(ValueError, match="started by the mmplug bridge"):
        asyncio.run(server.serve_plugin(P))
    assert server.PluginServer(P()).port is None


# --- Plugin and @hook ------------------------------------------------------------------


class Lifecycle(Plugin):
    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        self.logger.info("activated")

    @hook("OnDeactivate")
    def handle_deactivate(self) -> None:
        pass

    @hook
    def MessageHasBeenPosted(self, context: Any, post: Any) -> None:
        self.seen = post.message

    @hook()
    def OnConfigurationChange(self) -> None:
        pass


def test_plugin_constructor_and_helpers_of_the_other_sdk() -> None:
    api, config, logger = object(), RuntimeConfig(plugin_id="p1"), logging.getLogger("x")
    plugin = Lifecycle(api, config, logger)  # positional, in the other SDK's order
    assert plugin.api is api and plugin.config is config and plugin.logger is logger
    assert plugin.plugin_id == "p1"
    bare = Lifecycle()
    with pytest.raises(RuntimeError):
        _ = bare.api
    assert bare.config is None
    assert isinstance(bare.logger, logging.Logger)
    assert sorted(Lifecycle.implemented_hooks()) == [
        "MessageHasBeenPosted",
        "OnActivate",
        "OnConfigurationChange",
        "OnDeactivate",
    ]
    assert Lifecycle.has_hook("OnActivate") and not Lifecycle.has_hook("ServeHTTP")
    handler = bare.get_hook_handler("MessageHasBeenPosted")
    assert handler is not None and handler.__self__ is bare  # type: ignore[attr-defined]
    assert bare.get_hook_handler("ExecuteCommand") is None
    assert bare.invoke_hook("MessageHasBeenPosted", None, Post(message="hi")) is None
    assert bare.seen == "hi"
    assert bare.invoke_hook("ExecuteCommand", None, None) is None


def test_the_guides_unit_test_pattern_assigns_api_and_logger() -> None:
    class Filter(Plugin):
        @hook(HookName.MessageWillBePosted)
        def filter_message(self, context: Any, post: Any) -> Any:
            self.logger.info("checking")
            if "spam" in post.message.lower():
                return None, "Spam detected"
            return post, ""

    from unittest.mock import MagicMock

    plugin = Filter()
    plugin.api = MagicMock()
    plugin.logger = MagicMock()
    result, reason = plugin.filter_message(None, MagicMock(message="This is spam"))
    assert result is None and "spam" in reason.lower()
    plugin.logger.info.assert_called_once_with("checking")


def test_hooks_module_names() -> None:
    assert "OnActivate" in hooks.VALID_HOOK_NAMES
    assert {h.value for h in HookName} == hooks.VALID_HOOK_NAMES
    fn = Lifecycle.on_activate
    assert hooks.is_hook_handler(fn) and hooks.get_hook_name(fn) == "OnActivate"
    assert not hooks.is_hook_handler(Lifecycle.implemented_hooks)
    assert hooks.get_hook_name(test_hooks_module_names) is None
    assert getattr(fn, hooks.HOOK_MARKER_ATTR) == "OnActivate"
    marked = hook(name_or_func=HookName.OnInstall)(lambda self, c, e: None)
    assert hooks.get_hook_name(marked) == "OnInstall"
    with pytest.raises(HookRegistrationError):
        hook("NotAHook")
    assert HookName.OnActivate == "OnActivate"


def test_a_subclass_init_written_for_the_other_sdk_gets_api_and_config(
    mm_fake: FakeMattermost,
) -> None:
    class Explicit(Plugin):
        def __init__(self, api: Any = None, config: Any = None, logger: Any = None) -> None:
            super().__init__(api, config, logger)
            self.got = (api, config)

        @hook(HookName.OnActivate)
        def on_activate(self) -> None:
            self.version = self.api.get_server_version()

    with mm_fake.start(Explicit) as handle:
        plugin: Any = handle.plugin
        assert plugin.got[0] is plugin.api
        assert plugin.version == mm_fake.server_version


# --- hook return shapes ----------------------------------------------------------------


def returning(hook_name: HookName, value: Any) -> type[Plugin]:
    class Returns(Plugin):
        @hook(hook_name)
        def handler(self, *args: Any) -> Any:
            return value

    return Returns


def fire(fake: FakeMattermost, hook_name: HookName, value: Any, *args: Any) -> Any:
    with fake.start(returning(hook_name, value)) as handle:
        return handle.fire(hook_name, *args)


def test_error_hooks_take_str_and_exception_returns(mm_fake: FakeMattermost) -> None:
    with pytest.raises(ActivationError) as e:
        mm_fake.start(returning(HookName.OnActivate, "missing token"))
    error = e.value.app_error
    assert (error.message, error.id, error.where) == (
        "missing token",
        "plugin.on_activate.error",
        "OnActivate",
    )
    with pytest.raises(ActivationError) as e:
        mm_fake.start(returning(HookName.OnActivate, RuntimeError("broken")))
    assert e.value.app_error.message == "broken"
    with mm_fake.start(returning(HookName.OnActivate, "")):
        pass  # "" is success
    assert fire(mm_fake, HookName.OnInstall, "", {}) is None
    with pytest.raises(HookError, match="install failed"):
        fire(mm_fake, HookName.OnInstall, "install failed", {})


def test_value_and_error_tuples(mm_fake: FakeMattermost) -> None:
    assert fire(mm_fake, HookName.RunDataRetention, 7, 0, 10) == 7
    assert fire(mm_fake, HookName.RunDataRetention, (7, None), 0, 10) == 7
    assert fire(mm_fake, HookName.RunDataRetention, (7, ""), 0, 10) == 7
    with pytest.raises(HookError, match="retention failed"):
        fire(mm_fake, HookName.RunDataRetention, (3, "retention failed"), 0, 10)
    with pytest.raises(HookError, match="boom"):
        fire(mm_fake, HookName.RunDataRetention, (3, ValueError("boom")), 0, 10)
    files = [mattermost_plugin.FileData(filename="a.txt", body=b"A")]
    got = fire(mm_fake, HookName.GenerateSupportData, (files, None))
    assert [f.filename for f in got] == ["a.txt"]
    with pytest.raises(HookError, match="no data"):
        fire(mm_fake, HookName.GenerateSupportData, (None, "no data"))


def test_message_hooks_take_a_bare_reason_or_a_post(mm_fake: FakeMattermost) -> None:
    post, reason = fire(mm_fake, HookName.MessageWillBePosted, "blocked", {"message": "x"})
    assert (post, reason) == (None, "blocked")
    post, reason = fire(mm_fake, HookName.MessageWillBePosted, "", {"message": "x"})
    assert (post, reason) == (None, "")
    post, reason = fire(
        mm_fake, HookName.MessageWillBePosted, Post(id="p", message="changed"), {"message": "x"}
    )
    assert (post.message, reason) == ("changed", "")
    _, reason = fire(
        mm_fake, HookName.MessageWillBeUpdated, "no edits", {"message": "n"}, {"message": "o"}
    )
    assert reason == "no edits"
    _, reason = fire(mm_fake, HookName.NotificationWillBePushed, "muted", {}, "u1")
    assert reason == "muted"


def test_messages_will_be_consumed_none_keeps_the_posts(mm_fake: FakeMattermost) -> None:
    posts = fire(mm_fake, HookName.MessagesWillBeConsumed, None, [{"message": "a"}])
    assert [p.message for p in posts] == ["a"]
    posts = fire(mm_fake, HookName.MessagesWillBeConsumed, (), [{"message": "a"}])
    assert posts == []


def test_ping_none_is_healthy(mm_fake: FakeMattermost) -> None:
    assert fire(mm_fake, HookName.OnSharedChannelsPing, None, {}) is True
    assert fire(mm_fake, HookName.OnSharedChannelsPing, False, {}) is False
    assert fire(mm_fake, HookName.OnSharedChannelsPing, 0, {}) is False


def test_execute_command_dict_and_wrapper_returns(mm_fake: FakeMattermost) -> None:
    response = fire(
        mm_fake,
        HookName.ExecuteCommand,
        {"response_type": "ephemeral", "text": "Hello from Python!"},
        {"command": "/hello"},
    )
    assert (response.response_type, response.text) == ("ephemeral", "Hello from Python!")
    assert fire(mm_fake, HookName.ExecuteCommand, None, {"command": "/x"}) is None

    class Wrapped:
        def to_proto(self) -> Any:
            return mattermost_plugin.CommandResponse(response_type="in_channel", text="w")

    response = fire(mm_fake, HookName.ExecuteCommand, Wrapped(), {"command": "/x"})
    assert (response.response_type, response.text) == ("in_channel", "w")


def test_error_hook_set_matches_the_schema() -> None:
    schema = json.loads((ROOT / "schema" / "mattermost-api.json").read_text())
    returning_errors = {
        h["name"]
        for h in schema["hooks"]
        if h["name"] != "Implemented"
        and any(r["type"] in ("error", "*model.AppError") for r in h["results"])
    }
    assert returning_errors == _compat.ERROR_HOOKS


# --- HTTP ------------------------------------------------------------------------------


class Web(Plugin):
    @hook(HookName.ServeHTTP)
    def serve_http(self, context: Any, response_writer: Any, request: Any) -> None:
        if request.url.startswith("/hello"):
            response_writer.set_header("Content-Type", "application/json")
            response_writer.add_header("Set-Cookie", "a=1")
            response_writer.add_header("Set-Cookie", "b=2")
            response_writer.write_header(201)
            response_writer.write(
                json.dumps(
                    {
                        "method": request.method,
                        "agent": request.get_header("user-agent"),
                        "tags": request.get_all_headers("X-Tag"),
                        "missing": request.get_header("X-None", "dflt"),
                        "length": request.content_length,
                        "body": request.body.decode(),
                        "proto": [request.proto, request.proto_major, request.proto_minor],
                    }
                )
            )
            response_writer.set_header("X-Late", "ignored")
            return
        response_writer.write_header(404)
        response_writer.write(b"Not found")


class AsyncWeb(Plugin):
    @hook(HookName.ServeHTTP)
    async def serve_http(self, context: Any, response_writer: Any, request: Any) -> None:
        response_writer.set_header("Content-Type", "text/plain")
        response_writer.write(b"got " + request.body)
        response_writer.flush()


class GuideWeb(Plugin):
    @hook(HookName.ServeHTTP)
    def serve_http(self, context: Any, request: Any) -> Any:
        if request.path == "/api/hello":
            return {
                "status_code": 200,
                "headers": {"Content-Type": "application/json"},
                "body": '{"message": "Hello from Python!"}',
            }
        return {"status_code": 404, "body": "Not found"}


def test_request_and_writer_helpers_through_the_dispatcher(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(Web)
    response = handle.http(
        "POST",
        "/hello",
        headers={"User-Agent": "tests", "X-Tag": ["one", "two"]},
        body=b"payload",
    )
    assert response.status == 201
    assert response.headers["Content-Type"] == ["application/json"]
    assert response.headers["Set-Cookie"] == ["a=1", "b=2"]
    assert "X-Late" not in response.headers
    assert response.json() == {
        "method": "POST",
        "agent": "tests",
        "tags": ["one", "two"],
        "missing": "dflt",
        "length": 7,
        "body": "payload",
        "proto": ["HTTP/1.1", 1, 1],
    }
    assert handle.http("GET", "/other").status == 404


def test_async_handler_reads_request_body_as_the_other_sdk_allowed(
    mm_plugin: StartPlugin,
) -> None:
    response = mm_plugin(AsyncWeb).http("PUT", "/x", body=b"abc")
    assert (response.status, response.body) == (200, b"got abc")


def test_async_handler_body_of_unknown_length_says_to_await(mm_plugin: StartPlugin) -> None:
    def pieces() -> Any:
        yield b"a"
        yield b"b"

    handle = mm_plugin(AsyncWeb)
    response = handle.http("PUT", "/x", body=pieces())
    assert response.status == 500  # nothing buffered: the handler is told to await it


def test_guide_style_dict_returning_handler(mm_plugin: StartPlugin) -> None:
    handle = mm_plugin(GuideWeb)
    ok = handle.http("GET", "/api/hello")
    assert (ok.status, ok.json()) == (200, {"message": "Hello from Python!"})
    assert ok.headers["Content-Type"] == ["application/json"]
    missing = handle.http("GET", "/nope")
    assert (missing.status, missing.body) == (404, b"Not found")


def test_request_and_writer_built_by_hand_as_the_other_sdks_tests_do() -> None:
    request = HTTPRequest(
        method="POST",
        url="/api/data?x=1",
        proto="HTTP/1.1",
        proto_major=1,
        proto_minor=1,
        headers={"Content-Type": ["application/json"], "mattermost-user-id": ["u1"]},
        host="localhost",
        remote_addr="127.0.0.1:1",
        request_uri="/plugins/p/api/data?x=1",
        content_length=2,
    )
    request.body = b"{}"
    assert (request.path, request.query, request.user_id) == ("/api/data", {"x": ["1"]}, "u1")
    assert request.get_header("CONTENT-TYPE") == "application/json"
    writer = HTTPResponseWriter()
    assert writer.MAX_CHUNK_SIZE == 64 * 1024
    Web().serve_http(None, writer, HTTPRequest(method="GET", url="/elsewhere"))
    assert writer.status_code == 404
    assert writer.get_body() == b"Not found"
    assert writer.get_pending_writes() == [(b"Not found", False)]
    writer.clear_pending_writes()
    assert writer.get_body() == b""
    flushing = HTTPResponseWriter()
    flushing.write("a")
    flushing.flush()
    flushing.write(b"b")
    assert flushing.get_pending_writes() == [(b"a", True), (b"b", False)]


def test_writer_header_helpers_ignore_changes_after_sending(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = HTTPResponseWriter()
    writer.set_header("X-A", "1")
    writer.set_header("X-A", "2")
    writer.write_header(204)
    writer.add_header("X-B", "late")
    assert dict(writer.headers) == {"X-A": ["2"]}
    assert "after the response headers were sent" in caplog.text
    with pytest.raises(RuntimeError):
        writer.headers["X-C"] = "direct assignment still refuses"


def test_the_entry_module_may_hold_a_base_class_of_the_plugin(tmp_path: Path) -> None:
    from mattermost_plugin.__main__ import EntryError, find_plugin_class, load_module

    entry = tmp_path / "layered.py"
    entry.write_text(
        "from mattermost_plugin import Plugin, hook, HookName\n"
        "class Base(Plugin):\n"
        "    pass\n"
        "class Final(Base):\n"
        "    @hook(HookName.OnActivate)\n"
        "    def on_activate(self):\n"
        "        pass\n"
        "if __name__ == '__main__':\n"
        "    from mattermost_plugin.server import run_plugin\n"
        "    run_plugin(Final)\n"
    )
    assert find_plugin_class(load_module(entry, "layered_upstream")).__name__ == "Final"
    twins = tmp_path / "twins.py"
    twins.write_text(
        "from mattermost_plugin import Plugin\nclass A(Plugin): pass\nclass B(Plugin): pass\n"
    )
    with pytest.raises(EntryError, match="found A, B"):
        find_plugin_class(load_module(twins, "twins_upstream"))


# --- API clients -----------------------------------------------------------------------


def test_client_calls_made_the_other_sdks_way(mm_fake: FakeMattermost) -> None:
    from mattermost_plugin.wrappers import Post as PostWrapper

    api = mm_fake.api
    alice = mm_fake.add_user(username="alice", email="alice@example.com")
    bob = mm_fake.add_user(username="bob", email="bob@example.com")
    team = mm_fake.add_team(name="team1")
    channel = mm_fake.add_channel(team_id=team.id, name="town")
    # Options struct fields as keywords, or no struct at all (per_page defaults to 60).
    assert sorted(u.username for u in api.get_users()) == ["alice", "bob"]
    assert len(api.get_users(page=0, per_page=1)) == 1
    assert [u.username for u in api.get_users_by_ids(user_ids=[bob.id])] == ["bob"]
    assert api.get_user_by_username(username="alice").id == alice.id
    # The guide's create_post(channel_id=..., user_id=..., message=...), and a wrapper.
    first = api.create_post(channel_id=channel.id, user_id=alice.id, message="one")
    second = api.create_post(
        PostWrapper(id="", channel_id=channel.id, user_id=bob.id, message="two")
    )
    assert (first.message, second.message) == ("one", "two")
    # Paging left out.
    posts = api.get_posts_for_channel(channel.id)
    assert set(posts.order) == {first.id, second.id}
    calls = mm_fake.calls_to("GetPostsForChannel")
    assert calls[-1].request.per_page == 60
    api.kv_set("a", b"1")
    assert api.kv_list() == ["a"]
    assert mm_fake.calls_to("KVList")[-1].request.per_page == 100
    api.log_info("hello", user="u1", count="2")
    assert mm_fake.logs[-1].fields == {"user": "u1", "count": "2"}
    api.log_warn(message="keyword message")
    assert mm_fake.logs[-1].message == "keyword message"
    assert api.load_plugin_configuration(b"{}") == {}
    # Ours still holds: every argument, positionally; a missing one is still an error.
    assert len(api.get_posts_for_channel(channel.id, 0, 1).order) == 1
    with pytest.raises(TypeError, match="missing required argument 'user_id'"):
        api.get_user()
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        api.get_user(alice.id, colour="red")


async def test_async_client_takes_the_same_calls(mm_fake: FakeMattermost) -> None:
    mm_fake.add_user(username="carol", email="carol@example.com")
    users = await mm_fake.aapi.get_users(per_page=5)
    assert [u.username for u in users] == ["carol"]
    await mm_fake.aapi.log_error("failed", code="7")
    assert mm_fake.logs[-1].fields == {"code": "7"}


def test_wrappers_convert_both_ways(mm_fake: FakeMattermost) -> None:
    from mattermost_plugin import wrappers
    from mattermost_plugin._internal.wrappers import PluginKVSetOptions

    team = mm_fake.add_team(name="team2")
    channel = mm_fake.add_channel(team_id=team.id, name="general")
    user = mm_fake.add_user(username="dave", email="dave@example.com")
    post = mm_fake.api.create_post(
        wrappers.Post(id="", channel_id=channel.id, user_id=user.id, message="m", props={"n": 1})
    )
    wrapped = wrappers.Post.from_proto(mm_fake.api.get_post(post.id))
    assert (wrapped.id, wrapped.message, wrapped.props) == (post.id, "m", {"n": 1})
    assert wrapped.to_proto().message == "m"
    with pytest.raises(AttributeError):
        wrapped.message = "frozen"  # type: ignore[misc]
    assert wrappers.User.from_proto(mm_fake.api.get_user(user.id)).username == "dave"
    assert wrappers.Channel.from_proto(mm_fake.api.get_channel(channel.id)).type == "O"
    listing = wrappers.PostList.from_proto(mm_fake.api.get_posts_for_channel(channel.id))
    assert isinstance(listing.posts[post.id], wrappers.Post)
    assert mm_fake.api.kv_set_with_options("k", b"v", PluginKVSetOptions(expire_in_seconds=9))
    session = wrappers.Session(id="s", is_oauth=True).to_proto()
    assert session.is_o_auth is True
    assert (
        wrappers.ChannelStats.from_proto(
            mattermost_plugin.ChannelStats(channel_id="c", pinned_post_count=3)
        ).pinnedpost_count
        == 3
    )
    sidebar = wrappers.SidebarCategoryWithChannels(id="cat", display_name="Fav", channel_ids=["a"])
    assert wrappers.SidebarCategoryWithChannels.from_proto(sidebar.to_proto()) == sidebar
    response = wrappers.CommandResponse(response_type="ephemeral", text="t")
    assert response.to_proto() == mattermost_plugin.CommandResponse(
        response_type="ephemeral", text="t"
    )
    assert wrappers.TeamType.INVITE == "I" and wrappers.ChannelType.DIRECT == "D"


def test_clients_built_the_other_sdks_way_share_the_plugins_connection(
    mm_fake: FakeMattermost,
) -> None:
    class Builder(Plugin):
        @hook(HookName.OnActivate)
        def on_activate(self) -> None:
            with PluginAPIClient() as client:
                assert client.connected
                self.version = client.get_server_version()
            assert not client.connected
            late = PluginAPIClient()
            with pytest.raises(RuntimeError, match="not connected"):
                late.get_server_version()
            late.connect()
            self.again = late.get_server_version()
            late.close()
            # Closing a client built this way leaves the plugin's own connection open.
            self.still = self.api.get_server_version()

    with mm_fake.start(Builder) as handle:
        plugin: Any = handle.plugin
        assert plugin.version == plugin.again == plugin.still == mm_fake.server_version

    async def use_async() -> str:
        async with AsyncPluginAPIClient() as client:
            version: str = await client.get_server_version()
            return version

    assert asyncio.run(use_async()) == mm_fake.server_version


def test_the_other_sdks_module_paths_for_clients_and_http() -> None:
    from mattermost_plugin.async_client import AsyncPluginAPIClient as from_async_client
    from mattermost_plugin.client import AsyncPluginAPIClient as async_from_client
    from mattermost_plugin.client import PluginAPIClient as from_client
    from mattermost_plugin.servicers.hooks_servicer import (
        DISMISS_POST_ERROR,
    )
    from mattermost_plugin.servicers.hooks_servicer import (
        HTTPRequest as ServicerRequest,
    )
    from mattermost_plugin.servicers.hooks_servicer import (
        HTTPResponseWriter as ServicerWriter,
    )

    assert from_client is PluginAPIClient
    assert from_async_client is async_from_client is AsyncPluginAPIClient
    assert (ServicerRequest, ServicerWriter) == (HTTPRequest, HTTPResponseWriter)
    assert DISMISS_POST_ERROR == "plugin.message_will_be_posted.dismiss_post"


# --- docs/upstream.md lists every public name --------------------------------------------

# The RPCs of the other SDK's PluginAPI service; its client has one method per RPC, named by
# Go name in snake case (its scripts/audit_client_coverage.py checks it).
UPSTREAM_RPCS = [
    "CreateUser",
    "DeleteUser",
    "GetUsers",
    "GetUsersByIds",
    "GetUser",
    "GetUserByEmail",
    "GetUserByUsername",
    "GetUsersByUsernames",
    "GetUsersInTeam",
    "UpdateUser",
    "GetUserStatus",
    "GetUserStatusesByIds",
    "UpdateUserStatus",
    "SetUserStatusTimedDND",
    "UpdateUserActive",
    "UpdateUserCustomStatus",
    "RemoveUserCustomStatus",
    "GetUsersInChannel",
    "GetLDAPUserAttributes",
    "SearchUsers",
    "GetProfileImage",
    "SetProfileImage",
    "HasPermissionTo",
    "HasPermissionToTeam",
    "HasPermissionToChannel",
    "PublishUserTyping",
    "UpdateUserAuth",
    "UpdateUserRoles",
    "GetSession",
    "CreateSession",
    "ExtendSessionExpiry",
    "RevokeSession",
    "CreateUserAccessToken",
    "RevokeUserAccessToken",
    "CreateTeam",
    "DeleteTeam",
    "GetTeams",
    "GetTeam",
    "GetTeamByName",
    "GetTeamsUnreadForUser",
    "UpdateTeam",
    "SearchTeams",
    "GetTeamsForUser",
    "CreateTeamMember",
    "CreateTeamMembers",
    "CreateTeamMembersGracefully",
    "DeleteTeamMember",
    "GetTeamMembers",
    "GetTeamMember",
    "GetTeamMembersForUser",
    "UpdateTeamMemberRoles",
    "GetTeamIcon",
    "SetTeamIcon",
    "RemoveTeamIcon",
    "GetTeamStats",
    "CreateChannel",
    "DeleteChannel",
    "GetPublicChannelsForTeam",
    "GetChannel",
    "GetChannelByName",
    "GetChannelByNameForTeamName",
    "GetChannelsForTeamForUser",
    "GetChannelStats",
    "GetDirectChannel",
    "GetGroupChannel",
    "UpdateChannel",
    "SearchChannels",
    "AddChannelMember",
    "AddUserToChannel",
    "GetChannelMember",
    "GetChannelMembers",
    "GetChannelMembersByIds",
    "GetChannelMembersForUser",
    "UpdateChannelMemberRoles",
    "UpdateChannelMemberNotifications",
    "PatchChannelMembersNotifications",
    "DeleteChannelMember",
    "CreateChannelSidebarCategory",
    "GetChannelSidebarCategories",
    "UpdateChannelSidebarCategories",
    "CreatePost",
    "AddReaction",
    "RemoveReaction",
    "GetReactions",
    "SendEphemeralPost",
    "UpdateEphemeralPost",
    "DeleteEphemeralPost",
    "DeletePost",
    "GetPostThread",
    "GetPost",
    "GetPostsSince",
    "GetPostsAfter",
    "GetPostsBefore",
    "GetPostsForChannel",
    "UpdatePost",
    "SearchPostsInTeam",
    "SearchPostsInTeamForUser",
    "GetEmojiList",
    "GetEmojiByName",
    "GetEmoji",
    "GetEmojiImage",
    "KVSet",
    "KVCompareAndSet",
    "KVCompareAndDelete",
    "KVSetWithOptions",
    "KVSetWithExpiry",
    "KVGet",
    "KVDelete",
    "KVDeleteAll",
    "KVList",
    "PublishWebSocketEvent",
    "LoadPluginConfiguration",
    "GetConfig",
    "GetUnsanitizedConfig",
    "SaveConfig",
    "GetPluginConfig",
    "SavePluginConfig",
    "GetBundlePath",
    "GetPlugins",
    "EnablePlugin",
    "DisablePlugin",
    "RemovePlugin",
    "GetPluginStatus",
    "InstallPlugin",
    "GetPluginID",
    "LogDebug",
    "LogInfo",
    "LogError",
    "LogWarn",
    "CopyFileInfos",
    "GetFileInfo",
    "SetFileSearchableContent",
    "GetFileInfos",
    "GetFile",
    "GetFileLink",
    "ReadFile",
    "UploadFile",
    "CreateUploadSession",
    "UploadData",
    "GetUploadSession",
    "CreateBot",
    "PatchBot",
    "GetBot",
    "GetBots",
    "UpdateBotActive",
    "PermanentDeleteBot",
    "EnsureBotUser",
    "GetLicense",
    "IsEnterpriseReady",
    "GetServerVersion",
    "GetSystemInstallDate",
    "GetDiagnosticId",
    "GetTelemetryId",
    "RegisterCommand",
    "UnregisterCommand",
    "ExecuteSlashCommand",
    "CreateCommand",
    "ListCommands",
    "ListCustomCommands",
    "ListPluginCommands",
    "ListBuiltInCommands",
    "GetCommand",
    "UpdateCommand",
    "DeleteCommand",
    "GetPreferenceForUser",
    "GetPreferencesForUser",
    "UpdatePreferencesForUser",
    "DeletePreferencesForUser",
    "CreateOAuthApp",
    "GetOAuthApp",
    "UpdateOAuthApp",
    "DeleteOAuthApp",
    "GetGroup",
    "GetGroupByName",
    "GetGroupMemberUsers",
    "GetGroupsBySource",
    "GetGroupsForUser",
    "UpsertGroupMember",
    "UpsertGroupMembers",
    "GetGroupByRemoteID",
    "CreateGroup",
    "UpdateGroup",
    "DeleteGroup",
    "RestoreGroup",
    "DeleteGroupMember",
    "GetGroupSyncable",
    "GetGroupSyncables",
    "UpsertGroupSyncable",
    "UpdateGroupSyncable",
    "DeleteGroupSyncable",
    "GetGroups",
    "CreateDefaultSyncableMemberships",
    "DeleteGroupConstrainedMemberships",
    "RegisterPluginForSharedChannels",
    "UnregisterPluginForSharedChannels",
    "ShareChannel",
    "UpdateSharedChannel",
    "UnshareChannel",
    "UpdateSharedChannelCursor",
    "SyncSharedChannel",
    "InviteRemoteToChannel",
    "UninviteRemoteFromChannel",
    "CreatePropertyField",
    "GetPropertyField",
    "GetPropertyFields",
    "UpdatePropertyField",
    "DeletePropertyField",
    "SearchPropertyFields",
    "CountPropertyFields",
    "CountPropertyFieldsForTarget",
    "CreatePropertyValue",
    "GetPropertyValue",
    "GetPropertyValues",
    "UpdatePropertyValue",
    "UpsertPropertyValue",
    "DeletePropertyValue",
    "SearchPropertyValues",
    "RegisterPropertyGroup",
    "GetPropertyGroup",
    "GetPropertyFieldByName",
    "UpdatePropertyFields",
    "UpdatePropertyValues",
    "UpsertPropertyValues",
    "DeletePropertyValuesForTarget",
    "DeletePropertyValuesForField",
    "LogAuditRec",
    "LogAuditRecWithLevel",
    "PluginHTTP",
    "GetCloudLimits",
    "OpenInteractiveDialog",
    "PublishPluginClusterEvent",
    "RegisterCollectionAndTopic",
    "RequestTrialLicense",
    "RolesGrantPermission",
    "SendMail",
    "SendPushNotification",
]


UPSTREAM_HOOKS = [
    "OnActivate", "OnDeactivate", "OnConfigurationChange", "OnInstall", "OnSendDailyTelemetry",
    "RunDataRetention", "OnCloudLimitsUpdated", "ConfigurationWillBeSaved",
    "MessageWillBePosted", "MessageWillBeUpdated", "MessageHasBeenPosted",
    "MessageHasBeenUpdated", "MessagesWillBeConsumed", "MessageHasBeenDeleted",
    "FileWillBeUploaded", "ReactionHasBeenAdded", "ReactionHasBeenRemoved",
    "NotificationWillBePushed", "EmailNotificationWillBeSent", "PreferencesHaveChanged",
    "UserHasBeenCreated", "UserWillLogIn", "UserHasLoggedIn", "UserHasBeenDeactivated",
    "OnSAMLLogin", "ChannelHasBeenCreated", "UserHasJoinedChannel", "UserHasLeftChannel",
    "UserHasJoinedTeam", "UserHasLeftTeam", "ExecuteCommand", "OnWebSocketConnect",
    "OnWebSocketDisconnect", "WebSocketMessageHasBeenPosted", "OnPluginClusterEvent",
    "OnSharedChannelsSyncMsg", "OnSharedChannelsPing", "OnSharedChannelsAttachmentSyncMsg",
    "OnSharedChannelsProfileImageSyncMsg", "GenerateSupportData", "ServeHTTP",
]  # fmt: skip

# Public names of the other SDK's modules besides the client methods.
UPSTREAM_MODULE_NAMES = {
    "plugin": ["Plugin", "implemented_hooks", "has_hook", "invoke_hook", "get_hook_handler"],
    "hooks": [
        "hook", "HookName", "VALID_HOOK_NAMES", "HookRegistrationError", "get_hook_name",
        "is_hook_handler", "HOOK_MARKER_ATTR",
    ],
    "exceptions": [
        "PluginAPIError", "NotFoundError", "PermissionDeniedError", "ValidationError",
        "AlreadyExistsError", "UnavailableError", "convert_grpc_error", "convert_app_error",
    ],
    "runtime_config": [
        "RuntimeConfig", "load_runtime_config", "configure_logging", "from_env",
        "DEFAULT_API_TARGET", "DEFAULT_HOOK_TIMEOUT", "DEFAULT_LOG_LEVEL", "ENV_PLUGIN_ID",
        "ENV_API_TARGET", "ENV_PLUGIN_PATH", "ENV_HOOK_TIMEOUT", "ENV_LOG_LEVEL",
    ],
    "server": [
        "run_plugin", "serve_plugin", "PluginServer", "format_handshake_line",
        "DEFAULT_SERVER_OPTIONS", "GO_PLUGIN_CORE_PROTOCOL_VERSION",
        "GO_PLUGIN_APP_PROTOCOL_VERSION", "port", "start", "stop", "wait_for_termination",
    ],
    "client": [
        "PluginAPIClient", "AsyncPluginAPIClient", "target", "connected", "connect", "close",
        "get_server_version", "get_system_install_date", "get_diagnostic_id", "log_debug",
        "log_info", "log_warn", "log_error",
    ],
    "servicers.hooks_servicer": [
        "HTTPRequest", "HTTPResponseWriter", "DISMISS_POST_ERROR", "PluginHooksServicerImpl",
        "get_header", "get_all_headers", "set_header", "add_header", "write_header", "write",
        "flush", "get_body", "get_pending_writes", "clear_pending_writes", "MAX_CHUNK_SIZE",
        "content_length", "remote_addr", "request_uri", "proto_major", "proto_minor",
    ],
    "_internal.wrappers": [
        "User", "UserStatus", "CustomStatus", "UserAuth", "Session", "UserAccessToken", "Team",
        "TeamMember", "TeamMemberWithError", "TeamUnread", "TeamStats", "Channel",
        "ChannelMember", "ChannelStats", "SidebarCategoryWithChannels",
        "OrderedSidebarCategories", "ViewUsersRestrictions", "Reaction", "Post", "PostList",
        "FileInfo", "UploadSession", "PluginKVSetOptions", "TeamType", "ChannelType",
        "Bot", "BotPatch", "BotGetOptions", "Command", "CommandArgs", "CommandResponse",
        "Preference", "OAuthApp", "Group", "GroupMember", "GroupSyncable", "SharedChannel",
        "Emoji", "PluginInfo", "PluginStatus", "DialogElement", "Dialog", "OpenDialogRequest",
        "AuditRecord", "PushNotification",
        "from_proto", "to_proto",
    ],
}  # fmt: skip


def _upstream_snake(name: str) -> str:
    import re

    first = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z0-9])([A-Z])", r"\1_\2", first).lower()


def test_docs_upstream_lists_every_public_name() -> None:
    text = (ROOT / "docs" / "upstream.md").read_text()
    names = [
        *UPSTREAM_INIT_NAMES,
        *UPSTREAM_HOOKS,
        *(n for group in UPSTREAM_MODULE_NAMES.values() for n in group),
        *(_upstream_snake(r) for r in UPSTREAM_RPCS),
        *(f"mattermost_plugin.{module}" for module in UPSTREAM_MODULE_NAMES),
        "mattermost_plugin.async_client",
        "mattermost_plugin.grpc",
    ]
    missing = [n for n in names if f"`{n}" not in text and f".{n}" not in text]
    assert missing == []
    assert len(UPSTREAM_RPCS) == len(set(UPSTREAM_RPCS)) == 236


def test_every_client_method_of_the_other_sdk_exists_on_both_clients() -> None:
    for rpc in UPSTREAM_RPCS:
        name = _upstream_snake(rpc)
        assert callable(getattr(PluginAPIClient, name, None)), name
        assert asyncio.iscoroutinefunction(getattr(AsyncPluginAPIClient, name)), name
    for hook_name in UPSTREAM_HOOKS:
        assert HookName(hook_name) == hook_name


async def test_plugin_server_serves_the_given_instance(monkeypatch: Any) -> None:
    served: dict[str, Any] = {}

    async def fake_serve(plugin_cls: Any, config: Any, *, stop: Any, ready: Any) -> None:
        # What the runtime does with the class: create it with the clients, then serve.
        plugin = plugin_cls.create(api="api", aapi="aapi", plugin_id="p1", config=config)
        served["plugin"], served["config"] = plugin, config
        ready(plugin)
        await stop.wait()
        served["stopped"] = True

    monkeypatch.setattr(server, "_serve_plugin", fake_serve)
    launch = RuntimeConfig(api_socket="/s/api", hooks_socket="/s/hooks", token="t", plugin_id="p1")
    instance = Lifecycle()
    plugin_server = server.PluginServer(instance, launch)
    assert await plugin_server.start() == 0
    assert served["plugin"] is instance and served["config"] is launch
    assert (instance.api, instance.plugin_id, instance.config) == ("api", "p1", launch)
    with pytest.raises(RuntimeError, match="already started"):
        await plugin_server.start()
    await plugin_server.stop()
    assert served["stopped"] is True
    await plugin_server.wait_for_termination()
