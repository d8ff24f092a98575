"""The paper venue's account side: balances, positions (clearinghouseState), order lookups,
fills, the placement log, and the admin helpers tests and demos use."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import redis

from trading import pnl
from trading.exchanges.paper.state import DEFAULT_LEVERAGE, UNIVERSE, PaperState
from trading.rounding import to_wire


class PaperAccounts(PaperState):
    def meta(self) -> dict[str, Any]:
        return {
            "universe": [
                {"name": m.name, "szDecimals": m.sz_decimals, "maxLeverage": m.max_leverage}
                for m in UNIVERSE
            ]
        }

    def all_mids(self) -> dict[str, str]:
        return {coin: to_wire(px) for coin, px in self._marks(list(self.markets)).items()}

    def deposit(self, user: str, amount: Decimal) -> Decimal:
        with self.client.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(self._key("acct", user))
                    balance = self._balance(pipe.hget(self._key("acct", user), "balance"))
                    pipe.multi()
                    pipe.hset(self._key("acct", user), "balance", to_wire(balance + amount))
                    pipe.execute()
                    return balance + amount
                except redis.WatchError:
                    continue

    def set_balance(self, user: str, amount: Decimal) -> None:
        self.client.hset(self._key("acct", user), "balance", to_wire(amount))

    def set_position(self, user: str, coin: str, szi: Decimal, entry: Decimal) -> None:
        """Change a position directly, as if the user traded on the venue's own website."""
        key = self._key("pos", user)
        if szi == 0:
            self.client.hdel(key, coin)
        else:
            self.client.hset(
                key,
                coin,
                json.dumps({"szi": to_wire(szi), "entry": to_wire(entry), "lev": DEFAULT_LEVERAGE}),
            )

    def update_leverage(self, *, user: str, coin: str, leverage: int) -> dict[str, Any]:
        market = self.markets.get(coin)
        if market is None or not 1 <= leverage <= market.max_leverage:
            return {"status": "err", "response": "Invalid leverage value"}
        self.client.hset(self._key("lev", user), coin, leverage)
        return {"status": "ok", "response": {"type": "default"}}

    def clearinghouse_state(self, *, user: str) -> dict[str, Any]:
        balance = self._balance(self.client.hget(self._key("acct", user), "balance"))
        positions = {
            coin: self._load(raw)
            for coin, raw in self.client.hgetall(self._key("pos", user)).items()
        }
        marks = self._marks(list(positions))
        account_value, margin_used, notional = balance, Decimal(0), Decimal(0)
        assets = []
        for coin, pos in sorted(positions.items()):
            szi, entry = Decimal(pos["szi"]), Decimal(pos["entry"])
            mark = marks.get(coin, entry)
            lev = Decimal(pos.get("lev", DEFAULT_LEVERAGE))
            upnl = pnl.unrealized_pnl(szi, entry, mark)
            used = pnl.margin_used(szi, mark, lev)
            account_value += upnl
            margin_used += used
            notional += abs(szi) * mark
            assets.append((coin, szi, entry, mark, lev, upnl, used))
        maintenance = sum(
            (
                abs(a[1]) * a[3] * pnl.maintenance_margin_rate(self.markets[a[0]].max_leverage)
                for a in assets
            ),
            Decimal(0),
        )
        result = []
        for coin, szi, entry, mark, lev, upnl, used in assets:
            mmr = pnl.maintenance_margin_rate(self.markets[coin].max_leverage)
            liq = pnl.liquidation_price(
                quantity=szi, mark_price=mark, margin_available=account_value - maintenance, mmr=mmr
            )
            result.append(
                {
                    "type": "oneWay",
                    "position": {
                        "coin": coin,
                        "szi": to_wire(szi),
                        "entryPx": to_wire(entry),
                        "leverage": {"type": "cross", "value": int(lev)},
                        "liquidationPx": to_wire(liq) if liq else None,
                        "marginUsed": to_wire(used),
                        "positionValue": to_wire(pnl.q8(abs(szi) * mark)),
                        "unrealizedPnl": to_wire(upnl),
                        "returnOnEquity": to_wire(pnl.q8(upnl / used)) if used else "0",
                    },
                }
            )
        summary = {
            "accountValue": to_wire(pnl.q8(account_value)),
            "totalMarginUsed": to_wire(margin_used),
            "totalNtlPos": to_wire(notional),
            "totalRawUsd": to_wire(balance),
        }
        return {
            "assetPositions": result,
            "marginSummary": summary,
            "crossMarginSummary": summary,
            "withdrawable": to_wire(max(account_value - margin_used, Decimal(0))),
        }

    def order_status(self, *, user: str, cloid: str) -> dict[str, Any]:
        self._sleep()
        order = self._load(self.client.hget(self._key("orders", user), cloid))
        if not order:
            return {"status": "unknownOid"}
        status = order.pop("status", "open")
        timestamp = order.pop("statusTimestamp", order.get("timestamp"))
        return {
            "status": "order",
            "order": {"order": order, "status": status, "statusTimestamp": timestamp},
        }

    def open_orders(self, *, user: str) -> list[dict[str, Any]]:
        cloids = sorted(self.client.smembers(self._key("open", user)))
        if not cloids:
            return []
        raws = self.client.hmget(self._key("orders", user), cloids)
        orders = [self._load(raw) for raw in raws if raw]
        return [order for order in orders if order.get("status") == "open"]

    def user_fills_by_time(self, *, user: str, start_ms: int) -> list[dict[str, Any]]:
        fills = [self._load(raw) for raw in self.client.lrange(self._key("fills", user), 0, -1)]
        return [fill for fill in fills if int(fill["time"]) >= start_ms]

    def placements(self) -> list[dict[str, Any]]:
        return [self._load(raw) for raw in self.client.lrange(self._key("placements"), 0, -1)]

    def placement_counts(self) -> dict[str, int]:
        return {
            str(k): int(v) for k, v in self.client.hgetall(self._key("placement_counts")).items()
        }

    def wipe(self) -> int:
        """Delete every key of this venue instance (tests, `make run` reset)."""
        keys = list(self.client.scan_iter(match=f"{self.prefix}*", count=500))
        for start in range(0, len(keys), 500):
            self.client.delete(*keys[start : start + 500])
        return len(keys)
