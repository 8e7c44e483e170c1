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

from ._chunks import CHUNK, ChunkReader
from .http import Outbox

__all__ = ["ChunkReader", "UploadReader", "UploadWriter"]


class UploadReader(ChunkReader):
    """The uploaded file of ``FileWillBeUploaded``, read as it arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop, parts: AsyncIterator[Any]) -> None:
        super().__init__(loop, parts, _upload_chunk)


def _upload_chunk(part: Any) -> bytes | None:
    return bytes(part.chunk) if part.WhichOneof("part") == "chunk" else b""


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
