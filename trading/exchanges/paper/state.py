"""The paper venue's state in Redis, its market universe and rules, and the shared helpers.

See trading.exchanges.paper.venue for what the venue does; this module is what it stands on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import redis

from trading.marketdata.simulator import DEMO_MARKETS
from trading.marketdata.store import book_get, prices_get
from trading.rounding import PriceRules, SizeRules
from trading.stores import decimal_setting, key_prefix, paper_redis, setting

MIN_NOTIONAL = Decimal(10)
# How far the visible book extends beyond the best level, in multiples of its size, and how
# many basis points of price each multiple costs a taker.
DEPTH_LEVELS = Decimal(5)
IMPACT_BPS_PER_LEVEL = Decimal(2)
# Share of the best level's size a resting order can take per market step.
RESTING_FILL_SHARE = Decimal("0.5")
DEFAULT_LEVERAGE = 20

# Maximum leverage by coin for the demo universe (Hyperliquid's, rounded).
_MAX_LEVERAGE = {"BTC": 40, "ETH": 25, "SOL": 20, "ARB": 10, "DOGE": 10, "kPEPE": 10}


@dataclass(frozen=True)
class PaperMarket:
    name: str
    sz_decimals: int
    max_leverage: int

    @property
    def price_rules(self) -> PriceRules:
        return PriceRules.hyperliquid_perp(self.sz_decimals)

    @property
    def size_rules(self) -> SizeRules:
        return SizeRules.from_decimals(self.sz_decimals, min_notional=MIN_NOTIONAL)


UNIVERSE: tuple[PaperMarket, ...] = tuple(
    PaperMarket(spec.symbol, spec.sz_decimals, _MAX_LEVERAGE.get(spec.symbol, 10))
    for spec in DEMO_MARKETS
)


_NEXT_ID = """
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
return redis.call('INCR', KEYS[1])
"""


class Refusal(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_response(message: str) -> dict[str, Any]:
    return {
        "status": "ok",
        "response": {"type": "order", "data": {"statuses": [{"error": message}]}},
    }


class PaperState:
    """Configuration, Redis keys and reads shared by the venue's order and account sides."""

    def __init__(
        self,
        *,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        price_venue: str | None = None,
        taker_fee_bps: Decimal | None = None,
        maker_fee_bps: Decimal | None = None,
        starting_balance: Decimal | None = None,
        latency_ms: int | None = None,
    ) -> None:
        self.client = client or paper_redis()
        self.prefix = (key_prefix() if prefix is None else prefix) + "paper:"
        self.price_venue = price_venue or str(setting("MARKET_DATA_VENUE"))
        self.taker_fee_bps = (
            taker_fee_bps if taker_fee_bps is not None else decimal_setting("PAPER_TAKER_FEE_BPS")
        )
        self.maker_fee_bps = (
            maker_fee_bps if maker_fee_bps is not None else decimal_setting("PAPER_MAKER_FEE_BPS")
        )
        self.starting_balance = (
            starting_balance
            if starting_balance is not None
            else decimal_setting("PAPER_STARTING_BALANCE")
        )
        self.latency = (
            latency_ms if latency_ms is not None else int(setting("PAPER_LATENCY_MS"))
        ) / 1000
        self.markets = {market.name: market for market in UNIVERSE}

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _next(self, counter: str) -> int:
        # Ids start at the current epoch-ms x 1000, so a venue whose Redis was wiped never
        # hands out an id an earlier incarnation already used. One round trip (a script).
        key = self._key("seq", counter)
        return int(self.client.eval(_NEXT_ID, 1, key, int(time.time() * 1000) * 1000))

    def _sleep(self) -> None:
        if self.latency:
            time.sleep(self.latency)

    def _market(self, coin: str) -> PaperMarket:
        market = self.markets.get(coin)
        if market is None:
            raise Refusal(f"Unknown asset {coin}.")
        return market

    def _quote(self, coin: str) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """(bid, bid size, ask, ask size) from the latest published book top."""
        book = book_get(self.price_venue, coin)
        if book is None or not book.bids or not book.asks:
            raise Refusal(f"No market price for {coin}.")
        (bid, bid_size), (ask, ask_size) = book.bids[0], book.asks[0]
        return bid, bid_size, ask, ask_size

    def _marks(self, coins: list[str]) -> dict[str, Decimal]:
        snapshots = prices_get(self.price_venue, coins)
        return {coin: (snap.mark or snap.price) for coin, snap in snapshots.items()}

    @staticmethod
    def _load(raw: Any) -> dict[str, Any]:
        return json.loads(str(raw)) if raw else {}

    def _balance(self, raw: Any) -> Decimal:
        return Decimal(str(raw)) if raw is not None else self.starting_balance
