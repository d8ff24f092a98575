"""Ingestion buffers in Redis: producers never wait for ClickHouse, drains are at-least-once.

One Redis list per stream (``ticks``, ``trader_events``, ...). A producer (the tick listener
in the web/beat process, the copy engine, a fill watcher) appends one *item* -- a batch with
its own id -- and returns. A drain (Celery, every second, or at once when a stream passes
its size threshold) takes the items at the head of the list and inserts them into ClickHouse
as one block, then removes them:

1. **claim** (under a per-stream lock): the items to take are fixed in an *in-flight plan*
   (how many, and a deduplication token derived from their ids). A drain that finds a plan
   left by a failed attempt takes exactly the same items again with the same token.
2. **insert** with ``insert_deduplication_token`` = that token, so ClickHouse drops a block
   it has already stored (an attempt that inserted and then died before step 3).
3. **ack** in one Redis transaction: remove the items, drop the plan, remember the item ids
   as processed (an item enqueued twice is skipped the second time), and apply the caller's
   own state changes (the data-quality state) -- all or nothing.

ClickHouse unreachable: the drain stops at step 2, the rows wait in Redis and the next drain
catches up. A batch that ClickHouse keeps *refusing* (a server error, not a connection
error) moves to the stream's dead-letter list after ``DRAIN_MAX_ATTEMPTS`` attempts, where
the admin's quality report counts it; nothing is dropped silently.

Item layout: ``b"AB1" | uint32 header length | JSON header {id, rows, at} | payload``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

from analytics.conf import key_prefix, setting

STREAMS = (
    "ticks",
    "trader_events",
    "copy_trade_events",
    "candles",
    "funding",
    "open_interest",
    "book_snapshots",
    "equity_samples",
    "metrics",
)
_MAGIC = b"AB1"


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=10, health_check_interval=30)


def buffer_redis() -> redis.Redis:
    url = setting("BUFFER_REDIS_URL")
    if not url:
        base = str(getattr(settings, "REDIS_URL", "redis://127.0.0.1:6379/0"))
        head = base.rpartition("/")[0] if base.count("/") > 2 else base
        url = f"{head}/6"
    return _client(str(url))


@dataclass(frozen=True)
class BufferItem:
    id: str
    rows: int
    enqueued_at: float
    payload: bytes

    def encode(self) -> bytes:
        head = json.dumps({"id": self.id, "rows": self.rows, "at": self.enqueued_at}).encode()
        return _MAGIC + struct.pack("<I", len(head)) + head + self.payload

    @classmethod
    def decode(cls, raw: bytes) -> BufferItem:
        if raw[:3] != _MAGIC:
            raise ValueError("not a buffer item")
        (size,) = struct.unpack_from("<I", raw, 3)
        head = json.loads(raw[7 : 7 + size])
        return cls(
            id=str(head["id"]),
            rows=int(head["rows"]),
            enqueued_at=float(head["at"]),
            payload=raw[7 + size :],
        )


@dataclass(frozen=True)
class Claim:
    stream: str
    count: int  # items at the head of the list this claim covers (processed ones included)
    items: list[BufferItem]  # the ones still to insert
    skipped: list[str]  # ids already processed earlier: removed with the others on ack
    token: str
    attempts: int
    claimed_rows: int  # rows of all ``count`` items, for the pending-rows counter

    @property
    def rows(self) -> int:
        return sum(item.rows for item in self.items)


class Buffer:
    """One stream's list, in-flight plan, processed ids and dead letters."""

    def __init__(self, stream: str, client: redis.Redis | None = None) -> None:
        if stream not in STREAMS:
            raise ValueError(f"unknown buffer stream {stream!r}")
        self.stream = stream
        self.redis = client or buffer_redis()
        base = f"{key_prefix()}buf:{stream}"
        self.list_key = base
        self.rows_key = f"{base}:rows"
        self.inflight_key = f"{base}:inflight"
        self.dead_key = f"{base}:dead"
        self.lock_key = f"{base}:lock"
        self.processed_prefix = f"{base}:done:"

    # -- producers

    def push(self, payload: bytes, *, rows: int, item_id: str | None = None) -> BufferItem:
        item = BufferItem(
            id=item_id or uuid.uuid4().hex, rows=rows, enqueued_at=time.time(), payload=payload
        )
        pipe = self.redis.pipeline(transaction=True)
        pipe.rpush(self.list_key, item.encode())
        pipe.incrby(self.rows_key, rows)
        _, total = pipe.execute()
        self.last_total_rows = int(total)
        return item

    def pending_rows(self) -> int:
        return int(self.redis.get(self.rows_key) or 0)

    def pending_items(self) -> int:
        return int(self.redis.llen(self.list_key))

    def dead_items(self) -> int:
        return int(self.redis.llen(self.dead_key))

    # -- drains

    @contextmanager
    def locked(self, timeout: float = 120.0, wait: float = 0.0) -> Iterator[bool]:
        """Hold the stream's drain lock; yields False when another drain holds it."""
        lock = self.redis.lock(self.lock_key, timeout=timeout, blocking_timeout=wait)
        acquired = bool(lock.acquire(blocking=wait > 0))
        try:
            yield acquired
        finally:
            if acquired:
                # Expired meanwhile (a very long drain): nothing left to release.
                with contextlib.suppress(redis.exceptions.LockError):
                    lock.release()

    def claim(self, *, max_rows: int, max_items: int = 10_000) -> Claim | None:
        """The items to drain next (call with the lock held); None when the list is empty."""
        raw_plan = self.redis.get(self.inflight_key)
        if raw_plan:
            plan = json.loads(raw_plan)
            count, token, attempts = int(plan["count"]), str(plan["token"]), int(plan["attempts"])
            raws = self.redis.lrange(self.list_key, 0, count - 1)
            if len(raws) < count:  # the list was changed behind our back: start over
                self.redis.delete(self.inflight_key)
                return self.claim(max_rows=max_rows, max_items=max_items)
            attempts += 1
        else:
            raws = self.redis.lrange(self.list_key, 0, max_items - 1)
            if not raws:
                return None
            count, rows = 0, 0
            for raw in raws:
                item_rows = BufferItem.decode(raw).rows
                if count and rows + item_rows > max_rows:
                    break
                count += 1
                rows += item_rows
            raws = raws[:count]
            ids = [BufferItem.decode(raw).id for raw in raws]
            token = f"{self.stream}:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
            attempts = 1
        self.redis.set(
            self.inflight_key, json.dumps({"count": count, "token": token, "attempts": attempts})
        )
        items = [BufferItem.decode(raw) for raw in raws]
        done = self.redis.mget([self.processed_prefix + item.id for item in items])
        fresh: list[BufferItem] = []
        skipped: list[str] = []
        taken: set[str] = set()
        for item, seen in zip(items, done, strict=True):
            # Processed before, or enqueued twice within this claim: inserted once.
            if seen or item.id in taken:
                skipped.append(item.id)
            else:
                fresh.append(item)
                taken.add(item.id)
        return Claim(
            stream=self.stream,
            count=count,
            items=fresh,
            skipped=skipped,
            token=token,
            attempts=attempts,
            claimed_rows=sum(item.rows for item in items),
        )

    def ack(self, claim: Claim, *, extra: Callable[[Any], None] | None = None) -> None:
        """Remove the claimed items and record them as processed, with ``extra(pipeline)``'s
        commands in the same transaction."""
        ttl = int(setting("PROCESSED_BATCH_TTL_SECONDS"))
        pipe = self.redis.pipeline(transaction=True)
        pipe.ltrim(self.list_key, claim.count, -1)
        pipe.delete(self.inflight_key)
        pipe.decrby(self.rows_key, claim.claimed_rows)
        for item in claim.items:
            pipe.set(self.processed_prefix + item.id, 1, ex=ttl)
        if extra is not None:
            extra(pipe)
        pipe.execute()

    def dead_letter(self, claim: Claim, error: str) -> None:
        """Move the claimed items to the dead-letter list (with the error), atomically."""
        raws = self.redis.lrange(self.list_key, 0, claim.count - 1)
        pipe = self.redis.pipeline(transaction=True)
        for raw in raws:
            pipe.rpush(self.dead_key, raw)
        pipe.rpush(f"{self.dead_key}:errors", json.dumps({"at": time.time(), "error": error}))
        pipe.ltrim(self.list_key, claim.count, -1)
        pipe.delete(self.inflight_key)
        pipe.decrby(self.rows_key, claim.claimed_rows)
        pipe.execute()

    def is_processed(self, item_id: str) -> bool:
        return bool(self.redis.exists(self.processed_prefix + item_id))

    def mark_processed(self, pipe: Any, item_id: str) -> None:
        pipe.set(self.processed_prefix + item_id, 1, ex=int(setting("PROCESSED_BATCH_TTL_SECONDS")))

    def requeue_dead(self) -> int:
        """Put dead letters back at the head of the stream (staff, after fixing the cause)."""
        moved = 0
        while True:
            raw = self.redis.rpop(self.dead_key)
            if raw is None:
                return moved
            item = BufferItem.decode(raw)
            pipe = self.redis.pipeline(transaction=True)
            pipe.lpush(self.list_key, raw)
            pipe.incrby(self.rows_key, item.rows)
            pipe.execute()
            moved += 1

    def clear(self) -> None:
        keys = list(self.redis.scan_iter(match=f"{self.list_key}*", count=1000))
        if keys:
            self.redis.delete(*keys)
