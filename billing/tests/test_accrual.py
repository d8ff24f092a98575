"""Fill and management fee accrual: hand-computed amounts, venue caps, the journal behind each
fee, and idempotency -- every accrual task run twice changes no balance."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Count, Sum

from billing import selectors, services, tasks
from billing.models import (
    AccountKind,
    CapitalFlow,
    FeeLedgerEntry,
    JournalEntry,
    LedgerAccount,
    PerformancePeriod,
    Statement,
    StrategyFeeSchedule,
    Subscription,
)

D = Decimal
pytestmark = pytest.mark.django_db


def _entries(fee: FeeLedgerEntry) -> list[tuple[str, Decimal]]:
    return sorted(
        (e.account.kind, e.amount)
        for e in JournalEntry.objects.filter(
            transaction_id=fee.journal_transaction_id
        ).select_related("account")
    )


def test_fill_fees_hand_computed(strategy: Any, copied_fill: Any, check_journal: Any) -> None:
    """Free plan: builder 10 bps, copy 5 bps. 2 x 1,500.5 = 3,001 notional."""
    fill = copied_fill(strategy, size="2", price="1500.5")
    result = services.fill_fees_accrue(fill_ids=[fill.pk])
    check_journal()
    assert result.charged == 2
    builder = FeeLedgerEntry.objects.get(fill=fill, fee_category="builder_fee")
    copy = FeeLedgerEntry.objects.get(fill=fill, fee_category="copy_fee")
    assert (builder.fee_type, builder.fee_bps, builder.fee_amount) == ("trading", 10, D("3.001"))
    assert (copy.fee_type, copy.fee_bps, copy.fee_amount) == ("copy", 5, D("1.5005"))
    for fee in (builder, copy):
        assert fee.notional_amount == D(3001)
        assert fee.calculation_base == "trade_volume"
        assert fee.fee_currency == "USDC"
        assert fee.order_id == fill.order_id
        assert fee.strategy_id == strategy.pk
        assert fee.user_id == strategy.user_id
        assert fee.exchange_tx_id == fill.venue_fill_id
        assert fee.transaction_hash == fill.tx_hash
        assert (fee.plan and fee.plan.code) == "free"
        assert fee.metadata["venue"] == "hyperliquid"
    # The venue collects the builder fee; the customer owes the copy fee.
    assert _entries(builder) == [
        (AccountKind.PLATFORM_REVENUE, D("-3.001")),
        (AccountKind.VENUE_CLEARING, D("3.001")),
    ]
    assert _entries(copy) == [
        (AccountKind.CUSTOMER_RECEIVABLE, D("1.5005")),
        (AccountKind.PLATFORM_REVENUE, D("-1.5005")),
    ]
    assert selectors.receivable_balance(user=strategy.user) == {"USDC": D("1.5005")}
    strategy.refresh_from_db()
    assert strategy.total_fees == D("4.5015")
    allocation = strategy.allocations.get()
    assert allocation.allocated_fees == D("4.5015")


def test_plan_and_strategy_overrides_and_venue_caps(
    strategy: Any, copied_fill: Any, plans: Any
) -> None:
    services.subscription_subscribe(user=strategy.user, plan_code="pro")  # builder 5, copy 2
    StrategyFeeSchedule.objects.create(strategy=strategy, copy_fee_bps=7)  # override copy only
    hl = copied_fill(strategy, size="1", price="10000")
    okx = copied_fill(strategy, size="1", price="10000", venue="okx")  # no builder fee on OKX
    services.fill_fees_accrue(fill_ids=[hl.pk, okx.pk])
    rows = {
        (f.fill_id, f.fee_category): (f.fee_bps, f.fee_amount, f.plan and f.plan.code)
        for f in FeeLedgerEntry.objects.filter(fill__isnull=False)
    }
    assert rows == {
        (hl.pk, "builder_fee"): (5, D(5), "pro"),
        (hl.pk, "copy_fee"): (7, D(7), "pro"),
        (okx.pk, "copy_fee"): (7, D(7), "pro"),
    }


def test_fees_that_round_to_zero_are_not_charged(strategy: Any, copied_fill: Any) -> None:
    # 0.001 x 0.004 = 0.000004 notional: 10 bps of it is 4e-9 USDC, below the unit.
    fill = copied_fill(strategy, size="0.001", price="0.004")
    assert services.fill_fees_accrue(fill_ids=[fill.pk]).charged == 0
    assert not FeeLedgerEntry.objects.exists()


def test_only_copy_trade_fills_of_a_strategy_are_charged(strategy: Any, copied_fill: Any) -> None:
    from trading.models import Order

    fill = copied_fill(strategy)
    Order.objects.filter(pk=fill.order_id).update(is_copy_trade=False)
    assert services.fill_fees_accrue(fill_ids=[fill.pk]).considered == 0


def test_management_fee_hand_computed(portfolio: Any, check_journal: Any) -> None:
    """Desk plan: 100 bps a year. 36,500 of equity for one day of 365: 1.00 exactly, split
    across the allocations 0.50 / 0.30 / 0.20."""
    services.subscription_subscribe(
        user=portfolio.user, plan_code="desk", now=datetime(2025, 1, 10, tzinfo=UTC)
    )
    services.equity_mark_record(strategy_id=portfolio.pk, day=date(2025, 1, 15), equity=D(36500))
    result = services.management_fees_accrue(day=date(2025, 1, 15))
    check_journal()
    assert result.charged == 1
    fee = FeeLedgerEntry.objects.get(fee_category="vault_management")
    assert (fee.fee_type, fee.fee_bps, fee.fee_amount) == ("management", 100, D(1))
    assert (fee.notional_amount, fee.calculation_base) == (D(36500), "aum")
    assert fee.period_start == datetime(2025, 1, 15, tzinfo=UTC)
    assert fee.period_end == datetime(2025, 1, 16, tzinfo=UTC)
    assert sorted(a.allocated_fees for a in portfolio.allocations.all()) == [
        D("0.2"),
        D("0.3"),
        D("0.5"),
    ]
    # Again for the same day: nothing.
    again = services.management_fees_accrue(day=date(2025, 1, 15))
    assert (again.charged, again.already_charged) == (0, 1)


def _balances() -> dict[str, Any]:
    """Everything an accrual could change: account balances, row counts, stored totals."""
    from copytrade.models import CopyAllocation, CopyStrategy

    return {
        "accounts": dict(
            LedgerAccount.objects.annotate(total=Sum("entries__amount")).values_list("id", "total")
        ),
        "fees": FeeLedgerEntry.objects.count(),
        "entries": JournalEntry.objects.count(),
        "periods": PerformancePeriod.objects.count(),
        "statements": Statement.objects.count(),
        "subscriptions": dict(Subscription.objects.values_list("id", "status")),
        "strategies": dict(CopyStrategy.objects.values_list("id", "total_fees")),
        "allocations": dict(CopyAllocation.objects.values_list("id", "allocated_fees")),
        "by_category": dict(
            FeeLedgerEntry.objects.values("fee_category")
            .annotate(n=Count("id"))
            .values_list("fee_category", "n")
        ),
    }


def test_running_every_accrual_task_twice_changes_no_balance(
    portfolio: Any, strategy: Any, copied_fill: Any, check_journal: Any
) -> None:
    """Fills, the sweep, equity marks, management fees, performance fees, renewals and
    statements: the first run charges, the second run changes nothing at all."""
    services.subscription_subscribe(
        user=portfolio.user, plan_code="desk", now=datetime(2025, 1, 1, tzinfo=UTC)
    )
    fills = [copied_fill(portfolio, size="1.5", price="2000") for _ in range(3)]
    fills.append(copied_fill(strategy, size="3", price="101.37"))
    CapitalFlow.objects.create(
        strategy=portfolio,
        amount=D(50000),
        occurred_at=datetime(2024, 12, 20, tzinfo=UTC),
        reference="seed",
    )
    services.equity_mark_record(strategy_id=portfolio.pk, day=date(2024, 12, 31), equity=D(50000))
    services.equity_mark_record(strategy_id=portfolio.pk, day=date(2025, 1, 31), equity=D(56000))
    fill_ids = [str(f.pk) for f in fills]
    runs = [
        lambda: tasks.fill_fees_accrue_task.delay(fill_ids),
        lambda: tasks.fill_fees_sweep_task.delay(),
        lambda: tasks.equity_marks_take_task.delay("2025-01-15"),
        lambda: tasks.management_fees_accrue_task.delay("2025-01-15"),
        lambda: tasks.management_fees_accrue_task.delay("2025-01-31"),
        lambda: tasks.performance_fees_accrue_task.delay(),
        lambda: tasks.subscriptions_renew_task.delay(),
        lambda: tasks.statements_close_task.delay("2025-01-01"),
    ]
    for run in runs:
        run()
    check_journal()
    first = _balances()
    # Every kind of fee was charged by the first run.
    assert set(first["by_category"]) == {
        "builder_fee",
        "copy_fee",
        "vault_management",
        "performance_fee",
        "plan_fee",
    }
    assert first["periods"] == 1
    assert first["statements"] >= 1
    for run in runs:
        run()
    check_journal()
    assert _balances() == first


def test_the_sweep_charges_fills_the_listener_missed(strategy: Any, copied_fill: Any) -> None:
    from django.utils import timezone

    fill = copied_fill(strategy, filled_at=timezone.now())
    result = services.fill_fees_sweep()
    assert result.charged == 2
    assert services.fill_fees_sweep().charged == 0
    assert FeeLedgerEntry.objects.filter(fill=fill).count() == 2


def test_equity_marks_from_the_default_provider(strategy: Any) -> None:
    CapitalFlow.objects.create(
        strategy=strategy,
        amount=D(1000),
        occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
        reference="x",
    )
    assert services.equity_marks_take(day=date(2025, 1, 2)) == 1
    assert services.equity_marks_take(day=date(2025, 1, 2)) == 0
    mark = strategy.equity_marks.get()
    assert (mark.day, mark.equity) == (date(2025, 1, 2), D(1000))
