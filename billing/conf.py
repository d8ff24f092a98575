"""Billing settings in one place: ``settings.BILLING`` overrides these defaults key by key.

``CURRENCY``              the currency fees are charged in. Hyperliquid settles in USDC.
``CURRENCY_DECIMALS``     the precision of each currency (the smallest unit a fee is rounded to).
``BUILDER_FEE_MAX_BPS``   the highest builder fee each venue accepts, in bps of notional.
                          Hyperliquid perps: 10 bps (0.1%). A venue not listed takes no builder
                          fee at all (its fills are charged the copy fee only).
``PAYMENT_TERMS_HOURS``   how long after a paid period starts its price may stay unpaid before
                          the subscription turns ``past_due`` (its grace period then runs).
``DAYS_PER_YEAR``         the day count of the management fee (ACT/365 fixed).
``EQUITY_PROVIDER``       dotted path of ``f(strategy) -> Decimal``: a strategy's equity now, read
                          by the daily equity-mark task.
``FALLBACK_LIMITS``       plan limits used only when no default plan row exists at all (a
                          freshly flushed database); the data migration creates the real one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "CURRENCY": "USDC",
    "CURRENCY_DECIMALS": {"USD": 2, "USDC": 6},
    "BUILDER_FEE_MAX_BPS": {"hyperliquid": 10, "paper": 10},
    "PAYMENT_TERMS_HOURS": 72,
    "DAYS_PER_YEAR": 365,
    "EQUITY_PROVIDER": "billing.equity.strategy_equity",
    "FALLBACK_LIMITS": {
        "strategies": 1,
        "traders_per_portfolio": 3,
        "api_keys": 5,
        "api_rate_per_minute": 60,
    },
    # How many fills one accrual transaction takes; the fill sweep pages through the rest.
    "ACCRUAL_BATCH_SIZE": 50_000,
    # The fill sweep looks this far back for copied fills the listener missed.
    "FILL_SWEEP_LOOKBACK_HOURS": 48,
}

# Hard caps, mirrored by CheckConstraints in the database (models/plans.py). A schedule above a
# cap is refused; the venue cap for builder fees may be lower (BUILDER_FEE_MAX_BPS per venue).
BUILDER_FEE_CAP_BPS = 10
COPY_FEE_CAP_BPS = 100
MANAGEMENT_FEE_CAP_BPS = 1_000  # 10% a year
PERFORMANCE_FEE_CAP_BPS = 5_000  # 50% of profit
TRADER_SHARE_CAP_BPS = 10_000  # all of the performance fee


def billing_setting(name: str) -> Any:
    configured: dict[str, Any] = getattr(settings, "BILLING", {}) or {}
    return configured.get(name, DEFAULTS[name])


def default_currency() -> str:
    return str(billing_setting("CURRENCY"))


def builder_fee_cap_bps(venue: str) -> int:
    caps: dict[str, int] = billing_setting("BUILDER_FEE_MAX_BPS")
    return int(caps.get(venue, 0))


def days_per_year() -> Decimal:
    return Decimal(int(billing_setting("DAYS_PER_YEAR")))
