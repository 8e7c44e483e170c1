"""serve_asgi over the real ServeHTTP gRPC stream: scope, streamed body, live sends, lifespan."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest
from httpparts import GUARD, collect, init, kinds, read_rest

from mattermost_plugin import HookName, HookRegistrationError, Plugin, hook
from mattermost_plugin.asgi import PLUGIN_KEY, USER_ID_KEY, Receive, Scope, Send, serve_asgi

from conftest import Start
from testproto import plugin_pb2 as p


async def test_scope_and_multi_value_response_headers(start_plugin: Start) -> None:
    seen: dict[str, Any] = {}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.update(scope)
        seen["request"] = await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", b"2"),
                    (b"set-cookie", b"a=1"),
                    (b"set-cookie", b"b=2"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"ok"})

    class App(Plugin):
        http = serve_asgi(app, lifespan="off")

    h = await start_plugin(App)
    call = h.http()
    headers = {
        "Mattermost-User-Id": ["u1"],
        "X-Multi": ["a", "b"],
        "X-Forwarded-Proto": ["https"],
    }
    await call.write(init(headers=headers))
    await call.done_writing()
    parts = await collect(call)

    assert seen["type"] == "http" and seen["asgi"]["version"] == "3.0"
    assert seen["http_version"] == "1.1" and seen["method"] == "GET"
    assert seen["scheme"] == "https"
    assert seen["root_path"] == "/plugins/com.example.test"
    assert seen["path"] == "/plugins/com.example.test/a b"
    assert seen["raw_path"] == b"/plugins/com.example.test/a%20b"
    assert seen["query_string"] == b"x=1&x=2"
    hdrs = seen["headers"]
    assert (b"host", b"mm.example.com:8065") in hdrs
    assert [v for k, v in hdrs if k == b"x-multi"] == [b"a", b"b"]
    assert all(k == k.lower() for k, _ in hdrs)
    assert seen["client"] == ("10.1.2.3", 5555)
    assert seen["server"] == ("mm.example.com", 8065)
    assert seen[PLUGIN_KEY] is h.plugin and seen[USER_ID_KEY] == "u1"
    assert seen["request"] == {"type": "http.request", "body": b"", "more_body": False}

    # A response with a Content-Length is not a stream: no flush parts.
    assert kinds(parts) == ["init", "body"]
    assert parts[0].init.status_code == 201
    assert list(parts[0].init.headers["Set-Cookie"].values) == ["a=1", "b=2"]
    assert parts[1].body == b"ok"


async def test_body_arrives_chunk_by_chunk(start_plugin: Start) -> None:
    first = asyncio.Event()
    messages: list[dict[str, Any]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            messages.append(dict(msg))
            first.set()
            if not msg.get("more_body"):
                break
        total = sum(len(m["body"]) for m in messages)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(total).encode()})

    class App(Plugin):
        http = serve_asgi(app, lifespan="off")

    h = await start_plugin(App)
    call = h.http()
    await call.write(init("POST", has_body=True))
    await call.write(p.HTTPRequestPart(body=b"a" * 10))
    # The app holds the first chunk while the client has not sent the rest: nothing buffers
    # the body whole before the app sees it.
    await asyncio.wait_for(first.wait(), GUARD)
    assert messages == [{"type": "http.request", "body": b"a" * 10, "more_body": True}]
    await call.write(p.HTTPRequestPart(body=b"b" * 70_000))
    await call.write(p.HTTPRequestPart(body_end=True))
    await call.done_writing()
    parts = await collect(call)
    assert parts[-1].body == b"70010"
    assert [m["more_body"] for m in messages][-1] is False
    assert b"".join(m["body"] for m in messages) == b"a" * 10 + b"b" * 70_000


async def test_streamed_events_reach_the_client_live(start_plugin: Start) -> None:
    release = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await release.wait()  # set only once the test holds event 1
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    class App(Plugin):
        http = serve_asgi(app, lifespan="off")

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    head = [await asyncio.wait_for(call.read(), GUARD) for _ in range(4)]
    assert kinds(head) == ["init", "flush", "body", "flush"]
    assert head[2].body == b"data: 1\n\n"
    assert not release.is_set()
    release.set()
    rest = await read_rest(call)
    assert [x.body for x in rest if x.WhichOneof("part") == "body"] == [b"data: 2\n\n"]


async def test_large_response_is_complete(start_plugin: Start) -> None:
    # Beyond the loop-write budget, writes go through a worker thread (backpressure).
    piece = bytes(range(256)) * 1024  # 256 KiB

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(4):
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b"end"})

    class App(Plugin):
        http = serve_asgi(app, lifespan="off")

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    body = b"".join(x.body for x in parts if x.WhichOneof("part") == "body")
    assert body == piece * 4 + b"end"


async def test_exception_before_start_is_a_500(start_plugin: Start) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise KeyError("boom")

    class App(Plugin):
        http = serve_asgi(app, lifespan="off")

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert parts[0].init.status_code == 500


async def test_app_returning_without_a_response_is_a_500(start_plugin: Start) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        return None

    class App(Plugin):
        http = serve_asgi(app, lifespan="off")

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    assert (await collect(call))[0].init.status_code == 500


async def test_exception_after_start_aborts_the_stream(start_plugin: Start) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("late")

    class App(Plugin):
        http = serve_asgi(app, lifespan="off")

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await collect(call)
    assert e.value.code() == grpc.StatusCode.INTERNAL


async def test_invalid_messages_are_errors(start_plugin: Start) -> None:
    errors: list[BaseException] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        for bad in (
            {"type": "http.response.body", "body": b"x"},  # before start
            {"type": "websocket.accept"},
            {"type": "http.response.start", "status": "200"},
            {"type": "http.response.start", "status": 200, "headers": [("a", "b")]},
        ):
            try:
                await send(bad)
            except (TypeError, ValueError, RuntimeError) as exc:
                errors.append(exc)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})
        try:
            await send({"type": "http.response.body", "body": b"late"})
        except RuntimeError as exc:
            errors.append(exc)

    class App(Plugin):
        http = serve_asgi(app, lifespan="off")

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert len(errors) == 5
    assert parts[0].init.status_code == 204


async def test_client_disconnect_is_http_disconnect_and_send_fails(start_plugin: Start) -> None:
    outcome: dict[str, Any] = {}
    done = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"tick", "more_body": True})
            assert (await receive())["more_body"] is False  # no body
            outcome["event"] = (await receive())["type"]  # waits for the client to go away
            try:
                await send({"type": "http.response.body", "body": b"x", "more_body": True})
            except OSError as exc:
                outcome["send"] = exc
        finally:
            done.set()

    class App(Plugin):
        http = serve_asgi(app, lifespan="off")

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    head = [await asyncio.wait_for(call.read(), GUARD) for _ in range(4)]
    assert kinds(head) == ["init", "flush", "body", "flush"]
    call.cancel()
    await asyncio.wait_for(done.wait(), GUARD)
    assert outcome["event"] == "http.disconnect"
    assert isinstance(outcome["send"], OSError)


def lifespan_app(log: list[str], *, fail: bool = False) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    log.append("startup")
                    scope["state"]["db"] = "connected"
                    kind = "lifespan.startup.failed" if fail else "lifespan.startup.complete"
                    await send({"type": kind, "message": "no database"})
                elif msg["type"] == "lifespan.shutdown":
                    log.append("shutdown")
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = scope["state"].get("db", "none").encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


async def test_lifespan_runs_on_activate_and_state_reaches_requests(start_plugin: Start) -> None:
    log: list[str] = []

    class App(Plugin):
        http = serve_asgi(lifespan_app(log))

    assert App.implemented_hooks() == ["OnActivate", "OnDeactivate", "ServeHTTP"]
    h = await start_plugin(App)
    resp = await h.hook("OnActivate")
    assert not resp.HasField("error")
    assert log == ["startup"]
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert parts[-1].body == b"connected"
    # The test contract has no OnDeactivate RPC: call the registered handler directly.
    await h.plugin.hook_handler(HookName.OnDeactivate)()
    assert log == ["startup", "shutdown"]


async def test_lifespan_startup_failure_fails_activation(start_plugin: Start) -> None:
    class App(Plugin):
        http = serve_asgi(lifespan_app([], fail=True))

    h = await start_plugin(App)
    resp = await h.hook("OnActivate")
    assert "no database" in resp.error.message


async def test_app_without_lifespan_support_still_activates(start_plugin: Start) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http", "only http"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    class App(Plugin):
        http = serve_asgi(app)

    h = await start_plugin(App)
    resp = await h.hook("OnActivate")
    assert not resp.HasField("error")
    call = h.http()
    await call.write(init())
    await call.done_writing()
    assert (await collect(call))[-1].body == b"ok"


async def test_manual_lifespan_from_own_hooks(start_plugin: Start) -> None:
    log: list[str] = []

    class App(Plugin):
        http = serve_asgi(lifespan_app(log), lifespan="manual")

        @hook(HookName.OnActivate)
        async def on_activate(self) -> None:
            await self.http.startup()
            log.append("mine")

    h = await start_plugin(App)
    await h.hook("OnActivate")
    assert log == ["startup", "mine"]
    await h.plugin.http.shutdown()
    assert log == ["startup", "mine", "shutdown"]


def test_auto_lifespan_refuses_a_class_with_its_own_activate() -> None:
    with pytest.raises((HookRegistrationError, RuntimeError)) as e:

        class App(Plugin):
            http = serve_asgi(lifespan_app([]))

            @hook(HookName.OnActivate)
            def on_activate(self) -> None:
                pass

    err = e.value if isinstance(e.value, HookRegistrationError) else e.value.__cause__
    assert isinstance(err, HookRegistrationError)
    assert "lifespan='manual'" in str(err)


def test_serve_asgi_rejects_bad_arguments() -> None:
    with pytest.raises(TypeError):
        serve_asgi("not an app")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        serve_asgi(lifespan_app([]), lifespan="sometimes")  # type: ignore[arg-type]
