"""Plans, subscriptions, limits and fee schedules: every read, scoped to the user it concerns."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from billing.conf import billing_setting
from billing.models import (
    EFFECTIVE_STATUSES,
    FEE_FIELDS,
    Plan,
    StrategyFeeSchedule,
    Subscription,
    SubscriptionStatus,
)

if TYPE_CHECKING:
    from accounts.models import User

RESOURCES = ("strategies", "traders_per_portfolio", "api_keys")
_LIMIT_FIELDS = {
    "strategies": "max_strategies",
    "traders_per_portfolio": "max_traders_per_portfolio",
    "api_keys": "max_api_keys",
    "api_rate_per_minute": "api_rate_per_minute",
}


@dataclass(frozen=True)
class PlanLimits:
    """What a user's plan allows; ``None`` means unlimited."""

    plan_code: str
    plan_name: str
    strategies: int | None
    traders_per_portfolio: int | None
    api_keys: int | None
    api_rate_per_minute: int | None

    def limit(self, resource: str) -> int | None:
        if resource not in _LIMIT_FIELDS:
            raise ValueError(f"unknown plan resource {resource!r}")
        value: int | None = getattr(self, resource)
        return value


@dataclass(frozen=True)
class FeeSchedule:
    """The fee schedule in force for one strategy: its overrides on top of its owner's plan."""

    builder_fee_bps: int
    copy_fee_bps: int
    management_fee_bps: int
    performance_fee_bps: int
    performance_period: str
    trader_share_bps: int
    plan_id: uuid.UUID | None
    overridden: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {field: getattr(self, field) for field in FEE_FIELDS} | {
            "overridden": list(self.overridden)
        }


ZERO_SCHEDULE = FeeSchedule(0, 0, 0, 0, "monthly", 0, None)


def plan_list(*, active_only: bool = True) -> QuerySet[Plan]:
    plans = Plan.objects.all()
    return plans.filter(is_active=True) if active_only else plans


def plan_get_by_code(*, code: str, active_only: bool = True) -> Plan | None:
    return plan_list(active_only=active_only).filter(code=code).first()


def default_plan() -> Plan | None:
    return Plan.objects.filter(is_default=True).first()


def _effective_filter(at: datetime) -> Q:
    return Q(period_start__lte=at, period_end__gt=at, status__in=EFFECTIVE_STATUSES) & (
        ~Q(status=SubscriptionStatus.PAST_DUE) | Q(grace_until__gt=at)
    )


def subscription_current(*, user: User, at: datetime | None = None) -> Subscription | None:
    """The subscription period in force for ``user`` now (None: the user is on the default
    plan)."""
    at = at or timezone.now()
    return (
        Subscription.objects.filter(user=user)
        .filter(_effective_filter(at))
        .select_related("plan", "next_plan")
        .first()
    )


def subscription_list(*, user: User) -> QuerySet[Subscription]:
    return Subscription.objects.filter(user=user).select_related("plan", "next_plan")


def effective_plans(
    *, user_ids: Iterable[uuid.UUID], at: datetime | None = None
) -> dict[uuid.UUID, Plan | None]:
    """System scope (accrual): the plan each user is on at ``at``, in two queries."""
    at = at or timezone.now()
    ids = set(user_ids)
    fallback = default_plan()
    plans: dict[uuid.UUID, Plan | None] = dict.fromkeys(ids, fallback)
    for subscription in (
        Subscription.objects.filter(user_id__in=ids)
        .filter(_effective_filter(at))
        .select_related("plan")
    ):
        plans[subscription.user_id] = subscription.plan
    return plans


def effective_plan(*, user: User, at: datetime | None = None) -> Plan | None:
    subscription = subscription_current(user=user, at=at)
    return subscription.plan if subscription is not None else default_plan()


def plan_limits(user: User, *, at: datetime | None = None) -> PlanLimits:
    """The limits of ``user``'s plan: the subscription in force (a past-due one until its grace
    ends, a cancelled one until its period ends), else the default plan."""
    plan = effective_plan(user=user, at=at)
    if plan is None:
        fallback: dict[str, int | None] = billing_setting("FALLBACK_LIMITS")
        return PlanLimits(
            plan_code="free",
            plan_name="Free",
            strategies=fallback.get("strategies"),
            traders_per_portfolio=fallback.get("traders_per_portfolio"),
            api_keys=fallback.get("api_keys"),
            api_rate_per_minute=fallback.get("api_rate_per_minute"),
        )
    return PlanLimits(
        plan_code=plan.code,
        plan_name=plan.name,
        strategies=plan.max_strategies,
        traders_per_portfolio=plan.max_traders_per_portfolio,
        api_keys=plan.max_api_keys,
        api_rate_per_minute=plan.api_rate_per_minute,
    )


def plan_usage(
    *, user: User, resource: str, strategy: Any = None, at: datetime | None = None
) -> int:
    """How much of ``resource`` the user uses now (the count a limit is checked against)."""
    from accounts.models import ApiKey
    from copytrade.models import CopyAllocation, CopyStrategy, StrategyStatus

    if resource == "strategies":
        return (
            CopyStrategy.objects.filter(user=user).exclude(status=StrategyStatus.TERMINATED).count()
        )
    if resource == "traders_per_portfolio":
        if strategy is None:
            return 0
        return CopyAllocation.objects.filter(strategy=strategy, strategy__user=user).count()
    if resource == "api_keys":
        now = at or timezone.now()
        return (
            ApiKey.objects.filter(user=user, revoked_at__isnull=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .count()
        )
    raise ValueError(f"unknown plan resource {resource!r}")


def plan_usage_summary(*, user: User) -> dict[str, int]:
    return {
        "strategies": plan_usage(user=user, resource="strategies"),
        "api_keys": plan_usage(user=user, resource="api_keys"),
    }


def strategy_fee_override(*, strategy: Any) -> StrategyFeeSchedule | None:
    return StrategyFeeSchedule.objects.filter(strategy=strategy).first()


def strategy_fee_schedules(
    *, strategy_ids: Iterable[uuid.UUID], at: datetime | None = None
) -> dict[uuid.UUID, FeeSchedule]:
    """System scope (accrual): the schedule in force for each strategy, in three queries."""
    from copytrade.models import CopyStrategy

    ids = set(strategy_ids)
    owners = dict(CopyStrategy.objects.filter(pk__in=ids).values_list("pk", "user_id"))
    plans = effective_plans(user_ids=set(owners.values()), at=at)
    overrides = {o.strategy_id: o for o in StrategyFeeSchedule.objects.filter(strategy_id__in=ids)}
    schedules: dict[uuid.UUID, FeeSchedule] = {}
    for strategy_id, user_id in owners.items():
        plan = plans.get(user_id)
        override = overrides.get(strategy_id)
        values: dict[str, Any] = {}
        overridden: list[str] = []
        for field in FEE_FIELDS:
            own = getattr(override, field, None) if override is not None else None
            if own is not None:
                values[field] = own
                overridden.append(field)
            elif plan is not None:
                values[field] = getattr(plan, field)
            else:
                values[field] = getattr(ZERO_SCHEDULE, field)
        schedules[strategy_id] = FeeSchedule(
            **values, plan_id=plan.pk if plan is not None else None, overridden=tuple(overridden)
        )
    return schedules


def strategy_fee_schedule(*, strategy: Any, at: datetime | None = None) -> FeeSchedule:
    return strategy_fee_schedules(strategy_ids=[strategy.pk], at=at).get(strategy.pk, ZERO_SCHEDULE)


def subscriptions_to_renew(*, now: datetime) -> QuerySet[Subscription]:
    """System scope (beat): periods in force whose end has passed."""
    return Subscription.objects.filter(
        status__in=EFFECTIVE_STATUSES, period_end__lte=now
    ).select_related("plan", "next_plan", "user")


def subscriptions_overdue(*, now: datetime) -> QuerySet[Subscription]:
    """System scope (beat): unpaid active periods past their payment terms."""
    return Subscription.objects.filter(
        status=SubscriptionStatus.ACTIVE, paid_at__isnull=True, due_at__lte=now, period_end__gt=now
    ).select_related("plan")


def subscriptions_grace_over(*, now: datetime) -> QuerySet[Subscription]:
    """System scope (beat): past-due periods whose grace has run out."""
    return Subscription.objects.filter(
        status=SubscriptionStatus.PAST_DUE, grace_until__lte=now
    ).select_related("plan")
