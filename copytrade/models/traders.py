"""Traders (leaders Tandem watches), their fills as events, their positions, and the cursor
that lets ingestion resume after a restart."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class TraderSource(models.TextChoices):
    STAFF = "staff", "Added by staff"
    FOLLOW = "follow", "Followed by a customer"
    IMPORT = "import", "Imported"
    DEMO = "demo", "Simulated (demo)"


class Trader(models.Model):
    """A leader whose fills Tandem watches: an account on a venue, not a Tandem user."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    alias = models.CharField(max_length=64)
    src_uid = models.CharField("venue account id", max_length=128)
    addr = models.CharField("address", max_length=42, null=True, blank=True)
    exchange = models.CharField(max_length=32, default="hyperliquid")
    tags = ArrayField(models.CharField(max_length=32), default=list, blank=True)
    public_score = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(default=True)
    source = models.CharField(
        max_length=16, choices=TraderSource.choices, default=TraderSource.STAFF
    )
    # The leader's account value (clearinghouseState / portfolio), the denominator of
    # proportional sizing. Empty until first read: proportional copies are then skipped.
    account_value = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    account_value_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "traders"
        ordering = ["alias"]
        indexes = [
            models.Index(fields=["src_uid"], name="traders_src_uid_idx"),
            models.Index(fields=["exchange"], name="traders_exchange_idx"),
            models.Index(fields=["-public_score"], name="traders_public_score_idx"),
            models.Index(fields=["is_active"], name="traders_is_active_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "src_uid"], name="traders_exchange_src_uid_uniq"
            ),
            models.CheckConstraint(
                condition=Q(public_score__isnull=True)
                | Q(public_score__gte=0, public_score__lte=100),
                name="chk_public_score_range",
            ),
            models.CheckConstraint(
                condition=Q(account_value__isnull=True) | Q(account_value__gte=0),
                name="chk_trader_account_value",
            ),
        ]

    def __str__(self) -> str:
        return self.alias


class TraderEventSource(models.TextChoices):
    WEBSOCKET = "ws", "Websocket"
    POLL = "poll", "Polling"
    DEMO = "demo", "Demo generator"
    REPLAY = "replay", "Replay / import"


class TraderEvent(models.Model):
    """One fill of a leader, stored once (unique venue fill id), whatever delivered it.

    ``fill_id`` follows trading's Fill rule: the venue's ``tid``, or for fills without one a
    digest of (hash, oid, px, sz, time) (trading.exchanges.base.derive_fill_id). ``move_key``
    names the *leader move* the fill belongs to -- the fills of one coin in one millisecond
    that report the same start position (one transaction's partial fills, or the leader's own
    orders matching each other) -- and is the ``source_event_id`` of every copy decision and
    copied order made from it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    trader = models.ForeignKey(Trader, on_delete=models.CASCADE, related_name="events")
    exchange = models.CharField(max_length=32)
    fill_id = models.CharField(max_length=80)
    coin = models.CharField(max_length=32)
    side = models.CharField(max_length=4)  # buy | sell
    price = models.DecimalField(max_digits=24, decimal_places=8)
    size = models.DecimalField(max_digits=24, decimal_places=8)
    start_position = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    direction = models.CharField(max_length=24, blank=True, default="")
    closed_pnl = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    fee = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    fee_token = models.CharField(max_length=16, blank=True, default="USDC")
    builder_fee = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    oid = models.CharField("venue order id", max_length=64, blank=True, default="")
    cloid = models.CharField(max_length=64, blank=True, default="")
    tx_hash = models.CharField(max_length=80, blank=True, default="")
    crossed = models.BooleanField(null=True, blank=True)
    is_liquidation = models.BooleanField(default=False)
    time_ms = models.BigIntegerField("venue time (epoch ms)")
    filled_at = models.DateTimeField()
    # Position of the fill within its millisecond as the venue listed it (oldest first).
    seq = models.PositiveIntegerField(default=0)
    move_key = models.CharField(max_length=128)
    # True on the fills of a move that opened the leader's position from flat or flipped it:
    # what "a position the leader opened after the strategy started" is decided from.
    opens_position = models.BooleanField(default=False)
    source = models.CharField(max_length=8, choices=TraderEventSource.choices)
    seen_at = models.DateTimeField(help_text="When Tandem first received the fill.")
    exported_at = models.DateTimeField(
        null=True, blank=True, help_text="Written to ClickHouse trader_events (at least once)."
    )
    raw = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "trader_events"
        ordering = ["-time_ms", "seq"]
        indexes = [
            models.Index(fields=["trader", "coin", "time_ms"], name="trader_events_coin_time_idx"),
            models.Index(fields=["trader", "-time_ms"], name="trader_events_trader_time_idx"),
            models.Index(fields=["move_key"], name="trader_events_move_idx"),
            models.Index(
                fields=["seen_at"],
                name="trader_events_unexported_idx",
                condition=Q(exported_at__isnull=True),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["exchange", "fill_id"], name="trader_events_exchange_fill_uniq"
            ),
            models.CheckConstraint(condition=Q(size__gt=0), name="chk_trader_event_size"),
            models.CheckConstraint(condition=Q(price__gt=0), name="chk_trader_event_price"),
            models.CheckConstraint(
                condition=Q(side__in=["buy", "sell"]), name="chk_trader_event_side"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.size.normalize()} {self.coin} @ {self.price.normalize()}"

    @property
    def signed_size(self) -> Decimal:
        return self.size if self.side == "buy" else -self.size


class TraderPosition(models.Model):
    """A leader's position in one coin, as its fills (and account reads) say.

    ``opened_at_ms`` is when the current position was opened from flat (or flipped); empty when
    it was already open when Tandem started watching. ``follow_new_entries_only`` strategies
    copy only positions opened after they started.
    """

    id = models.BigAutoField(primary_key=True)
    trader = models.ForeignKey(Trader, on_delete=models.CASCADE, related_name="positions")
    coin = models.CharField(max_length=32)
    quantity = models.DecimalField(max_digits=24, decimal_places=8, default=Decimal(0))
    entry_price = models.DecimalField(max_digits=24, decimal_places=8, null=True, blank=True)
    leverage = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    opened_at_ms = models.BigIntegerField(null=True, blank=True)
    last_time_ms = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trader_positions"
        ordering = ["coin"]
        constraints = [
            models.UniqueConstraint(fields=["trader", "coin"], name="trader_positions_uniq"),
            models.CheckConstraint(
                condition=Q(leverage__isnull=True) | Q(leverage__gt=0),
                name="chk_trader_position_leverage",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trader_id} {self.coin} {self.quantity.normalize()}"


class TraderFillCursor(models.Model):
    """Where ingestion of one trader's fills stands: polling and catch-up after a restart start
    from ``last_fill_time_ms`` (the same millisecond again: fills sharing it may have been cut
    by a page boundary; duplicates are dropped on the fill id)."""

    trader = models.OneToOneField(
        Trader, on_delete=models.CASCADE, primary_key=True, related_name="cursor"
    )
    last_fill_time_ms = models.BigIntegerField(default=0)
    last_polled_at = models.DateTimeField(null=True, blank=True)
    fills_seen = models.PositiveBigIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "trader_fill_cursors"

    def __str__(self) -> str:
        return f"{self.trader_id} @ {self.last_fill_time_ms}"
