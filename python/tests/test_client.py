"""The generic API clients against the fake bridge: arguments, results, errors."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import grpc
import pytest

from mattermost_plugin import (
    NotImplementedAPIError,
    Plugin,
    PluginAPIError,
    ServiceUnavailableError,
)
from mattermost_plugin._contract import api_service
from mattermost_plugin.client import TOKEN_METADATA_KEY, make_client_classes

from conftest import TOKEN, Harness, Start
from testproto import common_pb2 as c
from testproto import plugin_pb2 as p


class Bare(Plugin):
    pass


def handlers() -> dict[str, Any]:
    def kv_set_with_options(req: p.KVSetWithOptionsRequest) -> p.KVSetWithOptionsResponse:
        ttl = req.expire_in_seconds if req.HasField("expire_in_seconds") else -1
        return p.KVSetWithOptionsResponse(result=True, revision=ttl)

    def statuses(req: p.UpdateUserStatusesRequest) -> p.UpdateUserStatusesResponse:
        resp = p.UpdateUserStatusesResponse(
            updated=[f"{u}:{req.statuses[u]}" for u in req.user_ids]
        )
        resp.extra.update({"n": len(req.user_ids), "big": 2**60, "half": 0.5, "nested": [1, "a"]})
        return resp

    return {
        "KVSetWithOptions": kv_set_with_options,
        "UpdateUserStatuses": statuses,
        "GetPost": lambda req: p.GetPostResponse(),  # success with the result unset
        "KVGet": lambda req: p.KVGetResponse(result=req.key.encode()),
        "LoadPluginConfiguration": lambda req: p.LoadPluginConfigurationResponse(),
        "GetServerVersion": lambda req: p.GetServerVersionResponse(
            error=c.AppError(id="", message="", status_code=500)  # empty id+message: success
        ),
    }


async def harness(start_plugin: Start) -> Harness:
    return await start_plugin(Bare, handlers())


async def test_multiple_results_are_a_tuple_and_optionals_none(start_plugin: Start) -> None:
    h = await harness(start_plugin)
    api = h.plugin.api
    assert await asyncio.to_thread(api.kv_set_with_options, "k", b"v", 30) == (True, 30)
    assert await asyncio.to_thread(api.kv_set_with_options, "k", b"v") == (True, -1)
    assert await h.plugin.aapi.kv_set_with_options(key="k", value=b"v", expire_in_seconds=5) == (
        True,
        5,
    )
    (call, *_) = [x for x in h.fake.calls if x.method == "KVSetWithOptions"]
    assert call.request.key == "k" and call.request.value == b"v"
    assert call.metadata[TOKEN_METADATA_KEY] == TOKEN


async def test_repeated_map_and_struct_conversions(start_plugin: Start) -> None:
    h = await harness(start_plugin)
    updated, extra = await h.plugin.aapi.update_user_statuses(
        ["u1", "u2"], {"u1": "online", "u2": "away"}
    )
    assert updated == ["u1:online", "u2:away"]
    # Whole numbers come back as int (Go integers travel as doubles in a Struct).
    assert extra == {"n": 2, "big": 2**60, "half": 0.5, "nested": [1, "a"]}
    assert isinstance(extra["n"], int)


async def test_unset_message_result_is_none_and_empty_error_is_success(
    start_plugin: Start,
) -> None:
    h = await harness(start_plugin)
    assert await h.plugin.aapi.get_post("nope") is None
    assert await h.plugin.aapi.get_server_version() == ""
    assert await h.plugin.aapi.load_plugin_configuration() == {}
    assert await h.plugin.aapi.kv_get("abc") == b"abc"


async def test_argument_errors_are_type_errors(start_plugin: Start) -> None:
    h = await harness(start_plugin)
    api = h.plugin.api
    with pytest.raises(TypeError, match="takes 1 arguments \\(key\\), got 2"):
        api.kv_get("a", "b")
    with pytest.raises(TypeError, match="unexpected keyword argument 'kee'"):
        api.kv_get(kee="a")
    with pytest.raises(TypeError, match="multiple values for argument 'key'"):
        api.kv_get("a", key="b")
    with pytest.raises(TypeError, match=r"KVSetRequest\.value"):
        api.kv_set("a", 12)
    with pytest.raises(TypeError, match=r"expects mmplugtest\.v1\.Command"):
        api.register_command(c.Post())
    with pytest.raises(TypeError, match="expects a list"):
        api.update_user_statuses("u1")
    assert not [x for x in h.fake.calls if x.method in ("KVGet", "KVSet")]


async def test_unknown_method_suggests_close_names(start_plugin: Start) -> None:
    h = await harness(start_plugin)
    with pytest.raises(AttributeError, match="did you mean kv_get"):
        _ = h.plugin.api.kv_gett
    assert "kv_set" in h.plugin.api.method_names()


async def test_transport_failures_are_plugin_api_errors(start_plugin: Start) -> None:
    h = await harness(start_plugin)
    # The fake has no RegisterCommand handler: UNIMPLEMENTED, like a method the server lacks.
    with pytest.raises(NotImplementedAPIError) as e:
        await h.plugin.aapi.register_command(c.Command(trigger="x"))
    assert e.value.status_code == 501
    assert e.value.method == "RegisterCommand"
    await h.fake.stop()
    with pytest.raises(ServiceUnavailableError):
        await asyncio.to_thread(h.plugin.api.get_server_version)
    assert issubclass(ServiceUnavailableError, PluginAPIError)


def test_wrong_token_is_reported_as_unauthorized() -> None:
    sync_cls, _ = make_client_classes(p.DESCRIPTOR.services_by_name["PluginAPI"])
    err = grpc.RpcError()
    err.code = lambda: grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    err.details = lambda: "bad token"  # type: ignore[attr-defined]

    class Channel:
        def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
            def call(*a: Any, **k: Any) -> Any:
                raise err

            return call

        def close(self) -> None:
            pass

    client = sync_cls(Channel(), token="t", plugin_id="x")
    with pytest.raises(PluginAPIError) as e:
        client.kv_get("k")
    assert e.value.status_code == 401
    assert "bad token" in e.value.message


def test_real_contract_client_has_every_unary_rpc() -> None:
    service = api_service()
    sync_cls, async_cls = make_client_classes(service)
    unary = [m for m in service.methods if not (m.client_streaming or m.server_streaming)]
    assert len(sync_cls.method_names()) == len(unary) > 200
    assert inspect.iscoroutinefunction(async_cls.get_server_version)
    sig = inspect.signature(sync_cls.kv_set)
    assert (
        list(sig.parameters)[1:]
        == [f.name for f in service.methods_by_name["KVSet"].input_type.fields][1:]
    )
    assert sync_cls.get_server_version.__doc__.startswith("Call PluginAPI.GetServerVersion")
