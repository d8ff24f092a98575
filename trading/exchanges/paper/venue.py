"""The paper venue: a simulated exchange with its own state, outside Tandem's tables.

It behaves like Hyperliquid where Tandem can tell the difference -- same answers (the
``/exchange`` and ``/info`` shapes), same rules (5 significant figures, lot sizes, a $10
minimum order value), fees on every fill (taker/maker bps) -- and like a market where it
matters: market and marketable limit orders fill against the latest published book top with
slippage that grows with size, orders larger than the visible depth fill partially (an IOC
cancels its rest, a GTC order rests), resting limit orders fill in slices as the price crosses
them, and it refuses what a real venue refuses (insufficient margin, reduce-only that would
increase, price off tick, size below the minimum, unknown symbol, post-only that would cross).

State lives in Redis (trading.stores.paper_redis) so it survives a killed worker and is shared by
every process. Each placement is one optimistic compare-and-set (trading.exchanges.paper.bulk:
read the account with a digest, decide, apply every write in one script only if the digest still
holds): a process killed half-way changes nothing, exactly like a request that never arrived.
Every placement received is logged (``placements`` list and ``placement_counts`` per cloid)
*inside* that script, so a test can prove no cloid was ever placed twice.
"""

from __future__ import annotations

import hashlib
import json
import time
from decimal import ROUND_DOWN, Decimal
from typing import Any

import redis

from trading import pnl
from trading.exchanges.paper.accounts import PaperAccounts
from trading.exchanges.paper.state import (
    DEFAULT_LEVERAGE,
    DEPTH_LEVELS,
    IMPACT_BPS_PER_LEVEL,
    MIN_NOTIONAL,
    RESTING_FILL_SHARE,
    UNIVERSE,
    PaperMarket,
    Refusal,
    error_response,
)
from trading.rounding import price_problem, price_round, to_wire

__all__ = ["UNIVERSE", "PaperMarket", "PaperVenue"]


class PaperVenue(PaperAccounts):
    """The venue: orders in, fills out (module docstring)."""

    def order(
        self,
        *,
        user: str,
        coin: str,
        is_buy: bool,
        sz: str,
        limit_px: str,
        tif: str,
        reduce_only: bool,
        cloid: str,
        leverage: int | None = None,
    ) -> dict[str, Any]:
        """Place one order; the answer has Hyperliquid's shape plus ``fills`` (paper only).

        A batch of one (trading.exchanges.paper.bulk): the same decision code and the same
        all-or-nothing compare-and-set as a fan-out, in about half the Redis round trips of
        WATCH / read / MULTI / EXEC (reads and ids come back from one script call each)."""
        from trading.exchanges.paper.bulk import Placement, place_batch

        return place_batch(
            self,
            [
                Placement(
                    user=user,
                    coin=coin,
                    is_buy=is_buy,
                    sz=sz,
                    limit_px=limit_px,
                    tif=tif,
                    reduce_only=reduce_only,
                    cloid=cloid,
                    leverage=leverage,
                )
            ],
        )[0]

    def _decide(
        self,
        pipe: Any,
        *,
        user: str,
        coin: str,
        is_buy: bool,
        sz: str,
        limit_px: str,
        tif: str,
        reduce_only: bool,
        cloid: str,
        oid: int,
    ) -> tuple[dict[str, Any], list[tuple[str, tuple[Any, ...]]]]:
        """Read the account (under WATCH) and decide: the answer and the writes that go with it.
        Nothing is written here; the caller applies ``writes`` atomically."""
        now = int(time.time() * 1000)
        order = {
            "coin": coin,
            "side": "B" if is_buy else "A",
            "limitPx": limit_px,
            "sz": sz,
            "origSz": sz,
            "oid": oid,
            "timestamp": now,
            "reduceOnly": reduce_only,
            "orderType": "Limit",
            "tif": tif,
            "cloid": cloid,
            "filledSz": "0",
            "avgPx": None,
        }
        writes: list[tuple[str, tuple[Any, ...]]] = [
            ("hset", (self._key("oids"), str(oid), f"{user}|{cloid}")),
        ]
        if pipe.hexists(self._key("orders", user), cloid):
            # Not stored: the first order with this cloid keeps its record.
            return error_response("Duplicate cloid: an order with this cloid exists."), writes[:0]
        try:
            answer, fills, state = self._match(pipe, user=user, order=order, taker=True)
        except Refusal as refused:
            order.update(status="rejected", statusTimestamp=now, error=refused.message)
            writes.append(("hset", (self._key("orders", user), cloid, json.dumps(order))))
            return error_response(refused.message), writes
        writes.extend(state)
        response = {
            "status": "ok",
            "response": {"type": "order", "data": {"statuses": [answer]}},
            "fills": fills,
        }
        return response, writes

    def _match(
        self,
        pipe: Any,
        *,
        user: str,
        order: dict[str, Any],
        taker: bool,
        max_size: Decimal | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, tuple[Any, ...]]]]:
        """Validate (new orders), fill what can fill, and describe the resulting state."""
        coin = order["coin"]
        market = self._market(coin)
        is_buy = order["side"] == "B"
        size = Decimal(order["sz"])
        limit = Decimal(order["limitPx"])
        tif = order["tif"]
        user_positions = {
            c: self._load(raw) for c, raw in pipe.hgetall(self._key("pos", user)).items()
        }
        position = user_positions.get(coin, {})
        szi = Decimal(position.get("szi", "0"))
        entry = Decimal(position.get("entry", "0"))
        leverage = int(pipe.hget(self._key("lev", user), coin) or 0) or min(
            DEFAULT_LEVERAGE, market.max_leverage
        )

        if taker:
            problem = price_problem(limit, market.price_rules)
            if problem:
                raise Refusal(f"Order has invalid price. {problem}")
            rules = market.size_rules
            if size <= 0 or size % rules.lot_size != 0:
                raise Refusal("Order has invalid size.")
            if size * limit < MIN_NOTIONAL:
                raise Refusal("Order must have minimum value of $10.")
        direction = 1 if is_buy else -1
        if order["reduceOnly"]:
            if szi == 0 or pnl.sign(szi) == direction:
                raise Refusal("Reduce only order would increase position.")
            size = min(size, abs(szi))
        if taker:
            increase = max(abs(szi + direction * size) - abs(szi), Decimal(0))
            if increase:
                self._check_margin(
                    pipe, user=user, positions=user_positions, required=increase * limit / leverage
                )

        bid, bid_size, ask, ask_size = self._quote(coin)
        touch, touch_size = (ask, ask_size) if is_buy else (bid, bid_size)
        marketable = (limit >= touch) if is_buy else (limit <= touch)
        now = int(time.time() * 1000)
        if taker and tif == "Alo" and marketable:
            raise Refusal(
                f"Post only order would have immediately matched, bbo was "
                f"{to_wire(bid)}@{to_wire(ask)}."
            )
        if taker and tif == "Ioc" and not marketable:
            raise Refusal("Order could not immediately match against any resting orders.")

        fill_size = Decimal(0)
        fill_price = limit
        if marketable and taker:
            # Taker: price walks away from the touch linearly in the size taken; the limit and
            # the visible depth cap how much can fill.
            # The best level fills at the touch; beyond it every further level's worth of
            # size costs IMPACT_BPS_PER_LEVEL more.
            lot = market.size_rules.lot_size
            depth = touch_size * DEPTH_LEVELS
            impact = IMPACT_BPS_PER_LEVEL / Decimal(10_000) / touch_size
            room = touch_size + abs(limit / touch - 1) / impact
            fill_size = min(size, depth, room).quantize(lot, rounding=ROUND_DOWN)
            beyond_touch = max(fill_size - touch_size, Decimal(0))
            raw_price = touch * (1 + direction * impact * beyond_touch)
            fill_price = price_round(raw_price, market.price_rules, "up" if is_buy else "down")
            fill_price = min(fill_price, limit) if is_buy else max(fill_price, limit)
            if fill_size == 0 and tif == "Ioc":
                raise Refusal("Order could not immediately match against any resting orders.")
        elif marketable:
            # Resting order crossed by the market: fills at its own limit, a slice at a time.
            lot = market.size_rules.lot_size
            share = (touch_size * RESTING_FILL_SHARE).quantize(lot, rounding=ROUND_DOWN)
            fill_size = min(size, max(share, lot), max_size or size)
        writes: list[tuple[str, tuple[Any, ...]]] = []
        fills: list[dict[str, Any]] = []
        filled_before = Decimal(order.get("filledSz", "0"))
        if fill_size > 0:
            fee_bps = self.taker_fee_bps if taker else self.maker_fee_bps
            new_state, leg = pnl.apply_fill(
                pnl.PositionState(szi, entry),
                pnl.Leg("buy" if is_buy else "sell", fill_size, fill_price),
            )
            fee = pnl.fee_for(fill_size * fill_price, fee_bps)
            tid = self._next("tid")
            fill = {
                "coin": coin,
                "px": to_wire(fill_price),
                "sz": to_wire(fill_size),
                "side": order["side"],
                "time": now,
                "startPosition": to_wire(szi),
                "dir": leg.direction,
                "closedPnl": to_wire(leg.realized_pnl),
                "hash": "0x" + hashlib.sha256(f"paper-{tid}".encode()).hexdigest(),
                "oid": order["oid"],
                "crossed": taker,
                "fee": to_wire(fee),
                "tid": tid,
                "cloid": order["cloid"],
                "feeToken": "USDC",
            }
            fills.append(fill)
            balance = self._balance(pipe.hget(self._key("acct", user), "balance"))
            writes.append(
                (
                    "hset",
                    (self._key("acct", user), "balance", to_wire(balance + leg.realized_pnl - fee)),
                )
            )
            if new_state.quantity == 0:
                writes.append(("hdel", (self._key("pos", user), coin)))
            else:
                writes.append(
                    (
                        "hset",
                        (
                            self._key("pos", user),
                            coin,
                            json.dumps(
                                {
                                    "szi": to_wire(new_state.quantity),
                                    "entry": to_wire(new_state.entry_price),
                                    "lev": leverage,
                                }
                            ),
                        ),
                    )
                )
            writes.append(("rpush", (self._key("fills", user), json.dumps(fill))))
            filled_total = filled_before + fill_size
            previous_avg = Decimal(order["avgPx"]) if order.get("avgPx") else Decimal(0)
            avg = (previous_avg * filled_before + fill_price * fill_size) / filled_total
            order["avgPx"] = to_wire(pnl.q8(avg))
            order["filledSz"] = to_wire(filled_total)
        # What is left of the order as placed (a reduce-only order clamped to the position
        # keeps its unfilled rest: an IOC cancels it, a resting order stays reduce-only).
        remaining = Decimal(order["sz"]) - fill_size
        order["sz"] = to_wire(remaining)
        order["statusTimestamp"] = now
        member = f"{order['cloid']}"
        if remaining == 0:
            order["status"] = "filled"
            answer: dict[str, Any] = {
                "filled": {
                    "totalSz": order["filledSz"],
                    "avgPx": order["avgPx"],
                    "oid": order["oid"],
                }
            }
        elif tif == "Ioc":
            order["status"] = "canceled"
            answer = {
                "filled": {
                    "totalSz": order["filledSz"],
                    "avgPx": order["avgPx"],
                    "oid": order["oid"],
                }
            }
        else:
            order["status"] = "open"
            answer = {"resting": {"oid": order["oid"]}}
        writes.append(("hset", (self._key("orders", user), order["cloid"], json.dumps(order))))
        if order["status"] == "open":
            writes.append(("sadd", (self._key("open", user), member)))
            writes.append(("sadd", (self._key("resting", coin), f"{user}|{member}")))
        else:
            writes.append(("srem", (self._key("open", user), member)))
            writes.append(("srem", (self._key("resting", coin), f"{user}|{member}")))
        return answer, fills, writes

    def _check_margin(
        self, pipe: Any, *, user: str, positions: dict[str, dict[str, Any]], required: Decimal
    ) -> None:
        balance = self._balance(pipe.hget(self._key("acct", user), "balance"))
        marks = self._marks(list(positions))
        value, used = balance, Decimal(0)
        for coin, pos in positions.items():
            szi, entry = Decimal(pos["szi"]), Decimal(pos["entry"])
            mark = marks.get(coin, entry)
            value += szi * (mark - entry)
            used += abs(szi) * mark / Decimal(pos.get("lev", DEFAULT_LEVERAGE))
        if required > value - used:
            raise Refusal("Insufficient margin to place order.")

    def cancel(
        self, *, user: str, coin: str, cloid: str | None = None, oid: int | None = None
    ) -> dict[str, Any]:
        self._sleep()
        failure = {
            "status": "ok",
            "response": {
                "type": "cancel",
                "data": {
                    "statuses": [{"error": "Order was never placed, already canceled, or filled."}]
                },
            },
        }
        if cloid is None and oid is not None:
            owner = self.client.hget(self._key("oids"), str(oid))
            if not owner or not str(owner).startswith(f"{user}|"):
                return failure
            cloid = str(owner).split("|", 1)[1]
        if cloid is None:
            return failure
        key = self._key("orders", user)
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    order = self._load(pipe.hget(key, cloid))
                    if order.get("status") != "open" or order.get("coin") != coin:
                        pipe.reset()
                        return failure
                    order.update(status="canceled", statusTimestamp=int(time.time() * 1000))
                    pipe.multi()
                    pipe.hset(key, cloid, json.dumps(order))
                    pipe.srem(self._key("open", user), cloid)
                    pipe.srem(self._key("resting", coin), f"{user}|{cloid}")
                    pipe.execute()
                    break
                except redis.WatchError:
                    continue
        self._sleep()
        return {"status": "ok", "response": {"type": "cancel", "data": {"statuses": ["success"]}}}

    def match_resting(self, coins: list[str] | None = None) -> int:
        """Fill resting orders the latest prices have crossed; returns the number of fills."""
        count = 0
        for coin in coins or list(self.markets):
            for member in sorted(self.client.smembers(self._key("resting", coin))):
                user, cloid = str(member).split("|", 1)
                count += self._match_one(user, cloid)
        return count

    def _match_one(self, user: str, cloid: str) -> int:
        keys = [self._key(name, user) for name in ("acct", "pos", "orders", "lev")]
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(*keys)
                    order = self._load(pipe.hget(self._key("orders", user), cloid))
                    if order.get("status") != "open":
                        pipe.reset()
                        return 0
                    try:
                        _, fills, writes = self._match(pipe, user=user, order=order, taker=False)
                    except Refusal:
                        # A reduce-only order whose position is gone: the venue cancels it.
                        order.update(
                            status="reduceOnlyCanceled", statusTimestamp=int(time.time() * 1000)
                        )
                        fills, writes = (
                            [],
                            [
                                ("hset", (self._key("orders", user), cloid, json.dumps(order))),
                                ("srem", (self._key("open", user), cloid)),
                                ("srem", (self._key("resting", order["coin"]), f"{user}|{cloid}")),
                            ],
                        )
                    if not fills and order.get("status") == "open":
                        pipe.reset()
                        return 0
                    pipe.multi()
                    for command, args in writes:
                        getattr(pipe, command)(*args)
                    pipe.execute()
                    return len(fills)
                except redis.WatchError:
                    continue
