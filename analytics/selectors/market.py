"""Public market data: candles (Tandem's from ticks, or the venue's), funding rates, and the
liquidation heatmap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from analytics.clickhouse.client import get_client
from analytics.conf import setting
from analytics.selectors.common import (
    INTERVALS,
    SOURCES,
    VENUE_BUCKETS,
    IntervalSpec,
    api_settings,
    as_utc,
    cached_public,
    interval_spec,
    q8,
    row_limit,
    symbol_check,
    time_range,
)
from config.errors import ValidationFailed

# --------------------------------------------------------------------------- candles


def candles(
    *,
    symbol: str,
    exchange: str,
    interval: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
    source: str = "trades",
) -> list[dict[str, Any]]:
    """OHLCV candles of one market, oldest first, for buckets starting in [start, end).

    ``source="trades"``: Tandem's own candles from ingested ticks (the 1-minute to 1-day
    aggregates; 15m and 4h are rolled up at query time). ``source="venue"``: candles as the
    venue reported them, rolled up from the finest stored interval that divides ``interval``.
    """
    spec = interval_spec(interval)
    if source not in SOURCES:
        raise ValidationFailed(f"source must be one of {', '.join(SOURCES)}.", field="source")
    limit = row_limit(limit)
    # Cached under the request as given: "the latest candles" (no end) is one entry for a
    # few seconds, not one per microsecond of "now".
    key = {
        "symbol": symbol, "exchange": exchange, "interval": interval, "source": source,
        "start": start, "end": end, "limit": limit,
    }  # fmt: skip
    max_days = float(setting("API_MAX_RANGE_DAYS").get(interval, 31))
    start, end = time_range(
        start, end, max_days=max_days, default=timedelta(seconds=spec.seconds * limit)
    )
    symbol_check(symbol=symbol, exchange=exchange)
    # Whole buckets only: start moves back to its bucket's boundary (epoch-aligned, UTC).
    aligned = datetime.fromtimestamp(int(start.timestamp()) // spec.seconds * spec.seconds, tz=UTC)
    params = {
        "symbol": symbol,
        "exchange": exchange,
        "start": aligned,
        "end": end,
        "limit": limit,
    }
    if source == "venue":
        return cached_public("candles", key, lambda: _venue_candles(interval, params, limit))
    return cached_public("candles", key, lambda: _trade_candles(spec, params, limit))


def _trade_candles(spec: IntervalSpec, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    sql = f"""
        SELECT
            {spec.bucket} AS bucket,
            argMinMerge(open) AS open,
            max(high) AS high,
            min(low) AS low,
            argMaxMerge(close) AS close,
            sum(volume) AS volume,
            sum(quote_volume) AS quote_volume,
            sum(trade_count) AS trade_count
        FROM {spec.table}
        WHERE symbol = {{symbol:String}} AND exchange = {{exchange:String}}
          AND timestamp >= {{start:DateTime64(6, 'UTC')}}
          AND timestamp < {{end:DateTime64(6, 'UTC')}}
        GROUP BY bucket
        ORDER BY bucket
        LIMIT {{limit:UInt32}}
    """  # noqa: S608 - table and bucket come from INTERVALS, values are bound
    rows = get_client().execute(sql, params, settings=api_settings(limit))
    return [
        _candle(bucket, o, h, low, c, v, int(n), quote)
        for bucket, o, h, low, c, v, quote, n in rows
    ]


def _venue_candles(interval: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    client = get_client()
    stored = {
        str(row[0])
        for row in client.execute(
            "SELECT DISTINCT interval FROM market_candles "
            "WHERE exchange = {exchange:String} AND symbol = {symbol:String}",
            {"exchange": params["exchange"], "symbol": params["symbol"]},
            settings=api_settings(100),
        )
    }
    base = next((b for b in INTERVALS[interval].venue_bases if b in stored), None)
    if base is None:
        return []
    sql = f"""
        SELECT
            {VENUE_BUCKETS[interval]} AS bucket,
            argMin(open, open_time) AS open,
            max(high) AS high,
            min(low) AS low,
            argMax(close, open_time) AS close,
            sum(volume) AS volume,
            sum(trade_count) AS trade_count
        FROM market_candles FINAL
        WHERE exchange = {{exchange:String}} AND symbol = {{symbol:String}}
          AND interval = {{base:String}}
          AND open_time >= {{start:DateTime64(3, 'UTC')}}
          AND open_time < {{end:DateTime64(3, 'UTC')}}
        GROUP BY bucket
        ORDER BY bucket
        LIMIT {{limit:UInt32}}
    """  # noqa: S608 - the bucket comes from VENUE_BUCKETS, values are bound
    rows = client.execute(sql, {**params, "base": base}, settings=api_settings(limit))
    return [_candle(bucket, o, h, low, c, v, int(n), None) for bucket, o, h, low, c, v, n in rows]


def _candle(
    bucket: datetime,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
    trade_count: int,
    quote_volume: Decimal | None,
) -> dict[str, Any]:
    open_, close = q8(open_), q8(close)
    vwap = None
    if quote_volume is not None and volume:
        vwap = q8(Decimal(quote_volume) / Decimal(volume))
    change = close - open_
    return {
        "time": as_utc(bucket),
        "open": open_,
        "high": q8(high),
        "low": q8(low),
        "close": close,
        "volume": q8(volume),
        "trade_count": trade_count,
        "vwap": vwap,
        "change": change,
        "change_pct": (change / open_ * 100).quantize(Decimal("0.0001")) if open_ else None,
    }


# --------------------------------------------------------------------------- funding


def funding_rates(
    *,
    symbol: str,
    exchange: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    limit = row_limit(limit)
    key = {"symbol": symbol, "exchange": exchange, "start": start, "end": end, "limit": limit}
    start, end = time_range(start, end, max_days=366, default=timedelta(days=7))
    symbol_check(symbol=symbol, exchange=exchange)
    params = {"symbol": symbol, "exchange": exchange, "start": start, "end": end, "limit": limit}

    def compute() -> list[dict[str, Any]]:
        rows = get_client().execute(
            """
            SELECT timestamp, argMax(funding_rate, ingested_at), argMax(premium, ingested_at)
            FROM market_funding
            WHERE exchange = {exchange:String} AND symbol = {symbol:String}
              AND timestamp >= {start:DateTime64(3, 'UTC')}
              AND timestamp < {end:DateTime64(3, 'UTC')}
            GROUP BY timestamp ORDER BY timestamp LIMIT {limit:UInt32}
            """,
            params,
            settings=api_settings(limit),
        )
        return [
            {"time": as_utc(t), "funding_rate": Decimal(rate), "premium": Decimal(premium)}
            for t, rate, premium in rows
        ]

    return cached_public("funding", key, compute)


# --------------------------------------------------------------------------- heatmap


def liq_heatmap(
    *,
    symbol: str,
    exchange: str,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Bins of the latest build of each hourly snapshot in [start, end)."""
    limit = row_limit(limit, default=2000)
    key = {"symbol": symbol, "exchange": exchange, "start": start, "end": end, "limit": limit}
    start, end = time_range(start, end, max_days=7, default=timedelta(hours=24))
    symbol_check(symbol=symbol, exchange=exchange)
    params = {"symbol": symbol, "exchange": exchange, "start": start, "end": end, "limit": limit}

    def compute() -> list[dict[str, Any]]:
        rows = get_client().execute(
            """
            SELECT timestamp, side, price_bin_center, price_bin_width, liq_volume, liq_notional,
                   liq_count, confidence_score, method_version
            FROM liq_heatmap_bins FINAL
            WHERE symbol = {symbol:String} AND exchange = {exchange:String}
              AND window_type = '1h'
              AND timestamp >= {start:DateTime64(3, 'UTC')}
              AND timestamp < {end:DateTime64(3, 'UTC')}
              AND (timestamp, computed_at) IN (
                  SELECT timestamp, max(computed_at) FROM liq_heatmap_bins
                  WHERE symbol = {symbol:String} AND exchange = {exchange:String}
                    AND window_type = '1h'
                    AND timestamp >= {start:DateTime64(3, 'UTC')}
                    AND timestamp < {end:DateTime64(3, 'UTC')}
                  GROUP BY timestamp)
              AND liq_count > 0
            ORDER BY timestamp, price_bin_center, side
            LIMIT {limit:UInt32}
            """,
            params,
            settings=api_settings(limit),
        )
        return [
            {
                "time": as_utc(t),
                "side": side,
                "price": q8(center),
                "width": q8(width),
                "volume": q8(volume),
                "notional": q8(notional),
                "positions": int(count),
                "confidence": Decimal(confidence),
                "method_version": int(version),
            }
            for t, side, center, width, volume, notional, count, confidence, version in rows
        ]

    return cached_public("heatmap", key, compute)
