"""A market simulator for the demo symbols: deterministic for a seed, realistic enough to trade.

Each step moves every market's mid by a log return drawn as

    r = -sigma^2 dt / 2 + sigma sqrt(dt) x T4 / sqrt(2)  +  J

where ``sigma`` is the market's annualised volatility, ``T4`` a Student-t draw with 4 degrees of
freedom (scaled to unit variance, so the tails are fat) and ``J`` a jump that happens with
probability ``jump_rate x dt`` and is normal with ``jump_sigma`` when it does (liquidations,
news). The spread widens with the size of the move; book sizes and traded volume are log-normal
around each market's depth. Prices follow the venue's tick rules (Hyperliquid: 5 significant
figures), so a simulated price is always a price an order could carry.

All randomness comes from one ``numpy.random.Generator`` (PCG64) drawn in a fixed order, and the
whole state -- prices, clock, sequence and the generator's state -- round-trips through JSON, so
the Celery beat task can persist it in Redis between steps and any process can continue it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np

from trading.marketdata.ticks import Tick
from trading.rounding import PriceRules, price_round

SECONDS_PER_YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class MarketSpec:
    symbol: str
    start_price: Decimal
    annual_vol: float  # e.g. 0.6 = 60 % a year
    sz_decimals: int
    half_spread_bps: float
    depth_usd: float  # typical size resting at the best level, in USD
    jump_rate_per_day: float = 2.0
    jump_sigma: float = 0.01

    @property
    def rules(self) -> PriceRules:
        return PriceRules.hyperliquid_perp(self.sz_decimals)


# Demo universe: Hyperliquid names and size decimals, plausible prices and volatilities.
DEMO_MARKETS: tuple[MarketSpec, ...] = (
    MarketSpec("BTC", Decimal("95000"), 0.55, 5, 0.5, 2_000_000, 1.0, 0.008),
    MarketSpec("ETH", Decimal("3300"), 0.70, 4, 0.8, 1_000_000, 1.5, 0.01),
    MarketSpec("SOL", Decimal("180"), 0.90, 2, 1.5, 400_000, 2.0, 0.015),
    MarketSpec("ARB", Decimal("0.80"), 1.00, 1, 3.0, 100_000, 2.0, 0.02),
    MarketSpec("DOGE", Decimal("0.25"), 1.00, 0, 2.5, 200_000, 2.0, 0.02),
    MarketSpec("kPEPE", Decimal("0.012"), 1.30, 0, 4.0, 80_000, 3.0, 0.03),
)


def _tick_size_at(price: Decimal, rules: PriceRules) -> Decimal:
    """The smallest price step at this magnitude (one unit of the last allowed decimal)."""
    allowed = rules.max_decimals if rules.max_decimals is not None else 8
    if rules.sig_figs is not None:
        allowed = min(allowed, max(rules.sig_figs - 1 - price.adjusted(), 0))
    return Decimal(1).scaleb(-allowed)


class MarketSimulator:
    def __init__(
        self,
        *,
        seed: int,
        markets: tuple[MarketSpec, ...] = DEMO_MARKETS,
        exchange: str = "paper",
        start: datetime | None = None,
    ) -> None:
        self.markets = markets
        self.exchange = exchange
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.prices: dict[str, float] = {m.symbol: float(m.start_price) for m in markets}
        self.clock = start or datetime(2025, 1, 1, tzinfo=UTC)
        self.sequence = 0

    # -- persistence
    def state(self) -> dict[str, Any]:
        return {
            "prices": self.prices,
            "clock": self.clock.isoformat(),
            "sequence": self.sequence,
            "rng": self.rng.bit_generator.state,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.prices.update({k: float(v) for k, v in state["prices"].items() if k in self.prices})
        self.clock = datetime.fromisoformat(state["clock"])
        self.sequence = int(state["sequence"])
        self.rng.bit_generator.state = state["rng"]

    # -- simulation
    def step(self, seconds: float = 1.0, *, at: datetime | None = None) -> list[Tick]:
        """Advance every market by ``seconds`` and return one tick per market."""
        if seconds <= 0:
            raise ValueError("a step must move time forward")
        self.clock = at or (self.clock + timedelta(seconds=seconds))
        dt = seconds / SECONDS_PER_YEAR
        ticks = []
        for market in self.markets:
            sigma = market.annual_vol
            shock = float(self.rng.standard_t(4)) / math.sqrt(2.0)
            ret = -0.5 * sigma * sigma * dt + sigma * math.sqrt(dt) * shock
            jump_probability = market.jump_rate_per_day * seconds / 86_400
            if float(self.rng.random()) < jump_probability:
                ret += float(self.rng.normal(0.0, market.jump_sigma))
            mid = self.prices[market.symbol] * math.exp(ret)
            self.prices[market.symbol] = mid
            # Spread widens with the size of the move (in units of the step's typical move).
            typical = sigma * math.sqrt(dt) or 1e-12
            half_spread = market.half_spread_bps * (1 + min(abs(ret) / typical, 10) / 4) / 1e4
            depth_units = market.depth_usd / mid
            bid_volume = depth_units * float(self.rng.lognormal(0.0, 0.35))
            ask_volume = depth_units * float(self.rng.lognormal(0.0, 0.35))
            volume = depth_units * seconds / 60 * float(self.rng.lognormal(0.0, 0.8))
            ticks.append(self._tick(market, mid, half_spread, bid_volume, ask_volume, volume))
        return ticks

    def _tick(
        self,
        market: MarketSpec,
        mid: float,
        half_spread: float,
        bid_volume: float,
        ask_volume: float,
        volume: float,
    ) -> Tick:
        rules = market.rules
        mid_d = price_round(Decimal(repr(mid)), rules)
        bid = price_round(Decimal(repr(mid * (1 - half_spread))), rules, "down")
        ask = price_round(Decimal(repr(mid * (1 + half_spread))), rules, "up")
        if bid >= ask:
            step = _tick_size_at(mid_d, rules)
            bid, ask = mid_d - step, mid_d + step
            bid = price_round(bid, rules, "down")
            ask = price_round(ask, rules, "up")
        mid_d = min(max(mid_d, bid), ask)
        size_lot = Decimal(1).scaleb(-market.sz_decimals)
        self.sequence += 1
        return Tick(
            exchange=self.exchange,
            symbol=market.symbol,
            timestamp=self.clock,
            price=mid_d,
            bid_price=bid,
            ask_price=ask,
            bid_volume=max(Decimal(repr(bid_volume)).quantize(size_lot), size_lot),
            ask_volume=max(Decimal(repr(ask_volume)).quantize(size_lot), size_lot),
            volume=Decimal(repr(volume)).quantize(size_lot),
            mark_price=mid_d,
            index_price=mid_d,
            sequence_number=self.sequence,
            source="simulator",
        )

    def run(self, *, steps: int | None = None, seconds: float = 1.0) -> Iterator[Tick]:
        """Ticks for ``steps`` steps (forever when None)."""
        count = 0
        while steps is None or count < steps:
            yield from self.step(seconds)
            count += 1
