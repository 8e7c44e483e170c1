"""serve_wsgi over the real ServeHTTP gRPC stream: environ, wsgi.input, live chunks, close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from httpparts import GUARD, collect, init, kinds

from mattermost_plugin import Plugin
from mattermost_plugin.asgi import PLUGIN_KEY, USER_ID_KEY
from mattermost_plugin.wsgi import StartResponse, serve_wsgi

from conftest import Start
from testproto import plugin_pb2 as p


async def test_environ_input_and_multi_value_headers(start_plugin: Start) -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        seen.update(environ)
        body = environ["wsgi.input"]
        seen["line1"] = body.readline()
        seen["rest"] = body.read()
        start_response(
            "201 Created",
            [("Content-Type", "text/plain"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")],
        )
        return [b"got ", seen["rest"]]

    class App(Plugin):
        http = serve_wsgi(app)

    h = await start_plugin(App)
    call = h.http()
    headers = {
        "Mattermost-User-Id": ["u1"],
        "Content-Type": ["text/plain"],
        "Content-Length": ["12"],
        "X-Multi": ["a", "b"],
    }
    await call.write(init("POST", "/a%20b?x=1", headers=headers, has_body=True))
    await call.write(p.HTTPRequestPart(body=b"line one\nre"))
    await call.write(p.HTTPRequestPart(body=b"st"))
    await call.write(p.HTTPRequestPart(body_end=True))
    await call.done_writing()
    parts = await collect(call)

    assert seen["REQUEST_METHOD"] == "POST"
    assert seen["SCRIPT_NAME"] == "/plugins/com.example.test"
    assert seen["PATH_INFO"] == "/a b"
    assert seen["QUERY_STRING"] == "x=1"
    assert (seen["CONTENT_TYPE"], seen["CONTENT_LENGTH"]) == ("text/plain", "12")
    assert "HTTP_CONTENT_TYPE" not in seen
    assert seen["HTTP_X_MULTI"] == "a,b"
    assert seen["HTTP_HOST"] == "mm.example.com:8065"
    assert (seen["SERVER_NAME"], seen["SERVER_PORT"]) == ("mm.example.com", "8065")
    assert (seen["REMOTE_ADDR"], seen["REMOTE_PORT"]) == ("10.1.2.3", "5555")
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert seen["wsgi.url_scheme"] == "http" and seen["wsgi.version"] == (1, 0)
    assert seen[PLUGIN_KEY] is h.plugin and seen[USER_ID_KEY] == "u1"
    assert seen["line1"] == b"line one\n" and seen["rest"] == b"rest"

    assert parts[0].init.status_code == 201
    assert list(parts[0].init.headers["Set-Cookie"].values) == ["a=1", "b=2"]
    assert b"".join(x.body for x in parts[1:]) == b"got rest"


async def test_underscore_headers_cannot_pose_as_the_servers(start_plugin: Start) -> None:
    seen: dict[str, Any] = {}

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [])
        return []

    class App(Plugin):
        http = serve_wsgi(app)

    h = await start_plugin(App)
    call = h.http()
    # Anonymous: the server set no Mattermost-User-Id; the client sent look-alikes that CGI's
    # "-" to "_" rule would turn into its key.
    forged = {"Mattermost_user_id": ["admin-id"], "Mattermost_plugin_id": ["other"]}
    await call.write(init(headers=forged))
    await call.done_writing()
    await collect(call)
    assert "HTTP_MATTERMOST_USER_ID" not in seen
    assert "HTTP_MATTERMOST_PLUGIN_ID" not in seen
    assert seen[USER_ID_KEY] == ""


async def test_input_reads_as_the_body_arrives(start_plugin: Start) -> None:
    first = threading.Event()

    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        stream = environ["wsgi.input"]
        head = stream.read(10)
        first.set()
        rest = stream.read()
        start_response("200 OK", [])
        return [b"%d+%d" % (len(head), len(rest))]

    class App(Plugin):
        http = serve_wsgi(app)

    h = await start_plugin(App)
    call = h.http()
    await call.write(init("POST", has_body=True))
    await call.write(p.HTTPRequestPart(body=b"a" * 10))
    # The app has its first 10 bytes before the client sent the rest.
    assert await asyncio.to_thread(first.wait, GUARD)
    await call.write(p.HTTPRequestPart(body=b"b" * 70_000))
    await call.write(p.HTTPRequestPart(body_end=True))
    await call.done_writing()
    parts = await collect(call)
    assert b"".join(x.body for x in parts) == b"10+70000"


async def test_streamed_chunks_reach_the_client_live_and_close_runs(start_plugin: Start) -> None:
    release = threading.Event()
    closed = threading.Event()

    class Body:
        def __iter__(self) -> Iterator[bytes]:
            yield b"chunk 1\n"
            # Only released once the test holds chunk 1. The timeout guards against a hang.
            assert release.wait(GUARD)
            yield b""  # empty chunks are skipped
            yield b"chunk 2\n"

        def close(self) -> None:
            closed.set()

    def app(environ: dict[str, Any], start_response: StartResponse) -> Body:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return Body()

    class App(Plugin):
        http = serve_wsgi(app)

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    head = [await asyncio.wait_for(call.read(), GUARD) for _ in range(3)]
    assert kinds(head) == ["init", "body", "flush"]
    assert head[1].body == b"chunk 1\n"
    assert not closed.is_set()
    release.set()
    rest = []
    while (part := await asyncio.wait_for(call.read(), GUARD)) is not grpc.aio.EOF:
        rest.append(part)
    assert [x.body for x in rest if x.WhichOneof("part") == "body"] == [b"chunk 2\n"]
    assert closed.is_set()


async def test_content_length_response_is_not_flushed_per_chunk(start_plugin: Start) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "4")])
        return [b"ab", b"cd"]

    class App(Plugin):
        http = serve_wsgi(app)

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    assert kinds(await collect(call)) == ["init", "body", "body"]


async def test_exception_before_body_is_a_500_and_exc_info_replaces(start_plugin: Start) -> None:
    def boom(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [])
        raise KeyError("boom")

    def recovered(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("200 OK", [("X-Old", "1")])
        try:
            raise ValueError("late problem")
        except ValueError as exc:
            start_response("503 Service Unavailable", [], (ValueError, exc, exc.__traceback__))
        return [b"sorry"]

    for app, status in ((boom, 500), (recovered, 503)):

        class App(Plugin):
            http = serve_wsgi(app)

        h = await start_plugin(App)
        call = h.http()
        await call.write(init())
        await call.done_writing()
        parts = await collect(call)
        assert parts[0].init.status_code == status
        assert "X-Old" not in parts[0].init.headers


async def test_empty_response_sends_headers(start_plugin: Start) -> None:
    def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("204 No Content", [("X-A", "1")])
        return []

    class App(Plugin):
        http = serve_wsgi(app)

    h = await start_plugin(App)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert kinds(parts) == ["init"]
    assert parts[0].init.status_code == 204 and list(parts[0].init.headers["X-A"].values) == ["1"]


async def test_bad_status_and_missing_start_response_are_500(start_plugin: Start) -> None:
    def bad_status(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        start_response("OK", [])
        return [b"x"]

    def no_start(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        return [b"x"]

    for app in (bad_status, no_start):

        class App(Plugin):
            http = serve_wsgi(app)

        h = await start_plugin(App)
        call = h.http()
        await call.write(init())
        await call.done_writing()
        assert (await collect(call))[0].init.status_code == 500


def test_serve_wsgi_rejects_a_non_callable() -> None:
    with pytest.raises(TypeError):
        serve_wsgi(42)  # type: ignore[arg-type]
