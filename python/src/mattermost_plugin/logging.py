"""Where the plugin's ``logging`` records go: the server's log, as a Go plugin's lines.

A Go plugin logs through the API (``p.API.LogInfo(msg, "key", value)``): the server writes
one JSON line with the message and each pair as its own field. Lines a plugin writes to
stderr instead reach the server through go-plugin and Mattermost's hclog adapter, which runs
every field together (``"wrapped_extras":"loggerxtimestamp2026-..."``). So once the server's
API is open (from OnActivate on), :class:`ServerLogHandler` sends the plugin's records through
the API, from a thread of its own and in order. Before that, and for the SDK's own loggers
(whose failures must never loop back into the API), records go to stderr as hclog JSON lines
(:class:`HclogJSONHandler`), which the bridge forwards. stdout is never used: the process
contract reserves it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import queue
import sys
import threading
import traceback
from typing import Any, Protocol, TextIO

__all__ = [
    "HclogJSONHandler",
    "ServerLogHandler",
    "close_server_log",
    "hclog_level",
    "install",
    "open_server_log",
]

MODULE = "python"

# Attributes every LogRecord has; anything else on a record came from `extra=` and is
# forwarded as a key/value pair.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def hclog_level(levelno: int) -> str:
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warn"
    if levelno >= logging.INFO:
        return "info"
    if levelno >= logging.DEBUG:
        return "debug"
    return "trace"


def _timestamp(created: float) -> str:
    # hclog's JSON time format: 2006-01-02T15:04:05.000000Z07:00
    dt = datetime.datetime.fromtimestamp(created, tz=datetime.timezone.utc).astimezone()
    text = dt.strftime("%Y-%m-%dT%H:%M:%S.%f%z")
    if text.endswith("+0000"):
        return text[:-5] + "Z"
    return text[:-2] + ":" + text[-2:]


class HclogJSONHandler(logging.Handler):
    """Formats each record as one hclog JSON object on its own line."""

    def __init__(self, stream: TextIO | None = None, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self._stream = stream

    @property
    def stream(self) -> TextIO:
        # Resolved per write so a test (or pytest's capture) swapping sys.stderr is honoured.
        return self._stream if self._stream is not None else sys.stderr

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "@level": hclog_level(record.levelno),
            "@message": record.getMessage(),
            "@module": MODULE,
            "@timestamp": _timestamp(record.created),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and not key.startswith("@"):
                entry[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            entry["stack"] = record.stack_info
        return entry

    def format(self, record: logging.LogRecord) -> str:
        # default=str: an unserialisable `extra` value must not lose the log line.
        return json.dumps(self.entry(record), default=str, ensure_ascii=False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            with self.lock if self.lock is not None else contextlib.nullcontext():
                self.stream.write(line + "\n")
                self.stream.flush()
        except Exception:
            self.handleError(record)


class LogAPI(Protocol):
    """The four API methods :class:`ServerLogHandler` calls (the sync client has them)."""

    def log_debug(self, msg: str, key_value_pairs: Any = ()) -> None: ...
    def log_info(self, msg: str, key_value_pairs: Any = ()) -> None: ...
    def log_warn(self, msg: str, key_value_pairs: Any = ()) -> None: ...
    def log_error(self, msg: str, key_value_pairs: Any = ()) -> None: ...


# Loggers whose records stay on stderr: the SDK's own (a failing API call it logs must not
# become another API call) and the libraries under it. The plugin's logger
# (mattermost_plugin.plugin.<id>) and any the plugin's code makes go to the server.
_STDERR_ONLY = ("mattermost_plugin.", "grpc", "asyncio", "concurrent", "urllib3")
_PLUGIN_LOGGERS = "mattermost_plugin.plugin."


def _stays_on_stderr(name: str) -> bool:
    if name.startswith(_PLUGIN_LOGGERS):
        return False
    return name == "mattermost_plugin" or name.startswith(_STDERR_ONLY)


class ServerLogHandler(logging.Handler):
    """Sends records to the server's log through the API once :meth:`open`; stderr before."""

    def __init__(self, fallback: logging.Handler, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.fallback = fallback
        self._api: LogAPI | None = None
        self._queue: queue.SimpleQueue[logging.LogRecord | None] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None

    def open(self, api: LogAPI) -> None:
        """From now on, records go through ``api`` (called when the server opens its API)."""
        if self._sender is not None:
            return
        self._api = api
        self._sender = threading.Thread(target=self._send_all, name="mmplug-log", daemon=True)
        self._sender.start()

    def close_api(self, timeout: float = 2.0) -> None:
        """Sends what is queued (within ``timeout``), then goes back to stderr."""
        sender, self._sender = self._sender, None
        if sender is None:
            return
        self._queue.put(None)
        sender.join(timeout)
        self._api = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._sender is None or _stays_on_stderr(record.name):
            self.fallback.handle(record)
            return
        # The message is formatted here, in the caller's thread, as logging does.
        try:
            record.msg, record.args = record.getMessage(), None
        except Exception:
            self.handleError(record)
            return
        self._queue.put(record)

    def _send_all(self) -> None:
        while (record := self._queue.get()) is not None:
            api = self._api
            if api is None:
                self.fallback.handle(record)
                continue
            try:
                send = {
                    "error": api.log_error,
                    "warn": api.log_warn,
                    "info": api.log_info,
                }.get(hclog_level(record.levelno), api.log_debug)
                send(record.getMessage(), _key_value_pairs(record))
            except Exception as e:  # the server is unreachable: keep the line all the same
                record.log_api_error = str(e)
                self.fallback.handle(record)


def _key_value_pairs(record: logging.LogRecord) -> list[str]:
    """What a Go plugin would pass as key/value pairs: the logger, `extra=` fields, and the
    exception's traceback (as strings, which every Go log field shows as written)."""
    pairs = ["logger", record.name]
    for key, value in vars(record).items():
        if key not in _STANDARD_ATTRS and not key.startswith("_") and not key.startswith("@"):
            pairs += [key, value if isinstance(value, str) else json.dumps(value, default=str)]
    if record.exc_info and record.exc_info[0] is not None:
        pairs += ["error", "".join(traceback.format_exception(*record.exc_info)).rstrip()]
    if record.stack_info:
        pairs += ["stack", record.stack_info]
    return pairs


def install(level: int = logging.INFO) -> ServerLogHandler:
    """Route the root logger (and so ``Plugin.logger``) to the server's log: hclog lines on
    stderr until :func:`open_server_log`, the API after.

    Existing root handlers are replaced: a stray ``StreamHandler`` to stdout would break
    the process contract. Idempotent.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = ServerLogHandler(HclogJSONHandler())
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler


def _installed() -> ServerLogHandler | None:
    for h in logging.getLogger().handlers:
        if isinstance(h, ServerLogHandler):
            return h
    return None


def open_server_log(api: LogAPI) -> None:
    """The server's API is open: the plugin's records go through it (if :func:`install` ran)."""
    handler = _installed()
    if handler is not None:
        handler.open(api)


def close_server_log() -> None:
    """The API is closing: send what is queued, then log to stderr again."""
    handler = _installed()
    if handler is not None:
        handler.close_api()
