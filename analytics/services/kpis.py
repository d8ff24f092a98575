"""Trader KPI rollups (definitions in analytics.kpis) and publishing copy scores.

:func:`trader_kpis_refresh` recomputes, for the given traders (default: every trader with
events), the daily rows of ``trader_kpis_day`` from ``trader_events FINAL`` and the window
KPIs of ``trader_kpis_period`` as of a day. Days older than the events' retention keep the
daily rows computed while their events existed. Rows are replaced (ReplacingMergeTree on
``computed_at``), so running it again -- or twice at once -- is harmless.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from analytics.clickhouse.client import ClickHouse, get_client
from analytics.conf import decimal_setting
from analytics.kpis import CLOSING_ACTIONS, PERIODS, Day, DayAggregate, daily_series, period_kpis

DAY_COLUMNS = (
    "date", "trader_id", "pnl", "fees", "net_pnl", "volume", "trade_count", "closing_count",
    "win_count", "gross_profit", "gross_loss", "leverage_sum", "leverage_count",
    "leverage_max", "equity_start", "equity_source", "return_pct", "computed_at",
)  # fmt: skip
PERIOD_COLUMNS = (
    "period", "trader_id", "as_of", "start_date", "days", "history_days", "pnl", "volume",
    "trade_count", "roi", "win_rate", "sharpe", "sortino", "max_drawdown", "var_95",
    "profit_factor", "avg_leverage", "copy_score", "computed_at",
)  # fmt: skip

_EVENT_DAYS_SQL = """
SELECT
    trader_id,
    toDate(timestamp) AS day,
    sum(closed_pnl) AS pnl,
    sum(fee) AS fees,
    sum(notional_value) AS volume,
    count() AS trade_count,
    countIf(action IN {closing:Array(String)}) AS closing_count,
    countIf(action IN {closing:Array(String)} AND closed_pnl - fee > 0) AS win_count,
    sumIf(closed_pnl - fee, action IN {closing:Array(String)} AND closed_pnl - fee > 0)
        AS gross_profit,
    -sumIf(closed_pnl - fee, action IN {closing:Array(String)} AND closed_pnl - fee < 0)
        AS gross_loss,
    sumIf(toFloat64(leverage), leverage > 0) AS leverage_sum,
    countIf(leverage > 0) AS leverage_count,
    max(toFloat64(leverage)) AS leverage_max
FROM trader_events FINAL
WHERE (empty({traders:Array(String)}) OR has({traders:Array(String)}, trader_id))
  AND toDate(timestamp) <= {as_of:Date}
GROUP BY trader_id, day
"""

_STORED_DAYS_SQL = """
SELECT trader_id, date, pnl, fees, volume, trade_count, closing_count, win_count,
       gross_profit, gross_loss, leverage_sum, leverage_count, leverage_max
FROM trader_kpis_day FINAL
WHERE (empty({traders:Array(String)}) OR has({traders:Array(String)}, trader_id))
  AND date <= {as_of:Date}
"""

_SAMPLES_SQL = """
SELECT trader_id, toDate(timestamp) AS day, argMax(account_value, timestamp) AS value
FROM trader_equity_samples FINAL
WHERE (empty({traders:Array(String)}) OR has({traders:Array(String)}, trader_id))
  AND toDate(timestamp) <= {as_of:Date}
GROUP BY trader_id, day
"""


@dataclass(frozen=True)
class KpiRefreshResult:
    traders: int
    days: int
    periods: int


def _aggregate(row: tuple[Any, ...]) -> tuple[str, DayAggregate]:
    (trader, day, pnl, fees, volume, trades, closing, wins, profit, loss, lev_sum, lev_n,
     lev_max) = row  # fmt: skip
    return str(trader), DayAggregate(
        date=day,
        pnl=Decimal(pnl),
        fees=Decimal(fees),
        volume=Decimal(volume),
        trade_count=int(trades),
        closing_count=int(closing),
        win_count=int(wins),
        gross_profit=Decimal(profit),
        gross_loss=Decimal(loss),
        leverage_sum=float(lev_sum),
        leverage_count=int(lev_n),
        leverage_max=float(lev_max),
    )


def trader_series_load(
    client: ClickHouse, *, as_of: date, trader_ids: Sequence[str] = ()
) -> dict[str, list[Day]]:
    """Each trader's daily series (see analytics.kpis.daily_series) up to ``as_of``."""
    params = {"traders": list(trader_ids), "as_of": as_of, "closing": list(CLOSING_ACTIONS)}
    days: dict[str, dict[date, DayAggregate]] = defaultdict(dict)
    for row in client.execute(_STORED_DAYS_SQL, params):
        trader, aggregate = _aggregate(row)
        days[trader][aggregate.date] = aggregate
    for row in client.execute(_EVENT_DAYS_SQL, params):
        trader, aggregate = _aggregate(row)
        days[trader][aggregate.date] = aggregate  # fresh from the events wins
    samples: dict[str, list[tuple[date, Decimal]]] = defaultdict(list)
    for trader, day, value in client.execute(_SAMPLES_SQL, params):
        samples[str(trader)].append((day, Decimal(value)))
    base = decimal_setting("DEFAULT_EQUITY_BASE_USD")
    return {
        trader: daily_series(
            list(by_day.values()), as_of=as_of, samples=samples.get(trader, ()), default_base=base
        )
        for trader, by_day in days.items()
    }


def trader_kpis_refresh(
    *, as_of: date | None = None, trader_ids: Sequence[str] = ()
) -> KpiRefreshResult:
    """Recompute daily rows and window KPIs (1d/7d/30d/all) as of ``as_of`` (default today)."""
    as_of = as_of or datetime.now(tz=UTC).date()
    client = get_client()
    series = trader_series_load(client, as_of=as_of, trader_ids=[str(t) for t in trader_ids])
    computed_at = datetime.now(tz=UTC)
    day_rows = []
    period_rows = []
    for trader, days in series.items():
        for day in days:
            a = day.aggregate
            day_rows.append(
                (
                    a.date, trader, a.pnl, a.fees, a.net_pnl, a.volume, a.trade_count,
                    a.closing_count, a.win_count, a.gross_profit, a.gross_loss, a.leverage_sum,
                    a.leverage_count, a.leverage_max, day.equity_start, day.equity_source,
                    day.ret, computed_at,
                )
            )  # fmt: skip
        for period in PERIODS:
            k = period_kpis(days, period=period, as_of=as_of)
            if k is None:
                continue
            period_rows.append(
                (
                    period, trader, k.as_of, k.start_date, k.days, k.history_days, k.pnl,
                    k.volume, k.trade_count, k.roi, k.win_rate, k.sharpe, k.sortino,
                    k.max_drawdown, k.var_95, k.profit_factor, k.avg_leverage, k.copy_score,
                    computed_at,
                )
            )  # fmt: skip
    token = {"insert_deduplication_token": f"kpis:{uuid.uuid4().hex}"}
    if day_rows:
        client.insert_rows("trader_kpis_day", DAY_COLUMNS, day_rows, settings=token)
    if period_rows:
        client.insert_rows("trader_kpis_period", PERIOD_COLUMNS, period_rows, settings=token)
    return KpiRefreshResult(traders=len(series), days=len(day_rows), periods=len(period_rows))


def trader_scores_compute(*, period: str = "30d") -> dict[uuid.UUID, Decimal]:
    """Latest copy_score of every trader for ``period`` (what public_score shows)."""
    rows = get_client().execute(
        "SELECT trader_id, copy_score FROM trader_kpis_period FINAL WHERE period = {p:String}",
        {"p": period},
    )
    scores = {}
    for trader, score in rows:
        try:
            scores[uuid.UUID(str(trader))] = Decimal(score)
        except ValueError:
            continue  # not a Tandem trader id (imported data)
    return scores


def trader_scores_publish(*, period: str = "30d") -> int:
    """Copy the scores onto ``Trader.public_score`` (through copytrade's service)."""
    from copytrade.services import trader_scores_update

    return trader_scores_update(scores=trader_scores_compute(period=period))
