"""The least a Python process can add to a hook behind the bridge: ``make bench``'s
``hook_python_floor_p50`` (bench/README.md). Not a plugin to copy: it bypasses the SDK.

The bridge launches it as it launches every plugin (``python -m mattermost_plugin
plugin.py``); importing this module takes the process over before the SDK's runtime starts.
It reads the launch's lane socket and token as the SDK does, connects, says ``HELLO`` as a
connection that serves hooks (docs/internals.md §8, "The lane") and then, on this one thread,
reads each request with a blocking ``recv`` and writes its answer: ``Implemented`` names
``MessageWillBePosted``; ``MessageWillBePosted`` gets the reply built (decoded, marked as
bench/plugin-python marks it, encoded) for the first one it was sent, whatever it is sent
later (the harness checks only the mark); every other hook gets an empty response, its
defaults. No dispatch, no handler, no decoding or encoding per call: what is left is the
transport and the wake-ups, the part of a hook no SDK can remove. It exits when the bridge
closes the connection.
"""

from __future__ import annotations

import os
import socket
import struct

from mattermost_plugin._lane.frames import REQUEST, RESPONSE, ROLE_SERVES_HOOKS, encode_hello
from mattermost_plugin._proto.mattermost.plugin.v1 import hooks_pb2
from mattermost_plugin.runtime import RuntimeConfig

HOOKS = "/mattermost.plugin.v1.PluginHooks/"
HEADER = struct.Struct("<IBBHQ")  # length, kind, flags, method_length, call id


def recv_exactly(sock: socket.socket, n: int) -> bytearray:
    data = bytearray(n)
    view = memoryview(data)
    got = 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            raise EOFError
        got += k
    return data


def checked_reply(request: bytes) -> bytes:
    """What bench/plugin-python's ``check`` answers to this request, encoded."""
    post = hooks_pb2.MessageWillBePostedHookRequest.FromString(request).post
    post.message += " [checked]"
    post.props["checked_by"] = "bench"
    return hooks_pb2.MessageWillBePostedHookResponse(post=post).SerializeToString()


def serve() -> None:
    config = RuntimeConfig.from_env()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(config.lane_socket)
    sock.sendall(encode_hello(ROLE_SERVES_HOOKS, config.token.encode()))
    answers = {
        HOOKS + "Implemented": hooks_pb2.ImplementedHookResponse(
            hooks=["MessageWillBePosted"]
        ).SerializeToString()
    }
    posted = HOOKS + "MessageWillBePosted"
    try:
        while True:
            length, kind, _, method_length, call_id = HEADER.unpack(recv_exactly(sock, 16))
            body = recv_exactly(sock, length) if length else bytearray()
            if kind != REQUEST:
                continue  # the bridge's HELLO (no CANCEL comes: every call is answered at once)
            method = body[:method_length].decode()
            answer = answers.get(method)
            if answer is None:
                answer = b""
                if method == posted:
                    answer = answers[method] = checked_reply(bytes(body[method_length:]))
            sock.sendall(HEADER.pack(len(answer), RESPONSE, 0, 0, call_id) + answer)
    except (EOFError, ConnectionError):
        pass
    os._exit(0)


serve()
