"""Many placements on the paper venue in one atomic Redis transaction (a copy fan-out).

Hyperliquid takes a batch of orders in one signed action; the paper venue's equivalent takes a
batch across accounts, because a fan-out places one order in each of thousands of followers'
accounts at once. Placing them one by one costs several Redis round trips each; here the batch
costs a handful:

1. read every account the batch touches with one script call, which also returns a digest of
   what it read, and reserve the order and fill ids the batch can need (one script call);
2. decide every placement in memory with the venue's own matching code
   (``PaperVenue._decide``), against an in-memory snapshot that also takes each placement's
   writes, so two placements in one account see each other;
3. apply every write, and the placement log, in one script call that first recomputes the
   digest over the same keys and applies nothing if any of them changed meanwhile -- the
   batch is then read and decided again. All or nothing, like a single placement (which uses
   WATCH; watching thousands of keys costs Redis O(n^2), a compare-and-set script does not).

Each answer has exactly the shape ``PaperVenue.order`` returns, so the adapter's parsing applies.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trading.exchanges.paper.venue import PaperVenue
from trading.marketdata.store import market_reads

# The read set: ARGV[1] = JSON {"hashes": [key, ...], "fields": [[key, field], ...]}. Keys go in
# ARGV, not KEYS: the paper venue's Redis is one node, and encoding ten thousand KEYS costs the
# client more than the whole script costs the server.
_DIGEST = """
local function digest(spec)
  local parts = {}
  for _, key in ipairs(spec.hashes) do
    local flat = redis.call('HGETALL', key)
    local items = {}
    for i = 1, #flat, 2 do items[#items + 1] = flat[i] .. '=' .. flat[i + 1] end
    table.sort(items)
    parts[#parts + 1] = key .. '{' .. table.concat(items, ';') .. '}'
  end
  for _, kf in ipairs(spec.fields) do
    local v = redis.call('HGET', kf[1], kf[2])
    parts[#parts + 1] = kf[1] .. '[' .. kf[2] .. ']=' .. (v or '')
  end
  return redis.sha1hex(table.concat(parts, '|'))
end
"""

# Returns {digest, hash 1 (flat), ..., hash n, field 1 or false, ...}.
_READ_ACCOUNTS = (
    _DIGEST
    + """
local spec = cjson.decode(ARGV[1])
local out = {digest(spec)}
for _, key in ipairs(spec.hashes) do out[#out + 1] = redis.call('HGETALL', key) end
for _, kf in ipairs(spec.fields) do
  local v = redis.call('HGET', kf[1], kf[2])
  if v then out[#out + 1] = v else out[#out + 1] = false end
end
return out
"""
)

# ARGV[1] = the read set, ARGV[2] = its digest when read, ARGV[3] = JSON [[command, key,
# arguments...], ...]. Applies the writes only if nothing read has changed; returns 1, else 0.
_APPLY_WRITES = (
    _DIGEST
    + """
if digest(cjson.decode(ARGV[1])) ~= ARGV[2] then return 0 end
for _, op in ipairs(cjson.decode(ARGV[3])) do
  local args = {}
  for j = 3, #op do args[#args + 1] = op[j] end
  redis.call(op[1], op[2], unpack(args))
end
return 1
"""
)

# KEYS = counters; ARGV[1] = floor (epoch-ms x 1000), ARGV[1 + i] = how many ids of counter i.
# Returns the last id reserved of each counter (one round trip for every counter a batch needs).
_RESERVE_IDS = """
local last = {}
for i, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 0 then redis.call('SET', key, ARGV[1]) end
  last[i] = redis.call('INCRBY', key, ARGV[i + 1])
end
return last
"""


@dataclass(frozen=True)
class Placement:
    """One order of a batch, in the venue's wire terms (what ``PaperVenue.order`` takes)."""

    user: str
    coin: str
    is_buy: bool
    sz: str
    limit_px: str
    tif: str
    reduce_only: bool
    cloid: str
    leverage: int | None = None


class _Snapshot:
    """The watched keys as read at the start of the batch, plus the batch's own writes: it
    answers the reads ``PaperVenue._decide``/``_match`` make of their pipeline."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}
        self.known: dict[str, set[str]] = {}  # hash key -> fields read individually

    def hgetall(self, key: str) -> dict[str, str]:
        return dict(self.hashes.get(key, {}))

    def hget(self, key: str, name: str) -> str | None:
        return self.hashes.get(key, {}).get(name)

    def hexists(self, key: str, name: str) -> bool:
        return name in self.hashes.get(key, {})

    def apply(self, command: str, args: tuple[Any, ...]) -> None:
        if command == "hset":
            key, name, value = args
            self.hashes.setdefault(key, {})[str(name)] = str(value)
        elif command == "hdel":
            key, name = args
            self.hashes.get(key, {}).pop(str(name), None)


class _BatchVenue(PaperVenue):
    """The venue, for the length of one batch: quotes and marks read once, ids reserved."""

    def __init__(self, venue: PaperVenue) -> None:
        self.__dict__.update(venue.__dict__)
        self._quotes: dict[str, tuple[Decimal, Decimal, Decimal, Decimal]] = {}
        self._mark_cache: dict[str, Decimal] = {}
        self._ids: dict[str, list[int]] = {}

    def reserve(self, counts: dict[str, int]) -> None:
        """Reserve ``counts[counter]`` ids of each counter, in one script call."""
        wanted = {counter: count for counter, count in counts.items() if count > 0}
        self._ids.update({counter: [] for counter in counts})
        if not wanted:
            return
        floor = int(time.time() * 1000) * 1000
        keys = [self._key("seq", counter) for counter in wanted]
        lasts = self.client.eval(_RESERVE_IDS, len(keys), *keys, floor, *wanted.values())
        for (counter, count), last in zip(wanted.items(), lasts, strict=True):
            self._ids[counter] = list(range(int(last) - count + 1, int(last) + 1))

    def prefetch(self, snapshot: _Snapshot, placements: Sequence[Placement]) -> None:
        """Book tops of the batch's markets and marks of every market its accounts hold, in
        one pipeline, before deciding (each read on its own would be a round trip)."""
        coins = sorted({p.coin for p in placements if p.coin in self.markets})
        held = {
            coin
            for p in placements
            for coin in snapshot.hgetall(self._key("pos", p.user))
            if coin in self.markets
        }
        marked = sorted(held | set(coins))
        books, prices = market_reads(self.price_venue, coins, marked)
        for coin in coins:
            book = books.get(coin)
            if book is not None and book.bids and book.asks:
                (bid, bid_size), (ask, ask_size) = book.bids[0], book.asks[0]
                self._quotes[coin] = (bid, bid_size, ask, ask_size)
        self._mark_cache.update({coin: snap.mark or snap.price for coin, snap in prices.items()})

    def _next(self, counter: str) -> int:
        reserved = self._ids.get(counter)
        if reserved:
            return reserved.pop(0)
        return super()._next(counter)

    def _quote(self, coin: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        if coin not in self._quotes:
            self._quotes[coin] = super()._quote(coin)
        return self._quotes[coin]

    def _marks(self, coins: list[str]) -> dict[str, Decimal]:
        missing = [c for c in coins if c not in self._mark_cache]
        if missing:
            self._mark_cache.update(super()._marks(missing))
        return {c: self._mark_cache[c] for c in coins if c in self._mark_cache}


def place_batch(venue: PaperVenue, placements: Sequence[Placement]) -> list[dict[str, Any]]:
    """Place ``placements`` atomically; one answer per placement, in order (module docstring)."""
    if not placements:
        return []
    venue._sleep()  # the batch travelling to the venue (one request)
    users = sorted({p.user for p in placements})
    account_keys = {
        user: [venue._key(name, user) for name in ("acct", "pos", "orders", "lev")]
        for user in users
    }
    read_set = json.dumps(
        {
            "hashes": [
                key for keys in account_keys.values() for key in (keys[0], keys[1], keys[3])
            ],
            "fields": [[account_keys[p.user][2], p.cloid] for p in placements],
        }
    )
    apply = venue.client.register_script(_APPLY_WRITES)
    while True:
        batch = _BatchVenue(venue)
        snapshot, digest = _read(venue.client, read_set)
        batch.reserve({"oid": len(placements), "tid": len(placements)})
        batch.prefetch(snapshot, placements)
        answers, writes = _decide_all(batch, snapshot, placements)
        now = int(time.time() * 1000)
        log = [json.dumps(_logged(placement, now)) for placement in placements]
        for start in range(0, len(log), 500):  # Lua's unpack has a stack limit
            writes.append(("rpush", (venue._key("placements"), *log[start : start + 500])))
        for placement in placements:
            writes.append(("hincrby", (venue._key("placement_counts"), placement.cloid, 1)))
        if apply(args=[read_set, digest, _encode(writes)]):
            break  # else an account changed since it was read: decide the batch again
    venue._sleep()  # the answer travelling back
    return answers


def _read(client: Any, read_set: str) -> tuple[_Snapshot, str]:
    """Every account the batch touches, and the digest of what was read, in one script call."""
    spec = json.loads(read_set)
    results = client.register_script(_READ_ACCOUNTS)(args=[read_set])
    digest, hashes, fields = (
        results[0],
        results[1 : 1 + len(spec["hashes"])],
        results[1 + len(spec["hashes"]) :],
    )
    snapshot = _Snapshot()
    for key, flat in zip(spec["hashes"], hashes, strict=True):
        snapshot.hashes[key] = dict(zip(flat[::2], flat[1::2], strict=True))
    for (key, field), value in zip(spec["fields"], fields, strict=True):
        if value:
            snapshot.hashes.setdefault(key, {})[field] = str(value)
    return snapshot, str(digest)


def _encode(writes: list[tuple[str, tuple[Any, ...]]]) -> str:
    """The writes as one JSON argument of the apply script."""
    return json.dumps(
        [[command, *(str(value) for value in args)] for command, args in writes],
        separators=(",", ":"),
    )


def _decide_all(
    venue: _BatchVenue, snapshot: _Snapshot, placements: Sequence[Placement]
) -> tuple[list[dict[str, Any]], list[tuple[str, tuple[Any, ...]]]]:
    answers: list[dict[str, Any]] = []
    writes: list[tuple[str, tuple[Any, ...]]] = []
    for placement in placements:
        if placement.leverage:
            market = venue.markets.get(placement.coin)
            if market is not None and 1 <= placement.leverage <= market.max_leverage:
                write = (
                    "hset",
                    (venue._key("lev", placement.user), placement.coin, placement.leverage),
                )
                snapshot.apply(*write)
                writes.append(write)
        answer, placed = venue._decide(
            snapshot,
            user=placement.user,
            coin=placement.coin,
            is_buy=placement.is_buy,
            sz=placement.sz,
            limit_px=placement.limit_px,
            tif=placement.tif,
            reduce_only=placement.reduce_only,
            cloid=placement.cloid,
            oid=venue._next("oid"),
        )
        for write in placed:
            snapshot.apply(*write)
        writes.extend(placed)
        answers.append(answer)
    return answers, writes


def _logged(placement: Placement, now: int) -> dict[str, Any]:
    return {
        "cloid": placement.cloid,
        "user": placement.user,
        "coin": placement.coin,
        "side": "B" if placement.is_buy else "A",
        "sz": placement.sz,
        "px": placement.limit_px,
        "tif": placement.tif,
        "reduceOnly": placement.reduce_only,
        "t": now,
    }
