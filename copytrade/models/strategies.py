"""Copy strategies, the weights between their traders, and their immutable versions."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q


class StrategyStatus(models.TextChoices):
    PAUSED = "paused", "Paused"
    ACTIVE = "active", "Active"
    ERROR = "error", "Error"
    TERMINATED = "terminated", "Terminated"


class StrategyMode(models.TextChoices):
    PORTFOLIO = "portfolio", "Portfolio"
    SINGLE_TRADER = "single_trader", "Single trader"


class SizeMode(models.TextChoices):
    # follower equity / leader equity x weight x copy percentage
    PROPORTIONAL = "proportional", "Proportional to equity"
    FIXED = "fixed", "Fixed notional per trade"
    MULTIPLIER = "multiplier", "Multiple of the leader's size"


class CopyStrategy(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="copy_strategies"
    )
    agent_wallet = models.ForeignKey(
        "accounts.AgentWallet",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="strategies",
    )
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, default="")
    status = models.CharField(
        max_length=16, choices=StrategyStatus.choices, default=StrategyStatus.PAUSED
    )
    mode = models.CharField(
        max_length=16, choices=StrategyMode.choices, default=StrategyMode.PORTFOLIO
    )

    # Sizing
    size_mode = models.CharField(
        max_length=16, choices=SizeMode.choices, default=SizeMode.PROPORTIONAL
    )
    copy_pct = models.DecimalField(
        "copy percentage", max_digits=7, decimal_places=4, default=Decimal("100")
    )
    fixed_notional_usd = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    multiplier = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True)
    inverse = models.BooleanField(default=False, help_text="Take the opposite side.")

    # Risk parameters
    max_leverage = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("5.0"))
    max_position_usd = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    slippage_bps = models.IntegerField(default=10)
    min_order_usd = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal("5.0"))

    # Strategy settings
    follow_new_entries_only = models.BooleanField(default=True)
    auto_rebalance = models.BooleanField(default=True)
    rebalance_threshold_bps = models.IntegerField(default=50)

    # Performance tracking (maintained by services from fills and the fee ledger)
    total_pnl = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal("0"))
    total_fees = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal("0"))
    alignment_rate = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal("100.0"))

    # When copying (re)started: with follow_new_entries_only, leader positions opened before
    # this instant are never copied.
    started_at = models.DateTimeField(null=True, blank=True)
    # The settings the engine sizes with: every change creates a new StrategyVersion and points
    # here; a rollback points back at an older one (and restores its settings and weights).
    version = models.ForeignKey(
        "copytrade.StrategyVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status_reason = models.CharField(max_length=255, blank=True, default="")
    # Idempotency-Key of the request that created the strategy (API), with the request's
    # fingerprint: a repeat answers with this strategy, a different body with 409.
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "copy_strategies"
        verbose_name_plural = "copy strategies"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user"], name="copy_strategies_user_idx"),
            models.Index(fields=["status"], name="copy_strategies_status_idx"),
            models.Index(fields=["-total_pnl"], name="copy_strategies_pnl_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_leverage__gt=0), name="chk_strategy_max_leverage_positive"
            ),
            models.CheckConstraint(
                condition=Q(slippage_bps__gte=0), name="chk_strategy_slippage_positive"
            ),
            models.CheckConstraint(
                condition=Q(alignment_rate__gte=0, alignment_rate__lte=100),
                name="chk_strategy_alignment_rate_range",
            ),
            models.CheckConstraint(
                condition=Q(min_order_usd__gt=0), name="chk_strategy_min_order_positive"
            ),
            models.CheckConstraint(
                condition=Q(max_position_usd__isnull=True) | Q(max_position_usd__gt=0),
                name="chk_strategy_max_position_positive",
            ),
            models.CheckConstraint(
                condition=Q(rebalance_threshold_bps__gte=0), name="chk_strategy_rebalance_threshold"
            ),
            models.CheckConstraint(
                condition=Q(copy_pct__gt=0, copy_pct__lte=1000), name="chk_strategy_copy_pct_range"
            ),
            models.CheckConstraint(
                condition=Q(fixed_notional_usd__isnull=True) | Q(fixed_notional_usd__gt=0),
                name="chk_strategy_fixed_notional_positive",
            ),
            models.CheckConstraint(
                condition=Q(multiplier__isnull=True) | Q(multiplier__gt=0),
                name="chk_strategy_multiplier_positive",
            ),
            models.CheckConstraint(
                condition=~Q(size_mode=SizeMode.FIXED) | Q(fixed_notional_usd__isnull=False),
                name="chk_strategy_fixed_mode_has_notional",
            ),
            models.CheckConstraint(
                condition=~Q(size_mode=SizeMode.MULTIPLIER) | Q(multiplier__isnull=False),
                name="chk_strategy_multiplier_mode_has_multiplier",
            ),
            models.CheckConstraint(
                condition=Q(status__in=StrategyStatus.values), name="chk_strategy_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(mode__in=StrategyMode.values), name="chk_strategy_mode_valid"
            ),
            models.CheckConstraint(
                condition=Q(size_mode__in=SizeMode.values), name="chk_strategy_size_mode_valid"
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="copy_strategies_user_idempotency_key_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class AllocationStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    ERROR = "error", "Error"


class CopyAllocation(models.Model):
    """One trader's weight inside a strategy. Weights of a strategy never sum above 1.

    Enforced twice: the service locks the strategy row before it changes weights, and a
    database trigger (migration 0002) re-checks the sum after every insert or update while
    holding the same lock, so a path that skips the service still cannot exceed 1.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    strategy = models.ForeignKey(CopyStrategy, on_delete=models.CASCADE, related_name="allocations")
    trader = models.ForeignKey(
        "copytrade.Trader", on_delete=models.CASCADE, related_name="allocations"
    )
    weight = models.DecimalField(max_digits=5, decimal_places=4)
    status = models.CharField(
        max_length=16, choices=AllocationStatus.choices, default=AllocationStatus.ACTIVE
    )
    allocated_pnl = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal("0"))
    allocated_fees = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal("0"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "copy_allocations"
        ordering = ["-weight"]
        indexes = [
            models.Index(fields=["strategy"], name="copy_allocations_strategy_idx"),
            models.Index(fields=["trader"], name="copy_allocations_trader_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(weight__gt=0), name="chk_weight_positive"),
            models.CheckConstraint(condition=Q(weight__lte=1), name="chk_weight_max"),
            models.UniqueConstraint(
                fields=["strategy", "trader"], name="copy_allocations_strategy_trader_uniq"
            ),
            models.CheckConstraint(
                condition=Q(status__in=AllocationStatus.values), name="chk_allocation_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trader} x {self.weight}"


class StrategyVersion(models.Model):
    """One numbered, immutable snapshot of a strategy's settings and allocations (seed 002
    ``strategy_versions``). Migration 0004 refuses any UPDATE of a row in the database."""

    id = models.BigAutoField(primary_key=True)
    strategy = models.ForeignKey(CopyStrategy, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    config = models.JSONField()
    reason = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "strategy_versions"
        ordering = ["strategy", "-number"]
        indexes = [models.Index(fields=["strategy"], name="strategy_versions_strategy_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "number"], name="strategy_versions_number_uniq"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="chk_strategy_version_number"),
        ]

    def __str__(self) -> str:
        return f"{self.strategy_id} v{self.number}"
