"""Fee accrual: fills (builder and copy fees), days (management fees), periods (performance fees).

Formulas (money.py has the rounding rule; every fee is rounded once, half to even, to the
currency's precision, and a fee that rounds to zero is not charged):

builder fee      ``notional x min(schedule bps, venue cap) / 10,000`` on every fill of a copy-trade
                 order; notional = size x price (rounded to 8 places first, as stored). The venue
                 collects it on the fill: Dr venue clearing, Cr revenue:trading.
copy fee         ``notional x copy bps / 10,000`` on the same fills: Dr customer receivable,
                 Cr revenue:copy.
management fee   ``equity x annual bps / 10,000 / 365`` per UTC day, on the day's closing equity
                 mark (ACT/365 fixed): Dr receivable (split across the strategy's allocations by
                 weight), Cr revenue:management.
performance fee  ``profit above the high-water mark x bps / 10,000`` per closed week or month
                 (billing/hwm.py defines the mark, flows and loss carry-forward): Dr receivable
                 (split by allocation weight), Cr revenue:performance and, for
                 ``trader_share_bps`` of it, Cr trader share payable per followed trader by
                 allocation weight (one largest-remainder split: no unit lost or created).

Idempotency -- a fill, a day, a period is charged once however often a task runs:
the unique keys ``(fill, fee_category)``, ``(strategy, fee_category, period_start)`` (days and
performance periods) and ``(strategy, period_start)`` on performance periods, under a
per-strategy advisory lock taken *before* the service looks for what is already charged.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from billing import selectors
from billing.conf import billing_setting, builder_fee_cap_bps, days_per_year, default_currency
from billing.hwm import HwmPeriod, hwm_period_close
from billing.models import (
    CalculationBase,
    CapitalFlow,
    FeeCategory,
    FeeType,
    PerformancePeriod,
    StrategyEquityMark,
)
from billing.money import ZERO, annual_bps_for_days, bps_fee_in_units, currency_unit, share_split
from billing.periods import DAY, day_start, period_containing
from billing.services.journal import (
    FeeDraft,
    Leg,
    customer_legs,
    fees_post,
    receivable,
    revenue,
    strategies_lock,
    trader_payable,
    venue_clearing,
)

NOTIONAL_QUANT = Decimal("0.00000001")


@dataclass
class AccrualResult:
    considered: int = 0
    charged: int = 0
    already_charged: int = 0
    fee_ids: list[uuid.UUID] = field(default_factory=list)

    def merge(self, other: AccrualResult) -> None:
        self.considered += other.considered
        self.charged += other.charged
        self.already_charged += other.already_charged
        self.fee_ids.extend(other.fee_ids)


# --------------------------------------------------------------------------- fills


def fill_fees_accrue(
    *, fill_ids: Sequence[uuid.UUID | str], now: datetime | None = None
) -> AccrualResult:
    """Charge builder and copy fees on the copy-trade fills among ``fill_ids``, once each,
    in one transaction (set-based: a handful of queries and three COPYs for any batch).
    Fills already charged both fees are left out by the query (``considered`` does not count
    them); a concurrent run is made harmless by the look-up of existing charges under the
    per-strategy lock, backed by the unique key on ``(fill, fee_category)``."""
    now = now or timezone.now()
    result = AccrualResult()
    if not fill_ids:
        return result
    with transaction.atomic():
        fills = selectors.copied_fills_for_accrual(fill_ids=fill_ids)
        result.considered = len(fills)
        if not fills:
            return result
        strategy_ids = {f.strategy_id for f in fills}
        strategies_lock(strategy_ids)
        existing = selectors.fill_charges_existing(fill_ids=[f.fill_id for f in fills])
        schedules = selectors.strategy_fee_schedules(strategy_ids=strategy_ids, at=now)
        allocations = selectors.allocations_by_strategy(strategy_ids=strategy_ids)
        by_trader: dict[tuple[uuid.UUID, uuid.UUID | None], uuid.UUID] = {
            (strategy_id, a.trader_id): a.allocation_id
            for strategy_id, items in allocations.items()
            for a in items
        }
        currency = default_currency()
        unit = currency_unit(currency)
        revenue_trading = revenue(FeeType.TRADING, currency)
        revenue_copy = revenue(FeeType.COPY, currency)
        caps: dict[str, int] = {}
        metadata: dict[str, dict[str, str]] = {}
        drafts: list[FeeDraft] = []
        for f in fills:
            schedule = schedules.get(f.strategy_id, selectors.ZERO_SCHEDULE)
            notional = (f.size * f.price).quantize(NOTIONAL_QUANT, rounding=ROUND_HALF_EVEN)
            allocation_id = by_trader.get((f.strategy_id, f.trader_id))
            if f.exchange not in caps:
                caps[f.exchange] = builder_fee_cap_bps(f.exchange)
                metadata[f.exchange] = {"venue": f.exchange}
            for category, bps, debit, credit in (
                (
                    FeeCategory.BUILDER_FEE,
                    min(schedule.builder_fee_bps, caps[f.exchange]),
                    venue_clearing(f.exchange, currency),
                    revenue_trading,
                ),
                (
                    FeeCategory.COPY_FEE,
                    schedule.copy_fee_bps,
                    receivable(f.user_id, currency),
                    revenue_copy,
                ),
            ):
                if bps <= 0:
                    continue
                if (f.fill_id, category) in existing:
                    result.already_charged += 1
                    continue
                amount = bps_fee_in_units(notional, bps, unit)
                if amount <= 0:
                    continue
                drafts.append(
                    FeeDraft(
                        user_id=f.user_id,
                        fee_category=category,
                        fee_bps=bps,
                        fee_amount=amount,
                        fee_currency=currency,
                        legs=[
                            Leg(debit, amount, f.strategy_id, allocation_id),
                            Leg(credit, -amount),
                        ],
                        order_id=f.order_id,
                        strategy_id=f.strategy_id,
                        fill_id=f.fill_id,
                        plan_id=schedule.plan_id,
                        notional_amount=notional,
                        calculation_base=CalculationBase.TRADE_VOLUME,
                        transaction_hash=f.tx_hash or None,
                        exchange_tx_id=f.venue_fill_id,
                        metadata=metadata[f.exchange],
                    )
                )
        result.fee_ids = fees_post(drafts, now=now)
        result.charged = len(drafts)
    return result


def fill_fees_sweep(*, now: datetime | None = None) -> AccrualResult:
    """The safety net behind the fill listener: charge copied fills of the look-back window
    that have no fill fee yet (a listener lost to a crash between commit and dispatch)."""
    now = now or timezone.now()
    since = now - timedelta(hours=int(billing_setting("FILL_SWEEP_LOOKBACK_HOURS")))
    batch = int(billing_setting("ACCRUAL_BATCH_SIZE"))
    result = AccrualResult()
    fill_ids = selectors.copied_fill_ids_uncharged(since=since, limit=batch)
    if fill_ids:
        result.merge(fill_fees_accrue(fill_ids=fill_ids, now=now))
    return result


# --------------------------------------------------------------------------- management fees


def management_fees_accrue(*, day: date, now: datetime | None = None) -> AccrualResult:
    """Charge one day of management fee on every strategy marked for ``day``, once."""
    now = now or timezone.now()
    start = day_start(day)
    result = AccrualResult()
    with transaction.atomic():
        marks = list(
            StrategyEquityMark.objects.filter(day=day).values_list(
                "strategy_id", "equity", "strategy__user_id"
            )
        )
        result.considered = len(marks)
        if not marks:
            return result
        strategy_ids = {strategy_id for strategy_id, _, _ in marks}
        strategies_lock(strategy_ids)
        existing = selectors.period_charges_existing(
            strategy_ids=strategy_ids, category=FeeCategory.VAULT_MANAGEMENT, period_start=start
        )
        # The plan in force at the end of that day decides the rate.
        at = start + DAY - timedelta(microseconds=1)
        schedules = selectors.strategy_fee_schedules(strategy_ids=strategy_ids, at=at)
        allocations = selectors.allocations_by_strategy(strategy_ids=strategy_ids)
        currency = default_currency()
        year = days_per_year()
        drafts: list[FeeDraft] = []
        for strategy_id, equity, user_id in marks:
            if strategy_id in existing:
                result.already_charged += 1
                continue
            schedule = schedules.get(strategy_id, selectors.ZERO_SCHEDULE)
            bps = schedule.management_fee_bps
            amount = annual_bps_for_days(equity, bps, 1, year, currency) if bps > 0 else ZERO
            if amount <= 0:
                continue
            drafts.append(
                FeeDraft(
                    user_id=user_id,
                    fee_category=FeeCategory.VAULT_MANAGEMENT,
                    fee_bps=bps,
                    fee_amount=amount,
                    fee_currency=currency,
                    legs=[
                        *customer_legs(
                            receivable(user_id, currency),
                            amount,
                            strategy_id=strategy_id,
                            allocations=allocations.get(strategy_id, []),
                        ),
                        Leg(revenue(FeeType.MANAGEMENT, currency), -amount),
                    ],
                    strategy_id=strategy_id,
                    plan_id=schedule.plan_id,
                    notional_amount=equity,
                    calculation_base=CalculationBase.AUM,
                    period_start=start,
                    period_end=start + DAY,
                    metadata={"day": day, "annual_bps": bps, "days_per_year": int(year)},
                )
            )
        result.fee_ids = fees_post(drafts, now=now)
        result.charged = len(drafts)
    return result


# --------------------------------------------------------------------------- performance fees


def performance_fees_accrue(
    *, now: datetime | None = None, strategy_ids: Iterable[uuid.UUID] | None = None
) -> AccrualResult:
    """Close every complete performance period of every marked strategy (one transaction a
    strategy, so one strategy's problem does not hold the others back)."""
    now = now or timezone.now()
    if strategy_ids is None:
        strategy_ids = (
            StrategyEquityMark.objects.order_by().values_list("strategy_id", flat=True).distinct()
        )
    result = AccrualResult()
    for strategy_id in sorted(set(strategy_ids), key=str):
        result.merge(performance_periods_close(strategy_id=strategy_id, now=now))
    return result


def performance_periods_close(
    *, strategy_id: uuid.UUID, now: datetime | None = None
) -> AccrualResult:
    """Close the complete performance periods of one strategy, in order, once each.

    A period ``[start, end)`` is complete when ``end <= now``; it closes on the latest equity
    mark within it (the mark of its last day when there is one) and waits while it has none.
    """
    now = now or timezone.now()
    result = AccrualResult()
    with transaction.atomic():
        strategies_lock([strategy_id])
        user_id = selectors.strategy_owners(strategy_ids=[strategy_id]).get(strategy_id)
        if user_id is None:
            return result
        schedule = selectors.strategy_fee_schedules(strategy_ids=[strategy_id], at=now).get(
            strategy_id, selectors.ZERO_SCHEDULE
        )
        kind = schedule.performance_period
        last = (
            PerformancePeriod.objects.filter(strategy_id=strategy_id)
            .order_by("-period_start")
            .first()
        )
        marks = StrategyEquityMark.objects.filter(strategy_id=strategy_id)
        if last is not None:
            start, opening, flows_from = last.period_end, last.closing_hwm, last.period_end
            first_day = start.date()
        else:
            first = marks.order_by("day").first()
            if first is None:
                return result
            # The first period opens at the first mark: its equity is capital, not profit.
            flows_from = day_start(first.day) + DAY
            start = period_containing(flows_from, kind)[0]
            # A period closes on a mark taken inside it, never on the opening mark itself.
            opening, first_day = first.equity, first.day + DAY
        allocations = selectors.allocations_by_strategy(strategy_ids=[strategy_id]).get(
            strategy_id, []
        )
        currency = default_currency()
        drafts: list[FeeDraft] = []
        periods: list[PerformancePeriod] = []
        while True:
            end = period_containing(start, kind)[1]
            if end > now:
                break
            mark = marks.filter(day__lt=end.date(), day__gte=first_day).order_by("-day").first()
            if mark is None:
                break
            flows = (
                CapitalFlow.objects.filter(
                    strategy_id=strategy_id, occurred_at__gte=flows_from, occurred_at__lt=end
                ).aggregate(total=Sum("amount"))["total"]
                or ZERO
            )
            closed = hwm_period_close(
                opening_hwm=opening,
                net_flows=flows,
                closing_equity=mark.equity,
                fee_bps=schedule.performance_fee_bps,
                currency=currency,
            )
            result.considered += 1
            period = PerformancePeriod(
                strategy_id=strategy_id,
                period_kind=kind,
                period_start=start,
                period_end=end,
                opening_hwm=closed.opening_hwm,
                net_flows=closed.net_flows,
                adjusted_hwm=closed.adjusted_hwm,
                closing_equity=closed.closing_equity,
                profit=closed.profit,
                fee_bps=schedule.performance_fee_bps,
                fee_amount=closed.fee,
                currency=currency,
                closing_hwm=closed.closing_hwm,
            )
            if closed.fee > 0:
                draft = _performance_draft(
                    user_id,
                    strategy_id,
                    schedule,
                    allocations,
                    closed,
                    start,
                    end,
                    mark.day,
                    currency,
                )
                drafts.append(draft)
                period.fee_id = draft.id
            periods.append(period)
            start, opening, flows_from, first_day = end, closed.closing_hwm, end, end.date()
        if periods:
            result.fee_ids = fees_post(drafts, now=now)
            result.charged = len(drafts)
            PerformancePeriod.objects.bulk_create(periods)
    return result


def _performance_draft(
    user_id: uuid.UUID,
    strategy_id: uuid.UUID,
    schedule: selectors.FeeSchedule,
    allocations: list[selectors.AllocationWeight],
    closed: HwmPeriod,
    start: datetime,
    end: datetime,
    mark_day: date,
    currency: str,
) -> FeeDraft:
    weighted = [a for a in allocations if a.weight > 0]
    platform_part, trader_parts = share_split(
        closed.fee, schedule.trader_share_bps, [a.weight for a in weighted], currency
    )
    credits: dict[uuid.UUID, Decimal] = {}
    for allocation, part in zip(weighted, trader_parts, strict=True):
        if part:
            credits[allocation.trader_id] = credits.get(allocation.trader_id, ZERO) + part
    legs = [
        *customer_legs(
            receivable(user_id, currency), closed.fee, strategy_id=strategy_id, allocations=weighted
        ),
        *([Leg(revenue(FeeType.PERFORMANCE, currency), -platform_part)] if platform_part else []),
        *[Leg(trader_payable(trader_id, currency), -part) for trader_id, part in credits.items()],
    ]
    return FeeDraft(
        user_id=user_id,
        fee_category=FeeCategory.PERFORMANCE_FEE,
        fee_bps=schedule.performance_fee_bps,
        fee_amount=closed.fee,
        fee_currency=currency,
        legs=legs,
        strategy_id=strategy_id,
        plan_id=schedule.plan_id,
        notional_amount=closed.profit,
        calculation_base=CalculationBase.PNL,
        period_start=start,
        period_end=end,
        metadata={
            "period": schedule.performance_period,
            "opening_hwm": closed.opening_hwm,
            "net_flows": closed.net_flows,
            "adjusted_hwm": closed.adjusted_hwm,
            "closing_equity": closed.closing_equity,
            "equity_mark_day": mark_day,
            "closing_hwm": closed.closing_hwm,
            "trader_share_bps": schedule.trader_share_bps,
            "platform_share": platform_part,
            "trader_shares": {str(k): v for k, v in credits.items()},
        },
    )
