"""Risk limits (seed 002) per user or per strategy, and the risk events they raise (002 + 004)."""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q


class RiskLimit(models.Model):
    """Limits the pre-trade checks enforce. One row per user (``strategy`` empty) and at most one
    per strategy; an order of a strategy must pass both. Empty limits are not enforced.

    ``max_daily_loss`` and ``max_drawdown`` are USD amounts: the loss since 00:00 UTC (realised
    net of fees, plus the current unrealised PnL), and the fall of cumulative net PnL from its
    high-water mark ``pnl_peak``, which the checks raise as PnL makes new highs.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="risk_limits")
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="risk_limits",
    )
    max_position_value = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    max_leverage = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    max_daily_loss = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    max_drawdown = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    max_orders_per_hour = models.PositiveIntegerField(null=True, blank=True)
    pnl_peak = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "risk_limits"
        indexes = [models.Index(fields=["user"], name="risk_limits_user_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=Q(strategy__isnull=True), name="risk_limits_one_per_user"
            ),
            models.UniqueConstraint(
                fields=["strategy"],
                condition=Q(strategy__isnull=False),
                name="risk_limits_one_per_strategy",
            ),
            models.CheckConstraint(
                condition=Q(max_position_value__isnull=True) | Q(max_position_value__gt=0),
                name="chk_risk_max_position_value",
            ),
            models.CheckConstraint(
                condition=Q(max_leverage__isnull=True) | Q(max_leverage__gt=0),
                name="chk_risk_max_leverage",
            ),
            models.CheckConstraint(
                condition=Q(max_daily_loss__isnull=True) | Q(max_daily_loss__gt=0),
                name="chk_risk_max_daily_loss",
            ),
            models.CheckConstraint(
                condition=Q(max_drawdown__isnull=True) | Q(max_drawdown__gt=0),
                name="chk_risk_max_drawdown",
            ),
            models.CheckConstraint(
                condition=Q(max_orders_per_hour__isnull=True) | Q(max_orders_per_hour__gt=0),
                name="chk_risk_max_orders_per_hour",
            ),
        ]

    def __str__(self) -> str:
        scope = f"strategy {self.strategy_id}" if self.strategy_id else f"user {self.user_id}"
        return f"Risk limits for {scope}"


class RiskEventType(models.TextChoices):
    LIMIT_BREACH = "limit_breach", "Limit breached (order rejected)"
    STRATEGY_PAUSED = "strategy_paused", "Strategy paused"
    POSITION_DRIFT = "position_drift", "Position differs from the venue"
    ORDER_NOT_AT_VENUE = "order_not_at_venue", "Order the venue never got"
    ORDER_STATUS_REPAIRED = "order_status_repaired", "Order status taken from the venue"
    UNKNOWN_VENUE_ORDER = "unknown_venue_order", "Open order at the venue unknown to Tandem"
    FILL_OVERFLOW = "fill_overflow", "Fills exceed the order quantity"
    RECONCILIATION_FAILED = "reconciliation_failed", "Reconciliation could not reach the venue"


class RiskSeverity(models.TextChoices):
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    CRITICAL = "critical", "Critical"


class RiskEvent(models.Model):
    """Something risk-relevant that happened: a rejected order, a repaired difference."""

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.PROTECT, related_name="risk_events"
    )
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="risk_events",
    )
    agent_wallet = models.ForeignKey(
        "accounts.AgentWallet",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="risk_events",
    )
    order = models.ForeignKey(
        "trading.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="risk_events",
    )
    event_type = models.CharField(max_length=32, choices=RiskEventType.choices)
    severity = models.CharField(max_length=16, choices=RiskSeverity.choices)
    exchange = models.CharField("venue", max_length=32, blank=True, default="")
    symbol = models.CharField(max_length=32, blank=True, default="")
    description = models.TextField()
    metric_name = models.CharField(max_length=64, blank=True, default="")
    metric_value = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    threshold_value = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    action_taken = models.CharField(max_length=64, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    triggered_at = models.DateTimeField(auto_now_add=True)
    acknowledged = models.BooleanField(default=False)
    acknowledged_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        db_table = "risk_events"
        ordering = ["-triggered_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-triggered_at"], name="risk_events_user_idx"),
            models.Index(fields=["event_type"], name="risk_events_type_idx"),
            models.Index(fields=["severity"], name="risk_events_severity_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(event_type__in=RiskEventType.values), name="risk_events_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(severity__in=RiskSeverity.values), name="risk_events_severity_valid"
            ),
            models.CheckConstraint(
                condition=Q(acknowledged=False) | Q(acknowledged_at__isnull=False),
                name="risk_events_acknowledged_at",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} ({self.severity})"
