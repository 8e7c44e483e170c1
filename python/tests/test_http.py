"""ServeHTTP over the bidi stream: request assembly, live response parts, failures."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import grpc
import pytest

from mattermost_plugin import HookName, HTTPRequest, HTTPResponseWriter, Plugin, hook
from mattermost_plugin.http import (
    MAX_CHUNK,
    MAX_HEADER_BYTES,
    HTTPHeaders,
    canonical_header_key,
)

from conftest import Harness, Start
from testproto import plugin_pb2 as p


def init(
    method: str = "GET",
    url: str = "/hello?x=1&x=2&empty=",
    headers: dict[str, list[str]] | None = None,
    has_body: bool = False,
) -> p.HTTPRequestPart:
    msg = p.HTTPRequestInit(
        method=method, url=url, proto="HTTP/1.1", proto_major=1, proto_minor=1, has_body=has_body
    )
    msg.plugin_context.request_id = "rq-1"
    for k, v in (headers or {}).items():
        msg.headers[k].values.extend(v)
    return p.HTTPRequestPart(init=msg)


async def collect(call: Any) -> list[p.HTTPResponsePart]:
    return [part async for part in call]


class Echo(Plugin):
    seen: HTTPRequest | None = None

    @hook(HookName.ServeHTTP)
    def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        type(self).seen = r
        w.headers["content-type"] = ["text/plain"]
        w.headers.add("X-Multi", "a")
        w.headers.add("x-multi", "b")
        w.write_header(201)
        w.write(b"you sent: ")
        w.write(r.body)
        w.flush()


async def test_request_fields_body_and_response_parts(start_plugin: Start) -> None:
    h = await start_plugin(Echo)
    call = h.http()
    await call.write(
        init(
            "POST",
            headers={"Mattermost-User-Id": ["u1"], "Content-Type": ["text/plain"]},
            has_body=True,
        )
    )
    await call.write(p.HTTPRequestPart(body=b"hello "))
    await call.write(p.HTTPRequestPart(body=b"world"))
    await call.write(p.HTTPRequestPart(body_end=True))
    await call.done_writing()
    parts = await collect(call)
    r = Echo.seen
    assert r is not None
    assert (r.method, r.path, r.url) == ("POST", "/hello", "/hello?x=1&x=2&empty=")
    assert r.query == {"x": ["1", "2"], "empty": [""]}
    assert r.user_id == "u1"
    assert r.headers["content-type"] == ["text/plain"]
    assert r.body == b"hello world"
    assert r.proto == "HTTP/1.1" and r.proto_major == 1
    assert r.plugin_context.request_id == "rq-1"
    assert [x.WhichOneof("part") for x in parts] == ["init", "body", "body", "flush"]
    assert parts[0].init.status_code == 201
    assert list(parts[0].init.headers["Content-Type"].values) == ["text/plain"]
    assert list(parts[0].init.headers["X-Multi"].values) == ["a", "b"]
    assert parts[1].body + parts[2].body == b"you sent: hello world"


async def test_path_is_decoded_like_go_and_raw_path_kept(start_plugin: Start) -> None:
    h = await start_plugin(Echo)
    call = h.http()
    await call.write(init("GET", "/kv/caf%C3%A9%20x/a%2Fb?q=%E9"))
    await call.done_writing()
    await collect(call)
    r = Echo.seen
    assert r is not None
    # Go's r.URL.Path is decoded; hellogo stores the KV key "café x".
    assert r.path == "/kv/café x/a/b"
    assert r.raw_path == "/kv/caf%C3%A9%20x/a%2Fb"


async def test_headers_are_exactly_the_names_the_server_passed(start_plugin: Start) -> None:
    h = await start_plugin(Echo)
    call = h.http()
    # An anonymous client's look-alike: the server sets no Mattermost-User-Id.
    await call.write(init("GET", headers={"Mattermost_user_id": ["admin-id"]}))
    await call.done_writing()
    await collect(call)
    r = Echo.seen
    assert r is not None
    assert r.user_id == ""
    assert r.headers.get_first("Mattermost-User-Id") == ""
    assert r.headers["Mattermost_user_id"] == ["admin-id"]


async def test_large_writes_are_chunked(start_plugin: Start) -> None:
    class Big(Plugin):
        @hook(HookName.ServeHTTP)
        async def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            w.write(b"x" * (2 * MAX_CHUNK + 5))

    h = await start_plugin(Big)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert parts[0].init.status_code == 200  # implied by the first write
    assert [len(x.body) for x in parts[1:]] == [MAX_CHUNK, MAX_CHUNK, 5]


async def test_response_streams_while_handler_runs(start_plugin: Start) -> None:
    release = threading.Event()
    finished = threading.Event()

    class Live(Plugin):
        @hook(HookName.ServeHTTP)
        def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            w.write(b"event: 1\n\n")
            w.flush()
            # Blocks until the test has *received* the first event: proves parts are not
            # held back until the handler returns. The timeout only guards against a hang.
            assert release.wait(timeout=30)
            w.write(b"event: 2\n\n")
            finished.set()

    h = await start_plugin(Live)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    first = [await call.read() for _ in range(3)]
    assert [x.WhichOneof("part") for x in first] == ["init", "body", "flush"]
    assert not finished.is_set()
    release.set()
    rest = []
    while (part := await call.read()) is not grpc.aio.EOF:
        rest.append(part)
    assert [x.body for x in rest] == [b"event: 2\n\n"]


async def test_exception_before_writing_is_a_500(start_plugin: Start) -> None:
    class Boom(Plugin):
        @hook(HookName.ServeHTTP)
        def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            w.headers["X-Partial"] = ["1"]
            raise KeyError("boom")

    h = await start_plugin(Boom)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert parts[0].init.status_code == 500
    assert "X-Partial" not in parts[0].init.headers
    assert b"Internal Server Error" in parts[1].body


async def test_exception_after_headers_aborts_the_stream(start_plugin: Start) -> None:
    class Late(Plugin):
        @hook(HookName.ServeHTTP)
        async def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            w.write(b"partial")
            raise RuntimeError("late failure")

    h = await start_plugin(Late)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    got = []
    with pytest.raises(grpc.aio.AioRpcError) as e:
        async for part in call:
            got.append(part)
    assert e.value.code() == grpc.StatusCode.INTERNAL
    assert [x.WhichOneof("part") for x in got] == ["init", "body"]


async def test_invalid_status_is_rejected_and_answered_500(start_plugin: Start) -> None:
    errors: list[BaseException] = []

    class Bad(Plugin):
        @hook(HookName.ServeHTTP)
        def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            for status in (99, 1000, 0, -1):
                try:
                    w.write_header(status)
                except ValueError as e:
                    errors.append(e)
            w.write_header(1000)

    h = await start_plugin(Bad)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert len(errors) == 4
    assert "within 100..999" in str(errors[0])
    assert parts[0].init.status_code == 500


def test_header_names_must_be_tokens_and_values_single_lines() -> None:
    headers = HTTPHeaders()
    for name in ("X Note", "X-Note\r\nSet-Cookie: a=1", "", "X:Note", "X-N\u00f6te"):
        with pytest.raises(ValueError, match="is not an HTTP token") as e:
            headers[name] = ["1"]
        assert repr(name) in str(e.value)
        with pytest.raises(ValueError, match="is not an HTTP token"):
            headers.add(name, "1")
    for value in ("a\r\nSet-Cookie: a=1", "a\nb", "a\rb", "a\x00b"):
        with pytest.raises(ValueError, match="header 'X-Note' value contains CR, LF or NUL"):
            headers["X-Note"] = ["fine", value]
        with pytest.raises(ValueError, match="value contains CR, LF or NUL"):
            headers.add("X-Note", value)
    assert dict(headers) == {}, "a refused header leaves nothing behind"
    headers["X-Tab"] = "a\tb"  # a tab is a valid field-value byte
    headers.add("x-multi", "a, b")
    assert headers.snapshot() == {"X-Tab": ["a\tb"], "X-Multi": ["a, b"]}
    with pytest.raises(ValueError):
        HTTPHeaders({"bad name": ["1"]})


async def test_bad_headers_or_too_many_header_bytes_are_a_500(start_plugin: Start) -> None:
    errors: list[str] = []

    class Bad(Plugin):
        @hook(HookName.ServeHTTP)
        def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            # Exactly at the limit: "X-Big: " + value + CRLF.
            w.headers["X-Big"] = ["v" * (MAX_HEADER_BYTES - len("X-Big") - 4)]
            w.headers.add("X-One-More", "")
            try:
                w.write_header(200)
            except ValueError as e:
                errors.append(str(e))
            errors.append(f"headers_sent={w.headers_sent}")
            if r.url == "/at-limit":
                del w.headers["X-One-More"]
                w.write_header(200)
                return
            w.write(b"never sent")

    h = await start_plugin(Bad)
    call = h.http()
    await call.write(init(url="/over-limit"))
    await call.done_writing()
    parts = await collect(call)
    over = MAX_HEADER_BYTES + len("X-One-More") + 4
    assert errors == [
        f"response headers of {over} bytes exceed the limit of {MAX_HEADER_BYTES} bytes",
        "headers_sent=False",
    ]
    assert parts[0].init.status_code == 500
    assert set(parts[0].init.headers) == {"Content-Type"}
    assert b"never sent" not in b"".join(x.body for x in parts)

    call = h.http()
    await call.write(init(url="/at-limit"))
    await call.done_writing()
    parts = await collect(call)
    assert parts[0].init.status_code == 200
    assert len(parts[0].init.headers["X-Big"].values[0]) == MAX_HEADER_BYTES - 9


async def test_headers_lock_after_first_write(start_plugin: Start) -> None:
    outcome: dict[str, Any] = {}

    class Lock(Plugin):
        @hook(HookName.ServeHTTP)
        def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            w.write(b"a")
            try:
                w.headers["X-Late"] = ["1"]
            except RuntimeError as e:
                outcome["error"] = str(e)
            w.write_header(404)  # superfluous, ignored as in Go
            outcome["status"] = w.status_code

    h = await start_plugin(Lock)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert "already sent" in outcome["error"]
    assert outcome["status"] == 200
    assert parts[0].init.status_code == 200
    assert "X-Late" not in parts[0].init.headers


async def test_handler_writing_nothing_answers_200(start_plugin: Start) -> None:
    class Quiet(Plugin):
        @hook(HookName.ServeHTTP)
        def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            pass

    h = await start_plugin(Quiet)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert [x.WhichOneof("part") for x in parts] == ["init"]
    assert parts[0].init.status_code == 200


async def test_missing_init_is_invalid_argument(start_plugin: Start) -> None:
    h: Harness = await start_plugin(Echo)
    call = h.http()
    await call.write(p.HTTPRequestPart(body=b"no init"))
    await call.done_writing()
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await collect(call)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_plugin_without_servehttp_answers_404(start_plugin: Start) -> None:
    class NoHTTP(Plugin):
        pass

    h = await start_plugin(NoHTTP)
    call = h.http()
    await call.write(init())
    await call.done_writing()
    parts = await collect(call)
    assert parts[0].init.status_code == 404


async def test_client_disconnect_fails_pending_writes(start_plugin: Start) -> None:
    done = threading.Event()
    outcome: dict[str, Any] = {}

    class Stream(Plugin):
        @hook(HookName.ServeHTTP)
        def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            try:
                # More than the outbox holds: blocks until the stream is gone, then fails.
                for _ in range(10_000):
                    w.write(b"y" * MAX_CHUNK)
            except ConnectionError as e:
                outcome["error"] = e
            finally:
                done.set()

    h = await start_plugin(Stream)
    call = h.http()
    await call.write(init())
    first = await call.read()  # the init part: the handler is running
    assert first.WhichOneof("part") == "init"
    call.cancel()
    # The timeout only guards against a hang; the handler's thread must see the disconnect.
    assert await asyncio.to_thread(done.wait, 30)
    assert isinstance(outcome.get("error"), ConnectionError)


def test_canonical_header_keys() -> None:
    assert canonical_header_key("content-type") == "Content-Type"
    assert canonical_header_key("X-FORWARDED-FOR") == "X-Forwarded-For"
    assert canonical_header_key("mattermost-user-id") == "Mattermost-User-Id"
    assert canonical_header_key("bad key") == "bad key"  # not a token: unchanged, as in Go
    headers = HTTPHeaders({"accept": "text/html"})
    assert headers["ACCEPT"] == ["text/html"]
    assert headers.get_first("missing", "d") == "d"
    with pytest.raises(TypeError):
        headers["X"] = [1]  # type: ignore[list-item]


async def test_body_streams_as_the_handler_reads_it(start_plugin: Start) -> None:
    """The handler sees the first chunk before the rest of the body has been sent, and can
    answer before reading the rest."""
    first_seen = asyncio.Event()

    class Streaming(Plugin):
        @hook(HookName.ServeHTTP)
        async def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            chunks = r.astream()
            first = await anext(chunks)
            first_seen.set()
            rest = [c async for c in chunks]
            w.write(b"%d+%d" % (len(first), sum(len(c) for c in rest)))

    h = await start_plugin(Streaming)
    call = h.http()
    await call.write(init("POST", has_body=True))
    await call.write(p.HTTPRequestPart(body=b"a" * 10))
    # The handler gets the first piece while the client is still sending.
    await asyncio.wait_for(first_seen.wait(), 30)
    await call.write(p.HTTPRequestPart(body=b"b" * 70_000))
    await call.write(p.HTTPRequestPart(body_end=True))
    await call.done_writing()
    parts = await collect(call)
    assert parts[1].body == b"10+70000"


async def test_early_response_without_reading_the_body(start_plugin: Start) -> None:
    class Early(Plugin):
        @hook(HookName.ServeHTTP)
        def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            w.write_header(413)
            w.write(b"too big, not read")

    h = await start_plugin(Early)
    call = h.http()
    await call.write(init("POST", has_body=True))
    await call.write(p.HTTPRequestPart(body=b"x" * 1000))
    # The client never finishes the body: the answer must not wait for it.
    parts = await asyncio.wait_for(collect(call), 30)
    assert parts[0].init.status_code == 413 and parts[1].body == b"too big, not read"


async def test_blocking_body_in_an_async_handler_is_a_clear_error(start_plugin: Start) -> None:
    class Wrong(Plugin):
        @hook(HookName.ServeHTTP)
        async def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            w.write(r.body)

    h = await start_plugin(Wrong)
    call = h.http()
    await call.write(init("POST", has_body=True))
    await call.write(p.HTTPRequestPart(body=b"x"))
    await call.write(p.HTTPRequestPart(body_end=True))
    await call.done_writing()
    parts = await collect(call)
    assert parts[0].init.status_code == 500
