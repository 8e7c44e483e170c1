"""_lazy.LazyMapping: the specs of a service's methods, each built on first use."""

from __future__ import annotations

import pytest

from mattermost_plugin._lazy import LazyMapping


def test_values_are_built_once_on_first_use_and_shared_with_a_rekeyed_view() -> None:
    built: list[str] = []

    def build(source: str) -> str:
        built.append(source)
        return source.upper()

    m = LazyMapping({"GetUser": "get-user", "KVGet": "kv-get"}, build)
    assert built == []
    assert list(m) == ["GetUser", "KVGet"] and len(m) == 2
    assert m["KVGet"] == "KV-GET" and m["KVGet"] == "KV-GET"
    assert built == ["kv-get"]
    snake = m.rekeyed(str.lower)
    assert list(snake) == ["getuser", "kvget"]
    assert snake["kvget"] == "KV-GET" and built == ["kv-get"]  # built once, for both
    assert snake.get("getuser") == "GET-USER" and m["GetUser"] == "GET-USER"
    assert built == ["kv-get", "get-user"]


def test_an_unknown_key_is_a_key_error_and_builds_nothing() -> None:
    m: LazyMapping[str, str] = LazyMapping({"A": "a"}, lambda s: pytest.fail("built"))
    with pytest.raises(KeyError):
        m["B"]
    assert m.get("B") is None and "B" not in m
