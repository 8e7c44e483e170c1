"""KV helpers (JSON values, compare-and-set, expiry, listing) and the cluster mutex.

Everything runs against ``FakeMattermost``'s KV store. Time never really passes: the fake's
KV expiry follows ``fake.clock`` and the mutex reads and waits through ``StepClock``, which
moves both forward when the code under test sleeps.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
from collections.abc import Callable
from typing import Any

import pytest

from mattermost_plugin import (
    AsyncKVStore,
    HookName,
    KVConflictError,
    KVDecodeError,
    KVStore,
    LockTimeoutError,
    Plugin,
    ServiceUnavailableError,
    hook,
)
from mattermost_plugin.kv import MAX_BACKOFF, AsyncKVMutex, KVMutex
from mattermost_plugin.testing import FakeMattermost


class StepClock:
    """A ``Clock`` whose time moves only when the code sleeps (and moves the fake's with it).

    The mutex's refresher waits through ``wait``/``await_event``: each call takes the next
    action of ``refresh_script`` (the interval elapses, the action runs, the refresher
    refreshes); with the script empty it reports "stopped", so no refresher outlives a test.
    """

    def __init__(self, fake: FakeMattermost) -> None:
        self.fake = fake
        self.now = 100.0
        self.sleeps: list[float] = []
        self.refresh_script: list[Callable[[], None]] = []
        self.waits: list[float] = []

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.fake.clock.advance(seconds)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def _next_wait(self, is_set: bool, seconds: float) -> bool:
        self.waits.append(seconds)
        if is_set or not self.refresh_script:
            return True
        action = self.refresh_script.pop(0)
        self.advance(seconds)
        action()
        return False

    def wait(self, event: threading.Event, seconds: float) -> bool:
        return self._next_wait(event.is_set(), seconds)

    async def await_event(self, event: asyncio.Event, seconds: float) -> bool:
        return self._next_wait(event.is_set(), seconds)


@pytest.fixture
def kv(mm_fake: FakeMattermost) -> KVStore:
    return KVStore(mm_fake.api)


@pytest.fixture
def akv(mm_fake: FakeMattermost) -> AsyncKVStore:
    return AsyncKVStore(mm_fake.aapi)


@pytest.fixture
def clock(mm_fake: FakeMattermost) -> StepClock:
    return StepClock(mm_fake)


def stored(fake: FakeMattermost, key: str) -> bytes | None:
    return fake.kv.get(key)


# --- JSON get/set/delete -----------------------------------------------------------------------


def test_json_round_trip_and_defaults(kv: KVStore, mm_fake: FakeMattermost) -> None:
    assert kv.get("missing") is None
    assert kv.get("missing", {"count": 0}) == {"count": 0}
    kv.set("user", {"name": "ana", "roles": ["admin"], "age": 3})
    assert kv.get("user") == {"name": "ana", "roles": ["admin"], "age": 3}
    # Compact, sorted keys: the same value always has the same bytes (compare-and-set needs it).
    assert stored(mm_fake, "user") == b'{"age":3,"name":"ana","roles":["admin"]}'
    kv.set("text", "é")
    assert stored(mm_fake, "text") == '"é"'.encode()
    kv.set("user", None)  # None deletes
    assert kv.get("user", "gone") == "gone"
    kv.set("n", 5)
    kv.delete("n")
    kv.delete("n")  # deleting an absent key is fine
    assert kv.get("n") is None


def test_values_that_are_not_json(kv: KVStore, mm_fake: FakeMattermost) -> None:
    with pytest.raises(TypeError, match="KV value for 'when' is not JSON-serializable"):
        kv.set("when", datetime.datetime(2025, 1, 1))
    mm_fake.api.kv_set("raw", b"\x00\xffbinary")
    with pytest.raises(KVDecodeError, match="KV value of 'raw' is not JSON"):
        kv.get("raw")


def test_expiry(kv: KVStore, mm_fake: FakeMattermost) -> None:
    kv.set("session", {"token": "t"}, expire_in=60)
    kv.set("short", 1, expire_in=datetime.timedelta(milliseconds=1500))  # rounds up to 2 s
    assert mm_fake.calls_to("KVSetWithExpiry")[-1]["expire_in_seconds"] == 2
    mm_fake.clock.advance(59)
    assert kv.get("session") == {"token": "t"}
    assert kv.get("short") is None
    mm_fake.clock.advance(1)
    assert kv.get("session") is None


@pytest.mark.parametrize("bad", [0, -1, float("inf"), datetime.timedelta(0)])
def test_expiry_must_be_positive(kv: KVStore, bad: Any) -> None:
    with pytest.raises(ValueError, match="expire_in must be a positive"):
        kv.set("k", 1, expire_in=bad)


# --- compare-and-set ---------------------------------------------------------------------------


def test_compare_and_set(kv: KVStore, mm_fake: FakeMattermost) -> None:
    assert kv.compare_and_set("counter", None, 1)  # insert: only if absent
    assert not kv.compare_and_set("counter", None, 1)
    assert not kv.compare_and_set("counter", 5, 6)  # stored value is 1
    assert kv.compare_and_set("counter", 1, 2)
    assert kv.get("counter") == 2
    # Values read back compare equal however their keys were ordered.
    kv.set("doc", {"b": 1, "a": [1, 2]})
    assert kv.compare_and_set("doc", {"a": [1, 2], "b": 1}, {"a": []})
    assert not kv.compare_and_set("counter", 1, None)
    assert kv.compare_and_set("counter", 2, None)  # delete if still 2
    assert kv.get("counter") is None
    with pytest.raises(ValueError, match="would change nothing"):
        kv.compare_and_set("counter", None, None)


def test_compare_and_set_with_expiry(kv: KVStore, mm_fake: FakeMattermost) -> None:
    assert kv.compare_and_set("lease", None, "me", expire_in=10)
    options = mm_fake.calls_to("KVSetWithOptions")[-1]["options"]
    assert (options.atomic, options.old_value, options.expire_in_seconds) == (True, b"", 10)
    mm_fake.clock.advance(10)
    assert kv.compare_and_set("lease", None, "you")  # expired: absent again


def test_update_retries_when_another_writer_wins(kv: KVStore) -> None:
    kv.set("tasks", ["a"])
    calls: list[Any] = []

    def add_b(tasks: Any) -> Any:
        calls.append(list(tasks))
        if len(calls) == 1:
            kv.set("tasks", ["a", "x"])  # another instance writes in between
        return [*tasks, "b"]

    assert kv.update("tasks", add_b) == ["a", "x", "b"]
    assert calls == [["a"], ["a", "x"]]
    assert kv.get("tasks") == ["a", "x", "b"]


def test_update_of_absent_key_and_delete(kv: KVStore) -> None:
    assert kv.update("count", lambda n: (n or 0) + 1) == 1
    assert kv.update("count", lambda n: (n or 0) + 1) == 2
    assert kv.update("count", lambda n: None) is None
    assert kv.get("count") is None
    assert kv.update("never", lambda v: None) is None


def test_update_gives_up(kv: KVStore) -> None:
    kv.set("hot", 0)

    def contended(n: Any) -> Any:
        kv.set("hot", n + 100)  # someone else always wins
        return n + 1

    with pytest.raises(KVConflictError, match="'hot' kept changing: update gave up after 3"):
        kv.update("hot", contended, max_attempts=3)
    with pytest.raises(ValueError, match="max_attempts"):
        kv.update("hot", contended, max_attempts=0)


# --- listing -----------------------------------------------------------------------------------


def test_list_keys_reads_every_page(kv: KVStore, mm_fake: FakeMattermost) -> None:
    for i in range(5):
        kv.set(f"user_{i}", i)
    kv.set("other", 1)
    assert kv.list_keys(per_page=2) == ["other", *(f"user_{i}" for i in range(5))]
    assert [c["page"] for c in mm_fake.calls_to("KVList")] == [0, 1, 2, 3]
    assert kv.list_keys(prefix="user_", per_page=100) == [f"user_{i}" for i in range(5)]
    with pytest.raises(ValueError, match="per_page"):
        kv.list_keys(per_page=0)


async def test_async_store(akv: AsyncKVStore, mm_fake: FakeMattermost) -> None:
    assert await akv.get("k", 7) == 7
    await akv.set("k", [1])
    await akv.set("e", "x", expire_in=5)
    assert await akv.get("k") == [1]
    assert await akv.compare_and_set("k", [1], [1, 2])
    assert not await akv.compare_and_set("k", [1], [3])

    async def append(v: Any) -> Any:
        return [*v, 3]

    assert await akv.update("k", append) == [1, 2, 3]
    assert await akv.update("k", lambda v: [*v, 4]) == [1, 2, 3, 4]
    assert await akv.list_keys(per_page=1) == ["e", "k"]
    mm_fake.clock.advance(5)
    assert await akv.list_keys() == ["k"]
    await akv.delete("k")
    await akv.set("e", None)
    assert await akv.list_keys() == []


def test_plugin_exposes_kv_store_and_akv_store(mm_plugin: Any) -> None:
    class Counter(Plugin):
        @hook(HookName.OnActivate)
        def on_activate(self) -> None:
            self.kv_store.update("activations", lambda n: (n or 0) + 1)

        @hook(HookName.OnDeactivate)
        async def on_deactivate(self) -> None:
            await self.akv_store.set("deactivated", True)

    handle = mm_plugin(Counter)
    assert handle.fake.kv["activations"] == b"1"
    handle.stop()
    assert handle.fake.kv["deactivated"] == b"true"


# --- the cluster mutex -------------------------------------------------------------------------


def test_mutex_excludes_and_releases(
    kv: KVStore, clock: StepClock, mm_fake: FakeMattermost
) -> None:
    first = kv.mutex("report", clock=clock)
    second = kv.mutex("report", clock=clock)
    assert first.key == "mutex_report"
    with first:
        assert first.locked
        token = stored(mm_fake, "mutex_report")
        assert token and len(token) == 32
        assert not second.try_acquire()
    assert not first.locked
    assert stored(mm_fake, "mutex_report") is None
    assert second.try_acquire()
    second.release()


def test_mutex_lock_expires_with_the_ttl(
    kv: KVStore, clock: StepClock, mm_fake: FakeMattermost
) -> None:
    holder = kv.mutex("job", ttl=15, clock=clock)
    assert holder.try_acquire()
    options = mm_fake.calls_to("KVSetWithOptions")[-1]["options"]
    assert (options.atomic, options.old_value, options.expire_in_seconds) == (True, b"", 15)
    mm_fake.clock.advance(15)  # the holder crashed: nobody refreshed
    assert stored(mm_fake, "mutex_job") is None


def test_acquire_times_out_with_backoff(kv: KVStore, clock: StepClock) -> None:
    holder = kv.mutex("job", clock=clock)
    holder.acquire()
    waiter = kv.mutex("job", clock=clock, timeout=3.0)
    with pytest.raises(LockTimeoutError, match=r"could not acquire KV mutex 'job' within 3.0 s"):
        waiter.acquire()
    assert not waiter.locked
    assert sum(clock.sleeps) == pytest.approx(3.0)
    # Exponential backoff (with jitter in [50%, 100%]), capped.
    assert clock.sleeps[0] < clock.sleeps[3] < clock.sleeps[6]
    assert max(clock.sleeps) <= MAX_BACKOFF
    clock.sleeps.clear()
    with pytest.raises(LockTimeoutError, match="within 0 s"):
        waiter.acquire(timeout=0)
    assert clock.sleeps == []
    holder.release()


def test_waiter_gets_an_expired_lock_and_the_old_holder_leaves_it(
    kv: KVStore, clock: StepClock, mm_fake: FakeMattermost, caplog: pytest.LogCaptureFixture
) -> None:
    stale = kv.mutex("job", ttl=4, clock=clock)
    stale.acquire()
    waiter = kv.mutex("job", ttl=4, clock=clock)
    waiter.acquire()  # waits (on the fake clock) until the stale lock expires
    assert 4 <= sum(clock.sleeps) < 4 + MAX_BACKOFF
    mine = stored(mm_fake, "mutex_job")
    with caplog.at_level(logging.WARNING, logger="mattermost_plugin.kv"):
        stale.release()
    assert "had already expired when released" in caplog.text
    assert stored(mm_fake, "mutex_job") == mine  # the new holder's lock is untouched
    waiter.release()
    assert stored(mm_fake, "mutex_job") is None


def test_refresher_keeps_the_lock_alive(
    kv: KVStore, clock: StepClock, mm_fake: FakeMattermost
) -> None:
    mutex = kv.mutex("long", ttl=10, clock=clock)
    clock.refresh_script = [lambda: None, lambda: None, lambda: None]
    mutex.acquire()
    refresher = mutex._refresher
    assert refresher is not None
    refresher.join()  # ran its three intervals, then the script said "stopped"
    assert clock.waits == [5.0, 5.0, 5.0, 5.0]
    # 15 s passed with a 10 s ttl: only the refreshes kept the key.
    assert stored(mm_fake, "mutex_long") is not None
    refreshes = mm_fake.calls_to("KVSetWithOptions")[1:]
    assert len(refreshes) == 3
    assert all(c["options"].old_value == c["value"] for c in refreshes)
    assert not mutex.lost
    mutex.release()


def test_refresher_notices_a_lost_lock(
    kv: KVStore, clock: StepClock, mm_fake: FakeMattermost, caplog: pytest.LogCaptureFixture
) -> None:
    mutex = kv.mutex("long", ttl=4, clock=clock)
    other = kv.mutex("long", ttl=4, clock=clock)

    def paused_past_expiry() -> None:
        clock.advance(10)  # e.g. a stalled process: the lock expired...
        assert other.try_acquire()  # ...and another instance took it

    clock.refresh_script = [paused_past_expiry]
    with caplog.at_level(logging.ERROR, logger="mattermost_plugin.kv"):
        mutex.acquire()
        assert mutex._refresher is not None
        mutex._refresher.join()
    assert mutex.lost
    assert "expired while held" in caplog.text
    mutex.release()
    other.release()


def test_transient_errors_are_retried(
    kv: KVStore, clock: StepClock, mm_fake: FakeMattermost
) -> None:
    failures = [ServiceUnavailableError("database restarting")] * 2

    def flaky(request: Any) -> Any:
        if failures:
            raise failures.pop()
        from mattermost_plugin.testing._models import kv_set_with_options

        o = request.options
        return kv_set_with_options(
            mm_fake, mm_fake.plugin_id, request.key, request.value,
            atomic=o.atomic, old_value=o.old_value, expire_in_seconds=o.expire_in_seconds,
        )  # fmt: skip

    mm_fake.on("KVSetWithOptions", flaky)
    mutex = kv.mutex("job", clock=clock)
    mutex.acquire()
    assert len(clock.sleeps) == 2
    assert mutex.locked


def test_mutex_misuse(kv: KVStore, clock: StepClock) -> None:
    mutex = kv.mutex("job", clock=clock)
    with pytest.raises(RuntimeError, match="which is not held"):
        mutex.release()
    with pytest.raises(ValueError, match="ttl must be at least 2 seconds"):
        kv.mutex("job", ttl=1)
    with pytest.raises(ValueError, match="needs a name"):
        kv.mutex("")


async def test_async_mutex(akv: AsyncKVStore, clock: StepClock, mm_fake: FakeMattermost) -> None:
    first = akv.mutex("sync", ttl=6, clock=clock)
    assert isinstance(first, AsyncKVMutex)
    clock.refresh_script = [lambda: None]
    async with first:
        assert stored(mm_fake, "mutex_sync") is not None
        assert first._refresher is not None
        await first._refresher
        assert clock.waits == [3.0, 3.0]
        second = akv.mutex("sync", clock=clock, timeout=1)
        with pytest.raises(LockTimeoutError):
            await second.acquire()
    assert stored(mm_fake, "mutex_sync") is None
    assert await second.try_acquire()
    await second.release()
    with pytest.raises(RuntimeError, match="not held"):
        await second.release()


def test_sync_mutex_type(kv: KVStore) -> None:
    assert isinstance(kv.mutex("x"), KVMutex)
