"""Subscriptions: one row per paid-for period of a plan (seed 003 ``subscriptions``).

A renewal is a new row starting where the previous one ends; the rows of one user never
overlap (a trigger in migration 0002 refuses it, see there). Status:

``active``     the period is running and paid, or still within its payment terms
``past_due``   the period is running, unpaid after its terms; the plan holds until
               ``grace_until``, then the period ends early as ``expired``
``cancelled``  the customer cancelled: the plan holds until ``period_end``, no renewal
``expired``    the period is over (renewed, cancelled, unpaid, or replaced)
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Q


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    CANCELLED = "cancelled", "Cancelled (at period end)"
    EXPIRED = "expired", "Expired"


# Statuses whose plan applies while now is inside the period (past_due: until grace_until).
EFFECTIVE_STATUSES = (
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.CANCELLED,
)


class Subscription(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(
        max_length=16, choices=SubscriptionStatus.choices, default=SubscriptionStatus.ACTIVE
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    # The plan's price when the period started (what was charged for it).
    price = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    currency = models.CharField(max_length=8, default="USDC")
    due_at = models.DateTimeField(help_text="Unpaid after this, the period turns past due.")
    paid_at = models.DateTimeField(null=True, blank=True)
    payment_reference = models.CharField(max_length=128, blank=True, default="")
    grace_until = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=32, blank=True, default="")
    # False for periods staff granted: they end without turning into a paid renewal.
    auto_renew = models.BooleanField(default=True)
    # A scheduled change: the plan the next period renews into (changes between paid plans
    # take effect at the end of the paid period; there is no proration).
    next_plan = models.ForeignKey(
        "billing.Plan", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # One renewal per period: a second run of the renewal task finds the row taken.
    renewed_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="renewal"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "billing_subscriptions"
        ordering = ["-period_start", "-id"]
        indexes = [
            models.Index(fields=["user", "-period_start"], name="billing_sub_user_start_idx"),
            # The renewal and dunning task looks only at periods still in force.
            models.Index(
                fields=["period_end"],
                name="billing_sub_running_idx",
                condition=Q(status__in=["active", "past_due", "cancelled"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=SubscriptionStatus.values),
                name="billing_sub_status_valid",
            ),
            # >= rather than >: a period ended the instant it began (replaced at once) is empty.
            models.CheckConstraint(
                condition=Q(period_end__gte=F("period_start")), name="billing_sub_period_order"
            ),
            models.CheckConstraint(condition=Q(price__gte=0), name="billing_sub_price_positive"),
            models.CheckConstraint(
                condition=~Q(status=SubscriptionStatus.PAST_DUE) | Q(grace_until__isnull=False),
                name="billing_sub_past_due_has_grace",
            ),
            models.CheckConstraint(
                condition=~Q(status=SubscriptionStatus.CANCELLED) | Q(cancelled_at__isnull=False),
                name="billing_sub_cancelled_has_time",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan_id} {self.period_start:%Y-%m-%d}..{self.period_end:%Y-%m-%d}"

    @property
    def is_paid(self) -> bool:
        return self.paid_at is not None
