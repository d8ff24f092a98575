"""Redis connections for market data and the paper venue, and the trading settings in one place.

Both live in Redis, in their own logical databases (settings.TANDEM), with every key under
``TANDEM["REDIS_KEY_PREFIX"]`` so test runs (and the chaos test's worker processes) keep to
their own namespace on a Redis shared with a developer's ``make run``.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "REDIS_KEY_PREFIX": "",
    "MARKET_DATA_VENUE": "paper",
    "ORDER_SUBMIT_LEASE_SECONDS": 60,
    "ORDER_SUBMIT_MAX_ATTEMPTS": 8,
    "OUTBOX_SWEEP_AFTER_SECONDS": 30,
    "MARKET_ORDER_SLIPPAGE_BPS": 500,
    "RECONCILE_UNSENT_POLICY": "resubmit",
    "RECONCILE_GRACE_SECONDS": 120,
    "VENUE_TIMEOUT_SECONDS": 10.0,
    "PAPER_TAKER_FEE_BPS": "4.5",
    "PAPER_MAKER_FEE_BPS": "1.5",
    "PAPER_STARTING_BALANCE": "100000",
    "PAPER_LATENCY_MS": 0,
    "MARKET_SIMULATOR_SEED": 20240601,
    "EXECUTION_QUEUE": "",
}


def setting(name: str) -> Any:
    tandem: dict[str, Any] = getattr(settings, "TANDEM", {})
    return tandem.get(name, DEFAULTS.get(name))


def decimal_setting(name: str) -> Decimal:
    return Decimal(str(setting(name)))


def key_prefix() -> str:
    return str(setting("REDIS_KEY_PREFIX") or "")


@lru_cache(maxsize=8)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=10, health_check_interval=30
    )


def _fallback_url(db: int) -> str:
    base = str(getattr(settings, "REDIS_URL", "redis://127.0.0.1:6379/0"))
    head, _, _ = base.rpartition("/") if base.count("/") > 2 else (base, "", "")
    return f"{head}/{db}"


def market_redis() -> redis.Redis:
    """Latest prices and order-book tops (seed 002: ``price:{exchange}:{symbol}``)."""
    return _client(str(setting("MARKET_DATA_REDIS_URL") or _fallback_url(4)))


def paper_redis() -> redis.Redis:
    """The paper venue's own state: it is the *venue's* database, not Tandem's."""
    return _client(str(setting("PAPER_VENUE_REDIS_URL") or _fallback_url(5)))
