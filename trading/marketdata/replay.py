"""Replay of recorded candles (Hyperliquid ``candleSnapshot`` shape) as ticks.

Each candle ``{t, T, s, i, o, h, l, c, v, n}`` becomes four ticks spread over its interval:
open, then the extreme the price most likely visited first (the low for a rising candle, the high
for a falling one), then the other extreme, then close -- the usual O-L-H-C / O-H-L-C path. The
candle's volume is split evenly over the four. No randomness: the same file gives the same ticks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from trading.marketdata.ticks import Tick
from trading.rounding import PriceRules, price_round


def load_candles(path: str | Path) -> list[dict[str, Any]]:
    with open(path) as handle:
        candles = json.load(handle)
    if not isinstance(candles, list):
        raise ValueError(f"{path}: expected a list of candles")
    return sorted(candles, key=lambda candle: int(candle["t"]))


def candle_path(candle: dict[str, Any]) -> list[Decimal]:
    o, h, low, c = (Decimal(str(candle[key])) for key in ("o", "h", "l", "c"))
    return [o, low, h, c] if c >= o else [o, h, low, c]


def replay_ticks(
    candles: Iterable[dict[str, Any]],
    *,
    exchange: str = "paper",
    half_spread_bps: Decimal = Decimal(2),
    sz_decimals: int = 0,
    shift_to: datetime | None = None,
    sequence_start: int = 0,
) -> Iterator[Tick]:
    """Ticks from candles. ``shift_to`` moves the first candle's open to that instant (a live
    replay of history); otherwise the recorded times are kept."""
    rules = PriceRules.hyperliquid_perp(sz_decimals)
    ordered = sorted(candles, key=lambda candle: int(candle["t"]))
    if not ordered:
        return
    offset = timedelta(0)
    if shift_to is not None:
        offset = shift_to - datetime.fromtimestamp(int(ordered[0]["t"]) / 1000, tz=UTC)
    sequence = sequence_start
    spread = half_spread_bps / Decimal(10_000)
    for candle in ordered:
        start_ms, end_ms = int(candle["t"]), int(candle["T"])
        path = candle_path(candle)
        volume = Decimal(str(candle["v"])) / len(path)
        for index, price in enumerate(path):
            at_ms = start_ms + (end_ms - start_ms) * index // len(path)
            sequence += 1
            bid = price_round(price * (1 - spread), rules, "down")
            ask = price_round(price * (1 + spread), rules, "up")
            yield Tick(
                exchange=exchange,
                symbol=str(candle["s"]),
                timestamp=datetime.fromtimestamp(at_ms / 1000, tz=UTC) + offset,
                price=price,
                bid_price=min(bid, price),
                ask_price=max(ask, price),
                bid_volume=volume,
                ask_volume=volume,
                volume=volume,
                mark_price=price,
                index_price=price,
                sequence_number=sequence,
                source="replay",
            )
