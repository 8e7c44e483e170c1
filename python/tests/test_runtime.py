"""The runtime end to end, in process: a fake bridge API server, the real hooks server."""

from __future__ import annotations

import asyncio
import os
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mattermost_plugin import HookName, NotFoundError, Plugin, PluginAPIError, hook
from mattermost_plugin.client import TOKEN_METADATA_KEY
from mattermost_plugin.errors import ErrorKind
from mattermost_plugin.runtime import ConfigError, RuntimeConfig

from conftest import TOKEN, Start
from testproto import common_pb2 as c
from testproto import plugin_pb2 as p


class Hello(Plugin):
    def __init__(self) -> None:
        super().__init__()
        # The clients are bound before __init__ runs.
        self.version_at_init = self.api is not None
        self.hook_threads: list[int] = []

    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        self.api.register_command(c.Command(trigger="hello", auto_complete=True))

    @hook(HookName.MessageWillBePosted)
    def filter(self, context: c.PluginContext, post: c.Post) -> tuple[c.Post | None, str]:
        self.hook_threads.append(threading.get_ident())
        if "forbidden" in post.message:
            return None, "not allowed here"
        post.props["checked_by"] = "hello"
        post.props["count"] = 3
        return post, ""

    @hook(HookName.ExecuteCommand)
    async def command(self, context: c.PluginContext, args: c.CommandArgs) -> c.CommandResponse:
        version = await self.aapi.get_server_version()
        return c.CommandResponse(response_type="ephemeral", text=f"Hello from {version}")

    @hook
    def RunDataRetention(self, now_time: int, batch_size: int) -> int:
        # Sync re-entrancy: the hook calls the API while the hook call is in flight.
        value = self.api.kv_get(f"retention-{now_time}")
        return int(value.decode()) + batch_size

    @hook("OnConfigurationChange")
    def config_change(self) -> None:
        self.settings = self.api.load_plugin_configuration()
        self.api.get_post("missing")  # raises NotFoundError -> becomes the hook's error


def api_handlers() -> dict[str, object]:
    return {
        "RegisterCommand": lambda req: p.RegisterCommandResponse(),
        "GetServerVersion": lambda req: p.GetServerVersionResponse(result="10.11.0"),
        "KVGet": lambda req: p.KVGetResponse(result=b"40"),
        "LoadPluginConfiguration": lambda req: p.LoadPluginConfigurationResponse(
            result=b'{"Greeting": "hi", "Max": 3}'
        ),
        "GetPost": lambda req: p.GetPostResponse(
            error=c.AppError(
                id="app.post.get.app_error",
                message="Unable to get the post.",
                detailed_error="sql: no rows",
                request_id="req-9",
                status_code=404,
                where="SqlPostStore.Get",
                skip_translation=True,
                kind=c.ERROR_STRING,
                code=2,
            )
        ),
    }


async def test_activate_calls_back_into_the_api(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    assert h.plugin.version_at_init
    resp = await h.hook("OnActivate", p.OnActivateHookRequest())
    assert not resp.HasField("error")
    (call,) = [x for x in h.fake.calls if x.method == "RegisterCommand"]
    assert call.request.command.trigger == "hello"
    assert call.request.command.auto_complete is True
    assert call.request.context.plugin_id == "com.example.test"
    assert call.metadata[TOKEN_METADATA_KEY] == TOKEN


async def test_implemented_lists_go_names(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    resp = await h.hook("Implemented")
    assert list(resp.hooks) == [
        "OnActivate",
        "OnConfigurationChange",
        "ExecuteCommand",
        "MessageWillBePosted",
        "RunDataRetention",
    ]


async def test_calls_without_or_with_wrong_token_are_unauthenticated(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    for token in (None, "wrong", TOKEN + "x", ""):
        with pytest.raises(grpc.aio.AioRpcError) as e:
            await h.hook("OnActivate", token=token)
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The streaming hook and the health service are guarded too.
    stream = h.http(token=None)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await stream.write(p.HTTPRequestPart(init=p.HTTPRequestInit(method="GET", url="/")))
        await stream.read()
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    health = health_pb2_grpc.HealthStub(h.channel)
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert not [x for x in h.fake.calls if x.method == "RegisterCommand"]


async def test_health_serving_once_ready(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    health = health_pb2_grpc.HealthStub(h.channel)
    resp = await health.Check(
        health_pb2.HealthCheckRequest(service=""), metadata=((TOKEN_METADATA_KEY, TOKEN),)
    )
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


async def test_message_will_be_posted_modify_and_reject(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    ok = await h.hook(
        "MessageWillBePosted",
        p.MessageWillBePostedHookRequest(
            c=c.PluginContext(session_id="s"), post=c.Post(message="hi")
        ),
    )
    assert ok.result.message == "hi"
    assert ok.result.props["checked_by"] == "hello"
    assert ok.result.props["count"] == 3
    assert ok.reason == ""
    rejected = await h.hook(
        "MessageWillBePosted", p.MessageWillBePostedHookRequest(post=c.Post(message="forbidden!"))
    )
    assert not rejected.HasField("result")
    assert rejected.reason == "not allowed here"
    # Sync handlers ran off the event loop thread.
    assert h.plugin.hook_threads
    assert threading.get_ident() not in h.plugin.hook_threads


async def test_async_handler_uses_async_client(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    resp = await h.hook(
        "ExecuteCommand", p.ExecuteCommandHookRequest(args=c.CommandArgs(command="/hello"))
    )
    assert resp.result.response_type == "ephemeral"
    assert resp.result.text == "Hello from 10.11.0"


async def test_sync_reentrant_call_and_scalar_results(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    resp = await h.hook("RunDataRetention", p.RunDataRetentionHookRequest(now_time=7, batch_size=2))
    assert resp.result == 42
    (call,) = [x for x in h.fake.calls if x.method == "KVGet"]
    assert call.request.key == "retention-7"


async def test_api_app_error_surfaces_whole(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    with pytest.raises(NotFoundError) as e:
        await asyncio.to_thread(h.plugin.api.get_post, "p1")
    err = e.value
    assert isinstance(err, PluginAPIError)
    assert (err.id, err.message, err.detailed_error) == (
        "app.post.get.app_error",
        "Unable to get the post.",
        "sql: no rows",
    )
    assert (err.request_id, err.status_code, err.where) == ("req-9", 404, "SqlPostStore.Get")
    assert err.skip_translation is True
    assert err.kind == ErrorKind.ERROR_STRING
    assert err.code == 2
    assert err.method == "GetPost"
    assert str(err) == "SqlPostStore.Get: Unable to get the post., sql: no rows"
    with pytest.raises(NotFoundError):
        await h.plugin.aapi.get_post("p1")


async def test_hook_error_from_api_error_keeps_fields(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    resp = await h.hook("OnConfigurationChange")
    assert h.plugin.settings == {"Greeting": "hi", "Max": 3}
    assert resp.error.id == "app.post.get.app_error"
    assert resp.error.status_code == 404
    assert resp.error.kind == c.ERROR_STRING


async def test_hook_exception_becomes_app_error(start_plugin: Start) -> None:
    class Failing(Plugin):
        @hook(HookName.OnActivate)
        def on_activate(self) -> None:
            raise RuntimeError("cannot start: missing bot")

    h = await start_plugin(Failing)
    resp = await h.hook("OnActivate")
    assert resp.error.message == "cannot start: missing bot"
    assert resp.error.id == "mmplug.python.hook_error"
    assert resp.error.status_code == 500
    assert resp.error.where == "Failing.on_activate"
    assert "Traceback" in resp.error.detailed_error
    assert "RuntimeError: cannot start: missing bot" in resp.error.detailed_error


async def test_unimplemented_hook_is_a_clear_grpc_error(start_plugin: Start) -> None:
    h = await start_plugin(Hello, api_handlers())
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await h.hook("OnWebSocketConnect")
    assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "OnWebSocketConnect" in (e.value.details() or "")


async def test_plugin_init_failure_stops_the_runtime(start_plugin: Start) -> None:
    class Broken(Plugin):
        def __init__(self) -> None:
            raise ValueError("bad settings")

    with pytest.raises(ValueError, match="bad settings"):
        await start_plugin(Broken)


def test_config_from_env_consumes_token() -> None:
    env = {
        "MMPLUG_API_SOCKET": "/x/api.sock",
        "MMPLUG_HOOKS_SOCKET": "/x/hooks.sock",
        "MMPLUG_TOKEN": "secret",
        "MMPLUG_PLUGIN_ID": "com.example",
        "MMPLUG_PLUGIN_DIR": "/x",
        "MMPLUG_ENTRY": "/x/plugin.py",
    }
    cfg = RuntimeConfig.from_env(env)
    assert cfg.token == "secret"
    assert "MMPLUG_TOKEN" not in env
    assert (cfg.plugin_dir, cfg.entry) == ("/x", "/x/plugin.py")
    assert "secret" not in repr(cfg)


def test_config_from_env_names_missing_variables() -> None:
    with pytest.raises(ConfigError, match="MMPLUG_HOOKS_SOCKET, MMPLUG_TOKEN"):
        RuntimeConfig.from_env({"MMPLUG_API_SOCKET": "/a", "MMPLUG_PLUGIN_ID": "x"})


def test_config_from_real_environ_deletes_token(monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in {
        "MMPLUG_API_SOCKET": "/a",
        "MMPLUG_HOOKS_SOCKET": "/h",
        "MMPLUG_TOKEN": "tok",
        "MMPLUG_PLUGIN_ID": "x",
    }.items():
        monkeypatch.setenv(k, v)
    assert RuntimeConfig.from_env().token == "tok"
    assert "MMPLUG_TOKEN" not in os.environ


def test_token_comes_from_the_descriptor_the_bridge_names(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from mattermost_plugin.runtime import RuntimeConfig

    r, w = os.pipe()
    os.write(w, b"fd-secret\n")
    os.close(w)
    env = {
        "MMPLUG_API_SOCKET": "/tmp/a.sock",
        "MMPLUG_HOOKS_SOCKET": "/tmp/h.sock",
        "MMPLUG_TOKEN_FD": str(r),
        "MMPLUG_PLUGIN_ID": "com.example.x",
    }
    config = RuntimeConfig.from_env(env)
    assert config.token == "fd-secret"
    # The descriptor now reads as /dev/null: nothing later can read the token from it.
    assert os.read(r, 10) == b""
    os.close(r)
