"""Market data: the simulator (deterministic, valid prices, realistic volatility, fat tails and
jumps), the candle replay, and publishing the latest price and book top to Redis."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from trading import selectors
from trading.marketdata import (
    DEMO_MARKETS,
    MarketSimulator,
    MarketSpec,
    Tick,
    feed_advance,
    load_candles,
    register_tick_listener,
    replay_ticks,
    take,
    ticks,
    ticks_publish,
    unregister_tick_listener,
)
from trading.marketdata.store import orderbook_key, price_key
from trading.rounding import price_problem
from trading.stores import market_redis

D = Decimal
DATA = Path(__file__).parent / "data"
START = datetime(2025, 1, 1, tzinfo=UTC)


def test_the_same_seed_gives_the_same_market() -> None:
    first = take(ticks(seed=42, start=START), 600)
    second = take(ticks(seed=42, start=START), 600)
    other = take(ticks(seed=43, start=START), 600)
    assert first == second
    assert first != other
    assert {t.symbol for t in first} == {"BTC", "ETH", "SOL", "ARB", "DOGE", "kPEPE"}


def test_every_tick_is_a_price_an_order_could_carry() -> None:
    specs = {m.symbol: m for m in DEMO_MARKETS}
    for tick in take(ticks(seed=7, start=START, step_seconds=30), 6 * 500):
        rules = specs[tick.symbol].rules
        for price in (tick.price, tick.bid_price, tick.ask_price):
            assert price_problem(price, rules) is None, (tick.symbol, price)
        assert tick.bid_price < tick.ask_price
        assert tick.bid_price <= tick.price <= tick.ask_price
        assert tick.bid_volume > 0
        assert tick.ask_volume > 0
        assert tick.volume >= 0
        assert tick.timestamp.tzinfo is not None


def _log_returns(simulator: MarketSimulator, symbol: str, steps: int, seconds: float) -> np.ndarray:
    prices = []
    for _ in range(steps):
        simulator.step(seconds)
        prices.append(simulator.prices[symbol])
    return np.diff(np.log(np.array(prices)))


def test_volatility_is_what_the_market_specifies() -> None:
    market = MarketSpec("BTC", D(95000), 0.55, 5, 0.5, 2_000_000, jump_rate_per_day=0.0)
    returns = _log_returns(MarketSimulator(seed=3, markets=(market,)), "BTC", 20_000, 300.0)
    annualised = returns.std() * math.sqrt(365 * 24 * 12)
    assert 0.45 < annualised < 0.65


def test_returns_have_fat_tails_and_jumps() -> None:
    quiet = MarketSpec("ETH", D(3300), 0.7, 4, 0.8, 1_000_000, jump_rate_per_day=0.0)
    returns = _log_returns(MarketSimulator(seed=5, markets=(quiet,)), "ETH", 20_000, 60.0)
    standardised = (returns - returns.mean()) / returns.std()
    kurtosis = float((standardised**4).mean())
    assert kurtosis > 4.0  # a normal distribution has 3
    jumpy = MarketSpec(
        "ETH", D(3300), 0.7, 4, 0.8, 1_000_000, jump_rate_per_day=200.0, jump_sigma=0.02
    )
    returns = _log_returns(MarketSimulator(seed=5, markets=(jumpy,)), "ETH", 5_000, 60.0)
    typical = 0.7 * math.sqrt(60 / (365 * 24 * 3600))
    assert (np.abs(returns) > 8 * typical).sum() >= 10


def test_state_round_trips_through_json() -> None:
    uninterrupted = MarketSimulator(seed=11, start=START)
    for _ in range(50):
        uninterrupted.step(1.0)
    resumed = MarketSimulator(seed=11, start=START)
    for _ in range(25):
        resumed.step(1.0)
    saved = json.loads(json.dumps(resumed.state()))
    fresh = MarketSimulator(seed=999, start=START)
    fresh.restore(saved)
    for _ in range(25):
        fresh.step(1.0)
    assert fresh.prices == uninterrupted.prices
    assert fresh.step(1.0) == uninterrupted.step(1.0)


def _check_replay(candles: list[dict[str, Any]]) -> None:
    produced = list(replay_ticks(candles))
    assert len(produced) == 4 * len(candles)
    for index, candle in enumerate(candles):
        chunk = produced[4 * index : 4 * index + 4]
        prices = [t.price for t in chunk]
        o, h, low, c = (D(candle[k]) for k in ("o", "h", "l", "c"))
        assert prices == ([o, low, h, c] if c >= o else [o, h, low, c])
        assert all(candle["t"] <= t.time_ms <= candle["T"] for t in chunk)
        assert sum(t.volume for t in chunk) == D(candle["v"])
        assert all(t.symbol == candle["s"] and t.source == "replay" for t in chunk)
    assert [t.sequence_number for t in produced] == list(range(1, len(produced) + 1))
    assert produced == list(replay_ticks(candles))  # no randomness


def test_replay_of_recorded_candles(shared_data: Path) -> None:
    candles = load_candles(shared_data / "hyperliquid" / "candles_kpepe_1h.json")
    assert len(candles) == 24
    _check_replay(candles)


def test_replay_of_synthetic_candles() -> None:
    candles = load_candles(DATA / "candles_small.json")
    _check_replay(candles)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    shifted = list(ticks(source="replay", candles=DATA / "candles_small.json", start=now))
    assert shifted[0].timestamp == now
    assert shifted[-1].timestamp - shifted[0].timestamp < timedelta(hours=3)


def test_publishing_the_latest_price_and_book(trading_namespace: str) -> None:
    heard: list[Sequence[Tick]] = []
    register_tick_listener(heard.append)
    try:
        produced = take(ticks(seed=1, start=START), 6)
        ticks_publish(produced)
    finally:
        unregister_tick_listener(heard.append)
    btc = next(t for t in produced if t.symbol == "BTC")
    assert price_key("paper", "BTC") == f"{trading_namespace}price:paper:BTC"
    raw = market_redis().hgetall(price_key("paper", "BTC"))
    assert D(raw["price"]) == btc.price
    assert int(raw["timestamp"]) == btc.time_ms
    assert D(raw["volume"]) == btc.volume
    book = json.loads(str(market_redis().get(orderbook_key("paper", "BTC"))))
    assert book["bids"] == [[str(btc.bid_price.normalize()), str(btc.bid_volume.normalize())]]
    assert D(book["asks"][0][0]) == btc.ask_price
    assert book["timestamp"] == btc.time_ms
    snapshot = selectors.latest_price(exchange="paper", symbol="BTC")
    assert snapshot is not None
    assert (snapshot.price, snapshot.bid, snapshot.ask, snapshot.timestamp) == (
        btc.price,
        btc.bid_price,
        btc.ask_price,
        btc.timestamp,
    )
    assert selectors.latest_price(exchange="paper", symbol="NOPE") is None
    assert heard == [produced]
    assert set(btc.as_row()) >= {
        "timestamp",
        "symbol",
        "exchange",
        "price",
        "bid_price",
        "ask_price",
        "volume",
        "mark_price",
        "oi",
        "sequence_number",
    }


def test_feed_advance_persists_the_simulation(trading_namespace: str) -> None:
    first = feed_advance(now=START)
    second = feed_advance(now=START + timedelta(seconds=2))
    assert len(first) == len(second) == len(DEMO_MARKETS)
    assert second[0].sequence_number > first[-1].sequence_number
    assert second[0].timestamp == START + timedelta(seconds=2)
    assert selectors.latest_price(exchange="paper", symbol="SOL").price == next(  # type: ignore[union-attr]
        t.price for t in second if t.symbol == "SOL"
    )
    lock = market_redis().lock(f"{trading_namespace}marketsim:paper:lock", timeout=5)
    assert lock.acquire(blocking=False)
    try:
        assert feed_advance(now=START + timedelta(seconds=4)) == []  # another process steps
    finally:
        lock.release()


def test_feed_advance_replays_a_configured_file(trading_namespace: str, settings: Any) -> None:
    settings.TANDEM = {
        **settings.TANDEM,
        "MARKET_DATA_REPLAY_FILE": str(DATA / "candles_small.json"),
    }
    produced = [feed_advance(now=START + timedelta(seconds=i)) for i in range(5)]
    kpepe = [next(t for t in batch if t.symbol == "kPEPE") for batch in produced]
    assert [t.price for t in kpepe] == [
        D("0.012"),
        D("0.0119"),
        D("0.0127"),
        D("0.0125"),
        D("0.0125"),
    ]
    assert all(t.source == "replay" for t in kpepe)
    assert {t.symbol for t in produced[0]} == {m.symbol for m in DEMO_MARKETS}


def test_market_step_fills_resting_paper_orders(
    trading_namespace: str, paper_venue: Any, publish: Any
) -> None:
    from trading.exchanges import OrderRequest, VenueOrderStatus
    from trading.exchanges.paper import PaperAdapter
    from trading.models import new_cloid
    from trading.services import market_simulator_step

    publish("BTC", "150000", size="1")  # far above where the simulator starts (95000)
    account = PaperAdapter(account="0x" + "3" * 40, venue=paper_venue)
    request = OrderRequest(
        cloid=new_cloid(),
        symbol="BTC",
        side="buy",
        size=D("0.001"),
        limit_price=D(120000),
        time_in_force="Gtc",
    )
    assert account.place_order(request).order.status == VenueOrderStatus.OPEN
    result = market_simulator_step()  # publishes ~95000: the resting buy is crossed
    assert result.ticks == len(DEMO_MARKETS)
    assert result.paper_fills == 1
    found = account.order_by_cloid(symbol="BTC", cloid=request.cloid)
    assert found is not None
    assert found.status == VenueOrderStatus.FILLED
    (fill,) = account.fills_since(since_ms=0)
    assert fill.price == D(120000)
    assert fill.is_taker is False
