"""Drives the byte-stream paths of the contract for the harness's stream cases.

HTTP routes hand the request body to an upload API call (InstallPlugin, UploadData) or to an
inter-plugin request (PluginHTTP) as a file object, so nothing is held whole on the Python
side; FileWillBeUploaded upper-cases the upload chunk by chunk into the replacement stream.
"""

import hashlib
import json
import time

from mattermost_plugin import (
    FileInfo,
    HookName,
    HTTPClientDisconnected,
    HTTPRequest,
    HTTPResponseWriter,
    NotImplementedAPIError,
    Plugin,
    Post,
    UploadSession,
    hook,
)
from mattermost_plugin.files import UploadReader, UploadWriter

# 64 KiB of a pattern that is not periodic at chunk sizes (the harness's payload()).
PATTERN = bytes((i * 7 + i // 251) % 256 for i in range(64 * 1024))


def reply(w: HTTPResponseWriter, status: int, doc: dict[str, object]) -> None:
    w.headers["Content-Type"] = ["application/json"]
    w.write_header(status)
    w.write(json.dumps(doc).encode())


class Streams(Plugin):
    @hook(HookName.ServeHTTP)
    def http(self, context: object, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        # The request itself is a file object over the body as it arrives: handing it to an
        # upload streams the body through without holding it.
        body = r
        if r.path == "/install":
            manifest = self.api.install_plugin(body, True)
            reply(w, 200, {"id": manifest.id, "version": manifest.version})
        elif r.path == "/upload":
            info = self.api.upload_data(UploadSession(id=r.query["session"][0]), body)
            reply(w, 200, {"id": info.id, "name": info.name, "size": info.size})
        elif r.path == "/attachment":
            try:
                info = self.api.receive_shared_channel_attachment_sync_msg(
                    "remote1", "channel1", FileInfo(id="a1", name="att.bin"), body
                )
            except NotImplementedAPIError as e:
                # An older server without the method: the SDK must say so, never return zeros.
                reply(w, 200, {"unimplemented": str(e), "status_code": e.status_code})
                return
            reply(w, 200, {"id": info.id, "name": info.name, "size": info.size})
        elif r.path == "/echo":
            w.headers["Content-Type"] = ["application/octet-stream"]
            w.headers["X-Sha256"] = [hashlib.sha256(r.body).hexdigest()]
            w.write_header(200)
            for start in range(0, len(r.body), 100_000):
                w.write(r.body[start : start + 100_000])
        elif r.path == "/sink":
            # Consume the body as it arrives; report size and checksum.
            digest, size = hashlib.sha256(), 0
            for chunk in r.stream():
                digest.update(chunk)
                size += len(chunk)
            reply(w, 200, {"size": size, "sha256": digest.hexdigest()})
        elif r.path == "/source":
            size = int(r.query["size"][0])
            w.headers["Content-Type"] = ["application/octet-stream"]
            w.write_header(200)
            sent = 0
            while sent < size:
                piece = PATTERN[: min(len(PATTERN), size - sent)]
                w.write(piece)
                sent += len(piece)
        elif r.path == "/early":
            reply(w, 413, {"read": 0})
        elif r.path == "/sse":
            self.sse(w, int(r.query["events"][0]))
        elif r.path == "/disconnect":
            self.until_disconnected(w)
        elif r.path == "/status":
            w.write_header(int(r.query["code"][0]))
            w.write(b"unreachable")
        elif r.path == "/raise":
            raise RuntimeError("the /raise route fails on purpose")
        elif r.path == "/headers":
            w.headers["X-Multi"] = list(r.headers.get("X-Multi", []))
            w.headers.add("X-Out", "one")
            w.headers.add("X-Out", "two")
            w.write_header(204)
        elif r.path == "/slow":
            time.sleep(float(r.query["seconds"][0]))
            reply(w, 200, {"slept": r.query["seconds"][0]})
        elif r.path in ("/pluginhttp", "/pluginhttp-hello"):
            target = "/com.mmplug.other/echo"
            if r.path == "/pluginhttp-hello":
                target = "/com.mmplug.hello/echo"  # examples/hello, through its own bridge
            status, answer = self.api.plugin_http(
                "POST", target, {"X-From": ["streams"], "Content-Type": ["text/x-bytes"]}, body
            )
            headers = {k: list(v.values) for k, v in status.headers.items()}
            reply(
                w,
                200,
                {
                    "status": status.status_code,
                    "headers": headers,
                    "sha256": hashlib.sha256(answer).hexdigest(),
                    "size": len(answer),
                },
            )
        else:
            reply(w, 404, {"error": f"no route {r.path}"})

    @hook(HookName.MessagesWillBeConsumed)
    def consumed(self, posts: list[Post]) -> list[Post]:
        raise RuntimeError("MessagesWillBeConsumed fails on purpose")

    @hook(HookName.ServeMetrics)
    def metrics(self, context: object, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        w.headers["Content-Type"] = ["text/plain; version=0.0.4"]
        w.write(f'streams_requests_total{{path="{r.path}"}} 1\n'.encode())

    def sse(self, w: HTTPResponseWriter, events: int) -> None:
        """Server-sent events, each written only after the harness confirmed (through the
        server's KV store) that it received the previous one: they cannot all arrive at the
        end."""
        w.headers["Content-Type"] = ["text/event-stream"]
        w.write_header(200)
        for i in range(events):
            w.write(f"id: {i}\ndata: event {i}\n\n".encode())
            w.flush()
            if i + 1 < events:
                self.wait_for_key(f"sse/ack/{i}")

    def wait_for_key(self, key: str) -> None:
        deadline = time.monotonic() + 30
        while not self.api.kv_get(key):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the harness never set {key}")
            time.sleep(0.01)

    def until_disconnected(self, w: HTTPResponseWriter) -> None:
        """Writes until the client's disconnect reaches the handler, then records it."""
        w.write_header(200)
        try:
            for _ in range(16 * 1024):  # at most 1 GiB: the disconnect must come first
                w.write(PATTERN)
                w.flush()
        except HTTPClientDisconnected:
            self.api.kv_set("disconnect/seen", b"yes")
            return
        self.api.kv_set("disconnect/seen", b"never")

    @hook(HookName.FileWillBeUploaded)
    def upload(
        self, context: object, info: FileInfo, file: UploadReader, output: UploadWriter
    ) -> tuple[FileInfo | None, str]:
        if info.name == "reject.txt":
            return None, "rejected by streams"
        digest = hashlib.sha256()
        for chunk in file:
            digest.update(chunk)
            output.write(chunk.upper())
        info.name = info.name + ".checked"
        info.extension = digest.hexdigest()[:16]
        return info, ""
