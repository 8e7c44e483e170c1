"""The lane on asyncio: one connection to the bridge that calls out and, if it has a handler,
serves the bridge's calls (hooks), many of each in flight.

Built on ``asyncio.BufferedProtocol``: the loop reads into the decoder's buffer, so no read
allocates (the default Protocol's fresh 256 KiB buffer per read nearly doubles a call's
cost). Answers resolve their caller's future from ``buffer_updated``; each request from the
bridge runs as a task of its own, so a CANCEL can cancel it and a slow handler holds up
nobody else.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import cast

from .frames import (
    CANCEL,
    ERROR,
    HELLO,
    MAX_BODY,
    MAX_QUEUED,
    REQUEST,
    RESPONSE,
    ROLE_SERVES_HOOKS,
    Code,
    FrameDecoder,
    LaneError,
    LaneProtocolError,
    encode_answer,
    encode_cancel,
    encode_error,
    encode_hello,
    encode_request,
    parse_error,
    parse_hello,
)

__all__ = ["Handler", "LaneConnection", "connect"]

log = logging.getLogger("mattermost_plugin.lane")

Handler = Callable[[str, bytes], Awaitable[bytes]]
"""Serves one call from the bridge: ``(method path, request message) -> response message``.
Raising ``LaneError`` answers ERROR with its code (12 for a method it does not serve); any
other exception answers ERROR 13 with its text."""

_MAX_METHOD = 0xFFFF


async def connect(
    path: str,
    token: str | bytes,
    *,
    handler: Handler | None = None,
    # A plain parameter, as for every lane call: the lane runs its own timer (ASYNC109).
    timeout: float | None = 10.0,
    max_body: int = MAX_BODY,
    max_queued: int = MAX_QUEUED,
) -> LaneConnection:
    """Connects to the bridge's lane socket and completes the HELLO exchange.

    With a ``handler`` the HELLO says this connection serves hooks, and the bridge may send
    it requests. Raises ``LaneError``: UNAVAILABLE when the socket cannot be reached or the
    bridge closes it before answering (which is how it refuses a wrong token),
    DEADLINE_EXCEEDED when no HELLO comes within ``timeout`` seconds.
    """
    loop = asyncio.get_running_loop()
    secret = token.encode() if isinstance(token, str) else token
    roles = ROLE_SERVES_HOOKS if handler is not None else 0
    conn = LaneConnection(
        loop, path, secret, roles, handler, max_body=max_body, max_queued=max_queued
    )
    try:
        await loop.create_unix_connection(lambda: conn, path)
    except OSError as e:
        raise LaneError(Code.UNAVAILABLE, f"cannot connect to the lane socket {path}: {e}") from e
    timer = None
    if timeout is not None:
        late = LaneError(
            Code.DEADLINE_EXCEEDED, f"no HELLO from the bridge on {path} within {timeout} s"
        )
        timer = loop.call_later(timeout, _fail_future, conn._hello, late)
    try:
        await conn._hello
    except BaseException:
        conn.abort()
        raise
    finally:
        if timer is not None:
            timer.cancel()
    return conn


class LaneConnection(asyncio.BufferedProtocol):
    """One lane connection; made by ``connect``.

    ``call`` sends a request and waits for its answer. Requests from the bridge go to the
    handler, one task each. Writes go straight to the transport; while the transport has
    paused writing (the bridge reads slower than we write), requests and responses wait
    their turn, and a write that would take what waits past ``max_queued`` bytes fails its
    call with RESOURCE_EXHAUSTED instead. Small control frames (CANCEL, ERROR) never wait.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        path: str,
        token: bytes,
        roles: int,
        handler: Handler | None,
        *,
        max_body: int = MAX_BODY,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._loop = loop
        self._path = path
        self._token = token
        self._roles = roles
        self._handler = handler
        self._max_body = max_body
        self._max_queued = max_queued
        self._decoder = FrameDecoder(max_body)
        self._transport: asyncio.Transport | None = None
        self._next_id = 1
        # Our calls waiting for an answer, by call id.
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        # The bridge's calls being served, by its call id: the handler's task; None while
        # that task takes its eager first step (see _on_request).
        self._serving: dict[int, asyncio.Task[None] | None] = {}
        self._paused = False
        self._write_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._waiting_bytes = 0
        # Why the connection closed (or is closing); None while it is open.
        self._close_reason: str | None = None
        self._close_error: LaneError | None = None
        self._hello: asyncio.Future[None] = loop.create_future()
        self._closed: asyncio.Future[None] = loop.create_future()
        self.peer_roles = 0

    # ----- the public side -----

    @property
    def closed(self) -> bool:
        return self._close_reason is not None

    @property
    def close_error(self) -> LaneError | None:
        """What closed the connection when it was not closed by this end: a
        ``LaneProtocolError`` naming the broken rule, or a ``LaneError`` for a lost peer."""
        return self._close_error

    async def call(
        self,
        method: str,
        body: bytes,
        # A timer per call (loop.call_at) costs less than asyncio.timeout's context.
        timeout: float | None = None,
    ) -> bytes:
        """Calls ``method`` on the bridge and returns its response message.

        Raises ``LaneError``: the bridge's ERROR as it sent it; DEADLINE_EXCEEDED after
        ``timeout`` seconds (the bridge is sent CANCEL); UNAVAILABLE when the connection is
        or gets closed; RESOURCE_EXHAUSTED for a body over the limit or a full write queue.
        A caller cancelled while waiting sends CANCEL. An answer that comes after either is
        dropped.
        """
        if self._close_reason is not None:
            raise LaneError(Code.UNAVAILABLE, self._close_reason)
        if len(body) > self._max_body:
            raise LaneError(
                Code.RESOURCE_EXHAUSTED,
                f"the request of {len(body)} bytes to {method} is over the limit of "
                f"{self._max_body} bytes",
            )
        method_bytes = method.encode()
        if len(method_bytes) > _MAX_METHOD:
            raise LaneError(
                Code.INVALID_ARGUMENT, f"a method path of {len(method_bytes)} bytes (max 65535)"
            )
        call_id = self._next_id
        self._next_id += 1
        frame = encode_request(call_id, method_bytes, body)
        loop = self._loop
        deadline = None if timeout is None else loop.time() + timeout
        transport = self._transport
        assert transport is not None
        if (
            self._paused
            or self._write_waiters
            or transport.get_write_buffer_size() + len(frame) > self._max_queued
        ):
            await self._wait_to_write(len(frame), deadline, timeout)
            if self._close_reason is not None:
                raise LaneError(Code.UNAVAILABLE, self._close_reason)
        answer: asyncio.Future[bytes] = loop.create_future()
        self._pending[call_id] = answer
        transport.write(frame)
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline, self._expire, call_id, timeout)
        try:
            return await answer
        except asyncio.CancelledError:
            if self._pending.pop(call_id, None) is not None:
                self._write_control(encode_cancel(call_id))
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def close(self) -> None:
        """Closes the connection after what is queued is written; pending calls fail with
        UNAVAILABLE and handlers still running are cancelled, now."""
        self._shut("the lane connection was closed by this end", None)
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Closes the connection at once, dropping what is queued."""
        self._shut("the lane connection was closed by this end", None)
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Returns once the socket is closed (by either end)."""
        await asyncio.shield(self._closed)

    # ----- asyncio.BufferedProtocol -----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's are not asyncio.Transport subclasses).
        self._transport = cast(asyncio.Transport, transport)
        self._transport.write(encode_hello(self._roles, self._token))

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._decoder.buffer()

    def buffer_updated(self, nbytes: int) -> None:
        frames = self._decoder.consume(nbytes)
        for kind, call_id, method, body, size in frames:
            if kind == RESPONSE:
                answer = self._pending.pop(call_id, None)
                if answer is None or answer.done():
                    continue  # cancelled, timed out or never sent: dropped
                if body is None:
                    answer.set_exception(self._oversized_answer(size))
                else:
                    answer.set_result(body)
            elif kind == REQUEST:
                self._on_request(call_id, method, body, size)
            elif kind == ERROR:
                answer = self._pending.pop(call_id, None)
                if answer is None or answer.done():
                    continue
                if body is None:
                    answer.set_exception(self._oversized_answer(size))
                else:
                    answer.set_exception(parse_error(body))
            elif kind == CANCEL:
                task = self._serving.pop(call_id, None)
                if task is not None:
                    task.cancel()
            elif kind == HELLO:
                assert body is not None  # a HELLO is never over the limit
                self._on_hello(body)
            if self._close_reason is not None:
                return
        if self._decoder.violation is not None:
            self._violation(self._decoder.violation)

    def eof_received(self) -> bool | None:
        partial = self._decoder.partial()
        if partial is not None:
            error = LaneProtocolError(f"the connection ended inside a frame ({partial})")
            log.error("lane %s: %s", self._path, error.rule)
            self._shut(f"the lane connection was closed: {error.rule}", error)
        return None  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is None:
            message = "the bridge closed the lane connection"
        else:
            message = f"the lane connection was lost: {exc}"
        if not self._hello.done():
            message += " before its HELLO (the bridge refuses a wrong token so)"
        self._shut(message, LaneError(Code.UNAVAILABLE, message))
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        # Every waiter is let go: each writes once it runs, even if the transport pauses
        # again meanwhile. What they carry was counted against max_queued when they queued.
        while self._write_waiters:
            waiter = self._write_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # ----- internals -----

    def _on_hello(self, body: bytes) -> None:
        try:
            _, roles, token = parse_hello(body)
            if token:
                raise LaneProtocolError("a HELLO with a token from the bridge")
        except LaneProtocolError as e:
            self._violation(e)
            return
        self.peer_roles = roles
        if not self._hello.done():
            self._hello.set_result(None)

    def _on_request(self, call_id: int, method: str | None, body: bytes | None, size: int) -> None:
        if call_id in self._serving:
            self._violation(LaneProtocolError(f"a REQUEST with call id {call_id}, in flight"))
            return
        if body is None:
            self._write_control(
                encode_error(
                    call_id,
                    Code.RESOURCE_EXHAUSTED,
                    f"a request of {size} bytes is over the limit of {self._max_body} bytes "
                    "and was dropped unread",
                )
            )
            return
        if method is None:
            self._write_control(
                encode_error(call_id, Code.UNIMPLEMENTED, "a method path that is not UTF-8")
            )
            return
        if self._handler is None:
            self._write_control(
                encode_error(
                    call_id,
                    Code.UNIMPLEMENTED,
                    f"{method}: this lane connection serves no calls (its HELLO said so)",
                )
            )
            return
        serve = self._serve(call_id, method, body)
        if sys.version_info >= (3, 12):
            # The handler's first step runs now, inside its task (an eager start): most hooks
            # answer in it, with no turn of the loop to wait for, and asyncio.current_task(),
            # asyncio.timeout() and TaskGroup work there as in any task. (Before 3.12 there is
            # no eager start, and a first step run outside a task breaks those three.)
            self._serving[call_id] = None
            task = asyncio.Task(serve, loop=self._loop, eager_start=True)
            if not task.done() and call_id in self._serving:
                self._serving[call_id] = task
            return
        self._serving[call_id] = self._loop.create_task(serve)

    async def _serve(self, call_id: int, method: str, body: bytes) -> None:
        """Runs the handler for one request and answers it, unless the bridge withdrew it
        (CANCEL) or the connection closed: then nothing is sent."""
        assert self._handler is not None
        try:
            frame = encode_answer(
                call_id, method, await self._handler(method, body), self._max_body
            )
        except asyncio.CancelledError:
            if self._stop_serving(call_id):
                # Not the bridge's CANCEL nor a closed connection (both unregister the
                # call first): the handler raised it itself, or the loop is shutting down.
                self._write_control(
                    encode_error(call_id, Code.CANCELLED, f"the handler of {method} was cancelled")
                )
            raise
        except LaneError as e:
            frame = encode_error(call_id, e.code, e.message)
        except Exception as e:
            log.exception("lane: the handler of %s raised", method)
            frame = encode_error(call_id, Code.INTERNAL, f"{type(e).__name__}: {e}")
        if call_id not in self._serving:
            return  # withdrawn after the handler finished
        try:
            if self._must_wait(len(frame)):
                await self._wait_to_write(len(frame), None, None)
        except LaneError as e:
            frame = encode_error(call_id, e.code, e.message)
        except asyncio.CancelledError:
            self._serving.pop(call_id, None)
            raise
        if self._stop_serving(call_id) and self._close_reason is None:
            assert self._transport is not None
            self._transport.write(frame)

    def _stop_serving(self, call_id: int) -> bool:
        """Unregisters a call being served; False when it was not (withdrawn, or closed)."""
        return self._serving.pop(call_id, _NOT_SERVED) is not _NOT_SERVED

    def _must_wait(self, size: int) -> bool:
        assert self._transport is not None
        return (
            self._paused
            or bool(self._write_waiters)
            or self._transport.get_write_buffer_size() + size > self._max_queued
        )

    async def _wait_to_write(
        self, size: int, deadline: float | None, time_limit: float | None
    ) -> None:
        """Waits until the transport takes writes again. Raises RESOURCE_EXHAUSTED at once
        when what waits would pass max_queued, DEADLINE_EXCEEDED at the deadline,
        UNAVAILABLE when the connection closes meanwhile."""
        assert self._transport is not None
        queued = self._transport.get_write_buffer_size() + self._waiting_bytes
        if queued + size > self._max_queued:
            raise LaneError(
                Code.RESOURCE_EXHAUSTED,
                f"{size} more bytes would take the lane's write queue ({queued} bytes, the "
                f"bridge is not reading) past its bound of {self._max_queued} bytes",
            )
        if not self._paused and not self._write_waiters:
            return
        loop = self._loop
        waiter: asyncio.Future[None] = loop.create_future()
        self._write_waiters.append(waiter)
        self._waiting_bytes += size
        timer = None
        if deadline is not None:
            error = LaneError(
                Code.DEADLINE_EXCEEDED,
                f"no turn to write within {time_limit} s (the bridge is not reading)",
            )
            timer = loop.call_at(deadline, _fail_future, waiter, error)
        try:
            await waiter
        finally:
            self._waiting_bytes -= size
            if timer is not None:
                timer.cancel()
            if not waiter.done() or waiter.cancelled() or waiter.exception() is not None:
                # Not let go by resume_writing, so maybe still queued.
                with contextlib.suppress(ValueError):
                    self._write_waiters.remove(waiter)

    def _expire(self, call_id: int, timeout: float | None) -> None:
        answer = self._pending.pop(call_id, None)
        if answer is None or answer.done():
            return
        answer.set_exception(LaneError(Code.DEADLINE_EXCEEDED, f"no answer within {timeout} s"))
        self._write_control(encode_cancel(call_id))

    def _write_control(self, frame: bytes) -> None:
        if self._close_reason is None and self._transport is not None:
            self._transport.write(frame)

    def _oversized_answer(self, size: int) -> LaneError:
        return LaneError(
            Code.RESOURCE_EXHAUSTED,
            f"the answer was {size} bytes, over the limit of {self._max_body} bytes, and was "
            "dropped unread",
        )

    def _violation(self, error: LaneProtocolError) -> None:
        log.error("lane %s: closing the connection: %s", self._path, error.rule)
        self._shut(f"the lane connection was closed: {error.rule}", error)
        if self._transport is not None:
            self._transport.abort()

    def _shut(self, reason: str, error: LaneError | None) -> None:
        """Fails what waits on the connection with UNAVAILABLE (``reason``) and cancels the
        handlers; the first reason given is the one kept."""
        if self._close_reason is not None:
            return
        self._close_reason = reason
        self._close_error = error
        if not self._hello.done():
            self._hello.set_exception(error or LaneError(Code.UNAVAILABLE, reason))
            self._hello.exception()  # retrieved here: connect may be gone already
        pending, self._pending = self._pending, {}
        for answer in pending.values():
            if not answer.done():
                answer.set_exception(LaneError(Code.UNAVAILABLE, reason))
        waiters, self._write_waiters = self._write_waiters, collections.deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(LaneError(Code.UNAVAILABLE, reason))
        serving, self._serving = self._serving, {}
        for task in serving.values():
            if task is not None:
                task.cancel()


_NOT_SERVED = object()


def _fail_future(future: asyncio.Future[None], error: BaseException) -> None:
    if not future.done():
        future.set_exception(error)
