"""The lane for sync code: a blocking client that many threads call at once.

It has its own connection (its HELLO claims no role: it only calls). No thread of its own
reads the socket: the caller that finds nobody reading reads itself (the leader) and hands
the other callers their answers as they come; when its own answer is in, it steps down and
wakes a waiting caller to read next. A lone caller thus sends, reads and returns on its own
thread, with no hand-off (transport study: 16 µs a call, against 46 µs for a reader thread
that hands work over).

The socket is non-blocking and every wait is a ``poll`` bounded by the waiting caller's own
deadline, so a peer that stops reading or answering never holds a caller past its timeout.
A frame whose writer runs out of time part-way is finished by the next write (with a CANCEL
after it), so the stream stays whole.
"""

from __future__ import annotations

import contextlib
import logging
import math
import select
import socket
import threading
import time
from types import TracebackType
from typing import ClassVar

from .frames import (
    ERROR,
    HELLO,
    MAX_BODY,
    MAX_QUEUED,
    REQUEST,
    RESPONSE,
    Code,
    Frame,
    FrameDecoder,
    LaneError,
    LaneProtocolError,
    encode_cancel,
    encode_error,
    encode_hello,
    encode_request,
    parse_error,
    parse_hello,
)

__all__ = ["BlockingLaneClient"]

log = logging.getLogger("mattermost_plugin.lane")

_MAX_METHOD = 0xFFFF


class _Slot:
    """One call waiting for its answer. ``wake`` is held from the start; releasing it wakes
    the caller, for its answer or to take over reading."""

    __slots__ = ("answer", "error", "wake")

    def __init__(self) -> None:
        self.answer: bytes | None = None
        self.error: LaneError | None = None
        self.wake = threading.Lock()
        self.wake.acquire()


class _ConnectionEnded(Exception):
    """The socket closed or failed under a read; the message says how."""


def _connect_socket(path: str, timeout: float | None) -> socket.socket:
    """A blocking unix socket connected to ``path``; UNAVAILABLE when it cannot be.

    Blocking, so that a read without a deadline is one ``recv`` (a ``poll`` before it cost
    the threaded connection a system call per request); every other read and every write
    passes ``MSG_DONTWAIT`` and polls for its deadline itself."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise LaneError(Code.UNAVAILABLE, f"cannot connect to the lane socket {path}: {e}") from e
    sock.setblocking(True)
    return sock


class BlockingLaneClient:
    """A lane connection for calls from sync code, safe to share between threads; made by
    ``BlockingLaneClient.connect``."""

    # What its HELLO says it serves (a subclass that serves hooks says so).
    _ROLES: ClassVar[int] = 0

    @classmethod
    def connect(
        cls,
        path: str,
        token: str | bytes,
        *,
        timeout: float | None = 10.0,
        max_body: int = MAX_BODY,
        max_queued: int = MAX_QUEUED,
    ) -> BlockingLaneClient:
        """Connects to the bridge's lane socket and completes the HELLO exchange.

        Raises ``LaneError``: UNAVAILABLE when the socket cannot be reached or the bridge
        closes it before answering (which is how it refuses a wrong token),
        DEADLINE_EXCEEDED when no HELLO comes within ``timeout`` seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        sock = _connect_socket(path, timeout)
        client = cls(sock, path, max_body=max_body, max_queued=max_queued)
        try:
            secret = token.encode() if isinstance(token, str) else token
            client._handshake(secret, deadline, timeout)
        except BaseException:
            client.close()
            raise
        return client

    def __init__(
        self,
        sock: socket.socket,
        path: str,
        *,
        max_body: int = MAX_BODY,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._sock = sock
        self._path = path
        self._max_body = max_body
        self._max_queued = max_queued
        self._decoder = FrameDecoder(max_body)
        # Only the leader polls for reading, only the write lock's holder for writing: a
        # poll object refuses to be polled from two threads at once.
        self._read_poll = select.poll()
        self._read_poll.register(sock, select.POLLIN)
        self._write_poll = select.poll()
        self._write_poll.register(sock, select.POLLOUT)
        # Guards _pending, _reading, _next_id, _unsent, _waiting_bytes and the close state.
        self._state = threading.Lock()
        # Held while a frame is being written, so frames never interleave.
        self._write_lock = threading.Lock()
        self._pending: dict[int, _Slot] = {}
        self._reading = False
        self._next_id = 1
        # Bytes that must go out before any new frame: the rest of a frame whose writer ran
        # out of time, CANCELs and ERRORs that could not be written at once.
        self._unsent = bytearray()
        # Bytes of the frames whose writers wait for the write lock.
        self._waiting_bytes = 0
        self._hello_done = False
        self._broken: LaneProtocolError | None = None
        self._close_reason: str | None = None
        self._close_error: LaneError | None = None
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

    def call(self, method: str, body: bytes, timeout: float | None = None) -> bytes:
        """Calls ``method`` on the bridge and returns its response message; blocks the
        calling thread only.

        Raises ``LaneError``: the bridge's ERROR as it sent it; DEADLINE_EXCEEDED after
        ``timeout`` seconds (the bridge is sent CANCEL); UNAVAILABLE when the connection is
        or gets closed; RESOURCE_EXHAUSTED for a body over the limit or a full write queue.
        An answer that comes after the timeout is dropped.
        """
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
        deadline = None if timeout is None else time.monotonic() + timeout
        slot = _Slot()
        with self._state:
            if self._close_reason is not None:
                raise LaneError(Code.UNAVAILABLE, self._close_reason)
            call_id = self._next_id
            self._next_id += 1
            self._pending[call_id] = slot
        try:
            try:
                self._write(encode_request(call_id, method_bytes, body), call_id, deadline)
            except LaneError:
                with self._state:
                    self._pending.pop(call_id, None)
                raise
            return self._wait(slot, call_id, deadline, timeout)
        finally:
            # A caller that leaves while nobody reads may hold the turn to read: pass it on.
            if not self._reading and self._pending:
                with self._state:
                    if not self._reading:
                        self._wake_one(exclude=slot)

    def close(self) -> None:
        """Closes the connection; calls still waiting fail with UNAVAILABLE. Call it once
        the threads using the client are done with it."""
        self._shutdown("the lane connection was closed by this end", None)
        self._sock.close()

    def __enter__(self) -> BlockingLaneClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ----- waiting and reading -----

    def _wait(
        self, slot: _Slot, call_id: int, deadline: float | None, timeout: float | None
    ) -> bytes:
        """Waits for the call's answer: reads the socket when nobody else does, else sleeps
        until the reader hands over the answer or the turn to read."""
        while True:
            with self._state:
                done = slot.answer is not None or slot.error is not None
                lead = not done and not self._reading
                if lead:
                    self._reading = True
            if done:
                break
            if lead:
                self._lead(slot, deadline)
                if slot.answer is not None or slot.error is not None:
                    continue
                # Else the deadline passed while this caller read.
            elif deadline is None:
                slot.wake.acquire()
                continue
            else:
                wait = deadline - time.monotonic()
                if wait > 0 and slot.wake.acquire(timeout=wait):
                    continue
            with self._state:
                withdrawn = self._pending.pop(call_id, None) is not None
            if withdrawn:
                self._queue_control(encode_cancel(call_id))
                raise LaneError(Code.DEADLINE_EXCEEDED, f"no answer within {timeout} s")
            # Answered (or failed) just now: the next turn of the loop returns it.
        if slot.error is not None:
            raise slot.error
        assert slot.answer is not None
        return slot.answer

    def _lead(self, slot: _Slot, deadline: float | None) -> None:
        """Reads and hands out answers until this caller's is in or its deadline passes;
        then lets another waiting caller read."""
        try:
            while slot.answer is None and slot.error is None:
                frames = self._read(deadline)
                if frames is None:
                    return  # the deadline: _wait withdraws the call
                self._dispatch(frames)
                if self._broken is not None:
                    self._violation(self._broken)
        except LaneProtocolError as e:
            self._violation(e)
        except _ConnectionEnded as e:
            self._shutdown(str(e), LaneError(Code.UNAVAILABLE, str(e)))
        finally:
            with self._state:
                self._reading = False
                self._wake_one(exclude=slot)

    def _read(self, deadline: float | None) -> list[Frame] | None:
        """The frames of the next bytes to arrive ([] when they complete none); None when
        the deadline passes first. Raises _ConnectionEnded, or LaneProtocolError for a
        connection that ends inside a frame."""
        decoder = self._decoder
        while True:
            try:
                if deadline is None:
                    n = self._sock.recv_into(decoder.buffer())  # blocks (_connect_socket)
                else:
                    wait = deadline - time.monotonic()
                    if wait <= 0:
                        return None
                    if not self._read_poll.poll(math.ceil(wait * 1000)):
                        continue
                    n = self._sock.recv_into(decoder.buffer(), 0, socket.MSG_DONTWAIT)
            except BlockingIOError:  # MSG_DONTWAIT after a poll that said readable
                continue
            except OSError as e:
                raise _ConnectionEnded(f"the lane connection was lost: {e}") from e
            if n == 0:
                partial = decoder.partial()
                if partial is not None:
                    raise LaneProtocolError(f"the connection ended inside a frame ({partial})")
                raise _ConnectionEnded("the bridge closed the lane connection")
            return decoder.consume(n)

    def _dispatch(self, frames: list[Frame]) -> None:
        replies: list[bytes] = []
        with self._state:
            for kind, call_id, method, body, size in frames:
                if kind in (RESPONSE, ERROR):
                    slot = self._pending.pop(call_id, None)
                    if slot is None:
                        continue  # timed out or never sent: dropped
                    if body is None:
                        slot.error = LaneError(
                            Code.RESOURCE_EXHAUSTED,
                            f"the answer was {size} bytes, over the limit of {self._max_body} "
                            "bytes, and was dropped unread",
                        )
                    elif kind == RESPONSE:
                        slot.answer = body
                    else:
                        slot.error = parse_error(body)
                    if slot.wake.locked():
                        slot.wake.release()
                elif kind == REQUEST:
                    reply = self._on_request(call_id, method, body, size)
                    if reply is not None:
                        replies.append(reply)
                elif kind == HELLO:
                    assert body is not None  # a HELLO is never over the limit
                    self._on_hello(body)
                else:  # CANCEL
                    self._on_cancel(call_id)
        if self._broken is None and self._decoder.violation is not None:
            self._broken = self._decoder.violation
        for reply in replies:
            self._queue_control(reply)

    def _on_request(
        self, call_id: int, method: str | None, body: bytes | None, size: int
    ) -> bytes | None:
        """A request from the bridge, with ``_state`` held: the ERROR frame to answer it
        with, or None when it is taken (a subclass that serves hooks takes them)."""
        if body is None:
            return encode_error(
                call_id,
                Code.RESOURCE_EXHAUSTED,
                f"a request of {size} bytes is over the limit of {self._max_body} bytes and "
                "was dropped unread",
            )
        if method is None:
            return encode_error(call_id, Code.UNIMPLEMENTED, "a method path that is not UTF-8")
        return encode_error(call_id, Code.UNIMPLEMENTED, f"{method}: this connection serves none")

    def _on_cancel(self, call_id: int) -> None:
        """The bridge withdrew its request ``call_id``, with ``_state`` held. This end
        serves none, so there is nothing to withdraw."""

    def _on_hello(self, body: bytes) -> None:
        try:
            if self._hello_done:
                raise LaneProtocolError("a second HELLO")
            _, roles, token = parse_hello(body)
            if token:
                raise LaneProtocolError("a HELLO with a token from the bridge")
        except LaneProtocolError as e:
            self._broken = self._broken or e
            return
        self.peer_roles = roles
        self._hello_done = True

    def _wake_one(self, exclude: _Slot) -> None:
        """Gives the turn to read to one waiting caller (call with _state held)."""
        for slot in self._pending.values():
            if slot is exclude:
                continue
            if slot.wake.locked():
                slot.wake.release()
            return

    def _handshake(self, token: bytes, deadline: float | None, timeout: float | None) -> None:
        self._write(encode_hello(self._ROLES, token), None, deadline)
        try:
            while not self._hello_done:
                frames = self._read(deadline)
                if frames is None:
                    raise LaneError(
                        Code.DEADLINE_EXCEEDED,
                        f"no HELLO from the bridge on {self._path} within {timeout} s",
                    )
                self._dispatch(frames)
                if self._broken is not None:
                    self._violation(self._broken)
                    raise self._broken
        except LaneProtocolError as e:
            self._violation(e)
            raise
        except _ConnectionEnded as e:
            message = f"{e} before its HELLO (the bridge refuses a wrong token so)"
            self._shutdown(message, LaneError(Code.UNAVAILABLE, message))
            raise LaneError(Code.UNAVAILABLE, message) from None

    # ----- writing -----

    def _write(self, frame: bytes, call_id: int | None, deadline: float | None) -> None:
        """Writes one frame whole, after what is unsent. Raises RESOURCE_EXHAUSTED when the
        frames waiting to be written would pass max_queued, DEADLINE_EXCEEDED when the
        deadline passes first (a frame cut short is finished by the next write, with a
        CANCEL of ``call_id`` after it), UNAVAILABLE when the connection is closed."""
        write_lock = self._write_lock
        if not write_lock.acquire(blocking=False):
            size = len(frame)
            with self._state:
                queued = self._waiting_bytes + len(self._unsent)
                if queued + size > self._max_queued:
                    raise LaneError(
                        Code.RESOURCE_EXHAUSTED,
                        f"{size} more bytes would take the lane's write queue ({queued} bytes, "
                        f"the bridge is not reading) past its bound of {self._max_queued} bytes",
                    )
                self._waiting_bytes += size
            try:
                wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
                if not write_lock.acquire(timeout=wait):
                    raise LaneError(
                        Code.DEADLINE_EXCEEDED,
                        "no turn to write in time (the bridge is not reading)",
                    )
            finally:
                with self._state:
                    self._waiting_bytes -= size
        try:
            if self._close_reason is not None:
                raise LaneError(Code.UNAVAILABLE, self._close_reason)
            head: bytes | bytearray = b""
            if self._unsent:
                with self._state:
                    head, self._unsent = self._unsent, bytearray()
            data = head + frame if head else frame
            sent = self._send(data, deadline)
            if sent < len(data):
                if sent < len(head):
                    rest = data[sent : len(head)]  # this frame never started: dropped
                else:
                    rest = data[sent:]
                    if call_id is not None:
                        rest += encode_cancel(call_id)
                with self._state:
                    self._unsent[0:0] = rest
                raise LaneError(
                    Code.DEADLINE_EXCEEDED,
                    "the request could not be written in time (the bridge is not reading)",
                )
        finally:
            write_lock.release()
            if self._unsent:
                self._flush_unsent()

    def _send(self, data: bytes | bytearray, deadline: float | None) -> int:
        """Sends what of ``data`` the deadline allows; the bytes sent."""
        sock = self._sock
        total = len(data)
        sent = 0
        view = None
        while True:
            try:
                sent += sock.send(data if view is None else view[sent:], socket.MSG_DONTWAIT)
            except BlockingIOError:
                pass
            except OSError as e:
                self._shutdown(
                    f"the lane connection was lost: {e}",
                    LaneError(Code.UNAVAILABLE, f"the lane connection was lost: {e}"),
                )
                raise LaneError(Code.UNAVAILABLE, f"the lane connection was lost: {e}") from e
            if sent == total:
                return sent
            if view is None:
                view = memoryview(data)
            if deadline is None:
                self._write_poll.poll()
            else:
                wait = deadline - time.monotonic()
                if wait <= 0:
                    return sent
                self._write_poll.poll(math.ceil(wait * 1000))

    def _queue_control(self, frame: bytes) -> None:
        """Sends a CANCEL or an ERROR without waiting: what cannot go now goes out ahead of
        the next frame."""
        with self._state:
            if self._close_reason is not None:
                return
            self._unsent += frame
        self._flush_unsent()

    def _flush_unsent(self) -> None:
        """Writes what is unsent as far as the socket takes it now, unless a writer holds
        the write lock (it sends the rest itself before it lets go)."""
        while self._unsent and self._write_lock.acquire(blocking=False):
            try:
                with self._state:
                    data, self._unsent = self._unsent, bytearray()
                try:
                    sent = self._send(data, 0.0)
                except LaneError:
                    return  # the connection is gone, and with it what was to be sent
                if sent < len(data):
                    with self._state:
                        self._unsent[0:0] = data[sent:]
                    return  # the socket is full: the next write sends the rest
            finally:
                self._write_lock.release()

    # ----- closing -----

    def _violation(self, error: LaneProtocolError) -> None:
        log.error("lane %s: closing the connection: %s", self._path, error.rule)
        self._shutdown(f"the lane connection was closed: {error.rule}", error)

    def _shutdown(self, reason: str, error: LaneError | None) -> None:
        """Fails every waiting call with UNAVAILABLE (``reason``) and shuts the socket down,
        which wakes whoever polls it; the first reason given is the one kept."""
        with self._state:
            if self._close_reason is not None:
                return
            self._close_reason = reason
            self._close_error = error
            pending, self._pending = self._pending, {}
            for slot in pending.values():
                slot.error = LaneError(Code.UNAVAILABLE, reason)
                if slot.wake.locked():
                    slot.wake.release()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
