"""Bad input (issue 8): negative or over-cap bps, overlapping periods, a reversal of a reversal,
and their neighbours. Each is refused with a clear error naming the field, and *nothing* is
written: every billing table, the journal, the strategies' stored totals and the audit log are
compared before and after."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db.models import Sum

from accounts.models import AuditLog
from accounts.tests.factories import StaffFactory
from billing import services
from billing.models import (
    CapitalFlow,
    FeeLedgerEntry,
    JournalEntry,
    JournalTransaction,
    LedgerAccount,
    PerformancePeriod,
    Plan,
    Statement,
    StrategyEquityMark,
    StrategyFeeSchedule,
    Subscription,
)
from config.errors import DomainError

D = Decimal
pytestmark = pytest.mark.django_db
T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def _everything() -> dict[str, Any]:
    from copytrade.models import CopyAllocation, CopyStrategy

    return {
        model.__name__: model.objects.count()
        for model in (
            FeeLedgerEntry,
            JournalTransaction,
            JournalEntry,
            LedgerAccount,
            Subscription,
            StrategyFeeSchedule,
            CapitalFlow,
            StrategyEquityMark,
            PerformancePeriod,
            Statement,
            AuditLog,
        )
    } | {
        "plans": list(Plan.objects.order_by("code").values()),
        "schedules": list(StrategyFeeSchedule.objects.order_by("id").values()),
        "subscriptions": list(Subscription.objects.order_by("id").values()),
        "total_fees": CopyStrategy.objects.aggregate(t=Sum("total_fees"))["t"],
        "allocated_fees": CopyAllocation.objects.aggregate(t=Sum("allocated_fees"))["t"],
    }


@pytest.fixture
def world(strategy: Any, copied_fill: Any, plans: dict[str, Plan]) -> dict[str, Any]:
    """A customer with a charged fill, a reversed fee, a paid-for period and a closed
    performance period: every kind of row a bad input could disturb."""
    staff = StaffFactory.create()
    fill = copied_fill(strategy, size="2", price="1500.5")
    services.fill_fees_accrue(fill_ids=[fill.pk])
    copy = FeeLedgerEntry.objects.get(fill=fill, fee_category="copy_fee")
    reversal = services.fee_reverse(fee_id=copy.pk, actor=staff, reason="goodwill")
    subscription = services.subscription_subscribe(
        user=strategy.user, plan_code="pro", now=T0
    ).subscription
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2024, 12, 31), equity=D(100))
    services.equity_mark_record(strategy_id=strategy.pk, day=date(2025, 1, 31), equity=D(150))
    services.performance_fees_accrue(now=datetime(2025, 2, 1, 1, tzinfo=UTC))
    return {
        "staff": staff,
        "strategy": strategy,
        "plans": plans,
        "charge": FeeLedgerEntry.objects.get(fill=fill, fee_category="builder_fee"),
        "reversed": copy,
        "reversal": reversal,
        "subscription": subscription,
    }


def _plan_with(plan: Plan, **changes: Any) -> Plan:
    copy = Plan.objects.get(pk=plan.pk)
    for field, value in changes.items():
        setattr(copy, field, value)
    return copy


BAD_INPUTS: dict[str, tuple[Callable[[dict[str, Any]], Any], str, str]] = {
    # name: (call, field the error names, error code)
    "negative builder bps on a strategy": (
        lambda w: services.strategy_fee_schedule_set(
            strategy=w["strategy"], values={"builder_fee_bps": -1}, actor=w["staff"]
        ),
        "builder_fee_bps",
        "negative_bps",
    ),
    "builder bps over the Hyperliquid cap": (
        lambda w: services.strategy_fee_schedule_set(
            strategy=w["strategy"], values={"builder_fee_bps": 11}, actor=w["staff"]
        ),
        "builder_fee_bps",
        "above_venue_cap",
    ),
    "over-cap performance bps, valid fields before it": (
        lambda w: services.strategy_fee_schedule_set(
            strategy=w["strategy"],
            values={"copy_fee_bps": 3, "performance_fee_bps": 5001},
            actor=w["staff"],
        ),
        "performance_fee_bps",
        "above_cap",
    ),
    "negative copy bps on a plan": (
        lambda w: services.plan_save(
            plan=_plan_with(w["plans"]["pro"], copy_fee_bps=-5), actor=w["staff"]
        ),
        "copy_fee_bps",
        "negative_bps",
    ),
    "over-cap management bps on a plan": (
        lambda w: services.plan_save(
            plan=_plan_with(w["plans"]["desk"], management_fee_bps=1001), actor=w["staff"]
        ),
        "management_fee_bps",
        "above_cap",
    ),
    "over-cap trader share on a plan": (
        lambda w: services.plan_save(
            plan=_plan_with(w["plans"]["free"], trader_share_bps=10_001), actor=w["staff"]
        ),
        "trader_share_bps",
        "above_cap",
    ),
    "a granted period overlapping a paid one": (
        lambda w: services.subscription_grant(
            user=w["strategy"].user,
            plan=w["plans"]["desk"],
            period_start=T0 + timedelta(days=10),
            period_end=T0 + timedelta(days=50),
            actor=w["staff"],
        ),
        "period_start",
        "overlapping_period",
    ),
    "a granted period inside a paid one": (
        lambda w: services.subscription_grant(
            user=w["strategy"].user,
            plan=w["plans"]["desk"],
            period_start=T0 + timedelta(days=1),
            period_end=T0 + timedelta(days=2),
            actor=w["staff"],
        ),
        "period_start",
        "overlapping_period",
    ),
    "an empty period": (
        lambda w: services.subscription_grant(
            user=w["strategy"].user,
            plan=w["plans"]["desk"],
            period_start=T0 + timedelta(days=90),
            period_end=T0 + timedelta(days=90),
            actor=w["staff"],
        ),
        "period_end",
        "invalid",
    ),
    "a capital flow inside a closed performance period": (
        lambda w: services.capital_flow_record(
            strategy=w["strategy"],
            amount="50",
            occurred_at=datetime(2025, 1, 20, tzinfo=UTC),
            reference="late",
        ),
        "occurred_at",
        "period_closed",
    ),
    "a reversal of a reversal": (
        lambda w: services.fee_reverse(fee_id=w["reversal"].pk, actor=w["staff"], reason="undo"),
        "fee",
        "reversal_of_reversal",
    ),
    "a second reversal": (
        lambda w: services.fee_reverse(fee_id=w["reversed"].pk, actor=w["staff"], reason="again"),
        "fee",
        "already_reversed",
    ),
    "a negative corrected amount": (
        lambda w: services.fee_reverse(
            fee_id=w["charge"].pk, actor=w["staff"], reason="fix", replacement_amount="-1"
        ),
        "replacement_amount",
        "invalid",
    ),
    "a corrected amount finer than the currency": (
        lambda w: services.fee_reverse(
            fee_id=w["charge"].pk, actor=w["staff"], reason="fix", replacement_amount="0.0000001"
        ),
        "replacement_amount",
        "invalid",
    ),
    "a reversal without a reason": (
        lambda w: services.fee_reverse(fee_id=w["charge"].pk, actor=w["staff"], reason="  "),
        "reason",
        "invalid",
    ),
    "an unknown fee": (
        lambda w: services.fee_reverse(fee_id="not-a-uuid", actor=w["staff"], reason="x"),
        "fee",
        "not_found",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_clearly_and_writes_nothing(world: dict[str, Any], case: str) -> None:
    call, field, code = BAD_INPUTS[case]
    before = _everything()
    with pytest.raises(DomainError) as caught:
        call(world)
    assert field in caught.value.fields, caught.value.fields
    assert caught.value.code == code
    assert caught.value.message  # a sentence for a person, not an exception dump
    assert _everything() == before
