"""The lane's frames: encoding, and a decoder shared by the asyncio connection and the
blocking client (docs/internals.md §8, "The lane").

No I/O here. The decoder owns the receive buffer so that both ends read straight into it
(``recv_into`` / ``asyncio.BufferedProtocol``): a fresh buffer per read costs more than the
whole rest of a call (transport study: 40 µs with asyncio's default Protocol, 22 µs without).
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

__all__ = [
    "CANCEL",
    "ERROR",
    "HEADER",
    "HEADER_SIZE",
    "HELLO",
    "HELLO_MAX_BODY",
    "MAX_BODY",
    "MAX_ERROR_MESSAGE",
    "MAX_QUEUED",
    "REQUEST",
    "RESPONSE",
    "ROLE_NAMES_HOOKS",
    "ROLE_SERVES_HOOKS",
    "VERSION",
    "Code",
    "Frame",
    "FrameDecoder",
    "Kind",
    "LaneError",
    "LaneProtocolError",
    "encode_answer",
    "encode_cancel",
    "encode_error",
    "encode_hello",
    "encode_request",
    "encode_response",
    "parse_error",
    "parse_hello",
]

# u32 body length, u8 kind, u8 flags, u16 method_length, u64 call id; little-endian.
HEADER = struct.Struct("<IBBHQ")
HEADER_SIZE = HEADER.size
_ERROR_CODE = struct.Struct("<I")

VERSION = 1
ROLE_SERVES_HOOKS = 0x01
# With ROLE_SERVES_HOOKS: serves only the hooks it names in its ServeHooks call.
ROLE_NAMES_HOOKS = 0x02
# As grpc::MAX_MESSAGE and the SDK's gRPC channel options: a body over it is read past.
MAX_BODY = 256 * 1024 * 1024
# Bytes a connection lets wait to be written before a writer's call fails.
MAX_QUEUED = 512 * 1024 * 1024
# A HELLO carries a version, roles and a token: anything big is not a HELLO.
HELLO_MAX_BODY = 4096
# An ERROR's message is for a log line; a handler's exception text can be anything.
MAX_ERROR_MESSAGE = 64 * 1024
# What the decoder's buffer goes back to after holding a big frame.
_BUFFER_SIZE = 64 * 1024


class Kind(enum.IntEnum):
    HELLO = 1
    REQUEST = 2
    RESPONSE = 3
    ERROR = 4
    CANCEL = 5


# The kinds as plain ints for the per-frame paths (an IntEnum member costs a lookup each use).
HELLO, REQUEST, RESPONSE, ERROR, CANCEL = 1, 2, 3, 4, 5


class Code(enum.IntEnum):
    """The gRPC status codes the lane sends itself; an ERROR frame may carry any."""

    CANCELLED = 1
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


class LaneError(Exception):
    """A call failed on the lane: an ERROR frame from the peer (its gRPC status code and
    message), or the lane itself (the connection lost, the time limit passed, a body over the
    limit). What the contract says about a call's outcome travels in the response message,
    never here."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        try:
            name = Code(self.code).name
        except ValueError:
            name = "code"
        return f"{self.message} ({name} {self.code})"


class LaneProtocolError(LaneError):
    """The peer broke a rule of the frame format; the connection is closed, since what
    follows cannot be trusted. ``rule`` says which."""

    def __init__(self, rule: str) -> None:
        super().__init__(Code.UNAVAILABLE, f"lane protocol violation by the peer: {rule}")
        self.rule = rule


class Frame(NamedTuple):
    """One decoded frame. ``body`` is None for a body over the limit, which the decoder reads
    past without keeping; ``size`` is the body's length as announced either way. ``method``
    is set for a REQUEST only, and is None there when the path is not UTF-8 (answered
    ERROR 12 without a handler seeing it) or the body was over the limit."""

    kind: int
    call_id: int
    method: str | None
    body: bytes | None
    size: int


def encode_hello(roles: int, token: bytes) -> bytes:
    return HEADER.pack(2 + len(token), HELLO, 0, 0, 0) + bytes((VERSION, roles)) + token


def encode_request(call_id: int, method: bytes, body: bytes) -> bytes:
    """The caller keeps ``method`` within 65535 bytes and ``body`` within its limit."""
    head = HEADER.pack(len(method) + len(body), REQUEST, 0, len(method), call_id)
    return b"".join((head, method, body))


def encode_response(call_id: int, body: bytes) -> bytes:
    return HEADER.pack(len(body), RESPONSE, 0, 0, call_id) + body


def encode_answer(call_id: int, method: str, answer: bytes, max_body: int) -> bytes:
    """The RESPONSE carrying a handler's ``answer`` to a request of ``method``, or the
    ERROR 8 that replaces it when it is over ``max_body``."""
    if len(answer) > max_body:
        return encode_error(
            call_id,
            Code.RESOURCE_EXHAUSTED,
            f"the response of {len(answer)} bytes from {method} is over the limit of "
            f"{max_body} bytes",
        )
    return encode_response(call_id, answer)


def encode_error(call_id: int, code: int, message: str) -> bytes:
    if not 0 <= code <= 0xFFFFFFFF:
        code = Code.INTERNAL
    text = message.encode("utf-8", "replace")
    if len(text) > MAX_ERROR_MESSAGE:  # cut on a character boundary
        text = text[:MAX_ERROR_MESSAGE].decode("utf-8", "ignore").encode()
    return HEADER.pack(4 + len(text), ERROR, 0, 0, call_id) + _ERROR_CODE.pack(code) + text


def encode_cancel(call_id: int) -> bytes:
    return HEADER.pack(0, CANCEL, 0, 0, call_id)


def parse_hello(body: bytes) -> tuple[int, int, bytes]:
    """(version, roles, token) of a HELLO body. Raises LaneProtocolError for a version
    other than 1 or roles other than bit 0 and bit 1 with it; the decoder has checked the
    size."""
    version, roles = body[0], body[1]
    if version != VERSION:
        raise LaneProtocolError(f"a HELLO of version {version} (this end speaks {VERSION})")
    if roles & ~(ROLE_SERVES_HOOKS | ROLE_NAMES_HOOKS) or (
        roles & ROLE_NAMES_HOOKS and not roles & ROLE_SERVES_HOOKS
    ):
        raise LaneProtocolError(
            f"a HELLO with roles {roles:#04x} (bits 0 and 1 are defined; 1 only with 0)"
        )
    return version, roles, body[2:]


def parse_error(body: bytes) -> LaneError:
    """The LaneError an ERROR body stands for; the decoder has checked it holds the code."""
    (code,) = _ERROR_CODE.unpack_from(body)
    return LaneError(code, body[4:].decode("utf-8", "replace"))


class FrameDecoder:
    """Splits the bytes of one connection into frames, enforcing the header rules.

    Reads go straight into ``buffer()``; ``consume(n)`` then returns the frames the ``n`` new
    bytes complete. A body over ``max_body`` is reported at once (a ``Frame`` with body None)
    and its bytes are dropped as they arrive, never held. A header that breaks a rule sets
    ``violation`` (the frames before it are still returned, they were sound) and ends
    decoding: the stream cannot be resynchronised after it, so the caller closes the
    connection. Each side's first frame is its HELLO, so the decoder requires a HELLO first
    and refuses any later one.
    """

    def __init__(self, max_body: int = MAX_BODY) -> None:
        self.max_body = max_body
        self._buf = bytearray(_BUFFER_SIZE)
        self._view = memoryview(self._buf)
        self._start = 0  # first byte not yet decoded
        self._end = 0  # end of the bytes read
        self._skip = 0  # bytes of an over-limit body still to drop
        self._hello_seen = False
        self.violation: LaneProtocolError | None = None

    def buffer(self) -> memoryview:
        """Where the next read goes: the free space after what has been read."""
        if self._end == len(self._buf):
            self._make_room()
        return self._view[self._end :]

    def partial(self) -> str | None:
        """What is missing of an incomplete frame, for the message when a connection ends
        inside one; None between frames."""
        live = self._end - self._start
        if self._skip:
            return f"{self._skip} bytes of an over-limit body missing"
        if live == 0:
            return None
        if live < HEADER_SIZE:
            return f"{live} of a 16-byte header received"
        (length,) = struct.unpack_from("<I", self._buf, self._start)
        return f"{live - HEADER_SIZE} of a {length}-byte body received"

    def consume(self, nbytes: int) -> list[Frame]:
        """The frames completed by ``nbytes`` new bytes in ``buffer()``."""
        self._end += nbytes
        if self.violation is not None:
            self._start = self._end = 0
            return []
        if self._skip:
            dropped = min(self._skip, self._end - self._start)
            self._skip -= dropped
            self._start += dropped
        frames: list[Frame] = []
        buf, view, end = self._buf, self._view, self._end
        start = self._start
        while end - start >= HEADER_SIZE:
            length, kind, flags, method_length, call_id = HEADER.unpack_from(buf, start)
            # Answers and requests take the short way; everything else is checked in full.
            if not (
                flags == 0
                and self._hello_seen
                and (
                    (kind == RESPONSE and method_length == 0)
                    or (kind == REQUEST and method_length <= length)
                )
            ):
                self.violation = self._broken_rule(length, kind, flags, method_length, call_id)
                if self.violation is not None:
                    start = end
                    break
            if length > self.max_body and kind != HELLO:
                frames.append(Frame(kind, call_id, None, None, length))
                start += HEADER_SIZE
                dropped = min(length, end - start)
                start += dropped
                self._skip = length - dropped
                continue
            stop = start + HEADER_SIZE + length
            if stop > end:
                break
            body_start = start + HEADER_SIZE
            method = None
            if kind == REQUEST:
                method_end = body_start + method_length
                try:
                    method = str(view[body_start:method_end], "utf-8")
                except UnicodeDecodeError:
                    method = None
                body_start = method_end
            elif kind == HELLO:
                self._hello_seen = True
            frames.append(Frame(kind, call_id, method, bytes(view[body_start:stop]), length))
            start = stop
        if start == end:
            start = self._end = 0
            if len(self._buf) > _BUFFER_SIZE:
                self._view.release()
                self._buf = bytearray(_BUFFER_SIZE)
                self._view = memoryview(self._buf)
        self._start = start
        return frames

    def _broken_rule(
        self, length: int, kind: int, flags: int, method_length: int, call_id: int
    ) -> LaneProtocolError | None:
        """The header rule this header breaks, if any. (A header is checked again while its
        frame is incomplete, so this records nothing.)"""
        if not HELLO <= kind <= CANCEL:
            return LaneProtocolError(f"unknown frame kind {kind}")
        name = Kind(kind).name
        if flags:
            return LaneProtocolError(f"flags {flags:#04x} on a {name} (none are defined)")
        if kind == REQUEST:
            if method_length > length:
                return LaneProtocolError(
                    f"a REQUEST's method_length {method_length} past its body of {length} bytes"
                )
        elif method_length:
            return LaneProtocolError(
                f"method_length {method_length} on a {name} (only a REQUEST has one)"
            )
        if kind == HELLO:
            if self._hello_seen:
                return LaneProtocolError("a second HELLO")
            if call_id:
                return LaneProtocolError(f"a HELLO with call id {call_id} (must be 0)")
            if length > HELLO_MAX_BODY:
                return LaneProtocolError(
                    f"a HELLO of {length} bytes (at most {HELLO_MAX_BODY} are allowed)"
                )
            if length < 2:
                return LaneProtocolError(f"a HELLO of {length} bytes (version and roles take 2)")
        elif not self._hello_seen:
            return LaneProtocolError(f"a {name} before HELLO")
        elif kind == CANCEL and length:
            return LaneProtocolError(f"a CANCEL with a body of {length} bytes (must be empty)")
        elif kind == ERROR and length < _ERROR_CODE.size:
            return LaneProtocolError(f"an ERROR of {length} bytes, too short for its 4-byte code")
        return None

    def _make_room(self) -> None:
        """Frees space at the end of the buffer: moves the incomplete frame to the front, or
        grows the buffer to fit a frame bigger than it."""
        live = self._end - self._start
        needed = live
        if live >= HEADER_SIZE:
            (length,) = struct.unpack_from("<I", self._buf, self._start)
            needed = HEADER_SIZE + length  # within max_body: bigger ones are skipped
        if needed <= len(self._buf) and self._start > 0:
            self._buf[:live] = self._view[self._start : self._end]
        else:
            grown = bytearray(max(needed, 2 * len(self._buf)))
            grown[:live] = self._view[self._start : self._end]
            self._view.release()
            self._buf = grown
            self._view = memoryview(grown)
        self._start, self._end = 0, live
