"""Fills (one row per venue fill) and positions (one row per account and symbol)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from trading.models.orders import OrderSide
from trading.pnl import DIRECTIONS


class Fill(models.Model):
    """One match of one order at the venue, applied to the position exactly once.

    ``venue_fill_id`` is the venue's fill id (Hyperliquid ``tid``) or, for fills that carry
    none, a digest of the fields that identify a fill (``hash, oid, px, sz, time`` on
    Hyperliquid; see exchanges.base.derive_fill_id). Unique per venue: a replayed fill is
    recognised and changes nothing.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    exchange = models.CharField("venue", max_length=32)
    venue_fill_id = models.CharField(max_length=80)
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="fills")
    agent_wallet = models.ForeignKey(
        "accounts.AgentWallet", on_delete=models.PROTECT, related_name="fills"
    )
    # NULL when the fill belongs to no Tandem order (a trade made at the venue directly, or a
    # replay of history): it still moves the position.
    order = models.ForeignKey(
        "trading.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="fills"
    )
    position = models.ForeignKey("trading.Position", on_delete=models.PROTECT, related_name="fills")
    symbol = models.ForeignKey("trading.Symbol", on_delete=models.PROTECT, related_name="fills")

    side = models.CharField(max_length=4, choices=OrderSide.choices)
    price = models.DecimalField(max_digits=18, decimal_places=8)
    size = models.DecimalField(max_digits=18, decimal_places=8)
    fee = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    fee_token = models.CharField(max_length=16, blank=True, default="USDC")
    builder_fee = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    direction = models.CharField(max_length=16)
    # The position just before this fill, as the venue reported it (None if it does not).
    start_position = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    # What was booked: the venue's closedPnl when it reports one (the venue is the truth for
    # its own account), else Tandem's weighted-average computation (trading.pnl).
    realized_pnl = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    venue_closed_pnl = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    is_taker = models.BooleanField(null=True, blank=True)
    is_liquidation = models.BooleanField(default=False)
    venue_order_id = models.CharField(max_length=64, blank=True, default="")
    cloid = models.CharField(max_length=64, blank=True, default="")
    tx_hash = models.CharField(max_length=80, blank=True, default="")
    time_ms = models.BigIntegerField("venue time (epoch ms)")
    filled_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "fills"
        ordering = ["-filled_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-filled_at"], name="fills_user_time_idx"),
            models.Index(fields=["order"], name="fills_order_idx"),
            models.Index(fields=["position", "time_ms"], name="fills_position_time_idx"),
            models.Index(fields=["agent_wallet", "time_ms"], name="fills_wallet_time_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "venue_fill_id"], name="fills_venue_fill_id_uniq"
            ),
            models.CheckConstraint(condition=Q(size__gt=0), name="fills_size_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="fills_price_positive"),
            models.CheckConstraint(condition=Q(side__in=OrderSide.values), name="fills_side_valid"),
            models.CheckConstraint(
                condition=Q(direction__in=DIRECTIONS), name="fills_direction_valid"
            ),
            models.CheckConstraint(condition=Q(time_ms__gt=0), name="fills_time_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.size.normalize()} @ {self.price.normalize()}"

    @property
    def notional(self) -> Decimal:
        return self.size * self.price


class PositionSide(models.TextChoices):
    LONG = "long", "Long"
    SHORT = "short", "Short"
    FLAT = "flat", "Flat"


class MarginMode(models.TextChoices):
    CROSS = "cross", "Cross"
    ISOLATED = "isolated", "Isolated"


class Position(models.Model):
    """A user's position in one symbol through one agent wallet (seed 000 + 004).

    One row for the life of the (user, agent wallet, symbol) triple: closing sets the quantity
    to 0 and ``closed_at``; a later fill reopens the same row with a fresh ``opened_at``. The
    history of every opening and closing lives in the fills that point here (each with its start
    position, direction and realised PnL), so nothing is ever deleted. ``realized_pnl`` and
    ``fees_paid`` accumulate over the row's whole life; ``net_realized_pnl`` is their difference.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="positions")
    agent_wallet = models.ForeignKey(
        "accounts.AgentWallet", on_delete=models.PROTECT, related_name="positions"
    )
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="positions",
    )
    symbol = models.ForeignKey("trading.Symbol", on_delete=models.PROTECT, related_name="positions")
    exchange = models.CharField("venue", max_length=32)
    side = models.CharField(max_length=8, choices=PositionSide.choices, default=PositionSide.FLAT)
    quantity = models.DecimalField(
        max_digits=18,
        decimal_places=8,
        default=Decimal(0),
        help_text="Signed: positive long, negative short.",
    )
    entry_price = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    mark_price = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    unrealized_pnl = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    realized_pnl = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    fees_paid = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    net_realized_pnl = models.GeneratedField(
        expression=F("realized_pnl") - F("fees_paid"),
        output_field=models.DecimalField(max_digits=19, decimal_places=8),
        db_persist=True,
    )
    leverage = models.DecimalField(max_digits=5, decimal_places=2, default=Decimal(1))
    margin_mode = models.CharField(
        max_length=8, choices=MarginMode.choices, default=MarginMode.CROSS
    )
    margin_used = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    liquidation_price = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    # The venue time of the newest fill applied: a fill older than this arrived late.
    last_fill_time_ms = models.BigIntegerField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_updated_at = models.DateTimeField(auto_now=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "positions"
        ordering = ["-last_updated_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-last_updated_at"], name="positions_user_idx"),
            models.Index(fields=["strategy"], name="positions_strategy_idx"),
            models.Index(fields=["symbol"], name="positions_symbol_idx"),
            models.Index(fields=["side"], name="positions_side_idx"),
            models.Index(fields=["symbol"], name="positions_open_idx", condition=~Q(quantity=0)),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "agent_wallet", "symbol"], name="positions_user_wallet_symbol_uniq"
            ),
            models.CheckConstraint(condition=Q(leverage__gt=0), name="chk_position_leverage"),
            models.CheckConstraint(
                condition=Q(side__in=PositionSide.values), name="chk_position_side_valid"
            ),
            models.CheckConstraint(
                condition=Q(margin_mode__in=MarginMode.values),
                name="chk_position_margin_mode_valid",
            ),
            models.CheckConstraint(
                condition=(Q(side=PositionSide.LONG) & Q(quantity__gt=0))
                | (Q(side=PositionSide.SHORT) & Q(quantity__lt=0))
                | (Q(side=PositionSide.FLAT) & Q(quantity=0)),
                name="chk_position_side_matches_quantity",
            ),
            models.CheckConstraint(
                condition=(Q(quantity=0) & Q(entry_price=0))
                | (~Q(quantity=0) & Q(entry_price__gt=0)),
                name="chk_position_entry_price",
            ),
            models.CheckConstraint(
                condition=Q(margin_used__gte=0), name="chk_position_margin_used"
            ),
            models.CheckConstraint(
                condition=Q(liquidation_price__isnull=True) | Q(liquidation_price__gt=0),
                name="chk_position_liquidation_price",
            ),
            models.CheckConstraint(
                condition=~Q(quantity=0) | Q(opened_at__isnull=True) | Q(closed_at__isnull=False),
                name="chk_position_flat_is_closed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity.normalize()} {self.symbol_id}"

    @property
    def is_open(self) -> bool:
        return self.quantity != 0

    @property
    def notional(self) -> Decimal:
        return abs(self.quantity) * (self.mark_price or self.entry_price)
