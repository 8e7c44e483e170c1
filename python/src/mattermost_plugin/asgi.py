"""Serve an ASGI 3 application (FastAPI, Starlette, ...) as the plugin's ServeHTTP handler.

::

    app = FastAPI()

    class MyPlugin(Plugin):
        http = serve_asgi(app)     # registers ServeHTTP (and the app's lifespan, see below)

Each request becomes one ASGI ``http`` scope. The body is handed to the app chunk by chunk as
the client sends it (``receive`` never collects it whole), and every ``send`` reaches the
client as it happens, so streaming responses and server-sent events work.

Paths follow the ASGI convention that uvicorn and Starlette use: ``root_path`` is
``/plugins/<plugin id>`` and ``path`` is the full path *including* it (Starlette strips
``root_path`` for routing and uses both for ``request.url`` and ``url_for``).

Lifespan: with ``lifespan="auto"`` (the default) the app's startup runs on ``OnActivate`` and
its shutdown on ``OnDeactivate``, through handlers this module adds to the class. A class that
has its own ``OnActivate``/``OnDeactivate`` must say so with ``lifespan="manual"`` and call
``await self.http.startup()`` / ``await self.http.shutdown()`` from them (or pass
``lifespan="off"``); "auto" refuses to guess and raises at class creation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
import weakref
from collections.abc import Awaitable, Callable, Coroutine, MutableMapping
from typing import Any, Literal, Protocol, cast, overload

from .hooks import HOOK_ATTR, HookName, HookRegistrationError
from .http import (
    HTTPClientDisconnected,
    HTTPRequest,
    HTTPResponseWriter,
    canonical_header_key,
)
from .plugin import Plugin

__all__ = [
    "CONTEXT_KEY",
    "PLUGIN_KEY",
    "USER_ID_KEY",
    "ASGIApp",
    "ASGIHandler",
    "BoundASGIHandler",
    "LifespanError",
    "Receive",
    "Scope",
    "Send",
    "build_scope",
    "serve_asgi",
]

log = logging.getLogger("mattermost_plugin.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Scope keys through which routes reach the plugin (``request.scope[PLUGIN_KEY].api``), the
# Mattermost-User-Id of the session ("" when not logged in) and the hook's PluginContext.
PLUGIN_KEY = "mattermost.plugin"
USER_ID_KEY = "mattermost.user_id"
CONTEXT_KEY = "mattermost.context"

# 2.3, not 2.4: Starlette then watches ``receive`` for ``http.disconnect`` while it streams and
# stops a response generator at once when the client leaves (with 2.4 it would only notice at
# the generator's next send). ``send`` after a disconnect still raises an OSError
# (HTTPClientDisconnected).
_ASGI = {"version": "3.0", "spec_version": "2.3"}

# Responses up to this size are written from the event loop directly. Beyond it, body writes
# go through a worker thread: the response writer applies backpressure (blocks while the
# bridge is behind) only to writers off the loop, so a fast app streaming a large response
# cannot pile it up in memory.
_LOOP_WRITE_BUDGET = 256 * 1024

_DEFAULT_PORTS = {"http": 80, "https": 443}


class LifespanError(RuntimeError):
    """The app reported ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``."""


def _split_hostport(value: str, default_port: int | None) -> tuple[str, int] | None:
    """``host:port`` / ``[v6]:port`` / ``host`` -> (host, port); None when unusable."""
    if not value:
        return None
    host, port = value, default_port
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        host, rest = value[1:end], value[end + 1 :]
        if rest.startswith(":") and rest[1:].isdigit():
            port = int(rest[1:])
    elif value.count(":") == 1:
        h, _, p = value.partition(":")
        if p.isdigit():
            host, port = h, int(p)
    return None if port is None else (host, port)


def _scheme(r: HTTPRequest) -> str:
    # The server does not tell the plugin whether the client used TLS; a reverse proxy in
    # front of Mattermost says so in X-Forwarded-Proto (Mattermost itself trusts it too).
    proto = r.headers.get_first("X-Forwarded-Proto").split(",")[0].strip().lower()
    return proto if proto in _DEFAULT_PORTS else "http"


def _http_version(r: HTTPRequest) -> str:
    if r.proto_major >= 2:
        return "2"
    if r.proto_major == 1:
        return f"1.{r.proto_minor}"
    return "1.1"


def root_path_of(plugin: Plugin) -> str:
    return f"/plugins/{plugin.plugin_id}" if plugin.plugin_id else ""


def build_scope(plugin: Plugin, context: Any, r: HTTPRequest) -> dict[str, Any]:
    """The ASGI ``http`` scope of a ServeHTTP request."""
    scheme = _scheme(r)
    root = root_path_of(plugin)
    parts = urllib.parse.urlsplit(r.url)
    raw_path = root + r.raw_path
    headers: list[tuple[bytes, bytes]] = []
    # Go moves the Host header into Request.Host; ASGI apps expect it among the headers.
    if r.host and "Host" not in r.headers:
        headers.append((b"host", r.host.encode("latin-1", "replace")))
    for name, values in r.headers.items():
        key = name.lower().encode("latin-1", "replace")
        headers.extend((key, v.encode("latin-1", "replace")) for v in values)
    return {
        "type": "http",
        "asgi": dict(_ASGI),
        "http_version": _http_version(r),
        "method": r.method.upper(),
        "scheme": scheme,
        "path": urllib.parse.unquote(raw_path),
        "raw_path": raw_path.encode("latin-1", "replace"),
        "query_string": parts.query.encode("latin-1", "replace"),
        "root_path": root,
        "headers": headers,
        "client": _split_hostport(r.remote_addr, 0),
        "server": _split_hostport(r.host, _DEFAULT_PORTS[scheme]),
        "extensions": {},
        PLUGIN_KEY: plugin,
        USER_ID_KEY: r.user_id,
        CONTEXT_KEY: context,
    }


class _Exchange:
    """One request/response: the app's ``receive`` and ``send``."""

    def __init__(self, r: HTTPRequest, w: HTTPResponseWriter) -> None:
        self.r = r
        self.w = w
        self.body_iter = r.astream() if r.body_reader is not None else None
        self.body_done = False
        self.started = False
        self.complete = False
        self.streaming = True  # no Content-Length: flush each piece
        self.loop_bytes = 0
        self.disconnected = asyncio.get_running_loop().create_future()

    def disconnect(self) -> None:
        if not self.disconnected.done():
            self.disconnected.set_result(None)

    async def receive(self) -> Message:
        if self.disconnected.done() or self.complete:
            return {"type": "http.disconnect"}
        if self.body_done:
            # Nothing more to read: the next event is the client going away.
            await asyncio.shield(self.disconnected)
            return {"type": "http.disconnect"}
        if self.body_iter is None:
            self.body_done = True
            return {"type": "http.request", "body": await self.r.abody(), "more_body": False}
        read = asyncio.ensure_future(anext(self.body_iter, b""))
        try:
            await asyncio.wait({read, self.disconnected}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            read.cancel()
            raise
        if not read.done():
            read.cancel()
            return {"type": "http.disconnect"}
        chunk = read.result()
        if not chunk:
            self.body_done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: Message) -> None:
        kind = message.get("type")
        if self.disconnected.done():
            raise HTTPClientDisconnected("the client went away")
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("ASGI app sent http.response.start twice")
            self._start(message)
        elif kind == "http.response.body":
            if not self.started:
                raise RuntimeError("ASGI app sent http.response.body before http.response.start")
            if self.complete:
                raise RuntimeError("ASGI app sent http.response.body after the response ended")
            body = message.get("body", b"")
            if not isinstance(body, bytes | bytearray | memoryview):
                raise TypeError(f"http.response.body body must be bytes, got {type(body).__name__}")
            more = bool(message.get("more_body", False))
            await self._write(body, flush=more and self.streaming)
            if not more:
                self.complete = True
        else:
            raise ValueError(f"unexpected ASGI message type {kind!r} for an http scope")

    def _start(self, message: Message) -> None:
        status = message.get("status")
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"http.response.start status must be an int, got {status!r}")
        if message.get("trailers"):
            raise ValueError("HTTP trailers are not supported (the extension is not offered)")
        for pair in message.get("headers", ()):
            try:
                name, value = pair
                key, val = bytes(name).decode("latin-1"), bytes(value).decode("latin-1")
            except (TypeError, ValueError):
                raise TypeError(
                    f"http.response.start headers must be (bytes, bytes) pairs, got {pair!r}"
                ) from None
            if canonical_header_key(key) == "Content-Length":
                self.streaming = False
            self.w.headers.add(key, val)
        self.started = True
        self.w.write_header(status)
        if self.streaming:
            # A response of unknown length is a stream (SSE, StreamingResponse): let the client
            # see the headers now rather than with the first piece.
            self.w.flush()

    async def _write(self, body: bytes | bytearray | memoryview, *, flush: bool) -> None:
        if self.loop_bytes + len(body) <= _LOOP_WRITE_BUDGET:
            self.loop_bytes += len(body)
            if body:
                self.w.write(body)
            if flush:
                self.w.flush()
            return

        def blocking() -> None:
            self.w.write(body)
            if flush:
                self.w.flush()

        await asyncio.get_running_loop().run_in_executor(None, blocking)


class _Lifespan:
    """The app's ``lifespan`` scope, run as a task from startup to shutdown."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self.supported = True
        self.task: asyncio.Task[None] | None = None
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self.started: asyncio.Future[None] = loop.create_future()
        self.stopped: asyncio.Future[None] = loop.create_future()

    async def _send(self, message: Message) -> None:
        kind = message.get("type")
        fut = {
            "lifespan.startup.complete": self.started,
            "lifespan.startup.failed": self.started,
            "lifespan.shutdown.complete": self.stopped,
            "lifespan.shutdown.failed": self.stopped,
        }.get(str(kind))
        if fut is None:
            raise ValueError(f"unexpected ASGI message type {kind!r} for a lifespan scope")
        if fut.done():
            raise RuntimeError(f"ASGI app sent {kind} twice")
        if str(kind).endswith(".failed"):
            fut.set_exception(LifespanError(f"{kind}: {message.get('message', '')}"))
        else:
            fut.set_result(None)

    async def _wait(self, fut: asyncio.Future[None]) -> bool:
        """Wait for ``fut`` or the app's end; False when the app ended without answering."""
        assert self.task is not None
        await asyncio.wait({fut, self.task}, return_when=asyncio.FIRST_COMPLETED)
        if fut.done():
            fut.result()  # raises LifespanError on *.failed
            return True
        return False

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}}
        scope["state"] = self.state
        self.task = asyncio.ensure_future(self.app(scope, self.inbox.get, self._send))
        self.inbox.put_nowait({"type": "lifespan.startup"})
        if not await self._wait(self.started):
            # An app that raises on (or returns from) a lifespan scope without answering does
            # not support the protocol (ASGI lifespan spec); requests are served without it.
            exc = self.task.exception() if not self.task.cancelled() else None
            log.info("the ASGI app does not support lifespan (%s); not running it", exc)
            self.supported = False

    async def shutdown(self) -> None:
        if not self.supported or self.task is None or self.task.done():
            return
        self.inbox.put_nowait({"type": "lifespan.shutdown"})
        try:
            await self._wait(self.stopped)
        finally:
            if not self.task.done():
                with contextlib.suppress(BaseException):
                    await self.task


class BoundASGIHandler(Protocol):
    """``self.http`` on a plugin instance: the ServeHTTP handler plus lifespan controls."""

    def __call__(
        self, context: Any, w: HTTPResponseWriter, r: HTTPRequest
    ) -> Coroutine[Any, Any, None]: ...

    def startup(self) -> Coroutine[Any, Any, None]: ...

    def shutdown(self) -> Coroutine[Any, Any, None]: ...


class ASGIHandler:
    """A class attribute serving an ASGI app as ServeHTTP; made by ``serve_asgi``."""

    def __init__(self, app: ASGIApp, lifespan: Literal["auto", "manual", "off"]) -> None:
        if not callable(app):
            raise TypeError(f"serve_asgi expects an ASGI app (a callable), got {app!r}")
        if lifespan not in ("auto", "manual", "off"):
            raise ValueError(f"lifespan must be 'auto', 'manual' or 'off', got {lifespan!r}")
        self.app = app
        self.lifespan = lifespan
        self.name = ""
        # Plugin.__init_subclass__ registers attributes carrying this mark.
        setattr(self, HOOK_ATTR, HookName.ServeHTTP)
        self._lifespans: weakref.WeakKeyDictionary[Plugin, _Lifespan] = weakref.WeakKeyDictionary()

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        if self.lifespan != "auto":
            return
        # Runs before Plugin.__init_subclass__ builds the registry, so the handlers added here
        # are registered like hand-written ones.
        taken: set[HookName] = set(getattr(owner, "_hook_registry", {}))
        for value in vars(owner).values():
            mark = getattr(value, HOOK_ATTR, None)
            if isinstance(mark, HookName):
                taken.add(mark)
        clash = taken & {HookName.OnActivate, HookName.OnDeactivate}
        if clash:
            hooks = " and ".join(sorted(h.value for h in clash))
            raise HookRegistrationError(
                f"{owner.__qualname__} has its own {hooks} handler, so serve_asgi cannot run "
                f"the app's lifespan there by itself: use serve_asgi(app, lifespan='manual') "
                f"and call `await self.{name}.startup()` in OnActivate and "
                f"`await self.{name}.shutdown()` in OnDeactivate (or lifespan='off')"
            )

        async def on_activate(plugin: Plugin) -> None:
            await self.startup(plugin)

        async def on_deactivate(plugin: Plugin) -> None:
            await self.shutdown(plugin)

        for hook_name, fn in (
            (HookName.OnActivate, on_activate),
            (HookName.OnDeactivate, on_deactivate),
        ):
            setattr(fn, HOOK_ATTR, hook_name)
            attr = f"_{name}_asgi_{hook_name.value}"
            fn.__name__ = fn.__qualname__ = attr
            setattr(owner, attr, fn)

    @overload
    def __get__(self, instance: None, owner: type | None = None) -> ASGIHandler: ...
    @overload
    def __get__(self, instance: Plugin, owner: type | None = None) -> BoundASGIHandler: ...
    def __get__(
        self, instance: Plugin | None, owner: type | None = None
    ) -> ASGIHandler | BoundASGIHandler:
        if instance is None:
            return self
        plugin = instance

        # A real coroutine function (not an object with an async __call__): the dispatcher
        # runs coroutine functions on the loop and everything else in a worker thread.
        async def bound(context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
            await self.serve(plugin, context, w, r)

        bound_any: Any = bound
        bound_any.startup = lambda: self.startup(plugin)
        bound_any.shutdown = lambda: self.shutdown(plugin)
        return cast(BoundASGIHandler, bound_any)

    async def startup(self, plugin: Plugin) -> None:
        """Run the app's lifespan startup (raises LifespanError if the app reports failure)."""
        if plugin in self._lifespans:
            return
        lifespan = _Lifespan(self.app)
        self._lifespans[plugin] = lifespan
        try:
            await lifespan.startup()
        except BaseException:
            del self._lifespans[plugin]
            raise

    async def shutdown(self, plugin: Plugin) -> None:
        """Run the app's lifespan shutdown, if startup ran."""
        lifespan = self._lifespans.pop(plugin, None)
        if lifespan is not None:
            await lifespan.shutdown()

    async def serve(
        self, plugin: Plugin, context: Any, w: HTTPResponseWriter, r: HTTPRequest
    ) -> None:
        """Serve one ServeHTTP request with the app."""
        scope = build_scope(plugin, context, r)
        lifespan = self._lifespans.get(plugin)
        # Per the lifespan spec each request gets a shallow copy of the startup state.
        scope["state"] = dict(lifespan.state) if lifespan is not None else {}
        exchange = _Exchange(r, w)
        app_task = asyncio.ensure_future(self.app(scope, exchange.receive, exchange.send))
        try:
            # Shielded: the dispatcher cancels this handler when the client goes away; the app
            # then learns it the ASGI way (http.disconnect, OSError from send) and unwinds.
            await asyncio.shield(app_task)
        except Exception as exc:
            if not exchange.complete:
                raise  # the SDK answers 500, or aborts a response already under way
            # The response is whole (Starlette's error middleware sends its 500, then
            # re-raises): failing the stream now would only cut a finished response.
            log.error("ASGI app raised after its response was complete: %s", exc, exc_info=exc)
            return
        except asyncio.CancelledError:
            exchange.disconnect()
            try:
                await app_task
            except Exception as exc:
                log.debug("ASGI app ended after the client went away: %r", exc)
            finally:
                # A second cancellation (shutdown) stops an app that ignores the disconnect.
                app_task.cancel()
            raise
        if not exchange.started:
            raise RuntimeError("the ASGI app returned without sending http.response.start")


def serve_asgi(app: ASGIApp, *, lifespan: Literal["auto", "manual", "off"] = "auto") -> ASGIHandler:
    """Serve ``app`` as the plugin's ServeHTTP handler: ``http = serve_asgi(app)`` in the class.

    ``lifespan``: "auto" runs the app's startup/shutdown on OnActivate/OnDeactivate (the class
    must not define those hooks itself), "manual" leaves it to ``await self.<attr>.startup()``
    and ``shutdown()``, "off" never runs it.
    """
    return ASGIHandler(app, lifespan)
