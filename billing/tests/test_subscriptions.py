"""Plans and subscriptions: subscribe (charged in advance), change at period end, cancel,
renew once, past due -> grace -> expired, payment, staff grants, overlapping periods refused
(service and database), and plan limits enforced where strategies and API keys are created."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from accounts.services import api_key_create
from accounts.tests.factories import StaffFactory, UserFactory
from billing import selectors, services
from billing.models import FeeLedgerEntry, Plan, Subscription
from billing.tests.factories import AllocationFactory, StrategyFactory
from config.errors import ValidationFailed

D = Decimal
pytestmark = pytest.mark.django_db
T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)


def _counts() -> tuple[int, int]:
    return Subscription.objects.count(), FeeLedgerEntry.objects.count()


def test_subscribe_starts_a_period_and_charges_it(user: Any, plans: dict[str, Plan]) -> None:
    result = services.subscription_subscribe(user=user, plan_code="pro", now=T0)
    assert result.started
    sub = result.subscription
    assert (sub.plan.code, sub.status, sub.period_start, sub.period_end) == (
        "pro",
        "active",
        T0,
        datetime(2025, 4, 10, 12, 0, tzinfo=UTC),
    )
    fee = FeeLedgerEntry.objects.get(subscription=sub)
    assert (fee.fee_type, fee.fee_category, fee.fee_amount, fee.calculation_base) == (
        "subscription",
        "plan_fee",
        D(49),
        "flat",
    )
    assert (fee.period_start, fee.period_end, (fee.plan and fee.plan.code)) == (
        sub.period_start,
        sub.period_end,
        "pro",
    )
    assert selectors.receivable_balance(user=user) == {"USDC": D(49)}
    assert selectors.plan_limits(user, at=T0).plan_code == "pro"


def test_change_takes_effect_at_period_end_and_renewal_happens_once(
    user: Any, plans: dict[str, Plan]
) -> None:
    first = services.subscription_subscribe(user=user, plan_code="pro", now=T0).subscription
    # Paid: an unpaid period is not renewed (test_an_unpaid_period_is_not_renewed_...).
    services.subscription_payment_record(subscription_id=first.pk, reference="pro-1")
    changed = services.subscription_subscribe(
        user=user, plan_code="desk", now=T0 + timedelta(days=1)
    )
    assert not changed.started
    assert changed.subscription.next_plan is not None
    assert changed.subscription.next_plan.code == "desk"
    assert selectors.plan_limits(user, at=T0 + timedelta(days=2)).plan_code == "pro"

    end = changed.subscription.period_end
    assert services.subscriptions_renew(now=end + timedelta(minutes=1)).renewed == 1
    assert services.subscriptions_renew(now=end + timedelta(minutes=2)).renewed == 0
    current = selectors.subscription_current(user=user, at=end + timedelta(minutes=3))
    assert current is not None
    assert (current.plan.code, current.period_start, current.renewed_from_id) == (
        "desk",
        end,
        changed.subscription.pk,
    )
    assert list(
        FeeLedgerEntry.objects.filter(user=user)
        .order_by("created_at")
        .values_list("fee_amount", flat=True)
    ) == [D(49), D(299)]


def test_cancel_keeps_the_plan_to_period_end_then_expires(user: Any, plans: Any) -> None:
    sub = services.subscription_subscribe(user=user, plan_code="pro", now=T0).subscription
    cancelled = services.subscription_cancel(user=user, now=T0 + timedelta(days=3))
    assert cancelled.status == "cancelled"
    assert services.subscription_cancel(user=user, now=T0 + timedelta(days=4)).cancelled_at == (
        cancelled.cancelled_at
    )  # idempotent
    assert selectors.plan_limits(user, at=sub.period_end - timedelta(seconds=1)).plan_code == "pro"
    report = services.subscriptions_renew(now=sub.period_end)
    assert (report.renewed, report.expired) == (0, 1)
    sub.refresh_from_db()
    assert (sub.status, sub.ended_reason) == ("expired", "cancelled")
    assert selectors.plan_limits(user, at=sub.period_end).plan_code == "free"
    # Subscribing again to the same plan before the end undoes a cancellation instead.
    other = UserFactory.create()
    services.subscription_subscribe(user=other, plan_code="pro", now=T0)
    services.subscription_cancel(user=other, now=T0)
    undone = services.subscription_subscribe(user=other, plan_code="pro", now=T0)
    assert (undone.started, undone.subscription.status) == (False, "active")


def test_unpaid_turns_past_due_then_lapses_after_grace(user: Any, plans: Any) -> None:
    sub = services.subscription_subscribe(user=user, plan_code="pro", now=T0).subscription
    due = sub.due_at
    assert due == T0 + timedelta(hours=72)
    assert services.subscriptions_renew(now=due - timedelta(seconds=1)).past_due == 0
    assert services.subscriptions_renew(now=due).past_due == 1
    sub.refresh_from_db()
    assert sub.status == "past_due"
    assert sub.grace_until == due + timedelta(days=7)
    # Within grace the plan holds; after it, the period ends early and limits fall back.
    assert selectors.plan_limits(user, at=due + timedelta(days=6)).plan_code == "pro"
    lapse = due + timedelta(days=7, minutes=1)
    assert services.subscriptions_renew(now=lapse).lapsed == 1
    sub.refresh_from_db()
    assert (sub.status, sub.ended_reason, sub.period_end) == ("expired", "unpaid", lapse)
    assert selectors.plan_limits(user, at=lapse).plan_code == "free"
    # The lapsed period no longer blocks a new subscription.
    assert services.subscription_subscribe(user=user, plan_code="pro", now=lapse).started


def test_payment_makes_a_past_due_period_active(user: Any, plans: Any) -> None:
    sub = services.subscription_subscribe(user=user, plan_code="pro", now=T0).subscription
    services.subscriptions_renew(now=sub.due_at)
    paid = services.subscription_payment_record(subscription_id=sub.pk, reference="pay_1")
    assert (paid.status, paid.grace_until) == ("active", None)
    assert selectors.receivable_balance(user=user) == {"USDC": D(0)}
    # The same reference again is the same payment; another one is refused.
    assert services.subscription_payment_record(subscription_id=sub.pk, reference="pay_1")
    from config.errors import Conflict

    with pytest.raises(Conflict):
        services.subscription_payment_record(subscription_id=sub.pk, reference="pay_2")


def test_overlapping_periods_are_refused_and_nothing_is_written(user: Any, plans: Any) -> None:
    staff = StaffFactory.create()
    granted = services.subscription_grant(
        user=user,
        plan=plans["desk"],
        period_start=T0,
        period_end=T0 + timedelta(days=30),
        actor=staff,
    )
    assert (granted.price, granted.paid_at, granted.auto_renew) == (D(0), T0, False)
    before = _counts()
    with pytest.raises(ValidationFailed) as caught:
        services.subscription_grant(
            user=user,
            plan=plans["pro"],
            period_start=T0 + timedelta(days=29),
            period_end=T0 + timedelta(days=60),
            actor=staff,
        )
    assert caught.value.code == "overlapping_period"
    assert caught.value.fields == {"period_start": [caught.value.message]}
    with pytest.raises(ValidationFailed):
        services.subscription_grant(
            user=user, plan=plans["pro"], period_start=T0, period_end=T0, actor=staff
        )
    assert _counts() == before
    # Adjacent periods are fine ([start, end) ranges).
    services.subscription_grant(
        user=user,
        plan=plans["pro"],
        period_start=T0 + timedelta(days=30),
        period_end=T0 + timedelta(days=60),
        actor=staff,
    )
    # A grant ends without turning into a paid renewal.
    report = services.subscriptions_renew(now=T0 + timedelta(days=30))
    granted.refresh_from_db()
    assert (report.renewed, granted.ended_reason) == (0, "grant_ended")


def test_the_database_refuses_overlaps_that_skip_the_service(user: Any, plans: Any) -> None:
    services.subscription_subscribe(user=user, plan_code="pro", now=T0)
    with pytest.raises(IntegrityError, match="overlap"), transaction.atomic():
        Subscription.objects.create(
            user=user,
            plan=plans["desk"],
            period_start=T0 + timedelta(days=5),
            period_end=T0 + timedelta(days=40),
            due_at=T0,
        )
    # Moving an existing period onto the next one is refused too.
    first = Subscription.objects.get(user=user)
    services.subscription_grant(
        user=user,
        plan=plans["desk"],
        period_start=first.period_end,
        period_end=first.period_end + timedelta(days=30),
        actor=StaffFactory.create(),
    )
    with (
        pytest.raises(IntegrityError, match="overlap"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "UPDATE billing_subscriptions SET period_end = period_end + interval '1 day' "
            "WHERE id = %s",
            [first.pk],
        )


@pytest.mark.parametrize("code", ["", "nope", "free"])
def test_bad_plan_choices_are_refused(user: Any, plans: Any, code: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        services.subscription_subscribe(user=user, plan_code=code, now=T0)
    assert "plan" in caught.value.fields
    assert _counts() == (0, 0)
    with pytest.raises(ValidationFailed):
        services.subscription_cancel(user=user, now=T0)


# --------------------------------------------------------------------------- limits


def test_plan_limit_check_for_strategies_and_portfolios(user: Any, plans: Any) -> None:
    # Free: 1 strategy, 3 traders a portfolio.
    services.plan_limit_check(user=user, resource="strategies")
    strategy = StrategyFactory.create(user=user)
    with pytest.raises(ValidationFailed) as caught:
        services.plan_limit_check(user=user, resource="strategies")
    assert (caught.value.code, caught.value.fields.keys()) == (
        "plan_limit_reached",
        {"strategies"},
    )
    for _ in range(3):
        AllocationFactory.create(strategy=strategy, weight=D("0.3"))
    with pytest.raises(ValidationFailed):
        services.plan_limit_check(user=user, resource="traders_per_portfolio", strategy=strategy)
    services.plan_limit_check(user=user, resource="traders_per_portfolio", current=2)
    # Pro: 5 strategies, 10 traders; desk: unlimited strategies.
    services.subscription_subscribe(user=user, plan_code="pro")
    services.plan_limit_check(user=user, resource="strategies", adding=4)
    with pytest.raises(ValidationFailed):
        services.plan_limit_check(user=user, resource="strategies", adding=5)
    services.plan_limit_check(user=user, resource="traders_per_portfolio", strategy=strategy)
    limits = selectors.plan_limits(user)
    assert (limits.strategies, limits.traders_per_portfolio, limits.api_keys) == (5, 10, 10)
    with pytest.raises(ValueError, match="unknown plan resource"):
        services.plan_limit_check(user=user, resource="nonsense")


def test_api_key_creation_is_limited_by_the_plan(user: Any, plans: Any) -> None:
    """The accounts service calls billing's check: the free plan allows 5 active keys."""
    for n in range(5):
        api_key_create(user=user, name=f"key {n}", scopes=["read"])
    with pytest.raises(ValidationFailed) as caught:
        api_key_create(user=user, name="one too many", scopes=["read"])
    assert caught.value.code == "plan_limit_reached"
    assert user.api_keys.count() == 5
    services.subscription_subscribe(user=user, plan_code="pro")
    api_key_create(user=user, name="now allowed", scopes=["read"])


def test_limits_fall_back_when_no_plan_exists(user: Any) -> None:
    Plan.objects.filter(is_default=True).update(is_default=False)
    limits = selectors.plan_limits(user)
    assert (limits.plan_code, limits.strategies, limits.api_keys) == ("free", 1, 5)


# --------------------------------------------------------------------------- fee schedules


@pytest.mark.parametrize(
    ("values", "field", "code"),
    [
        ({"builder_fee_bps": 11}, "builder_fee_bps", "above_venue_cap"),
        ({"builder_fee_bps": -1}, "builder_fee_bps", "negative_bps"),
        ({"copy_fee_bps": 101}, "copy_fee_bps", "above_cap"),
        ({"performance_fee_bps": "12.5"}, "performance_fee_bps", "invalid"),
        ({"performance_period": "daily"}, "performance_period", "invalid_choice"),
        ({"trader_share_bps": 10_001}, "trader_share_bps", "above_cap"),
    ],
)
def test_bad_fee_schedules_are_refused_and_nothing_is_written(
    strategy: Any, values: dict[str, Any], field: str, code: str
) -> None:
    staff = StaffFactory.create()
    with pytest.raises(ValidationFailed) as caught:
        services.strategy_fee_schedule_set(strategy=strategy, values=values, actor=staff)
    assert (caught.value.code, list(caught.value.fields)) == (code, [field])
    assert selectors.strategy_fee_override(strategy=strategy) is None


def test_the_database_refuses_over_cap_fees_that_skip_the_service(plans: Any) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        Plan.objects.filter(code="pro").update(builder_fee_bps=11)
    with pytest.raises(IntegrityError), transaction.atomic():
        Plan.objects.filter(code="pro").update(copy_fee_bps=-1)


def test_strategy_overrides_inherit_the_rest(strategy: Any, plans: Any) -> None:
    staff = StaffFactory.create()
    services.strategy_fee_schedule_set(
        strategy=strategy, values={"copy_fee_bps": 1, "performance_fee_bps": None}, actor=staff
    )
    schedule = selectors.strategy_fee_schedule(strategy=strategy)
    assert (schedule.copy_fee_bps, schedule.builder_fee_bps, schedule.performance_fee_bps) == (
        1,
        10,
        2000,
    )
    assert schedule.overridden == ("copy_fee_bps",)


def test_an_unpaid_period_is_not_renewed_when_renewals_catch_up(user: Any, plans: Any) -> None:
    """The beat was down for months: the first run after it must not chain-renew (and charge)
    periods that were never paid just because the dunning step had not marked them yet."""
    sub = services.subscription_subscribe(user=user, plan_code="pro", now=T0).subscription
    later = T0 + timedelta(days=200)
    report = services.subscriptions_renew(now=later)
    assert (report.renewed, report.expired) == (0, 1)
    sub.refresh_from_db()
    assert (sub.status, sub.ended_reason) == ("expired", "unpaid")
    assert FeeLedgerEntry.objects.filter(user=user).count() == 1  # the first period only
    assert selectors.plan_limits(user, at=later).plan_code == "free"
    # A paid period does renew, once, and the renewal is charged once.
    other = UserFactory.create()
    paid = services.subscription_subscribe(user=other, plan_code="pro", now=T0).subscription
    services.subscription_payment_record(subscription_id=paid.pk, reference="paid-1")
    first = services.subscriptions_renew(now=paid.period_end)
    assert first.renewed == 1
    assert services.subscriptions_renew(now=paid.period_end).renewed == 0
    assert FeeLedgerEntry.objects.filter(user=other).count() == 2


def test_copytrade_strategy_creation_is_limited_by_the_plan(user: Any, plans: Any) -> None:
    """The copytrade service that creates strategies calls billing's check (no mock): the free
    plan allows one strategy and three traders in a portfolio; Pro allows more."""
    from billing.tests.factories import TraderFactory
    from copytrade.models import CopyStrategy
    from copytrade.services import strategy_create

    traders = [TraderFactory.create() for _ in range(4)]

    def portfolio(n: int) -> list[dict[str, str]]:
        return [{"trader": str(t.pk), "weight": "0.25"} for t in traders[:n]]

    with pytest.raises(ValidationFailed) as too_wide:
        strategy_create(user=user, name="four traders", allocations=portfolio(4))
    assert (too_wide.value.code, list(too_wide.value.fields)) == (
        "plan_limit_reached",
        ["traders_per_portfolio"],
    )
    strategy_create(user=user, name="first", allocations=portfolio(3))
    with pytest.raises(ValidationFailed) as too_many:
        strategy_create(user=user, name="second", allocations=portfolio(1))
    assert (too_many.value.code, list(too_many.value.fields)) == (
        "plan_limit_reached",
        ["strategies"],
    )
    assert CopyStrategy.objects.filter(user=user).count() == 1
    services.subscription_subscribe(user=user, plan_code="pro")
    strategy_create(user=user, name="second", allocations=portfolio(4))
    assert CopyStrategy.objects.filter(user=user).count() == 2
