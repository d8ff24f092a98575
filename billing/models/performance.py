"""What management and performance fees are computed from: daily equity marks, capital flows,
and one row per closed performance-fee period (the high-water mark's history, billing/hwm.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Q, Value
from django.db.models.functions import Greatest

from billing.models.plans import PerformancePeriodKind


class StrategyEquityMark(models.Model):
    """A strategy's equity at the end of one UTC day. Written once (a different value for a
    day already marked is refused); management fees accrue on it, periods close on it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy", on_delete=models.PROTECT, related_name="equity_marks"
    )
    day = models.DateField()
    equity = models.DecimalField(max_digits=18, decimal_places=8)
    source = models.CharField(max_length=32, default="provider")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "billing_equity_marks"
        ordering = ["strategy", "-day"]
        constraints = [
            models.UniqueConstraint(fields=["strategy", "day"], name="billing_mark_strategy_day"),
            models.CheckConstraint(condition=Q(equity__gte=0), name="billing_mark_equity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy_id} {self.day} {self.equity}"


class CapitalFlow(models.Model):
    """Money moved into (positive) or out of (negative) a strategy: not profit, not loss."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy", on_delete=models.PROTECT, related_name="capital_flows"
    )
    amount = models.DecimalField(max_digits=18, decimal_places=8)
    occurred_at = models.DateTimeField()
    # Idempotency: the same external transfer recorded twice is one flow.
    reference = models.CharField(max_length=128)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "billing_capital_flows"
        ordering = ["strategy", "occurred_at"]
        indexes = [
            models.Index(fields=["strategy", "occurred_at"], name="billing_flow_strategy_time")
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "reference"], name="billing_flow_reference_uniq"
            ),
            models.CheckConstraint(condition=~Q(amount=0), name="billing_flow_amount_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy_id} {self.amount:+}"


class PerformancePeriod(models.Model):
    """One closed performance-fee period; the database re-checks the high-water-mark identities
    of billing/hwm.py on every row."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy", on_delete=models.PROTECT, related_name="performance_periods"
    )
    period_kind = models.CharField(max_length=8, choices=PerformancePeriodKind.choices)
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    opening_hwm = models.DecimalField(max_digits=18, decimal_places=8)
    net_flows = models.DecimalField(max_digits=18, decimal_places=8)
    adjusted_hwm = models.DecimalField(max_digits=18, decimal_places=8)
    closing_equity = models.DecimalField(max_digits=18, decimal_places=8)
    profit = models.DecimalField(max_digits=18, decimal_places=8)
    fee_bps = models.IntegerField()
    fee_amount = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    currency = models.CharField(max_length=8)
    closing_hwm = models.DecimalField(max_digits=18, decimal_places=8)
    fee = models.OneToOneField(
        "billing.FeeLedgerEntry",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="performance_period",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "billing_performance_periods"
        ordering = ["strategy", "-period_start"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "period_start"], name="billing_period_strategy_start"
            ),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="billing_period_order"
            ),
            models.CheckConstraint(
                condition=Q(adjusted_hwm=F("opening_hwm") + F("net_flows")),
                name="billing_period_hwm_moves_by_flows",
            ),
            models.CheckConstraint(
                condition=Q(profit=Greatest(F("closing_equity") - F("adjusted_hwm"), Value(0))),
                name="billing_period_profit_above_hwm",
            ),
            models.CheckConstraint(
                condition=Q(closing_hwm=Greatest(F("adjusted_hwm"), F("closing_equity"))),
                name="billing_period_closing_hwm",
            ),
            models.CheckConstraint(
                condition=Q(fee_amount__gte=0, fee_bps__gte=0), name="billing_period_fee_positive"
            ),
            models.CheckConstraint(
                condition=Q(fee__isnull=True) | Q(fee_amount__gt=0),
                name="billing_period_fee_row_has_amount",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy_id} {self.period_start:%Y-%m-%d}"
