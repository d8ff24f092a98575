"""Analytics settings: ``settings.ANALYTICS`` over these defaults (each one documented here).

Nothing else in the app reads ``settings.ANALYTICS`` directly, so a test can override one key
with ``settings.ANALYTICS = {**settings.ANALYTICS, "KEY": value}``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Redis holding the ingestion buffers and the data-quality state (its own database: the
    # cache may evict, a buffer must not). Empty: REDIS_URL's server, database 6.
    "BUFFER_REDIS_URL": "",
    # Extra key prefix; the trading prefix (TANDEM["REDIS_KEY_PREFIX"]) always comes first, so
    # a test's or benchmark's namespace covers analytics' keys too.
    "REDIS_KEY_PREFIX": "",
    # Flush by size: a listener that pushes the buffer past this many rows asks for a drain
    # at once; by time: beat drains every second anyway.
    "TICK_FLUSH_ROWS": 5000,
    # At most this many rows go into one ClickHouse insert when a buffer is drained.
    "DRAIN_MAX_ROWS": 500_000,
    # A buffered batch that keeps failing with a server error (not a connection error) is
    # moved to the stream's dead-letter list after this many attempts (shown in the admin).
    "DRAIN_MAX_ATTEMPTS": 5,
    # Processed batch ids are remembered this long: a batch delivered again adds nothing.
    "PROCESSED_BATCH_TTL_SECONDS": 7 * 24 * 3600,
    # Data quality (seed 004), see analytics.quality.QualityConfig.
    "QUALITY": {
        "MAX_FUTURE_SKEW_SECONDS": 5.0,
        "MAX_AGE_SECONDS": 300.0,
        "MAX_PRICE_DEVIATION": 0.10,
        "ZSCORE_THRESHOLD": 8.0,
        "ZSCORE_MIN_OBSERVATIONS": 30,
        "ZSCORE_HALF_LIFE": 500,
        "REFERENCE_MAX_AGE_SECONDS": 300.0,
        "CONFIRM_TICKS": 5,
    },
    # The equity base of a trader's daily returns when no account-value sample is known
    # (analytics.kpis): returns are net PnL over this notional plus the PnL made since.
    "DEFAULT_EQUITY_BASE_USD": "10000",
    # Public query API: the largest result and longest query a request may cause, and how
    # long public answers are cached in Redis.
    "API_MAX_ROWS": 5000,
    "API_MAX_EXECUTION_SECONDS": 10,
    "API_MAX_RANGE_DAYS": {"1m": 7, "5m": 31, "15m": 93, "1h": 366, "4h": 1100, "1d": 3660},
    "API_CACHE_SECONDS": 5,
    # Staff SQL console.
    "CONSOLE_MAX_ROWS": 1000,
    "CONSOLE_MAX_EXECUTION_SECONDS": 10,
    # Liquidation heatmap (analytics.heatmap).
    "HEATMAP_BIN_BPS": 25,
    "HEATMAP_DEFAULT_LEVERAGE": "10",
    "HEATMAP_DEFAULT_MAINTENANCE_MARGIN_RATE": "0.01",
    "HEATMAP_SNAPSHOT_HOURS": 24,
}


def setting(name: str) -> Any:
    configured: dict[str, Any] = getattr(settings, "ANALYTICS", {}) or {}
    if name == "QUALITY":
        return {**DEFAULTS["QUALITY"], **(configured.get("QUALITY") or {})}
    return configured.get(name, DEFAULTS[name])


def decimal_setting(name: str) -> Decimal:
    return Decimal(str(setting(name)))


def key_prefix() -> str:
    tandem: dict[str, Any] = getattr(settings, "TANDEM", {}) or {}
    return f"{tandem.get('REDIS_KEY_PREFIX') or ''}{setting('REDIS_KEY_PREFIX') or ''}analytics:"
