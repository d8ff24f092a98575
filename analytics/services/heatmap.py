"""Building the liquidation heatmap (method in analytics.heatmap) into ``liq_heatmap_bins``."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from analytics.clickhouse.client import get_client
from analytics.conf import decimal_setting, setting
from analytics.heatmap import (
    METHOD_VERSION,
    FillEvent,
    HeatmapBin,
    bins_for_snapshot,
    nice_width,
    positions_at,
)

BIN_COLUMNS = (
    "timestamp", "symbol", "exchange", "window_type", "side", "price_bin_center",
    "price_bin_width", "liq_volume", "liq_count", "liq_notional", "method_version",
    "confidence_score", "data_sources", "computed_at",
)  # fmt: skip

_EVENTS_SQL = """
SELECT trader_id, symbol, timestamp, prev_exposure, new_exposure, price, leverage
FROM trader_events FINAL
WHERE exchange = {exchange:String}
  AND (empty({symbols:Array(String)}) OR has({symbols:Array(String)}, symbol))
  AND timestamp >= {since:DateTime64(3, 'UTC')} AND timestamp <= {until:DateTime64(3, 'UTC')}
ORDER BY timestamp, trader_id, symbol, event_hash
"""


@dataclass(frozen=True)
class HeatmapBuildResult:
    snapshots: int
    bins: int
    symbols: list[str]


def _hours(start: datetime, end: datetime) -> list[datetime]:
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(hours=1)
    moments = []
    moment = first
    while moment <= end:
        moments.append(moment)
        moment += timedelta(hours=1)
    return moments


def _maintenance_rates(exchange: str) -> dict[str, Decimal]:
    from trading.selectors import symbol_list

    return {
        s.name: Decimal(s.maintenance_margin_rate)
        for s in symbol_list(venue=exchange, active_only=False)
    }


def liq_heatmap_build(
    *,
    exchange: str = "hyperliquid",
    symbols: Sequence[str] = (),
    start: datetime | None = None,
    end: datetime | None = None,
    lookback_days: int = 90,
) -> HeatmapBuildResult:
    """Hourly snapshots in [start, end] (default: the last HEATMAP_SNAPSHOT_HOURS hours)."""
    end = end or datetime.now(tz=UTC)
    start = start or end - timedelta(hours=int(setting("HEATMAP_SNAPSHOT_HOURS")))
    moments = _hours(start, end)
    client = get_client()
    rows = client.execute(
        _EVENTS_SQL,
        {
            "exchange": exchange,
            "symbols": list(symbols),
            "since": end - timedelta(days=lookback_days),
            "until": end,
        },
    )
    events = [
        FillEvent(
            trader_id=str(trader),
            symbol=str(symbol),
            timestamp=moment,
            prev_exposure=Decimal(prev),
            new_exposure=Decimal(new),
            price=Decimal(price),
            leverage=Decimal(leverage),
        )
        for trader, symbol, moment, prev, new, price, leverage in rows
    ]
    snapshots = positions_at(events, moments)
    entries: dict[str, list[Decimal]] = {}
    for positions in snapshots:
        for p in positions:
            entries.setdefault(p.symbol, []).append(p.entry)
    bps = int(setting("HEATMAP_BIN_BPS"))
    widths = {
        symbol: nice_width(statistics.median(values), bps) for symbol, values in entries.items()
    }
    present = sorted(set(symbols) | {e.symbol for e in events})
    computed_at = datetime.now(tz=UTC)
    out: list[tuple[object, ...]] = []
    for moment, positions in zip(moments, snapshots, strict=True):
        bins = bins_for_snapshot(
            moment,
            positions,
            widths=widths,
            mmr=_maintenance_rates(exchange) if positions else {},
            default_leverage=decimal_setting("HEATMAP_DEFAULT_LEVERAGE"),
            default_mmr=decimal_setting("HEATMAP_DEFAULT_MAINTENANCE_MARGIN_RATE"),
        )
        covered = {b.symbol for b in bins}
        out.extend(_row(b, exchange, computed_at) for b in bins)
        # A snapshot with no open position still gets a row (count 0), so this build
        # replaces an older one that had bins for it.
        out.extend(
            _row(
                HeatmapBin(
                    moment,
                    symbol,
                    "none",
                    Decimal(0),
                    Decimal(0),
                    Decimal(0),
                    Decimal(0),
                    0,
                    Decimal(0),
                ),
                exchange,
                computed_at,
            )
            for symbol in present
            if symbol not in covered
        )
    if out:
        client.insert_rows("liq_heatmap_bins", BIN_COLUMNS, out)
    return HeatmapBuildResult(
        snapshots=len(moments),
        bins=sum(1 for row in out if row[8]),
        symbols=present,
    )


def _row(b: HeatmapBin, exchange: str, computed_at: datetime) -> tuple[object, ...]:
    sources = ["trader_events"] + (["reported_leverage"] if b.confidence > 0 else [])
    return (
        b.timestamp, b.symbol, exchange, "1h", b.side, b.price_bin_center, b.price_bin_width,
        b.liq_volume, b.liq_count, b.liq_notional, METHOD_VERSION, b.confidence, sources,
        computed_at,
    )  # fmt: skip
