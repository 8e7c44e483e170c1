"""A ``logging`` handler that writes hclog JSON lines to stderr.

The bridge reads Python's stderr line by line and forwards each hclog JSON entry to the
server log with its level and key/value pairs, the way go-plugin forwards a Go plugin's
logs. stdout is never used: the process contract reserves it.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import sys
import traceback
from typing import Any, TextIO

__all__ = ["HclogJSONHandler", "hclog_level", "install"]

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
    dt = datetime.datetime.fromtimestamp(created, tz=datetime.UTC).astimezone()
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


def install(level: int = logging.INFO) -> HclogJSONHandler:
    """Route the root logger (and so ``Plugin.logger``) to an hclog handler on stderr.

    Existing root handlers are replaced: a stray ``StreamHandler`` to stdout would break
    the process contract. Idempotent.
    """
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = HclogJSONHandler()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    return handler
