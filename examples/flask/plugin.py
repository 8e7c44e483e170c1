"""A Flask app as a Mattermost plugin's HTTP handler (served at /plugins/com.mmplug.flask).

Routes:
  GET  /api/me                        the caller's user and the server version (calls the API)
  POST /echo                          the body back as it streams in, X-Checksum-Sha256 trailer
                                      line at the end
  GET  /countdown?n=5&interval=1      a plain-text stream, one line every `interval` seconds
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, abort, request, stream_with_context
from mattermost_plugin import NotFoundError, Plugin, run_plugin
from mattermost_plugin.asgi import PLUGIN_KEY, USER_ID_KEY
from mattermost_plugin.wsgi import serve_wsgi

app = Flask(__name__)

CHUNK = 64 * 1024


def plugin() -> Plugin:
    """The running plugin instance: views reach the server API through it."""
    found: Plugin = request.environ[PLUGIN_KEY]
    return found


@app.get("/api/me")
def me() -> dict[str, Any]:
    user_id: str = request.environ[USER_ID_KEY]
    if not user_id:
        abort(401, "log in to Mattermost first")
    api = plugin().api  # views run in worker threads: the blocking client is right here
    try:
        user = api.get_user(user_id)
    except NotFoundError:
        abort(404, "no such user")
    return {"username": user.username, "server_version": api.get_server_version()}


@app.post("/echo")
def echo() -> Response:
    # wsgi.input's read1 hands over each piece as it arrives (read(n) would wait for n bytes).
    stream = request.environ["wsgi.input"]

    def body() -> Iterator[bytes]:
        digest = hashlib.sha256()
        while chunk := stream.read1(CHUNK):
            digest.update(chunk)
            yield chunk
        yield f"\nsha256={digest.hexdigest()}\n".encode()

    return Response(stream_with_context(body()), mimetype="application/octet-stream")


@app.get("/countdown")
def countdown() -> Response:
    n = request.args.get("n", 5, type=int)
    interval = request.args.get("interval", 1.0, type=float)
    if not 1 <= n <= 1000 or not 0 <= interval <= 60:
        abort(400, "n must be 1..1000 and interval 0..60")

    def lines() -> Iterator[str]:
        for i in range(n, 0, -1):
            yield f"{i}\n"
            time.sleep(interval)
        yield "liftoff\n"

    return Response(lines(), mimetype="text/plain")


class FlaskExample(Plugin):
    http = serve_wsgi(app)


if __name__ == "__main__":
    run_plugin(FlaskExample)
