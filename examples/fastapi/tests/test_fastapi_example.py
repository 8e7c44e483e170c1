"""The FastAPI example through the SDK's real ServeHTTP gRPC path (in process)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

import grpc
import pytest
from fastapi import HTTPException
from fastapi_harness import Harness, example
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


async def read_body_part(call: Any) -> bytes:
    while True:
        part = await asyncio.wait_for(call.read(), GUARD)
        assert part is not grpc.aio.EOF, "the stream ended early"
        if part.WhichOneof("part") == "body":
            return bytes(part.body)


async def test_me_calls_the_server_api(fastapi_plugin: Harness) -> None:
    status, headers, body = await request(fastapi_plugin, "GET", "/api/me", user="u1")
    assert status == 200
    assert list(headers["Content-Type"].values) == ["application/json"]
    assert json.loads(body) == {"username": "alice", "server_version": "10.11.0"}


async def test_me_status_codes(fastapi_plugin: Harness) -> None:
    assert (await request(fastapi_plugin, "GET", "/api/me"))[0] == 401
    assert (await request(fastapi_plugin, "GET", "/api/me", user="nobody"))[0] == 404
    assert (await request(fastapi_plugin, "GET", "/no/such/route"))[0] == 404


async def test_events_arrive_one_by_one(fastapi_plugin: Harness) -> None:
    call = fastapi_plugin.http()
    # A long interval: the second event cannot exist yet when the first one is checked.
    await call.write(init("GET", "/events?count=3&interval=30"))
    await call.done_writing()
    head = await asyncio.wait_for(call.read(), GUARD)
    assert head.init.status_code == 200
    assert head.init.headers["Content-Type"].values[0].startswith("text/event-stream")
    first = await read_body_part(call)
    assert first.startswith(b"id: 0\nevent: tick\ndata: ")
    assert json.loads(first.split(b"data: ")[1])["n"] == 0
    call.cancel()  # the client leaves mid-stream; the generator is stopped, nothing hangs


async def test_events_spacing_is_reported(fastapi_plugin: Harness) -> None:
    status, _, body = await request(fastapi_plugin, "GET", "/events?count=3&interval=0.01")
    assert status == 200
    events = [e for e in body.split(b"\n\n") if e]
    data = [json.loads(e.split(b"data: ")[1]) for e in events]
    assert [d["n"] for d in data] == [0, 1, 2]
    assert data[0]["t"] <= data[1]["t"] <= data[2]["t"]


async def test_sha256_reads_the_body_chunk_by_chunk(fastapi_plugin: Harness) -> None:
    pieces = [bytes([i]) * 65536 for i in range(16)]  # 1 MiB in 16 parts
    call = fastapi_plugin.http()
    await call.write(init("POST", "/sha256", {"Content-Type": ["application/octet-stream"]}, True))
    for piece in pieces:
        await call.write(HTTPRequestPart(body=piece))
    await call.write(HTTPRequestPart(body_end=True))
    await call.done_writing()
    parts = [p async for p in call]
    assert parts[0].init.status_code == 200
    result = json.loads(b"".join(p.body for p in parts))
    assert result == {
        "sha256": hashlib.sha256(b"".join(pieces)).hexdigest(),
        "bytes": 1 << 20,
        "chunks": 16,  # one per part: the app saw each piece as it came, never the whole
    }


async def test_unhandled_exception_is_a_500(fastapi_plugin: Harness) -> None:
    async def boom() -> None:
        raise ValueError("bug in a route")

    async def teapot() -> None:
        raise HTTPException(status_code=418)

    example.app.add_api_route("/test-boom", boom)
    example.app.add_api_route("/test-teapot", teapot)
    try:
        assert (await request(fastapi_plugin, "GET", "/test-boom"))[0] == 500
        assert (await request(fastapi_plugin, "GET", "/test-teapot"))[0] == 418
    finally:
        example.app.router.routes[:] = [
            r for r in example.app.router.routes if getattr(r, "path", "")[:6] != "/test-"
        ]


async def test_lifespan_runs_on_activate(fastapi_plugin: Harness) -> None:
    resp = await fastapi_plugin.hook("OnActivate")
    assert not resp.HasField("error")
    resp = await fastapi_plugin.hook("OnDeactivate")
    assert not resp.HasField("error")
