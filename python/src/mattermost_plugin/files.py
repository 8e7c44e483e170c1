"""The byte streams of the ``FileWillBeUploaded`` hook.

The handler gets ``(context, info, file, output)`` as in Go: ``file`` is an ``UploadReader``
over the uploaded bytes as they arrive from the server (``read()`` in sync handlers, ``await
file.aread()`` in async ones), ``output`` an ``UploadWriter`` whose ``write()`` sends
replacement bytes to the server as they are written. It returns ``(info, reason)``: a
changed ``FileInfo`` or None, and a non-empty reason to reject the upload. Writing nothing
keeps the original bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf.message import Message

from .http import Outbox

__all__ = ["UploadReader", "UploadWriter"]

CHUNK = 64 * 1024


class UploadReader:
    """The uploaded file, read as it arrives. Never holds more than a few chunks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, parts: AsyncIterator[Any]) -> None:
        self._loop = loop
        self._parts = parts
        self._buffer = bytearray()
        self._eof = False
        self._lock = asyncio.Lock()

    async def _fill(self) -> bool:
        """Pull the next chunk; False at the end of the upload."""
        if self._eof:
            return False
        async for part in self._parts:
            if part.WhichOneof("part") == "chunk":
                self._buffer += part.chunk
                return True
        self._eof = True
        return False

    async def aread(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all the rest when ``n`` < 0); b"" at the end."""
        async with self._lock:
            if n < 0:
                while await self._fill():
                    pass
                out = bytes(self._buffer)
                self._buffer.clear()
                return out
            while len(self._buffer) < n and await self._fill():
                pass
            out = bytes(self._buffer[:n])
            del self._buffer[:n]
            return out

    def read(self, n: int = -1) -> bytes:
        """Blocking ``aread`` for sync handlers (which run in worker threads)."""
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            raise RuntimeError("async handlers must use `await file.aread()`, not file.read()")
        return asyncio.run_coroutine_threadsafe(self.aread(n), self._loop).result()

    def __iter__(self) -> Any:
        while chunk := self.read(CHUNK):
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.aread(CHUNK):
            yield chunk


class UploadWriter:
    """Replacement bytes for the uploaded file, sent to the server as they are written."""

    def __init__(self, outbox: Outbox, part_cls: type[Message]) -> None:
        self._outbox = outbox
        self._part_cls = part_cls
        self.written = 0

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(bytes(data))
        for start in range(0, len(view), CHUNK):
            piece = bytes(view[start : start + CHUNK])
            part = self._part_cls()
            part.chunk = piece  # type: ignore[attr-defined]
            self._outbox.put(part, len(piece))
        self.written += len(view)
        return len(view)
