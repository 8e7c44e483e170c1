"""Per-user strike counts in the plugin's KV store.

One JSON record per user under ``strikes_<user id>``: ``{"count": 3, "last_at": <millis>}``.
Every change goes through the SDK's ``update`` (read, then compare-and-set, retried when another
writer got in between), so two posts by the same user handled at the same moment, on one server
or on two servers of a cluster, both count.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from mattermost_plugin.kv import AsyncKVStore, KVStore

KEY_PREFIX = "strikes_"
# A compare-and-set fails only when another writer succeeded in between, so with fewer than
# this many strikes for one user landing at the same moment, every one of them counts.
MAX_ATTEMPTS = 20


@dataclass(frozen=True)
class StrikeRecord:
    user_id: str
    count: int
    last_at: int
    """When the last strike was recorded, in milliseconds since the epoch (0: never)."""


def key_of(user_id: str) -> str:
    return KEY_PREFIX + user_id


def now_millis() -> int:
    return time.time_ns() // 1_000_000


def _record(user_id: str, value: Any) -> StrikeRecord:
    # A value this plugin did not write (or none) counts as no strikes rather than breaking
    # moderation for that user.
    if not isinstance(value, dict):
        return StrikeRecord(user_id, 0, 0)
    count, last_at = value.get("count"), value.get("last_at")
    return StrikeRecord(
        user_id,
        count if isinstance(count, int) and count > 0 else 0,
        last_at if isinstance(last_at, int) else 0,
    )


async def add_strike(kv: AsyncKVStore, user_id: str, at: int | None = None) -> StrikeRecord:
    """Count one more strike for ``user_id`` and return the new record."""
    stamp = now_millis() if at is None else at

    def bump(current: Any) -> dict[str, int]:
        return {"count": _record(user_id, current).count + 1, "last_at": stamp}

    return _record(user_id, await kv.update(key_of(user_id), bump, max_attempts=MAX_ATTEMPTS))


async def strikes_of(kv: AsyncKVStore, user_id: str) -> StrikeRecord:
    return _record(user_id, await kv.get(key_of(user_id)))


async def reset_strikes(kv: AsyncKVStore, user_id: str) -> int:
    """Delete the user's strikes; returns how many there were (a strike that lands during the
    reset is either counted in that number or survives it, never lost silently)."""
    previous = 0

    def clear(current: Any) -> None:
        nonlocal previous
        previous = _record(user_id, current).count

    await kv.update(key_of(user_id), clear, max_attempts=MAX_ATTEMPTS)
    return previous


def all_strikes(kv: KVStore) -> list[StrikeRecord]:
    """Every user with strikes, most strikes first (then most recent)."""
    records = [
        _record(key.removeprefix(KEY_PREFIX), kv.get(key))
        for key in kv.list_keys(prefix=KEY_PREFIX)
    ]
    records = [r for r in records if r.count > 0]
    return sorted(records, key=lambda r: (-r.count, -r.last_at, r.user_id))
