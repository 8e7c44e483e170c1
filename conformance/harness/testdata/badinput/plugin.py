"""Bad input from the Python side, for the harness's bad-input cases (cases_badinput.go).

Each kind of bad input comes two ways where the SDK can refuse it: through the SDK's public
API (which must refuse it with an exception in Python) and raw, past the SDK's checks, by
sending protobuf response parts through the writer's internals as a plugin author who bypasses
the SDK could. The raw ones reach the bridge as they are and test its own checks.

- ServeHTTP ``/raw?case=NAME``: a raw response init from ``RAW_RESPONSES`` (invalid status,
  CR/LF in a header name or value, a header block over the bridge's limit), then a body.
- ServeHTTP ``/sdk?case=NAME``: the same through ``w.headers`` / ``w.write_header``.
- ServeHTTP ``/pluginhttp-bad-header``: an inter-plugin request (to this plugin) with CR/LF
  in a header value, which the SDK passes on and the bridge must refuse.
- ServeHTTP ``/kv-set-too-big``: a KVSet whose request is over the 256 MiB message limit,
  through the SDK (whose channel refuses to send it) and ``/kv-set-too-big-raw`` on a channel
  of its own without that limit (the bridge must refuse to take it). Both report the
  exception as JSON and then prove the API still answers.
- ServeHTTP ``/kv-get?key=K``: a KVGet, reporting the value's length or the exception (the
  harness stores a value over the message limit, which the bridge must fail alone).
- MessageWillBePosted: ``wrong-type`` returns a str, ``too-big`` returns a post over the
  message limit, anything else is tagged ``seen_by`` (a post that arrives over the limit
  never reaches Python: the bridge answers the server with an error).
- ExecuteCommand ``/badinput wrong-type`` returns an int.
- Implemented reports a hook name no server has, and one twice.
"""

import json
import os
from typing import Any

import grpc
from mattermost_plugin import (
    CommandResponse,
    HookName,
    HTTPRequest,
    HTTPResponseWriter,
    Plugin,
    Post,
    hook,
)

# One byte past the largest gRPC message the bridge and the SDK accept (grpc::MAX_MESSAGE).
OVER_MESSAGE_LIMIT = (256 << 20) + 1

# Name -> (status, headers) sent raw as the response's init part.
RAW_RESPONSES: dict[str, tuple[int, dict[str, list[str]]]] = {
    "status-42": (42, {}),
    "status-1000": (1000, {}),
    "status-299": (299, {}),
    "crlf-value": (200, {"X-Note": ["fine\r\nSet-Cookie: session=stolen"]}),
    "lf-value": (200, {"X-Note": ["fine\nX-Injected: 1"]}),
    "nul-value": (200, {"X-Note": ["fine\x00tail"]}),
    "crlf-name": (200, {"X-Note\r\nSet-Cookie: session=stolen": ["1"]}),
    "space-name": (200, {"X Note": ["1"]}),
    "empty-name": (200, {"": ["1"]}),
    # 1 MiB of header values (the bridge's limit) plus the name: just over.
    "big-header": (200, {"X-Big": ["b" * (1 << 20)]}),
    # Many headers that are each small but together over the limit.
    "many-headers": (200, {f"X-Many-{i}": ["m" * 1024] for i in range(1100)}),
    # Just under the limit: must pass.
    "large-header-ok": (200, {"X-Large": ["l" * (512 << 10)]}),
}

# Name -> what the handler does with the SDK's public API.
SDK_CASES = ("crlf-value", "crlf-name", "space-name", "big-header", "status-42")

BODY = b"body after a bad init\n"


def raw_init(w: HTTPResponseWriter, status: int, headers: dict[str, list[str]]) -> None:
    """Send a response init past the SDK's checks, as a plugin bypassing the SDK could."""
    w._send(w._parts.init(status, headers), 0)
    w._status = status
    w.headers.lock()


def raw_kv_set(api: Any, key: str, size: int) -> str:
    """KVSet with a value of ``size`` bytes on a channel without the SDK's send limit."""

    # KVSetRequest{key = 2; value = 3}, encoded by hand: field tags, then varint lengths.
    def field(number: int, data: bytes) -> bytes:
        n, length = len(data), bytearray()
        while True:
            byte, n = n & 0x7F, n >> 7
            length.append(byte | (0x80 if n else 0))
            if not n:
                break
        return bytes([number << 3 | 2]) + bytes(length) + data

    request = field(2, key.encode()) + field(3, b"r" * size)
    options = [("grpc.default_authority", "localhost"), ("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(f"unix:{os.environ['MMPLUG_API_SOCKET']}", options) as channel:
        call: Any = channel.unary_unary("/mattermost.plugin.v1.PluginAPI/KVSet")
        try:
            call(request, metadata=api._metadata)
        except grpc.RpcError as e:
            raise RuntimeError(f"{e.code().name}: {e.details()}") from None
    return "sent"


def reply(w: HTTPResponseWriter, status: int, doc: dict[str, object]) -> None:
    w.headers["Content-Type"] = ["application/json"]
    w.write_header(status)
    w.write(json.dumps(doc).encode())


class BadInput(Plugin):
    @classmethod
    def implemented_hooks(cls) -> list[str]:
        # What a tampered runtime could report: a name no server has, and a real one twice.
        return [*super().implemented_hooks(), "NoSuchHook", "ServeHTTP"]

    @hook(HookName.ServeHTTP)
    def http(self, context: object, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        case = r.query.get("case", [""])[0]
        if r.path == "/raw":
            status, headers = RAW_RESPONSES[case]
            raw_init(w, status, headers)
            w.write(BODY)
        elif r.path == "/sdk":
            self.sdk_case(w, case)
        elif r.path == "/pluginhttp-bad-header":
            self.api_outcome(w, self.bad_header_request)
        elif r.path == "/kv-set-too-big":
            self.api_outcome(w, lambda: self.api.kv_set("too-big", b"k" * OVER_MESSAGE_LIMIT))
        elif r.path == "/kv-set-too-big-raw":
            self.api_outcome(w, lambda: raw_kv_set(self.api, "too-big", OVER_MESSAGE_LIMIT))
        elif r.path == "/kv-get":
            key = r.query.get("key", [""])[0]
            self.api_outcome(w, lambda: len(self.api.kv_get(key)))
        else:
            reply(w, 404, {"error": f"no route {r.path}"})

    def sdk_case(self, w: HTTPResponseWriter, case: str) -> None:
        # Each of these must raise in the SDK before anything is sent: the dispatcher then
        # answers a clean 500 and logs the exception.
        if case == "crlf-value":
            w.headers["X-Note"] = ["fine\r\nSet-Cookie: session=stolen"]
        elif case == "crlf-name":
            w.headers.add("X-Note\r\nSet-Cookie: session=stolen", "1")
        elif case == "space-name":
            w.headers["X Note"] = ["1"]
        elif case == "big-header":
            w.headers["X-Big"] = ["b" * (1 << 20)]
            w.write_header(200)
        elif case == "status-42":
            w.write_header(42)
        w.write(BODY)

    def bad_header_request(self) -> int:
        target = "/com.mmplug.badinput/raw?case=status-299"
        headers = {"X-Note": ["fine\r\nX-Injected: 1"]}
        status, _ = self.api.plugin_http("GET", target, headers, b"")
        return int(status.status_code)

    def api_outcome(self, w: HTTPResponseWriter, call: Any) -> None:
        """Run an API call and report its outcome, then whether the API still answers."""
        outcome: dict[str, object] = {}
        try:
            outcome["result"] = call()
        except Exception as e:
            outcome["error_type"] = type(e).__name__
            outcome["error"] = str(e)
        outcome["version_after"] = self.api.get_server_version()
        reply(w, 200, outcome)

    @hook(HookName.MessageWillBePosted)
    def message_will_be_posted(self, context: object, post: Post) -> Any:
        if post.message == "wrong-type":
            # (A bare str would be a rejection reason, as Mattermost's own SDK reads it.)
            return {"spam"}
        if post.message == "too-big":
            post.message = "x" * OVER_MESSAGE_LIMIT
            return post, ""
        post.props["seen_by"] = "badinput"
        return post, ""

    @hook(HookName.ExecuteCommand)
    def execute_command(self, context: object, args: Any) -> Any:
        if args.command == "/badinput wrong-type":
            return 42
        return CommandResponse(response_type="ephemeral", text="badinput ok")
