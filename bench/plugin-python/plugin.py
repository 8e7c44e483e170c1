"""The Python side of ``make bench``: the same hook, API calls and HTTP endpoints as
bench/plugin-go (the behaviour both follow is in bench/README.md).

Written as a plugin author would write it, with the SDK's ordinary sync API: the figures are
what such a plugin gets, not a tuned special case.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from mattermost_plugin import (
    CommandArgs,
    CommandResponse,
    HookName,
    HTTPRequest,
    HTTPResponseWriter,
    Plugin,
    PluginAPIError,
    Post,
    hook,
    run_plugin,
)

KV_KEY = "bench-1kib"  # holds the 1 KiB value that /api?method=kv_get reads
PIECE_SIZE = 64 << 10  # how much /source writes at a time


def pattern(n: int) -> bytes:
    """The benchmark payload: byte i is i*7 mod 256, as in bench/plugin-go. The bytes repeat
    every 256, so one cycle is built and repeated: a generator over all n costs ~6 ms for the
    64 KiB piece at import, on every activation (Go's loop, microseconds)."""
    cycle = bytes((i * 7) & 0xFF for i in range(256))
    return (cycle * (n // 256 + 1))[:n]


PIECE = pattern(PIECE_SIZE)


class Bench(Plugin):
    @hook(HookName.OnActivate)
    def on_activate(self) -> None:
        self.api.kv_set(KV_KEY, pattern(1024))

    @hook(HookName.MessageWillBePosted)
    def check(self, context: Any, post: Post) -> tuple[Post | None, str]:
        post.message += " [checked]"
        post.props["checked_by"] = "bench"
        return post, ""

    @hook(HookName.MessageWillBeUpdated)
    async def check_edit(self, context: Any, new_post: Post, old_post: Post) -> tuple[Post, str]:
        """The same as ``check``, as an ``async def`` handler (run on the event loop)."""
        new_post.message += " [checked]"
        new_post.props["checked_by"] = "bench"
        return new_post, ""

    @hook(HookName.ExecuteCommand)
    async def kv_in_flight(self, context: Any, args: CommandArgs) -> CommandResponse:
        """``/bench-kv-in-flight WORKERS CALLS``: CALLS reads of the 1 KiB value through
        ``self.aapi``, shared by WORKERS coroutines, all in flight at once; the answer's text is
        ``{"seconds": elapsed}``, as bench/plugin-go's goroutines answer."""
        try:
            _, workers_text, calls_text = args.command.split()
            workers, calls = int(workers_text), int(calls_text)
        except ValueError:
            workers = calls = 0
        if not 0 < workers <= calls:
            raise PluginAPIError(
                "usage: /bench-kv-in-flight WORKERS CALLS (CALLS >= WORKERS > 0)",
                id="bench.command",
                status_code=400,
            )

        async def worker(n: int) -> None:
            for _ in range(n):
                value = await self.aapi.kv_get(KV_KEY)
                if len(value) != 1024:
                    raise PluginAPIError(f"{KV_KEY} holds {len(value)} bytes", id="bench.kv_get")

        start = time.perf_counter()
        await asyncio.gather(
            *(worker(calls // workers + (w < calls % workers)) for w in range(workers))
        )
        return CommandResponse(text=json.dumps({"seconds": time.perf_counter() - start}))

    @hook(HookName.ServeHTTP)
    def http(self, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        if r.path == "/api":
            self.api_calls(w, r)
        elif r.path == "/sink":
            size = sum(len(chunk) for chunk in r.stream())
            reply(w, 200, {"size": size})
        elif r.path == "/source":
            try:
                size = int(r.query.get("size", [""])[0])
            except ValueError:
                size = -1
            if size < 0:
                reply(w, 400, {"error": "size must be a byte count"})
                return
            w.headers["Content-Type"] = ["application/octet-stream"]
            w.write_header(200)
            for sent in range(0, size, PIECE_SIZE):
                w.write(PIECE[: min(PIECE_SIZE, size - sent)])
        elif r.path == "/sse":
            w.headers["Content-Type"] = ["text/event-stream"]
            w.write_header(200)
            for i in range(3):
                w.write(f"id: {i}\ndata: event {i}\n\n".encode())
                w.flush()
        else:
            reply(w, 404, {"error": "not found"})

    def api_calls(self, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        """Make ?n= calls of ?method= (kv_get, or get_user with ?user_id=) and answer each
        call's duration in nanoseconds, timed around the API call alone."""
        try:
            n = int(r.query.get("n", [""])[0])
        except ValueError:
            n = 0
        if n <= 0:
            reply(w, 400, {"error": "n must be a positive count"})
            return
        method = r.query.get("method", [""])[0]
        call: Callable[[], object]
        if method == "kv_get":
            call = self.kv_get_1kib
        elif method == "get_user":
            user_id = r.query.get("user_id", [""])[0]

            def call() -> object:
                return self.api.get_user(user_id)
        else:
            reply(w, 400, {"error": "method must be kv_get or get_user"})
            return
        ns = []
        clock = time.perf_counter_ns
        try:
            for _ in range(n):
                start = clock()
                call()
                ns.append(clock() - start)
        except PluginAPIError as e:
            reply(w, 502, {"error": str(e)})
            return
        reply(w, 200, {"ns": ns})

    def kv_get_1kib(self) -> object:
        value = self.api.kv_get(KV_KEY)
        if len(value) != 1024:
            raise PluginAPIError(f"{KV_KEY} holds {len(value)} bytes", id="bench.kv_get")
        return value


def reply(w: HTTPResponseWriter, status: int, doc: dict[str, object]) -> None:
    w.headers["Content-Type"] = ["application/json"]
    w.write_header(status)
    w.write(json.dumps(doc).encode())


if __name__ == "__main__":
    run_plugin(Bench)
