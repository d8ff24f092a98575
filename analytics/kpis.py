"""Trader KPIs: the definitions, as pure functions over daily rows (no I/O).

From fills to days
------------------
Every fill of a trader (``trader_events``) contributes to its UTC day:

* ``pnl`` = sum of ``closedPnl`` (realised profit and loss); ``fees`` = sum of fees (builder
  fees included; a rebate is a negative fee); ``net_pnl = pnl - fees``.
* ``volume`` = sum of ``px x sz``; ``trade_count`` = number of fills.
* A *closing* fill is one that reduces a position (action reduce, close, flip or
  liquidation); it *wins* when its ``closedPnl - fee > 0``. ``gross_profit`` / ``gross_loss``
  sum the positive / negative (as a positive amount) ``closedPnl - fee`` of closing fills.
* Leverage: fills whose leverage is known (> 0) add to ``leverage_sum``/``leverage_count``.

Funding payments are not in fills and not in these figures.

Equity base and daily returns
-----------------------------
The series covers every calendar day from the trader's first fill to the as-of day (days
without fills have zero PnL). For day *d*:

* ``equity_start(d)`` = the last account-value sample taken on a day before *d* (Hyperliquid
  ``portfolio`` accountValueHistory, ``clearinghouseState``), plus the net PnL of the days
  after that sample's day and before *d*; with no earlier sample, the configured notional
  ``ANALYTICS["DEFAULT_EQUITY_BASE_USD"]`` plus the net PnL of the days before *d*. Anchoring
  on samples keeps deposits and withdrawals out of returns.
* ``return(d) = net_pnl(d) / equity_start(d)``; 0 when ``equity_start(d) <= 0`` (nothing
  left to return on).

KPIs over a window (1d, 7d, 30d ending on the as-of day, or all days)
---------------------------------------------------------------------
With ``r`` the daily returns of the window's days (``n`` of them):

* ``pnl``, ``volume``, ``trade_count``: sums; ``roi`` = prod(1 + r) - 1.
* ``win_rate`` = wins / closing fills (None without closing fills).
* ``sharpe`` = mean(r) / std(r, ddof=1) x sqrt(365); risk-free rate 0; None when n < 2 or
  std = 0.
* ``sortino`` = mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(365) (downside deviation against
  0 over all n days); None when n < 2 or no day lost.
* ``max_drawdown`` = max over t of 1 - W_t / max(W_0..W_t), W_0 = 1, W_t = prod_{i<=t}(1 + r_i);
  a fraction (0.25 = 25 %).
* ``var_95`` = -(5th percentile of r), numpy's linear interpolation: the daily loss not
  exceeded on 95 % of days, as a fraction of equity; None when n < 2.
* ``profit_factor`` = gross_profit / gross_loss; None when nothing was lost.
* ``avg_leverage`` = leverage_sum / leverage_count; None when no leverage is known.

copy_score
----------
A 0-100 score of how good a trader is to copy, from one window's KPIs::

    s_sharpe   = clip(sharpe / 3, 0, 1)                  # Sharpe 3 or better: full marks
    s_return   = clip(roi / 0.5, 0, 1)                   # +50 % or better; losses: 0
    s_drawdown = clip(1 - max_drawdown / 0.5, 0, 1)      # 0 % drawdown: 1; 50 % or worse: 0
    s_win      = win_rate (0 when None)
    s_history  = clip(history_days / 90, 0, 1)           # days since the first fill
    s_activity = clip(active_days / min(days, 10), 0, 1) # days with fills in the window
    copy_score = 100 x (0.30 s_sharpe + 0.20 s_return + 0.20 s_drawdown
                        + 0.10 s_win + 0.10 s_history + 0.10 s_activity)

rounded half-even to 0.01; a None Sharpe counts as 0. The weights sum to 1, so the score is
always within [0, 100]. ``Trader.public_score`` is the 30-day copy_score.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np

PERIODS: dict[str, int | None] = {"1d": 1, "7d": 7, "30d": 30, "all": None}
ANNUALISATION = math.sqrt(365.0)
ZERO = Decimal(0)
CLOSING_ACTIONS = ("reduce", "close", "flip", "liquidation")


@dataclass(frozen=True)
class DayAggregate:
    """A trader's fills of one day, summed (from ``trader_events``)."""

    date: date
    pnl: Decimal = ZERO
    fees: Decimal = ZERO
    volume: Decimal = ZERO
    trade_count: int = 0
    closing_count: int = 0
    win_count: int = 0
    gross_profit: Decimal = ZERO
    gross_loss: Decimal = ZERO
    leverage_sum: float = 0.0
    leverage_count: int = 0
    leverage_max: float = 0.0

    @property
    def net_pnl(self) -> Decimal:
        return self.pnl - self.fees


@dataclass(frozen=True)
class Day:
    """A day of the series with its equity base and return."""

    aggregate: DayAggregate
    equity_start: Decimal
    equity_source: str  # "sample" or "notional"
    ret: float

    @property
    def date(self) -> date:
        return self.aggregate.date

    @property
    def equity_end(self) -> Decimal:
        return self.equity_start + self.aggregate.net_pnl


@dataclass(frozen=True)
class PeriodKpis:
    period: str
    as_of: date
    start_date: date
    days: int
    history_days: int
    active_days: int
    pnl: Decimal
    fees: Decimal
    volume: Decimal
    trade_count: int
    roi: float
    win_rate: float | None
    sharpe: float | None
    sortino: float | None
    max_drawdown: float
    var_95: float | None
    profit_factor: float | None
    avg_leverage: float | None
    copy_score: Decimal


def daily_series(
    aggregates: Sequence[DayAggregate],
    *,
    as_of: date,
    samples: Sequence[tuple[date, Decimal]] = (),
    default_base: Decimal,
) -> list[Day]:
    """Every day from the first aggregate to ``as_of``, with equity base and return.

    ``samples``: (day, account value of the last sample taken that day), any order.
    """
    if not aggregates:
        return []
    by_day = {agg.date: agg for agg in aggregates}
    first = min(by_day)
    if first > as_of:
        return []
    sample_by_day = dict(sorted(samples))
    sample_days = sorted(sample_by_day)
    series: list[Day] = []
    equity = default_base
    source = "notional"
    cursor = 0
    day = first
    # Samples before the first fill anchor the first day too.
    while cursor < len(sample_days) and sample_days[cursor] < first:
        equity, source = sample_by_day[sample_days[cursor]], "sample"
        cursor += 1
    while day <= as_of:
        aggregate = by_day.get(day) or DayAggregate(date=day)
        ret = float(aggregate.net_pnl / equity) if equity > 0 else 0.0
        series.append(Day(aggregate=aggregate, equity_start=equity, equity_source=source, ret=ret))
        equity = equity + aggregate.net_pnl
        if cursor < len(sample_days) and sample_days[cursor] == day:
            # The day's last sample is its closing equity: the next day starts from it.
            equity, source = sample_by_day[day], "sample"
            cursor += 1
        day += timedelta(days=1)
    return series


def _optional(value: float) -> float | None:
    return value if math.isfinite(value) else None


def sharpe_ratio(returns: np.ndarray) -> float | None:
    if len(returns) < 2:
        return None
    std = float(np.std(returns, ddof=1))
    if std == 0:
        return None
    return _optional(float(np.mean(returns)) / std * ANNUALISATION)


def sortino_ratio(returns: np.ndarray) -> float | None:
    if len(returns) < 2:
        return None
    downside = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if downside == 0:
        return None
    return _optional(float(np.mean(returns)) / downside * ANNUALISATION)


def max_drawdown(returns: np.ndarray) -> float:
    if len(returns) == 0:
        return 0.0
    wealth = np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    peaks = np.maximum.accumulate(wealth)
    return float(np.max(1.0 - wealth / peaks))


def value_at_risk(returns: np.ndarray, level: float = 0.95) -> float | None:
    if len(returns) < 2:
        return None
    return float(-np.percentile(returns, (1.0 - level) * 100.0))


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def copy_score(
    *,
    sharpe: float | None,
    roi: float,
    max_drawdown: float,
    win_rate: float | None,
    history_days: int,
    active_days: int,
    days: int,
) -> Decimal:
    """See the module docstring."""
    s_sharpe = _clip((sharpe or 0.0) / 3.0)
    s_return = _clip(roi / 0.5)
    s_drawdown = _clip(1.0 - max_drawdown / 0.5)
    s_win = _clip(win_rate or 0.0)
    s_history = _clip(history_days / 90.0)
    s_activity = _clip(active_days / min(max(days, 1), 10))
    score = 100.0 * (
        0.30 * s_sharpe
        + 0.20 * s_return
        + 0.20 * s_drawdown
        + 0.10 * s_win
        + 0.10 * s_history
        + 0.10 * s_activity
    )
    return Decimal(repr(score)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def period_kpis(series: Sequence[Day], *, period: str, as_of: date) -> PeriodKpis | None:
    """The KPIs of one window of ``series`` (None when the trader has no day in it)."""
    if not series:
        return None
    length = PERIODS[period]
    first_day = series[0].date
    start = first_day if length is None else max(first_day, as_of - timedelta(days=length - 1))
    window = [day for day in series if start <= day.date <= as_of]
    if not window:
        return None
    returns = np.array([day.ret for day in window], dtype=np.float64)
    aggs = [day.aggregate for day in window]
    closing = sum(a.closing_count for a in aggs)
    wins = sum(a.win_count for a in aggs)
    gross_profit = sum((a.gross_profit for a in aggs), ZERO)
    gross_loss = sum((a.gross_loss for a in aggs), ZERO)
    leverage_count = sum(a.leverage_count for a in aggs)
    roi = float(np.prod(1.0 + returns) - 1.0)
    win_rate = wins / closing if closing else None
    sharpe = sharpe_ratio(returns)
    drawdown = max_drawdown(returns)
    history_days = (as_of - first_day).days + 1
    active_days = sum(1 for a in aggs if a.trade_count)
    return PeriodKpis(
        period=period,
        as_of=as_of,
        start_date=start,
        days=len(window),
        history_days=history_days,
        active_days=active_days,
        pnl=sum((a.net_pnl for a in aggs), ZERO),
        fees=sum((a.fees for a in aggs), ZERO),
        volume=sum((a.volume for a in aggs), ZERO),
        trade_count=sum(a.trade_count for a in aggs),
        roi=roi,
        win_rate=win_rate,
        sharpe=sharpe,
        sortino=sortino_ratio(returns),
        max_drawdown=drawdown,
        var_95=value_at_risk(returns),
        profit_factor=float(gross_profit / gross_loss) if gross_loss > 0 else None,
        avg_leverage=sum(a.leverage_sum for a in aggs) / leverage_count if leverage_count else None,
        copy_score=copy_score(
            sharpe=sharpe,
            roi=roi,
            max_drawdown=drawdown,
            win_rate=win_rate,
            history_days=history_days,
            active_days=active_days,
            days=len(window),
        ),
    )
