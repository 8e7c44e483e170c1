"""Drives the byte-stream paths of the contract for the harness's stream cases.

HTTP routes hand the request body to an upload API call (InstallPlugin, UploadData) or to an
inter-plugin request (PluginHTTP) as a file object, so nothing is held whole on the Python
side; FileWillBeUploaded upper-cases the upload chunk by chunk into the replacement stream.
"""

import hashlib
import io
import json

from mattermost_plugin import (
    FileInfo,
    HookName,
    HTTPRequest,
    HTTPResponseWriter,
    NotImplementedAPIError,
    Plugin,
    Post,
    UploadSession,
    hook,
)
from mattermost_plugin.files import UploadReader, UploadWriter


def reply(w: HTTPResponseWriter, status: int, doc: dict[str, object]) -> None:
    w.headers["Content-Type"] = ["application/json"]
    w.write_header(status)
    w.write(json.dumps(doc).encode())


class Streams(Plugin):
    @hook(HookName.ServeHTTP)
    def http(self, context: object, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        body = io.BytesIO(r.body)
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
        elif r.path == "/pluginhttp":
            status, answer = self.api.plugin_http(
                "POST", "/com.mmplug.other/echo", {"X-From": ["streams"]}, body
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
