"""Public trader analytics: KPIs over 1d/7d/30d/all, the daily equity curve, the leaderboard."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from analytics.clickhouse.client import get_client
from analytics.kpis import PERIODS
from analytics.selectors.common import METRICS, api_settings, cached_public, q8
from config.errors import NotFound, ValidationFailed

# --------------------------------------------------------------------------- traders


def _public_trader(trader_id: uuid.UUID | str) -> Any:
    from copytrade.selectors import trader_directory

    try:
        key = uuid.UUID(str(trader_id))
    except ValueError as exc:
        raise NotFound("No such trader.") from exc
    trader = trader_directory(trader_ids=[key]).first()
    if trader is None:
        raise NotFound("No such trader.")
    return trader


_PERIOD_FIELDS = (
    "period", "as_of", "start_date", "days", "history_days", "pnl", "volume", "trade_count",
    "roi", "win_rate", "sharpe", "sortino", "max_drawdown", "var_95", "profit_factor",
    "avg_leverage", "copy_score",
)  # fmt: skip


def trader_kpis(*, trader_id: uuid.UUID | str) -> dict[str, Any]:
    """A public trader's KPIs over 1d/7d/30d/all (the latest rollup)."""
    trader = _public_trader(trader_id)
    key = {"trader": str(trader.pk)}

    def compute() -> dict[str, Any]:
        rows = get_client().query_dicts(
            f"SELECT {', '.join(_PERIOD_FIELDS)} FROM trader_kpis_period FINAL "  # noqa: S608
            "WHERE trader_id = {trader:String}",
            key,
            settings=api_settings(len(PERIODS)),
        )
        return {
            "trader_id": trader.pk,
            "alias": trader.alias,
            "periods": {row["period"]: _kpi_row(row) for row in rows},
        }

    return cached_public("trader_kpis", key, compute)


def _kpi_row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for name in ("pnl", "volume"):
        out[name] = q8(out[name])
    out["copy_score"] = Decimal(out["copy_score"]).quantize(Decimal("0.01"))
    out["trade_count"] = int(out["trade_count"])
    return out


def trader_equity_curve(
    *,
    trader_id: uuid.UUID | str,
    start: date | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """Daily equity (start and end of day), net PnL and return of a public trader."""
    trader = _public_trader(trader_id)
    end = end or datetime.now(tz=UTC).date()
    start = start or end - timedelta(days=365)
    if start > end:
        raise ValidationFailed("start must not be after end.", field="start")
    if (end - start).days > 3660:
        raise ValidationFailed("The range may span at most 3660 days.", field="end")
    params = {"trader": str(trader.pk), "start": start, "end": end}

    def compute() -> list[dict[str, Any]]:
        rows = get_client().execute(
            """
            SELECT date, equity_start, net_pnl, return_pct
            FROM trader_kpis_day FINAL
            WHERE trader_id = {trader:String} AND date >= {start:Date} AND date <= {end:Date}
            ORDER BY date
            LIMIT 4000
            """,
            params,
            settings=api_settings(4000),
        )
        return [
            {
                "date": day,
                "equity_start": q8(equity),
                "net_pnl": q8(pnl),
                "equity_end": q8(Decimal(equity) + Decimal(pnl)),
                "return": float(ret),
            }
            for day, equity, pnl, ret in rows
        ]

    return cached_public("equity", params, compute)


def leaderboard(
    *,
    period: str = "30d",
    metric: str = "copy_score",
    tag: str | None = None,
    min_days: int = 0,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Public traders ranked by ``metric`` over ``period``: plain dicts with ``trader_id``.

    ``period``: 1d, 7d, 30d or all; ``metric``: pnl, roi, win_rate, sharpe, drawdown
    (smallest first), copy_score or followers; ``tag``: only traders with that tag;
    ``min_days``: at least that many days since the trader's first fill. Traders without
    KPIs yet are not ranked; a metric a trader has no value for sorts last.
    """
    from copytrade.selectors import trader_directory

    if period not in PERIODS:
        raise ValidationFailed(f"period must be one of {', '.join(PERIODS)}.", field="period")
    if metric not in METRICS:
        raise ValidationFailed(f"metric must be one of {', '.join(METRICS)}.", field="metric")
    if not 0 <= int(min_days) <= 36_500:
        raise ValidationFailed("min_days must be between 0 and 36500.", field="min_days")
    if not 1 <= int(limit) <= 500:
        raise ValidationFailed("limit must be between 1 and 500.", field="limit")
    key = {
        "period": period,
        "metric": metric,
        "tag": tag or "",
        "min_days": int(min_days),
        "limit": int(limit),
    }

    def compute() -> list[dict[str, Any]]:
        traders = {str(t.pk): t for t in trader_directory(tag=tag or None)}
        if not traders:
            return []
        rows = get_client().query_dicts(
            f"SELECT {', '.join(_PERIOD_FIELDS)}, trader_id FROM trader_kpis_period FINAL "  # noqa: S608
            "WHERE period = {period:String} AND history_days >= {min_days:UInt32} "
            "AND has({ids:Array(String)}, trader_id)",
            {"period": period, "min_days": int(min_days), "ids": sorted(traders)},
            settings=api_settings(len(traders) + 1),
        )
        entries = []
        for row in rows:
            trader = traders[row["trader_id"]]
            entry = _kpi_row(row)
            entry.update(
                trader_id=trader.pk,
                alias=trader.alias,
                exchange=trader.exchange,
                tags=list(trader.tags),
                followers=int(getattr(trader, "followers", 0)),
            )
            entries.append(entry)
        field, descending = METRICS[metric]
        present = [e for e in entries if e[field] is not None]
        missing = [e for e in entries if e[field] is None]
        present.sort(key=lambda e: (e[field], str(e["trader_id"])), reverse=descending)
        ranked = (present + sorted(missing, key=lambda e: str(e["trader_id"])))[: int(limit)]
        for rank, entry in enumerate(ranked, start=1):
            entry["rank"] = rank
        return ranked

    return cached_public("leaderboard", key, compute)
