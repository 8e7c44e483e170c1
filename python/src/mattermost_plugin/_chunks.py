"""Bytes that arrive as gRPC stream parts (request bodies, uploads), read as they arrive.

Shared by ``http`` (ServeHTTP request bodies) and ``files`` (FileWillBeUploaded uploads).
The reader pulls the next part from the stream only when the handler asks for more bytes, so
gRPC's flow control holds the sender back: a slow handler never makes a body pile up in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

__all__ = ["CHUNK", "ChunkReader"]

CHUNK = 64 * 1024


class ChunkReader:
    """Bytes that arrive as stream parts, read as they arrive; never holds more than a few
    chunks. ``chunk_of(part)`` gives a part's bytes, or None for a part that ends the bytes
    (the end of the stream ends them too)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        parts: AsyncIterator[Any] | None,
        chunk_of: Callable[[Any], bytes | None],
    ) -> None:
        self._loop = loop
        self._parts = parts
        self._chunk_of = chunk_of
        self._buffer = bytearray()
        self._eof = parts is None
        self._lock = asyncio.Lock()

    async def _fill(self) -> bool:
        """Pull the next chunk; False at the end of the bytes."""
        if self._eof or self._parts is None:
            return False
        async for part in self._parts:
            chunk = self._chunk_of(part)
            if chunk is None:
                break
            if chunk:
                self._buffer += chunk
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

    async def aread1(self, n: int = CHUNK) -> bytes:
        """Up to ``n`` bytes of what has arrived, waiting only if nothing has: for
        processing pieces as soon as they come. b"" at the end."""
        async with self._lock:
            if not self._buffer:
                await self._fill()
            out = bytes(self._buffer[:n])
            del self._buffer[:n]
            return out

    async def prefetch(self, limit: int) -> None:
        """Pull parts until the end of the bytes or until more than ``limit`` bytes wait;
        nothing is consumed (readers still get every byte)."""
        async with self._lock:
            while len(self._buffer) <= limit and await self._fill():
                pass

    def take_if_complete(self) -> bytes | None:
        """All the remaining bytes when every part has arrived (nothing left to wait for),
        else None. Never blocks: async handlers may call it on the event loop."""
        if not self._eof:
            return None
        out = bytes(self._buffer)
        self._buffer.clear()
        return out

    def read1(self, n: int = CHUNK) -> bytes:
        """Blocking ``aread1`` for sync handlers."""
        return self._blocking(self.aread1(n))

    def read(self, n: int = -1) -> bytes:
        """Blocking ``aread`` for sync handlers (which run in worker threads)."""
        return self._blocking(self.aread(n))

    def _blocking(self, coro: Any) -> bytes:
        try:
            on_loop = asyncio.get_running_loop() is self._loop
        except RuntimeError:
            on_loop = False
        if on_loop:
            coro.close()
            raise RuntimeError(
                "async handlers must use the awaitable readers (aread, async for), not the "
                "blocking ones"
            )
        result: bytes = asyncio.run_coroutine_threadsafe(coro, self._loop).result()
        return result

    def __iter__(self) -> Iterator[bytes]:
        while chunk := self.read1(CHUNK):
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.aread1(CHUNK):
            yield chunk
