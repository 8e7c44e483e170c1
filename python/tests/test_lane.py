"""The lane's frames (mattermost_plugin._lane.frames), held to docs/internals.md (§8, "The
lane"): the header is written out here again from the spec rather than imported.
"""

from __future__ import annotations

import struct

import pytest

from mattermost_plugin._lane.frames import FrameDecoder, encode_error, encode_request

pytestmark = pytest.mark.timeout(20)

HDR = struct.Struct("<IBBHQ")
HELLO, REQUEST, RESPONSE, ERROR, CANCEL = 1, 2, 3, 4, 5


def frame(kind: int, call_id: int, body: bytes = b"", method: bytes = b"") -> bytes:
    return HDR.pack(len(method) + len(body), kind, 0, len(method), call_id) + method + body


def error_body(code: int, message: str) -> bytes:
    return struct.pack("<I", code) + message.encode()


# ============================== frames ==============================


def test_frames_are_laid_out_as_the_spec_says() -> None:
    out = encode_request(7, b"/s/M", b"body")
    assert out == HDR.pack(8, REQUEST, 0, 4, 7) + b"/s/M" + b"body"
    assert len(HDR.pack(0, 0, 0, 0, 0)) == 16
    assert encode_error(9, 13, "boom") == HDR.pack(8, ERROR, 0, 0, 9) + error_body(13, "boom")


def test_error_messages_are_cut_to_64_kib_on_a_character_boundary() -> None:
    out = encode_error(1, 13, "é" * 40_000)  # 80 000 bytes of UTF-8
    length, kind, _, _, _ = HDR.unpack_from(out)
    assert kind == ERROR and length == len(out) - 16 <= 4 + 64 * 1024
    assert out[20:].decode() == "é" * 32_768  # strict: no character cut in half


def test_decoder_reassembles_frames_split_at_every_byte() -> None:
    stream = (
        frame(HELLO, 0, bytes((1, 0)))
        + frame(REQUEST, 1, b"payload", b"/s/A")
        + frame(RESPONSE, 2, b"x" * 100_000)  # bigger than the decoder's 64 KiB buffer
        + frame(ERROR, 3, error_body(5, "gone"))
        + frame(CANCEL, 4)
    )
    decoder = FrameDecoder()
    frames = []
    for byte in stream:
        buf = decoder.buffer()
        buf[0] = byte
        frames += decoder.consume(1)
    assert [(f.kind, f.call_id, f.method) for f in frames] == [
        (HELLO, 0, None),
        (REQUEST, 1, "/s/A"),
        (RESPONSE, 2, None),
        (ERROR, 3, None),
        (CANCEL, 4, None),
    ]
    assert frames[1].body == b"payload"
    assert frames[2].body == b"x" * 100_000
    assert decoder.partial() is None


def test_decoder_reads_past_an_over_limit_body_without_keeping_it() -> None:
    decoder = FrameDecoder(max_body=1000)
    big = 300_000
    stream = (
        frame(HELLO, 0, bytes((1, 0))) + frame(RESPONSE, 5, b"y" * big) + frame(RESPONSE, 6, b"ok")
    )
    frames = []
    pos = 0
    while pos < len(stream):
        buf = decoder.buffer()
        n = min(len(buf), len(stream) - pos, 4096)
        buf[:n] = stream[pos : pos + n]
        pos += n
        frames += decoder.consume(n)
        assert len(decoder._buf) <= 64 * 1024  # never grown to hold the skipped body
    assert [(f.kind, f.call_id, f.body, f.size) for f in frames[1:]] == [
        (RESPONSE, 5, None, big),
        (RESPONSE, 6, b"ok", 2),
    ]
