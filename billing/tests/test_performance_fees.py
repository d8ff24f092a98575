"""Performance fees through the service and the database: the hand-computed table of
test_hwm.py replayed with real equity marks and capital flows, monthly and weekly, with the
trader share split by allocation weight, flows on period boundaries, and idempotency."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from billing import selectors, services
from billing.models import (
    AccountKind,
    FeeLedgerEntry,
    JournalEntry,
    PerformancePeriod,
    StrategyFeeSchedule,
)
from billing.tests.test_hwm import HAND_TABLE

D = Decimal
pytestmark = pytest.mark.django_db


def _schedule(strategy: Any, **fees: Any) -> None:
    StrategyFeeSchedule.objects.update_or_create(strategy=strategy, defaults=fees)


def _flow(strategy: Any, amount: str, at: datetime, ref: str) -> None:
    services.capital_flow_record(strategy=strategy, amount=D(amount), occurred_at=at, reference=ref)


MONTH_ENDS = [
    date(2025, 1, 31),
    date(2025, 2, 28),
    date(2025, 3, 31),
    date(2025, 4, 30),
    date(2025, 5, 31),
    date(2025, 6, 30),
    date(2025, 7, 31),
]


def _monthly_scenario(strategy: Any) -> None:
    """The table of test_hwm.py: opening equity 10,000 marked on 2024-12-31, then one mark at
    each month end; the flows inside May, June and July."""
    _schedule(
        strategy,
        performance_fee_bps=2000,
        performance_period="monthly",
        trader_share_bps=5000,
        management_fee_bps=0,
    )
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2024, 12, 31), equity=D(10000))
    for day, (_, equity, *_rest) in zip(MONTH_ENDS, HAND_TABLE, strict=True):
        services.equity_mark_record(strategy_id=strategy.pk, day=day, equity=equity)
        # A mark in the middle of the month is not the closing one.
        services.equity_mark_record(
            strategy_id=strategy.pk, day=day.replace(day=15), equity=D("123456")
        )
    _flow(strategy, "5000", datetime(2025, 5, 10, tzinfo=UTC), "dep-may")
    _flow(strategy, "-7500", datetime(2025, 6, 15, tzinfo=UTC), "wd-june")
    _flow(strategy, "1000", datetime(2025, 7, 3, tzinfo=UTC), "dep-july")
    _flow(strategy, "-2000", datetime(2025, 7, 20, tzinfo=UTC), "wd-july")


def test_monthly_table_through_the_service(portfolio: Any, check_journal: Any) -> None:
    _monthly_scenario(portfolio)
    now = datetime(2025, 8, 1, 1, 0, tzinfo=UTC)
    result = services.performance_fees_accrue(now=now)
    check_journal()
    assert result.considered == 7
    assert result.charged == 4
    periods = list(PerformancePeriod.objects.filter(strategy=portfolio).order_by("period_start"))
    assert [p.period_start.date() for p in periods] == [d.replace(day=1) for d in MONTH_ENDS]
    assert [
        (p.net_flows, p.closing_equity, p.adjusted_hwm, p.profit, p.fee_amount, p.closing_hwm)
        for p in periods
    ] == HAND_TABLE
    fees = FeeLedgerEntry.objects.filter(strategy=portfolio).order_by("period_start")
    assert [f.fee_amount for f in fees] == [D(200), D(200), D(100), D(120)]
    first = fees[0]
    assert first.fee_type == "performance"
    assert first.fee_category == "performance_fee"
    assert first.calculation_base == "pnl"
    assert first.fee_bps == 2000
    assert first.notional_amount == D(1000)
    assert first.period_start == datetime(2025, 1, 1, tzinfo=UTC)
    assert first.period_end == datetime(2025, 2, 1, tzinfo=UTC)

    # Half of each fee to the traders by weight 0.5 / 0.3 / 0.2; the customer side is split
    # across the allocations the same way; nothing lost or created.
    allocations = list(portfolio.allocations.order_by("-weight"))
    traders = [a.trader_id for a in allocations]
    payable = {
        account.trader_id: account.balance  # type: ignore[attr-defined]  # annotated
        for account in selectors.trader_share_balances()
    }
    total = D(620)
    assert [-payable[t] for t in traders] == [
        total * D("0.25"),
        total * D("0.15"),
        total * D("0.10"),
    ]
    revenue = JournalEntry.objects.filter(
        account__kind=AccountKind.PLATFORM_REVENUE, account__fee_type="performance"
    )
    assert -sum(e.amount for e in revenue) == total / 2
    portfolio.refresh_from_db()
    assert portfolio.total_fees == total
    assert [a.allocated_fees for a in portfolio.allocations.order_by("-weight")] == [
        D(310),
        D(186),
        D(124),
    ]

    # Idempotent: a second run (or a later one with nothing new) closes and charges nothing.
    again = services.performance_fees_accrue(now=now)
    assert (again.considered, again.charged) == (0, 0)
    assert PerformancePeriod.objects.filter(strategy=portfolio).count() == 7
    assert FeeLedgerEntry.objects.filter(strategy=portfolio).count() == 4


def test_a_period_waits_for_its_mark_and_for_its_end(strategy: Any) -> None:
    _schedule(strategy, performance_fee_bps=2000, performance_period="monthly")
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2024, 12, 31), equity=D(100))
    # January has ended but has no mark yet: nothing closes.
    result = services.performance_fees_accrue(now=datetime(2025, 2, 2, tzinfo=UTC))
    assert result.considered == 0
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2025, 1, 31), equity=D(150))
    # February is marked mid-month but has not ended: only January closes.
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2025, 2, 10), equity=D(180))
    result = services.performance_fees_accrue(now=datetime(2025, 2, 20, tzinfo=UTC))
    assert result.considered == 1
    assert FeeLedgerEntry.objects.get(strategy=strategy).fee_amount == D(10)


def test_weekly_periods_and_flows_on_the_boundary(strategy: Any) -> None:
    """Weeks run Monday to Monday (UTC). A deposit at the exact end of a week belongs to the
    next week; it is not profit of either."""
    _schedule(strategy, performance_fee_bps=1000, performance_period="weekly", trader_share_bps=0)
    # Sunday 2025-01-05 is the day before the week of Monday 2025-01-06.
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2025, 1, 5), equity=D(1000))
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2025, 1, 12), equity=D(1100))
    # Deposit 500 exactly at Monday 2025-01-13 00:00: the second week's flow.
    _flow(strategy, "500", datetime(2025, 1, 13, tzinfo=UTC), "boundary")
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2025, 1, 19), equity=D(1650))
    services.performance_fees_accrue(now=datetime(2025, 1, 20, 0, 30, tzinfo=UTC))
    periods = list(PerformancePeriod.objects.filter(strategy=strategy).order_by("period_start"))
    assert [(p.period_start.date(), p.period_end.date()) for p in periods] == [
        (date(2025, 1, 6), date(2025, 1, 13)),
        (date(2025, 1, 13), date(2025, 1, 20)),
    ]
    # Week 1: 1,000 -> 1,100, fee 10. Week 2: mark 1,100 + 500 = 1,600, equity 1,650: fee 5.
    assert [(p.net_flows, p.profit, p.fee_amount) for p in periods] == [
        (D(0), D(100), D(10)),
        (D(500), D(50), D(5)),
    ]


def test_a_flow_inside_a_closed_period_is_refused(strategy: Any) -> None:
    from config.errors import ValidationFailed

    _schedule(strategy, performance_fee_bps=1000, performance_period="monthly")
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2024, 12, 31), equity=D(100))
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2025, 1, 31), equity=D(100))
    services.performance_fees_accrue(now=datetime(2025, 2, 1, 1, tzinfo=UTC))
    with pytest.raises(ValidationFailed) as caught:
        _flow(strategy, "50", datetime(2025, 1, 20, tzinfo=UTC), "late")
    assert caught.value.code == "period_closed"


def test_an_allocation_with_fees_cannot_be_removed_only_lowered(portfolio: Any) -> None:
    """The ledger keeps its references to the trader share it charged: removing that allocation
    is refused with a reason (not a server error) and nothing changes."""
    from config.errors import ValidationFailed
    from copytrade.services import allocation_remove

    _monthly_scenario(portfolio)
    services.performance_fees_accrue(now=datetime(2025, 8, 1, 1, 0, tzinfo=UTC))
    charged = portfolio.allocations.order_by("-weight").first()
    assert charged.allocated_fees > 0
    with pytest.raises(ValidationFailed) as refused:
        allocation_remove(strategy=portfolio, trader_id=charged.trader_id)
    assert refused.value.code == "allocation_has_fees"
    assert portfolio.allocations.filter(pk=charged.pk).exists()
