"""A customer's own copy-trading performance (scoped by the owner recorded with each event)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from analytics.clickhouse.client import get_client
from analytics.selectors.common import api_settings, as_utc, q8, time_range

if TYPE_CHECKING:
    from accounts.models import User

# --------------------------------------------------------------------------- copy performance


def copy_performance(
    *,
    user: User,
    strategy_id: uuid.UUID | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Copy-trading performance of ``user``'s own strategies (never anyone else's: rows are
    selected by the owner recorded with each event), one dict per strategy."""
    start, end = time_range(start, end, max_days=31, default=timedelta(days=30))
    rows = get_client().query_dicts(
        """
        SELECT
            strategy_id,
            count() AS events,
            countIf(event_type = 'order_filled') AS fills,
            countIf(status = 'failed') AS failures,
            avg(latency_ms) AS avg_latency_ms,
            quantile(0.95)(latency_ms) AS p95_latency_ms,
            avgIf(slippage_bps, event_type = 'order_filled') AS avg_slippage_bps,
            avgIf(toFloat64(alignment_rate), alignment_rate > 0) AS avg_alignment_rate,
            sum(realized_pnl) AS realized_pnl,
            sum(fee) AS fees,
            sumIf(toDecimal128(quantity, 8) * price, event_type = 'order_filled') AS notional,
            min(timestamp) AS first_event,
            max(timestamp) AS last_event
        FROM copy_trade_events FINAL
        WHERE user_id = {user:String}
          AND ({strategy:String} = '' OR strategy_id = {strategy:String})
          AND timestamp >= {start:DateTime64(3, 'UTC')}
          AND timestamp < {end:DateTime64(3, 'UTC')}
        GROUP BY strategy_id
        ORDER BY strategy_id
        LIMIT 1000
        """,
        {
            "user": str(user.pk),
            "strategy": str(strategy_id) if strategy_id else "",
            "start": start,
            "end": end,
        },
        settings=api_settings(1000),
    )
    out = []
    for row in rows:
        events = int(row["events"])
        fills = int(row["fills"])
        failures = int(row["failures"])
        out.append(
            {
                "strategy_id": uuid.UUID(row["strategy_id"]),
                "events": events,
                "fills": fills,
                "failures": failures,
                "success_rate": (1 - failures / events) if events else None,
                "avg_latency_ms": _finite(row["avg_latency_ms"]),
                "p95_latency_ms": _finite(row["p95_latency_ms"]),
                "avg_slippage_bps": _finite(row["avg_slippage_bps"]),
                "avg_alignment_rate": _finite(row["avg_alignment_rate"]),
                "realized_pnl": q8(row["realized_pnl"]),
                "fees": q8(row["fees"]),
                "notional": q8(row["notional"]),
                "first_event": as_utc(row["first_event"]),
                "last_event": as_utc(row["last_event"]),
            }
        )
    return out


def _finite(value: Any) -> float | None:
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None
