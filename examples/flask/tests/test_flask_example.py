"""The Flask example against the test kit: ServeHTTP through the SDK's real WSGI path."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from types import SimpleNamespace

import flask_plugin
import pytest
from flask_plugin import FlaskExample, app
from mattermost_plugin.testing import FakeMattermost, PluginHandle

StartPlugin = Callable[..., PluginHandle]
GUARD = 30  # seconds; only guards against a hang, never a timing assertion


@pytest.fixture
def flask_example(mm_plugin: StartPlugin) -> PluginHandle:
    return mm_plugin(FlaskExample, plugin_id="com.mmplug.flask")


def test_me_calls_the_server_api(mm_fake: FakeMattermost, flask_example: PluginHandle) -> None:
    alice = mm_fake.add_user("alice", email="alice@example.com")
    response = flask_example.http("GET", "/api/me", user_id=alice.id)
    assert response.status == 200
    assert response.headers["Content-Type"] == ["application/json"]
    assert response.json() == {"username": "alice", "server_version": mm_fake.server_version}


def test_me_status_codes(flask_example: PluginHandle) -> None:
    assert flask_example.http("GET", "/api/me").status == 401
    assert flask_example.http("GET", "/api/me", user_id="n" * 26).status == 404
    assert flask_example.http("GET", "/nothing/here").status == 404
    assert flask_example.http("GET", "/countdown?n=0").status == 400


def test_echo_streams_back_with_checksum(flask_example: PluginHandle) -> None:
    with flask_example.open_http(
        "POST", "/echo", headers={"Content-Type": "application/octet-stream"}, stream_body=True
    ) as stream:
        stream.send_body(b"first piece")
        # The echo of the first piece arrives while the client has not finished sending.
        assert stream.next_chunk() == b"first piece"
        rest = [b"x" * 100_000, b"last"]
        for piece in rest:
            stream.send_body(piece)
        stream.end_body()
        got = b"".join(stream)
    whole = b"first piece" + b"".join(rest)
    assert got == b"".join(rest) + f"\nsha256={hashlib.sha256(whole).hexdigest()}\n".encode()


def test_countdown_streams_line_by_line(
    flask_example: PluginHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The view's pause between lines waits for the test instead of the clock: the second
    # line cannot exist when the first is checked, and nothing is left sleeping afterwards.
    gate = threading.Event()
    monkeypatch.setattr(flask_plugin, "time", SimpleNamespace(sleep=lambda _s: gate.wait(GUARD)))
    with flask_example.open_http("GET", "/countdown?n=3&interval=1") as stream:
        assert stream.status == 200
        assert stream.next_chunk() == b"3\n"
        gate.set()
        assert stream.next_chunk() == b"2\n"


def test_countdown_complete(flask_example: PluginHandle) -> None:
    response = flask_example.http("GET", "/countdown?n=3&interval=0")
    assert response.status == 200
    assert response.headers["Content-Type"] == ["text/plain; charset=utf-8"]
    assert response.chunks == [b"3\n", b"2\n", b"1\n", b"liftoff\n"]


def _boom() -> str:
    raise ValueError("bug in a view")


# Flask accepts new routes only before its first request: register at import.
app.add_url_rule("/test-boom", "test_boom", _boom)


def test_unhandled_exception_is_a_500(flask_example: PluginHandle) -> None:
    assert flask_example.http("GET", "/test-boom").status == 500
