"""The least a Python process can add behind the bridge: ``make bench``'s floor figures
(bench/README.md). Not a plugin to copy: it bypasses the SDK.

The bridge launches it as it launches every plugin (``python -m mattermost_plugin
plugin.py``); importing this module takes the process over before the SDK's runtime starts.
It reads the launch's lane socket and token as the SDK does, connects, says ``HELLO`` as a
connection that serves hooks (docs/internals.md §8, "The lane") and then, on this one thread,
reads each request with a blocking ``recv`` and writes its answer:

- ``Implemented`` names the hooks below;
- ``OnActivate`` stores the 1 KiB value under ``bench-1kib``, as bench/plugin-python does;
- ``MessageWillBePosted`` gets the reply built (decoded, marked as bench/plugin-python marks
  it, encoded) for the first one it was sent, whatever it is sent later (the harness checks
  only the mark);
- ``ExecuteCommand`` ``/bench-kv-floor N`` makes N ``KVGet`` calls of that value, one at a
  time on this connection, each timed around its frames' write and read alone (the reply's
  bytes are not decoded), and answers ``{"ns": [...]}`` as the plugins' ``/api`` endpoint
  does;
- every other hook gets an empty response, its defaults.

No dispatch, no handler, no decoding or encoding per hook: what is left is the transport and
the wake-ups, the part of a call no SDK can remove. It exits when the bridge closes the
connection.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import time

from mattermost_plugin._lane.frames import (
    ERROR,
    REQUEST,
    RESPONSE,
    ROLE_SERVES_HOOKS,
    encode_hello,
    encode_request,
)
from mattermost_plugin._proto.mattermost.plugin.v1 import api_pb2, hooks_pb2, models_pb2
from mattermost_plugin.runtime import RuntimeConfig

HOOKS = "/mattermost.plugin.v1.PluginHooks/"
KV_GET = b"/mattermost.plugin.v1.PluginAPI/KVGet"
KV_SET = b"/mattermost.plugin.v1.PluginAPI/KVSet"
KV_KEY = "bench-1kib"
HEADER = struct.Struct("<IBBHQ")  # length, kind, flags, method_length, call id


class Lane:
    """The one connection, used from this one thread."""

    def __init__(self, path: str, token: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.sendall(encode_hello(ROLE_SERVES_HOOKS, token.encode()))
        self.next_id = 1

    def recv_exactly(self, n: int) -> bytearray:
        data = bytearray(n)
        view = memoryview(data)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                raise EOFError
            got += k
        return data

    def frame(self) -> tuple[int, int, int, bytearray]:
        """The next frame: kind, method length, call id, body."""
        length, kind, _, method_length, call_id = HEADER.unpack(self.recv_exactly(16))
        body = self.recv_exactly(length) if length else bytearray()
        return kind, method_length, call_id, body

    def call(self, method: bytes, request: bytes) -> bytearray:
        """An API call, answered before the bridge sends anything else (one call at a time,
        made while the bridge waits for a hook's answer)."""
        call_id = self.next_id
        self.next_id += 1
        self.sock.sendall(encode_request(call_id, method, request))
        kind, _, answered, body = self.frame()
        if kind == ERROR:
            raise RuntimeError(f"{method!r} failed: {bytes(body[4:]).decode(errors='replace')}")
        if kind != RESPONSE or answered != call_id:
            raise RuntimeError(f"{method!r}: frame kind {kind} for call {answered}, no RESPONSE")
        return body


def pattern(n: int) -> bytes:
    """bench/plugin-python's payload: byte i is i*7 mod 256."""
    return bytes((i * 7) & 0xFF for i in range(n))


def checked_reply(request: bytes) -> bytes:
    """What bench/plugin-python's ``check`` answers to this request, encoded."""
    post = hooks_pb2.MessageWillBePostedHookRequest.FromString(request).post
    post.message += " [checked]"
    post.props["checked_by"] = "bench"
    return hooks_pb2.MessageWillBePostedHookResponse(post=post).SerializeToString()


def kv_floor(lane: Lane, request: bytes) -> bytes:
    """``/bench-kv-floor N``: N timed KVGets."""
    command = hooks_pb2.ExecuteCommandHookRequest.FromString(request).args.command
    n = int(command.split()[1])
    get = api_pb2.KVGetRequest(key=KV_KEY).SerializeToString()
    clock = time.perf_counter_ns
    times = []
    for _ in range(n):
        start = clock()
        lane.call(KV_GET, get)
        times.append(clock() - start)
    text = json.dumps({"ns": times})
    return hooks_pb2.ExecuteCommandHookResponse(
        command_response=models_pb2.CommandResponse(text=text)
    ).SerializeToString()


def serve() -> None:
    config = RuntimeConfig.from_env()
    lane = Lane(config.lane_socket, config.token)
    implemented = ["OnActivate", "MessageWillBePosted", "ExecuteCommand"]
    answers = {
        HOOKS + "Implemented": hooks_pb2.ImplementedHookResponse(
            hooks=implemented
        ).SerializeToString()
    }
    posted = HOOKS + "MessageWillBePosted"
    try:
        while True:
            kind, method_length, call_id, body = lane.frame()
            if kind != REQUEST:
                continue  # the bridge's HELLO (no CANCEL comes: every call is answered at once)
            method = body[:method_length].decode()
            answer = answers.get(method)
            if answer is None:
                answer = b""
                request = bytes(body[method_length:])
                if method == posted:
                    answer = answers[method] = checked_reply(request)
                elif method == HOOKS + "OnActivate":
                    value = api_pb2.KVSetRequest(key=KV_KEY, value=pattern(1024))
                    lane.call(KV_SET, value.SerializeToString())
                elif method == HOOKS + "ExecuteCommand":
                    answer = kv_floor(lane, request)
            lane.sock.sendall(HEADER.pack(len(answer), RESPONSE, 0, 0, call_id) + answer)
    except (EOFError, ConnectionError):
        pass
    os._exit(0)


serve()
