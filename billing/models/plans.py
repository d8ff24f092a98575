"""Plans (seed 003) with their limits and fee schedule, and per-strategy fee overrides."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q

from billing.conf import (
    BUILDER_FEE_CAP_BPS,
    COPY_FEE_CAP_BPS,
    MANAGEMENT_FEE_CAP_BPS,
    PERFORMANCE_FEE_CAP_BPS,
    TRADER_SHARE_CAP_BPS,
)

FEE_FIELDS = (
    "builder_fee_bps",
    "copy_fee_bps",
    "management_fee_bps",
    "performance_fee_bps",
    "performance_period",
    "trader_share_bps",
)
FEE_CAPS: dict[str, int] = {
    "builder_fee_bps": BUILDER_FEE_CAP_BPS,
    "copy_fee_bps": COPY_FEE_CAP_BPS,
    "management_fee_bps": MANAGEMENT_FEE_CAP_BPS,
    "performance_fee_bps": PERFORMANCE_FEE_CAP_BPS,
    "trader_share_bps": TRADER_SHARE_CAP_BPS,
}


class BillingPeriod(models.TextChoices):
    MONTHLY = "monthly", "Monthly"
    YEARLY = "yearly", "Yearly"


class PerformancePeriodKind(models.TextChoices):
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


def _bps_range(field: str, cap: int, *, nullable: bool = False) -> models.CheckConstraint:
    condition = Q(**{f"{field}__gte": 0, f"{field}__lte": cap})
    if nullable:
        condition |= Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=f"%(class)s_{field}_range")


def fee_constraints(*, nullable: bool) -> list[models.BaseConstraint]:
    constraints: list[models.BaseConstraint] = [
        _bps_range(f, cap, nullable=nullable) for f, cap in FEE_CAPS.items()
    ]
    period_ok = Q(performance_period__in=PerformancePeriodKind.values)
    if nullable:
        period_ok |= Q(performance_period__isnull=True)
    constraints.append(
        models.CheckConstraint(condition=period_ok, name="%(class)s_performance_period_valid")
    )
    return constraints


class Plan(models.Model):
    """A subscription plan: its price and period, the limits it grants and its fee schedule.

    Exactly one active, free plan is the default: users without a subscription are on it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=64)
    description = models.TextField(blank=True, default="")
    is_active = models.BooleanField(default=True, help_text="Offered to new subscribers.")
    is_default = models.BooleanField(default=False)
    sort_order = models.PositiveSmallIntegerField(default=0)

    price = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    currency = models.CharField(max_length=8, default="USDC")
    billing_period = models.CharField(
        max_length=8, choices=BillingPeriod.choices, default=BillingPeriod.MONTHLY
    )
    grace_days = models.PositiveSmallIntegerField(
        default=7, help_text="Days an unpaid period keeps the plan after it turns past due."
    )

    # Limits; empty means unlimited.
    max_strategies = models.PositiveIntegerField(null=True, blank=True)
    max_traders_per_portfolio = models.PositiveIntegerField(null=True, blank=True)
    max_api_keys = models.PositiveIntegerField(null=True, blank=True)
    api_rate_per_minute = models.PositiveIntegerField(null=True, blank=True)

    # Fee schedule (bps of notional for fill fees; management is an annual rate on equity;
    # performance is a share of profit above the high-water mark; trader share is the part of
    # the performance fee passed to the followed traders).
    builder_fee_bps = models.IntegerField(default=0)
    copy_fee_bps = models.IntegerField(default=0)
    management_fee_bps = models.IntegerField(default=0)
    performance_fee_bps = models.IntegerField(default=0)
    performance_period = models.CharField(
        max_length=8, choices=PerformancePeriodKind.choices, default=PerformancePeriodKind.MONTHLY
    )
    trader_share_bps = models.IntegerField(default=0)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_plans"
        ordering = ["sort_order", "price", "code"]
        constraints = [
            *fee_constraints(nullable=False),
            models.CheckConstraint(condition=Q(price__gte=0), name="billing_plan_price_positive"),
            models.CheckConstraint(
                condition=Q(grace_days__lte=60), name="billing_plan_grace_days_range"
            ),
            models.CheckConstraint(
                condition=Q(billing_period__in=BillingPeriod.values),
                name="billing_plan_period_valid",
            ),
            models.CheckConstraint(
                condition=Q(is_default=False) | Q(price=0, is_active=True),
                name="billing_plan_default_is_free_and_active",
            ),
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="billing_plan_one_default",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_free(self) -> bool:
        return self.price == 0


class StrategyFeeSchedule(models.Model):
    """Per-strategy overrides of the owner's plan schedule; an empty field inherits the plan."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    strategy = models.OneToOneField(
        "copytrade.CopyStrategy", on_delete=models.CASCADE, related_name="fee_schedule"
    )
    builder_fee_bps = models.IntegerField(null=True, blank=True)
    copy_fee_bps = models.IntegerField(null=True, blank=True)
    management_fee_bps = models.IntegerField(null=True, blank=True)
    performance_fee_bps = models.IntegerField(null=True, blank=True)
    performance_period = models.CharField(
        max_length=8, choices=PerformancePeriodKind.choices, null=True, blank=True
    )
    trader_share_bps = models.IntegerField(null=True, blank=True)
    updated_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_strategy_fee_schedules"
        constraints = fee_constraints(nullable=True)

    def __str__(self) -> str:
        return f"fee schedule of {self.strategy_id}"
