"""Candles: ticks through the real ingestion path, read back through the real candle query,
equal a pandas resample exactly; venue candles roll up to longer intervals exactly."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics import selectors, services
from analytics.batches import FACTOR, TickBatch
from analytics.clickhouse.client import ClickHouse
from analytics.feeds.hyperliquid import candles_from_snapshot
from analytics.tests.conftest import days_ago, recent
from trading.marketdata import MarketSimulator, replay_ticks, ticks_publish

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(300)]

PANDAS_RULES = {"1m": "1min", "5m": "5min", "15m": "15min", "1h": "1h", "4h": "4h", "1d": "1D"}


def history_settings(settings: Any) -> None:
    """The live path replaying history: no staleness check (everything else as configured)."""
    quality = {**settings.ANALYTICS.get("QUALITY", {}), "MAX_AGE_SECONDS": None}
    settings.ANALYTICS = {**settings.ANALYTICS, "QUALITY": quality}


def build_ticks(start: datetime, *, steps: int, seconds: float) -> list[Any]:
    """Simulated ticks of six markets plus, for ETH, bursts of prints in one nanosecond (as
    a venue reports several trades of one block); sequence numbers renumbered to increase in
    delivery order, as a venue's would."""
    sim = MarketSimulator(seed=20240601, start=start)
    ticks: list[Any] = []
    for step in range(steps):
        produced = sim.step(seconds)
        ticks.extend(produced)
        if step % 97 == 0:
            eth = next(t for t in produced if t.symbol == "ETH")
            for k, bump in enumerate(("1.5", "-2", "0.5")):
                ticks.append(
                    type(eth)(**{**eth.__dict__, "price": eth.price + Decimal(bump) * (k + 1)})
                )
    return [type(t)(**{**t.__dict__, "sequence_number": 10 * (i + 1)}) for i, t in enumerate(ticks)]


def frame(ticks: Sequence[Any]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.to_datetime([t.timestamp for t in ticks], utc=True),
            "symbol": [t.symbol for t in ticks],
            "seq": [t.sequence_number for t in ticks],
            "price": [int(t.price * FACTOR) for t in ticks],
            "volume": [int(t.volume * FACTOR) for t in ticks],
        }
    )


def expected_candles(df: pd.DataFrame, symbol: str, rule: str) -> pd.DataFrame:
    """The reference: first/last by sequence number, max, min, sum, count per bucket."""
    one = df[df["symbol"] == symbol].sort_values("seq", kind="stable").set_index("ts")
    out = one.resample(rule).agg(
        {"price": ["first", "max", "min", "last", "count"], "volume": "sum"}
    )
    out.columns = ["open", "high", "low", "close", "trade_count", "volume"]
    return out[out["trade_count"] > 0]


def as_ints(candles: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "open": [int(c["open"] * FACTOR) for c in candles],
            "high": [int(c["high"] * FACTOR) for c in candles],
            "low": [int(c["low"] * FACTOR) for c in candles],
            "close": [int(c["close"] * FACTOR) for c in candles],
            "trade_count": [c["trade_count"] for c in candles],
            "volume": [int(c["volume"] * FACTOR) for c in candles],
        },
        index=pd.DatetimeIndex([c["time"] for c in candles]).tz_convert("UTC"),
    )


def test_ticks_roll_up_to_every_interval_exactly(
    clickhouse: ClickHouse, symbols: Any, settings: Any
) -> None:
    history_settings(settings)
    start = days_ago(2)
    ticks = build_ticks(start, steps=5759, seconds=30)  # two whole days
    for i in range(0, len(ticks), 600):
        ticks_publish(ticks[i : i + 600])  # trading's publisher -> our listener -> buffer
    services.buffers_drain_all(time_budget=60)

    quarantined = {
        (r["symbol"], r["sequence_number"])
        for r in selectors.quarantined_rows(dataset="market_ticks", limit=100_000)
    }
    stored = clickhouse.execute("SELECT count() FROM market_ticks_raw")[0][0]
    assert stored + len(quarantined) == len(ticks)  # nothing dropped silently
    assert len(quarantined) < len(ticks) // 100  # the simulator's jumps, a handful
    accepted = [t for t in ticks if (t.symbol, t.sequence_number) not in quarantined]
    df = frame(accepted)
    end = start + timedelta(days=2)
    checked = 0
    for interval, rule in PANDAS_RULES.items():
        for symbol in ("BTC", "ETH", "kPEPE"):
            got = as_ints(
                selectors.candles(
                    symbol=symbol,
                    exchange="paper",
                    interval=interval,
                    start=start,
                    end=end,
                    limit=5000,
                )
            )
            want = expected_candles(df, symbol, rule)
            pd.testing.assert_frame_equal(
                got, want[got.columns], check_freq=False, check_dtype=False, check_names=False
            )
            checked += len(got)
    assert checked > 3 * 2880


def test_open_and_close_of_prints_in_one_nanosecond_follow_the_sequence(
    clickhouse: ClickHouse, symbols: Any
) -> None:
    at = np.int64(int(days_ago(0).timestamp()) * 10**9 - 3_600 * 10**9)
    prices = [101, 99, 103, 98, 100]
    batch = TickBatch.from_arrays(
        timestamp=np.full(5, at, dtype=np.int64),
        symbol=["SOL"] * 5,
        exchange=["paper"] * 5,
        sequence_number=np.array([7, 8, 9, 10, 11], dtype=np.uint64),
        price=np.array(prices, dtype=np.int64) * FACTOR,
        volume=np.full(5, FACTOR, dtype=np.int64),
    )
    services.market_ticks_ingest(batch=batch, backfill=True)
    [candle] = selectors.candles(
        symbol="SOL", exchange="paper", interval="1m",
        start=days_ago(0) - timedelta(hours=2), end=days_ago(0),
    )  # fmt: skip
    assert (candle["open"], candle["high"], candle["low"], candle["close"]) == (
        Decimal(101), Decimal(103), Decimal(98), Decimal(100),
    )  # fmt: skip
    assert candle["trade_count"] == 5
    assert candle["volume"] == Decimal(5)
    assert candle["vwap"] == Decimal("100.20000000")
    assert candle["change"] == Decimal(-1)


def venue_frame(candles: list[dict[str, Any]]) -> pd.DataFrame:
    return (
        pd.DataFrame(
            {
                "t": pd.to_datetime([int(c["t"]) for c in candles], unit="ms", utc=True),
                "open": [int(Decimal(c["o"]) * FACTOR) for c in candles],
                "high": [int(Decimal(c["h"]) * FACTOR) for c in candles],
                "low": [int(Decimal(c["l"]) * FACTOR) for c in candles],
                "close": [int(Decimal(c["c"]) * FACTOR) for c in candles],
                "volume": [int(Decimal(c["v"]) * FACTOR) for c in candles],
                "trade_count": [int(c["n"]) for c in candles],
            }
        )
        .sort_values("t")
        .set_index("t")
    )


def expected_rollup(df: pd.DataFrame, rule: str) -> pd.DataFrame:
    out = df.resample(rule).agg(
        {
            "open": "first",
            "high": "max",
            "low": "min",
            "close": "last",
            "volume": "sum",
            "trade_count": "sum",
        }
    )
    return out[df["open"].resample(rule).count() > 0]


def check_venue_rollups(raw: list[dict[str, Any]], *, symbol: str, exchange: str) -> int:
    rows = candles_from_snapshot(raw, exchange=exchange)
    result = services.candles_ingest(candles=rows)
    assert result.accepted == len(raw)
    df = venue_frame(raw)
    start = df.index.min().to_pydatetime() - timedelta(days=1)
    end = df.index.max().to_pydatetime() + timedelta(days=1)
    compared = 0
    for interval in ("1h", "4h", "1d"):
        got = as_ints(
            selectors.candles(
                symbol=symbol,
                exchange=exchange,
                interval=interval,
                start=start,
                end=end,
                source="venue",
            )
        )
        want = expected_rollup(df, PANDAS_RULES[interval])
        pd.testing.assert_frame_equal(
            got, want[got.columns], check_freq=False, check_dtype=False, check_names=False
        )
        compared += len(got)
    return compared


def test_recorded_kpepe_hourly_candles_roll_up_to_4h_and_1d_exactly(
    clickhouse: ClickHouse, symbols: Any, shared_data: Any
) -> None:
    raw = json.loads((shared_data / "hyperliquid" / "candles_kpepe_1h.json").read_text())
    moved = recent(raw, key="t", keys=("T",))
    compared = check_venue_rollups(moved, symbol="kPEPE", exchange="hyperliquid")
    assert compared == 24 + 6 + 2  # 24 hours, 6 four-hour and 2 daily buckets (20:00 start)


def synthetic_hourly(symbol: str, hours: int, start_ms: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(5)
    price = 2.1
    out = []
    for h in range(hours):
        o = price
        path = o * np.exp(np.cumsum(rng.normal(0, 0.004, 20)))
        c = float(path[-1])
        hi, lo = max(o, float(path.max())), min(o, float(path.min()))
        t = start_ms + h * 3_600_000
        out.append(
            {
                "T": t + 3_599_999, "c": f"{c:.4f}", "h": f"{hi:.4f}", "i": "1h", "l": f"{lo:.4f}",
                "n": int(rng.integers(1, 900)), "o": f"{o:.4f}", "s": symbol, "t": t,
                "v": f"{rng.uniform(1e3, 1e6):.1f}",
            }
        )  # fmt: skip
        price = c
    return out


def test_synthetic_hourly_candles_roll_up_exactly(clickhouse: ClickHouse, symbols: Any) -> None:
    start_ms = int(days_ago(4, hour=13).timestamp() * 1000)  # a start off the 4h grid
    raw = synthetic_hourly("DYDX", 70, start_ms)
    assert check_venue_rollups(raw, symbol="DYDX", exchange="hyperliquid") > 70


def test_the_candle_stream_keeps_the_newest_version_of_an_open_candle(
    clickhouse: ClickHouse, symbols: Any
) -> None:
    from analytics.feeds.hyperliquid import candle_from_message

    t = int(days_ago(1, hour=5).timestamp() * 1000)
    first = {
        "t": t,
        "T": t + 59_999,
        "s": "DYDX",
        "i": "1m",
        "o": "2.1",
        "h": "2.1",
        "l": "2.1",
        "c": "2.1",
        "v": "10",
        "n": 1,
    }
    later = {**first, "h": "2.2", "c": "2.15", "v": "25", "n": 3}
    services.candles_ingest(candles=[candle_from_message(first)])
    services.candles_ingest(candles=[candle_from_message(later)])
    [candle] = selectors.candles(
        symbol="DYDX", exchange="hyperliquid", interval="1m", source="venue",
        start=days_ago(1, hour=4), end=days_ago(1, hour=6),
    )  # fmt: skip
    assert (candle["close"], candle["volume"], candle["trade_count"]) == (
        Decimal("2.15"),
        Decimal(25),
        3,
    )


def test_recorded_candles_replayed_as_ticks_reproduce_their_ohlc(
    clickhouse: ClickHouse, symbols: Any, settings: Any, shared_data: Any
) -> None:
    """trading's replay turns each recorded candle into four ticks (open, extremes, close):
    Tandem's hourly candles built from them are the recorded candles again."""
    history_settings(settings)
    raw = recent(
        json.loads((shared_data / "hyperliquid" / "candles_kpepe_1h.json").read_text()),
        key="t",
        keys=("T",),
    )
    ticks = list(replay_ticks(raw, exchange="hyperliquid"))
    ticks_publish(ticks)
    services.buffers_drain_all()
    df = venue_frame(raw)
    got = as_ints(
        selectors.candles(
            symbol="kPEPE", exchange="hyperliquid", interval="1h",
            start=df.index.min().to_pydatetime(),
            end=df.index.max().to_pydatetime() + timedelta(hours=1),
        )
    )  # fmt: skip
    want = df.assign(trade_count=4)
    pd.testing.assert_frame_equal(
        got, want[got.columns], check_freq=False, check_dtype=False, check_names=False
    )
