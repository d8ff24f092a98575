"""Shared pieces of the analytics selectors: the fixed SQL maps, per-query limits, the
public-result cache, validation of ranges and symbols."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.core.cache import cache

from analytics.conf import setting
from config.errors import ValidationFailed

T = TypeVar("T")
EIGHT = Decimal("0.00000001")


@dataclass(frozen=True)
class IntervalSpec:
    seconds: int
    table: str  # tick aggregate table it is read from
    bucket: str  # SQL bucket over that table's `timestamp` (a fixed text, never input)
    venue_bases: tuple[str, ...]  # venue candle intervals it can be rolled up from


INTERVALS: dict[str, IntervalSpec] = {
    "1m": IntervalSpec(60, "market_ohlcv_1min", "timestamp", ("1m",)),
    "5m": IntervalSpec(300, "market_ohlcv_5m", "timestamp", ("5m", "1m")),
    "15m": IntervalSpec(
        900, "market_ohlcv_5m", "toStartOfFifteenMinutes(timestamp)", ("15m", "5m", "1m")
    ),
    "1h": IntervalSpec(3600, "market_ohlcv_1h", "timestamp", ("1h", "30m", "15m", "5m", "1m")),
    "4h": IntervalSpec(
        14_400,
        "market_ohlcv_1h",
        "toStartOfInterval(timestamp, INTERVAL 4 HOUR)",
        ("4h", "2h", "1h", "30m", "15m", "5m", "1m"),
    ),
    "1d": IntervalSpec(
        86_400, "market_ohlcv_1d", "timestamp", ("1d", "12h", "8h", "4h", "2h", "1h")
    ),
}
SOURCES = ("trades", "venue")
# Bucket of a venue candle's open_time for each target interval (fixed texts).
VENUE_BUCKETS = {
    "1m": "toStartOfMinute(open_time)",
    "5m": "toStartOfFiveMinutes(open_time)",
    "15m": "toStartOfFifteenMinutes(open_time)",
    "1h": "toStartOfHour(open_time)",
    "4h": "toStartOfInterval(open_time, INTERVAL 4 HOUR)",
    "1d": "toStartOfDay(open_time)",
}

METRICS: dict[str, tuple[str, bool]] = {
    # metric -> (field of a leaderboard row, descending)
    "pnl": ("pnl", True),
    "roi": ("roi", True),
    "win_rate": ("win_rate", True),
    "sharpe": ("sharpe", True),
    "drawdown": ("max_drawdown", False),
    "copy_score": ("copy_score", True),
    "followers": ("followers", True),
}


def api_settings(limit: int) -> dict[str, Any]:
    return {
        "max_execution_time": int(setting("API_MAX_EXECUTION_SECONDS")),
        "max_result_rows": max(int(limit), 1),
        "result_overflow_mode": "throw",
    }


def cached_public(name: str, params: dict[str, Any], compute: Callable[[], T]) -> T:
    seconds = int(setting("API_CACHE_SECONDS"))
    if seconds <= 0:
        return compute()
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()
    key = f"analytics:v1:{name}:{digest[:40]}"
    hit = cache.get(key)
    if hit is not None:
        return hit
    value = compute()
    cache.set(key, value, seconds)
    return value


def row_limit(limit: int | None, *, default: int = 500) -> int:
    maximum = int(setting("API_MAX_ROWS"))
    value = default if limit is None else int(limit)
    if not 1 <= value <= maximum:
        raise ValidationFailed(f"limit must be between 1 and {maximum}.", field="limit")
    return value


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def time_range(
    start: datetime | None,
    end: datetime | None,
    *,
    max_days: float,
    default: timedelta,
) -> tuple[datetime, datetime]:
    """A validated [start, end): end defaults to now, start to end - ``default``."""
    end = as_utc(end) if end else datetime.now(tz=UTC)
    start = as_utc(start) if start else end - default
    if start >= end:
        raise ValidationFailed("start must be before end.", field="start")
    if end - start > timedelta(days=max_days):
        raise ValidationFailed(f"The time range may span at most {max_days:g} days.", field="end")
    return start, end


def symbol_check(*, symbol: str, exchange: str) -> None:
    from trading.selectors import symbol_list

    if not symbol_list(venue=exchange, active_only=False).filter(name=symbol).exists():
        raise ValidationFailed(f"Unknown symbol {symbol!r} on {exchange!r}.", field="symbol")


def interval_spec(interval: str) -> IntervalSpec:
    spec = INTERVALS.get(interval)
    if spec is None:
        raise ValidationFailed(f"interval must be one of {', '.join(INTERVALS)}.", field="interval")
    return spec


def q8(value: Any) -> Decimal:
    return Decimal(value).quantize(EIGHT)
