"""ServeHTTP stream parts for the ASGI and WSGI adapter tests: a request's init part as the
bridge sends it, and readers of the response parts."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from testproto import plugin_pb2 as p

GUARD = 30  # seconds; only guards against a hang, never a timing assertion


def init(
    method: str = "GET",
    url: str = "/a%20b?x=1&x=2",
    headers: dict[str, list[str]] | None = None,
    has_body: bool = False,
) -> p.HTTPRequestPart:
    msg = p.HTTPRequestInit(
        method=method,
        url=url,
        proto="HTTP/1.1",
        proto_major=1,
        proto_minor=1,
        has_body=has_body,
        host="mm.example.com:8065",
        remote_addr="10.1.2.3:5555",
    )
    for k, v in (headers or {}).items():
        msg.headers[k].values.extend(v)
    return p.HTTPRequestPart(init=msg)


async def collect(call: Any) -> list[p.HTTPResponsePart]:
    return [part async for part in call]


async def read_rest(call: Any) -> list[p.HTTPResponsePart]:
    """The remaining parts of a call already read with ``read()`` (the APIs cannot mix)."""
    out = []
    while (part := await asyncio.wait_for(call.read(), GUARD)) is not grpc.aio.EOF:
        out.append(part)
    return out


def kinds(parts: list[p.HTTPResponsePart]) -> list[str | None]:
    return [x.WhichOneof("part") for x in parts]
