"""HTTP request and response writer for the ServeHTTP (and ServeMetrics) hook.

The bridge streams a request as ``HTTPRequestPart`` messages and takes the response as
``HTTPResponsePart`` messages (docs/internals.md §9). ``HTTPResponseWriter`` turns each
``write_header``/``write``/``flush`` into parts *as they happen*, so a response streams to
the client while the handler still runs.

The helpers of Mattermost's own Python SDK are here too (docs/upstream.md):
``HTTPRequest.get_header``/``get_all_headers``/``content_length``, and
``HTTPResponseWriter.set_header``/``add_header``/``MAX_CHUNK_SIZE``; a writer made without
arguments (``HTTPResponseWriter()``, as that SDK's tests make one) records what the handler
writes (``get_body()``, ``get_pending_writes()``) instead of sending it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from ._chunks import ChunkReader

log = logging.getLogger("mattermost_plugin.http")

__all__ = [
    "MAX_CHUNK",
    "MAX_HEADER_BYTES",
    "HTTPClientDisconnected",
    "HTTPHeaders",
    "HTTPRequest",
    "HTTPResponseWriter",
    "canonical_header_key",
]

# Body parts are at most 64 KiB each (docs/internals.md §9).
MAX_CHUNK = 64 * 1024

# The most header bytes a response may carry, counted as on the HTTP/1.1 wire (name, value,
# ": " and CRLF for every value): the bridge refuses more (crates/bridge/src/http.rs).
MAX_HEADER_BYTES = 1 << 20

_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
# Characters that would end a header line early (response splitting, header smuggling).
_LINE_BREAKERS = frozenset("\r\n\x00")


def _checked_name(key: str) -> str:
    if not isinstance(key, str) or not key or any(c not in _TOKEN_CHARS for c in key):
        raise ValueError(f"header name {key!r} is not an HTTP token")
    return key


def _checked_values(key: str, values: list[str]) -> list[str]:
    for v in values:
        if not isinstance(v, str):
            raise TypeError(f"header {key!r} values must be a list of str")
        if any(c in _LINE_BREAKERS for c in v):
            raise ValueError(f"header {key!r} value contains CR, LF or NUL")
    return values


def _header_bytes(headers: Mapping[str, list[str]]) -> int:
    """The size of ``headers`` on the HTTP/1.1 wire: ``name: value`` and CRLF per value."""
    return sum(
        len(k.encode()) + len(v.encode()) + 4 for k, values in headers.items() for v in values
    )


def _values(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def canonical_header_key(key: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: ``content-type`` -> ``Content-Type``.

    Keys with characters outside the HTTP token set are returned unchanged, as Go does.
    """
    if not key or any(c not in _TOKEN_CHARS for c in key):
        return key
    out = []
    upper = True
    for c in key:
        out.append(c.upper() if upper else c.lower())
        upper = c == "-"
    return "".join(out)


class HTTPClientDisconnected(ConnectionError):
    """The response can no longer be delivered: the client (or the bridge) went away."""


class HTTPHeaders(MutableMapping[str, list[str]]):
    """Header name -> list of values, keyed by canonical Go header names.

    Lookups accept any case (``headers["content-type"]``). Once locked (the response
    headers have been sent) every change raises ``RuntimeError``: a change after that
    point could not reach the client, and silently dropping it hides bugs.

    A name that is not an HTTP token, or a value with CR, LF or NUL, raises ``ValueError``
    where it is set: either would let a response split or smuggle a header.
    """

    def __init__(self, initial: Mapping[str, list[str]] | None = None) -> None:
        self._data: dict[str, list[str]] = {}
        self._locked = False
        if initial:
            for k, v in initial.items():
                self[k] = v

    def _check(self) -> None:
        if self._locked:
            raise RuntimeError("response headers were already sent; they can no longer change")

    def lock(self) -> None:
        self._locked = True

    @property
    def locked(self) -> bool:
        return self._locked

    def __getitem__(self, key: str) -> list[str]:
        return self._data[canonical_header_key(key)]

    def __setitem__(self, key: str, value: list[str] | str) -> None:
        self._check()
        if isinstance(value, str):
            value = [value]
        elif not isinstance(value, list):
            raise TypeError(f"header {key!r} values must be a list of str")
        _checked_values(key, value)
        self._data[canonical_header_key(_checked_name(key))] = value

    def __delitem__(self, key: str) -> None:
        self._check()
        del self._data[canonical_header_key(key)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"HTTPHeaders({self._data!r})"

    def get_first(self, key: str, default: str = "") -> str:
        """The first value of ``key`` (Go's ``Header.Get``)."""
        values = self._data.get(canonical_header_key(key))
        return values[0] if values else default

    def add(self, key: str, value: str) -> None:
        """Append one value (Go's ``Header.Add``)."""
        self._check()
        _checked_values(key, [value])
        self._data.setdefault(canonical_header_key(_checked_name(key)), []).append(value)

    def snapshot(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self._data.items()}


@dataclass
class HTTPRequest:
    """A request to the plugin's HTTP handler.

    ``path`` is the URL path below ``/plugins/{plugin_id}``, percent-decoded as a Go plugin's
    ``r.URL.Path`` is (``/kv/caf%C3%A9`` arrives as ``/kv/café``; escapes that do not decode
    to UTF-8 become U+FFFD); ``raw_path`` is the same path as the client sent it, still
    encoded. ``query`` and ``headers`` hold lists of values, exactly under the names the
    server passed; ``user_id`` is the ``Mattermost-User-Id`` the server set for a logged-in
    session ("" otherwise).

    The body arrives as the handler reads it, never buffered whole by the SDK: ``stream()``
    (sync) and ``async for chunk in r.astream()`` yield it in pieces of at most 64 KiB,
    ``read(n)``/``await r.aread(n)`` read up to ``n`` bytes, and ``body`` (sync handlers) or
    ``await r.abody()`` read all of it (then cached). A handler may answer without reading the
    body at all.

    Built by hand (tests), only ``method`` and ``url`` are needed: ``path`` and ``query`` come
    from the URL, ``user_id`` from the headers (a plain dict is fine); assign ``body`` to
    give it a body. ``content_length`` is Go's ``r.ContentLength``: the Content-Length the
    client sent, -1 when a body of unknown length follows, 0 without a body.
    """

    method: str
    url: str
    path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: HTTPHeaders = field(default_factory=lambda: HTTPHeaders())
    user_id: str = ""
    body_reader: ChunkReader | None = field(default=None, repr=False)
    proto: str = ""
    proto_major: int = 0
    proto_minor: int = 0
    host: str = ""
    remote_addr: str = ""
    request_uri: str = ""
    plugin_context: Any = None
    raw_path: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    _content: bytes | None = field(default=None, repr=False)
    content_length: int = -1

    def __post_init__(self) -> None:
        import urllib.parse  # here, not at the top: ~3 ms of every activation (with ipaddress)

        if not isinstance(self.headers, HTTPHeaders):
            self.headers = HTTPHeaders({k: _values(v) for k, v in dict(self.headers).items()})
        parts = urllib.parse.urlsplit(self.url)
        if not self.path:
            self.path = urllib.parse.unquote(parts.path or "/")
        if not self.query and parts.query:
            self.query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        if not self.user_id:
            self.user_id = self.headers.get_first("Mattermost-User-Id")
        if self.content_length == -1:
            declared = self.headers.get_first("Content-Length")
            if declared.isdigit():
                self.content_length = int(declared)
            elif self.body_reader is None:
                self.content_length = len(self._content or b"")
        # A request built by hand (tests) names only `path`: its encoded form follows.
        if not self.raw_path:
            self.raw_path = urllib.parse.quote(self.path, safe="/!$&'()*+,;=:@~")

    def get_header(self, name: str, default: str = "") -> str:
        """The first value of header ``name`` (any case), or ``default``."""
        values = self.headers.get(name)
        return values[0] if values else default

    def get_all_headers(self, name: str) -> list[str]:
        """Every value of header ``name`` (any case), in order; [] when absent."""
        return list(self.headers.get(name) or [])

    @property
    def body(self) -> bytes:
        """The whole body (blocking; sync handlers). Async handlers: ``await r.abody()``
        (or ``body`` when the body has already arrived whole, see ``_compat``)."""
        if self._content is None:
            if self.body_reader is None:
                self._content = b""
            else:
                ready = self.body_reader.take_if_complete()
                self._content = ready if ready is not None else self.body_reader.read()
        return self._content

    @body.setter
    def body(self, value: bytes | str) -> None:
        self._content = value.encode() if isinstance(value, str) else bytes(value)

    async def abody(self) -> bytes:
        """The whole body, for async handlers."""
        if self._content is None:
            self._content = await self.body_reader.aread() if self.body_reader else b""
        return self._content

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` more bytes of the body (all the rest when ``n`` < 0); b"" at the end."""
        return self.body_reader.read(n) if self.body_reader else b""

    async def aread(self, n: int = -1) -> bytes:
        """``read`` for async handlers."""
        return await self.body_reader.aread(n) if self.body_reader else b""

    def stream(self) -> Iterator[bytes]:
        """The body in pieces of at most 64 KiB, as they arrive (sync handlers)."""
        if self.body_reader is not None:
            yield from self.body_reader

    async def astream(self) -> AsyncIterator[bytes]:
        """The body in pieces of at most 64 KiB, as they arrive (async handlers)."""
        if self.body_reader is not None:
            async for chunk in self.body_reader:
                yield chunk

    @classmethod
    def from_init(
        cls, init: Any, body: ChunkReader | bytes | None, plugin_id: str = ""
    ) -> HTTPRequest:
        import urllib.parse

        headers = HTTPHeaders({k: list(v.values) for k, v in init.headers.items()})
        parts = urllib.parse.urlsplit(init.url)
        raw_path = parts.path or "/"
        # The server strips "/plugins/{id}" before the hook runs; strip it here too in case
        # a caller forwards the raw URL, so handlers can rely on `path` either way.
        prefix = f"/plugins/{plugin_id}"
        if plugin_id and (raw_path == prefix or raw_path.startswith(prefix + "/")):
            raw_path = raw_path[len(prefix) :] or "/"
        return cls(
            method=init.method,
            url=init.url,
            path=urllib.parse.unquote(raw_path),
            raw_path=raw_path,
            query=urllib.parse.parse_qs(parts.query, keep_blank_values=True),
            headers=headers,
            user_id=headers.get_first("Mattermost-User-Id"),
            body_reader=body if isinstance(body, ChunkReader) else None,
            _content=body if isinstance(body, bytes) else None,
            proto=init.proto,
            proto_major=int(init.proto_major),
            proto_minor=int(init.proto_minor),
            host=init.host,
            remote_addr=init.remote_addr,
            request_uri=init.request_uri,
            plugin_context=init.plugin_context if init.HasField("plugin_context") else None,
            content_length=-1 if init.has_body else 0,
        )


class ResponseParts:
    """Builds ``HTTPResponsePart`` messages from the descriptor of the part type."""

    def __init__(self, part_cls: type[Message]) -> None:
        self.part_cls = part_cls
        init_desc: Any = part_cls.DESCRIPTOR.fields_by_name["init"].message_type
        self.init_cls = GetMessageClass(init_desc)
        headers: Any = init_desc.fields_by_name["headers"].message_type
        self.values_cls = GetMessageClass(headers.fields_by_name["value"].message_type)

    def init(self, status: int, headers: Mapping[str, list[str]]) -> Message:
        init = self.init_cls(status_code=status)
        for k, v in headers.items():
            init.headers[k].CopyFrom(self.values_cls(values=v))  # type: ignore[attr-defined]
        return self.part_cls(init=init)

    def body(self, data: bytes) -> Message:
        return self.part_cls(body=data)

    def flush(self) -> Message:
        return self.part_cls(flush=True)


class Outbox:
    """Carries response parts from the handler (any thread) to the gRPC stream (the loop).

    Writers in worker threads block while more than ``max_pending`` bytes wait to be sent,
    so a fast handler cannot buffer an unbounded response in memory. Writers on the loop
    thread (async handlers) cannot block; their parts are queued. ``close`` releases every
    waiting writer; writes after it raise ``HTTPClientDisconnected``.
    """

    _END = object()

    def __init__(self, loop: asyncio.AbstractEventLoop, max_pending: int = 1 << 20) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._cond = threading.Condition()
        self._pending = 0
        self._max = max_pending
        self._closed = False

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def put(self, part: Message, size: int = 0) -> None:
        on_loop = self._on_loop()
        with self._cond:
            if not on_loop:
                while self._pending > self._max and not self._closed:
                    self._cond.wait()
            if self._closed:
                raise HTTPClientDisconnected("the HTTP response stream is closed")
            self._pending += size
        if on_loop:
            self._queue.put_nowait((part, size))
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, (part, size))

    def finish(self) -> None:
        """Mark the end of the response (from any thread)."""
        if self._on_loop():
            self._queue.put_nowait(self._END)
        else:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, self._END)

    async def get(self) -> Message | None:
        """The next part, or None at the end of the response."""
        item = await self._queue.get()
        if item is self._END:
            return None
        part, size = item
        if size:
            with self._cond:
                self._pending -= size
                self._cond.notify_all()
        return part  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


class _RecordingParts:
    """``ResponseParts`` for a writer without a stream: plain tuples, kept by the writer."""

    def init(self, status: int, headers: Mapping[str, list[str]]) -> Any:
        return ("init", status)

    def body(self, data: bytes) -> Any:
        return ("body", data)

    def flush(self) -> Any:
        return ("flush", None)


class HTTPResponseWriter:
    """Go's ``http.ResponseWriter`` for Python handlers.

    Set ``headers`` first, then ``write_header(status)`` (optional: the first ``write`` or
    ``flush`` implies 200), then ``write`` bodies and ``flush`` when the client should see
    what was written so far. Headers lock once sent. Methods are safe to call from the
    handler's worker thread.
    """

    #: The size of the body parts a write is cut into (64 KiB), under the other SDK's name.
    MAX_CHUNK_SIZE = MAX_CHUNK

    def __init__(
        self,
        send: Callable[[Message, int], None] | None = None,
        parts: ResponseParts | None = None,
    ) -> None:
        # Without a stream (a unit test), the writer records the response instead.
        self._recorded: list[tuple[bytes, bool]] | None = None
        self._send: Callable[[Any, int], None]
        self._parts: Any
        if send is None or parts is None:
            self._recorded = []
            self._send, self._parts = self._record, _RecordingParts()
        else:
            self._send, self._parts = send, parts
        self.headers = HTTPHeaders()
        self._status: int | None = None
        self._lock = threading.Lock()

    def _record(self, part: Any, size: int) -> None:
        assert self._recorded is not None
        kind, value = part
        if kind == "body":
            self._recorded.append((value, False))
        elif kind == "flush" and self._recorded:
            self._recorded[-1] = (self._recorded[-1][0], True)

    def set_header(self, name: str, value: str) -> None:
        """Set header ``name`` to the single ``value`` (before the headers are sent).

        As in Mattermost's own SDK, a change after the headers went out is ignored with a
        warning (setting ``headers[...]`` then raises ``RuntimeError`` instead).
        """
        if self.headers.locked:
            log.warning("set_header(%r) after the response headers were sent: ignored", name)
            return
        self.headers[name] = [value]

    def add_header(self, name: str, value: str) -> None:
        """Add one more value to header ``name`` (``Set-Cookie`` and the like)."""
        if self.headers.locked:
            log.warning("add_header(%r) after the response headers were sent: ignored", name)
            return
        self.headers.add(name, value)

    def get_body(self) -> bytes:
        """What the handler wrote, for a writer made without arguments (a test); b"" for a
        writer that streamed to a client (its bytes are gone)."""
        return b"".join(chunk for chunk, _ in self._recorded or [])

    def get_pending_writes(self) -> list[tuple[bytes, bool]]:
        """``(chunk, flushed after it)`` for each write, for a writer made without arguments
        (a test); [] for a writer that streamed to a client."""
        return list(self._recorded or [])

    def clear_pending_writes(self) -> None:
        """Forget what a writer made without arguments recorded."""
        if self._recorded is not None:
            self._recorded.clear()

    @property
    def status_code(self) -> int | None:
        """The status sent, or None while headers are still unsent."""
        return self._status

    @property
    def headers_sent(self) -> bool:
        return self._status is not None

    def write_header(self, status: int) -> None:
        """Send the status line and headers. A second call is ignored, as in Go.

        Raises ``ValueError`` for a status outside 100..999 or headers of more than
        ``MAX_HEADER_BYTES``; nothing is sent then.
        """
        if isinstance(status, bool) or not isinstance(status, int):
            raise TypeError(f"status must be an int, got {type(status).__name__}")
        if not 100 <= status <= 999:
            raise ValueError(f"invalid HTTP status code {status}: must be within 100..999")
        with self._lock:
            if self._status is not None:
                return
            size = _header_bytes(self.headers)
            if size > MAX_HEADER_BYTES:
                raise ValueError(
                    f"response headers of {size} bytes exceed the limit of {MAX_HEADER_BYTES} bytes"
                )
            self._status = status
            self.headers.lock()
            self._send(self._parts.init(status, self.headers.snapshot()), 0)

    def write(self, data: bytes | bytearray | memoryview | str) -> int:
        """Send body bytes (``str`` is UTF-8 encoded); returns the number of bytes."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, bytes | bytearray | memoryview):
            raise TypeError(f"write expects bytes or str, got {type(data).__name__}")
        if self._status is None:
            self.write_header(200)
        view = memoryview(data)
        for start in range(0, len(view), MAX_CHUNK):
            chunk = bytes(view[start : start + MAX_CHUNK])
            self._send(self._parts.body(chunk), len(chunk))
        return len(view)

    def flush(self) -> None:
        """Ask for everything written so far to reach the client now."""
        if self._status is None:
            self.write_header(200)
        self._send(self._parts.flush(), 0)
