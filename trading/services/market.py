"""Market data for embedded runs: advance the simulator, publish, let the paper venue match."""

from __future__ import annotations

from dataclasses import dataclass

from trading.marketdata import feed_advance


@dataclass(frozen=True)
class MarketStepResult:
    ticks: int
    paper_fills: int


def market_simulator_step() -> MarketStepResult:
    """One beat of the embedded market: new prices for every demo symbol (published to Redis
    for the whole system), then resting paper orders the prices crossed are filled. The fills
    reach Tandem through the wallets' fill sync, like a real venue's."""
    from trading.exchanges.paper import PaperVenue

    produced = feed_advance()
    fills = PaperVenue().match_resting([tick.symbol for tick in produced]) if produced else 0
    return MarketStepResult(ticks=len(produced), paper_fills=fills)
