"""The lane: the SDK's framed carrier for unary calls to and from the bridge, without
HTTP/2 (docs/internals.md §8, "The lane"). gRPC's per-call cost (~500 µs, a dozen context
switches) is most of a hook's time; a framed unix-socket hop costs ~20 µs.

A lower layer: it moves (method path, message bytes) pairs and knows nothing of the
contract's messages. ``frames`` is the wire format, ``aio`` the asyncio connection (calls out
and, with a handler, hooks in), ``blocking`` the client for sync code in worker threads,
``threaded`` the connection whose own threads serve the hooks it names (plain ``def``
handlers).
"""

from .aio import Handler, LaneConnection, connect
from .blocking import BlockingLaneClient
from .frames import MAX_BODY, MAX_QUEUED, Code, LaneError, LaneProtocolError
from .threaded import SERVE_HOOKS, Admission, ServeHook, ThreadedLaneServer

__all__ = [
    "MAX_BODY",
    "MAX_QUEUED",
    "SERVE_HOOKS",
    "Admission",
    "BlockingLaneClient",
    "Code",
    "Handler",
    "LaneConnection",
    "LaneError",
    "LaneProtocolError",
    "ServeHook",
    "ThreadedLaneServer",
    "connect",
]
