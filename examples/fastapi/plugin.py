"""A FastAPI app as a Mattermost plugin's HTTP handler (served at /plugins/com.mmplug.fastapi).

Routes:
  GET  /api/me                     the caller's user and the server version (calls the API)
  GET  /events?count=5&interval=1  server-sent events, one every `interval` seconds
  POST /sha256                     the SHA-256 of the body, read as it streams in
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from mattermost_plugin import NotFoundError, Plugin, run_plugin
from mattermost_plugin.asgi import PLUGIN_KEY, USER_ID_KEY, serve_asgi

app = FastAPI(title="mmplug FastAPI example")


def plugin_of(request: Request) -> Plugin:
    """The running plugin instance: routes reach the server API through it."""
    plugin: Plugin = request.scope[PLUGIN_KEY]
    return plugin


@app.get("/api/me")
async def me(request: Request) -> dict[str, str]:
    user_id: str = request.scope[USER_ID_KEY]
    if not user_id:
        # The server sets Mattermost-User-Id only for a logged-in session.
        raise HTTPException(status_code=401, detail="log in to Mattermost first")
    api = plugin_of(request).aapi
    try:
        user = await api.get_user(user_id)
    except NotFoundError:
        raise HTTPException(status_code=404, detail="no such user") from None
    return {"username": user.username, "server_version": await api.get_server_version()}


@app.get("/events")
async def events(
    count: int = Query(5, ge=1, le=1000), interval: float = Query(1.0, ge=0, le=60)
) -> StreamingResponse:
    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n in range(count):
            if n:
                await asyncio.sleep(interval)
            # Each event carries when it left, so a client can see the spacing.
            data = json.dumps({"n": n, "t": round(loop.time() - start, 3)})
            yield f"id: {n}\nevent: tick\ndata: {data}\n\n"

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


@app.post("/sha256")
async def sha256(request: Request) -> dict[str, int | str]:
    digest = hashlib.sha256()
    size = chunks = 0
    # request.stream() yields each piece as the client sends it; the body is never held whole.
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        chunks += bool(chunk)
    return {"sha256": digest.hexdigest(), "bytes": size, "chunks": chunks}


class FastAPIExample(Plugin):
    # ServeHTTP, plus the app's lifespan on OnActivate/OnDeactivate.
    http = serve_asgi(app)


if __name__ == "__main__":
    run_plugin(FastAPIExample)
