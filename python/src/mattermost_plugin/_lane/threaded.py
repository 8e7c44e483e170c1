"""The lane for plain ``def`` hook handlers: a connection that serves the hooks it names on
threads of its own, each request on the thread that read it.

The bridge sends this connection only the hooks it named in its ``ServeHooks`` call
(docs/internals.md §8, "The lane"); the asyncio connection serves all the others. Its threads
take turns reading: the one that reads a request runs it, writes the answer and reads again,
so a request runs on the thread that read it, with no hand-off between threads and no event
loop on its path (transport study: 18 µs a call against 46 µs for a reader that hands work to
a pool). Requests read together run one after another, their answers sent several to a
write. While a handler runs, nobody reads: another thread is called in when the handler
blocks in an API call (the gate says so) or when the watch (one parked thread, looking every
``_WATCH_EVERY`` seconds while requests come) sees handlers stuck; then what waits behind
them spreads over threads too.

How many run at once is the gate's to say (``Admission``; the SDK's ``SyncHandlerGate``).
A request the gate does not admit waits in arrival order, on no thread, until one is let
in: when a handler ends or blocks in an API call, the gate tells this connection and a
parked thread takes the next. A ``CANCEL`` withdraws a waiting request, or drops the answer
of a running one (a thread cannot be stopped). A failure in this connection's own threads
ends it, and the bridge then sends these hooks to the asyncio connection.
"""

from __future__ import annotations

import collections
import contextvars
import logging
import socket
import threading
import time
from collections.abc import Callable, Collection
from typing import ClassVar, Protocol

from .blocking import BlockingLaneClient, _connect_socket, _ConnectionEnded
from .frames import (
    MAX_BODY,
    MAX_QUEUED,
    ROLE_NAMES_HOOKS,
    ROLE_SERVES_HOOKS,
    Code,
    LaneError,
    LaneProtocolError,
    encode_answer,
    encode_error,
)

__all__ = ["SERVE_HOOKS", "Admission", "ServeHook", "ThreadedLaneServer"]

log = logging.getLogger("mattermost_plugin.lane")

SERVE_HOOKS = "/mmplug.lane.v1.Lane/ServeHooks"
"""What a connection that names its hooks calls first; the body is their paths, a line each."""

ServeHook = Callable[[str, bytes], bytes]
"""Serves one request on the thread that read it: ``(method path, request message) ->
response message``. A ``LaneError`` answers ERROR with its code; anything else raised
answers ERROR 13 (INTERNAL) with its text."""


class Admission(Protocol):
    """How many handlers run at once (``_gate.SyncHandlerGate``)."""

    def try_acquire(self) -> bool:
        """Admits one more handler now, or says no."""

    def release_from_thread(self) -> None:
        """An admitted handler is done."""

    def room(self) -> int:
        """How many more would be admitted now (a hint)."""

    def on_room(self, listener: Callable[[], None]) -> None:
        """Calls ``listener`` when one more might be admitted."""


class _Request:
    __slots__ = ("body", "call_id", "method")

    def __init__(self, call_id: int, method: str, body: bytes) -> None:
        self.call_id = call_id
        self.method = method
        self.body = body


# What _next_job gives a thread that is to read, or to send the answers held in the outbox.
_LEAD = object()
_FLUSH = object()

# A thread that goes on with requests read together holds their answers, to send them in one
# write, up to this many or this many bytes.
_OUTBOX_FRAMES = 16
_OUTBOX_BYTES = 64 << 10

# A handler that has run this long while nobody reads gets another thread to read (the
# watch looks this often, and keeps looking this long after the last request).
_STUCK_AFTER = 0.002
_WATCH_EVERY = 0.002
_WATCH_FOR = 0.1


class ThreadedLaneServer(BlockingLaneClient):
    """A lane connection that serves the hooks it names on its own threads; made by
    ``ThreadedLaneServer.start``. It makes no calls of its own after ``ServeHooks``."""

    _ROLES: ClassVar[int] = ROLE_SERVES_HOOKS | ROLE_NAMES_HOOKS

    @classmethod
    def start(
        cls,
        path: str,
        token: str | bytes,
        methods: Collection[str],
        serve: ServeHook,
        admission: Admission,
        *,
        timeout: float | None = 10.0,
        max_body: int = MAX_BODY,
        max_queued: int = MAX_QUEUED,
        thread_name: str = "mmplug-lane-hook",
    ) -> ThreadedLaneServer:
        """Connects, says ``HELLO`` as a connection that names its hooks, names ``methods``
        (their gRPC paths) and starts serving them once the bridge routes them here. Each
        request runs ``serve`` in a copy of the context ``start`` was called in.

        Raises ``LaneError`` as ``BlockingLaneClient.connect`` does, or with the bridge's
        answer to ``ServeHooks`` (a bridge that does not know connections that name their
        hooks refuses the ``HELLO``: UNAVAILABLE).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        sock = _connect_socket(path, timeout)
        server = cls(
            sock,
            path,
            methods,
            serve,
            admission,
            thread_name=thread_name,
            max_body=max_body,
            max_queued=max_queued,
        )
        try:
            secret = token.encode() if isinstance(token, str) else token
            server._handshake(secret, deadline, timeout)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            server.call(SERVE_HOOKS, "\n".join(sorted(methods)).encode(), timeout=left)
        except BaseException:
            server.close()
            raise
        admission.on_room(server._room)
        with server._state:
            server._summon()
        return server

    def __init__(
        self,
        sock: socket.socket,
        path: str,
        methods: Collection[str],
        serve: ServeHook,
        admission: Admission,
        *,
        thread_name: str,
        max_body: int = MAX_BODY,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        super().__init__(sock, path, max_body=max_body, max_queued=max_queued)
        self._methods = frozenset(methods)
        self._serve = serve
        self._admission = admission
        self._context = contextvars.copy_context()
        self._thread_name = thread_name
        # Under _state: requests read and not answered (waiting or running) by call id,
        # those waiting for the gate in arrival order, the threads and the parked ones.
        self._serving: dict[int, _Request] = {}
        self._waiting: collections.deque[_Request] = collections.deque()
        self._threads = 0
        self._parked = 0
        # A thread was woken (or started) to take the next job and has not taken one yet.
        self._summoned = False
        self._turn = threading.Condition(self._state)
        # Requests running, by call id: when each started.
        self._running: dict[int, float] = {}
        self._last_taken = 0.0
        self._last_done = 0.0
        # A handler blocked with requests waiting: each thread that takes one summons the next.
        self._spreading = False
        # The gate said no to a waiting request (it hears when there is room), and made room
        # for one since: the thread summoned for it takes it.
        self._refused = False
        self._admit_waiting = False
        # Answers (call id, frame) held to go out together, and their size.
        self._outbox: list[tuple[int, bytes]] = []
        self._outbox_bytes = 0
        # One parked thread keeps the watch (_keep_watch) on _watch; asleep (untimed)
        # when no request came for a while, to be woken by the next one taken.
        self._watching = False
        self._watch_asleep = False
        self._watch = threading.Condition(self._state)

    def close(self) -> None:
        """Closes the connection: requests waiting or running get no answer. The socket is
        released once its reader has let go of it, so no reused descriptor is read."""
        self._shutdown("the lane connection was closed by this end", None)
        with self._state:
            self._turn.wait_for(lambda: not self._reading, timeout=5)
        self._sock.close()

    # ----- requests as the reader takes them (with _state held) -----

    def _on_request(
        self, call_id: int, method: str | None, body: bytes | None, size: int
    ) -> bytes | None:
        if body is None or method is None:
            return super()._on_request(call_id, method, body, size)
        if call_id in self._serving:
            self._broken = self._broken or LaneProtocolError(
                f"a REQUEST with call id {call_id}, in flight"
            )
            return None
        if method not in self._methods:
            return encode_error(
                call_id,
                Code.UNIMPLEMENTED,
                f"{method}: this connection serves only the hooks it named",
            )
        request = _Request(call_id, method, body)
        self._serving[call_id] = request
        self._waiting.append(request)
        return None

    def _on_cancel(self, call_id: int) -> None:
        request = self._serving.pop(call_id, None)
        if request is not None and request in self._waiting:
            self._waiting.remove(request)  # never started; a running one's answer is dropped

    # ----- the threads -----

    def _summon(self) -> None:
        """Wakes a parked thread, else starts one, to take the next job, unless one is on
        its way already (with _state held)."""
        if self._summoned or self._close_reason is not None:
            return
        self._summoned = True
        if self._parked:
            self._turn.notify()
            return
        self._threads += 1
        threading.Thread(
            target=self._work, name=f"{self._thread_name}_{self._threads}", daemon=True
        ).start()

    def _room(self) -> None:
        """From the gate, on any thread: a handler ended or blocked in an API call. A
        request waiting for the gate may go in; and if the blocked handler's thread was
        the one to read next, another must read meanwhile."""
        if self._close_reason is not None or (self._reading and not self._refused):
            return
        with self._state:
            if self._refused and self._waiting and self._admission.room():
                self._refused = False
                self._admit_waiting = True
                self._summon()
            elif not self._reading and self._running:
                self._summon()

    def _took(self, request: _Request) -> _Request:
        """Notes that a thread runs ``request`` from now (with _state held); summons one to
        keep the watch if nobody does, and while spreading, one for the next waiting request.

        Requests read together run one after another on the thread that read them, the
        cheapest for handlers that do not block (the GIL lets one run at a time anyway).
        Once the watch sees one block (``_STUCK_AFTER``), the rest spread over threads, each
        summoning the next, until none waits."""
        now = time.monotonic()
        self._running[request.call_id] = now
        self._last_taken = now
        if self._watch_asleep:
            self._watch.notify()
        if not self._waiting:
            self._spreading = False
        if not self._watching or (self._spreading and self._admission.room()):
            self._summon()
        return request

    def _work(self) -> None:
        try:
            self._serve_turns()
        except BaseException as e:
            # A bug of ours: without this thread the turns could stop, so the connection
            # ends, and the bridge sends these hooks to the asyncio connection instead.
            log.exception("lane: a thread of the connection that serves plain def hooks failed")
            message = f"the lane connection's thread failed: {type(e).__name__}: {e}"
            self._shutdown(message, LaneError(Code.INTERNAL, message))
            with self._state:
                self._reading = False
                self._turn.notify_all()

    def _serve_turns(self) -> None:
        after_run = False
        while True:
            with self._state:
                job = self._next_job(after_run)
                answers = self._take_outbox() if job is _FLUSH else []
            if job is _FLUSH:
                self._send_answers(answers)
                continue
            after_run = True
            if job is None:
                return
            if job is _LEAD:
                request = self._lead_requests()
                if request is None:
                    return  # the connection ended
            else:
                assert isinstance(job, _Request)
                request = job
            self._run(request)

    def _next_job(self, after_run: bool) -> _Request | object | None:
        """A waiting request the gate admits (for a thread that just ran one, going on with
        what was read with it; while spreading; or once the gate made room), else the turn to
        read if nobody reads, else the watch (if nobody keeps it), else parks until
        summoned (with _state held). None once the connection is closed."""
        while True:
            if self._close_reason is not None:
                return None
            if self._waiting and (after_run or self._spreading or self._admit_waiting):
                if self._admission.try_acquire():
                    self._summoned = False
                    self._admit_waiting = False
                    return self._took(self._waiting.popleft())
                self._refused = True
            after_run = False
            if self._outbox:
                return _FLUSH  # answers held for a batch that goes no further here
            if not self._reading:
                self._summoned = False
                self._reading = True
                if self._running and not self._watching:
                    self._summon()  # this one was summoned to watch, maybe: another will
                return _LEAD
            # Nothing for this thread (if it was the one summoned, another came first, or
            # the gate said no): whoever is summoned next must not wait for it.
            self._summoned = False
            if not self._watching:
                self._keep_watch()
                continue  # something for this thread now (or the connection closed)
            self._parked += 1
            try:
                self._turn.wait()
            finally:
                self._parked -= 1

    def _keep_watch(self) -> None:
        """Keeps the watch (with _state held): while requests come, looks every
        ``_WATCH_EVERY`` seconds whether handlers are stuck (one has run ``_STUCK_AFTER``
        seconds, and none got done meanwhile: a busy machine slows handlers down without
        stopping them), and returns then, for this thread to read if nobody does, or to start
        spreading the requests waiting behind them; sleeps untimed after ``_WATCH_FOR``
        seconds without a request, until one is taken. Returns when the connection closes."""
        self._watching = True
        try:
            while self._close_reason is None:
                now = time.monotonic()
                if (
                    self._running
                    and now - self._last_done >= _STUCK_AFTER
                    and min(self._running.values()) <= now - _STUCK_AFTER
                ):
                    if self._waiting and self._admission.room():
                        self._spreading = True
                        return
                    if not self._reading or self._outbox:
                        return
                if self._refused and self._waiting and self._admission.room():
                    self._refused = False  # room the gate's word crossed with the refusal
                    self._admit_waiting = True
                    return
                busy = bool(self._running) or now - self._last_taken < _WATCH_FOR
                self._watch_asleep = not busy
                try:
                    self._watch.wait(_WATCH_EVERY if busy else None)
                finally:
                    self._watch_asleep = False
        finally:
            self._watching = False

    def _lead_requests(self) -> _Request | None:
        """Reads until a request the gate admits arrives, and returns it: this thread runs
        it and reads again after, unless the watch or the gate called in another reader
        meanwhile. None when the connection ends (every thread is told)."""
        try:
            while True:
                frames = self._read(None)
                assert frames is not None  # no deadline
                self._dispatch(frames)
                if self._broken is not None:
                    self._violation(self._broken)
                    return None
                with self._state:
                    if self._close_reason is not None:
                        return None
                    if self._waiting:
                        if self._admission.try_acquire():
                            self._reading = False
                            return self._took(self._waiting.popleft())
                        self._refused = True
        except LaneProtocolError as e:
            self._violation(e)
        except _ConnectionEnded as e:
            self._shutdown(str(e), LaneError(Code.UNAVAILABLE, str(e)))
        finally:
            with self._state:
                if self._close_reason is not None:
                    self._reading = False
                    self._turn.notify_all()
                    self._watch.notify_all()
        return None

    def _run(self, request: _Request) -> None:
        """Serves an admitted request and writes its answer, unless it was withdrawn."""
        call_id = request.call_id
        try:
            try:
                answer = self._context.copy().run(self._serve, request.method, request.body)
                frame = encode_answer(call_id, request.method, answer, self._max_body)
            except LaneError as e:
                frame = encode_error(call_id, e.code, e.message)
            except BaseException as e:  # a thread of ours must not die of a handler's error
                log.exception("lane: serving %s raised", request.method)
                frame = encode_error(call_id, Code.INTERNAL, f"{type(e).__name__}: {e}")
        finally:
            with self._state:
                self._running.pop(call_id, None)
                # Handlers get done: not stuck, so what waits need not spread.
                self._last_done = time.monotonic()
                self._spreading = False
            self._admission.release_from_thread()
        with self._state:
            if self._serving.pop(call_id, None) is not request:
                return  # withdrawn, or the connection closed
            self._outbox.append((call_id, frame))
            self._outbox_bytes += len(frame)
            if (
                self._waiting
                and not self._spreading
                and len(self._outbox) < _OUTBOX_FRAMES
                and self._outbox_bytes < _OUTBOX_BYTES
            ):
                return  # this thread goes on with what was read with it: sent together
            answers = self._take_outbox()
        self._send_answers(answers)

    def _take_outbox(self) -> list[tuple[int, bytes]]:
        """The answers waiting to be sent, taken (with _state held)."""
        answers, self._outbox, self._outbox_bytes = self._outbox, [], 0
        return answers

    def _send_answers(self, answers: list[tuple[int, bytes]]) -> None:
        """Writes answers in one go; those the write queue's bound refuses become small
        ERRORs instead (the bridge is not reading)."""
        if not answers:
            return
        try:
            self._write(b"".join(frame for _, frame in answers), None, None)
        except LaneError as e:
            if e.code == Code.RESOURCE_EXHAUSTED:
                for call_id, _ in answers:
                    self._queue_control(encode_error(call_id, e.code, e.message))
            # Else the connection is gone, and nobody waits for these.

    # ----- closing -----

    def _shutdown(self, reason: str, error: LaneError | None) -> None:
        super()._shutdown(reason, error)
        with self._state:
            self._waiting.clear()
            self._serving.clear()
            self._take_outbox()
            self._turn.notify_all()
            self._watch.notify_all()
