"""The generated typed clients and hook signatures against the protobuf descriptors.

The generator (crates/codegen) works from the API schema; these tests hold its Python output
to the contract the runtime actually serves: the gRPC descriptors of the generated protobuf
modules. Then the typed clients are driven through a fake bridge serving the real contract.
"""

from __future__ import annotations

import asyncio
import collections.abc
import datetime
import inspect
import io
import json
import shutil
import tempfile
import typing
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import empty_pb2, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from mattermost_plugin import HookName, Plugin, PluginAPIError
from mattermost_plugin import hooks as hooks_module
from mattermost_plugin._contract import api_service, hooks_service
from mattermost_plugin._convert import payload_fields
from mattermost_plugin._generated import api as generated_api
from mattermost_plugin._generated import hooks as generated_hooks
from mattermost_plugin._names import snake_case
from mattermost_plugin._proto.mattermost.plugin.v1 import (
    common_pb2,
    http_pb2,
    models_pb2,
)
from mattermost_plugin._proto.mattermost.plugin.v1 import models_pb2 as m
from mattermost_plugin.client import aio_channel, sync_channel
from mattermost_plugin.http import HTTPRequest, HTTPResponseWriter
from mattermost_plugin.runtime import RuntimeConfig, serve_plugin

from fakebridge import FakeAPI, wait_ready

PluginAPIClient = generated_api.PluginAPIClient
AsyncPluginAPIClient = generated_api.AsyncPluginAPIClient
TOKEN = "typed-token"
STREAMING = {"InstallPlugin", "UploadData", "ReceiveSharedChannelAttachmentSyncMsg", "PluginHTTP"}


# The Go doc comments, from the schema the generator read.
SCHEMA_DOCS: dict[str, str] = {
    m["name"]: m.get("doc", "")
    for m in json.loads(
        (Path(__file__).resolve().parents[2] / "schema/mattermost-api.json").read_text()
    )["api"]
}


def _annotation_namespace() -> dict[str, Any]:
    # What the TYPE_CHECKING imports of the generated modules name, to resolve annotations.
    ns: dict[str, Any] = {}
    for mod in (models_pb2, common_pb2, http_pb2):
        ns.update({k: v for k, v in vars(mod).items() if isinstance(v, type)})
    ns.update(
        Struct=struct_pb2.Struct,
        Value=struct_pb2.Value,
        Timestamp=timestamp_pb2.Timestamp,
        Empty=empty_pb2.Empty,
        datetime=datetime,
        Sequence=collections.abc.Sequence,
        Mapping=collections.abc.Mapping,
        Awaitable=collections.abc.Awaitable,
        HTTPRequest=HTTPRequest,
        HTTPResponseWriter=HTTPResponseWriter,
    )
    return ns


def _own_methods(cls: type) -> list[str]:
    return [n for n, v in vars(cls).items() if inspect.isfunction(v) and not n.startswith("_")]


def _expected_params(method: MethodDescriptor) -> list[str] | None:
    """Request field names from 2 on; None where the Go shape is not a plain request."""
    if method.name == "PluginHTTP":
        return None
    req = method.input_type
    if method.client_streaming:
        req = req.fields_by_name["init"].message_type  # the init part carries the fields
    return [f.name for f in payload_fields(req)]


def test_every_rpc_has_one_typed_method_on_both_clients() -> None:
    service = api_service()
    rpcs = list(service.methods)
    names = [snake_case(r.name) for r in rpcs]
    # Exactly one method per RPC (no extras, none missing), in service order.
    assert _own_methods(PluginAPIClient) == names
    assert _own_methods(AsyncPluginAPIClient) == names
    assert len(names) == len(set(names)) > 200
    ns = _annotation_namespace()
    for rpc, name in zip(rpcs, names, strict=True):
        sync_fn = vars(PluginAPIClient)[name]
        async_fn = vars(AsyncPluginAPIClient)[name]
        assert not inspect.iscoroutinefunction(sync_fn), name
        assert inspect.iscoroutinefunction(async_fn), name
        params = list(inspect.signature(sync_fn).parameters)[1:]
        assert params == list(inspect.signature(async_fn).parameters)[1:], name
        want = _expected_params(rpc)
        if rpc.name == "LoadPluginConfiguration":
            assert params == []
        elif want is not None:
            # Byte-stream params are not fields: the others must match, in order.
            stream_params = [p for p in params if p not in want]
            assert [p for p in params if p in want] == want, name
            assert len(stream_params) == (1 if rpc.client_streaming else 0), name
        # Every annotation resolves to real types (they are imported for type checking only).
        hints = typing.get_type_hints(sync_fn, globalns={**vars(generated_api), **ns})
        assert set(hints) == {*params, "return"}, name
        assert typing.get_type_hints(async_fn, globalns={**vars(generated_api), **ns}) == hints


def test_method_names_follow_the_shared_snake_case_rule() -> None:
    # The Rust generator has its own copy of the rule (crates/codegen/src/names.rs); the
    # generated names are its output, snake_case is Python's.
    for rpc in api_service().methods:
        assert hasattr(PluginAPIClient, snake_case(rpc.name)), rpc.name
    for go, py in [
        ("KVSetWithOptions", "kv_set_with_options"),
        ("GetLDAPUserAttributes", "get_ldap_user_attributes"),
    ]:
        assert snake_case(go) == py and hasattr(PluginAPIClient, py)


def test_docstrings_are_the_go_docs() -> None:
    for cls in (PluginAPIClient, AsyncPluginAPIClient):
        for rpc in api_service().methods:
            doc = inspect.getdoc(getattr(cls, snake_case(rpc.name))) or ""
            go_lines = [
                line.strip()
                for line in SCHEMA_DOCS[rpc.name].splitlines()
                if line.strip() and not line.strip().startswith("@tag")
            ]
            assert go_lines, rpc.name
            for line in go_lines:
                assert line in doc, f"{cls.__name__}.{rpc.name}: {line!r} missing"
            assert "Minimum server version: " in doc, rpc.name
            assert "@tag" not in doc, rpc.name
            if rpc.name in STREAMING:
                assert "64 KiB at a time" in doc, rpc.name
    doc = inspect.getdoc(PluginAPIClient.kv_set_with_options) or ""
    assert doc.startswith("KVSetWithOptions stores a key-value pair")
    assert doc.endswith("Minimum server version: 5.20")


def test_hook_name_matches_the_descriptor_in_order() -> None:
    rpcs = [m.name for m in hooks_service().methods if m.name != "Implemented"]
    assert [h.value for h in HookName] == rpcs
    assert HookName is generated_hooks.HookName is hooks_module.HookName


def test_every_hook_has_a_documented_typed_handler_protocol() -> None:
    ns = {**vars(generated_hooks), **_annotation_namespace()}
    for method in hooks_service().methods:
        if method.name == "Implemented":
            assert not hasattr(hooks_module, "ImplementedHandler")
            continue
        proto = getattr(hooks_module, f"{method.name}Handler")
        assert getattr(proto, "_is_protocol", False), method.name
        assert method.name in (inspect.getdoc(proto) or ""), method.name
        assert f"{method.name}Result" in hooks_module.__all__
        params = list(inspect.signature(proto.__call__).parameters)[1:]
        if not method.client_streaming:
            assert params == [f.name for f in payload_fields(method.input_type)], method.name
        hints = typing.get_type_hints(proto.__call__, globalns=ns)
        assert set(hints) == {*params, "return"}, method.name
    ns["_T"] = generated_hooks._T
    assert typing.get_type_hints(
        generated_hooks.MessageWillBePostedHandler.__call__, globalns=ns
    ) == {
        "plugin_context": m.PluginContext,
        "post": m.Post,
        "return": tuple[m.Post | None, str] | collections.abc.Awaitable[tuple[m.Post | None, str]],
    }


# --- behaviour through a fake bridge serving the real contract -----------------------------


class Bare(Plugin):
    pass


@pytest.fixture
async def contract_fake() -> AsyncIterator[tuple[FakeAPI, str]]:
    tmp = tempfile.mkdtemp(prefix="mmp-", dir="/tmp")
    service = api_service()

    def resp(name: str, **fields: Any) -> Message:
        cls = GetMessageClass(service.methods_by_name[name].output_type)
        return cls(**fields)

    handlers = {
        "KVSetWithOptions": lambda req: resp(
            "KVSetWithOptions", value=req.options.atomic and req.key == "k"
        ),
        "GetLicense": lambda req: resp("GetLicense"),
        "CreatePost": lambda req: resp(
            "CreatePost", post=m.Post(id="p1", message=req.post.message)
        ),
        "LoadPluginConfiguration": lambda req: resp("LoadPluginConfiguration", config=b'{"a": 1}'),
        "GetUser": lambda req: resp(
            "GetUser",
            error=common_pb2.AppError(id="app.user.missing", message="no", status_code=404),
        ),
    }
    fake = FakeAPI(service, TOKEN, handlers)
    socket = f"{tmp}/api.sock"
    await fake.start(socket)
    yield fake, socket
    await fake.stop()
    shutil.rmtree(tmp, ignore_errors=True)


async def test_typed_clients_call_through_the_generic_engine(
    contract_fake: tuple[FakeAPI, str],
) -> None:
    fake, socket = contract_fake
    api = PluginAPIClient(sync_channel(socket), token=TOKEN, plugin_id="com.example.typed")
    aapi = AsyncPluginAPIClient(aio_channel(socket), token=TOKEN, plugin_id="com.example.typed")
    try:
        opts = m.PluginKVSetOptions(atomic=True)
        assert await asyncio.to_thread(api.kv_set_with_options, "k", b"v", opts) is True
        assert await aapi.kv_set_with_options(key="k", value=b"v", options=opts) is True
        assert await aapi.get_license() is None
        created = await aapi.create_post(m.Post(message="hi"))
        assert (created.id, created.message) == ("p1", "hi")
        assert await asyncio.to_thread(api.load_plugin_configuration) == {"a": 1}
        assert await aapi.load_plugin_configuration() == {"a": 1}
        with pytest.raises(PluginAPIError) as e:
            await aapi.get_user("u1")
        assert (e.value.id, e.value.status_code, e.value.method) == (
            "app.user.missing",
            404,
            "GetUser",
        )
        call = next(c for c in fake.calls if c.method == "KVSetWithOptions")
        assert call.request.context.plugin_id == "com.example.typed"
        assert "kv_set" in api.method_names() and "install_plugin" not in api.method_names()
    finally:
        api.close()
        await aapi.close()


async def test_streaming_methods_stream_in_bounded_chunks(
    contract_fake: tuple[FakeAPI, str],
) -> None:
    fake, socket = contract_fake
    service = api_service()

    def out(name: str, **fields: Any) -> Message:
        cls = GetMessageClass(service.methods_by_name[name].output_type)
        return cls(**fields)

    received: dict[str, tuple[Message, bytes, list[int]]] = {}

    def collect(name: str, reply: Message) -> Callable[[list[Message]], Message]:
        def handler(parts: list[Message]) -> Message:
            init = parts[0].init  # type: ignore[attr-defined]
            chunks = [p.chunk for p in parts[1:]]  # type: ignore[attr-defined]
            received[name] = (init, b"".join(chunks), [len(c) for c in chunks])
            return reply

        return handler

    fake.handlers["InstallPlugin"] = collect(
        "InstallPlugin", out("InstallPlugin", manifest=m.Manifest(id="com.example.other"))
    )
    fake.handlers["UploadData"] = collect(
        "UploadData", out("UploadData", file_info=m.FileInfo(id="f1"))
    )

    def http(parts: list[Message]) -> list[Message]:
        init = parts[0].init  # type: ignore[attr-defined]
        body = b"".join(p.body for p in parts[1:])  # type: ignore[attr-defined]
        received["PluginHTTP"] = (init, body, [len(p.body) for p in parts[1:]])  # type: ignore[attr-defined]
        part_cls = GetMessageClass(service.methods_by_name["PluginHTTP"].output_type)
        first = part_cls()
        first.init.status_code = 201  # type: ignore[attr-defined]
        first.init.headers["X-Echo"].values.append("yes")  # type: ignore[attr-defined]
        return [first, part_cls(body=body[::-1][:70000]), part_cls(body=body[::-1][70000:])]

    fake.handlers["PluginHTTP"] = http
    payload = bytes(range(256)) * 600  # 150 KiB: three parts
    api = PluginAPIClient(sync_channel(socket), token=TOKEN, plugin_id="x")
    aapi = AsyncPluginAPIClient(aio_channel(socket), token=TOKEN, plugin_id="x")
    try:
        # The sync client blocks: run it off the loop that serves the fake bridge.
        manifest = await asyncio.to_thread(api.install_plugin, io.BytesIO(payload), True)
        assert manifest.id == "com.example.other"
        init, data, sizes = received["InstallPlugin"]
        assert init.replace and init.context.plugin_id == "x"  # type: ignore[attr-defined]
        assert data == payload and max(sizes) <= 64 * 1024 and len(sizes) == 3

        async def pieces() -> AsyncIterator[bytes]:
            yield payload[:1000]
            yield payload[1000:]

        info = await aapi.upload_data(m.UploadSession(id="u1"), pieces())
        assert info.id == "f1"
        init, data, sizes = received["UploadData"]
        assert init.us.id == "u1" and data == payload  # type: ignore[attr-defined]
        assert max(sizes) <= 64 * 1024

        status, body = await aapi.plugin_http(
            "POST", "/com.example.other/echo", {"X-A": ["1", "2"]}, payload
        )
        assert status.status_code == 201 and list(status.headers["X-Echo"].values) == ["yes"]
        assert body == payload[::-1]
        init, data, _ = received["PluginHTTP"]
        assert (init.method, init.url, init.has_body) == (  # type: ignore[attr-defined]
            "POST",
            "/com.example.other/echo",
            True,
        )
        assert list(init.headers["X-A"].values) == ["1", "2"]  # type: ignore[attr-defined]
        assert data == payload
    finally:
        api.close()
        await aapi.close()


async def test_runtime_binds_the_typed_clients_for_the_contract(
    contract_fake: tuple[FakeAPI, str],
) -> None:
    _, socket = contract_fake
    tmp = tempfile.mkdtemp(prefix="mmp-", dir="/tmp")
    config = RuntimeConfig(
        api_socket=socket, hooks_socket=f"{tmp}/hooks.sock", token=TOKEN, plugin_id="x"
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    box: dict[str, Plugin] = {}

    def on_ready(p: Plugin) -> None:
        box["plugin"] = p
        ready.set()

    task = asyncio.create_task(
        serve_plugin(
            Bare, config, stop=stop, ready=on_ready, handle_signals=False, watch_parent=False
        )
    )
    try:
        await wait_ready(ready, task)
        assert type(box["plugin"].api) is PluginAPIClient
        assert type(box["plugin"].aapi) is AsyncPluginAPIClient
        assert await box["plugin"].aapi.get_license() is None
    finally:
        stop.set()
        await task
        shutil.rmtree(tmp, ignore_errors=True)


def test_unknown_method_names_still_explained() -> None:
    class Channel:
        def unary_unary(self, *args: Any, **kwargs: Any) -> Any:
            raise AssertionError("no call expected")

        def close(self) -> None:
            pass

    api = PluginAPIClient(Channel(), token="t", plugin_id="x")
    with pytest.raises(AttributeError, match="did you mean kv_get"):
        _ = api.kv_gett  # type: ignore[attr-defined]
