"""Liquidation heatmap: where the tracked traders' positions would be liquidated (method 1).

Positions
    Rebuilt per (trader, symbol) from ``trader_events``: the size after each fill is the fill's
    ``new_exposure`` (the venue's own figure, so a missed fill cannot skew later sizes); the
    entry price is the size-weighted average of the fills that opened or added to the
    position since it was last flat (a reduce keeps it, a flip restarts it at the fill's
    price; a position already open before the first known fill starts at that fill's
    price). Leverage is the fill's when the venue reported it, else
    ``HEATMAP_DEFAULT_LEVERAGE``.

Liquidation price (isolated-margin approximation)
    With entry price E, leverage L and maintenance margin rate m (the symbol's, from trading's
    symbol table, else ``HEATMAP_DEFAULT_MAINTENANCE_MARGIN_RATE``): a long is liquidated when
    its equity E/L + (P - E) falls to m x P, a short when E/L - (P - E) does::

        long:  P = E x (1 - 1/L) / (1 - m)
        short: P = E x (1 + 1/L) / (1 + m)

    Cross-margined accounts have more collateral behind a position, so this is the nearest
    level at which the position could be liquidated, not a promise.

Binning
    Snapshots at the end of every hour of the window (``window_type`` "1h"): the positions
    open at that instant, binned by liquidation price. The bin width is ``HEATMAP_BIN_BPS``
    of the symbol's median entry price, rounded to 1, 2 or 5 x 10^k; a bin's centre is
    ``(floor(P / width) + 1/2) x width``. Each bin sums size (``liq_volume``), size x
    liquidation price (``liq_notional``) and counts positions, per side (long liquidations
    sit below the market, short ones above). ``confidence_score`` is the share of those
    positions whose leverage was reported rather than assumed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

METHOD_VERSION = 1
ZERO = Decimal(0)


@dataclass(frozen=True)
class FillEvent:
    trader_id: str
    symbol: str
    timestamp: datetime
    prev_exposure: Decimal
    new_exposure: Decimal
    price: Decimal
    leverage: Decimal


@dataclass(frozen=True)
class Position:
    trader_id: str
    symbol: str
    size: Decimal  # signed: > 0 long, < 0 short
    entry: Decimal
    leverage: Decimal  # 0 = not reported


def next_entry(previous: Position | None, event: FillEvent) -> Decimal:
    """The entry price after ``event`` (see the module docstring); 0 once flat."""
    old, new = event.prev_exposure, event.new_exposure
    if new == 0:
        return ZERO
    if old == 0 or (old > 0) != (new > 0):  # opened, or flipped through zero
        return event.price
    known = previous is not None and previous.size == old and previous.entry > 0
    entry = previous.entry if known and previous is not None else event.price
    if abs(new) > abs(old):  # added: size-weighted average
        return (entry * abs(old) + event.price * (abs(new) - abs(old))) / abs(new)
    return entry  # reduced: unchanged


def positions_at(events: Sequence[FillEvent], moments: Sequence[datetime]) -> list[list[Position]]:
    """Open positions at each instant of ``moments`` (sorted), from events sorted by time."""
    current: dict[tuple[str, str], Position] = {}
    snapshots: list[list[Position]] = []
    index = 0
    for moment in moments:
        while index < len(events) and events[index].timestamp <= moment:
            event = events[index]
            key = (event.trader_id, event.symbol)
            entry = next_entry(current.get(key), event)
            if event.new_exposure == 0:
                current.pop(key, None)
            else:
                previous = current.get(key)
                leverage = (
                    event.leverage
                    if event.leverage > 0
                    else (previous.leverage if previous is not None else ZERO)
                )
                current[key] = Position(
                    trader_id=event.trader_id,
                    symbol=event.symbol,
                    size=event.new_exposure,
                    entry=entry,
                    leverage=leverage,
                )
            index += 1
        snapshots.append([p for p in current.values() if p.size != 0 and p.entry > 0])
    return snapshots


def liquidation_price(*, entry: Decimal, long: bool, leverage: Decimal, mmr: Decimal) -> Decimal:
    inverse = 1 / leverage
    if long:
        return entry * (1 - inverse) / (1 - mmr)
    return entry * (1 + inverse) / (1 + mmr)


def nice_width(reference: Decimal, bps: int) -> Decimal:
    """``bps`` of ``reference`` rounded to 1, 2 or 5 x 10^k (at least 1e-8)."""
    raw = float(reference) * bps / 10_000
    if raw <= 0:
        return Decimal("0.00000001")
    exponent = math.floor(math.log10(raw))
    mantissa = raw / 10**exponent
    step = 1 if mantissa < 1.5 else 2 if mantissa < 3.5 else 5 if mantissa < 7.5 else 10
    width = Decimal(step).scaleb(exponent)
    return max(width, Decimal("0.00000001"))


def bin_center(price: Decimal, width: Decimal) -> Decimal:
    index = (price / width).to_integral_value(rounding=ROUND_FLOOR)
    return (index + Decimal("0.5")) * width


@dataclass(frozen=True)
class HeatmapBin:
    timestamp: datetime
    symbol: str
    side: str
    price_bin_center: Decimal
    price_bin_width: Decimal
    liq_volume: Decimal
    liq_notional: Decimal
    liq_count: int
    confidence: Decimal


def bins_for_snapshot(
    moment: datetime,
    positions: Iterable[Position],
    *,
    widths: dict[str, Decimal],
    mmr: dict[str, Decimal],
    default_leverage: Decimal,
    default_mmr: Decimal,
) -> list[HeatmapBin]:
    acc: dict[tuple[str, str, Decimal], list[Decimal]] = {}
    for p in positions:
        width = widths.get(p.symbol)
        if width is None:
            continue
        leverage = p.leverage if p.leverage > 0 else default_leverage
        long = p.size > 0
        price = liquidation_price(
            entry=p.entry, long=long, leverage=leverage, mmr=mmr.get(p.symbol, default_mmr)
        )
        if price <= 0:
            continue
        key = (p.symbol, "long" if long else "short", bin_center(price, width))
        size = abs(p.size)
        slot = acc.setdefault(key, [ZERO, ZERO, ZERO, ZERO])
        slot[0] += size
        slot[1] += size * price
        slot[2] += 1
        slot[3] += 1 if p.leverage > 0 else 0
    return [
        HeatmapBin(
            timestamp=moment,
            symbol=symbol,
            side=side,
            price_bin_center=center.quantize(Decimal("0.00000001")),
            price_bin_width=widths[symbol],
            liq_volume=volume.quantize(Decimal("0.00000001")),
            liq_notional=notional.quantize(Decimal("0.00000001")),
            liq_count=int(count),
            confidence=(known / count).quantize(Decimal("0.0001")),
        )
        for (symbol, side, center), (volume, notional, count, known) in sorted(acc.items())
    ]
