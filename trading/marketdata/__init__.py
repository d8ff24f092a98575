"""Market data for embedded runs and tests: a simulator, a candle replay, and the Redis store.

``ticks()`` is the hook for anything that wants the stream (the analytics ingestion can push it
into ClickHouse ``market_ticks_raw``); ``feed_advance()`` is what the Celery beat task
``market_simulator_step`` runs: advance the persisted simulator (and replay, when configured)
by the wall-clock time since the last step, publish the latest prices, and let the paper venue
match its resting orders against them.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from trading.marketdata.replay import load_candles, replay_ticks
from trading.marketdata.simulator import DEMO_MARKETS, MarketSimulator, MarketSpec
from trading.marketdata.store import (
    BookTop,
    PriceSnapshot,
    book_get,
    price_get,
    prices_get,
    register_tick_listener,
    ticks_publish,
    unregister_tick_listener,
)
from trading.marketdata.ticks import Tick
from trading.stores import key_prefix, market_redis, setting

__all__ = [
    "DEMO_MARKETS",
    "BookTop",
    "MarketSimulator",
    "MarketSpec",
    "PriceSnapshot",
    "Tick",
    "book_get",
    "feed_advance",
    "load_candles",
    "price_get",
    "prices_get",
    "quote_tick",
    "register_tick_listener",
    "replay_ticks",
    "ticks",
    "ticks_publish",
    "unregister_tick_listener",
]


def ticks(
    *,
    source: Literal["simulator", "replay"] = "simulator",
    seed: int | None = None,
    exchange: str | None = None,
    steps: int | None = None,
    step_seconds: float = 1.0,
    candles: Iterable[dict[str, Any]] | str | Path | None = None,
    start: datetime | None = None,
) -> Iterator[Tick]:
    """A stream of ticks: the simulator's (endless unless ``steps``) or a candle replay's."""
    venue = exchange or str(setting("MARKET_DATA_VENUE"))
    if source == "replay":
        if candles is None:
            raise ValueError("a replay needs candles (a list or a path to a JSON file)")
        rows = load_candles(candles) if isinstance(candles, str | Path) else list(candles)
        return replay_ticks(rows, exchange=venue, shift_to=start)
    simulator = MarketSimulator(
        seed=seed if seed is not None else int(setting("MARKET_SIMULATOR_SEED")),
        exchange=venue,
        start=start,
    )
    return simulator.run(steps=steps, seconds=step_seconds)


def quote_tick(
    exchange: str,
    symbol: str,
    price: Decimal,
    *,
    spread_bps: Decimal = Decimal(2),
    size: Decimal = Decimal(10),
    at: datetime | None = None,
) -> Tick:
    """A hand-made quote: mid ``price``, a spread of ``spread_bps`` on the venue's ticks and
    ``size`` at the best bid and ask (tests, benchmarks, demo data)."""
    from trading.rounding import PriceRules, price_round

    sz_decimals = next((m.sz_decimals for m in DEMO_MARKETS if m.symbol == symbol), 2)
    rules = PriceRules.hyperliquid_perp(sz_decimals)
    half = spread_bps / Decimal(20_000)
    bid = price_round(price * (1 - half), rules, "down")
    ask = price_round(price * (1 + half), rules, "up")
    if bid == ask:
        ask = price_round(ask * Decimal("1.0001"), rules, "up")
    return Tick(
        exchange=exchange,
        symbol=symbol,
        timestamp=at or datetime.now(tz=UTC),
        price=price,
        bid_price=bid,
        ask_price=ask,
        bid_volume=size,
        ask_volume=size,
        volume=Decimal(1),
        mark_price=price,
        sequence_number=1,
        source="manual",
    )


def _state_key(venue: str) -> str:
    return f"{key_prefix()}marketsim:{venue}:state"


def _replay_key(venue: str) -> str:
    return f"{key_prefix()}marketsim:{venue}:replay"


def feed_advance(*, now: datetime | None = None, max_step_seconds: float = 60.0) -> list[Tick]:
    """One step of the embedded market feed. Safe to call from any process: a Redis lock
    keeps two steps from interleaving, and the state lives in Redis, not in the process."""
    venue = str(setting("MARKET_DATA_VENUE"))
    client = market_redis()
    lock = client.lock(f"{key_prefix()}marketsim:{venue}:lock", timeout=30, blocking_timeout=0)
    if not lock.acquire(blocking=False):
        return []
    try:
        now = now or datetime.now(tz=UTC)
        simulator = MarketSimulator(
            seed=int(setting("MARKET_SIMULATOR_SEED")), exchange=venue, start=now
        )
        raw = client.get(_state_key(venue))
        seconds = 1.0
        if raw:
            simulator.restore(json.loads(str(raw)))
            seconds = min(max((now - simulator.clock).total_seconds(), 0.001), max_step_seconds)
        produced = simulator.step(seconds, at=now)
        produced = _replace_with_replay(produced, venue=venue, now=now)
        client.set(_state_key(venue), json.dumps(simulator.state()))
    finally:
        lock.release()
    ticks_publish(produced)
    return produced


def _replace_with_replay(produced: list[Tick], *, venue: str, now: datetime) -> list[Tick]:
    """With TANDEM["MARKET_DATA_REPLAY_FILE"] set, the replayed symbol's ticks replace the
    simulator's: one recorded tick a step, looping over the file."""
    path = setting("MARKET_DATA_REPLAY_FILE")
    if not path or not Path(str(path)).is_file():
        return produced
    recorded = list(replay_ticks(load_candles(str(path)), exchange=venue))
    if not recorded:
        return produced
    client = market_redis()
    cursor = int(client.incr(_replay_key(venue))) - 1
    source = recorded[cursor % len(recorded)]
    replayed = Tick(
        **{
            **source.__dict__,
            "timestamp": now,
            "sequence_number": produced[-1].sequence_number + 1 if produced else 1,
        }
    )
    return [tick for tick in produced if tick.symbol != replayed.symbol] + [replayed]


def decimal_mids(produced: Iterable[Tick]) -> dict[str, Decimal]:
    return {tick.symbol: tick.mark_price for tick in produced}


def take(iterator: Iterator[Tick], count: int) -> list[Tick]:
    return list(itertools.islice(iterator, count))
