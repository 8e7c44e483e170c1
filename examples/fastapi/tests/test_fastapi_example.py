"""The FastAPI example against the test kit: ServeHTTP through the SDK's real path."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

import pytest
from fastapi import HTTPException
from fastapi_plugin import FastAPIExample, app
from mattermost_plugin.testing import FakeMattermost, PluginHandle

StartPlugin = Callable[..., PluginHandle]


@pytest.fixture
def fastapi_plugin(mm_plugin: StartPlugin) -> PluginHandle:
    return mm_plugin(FastAPIExample, plugin_id="com.mmplug.fastapi")


@pytest.fixture
def alice(mm_fake: FakeMattermost) -> str:
    return mm_fake.add_user("alice", email="alice@example.com").id


def test_me_calls_the_server_api(
    mm_fake: FakeMattermost, fastapi_plugin: PluginHandle, alice: str
) -> None:
    response = fastapi_plugin.http("GET", "/api/me", user_id=alice)
    assert response.status == 200
    assert response.headers["Content-Type"] == ["application/json"]
    assert response.json() == {"username": "alice", "server_version": mm_fake.server_version}
    assert [c["user_id"] for c in mm_fake.calls_to("GetUser")] == [alice]


def test_me_status_codes(fastapi_plugin: PluginHandle) -> None:
    assert fastapi_plugin.http("GET", "/api/me").status == 401
    missing = fastapi_plugin.http("GET", "/api/me", user_id="n" * 26)
    assert (missing.status, missing.json()) == (404, {"detail": "no such user"})
    assert fastapi_plugin.http("GET", "/no/such/route").status == 404


def test_events_arrive_one_by_one(fastapi_plugin: PluginHandle) -> None:
    # A long interval: the second event cannot exist yet when the first one is checked.
    with fastapi_plugin.open_http("GET", "/events?count=3&interval=30") as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"][0].startswith("text/event-stream")
        first = stream.next_chunk()
        assert first is not None and first.startswith(b"id: 0\nevent: tick\ndata: ")
        assert json.loads(first.split(b"data: ")[1])["n"] == 0
    # Leaving the block disconnected the client mid-stream; nothing is left hanging.
    assert stream.finished


def test_events_complete_stream(fastapi_plugin: PluginHandle) -> None:
    response = fastapi_plugin.http("GET", "/events?count=3&interval=0")
    assert response.status == 200
    assert response.headers["Cache-Control"] == ["no-cache"]
    events = [e for e in response.body.split(b"\n\n") if e]
    data = [json.loads(e.split(b"data: ")[1]) for e in events]
    assert [d["n"] for d in data] == [0, 1, 2]
    assert data[0]["t"] <= data[1]["t"] <= data[2]["t"]
    assert len(response.chunks) == 3  # one write per event, in order


def test_sha256_reads_the_body_chunk_by_chunk(fastapi_plugin: PluginHandle) -> None:
    pieces = [bytes([i]) * 65536 for i in range(16)]  # 1 MiB in 16 parts
    response = fastapi_plugin.http(
        "POST", "/sha256", headers={"Content-Type": "application/octet-stream"}, body=pieces
    )
    assert response.status == 200
    assert response.json() == {
        "sha256": hashlib.sha256(b"".join(pieces)).hexdigest(),
        "bytes": 1 << 20,
        "chunks": 16,  # one per part: the app saw each piece as it came, never the whole
    }


def test_sha256_sees_pieces_as_they_are_sent(fastapi_plugin: PluginHandle) -> None:
    with fastapi_plugin.open_http("POST", "/sha256", stream_body=True) as stream:
        for piece in (b"a", b"bc", b"def"):
            stream.send_body(piece)
        stream.end_body()
        assert stream.read_all().json()["chunks"] == 3


@pytest.fixture
def test_routes() -> Iterator[None]:
    async def boom() -> None:
        raise ValueError("bug in a route")

    async def teapot() -> None:
        raise HTTPException(status_code=418)

    app.add_api_route("/test-boom", boom)
    app.add_api_route("/test-teapot", teapot)
    yield
    app.router.routes[:] = [
        r for r in app.router.routes if not getattr(r, "path", "").startswith("/test-")
    ]


@pytest.mark.usefixtures("test_routes")
def test_unhandled_exception_is_a_500(fastapi_plugin: PluginHandle) -> None:
    assert fastapi_plugin.http("GET", "/test-boom").status == 500
    assert fastapi_plugin.http("GET", "/test-teapot").status == 418


def test_lifespan_runs_on_activate_and_deactivate(mm_plugin: StartPlugin) -> None:
    seen: list[str] = []
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(_app: object) -> AsyncIterator[None]:
        seen.append("startup")
        yield
        seen.append("shutdown")

    app.router.lifespan_context = lifespan
    try:
        handle = mm_plugin(FastAPIExample, plugin_id="com.mmplug.fastapi")
        assert seen == ["startup"]
        assert set(handle.implemented) >= {"OnActivate", "OnDeactivate", "ServeHTTP"}
        handle.stop()
        assert seen == ["startup", "shutdown"]
    finally:
        app.router.lifespan_context = original
