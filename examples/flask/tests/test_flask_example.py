"""The Flask example through the SDK's real ServeHTTP gRPC path (in process)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from flask_harness import Harness, example
from mattermost_plugin import HTTPRequestPart

pytestmark = pytest.mark.asyncio
GUARD = 30  # seconds; only guards against a hang, never a timing assertion


def init(
    method: str, url: str, headers: dict[str, list[str]] | None = None, has_body: bool = False
) -> Any:
    part = HTTPRequestPart()
    part.init.method, part.init.url, part.init.has_body = method, url, has_body
    part.init.proto, part.init.proto_major, part.init.proto_minor = "HTTP/1.1", 1, 1
    part.init.host = "mm.example.com"
    for k, v in (headers or {}).items():
        part.init.headers[k].values.extend(v)
    return part


async def request(h: Harness, method: str, url: str, user: str = "") -> tuple[int, Any, bytes]:
    call = h.http()
    await call.write(init(method, url, {"Mattermost-User-Id": [user]} if user else None))
    await call.done_writing()
    parts = [p async for p in call]
    body = b"".join(p.body for p in parts if p.WhichOneof("part") == "body")
    return parts[0].init.status_code, parts[0].init.headers, body


async def next_body(call: Any) -> bytes:
    while True:
        part = await asyncio.wait_for(call.read(), GUARD)
        assert part is not grpc.aio.EOF, "the stream ended early"
        if part.WhichOneof("part") == "body":
            return bytes(part.body)


async def test_me_calls_the_server_api(flask_plugin: Harness) -> None:
    status, headers, body = await request(flask_plugin, "GET", "/api/me", user="u1")
    assert status == 200
    assert list(headers["Content-Type"].values) == ["application/json"]
    assert json.loads(body) == {"username": "alice", "server_version": "10.11.0"}


async def test_me_status_codes(flask_plugin: Harness) -> None:
    assert (await request(flask_plugin, "GET", "/api/me"))[0] == 401
    assert (await request(flask_plugin, "GET", "/api/me", user="nobody"))[0] == 404
    assert (await request(flask_plugin, "GET", "/nothing/here"))[0] == 404
    assert (await request(flask_plugin, "GET", "/countdown?n=0"))[0] == 400


async def test_echo_streams_back_with_checksum(flask_plugin: Harness) -> None:
    call = flask_plugin.http()
    await call.write(init("POST", "/echo", {"Content-Type": ["application/octet-stream"]}, True))
    await call.write(HTTPRequestPart(body=b"first piece"))
    # The echo of the first piece arrives while the client has not finished sending.
    assert await next_body(call) == b"first piece"
    rest = [b"x" * 100_000, b"last"]
    for piece in rest:
        await call.write(HTTPRequestPart(body=piece))
    await call.write(HTTPRequestPart(body_end=True))
    await call.done_writing()
    got = b""
    while (part := await asyncio.wait_for(call.read(), GUARD)) is not grpc.aio.EOF:
        got += part.body
    whole = b"first piece" + b"".join(rest)
    assert got == b"".join(rest) + f"\nsha256={hashlib.sha256(whole).hexdigest()}\n".encode()


async def test_countdown_streams_line_by_line(
    flask_plugin: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The view's pause between lines waits for the test instead of the clock: the second
    # line cannot exist when the first is checked, and nothing is left sleeping afterwards.
    gate = threading.Event()
    monkeypatch.setattr(example, "time", SimpleNamespace(sleep=lambda _s: gate.wait(GUARD)))
    call = flask_plugin.http()
    await call.write(init("GET", "/countdown?n=3&interval=1"))
    await call.done_writing()
    head = await asyncio.wait_for(call.read(), GUARD)
    assert head.init.status_code == 200
    assert await next_body(call) == b"3\n"
    gate.set()
    assert await next_body(call) == b"2\n"


async def test_countdown_complete(flask_plugin: Harness) -> None:
    status, headers, body = await request(flask_plugin, "GET", "/countdown?n=3&interval=0")
    assert status == 200
    assert list(headers["Content-Type"].values) == ["text/plain; charset=utf-8"]
    assert body == b"3\n2\n1\nliftoff\n"


def _boom() -> str:
    raise ValueError("bug in a view")


# Flask accepts new routes only before its first request: register at import.
example.app.add_url_rule("/test-boom", "test_boom", _boom)


async def test_unhandled_exception_is_a_500(flask_plugin: Harness) -> None:
    assert (await request(flask_plugin, "GET", "/test-boom"))[0] == 500
