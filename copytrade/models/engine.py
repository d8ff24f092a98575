"""What the copy engine decides and remembers: one decision per (strategy, leader move), the
follower's share of each leader's positions, and the follower's cached equity."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import Q


class DecisionKind(models.TextChoices):
    COPY = "copy", "Copy of a leader move"
    REBALANCE = "rebalance", "Rebalance (alignment drift)"


class DecisionOutcome(models.TextChoices):
    PLACED = "placed", "Order placed"
    SKIPPED = "skipped", "Skipped"
    REFUSED = "refused", "Refused by a pre-trade check"


class CopyDecision(models.Model):
    """Every decision the engine makes, placed or not, with its reason and the numbers behind
    it. Unique per (strategy, source event): however often a leader move is replayed, a
    strategy gets one decision and at most one order from it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy", on_delete=models.CASCADE, related_name="decisions"
    )
    # Denormalised owner: every customer read filters on it.
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="+")
    trader = models.ForeignKey(
        "copytrade.Trader", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    version = models.ForeignKey(
        "copytrade.StrategyVersion",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="decisions",
    )
    version_number = models.PositiveIntegerField(null=True, blank=True)
    kind = models.CharField(max_length=16, choices=DecisionKind.choices, default=DecisionKind.COPY)
    source_event_id = models.CharField(max_length=128)
    trader_event = models.ForeignKey(
        "copytrade.TraderEvent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    outcome = models.CharField(max_length=16, choices=DecisionOutcome.choices)
    reason_code = models.CharField(max_length=48, blank=True, default="")
    reason = models.TextField(blank=True, default="")
    coin = models.CharField(max_length=32)
    # The leader's move: signed positions before and after, its net size and average price.
    leader_side = models.CharField(max_length=4, blank=True, default="")
    leader_size = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    leader_price = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    leader_before = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    leader_after = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    leader_time = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)
    # The follower's order as sized (side/quantity empty when skipped).
    side = models.CharField(max_length=4, blank=True, default="")
    quantity = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    desired_quantity = models.DecimalField(
        max_digits=24,
        decimal_places=8,
        default=Decimal(0),
        help_text="Signed quantity wanted before rounding and minimums (remainder included).",
    )
    limit_price = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    leverage = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    reduce_only = models.BooleanField(default=False)
    capped = models.BooleanField(default=False)
    remainder_before = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    remainder_after = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    follower_equity = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    leader_equity = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    weight = models.DecimalField(max_digits=5, decimal_places=4, null=True, blank=True)
    order = models.ForeignKey(
        "trading.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the order's outcome (submitted, filled, failed) went to ClickHouse copy_trade_events.
    outcome_recorded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "copy_decisions"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["strategy", "-created_at"], name="copy_decisions_strategy_idx"),
            models.Index(fields=["user", "-created_at"], name="copy_decisions_user_idx"),
            models.Index(fields=["order"], name="copy_decisions_order_idx"),
            models.Index(fields=["source_event_id"], name="copy_decisions_event_idx"),
            models.Index(
                fields=["created_at"],
                name="copy_decisions_unrecorded_idx",
                condition=Q(order__isnull=False, outcome_recorded_at__isnull=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "source_event_id"], name="copy_decisions_strategy_event_uniq"
            ),
            models.CheckConstraint(
                condition=Q(outcome__in=DecisionOutcome.values), name="chk_copy_decision_outcome"
            ),
            models.CheckConstraint(
                condition=~Q(outcome=DecisionOutcome.PLACED) | Q(quantity__gt=0),
                name="chk_copy_decision_placed_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.outcome} {self.coin} ({self.reason_code or 'ok'})"


class CopySlot(models.Model):
    """The follower's share of one leader's position in one coin, inside one strategy.

    ``attributable = base_quantity + committed_quantity``: ``base_quantity`` is what the
    follower already held when copying started (adopted at activation), ``committed_quantity``
    the signed sum of this slot's copy orders -- their full quantity while in flight, their
    filled quantity once final. ``committed_quantity`` is kept by statement-level triggers on
    ``orders`` (migration 0004), so every path that creates or settles an order, bulk or not,
    keeps it exact. ``remainder`` is the signed quantity the engine owes the follower: parts
    of leader moves too small to trade, carried until they add up to the minimum.
    """

    id = models.BigAutoField(primary_key=True)
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy", on_delete=models.CASCADE, related_name="slots"
    )
    trader = models.ForeignKey("copytrade.Trader", on_delete=models.CASCADE, related_name="+")
    symbol = models.ForeignKey("trading.Symbol", on_delete=models.CASCADE, related_name="+")
    base_quantity = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    committed_quantity = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    remainder = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "copy_slots"
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "trader", "symbol"], name="copy_slots_strategy_trader_symbol"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.strategy_id}/{self.trader_id}/{self.symbol_id}"

    @property
    def attributable(self) -> Decimal:
        return self.base_quantity + self.committed_quantity


class FollowerEquity(models.Model):
    """The latest account value of a follower's venue account (cached: the engine sizes
    thousands of followers per leader fill and cannot ask the venue for each)."""

    agent_wallet = models.OneToOneField(
        "accounts.AgentWallet", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    account_value = models.DecimalField(max_digits=24, decimal_places=8)
    fetched_at = models.DateTimeField()

    class Meta:
        db_table = "copy_follower_equity"
        verbose_name_plural = "follower equities"

    def __str__(self) -> str:
        return f"{self.agent_wallet_id}: {self.account_value}"
