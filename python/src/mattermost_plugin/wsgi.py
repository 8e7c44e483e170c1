"""Serve a WSGI application (Flask, ...) as the plugin's ServeHTTP handler (PEP 3333).

::

    app = Flask(__name__)

    class MyPlugin(Plugin):
        http = serve_wsgi(app)

The handler is a sync hook, so it runs in a worker thread: ``wsgi.input`` reads the request
body as it arrives (blocking is fine there), and each chunk of the app's response iterable is
written and flushed as it is produced, so streamed responses reach the client live.
``SCRIPT_NAME`` is ``/plugins/<plugin id>`` and ``PATH_INFO`` the path below it, so the app's
``url_for`` builds URLs that work from the browser. ``environ["mattermost.plugin"]`` is the
plugin instance (for ``plugin.api``), ``environ["mattermost.user_id"]`` the logged-in user.
"""

from __future__ import annotations

import io
import sys
import urllib.parse
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any

from .asgi import CONTEXT_KEY, PLUGIN_KEY, USER_ID_KEY, root_path_of
from .hooks import HOOK_ATTR, HookName
from .http import HTTPRequest, HTTPResponseWriter
from .plugin import Plugin

__all__ = ["StartResponse", "WSGIApp", "WSGIInput", "build_environ", "serve_wsgi"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_READ = 64 * 1024


class WSGIInput(io.RawIOBase):
    """``wsgi.input``: the request body, read as it arrives (blocking; worker threads)."""

    def __init__(self, r: HTTPRequest) -> None:
        super().__init__()
        self._r = r
        self._buf = bytearray()
        self._eof = False

    def readable(self) -> bool:
        return True

    def _more(self) -> bool:
        """Append what has arrived (waiting only if nothing has); False at the end."""
        if self._eof:
            return False
        reader = self._r.body_reader
        chunk = reader.read1(_READ) if reader is not None else self._r.body
        if not chunk or reader is None:
            self._eof = True
        self._buf += chunk
        return bool(chunk)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._more():
                pass
            size = len(self._buf)
        while len(self._buf) < size and self._more():
            pass
        out = bytes(self._buf[:size])
        del self._buf[:size]
        return out

    def read1(self, size: int = _READ) -> bytes:
        """Up to ``size`` bytes of what has arrived, waiting only if nothing has (b"" at the
        end). ``read(n)`` waits for all ``n`` bytes, as WSGI servers do; this one lets an
        app process a body piece by piece as the client sends it."""
        if not self._buf:
            self._more()
        return self.read(min(size, len(self._buf)) if size >= 0 else -1)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def readline(self, size: int | None = -1) -> bytes:
        limit = -1 if size is None else size
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0 and (limit < 0 or nl < limit):
                return self.read(nl + 1)
            if 0 <= limit <= len(self._buf) or not self._more():
                return self.read(limit if limit >= 0 else len(self._buf))

    def __iter__(self) -> WSGIInput:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


def _latin1(text: str) -> str:
    """A PEP 3333 "native string": the UTF-8 bytes seen as latin-1."""
    return text.encode("utf-8", "surrogateescape").decode("latin-1")


def build_environ(plugin: Plugin, context: Any, r: HTTPRequest) -> dict[str, Any]:
    """The WSGI environ of a ServeHTTP request."""
    parts = urllib.parse.urlsplit(r.url)
    proto = r.headers.get_first("X-Forwarded-Proto").split(",")[0].strip().lower()
    scheme = proto if proto in ("http", "https") else "http"
    host, _, port = (r.host or "localhost").rpartition(":")
    if not host or not port.isdigit() or "]" in port:
        host, port = r.host or "localhost", "443" if scheme == "https" else "80"
    environ: dict[str, Any] = {
        "REQUEST_METHOD": r.method.upper(),
        "SCRIPT_NAME": root_path_of(plugin),
        "PATH_INFO": urllib.parse.unquote_to_bytes(r.raw_path).decode("latin-1"),
        "QUERY_STRING": parts.query,
        "REQUEST_URI": _latin1(r.request_uri or r.url),
        "CONTENT_TYPE": r.headers.get_first("Content-Type"),
        "CONTENT_LENGTH": r.headers.get_first("Content-Length"),
        "SERVER_NAME": host.strip("[]"),
        "SERVER_PORT": port,
        "SERVER_PROTOCOL": r.proto or "HTTP/1.1",
        "REMOTE_ADDR": "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": WSGIInput(r),
        # The end of the body is known (the stream says so), so apps may read to EOF even
        # without a Content-Length (chunked uploads).
        "wsgi.input_terminated": True,
        # stderr reaches the server log through the bridge.
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        PLUGIN_KEY: plugin,
        USER_ID_KEY: r.user_id,
        CONTEXT_KEY: context,
    }
    remote, _, remote_port = r.remote_addr.rpartition(":")
    if remote and remote_port.isdigit():
        environ["REMOTE_ADDR"], environ["REMOTE_PORT"] = remote.strip("[]"), remote_port
    else:
        environ["REMOTE_ADDR"] = r.remote_addr
    if r.host:
        environ["HTTP_HOST"] = _latin1(r.host)
    for name, values in r.headers.items():
        if name in ("Content-Type", "Content-Length"):
            continue
        # CGI keys turn "-" into "_", so a client's "Mattermost_User_Id" would land on the
        # key of the "Mattermost-User-Id" the server sets: an anonymous request could claim
        # any identity. Names with "_" are left out, as gunicorn, nginx and Apache do.
        if "_" in name:
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        sep = "; " if name == "Cookie" else ","
        environ[key] = _latin1(sep.join(values))
    return environ


class _Response:
    """start_response and the writes that follow it, for one request."""

    def __init__(self, w: HTTPResponseWriter) -> None:
        self.w = w
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.streaming = True

    def start_response(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], object]:
        if exc_info is not None:
            if self.w.headers_sent:
                # PEP 3333: too late to change the response; re-raise the app's error.
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status is not None:
            raise RuntimeError("start_response called twice without exc_info")
        if not isinstance(status, str):
            raise TypeError(f"status must be a str like '200 OK', got {status!r}")
        code = status.split(" ", 1)[0]
        if len(code) != 3 or not code.isdigit():
            raise ValueError(f"invalid WSGI status {status!r}: expected 'NNN Reason'")
        for pair in headers:
            if (
                not isinstance(pair, tuple)
                or len(pair) != 2
                or not all(isinstance(x, str) for x in pair)
            ):
                raise TypeError(f"WSGI headers must be (str, str) tuples, got {pair!r}")
        self.status = int(code)
        self.headers = list(headers)
        return self.write

    def _send_headers(self) -> None:
        if self.w.headers_sent:
            return
        if self.status is None:
            raise RuntimeError("the WSGI app produced body before calling start_response")
        for name, value in self.headers:
            if name.lower() == "content-length":
                # A known length is not a live stream: no flush per chunk needed.
                self.streaming = False
            self.w.headers.add(name, value)
        self.w.write_header(self.status)

    def write(self, data: bytes) -> None:
        if not isinstance(data, bytes | bytearray):
            raise TypeError(f"WSGI body chunks must be bytes, got {type(data).__name__}")
        self._send_headers()
        if data:
            self.w.write(data)
            if self.streaming:
                self.w.flush()

    def finish(self) -> None:
        self._send_headers()


def serve_wsgi(app: WSGIApp) -> Callable[[Plugin, Any, HTTPResponseWriter, HTTPRequest], None]:
    """Serve ``app`` as the plugin's ServeHTTP handler: ``http = serve_wsgi(app)`` in the class."""
    if not callable(app):
        raise TypeError(f"serve_wsgi expects a WSGI app (a callable), got {app!r}")

    def serve_http(plugin: Plugin, context: Any, w: HTTPResponseWriter, r: HTTPRequest) -> None:
        response = _Response(w)
        result = app(build_environ(plugin, context, r), response.start_response)
        try:
            for chunk in result:
                if chunk:  # PEP 3333: headers wait for the first non-empty chunk
                    response.write(chunk)
            response.finish()
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()

    setattr(serve_http, HOOK_ATTR, HookName.ServeHTTP)
    return serve_http
