"""Analytics: every read. Public market data (candles, funding, heatmap, leaderboard, trader
KPIs) is the same for everyone; a customer's copy performance is scoped to that customer.

Every query binds its values server-side (``{name:Type}``); the only SQL text chosen from
input -- a table and a bucket expression for an interval, a sort column for a metric -- comes
from the fixed maps in ``selectors.common``, looked up with validated keys. Queries made for
the API run with ``max_execution_time``, ``max_result_rows`` and
``result_overflow_mode='throw'``, and public answers are cached in Redis for
``API_CACHE_SECONDS``.

The reads are split by subject (``market``, ``traders``, ``copy``, ``quality``); import them
from here.
"""

from analytics.selectors.common import (
    INTERVALS,
    METRICS,
    SOURCES,
    IntervalSpec,
    api_settings,
    time_range,
)
from analytics.selectors.copy import copy_performance
from analytics.selectors.market import _trade_candles, candles, funding_rates, liq_heatmap
from analytics.selectors.quality import quality_report, quarantined_rows
from analytics.selectors.traders import leaderboard, trader_equity_curve, trader_kpis

__all__ = [
    "INTERVALS",
    "METRICS",
    "SOURCES",
    "IntervalSpec",
    "_trade_candles",
    "api_settings",
    "candles",
    "copy_performance",
    "funding_rates",
    "leaderboard",
    "liq_heatmap",
    "quality_report",
    "quarantined_rows",
    "time_range",
    "trader_equity_curve",
    "trader_kpis",
]
