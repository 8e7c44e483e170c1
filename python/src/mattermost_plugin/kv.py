"""KV store helpers: JSON values, compare-and-set, expiry, key listing, a cluster-wide mutex.

The plugin API stores bytes per key (``self.api.kv_set`` and friends). These helpers store
JSON, as Go's ``pluginapi`` does, and are reachable from a plugin as ``self.kv_store``
(blocking, for sync handlers) and ``self.akv_store`` (``async def``, for async handlers)::

    kv = self.kv_store
    kv.set("count", 1)
    kv.get("count", 0)                          # the default when the key is absent
    kv.set("session", data, expire_in=3600)     # seconds or a timedelta
    kv.compare_and_set("count", 1, 2)           # True when the stored value was 1
    kv.update("count", lambda n: (n or 0) + 1)  # atomic read-modify-write, retried
    kv.list_keys(prefix="user_")                # every page
    with kv.mutex("daily-report"):              # one holder across the cluster
        ...

**None means "no value"** everywhere: ``get`` returns the default for an absent key,
``set(key, None)`` deletes it, ``compare_and_set(key, None, new)`` inserts only if the key is
absent and ``compare_and_set(key, old, None)`` deletes only if the value is ``old``. Values are
encoded compactly with sorted object keys, so a value read with ``get`` and passed back as
``old`` compares equal to what is stored.

``KVMutex`` (``self.kv_store.mutex(name)``) is a lock shared by every instance of the plugin
in a cluster, kept in the KV store under ``mutex_<name>`` (the key Go's ``cluster.Mutex`` uses). The
holder's random token is stored with an expiry (``ttl``), refreshed every ``ttl / 2`` seconds
while held, so a crashed holder's lock frees itself. Acquiring retries with exponential backoff
(up to ``timeout``); releasing deletes the key only if it still holds our token, so a holder
whose lock expired never deletes someone else's. Time is read and waited for through a
``Clock``, which tests replace so they never really wait.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import json
import logging
import math
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from ._contract import message_class

if TYPE_CHECKING:
    from ._generated.api import AsyncPluginAPIClient, PluginAPIClient
    from ._proto.mattermost.plugin.v1.models_pb2 import PluginKVSetOptions

__all__ = [
    "AsyncKVMutex",
    "AsyncKVStore",
    "Clock",
    "KVConflictError",
    "KVDecodeError",
    "KVMutex",
    "KVStore",
    "LockTimeoutError",
    "SystemClock",
]

log = logging.getLogger("mattermost_plugin.kv")

# Go's cluster.Mutex keys its locks the same way, so a Go and a Python build of one plugin
# exclude each other during a rolling upgrade.
MUTEX_KEY_PREFIX = "mutex_"
DEFAULT_MUTEX_TTL = 15.0
# Backoff between acquisition attempts: starts small (a lock is often released quickly) and
# doubles up to a ceiling that keeps a waiting instance responsive.
MIN_BACKOFF = 0.01
MAX_BACKOFF = 1.0
DEFAULT_UPDATE_ATTEMPTS = 5
DEFAULT_PAGE_SIZE = 1000


def _lock_token() -> bytes:
    """A fresh lock token: a random UUID's hex. ``uuid`` is imported by the first lock, not
    with the SDK: it pulls in ``platform``, ~2 ms of every plugin's start-up."""
    import uuid

    return uuid.uuid4().hex.encode()


def _random() -> float:
    """``random.random()``, the module imported by the first retry (~1 ms at start-up)."""
    import random

    return random.random()


class KVDecodeError(ValueError):
    """A stored value is not the JSON these helpers write (it was stored as raw bytes)."""


class KVConflictError(RuntimeError):
    """``update`` lost the race for a key more times than it was allowed to retry."""


class LockTimeoutError(TimeoutError):
    """A ``KVMutex`` could not be acquired within the timeout."""


class Clock(Protocol):
    """Time as the mutex sees it; tests pass a fake one."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds``."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Pause the calling task for ``seconds``."""
        ...

    def wait(self, event: threading.Event, seconds: float) -> bool:
        """Block until ``event`` is set (True) or ``seconds`` passed (False)."""
        ...

    async def await_event(self, event: asyncio.Event, seconds: float) -> bool:
        """Pause until ``event`` is set (True) or ``seconds`` passed (False)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic``, ``time.sleep``, ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return event.wait(seconds)

    async def await_event(self, event: asyncio.Event, seconds: float) -> bool:
        try:
            await asyncio.wait_for(event.wait(), seconds)
        # Not the builtin TimeoutError: on Python 3.10 asyncio raises its own class.
        except asyncio.TimeoutError:
            return False
        return True


# --- encoding -------------------------------------------------------------------------


def encode_json(key: str, value: Any) -> bytes:
    """The bytes stored for ``value``: compact JSON with sorted object keys."""
    try:
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"KV value for {key!r} is not JSON-serializable: {e}") from None
    return text.encode()


def decode_json(key: str, data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise KVDecodeError(
            f"KV value of {key!r} is not JSON ({len(data)} bytes: {data[:40]!r}): {e}; "
            f"read raw bytes with api.kv_get"
        ) from None


def expiry_seconds(expire_in: float | datetime.timedelta) -> int:
    """Whole seconds (rounded up, at least 1) for the server's ExpireInSeconds."""
    seconds = expire_in.total_seconds() if isinstance(expire_in, datetime.timedelta) else expire_in
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        raise TypeError(f"expire_in must be seconds or a timedelta, got {expire_in!r}")
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"expire_in must be a positive, finite duration, got {expire_in!r}")
    return max(1, math.ceil(seconds))


def _kv_set_options() -> type[PluginKVSetOptions]:
    return message_class("PluginKVSetOptions")  # type: ignore[return-value]


def _options(old: bytes | None, expire_in: float | datetime.timedelta | None) -> PluginKVSetOptions:
    return _kv_set_options()(
        atomic=True,
        # Empty old bytes reach the server as a nil OldValue: "only if the key is absent".
        old_value=old or b"",
        expire_in_seconds=0 if expire_in is None else expiry_seconds(expire_in),
    )


def _cas_bytes(key: str, old: Any, new: Any) -> tuple[bytes | None, bytes]:
    if old is None and new is None:
        raise ValueError(
            f"compare_and_set({key!r}, None, None) would change nothing: None means absent"
        )
    return (
        None if old is None else encode_json(key, old),
        b"" if new is None else encode_json(key, new),
    )


def _check_page_size(per_page: int) -> None:
    if isinstance(per_page, bool) or not isinstance(per_page, int) or per_page < 1:
        raise ValueError(f"per_page must be a positive int, got {per_page!r}")


def _check_attempts(max_attempts: int) -> None:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be a positive int, got {max_attempts!r}")


# --- stores -----------------------------------------------------------------------------


class KVStore:
    """JSON helpers over the blocking client (``self.kv_store``); see the module docstring."""

    def __init__(self, api: PluginAPIClient) -> None:
        self.api = api

    def get(self, key: str, default: Any = None) -> Any:
        """The decoded value of ``key``, or ``default`` when the key is absent."""
        data = self.api.kv_get(key)
        if not data:
            return default
        return decode_json(key, data)

    def set(
        self, key: str, value: Any, *, expire_in: float | datetime.timedelta | None = None
    ) -> None:
        """Store ``value`` as JSON (None deletes the key); ``expire_in`` seconds or timedelta."""
        if value is None:
            self.api.kv_delete(key)
        elif expire_in is None:
            self.api.kv_set(key, encode_json(key, value))
        else:
            self.api.kv_set_with_expiry(key, encode_json(key, value), expiry_seconds(expire_in))

    def compare_and_set(
        self,
        key: str,
        old: Any,
        new: Any,
        *,
        expire_in: float | datetime.timedelta | None = None,
    ) -> bool:
        """Store ``new`` only if the stored value equals ``old``; True when it was stored.

        ``old=None``: only if the key is absent. ``new=None``: delete the key.
        """
        old_bytes, new_bytes = _cas_bytes(key, old, new)
        return self.api.kv_set_with_options(key, new_bytes, _options(old_bytes, expire_in))

    def update(
        self,
        key: str,
        change: Callable[[Any], Any],
        *,
        max_attempts: int = DEFAULT_UPDATE_ATTEMPTS,
        expire_in: float | datetime.timedelta | None = None,
    ) -> Any:
        """Atomically replace the value with ``change(current)`` and return the new value.

        ``change`` gets None for an absent key and may return None to delete it. When another
        writer changes the key in between, it is called again with the fresh value, up to
        ``max_attempts`` times; then ``KVConflictError`` is raised.
        """
        _check_attempts(max_attempts)
        for _ in range(max_attempts):
            stored = self.api.kv_get(key)
            current = decode_json(key, stored) if stored else None
            new = change(current)
            if new is None and not stored:
                return None
            new_bytes = b"" if new is None else encode_json(key, new)
            if self.api.kv_set_with_options(key, new_bytes, _options(stored, expire_in)):
                return new
        raise KVConflictError(
            f"KV key {key!r} kept changing: update gave up after {max_attempts} attempts"
        )

    def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens if it is absent)."""
        self.api.kv_delete(key)

    def list_keys(self, *, prefix: str = "", per_page: int = DEFAULT_PAGE_SIZE) -> list[str]:
        """Every key of the plugin (all pages), optionally only those starting with ``prefix``."""
        _check_page_size(per_page)
        keys: list[str] = []
        page = 0
        while True:
            batch = self.api.kv_list(page, per_page)
            keys.extend(k for k in batch if k.startswith(prefix))
            if len(batch) < per_page:
                return keys
            page += 1

    def mutex(
        self,
        name: str,
        *,
        ttl: float = DEFAULT_MUTEX_TTL,
        timeout: float | None = None,
        clock: Clock | None = None,
    ) -> KVMutex:
        """A cluster-wide lock named ``name`` (see ``KVMutex``)."""
        return KVMutex(self.api, name, ttl=ttl, timeout=timeout, clock=clock)


class AsyncKVStore:
    """JSON helpers over the async client (``self.akv_store``): ``KVStore`` with ``async def``."""

    def __init__(self, aapi: AsyncPluginAPIClient) -> None:
        self.aapi = aapi

    async def get(self, key: str, default: Any = None) -> Any:
        """The decoded value of ``key``, or ``default`` when the key is absent."""
        data = await self.aapi.kv_get(key)
        if not data:
            return default
        return decode_json(key, data)

    async def set(
        self, key: str, value: Any, *, expire_in: float | datetime.timedelta | None = None
    ) -> None:
        """Store ``value`` as JSON (None deletes the key); ``expire_in`` seconds or timedelta."""
        if value is None:
            await self.aapi.kv_delete(key)
        elif expire_in is None:
            await self.aapi.kv_set(key, encode_json(key, value))
        else:
            data = encode_json(key, value)
            await self.aapi.kv_set_with_expiry(key, data, expiry_seconds(expire_in))

    async def compare_and_set(
        self,
        key: str,
        old: Any,
        new: Any,
        *,
        expire_in: float | datetime.timedelta | None = None,
    ) -> bool:
        """Store ``new`` only if the stored value equals ``old``; True when it was stored."""
        old_bytes, new_bytes = _cas_bytes(key, old, new)
        return await self.aapi.kv_set_with_options(key, new_bytes, _options(old_bytes, expire_in))

    async def update(
        self,
        key: str,
        change: Callable[[Any], Any | Awaitable[Any]],
        *,
        max_attempts: int = DEFAULT_UPDATE_ATTEMPTS,
        expire_in: float | datetime.timedelta | None = None,
    ) -> Any:
        """Atomically replace the value with ``change(current)``; ``change`` may be async."""
        _check_attempts(max_attempts)
        for _ in range(max_attempts):
            stored = await self.aapi.kv_get(key)
            current = decode_json(key, stored) if stored else None
            new = change(current)
            if inspect.isawaitable(new):
                new = await new
            if new is None and not stored:
                return None
            new_bytes = b"" if new is None else encode_json(key, new)
            if await self.aapi.kv_set_with_options(key, new_bytes, _options(stored, expire_in)):
                return new
        raise KVConflictError(
            f"KV key {key!r} kept changing: update gave up after {max_attempts} attempts"
        )

    async def delete(self, key: str) -> None:
        """Remove ``key`` (nothing happens if it is absent)."""
        await self.aapi.kv_delete(key)

    async def list_keys(self, *, prefix: str = "", per_page: int = DEFAULT_PAGE_SIZE) -> list[str]:
        """Every key of the plugin (all pages), optionally only those starting with ``prefix``."""
        _check_page_size(per_page)
        keys: list[str] = []
        page = 0
        while True:
            batch = await self.aapi.kv_list(page, per_page)
            keys.extend(k for k in batch if k.startswith(prefix))
            if len(batch) < per_page:
                return keys
            page += 1

    def mutex(
        self,
        name: str,
        *,
        ttl: float = DEFAULT_MUTEX_TTL,
        timeout: float | None = None,
        clock: Clock | None = None,
    ) -> AsyncKVMutex:
        """A cluster-wide lock named ``name`` (see ``AsyncKVMutex``)."""
        return AsyncKVMutex(self.aapi, name, ttl=ttl, timeout=timeout, clock=clock)


# --- the cluster mutex ------------------------------------------------------------------


class _MutexBase:
    def __init__(
        self, name: str, *, ttl: float, timeout: float | None, clock: Clock | None
    ) -> None:
        if not name:
            raise ValueError("a KV mutex needs a name")
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl >= 2:
            raise ValueError(
                f"ttl must be at least 2 seconds (KV expiry is in seconds), got {ttl!r}"
            )
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"timeout must be None or >= 0, got {timeout!r}")
        self.name = name
        self.key = MUTEX_KEY_PREFIX + name
        self.ttl = float(ttl)
        self.refresh_interval = self.ttl / 2
        self.timeout = timeout
        self.clock: Clock = clock or SystemClock()
        self._token: bytes | None = None
        self._lost = False

    @property
    def locked(self) -> bool:
        """Whether this object holds the lock (as far as it knows; see ``lost``)."""
        return self._token is not None

    @property
    def lost(self) -> bool:
        """True when a refresh found the lock taken over (it had expired) while held."""
        return self._lost

    def _set_options(self, old: bytes | None) -> PluginKVSetOptions:
        return _kv_set_options()(
            atomic=True, old_value=old or b"", expire_in_seconds=math.ceil(self.ttl)
        )

    def _deadline(self, timeout: float | None) -> float | None:
        timeout = self.timeout if timeout is None else timeout
        return None if timeout is None else self.clock.monotonic() + timeout

    def _pause(self, delay: float, deadline: float | None, timeout: float | None) -> float:
        """How long to wait before the next attempt; raises once the deadline passed."""
        pause = delay * (0.5 + _random() / 2)  # jitter spreads competing instances
        if deadline is not None:
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                waited = self.timeout if timeout is None else timeout
                raise LockTimeoutError(
                    f"could not acquire KV mutex {self.name!r} within {waited} s "
                    f"(another instance holds it)"
                )
            pause = min(pause, remaining)
        return pause

    def _lost_lock(self) -> None:
        self._lost = True
        log.error(
            "KV mutex %r expired while held and was taken by another instance; "
            "the critical section is no longer exclusive",
            self.name,
        )


class KVMutex(_MutexBase):
    """A cluster-wide lock over the KV store, for sync code (``with mutex: ...``).

    Like ``threading.Lock``: ``acquire()`` blocks (up to ``timeout``, raising
    ``LockTimeoutError``), ``release()`` unlocks, ``try_acquire()`` makes one attempt. While
    held, a daemon thread refreshes the lock's expiry every ``ttl / 2`` seconds.
    """

    def __init__(
        self,
        api: PluginAPIClient,
        name: str,
        *,
        ttl: float = DEFAULT_MUTEX_TTL,
        timeout: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, ttl=ttl, timeout=timeout, clock=clock)
        self.api = api
        self._state = threading.Lock()
        self._stop: threading.Event | None = None
        self._refresher: threading.Thread | None = None

    def try_acquire(self) -> bool:
        """One attempt: True if the lock is now ours."""
        token = _lock_token()
        if not self.api.kv_set_with_options(self.key, token, self._set_options(None)):
            return False
        self._hold(token)
        return True

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock; ``timeout`` (seconds) defaults to the mutex's own."""
        deadline = self._deadline(timeout)
        delay = MIN_BACKOFF
        while True:
            try:
                if self.try_acquire():
                    return
            except Exception as e:  # a failing store: keep trying, as Go's cluster.Mutex does
                log.warning("acquiring KV mutex %r failed, retrying: %s", self.name, e)
            self.clock.sleep(self._pause(delay, deadline, timeout))
            delay = min(delay * 2, MAX_BACKOFF)

    def release(self) -> None:
        """Unlock; the KV key is deleted only if it still holds this holder's token."""
        with self._state:
            token, stop = self._token, self._stop
            if token is None:
                raise RuntimeError(f"release of KV mutex {self.name!r}, which is not held")
            self._token = self._stop = self._refresher = None
        if stop is not None:
            stop.set()
        try:
            if not self.api.kv_compare_and_delete(self.key, token):
                log.warning(
                    "KV mutex %r had already expired when released; left the new holder's lock",
                    self.name,
                )
        except Exception as e:  # the key expires by itself; do not mask the caller's outcome
            log.warning("releasing KV mutex %r failed (it will expire): %s", self.name, e)

    def refresh(self) -> bool:
        """Extend the expiry of the held lock; False when it is no longer ours."""
        token = self._token
        if token is None:
            return False
        if self.api.kv_set_with_options(self.key, token, self._set_options(token)):
            return True
        if self._token == token:
            self._lost_lock()
        return False

    def _hold(self, token: bytes) -> None:
        stop = threading.Event()
        thread = threading.Thread(
            target=self._refresh_loop,
            args=(token, stop),
            name=f"mmplug-kvmutex-{self.name}",
            daemon=True,
        )
        with self._state:
            self._token, self._stop, self._refresher, self._lost = token, stop, thread, False
        thread.start()

    def _refresh_loop(self, token: bytes, stop: threading.Event) -> None:
        while not self.clock.wait(stop, self.refresh_interval):
            if self._token != token:
                return
            try:
                if not self.refresh():
                    return
            except Exception as e:  # transient: the lock stays valid until its expiry
                log.warning("refreshing KV mutex %r failed: %s", self.name, e)

    def __enter__(self) -> KVMutex:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class AsyncKVMutex(_MutexBase):
    """``KVMutex`` for async code: ``async with mutex: ...``; the refresher is a task."""

    def __init__(
        self,
        aapi: AsyncPluginAPIClient,
        name: str,
        *,
        ttl: float = DEFAULT_MUTEX_TTL,
        timeout: float | None = None,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(name, ttl=ttl, timeout=timeout, clock=clock)
        self.aapi = aapi
        self._stop: asyncio.Event | None = None
        self._refresher: asyncio.Task[None] | None = None

    async def try_acquire(self) -> bool:
        """One attempt: True if the lock is now ours."""
        token = _lock_token()
        if not await self.aapi.kv_set_with_options(self.key, token, self._set_options(None)):
            return False
        self._hold(token)
        return True

    # The timeout runs on the injectable clock (tests fake time), so asyncio.timeout, which
    # only knows the loop's real clock, cannot replace it.
    async def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock; ``timeout`` (seconds) defaults to the mutex's own."""
        deadline = self._deadline(timeout)
        delay = MIN_BACKOFF
        while True:
            try:
                if await self.try_acquire():
                    return
            except Exception as e:  # a failing store: keep trying, as Go's cluster.Mutex does
                log.warning("acquiring KV mutex %r failed, retrying: %s", self.name, e)
            await self.clock.asleep(self._pause(delay, deadline, timeout))
            delay = min(delay * 2, MAX_BACKOFF)

    async def release(self) -> None:
        """Unlock; the KV key is deleted only if it still holds this holder's token."""
        token, stop, task = self._token, self._stop, self._refresher
        if token is None:
            raise RuntimeError(f"release of KV mutex {self.name!r}, which is not held")
        self._token = self._stop = self._refresher = None
        if stop is not None:
            stop.set()
        if task is not None:
            await task  # returns promptly: the stop event is set
        try:
            if not await self.aapi.kv_compare_and_delete(self.key, token):
                log.warning(
                    "KV mutex %r had already expired when released; left the new holder's lock",
                    self.name,
                )
        except Exception as e:
            log.warning("releasing KV mutex %r failed (it will expire): %s", self.name, e)

    async def refresh(self) -> bool:
        """Extend the expiry of the held lock; False when it is no longer ours."""
        token = self._token
        if token is None:
            return False
        if await self.aapi.kv_set_with_options(self.key, token, self._set_options(token)):
            return True
        if self._token == token:
            self._lost_lock()
        return False

    def _hold(self, token: bytes) -> None:
        stop = asyncio.Event()
        self._token, self._stop, self._lost = token, stop, False
        self._refresher = asyncio.get_running_loop().create_task(
            self._refresh_loop(token, stop), name=f"mmplug-kvmutex-{self.name}"
        )

    async def _refresh_loop(self, token: bytes, stop: asyncio.Event) -> None:
        while not await self.clock.await_event(stop, self.refresh_interval):
            if self._token != token:
                return
            try:
                if not await self.refresh():
                    return
            except Exception as e:
                log.warning("refreshing KV mutex %r failed: %s", self.name, e)

    async def __aenter__(self) -> AsyncKVMutex:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()
