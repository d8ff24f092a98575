"""Orders, their state machine, their history, and the outbox that submits them."""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from trading.models.symbols import VENUE_REGEX

CLOID_REGEX = r"^0x[0-9a-f]{32}$"


def new_cloid() -> str:
    """A client order id in Hyperliquid's format (0x + 16 random bytes as hex)."""
    return "0x" + secrets.token_hex(16)


class OrderSide(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class OrderType(models.TextChoices):
    MARKET = "market", "Market"
    LIMIT = "limit", "Limit"
    STOP = "stop", "Stop"
    STOP_LIMIT = "stop_limit", "Stop limit"


class TimeInForce(models.TextChoices):
    # Hyperliquid's names: good till cancelled, immediate or cancel, add liquidity only.
    GTC = "Gtc", "Good till cancelled"
    IOC = "Ioc", "Immediate or cancel"
    ALO = "Alo", "Add liquidity only (post only)"


class OrderStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUBMITTED = "submitted", "Submitted"
    PARTIAL = "partial", "Partially filled"
    FILLED = "filled", "Filled"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


# The whole state machine. The service layer refuses any other move, and migration 0002 compiles
# this table into the ``orders_guard`` trigger, which refuses it in the database too.
#
#   pending   -> submitted  the venue acknowledged the order (resting, or filled at once)
#   pending   -> failed     refused before or by the venue; never reached it
#   pending   -> cancelled  cancelled before it was sent
#   submitted -> partial    a first fill that leaves a remainder
#   submitted -> filled     filled completely
#   submitted -> cancelled  cancelled at the venue (by the user, IOC remainder, venue)
#   submitted -> failed     the venue has no record of it after all (reconciliation)
#   partial   -> filled     the remainder filled
#   partial   -> cancelled  the remainder was cancelled; the filled part stays
ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    OrderStatus.PENDING: frozenset(
        {OrderStatus.SUBMITTED, OrderStatus.FAILED, OrderStatus.CANCELLED}
    ),
    OrderStatus.SUBMITTED: frozenset(
        {OrderStatus.PARTIAL, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.FAILED}
    ),
    OrderStatus.PARTIAL: frozenset({OrderStatus.FILLED, OrderStatus.CANCELLED}),
    OrderStatus.FILLED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.FAILED: frozenset(),
}
FINAL_STATUSES = frozenset(s for s, moves in ORDER_TRANSITIONS.items() if not moves)
OPEN_STATUSES = frozenset({OrderStatus.SUBMITTED, OrderStatus.PARTIAL})
# The timestamp column each status sets when the order enters it.
STATUS_TIMESTAMPS: dict[str, str] = {
    OrderStatus.SUBMITTED: "submitted_at",
    OrderStatus.FILLED: "filled_at",
    OrderStatus.CANCELLED: "cancelled_at",
    OrderStatus.FAILED: "failed_at",
}


def transition_is_legal(current: str, new: str) -> bool:
    return new in ORDER_TRANSITIONS.get(current, frozenset())


class Order(models.Model):
    """An order for a user's account on a venue (seed 000 ``orders``), copy trade or manual.

    ``cloid`` is generated when the row is written, before any send, and is how a lost response
    is resolved: the execution task asks the venue about the cloid instead of sending again.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # PROTECT rather than the seed's CASCADE/SET NULL: orders are financial records kept for
    # seven years (seed 002 §4.2); users are closed and agent wallets revoked, not deleted.
    user = models.ForeignKey("accounts.User", on_delete=models.PROTECT, related_name="orders")
    agent_wallet = models.ForeignKey(
        "accounts.AgentWallet", on_delete=models.PROTECT, related_name="orders"
    )
    strategy = models.ForeignKey(
        "copytrade.CopyStrategy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="orders",
    )
    symbol = models.ForeignKey("trading.Symbol", on_delete=models.PROTECT, related_name="orders")
    exchange = models.CharField("venue", max_length=32)

    side = models.CharField(max_length=4, choices=OrderSide.choices)
    order_type = models.CharField(max_length=16, choices=OrderType.choices)
    time_in_force = models.CharField(
        max_length=3, choices=TimeInForce.choices, default=TimeInForce.GTC
    )
    reduce_only = models.BooleanField(default=False)
    leverage = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)

    quantity = models.DecimalField(max_digits=18, decimal_places=8)
    price = models.DecimalField(
        max_digits=18,
        decimal_places=8,
        null=True,
        blank=True,
        help_text="Limit price; empty for market orders.",
    )
    trigger_price = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    # The limit actually sent: a market order goes out as an IOC limit at the mark plus the
    # allowed slippage, rounded to the venue's rules.
    submitted_price = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    filled_quantity = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))
    average_price = models.DecimalField(max_digits=18, decimal_places=8, null=True, blank=True)
    fees = models.DecimalField(max_digits=18, decimal_places=8, default=Decimal(0))

    status = models.CharField(
        max_length=16, choices=OrderStatus.choices, default=OrderStatus.PENDING
    )
    cloid = models.CharField(
        "client order id", max_length=34, unique=True, default=new_cloid, editable=False
    )
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    exchange_order_id = models.CharField("venue order id", max_length=64, null=True, blank=True)
    venue_status = models.CharField(max_length=32, blank=True, default="")
    venue_status_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=64, null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    first_fill_at = models.DateTimeField(null=True, blank=True)
    filled_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    cancel_requested_at = models.DateTimeField(null=True, blank=True)

    # Copy trading context
    is_copy_trade = models.BooleanField(default=False)
    source_trader = models.ForeignKey(
        "copytrade.Trader",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="copied_orders",
    )
    source_event_id = models.CharField(max_length=128, null=True, blank=True)

    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "orders"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="orders_user_created_idx"),
            models.Index(fields=["strategy"], name="orders_strategy_idx"),
            models.Index(fields=["agent_wallet"], name="orders_agent_wallet_idx"),
            models.Index(fields=["symbol"], name="orders_symbol_idx"),
            models.Index(fields=["status"], name="orders_status_idx"),
            models.Index(fields=["-created_at"], name="orders_created_at_idx"),
            models.Index(fields=["source_trader"], name="orders_source_trader_idx"),
            models.Index(fields=["exchange", "exchange_order_id"], name="orders_venue_oid_idx"),
            # Reconciliation and the sweeper look only at orders still in flight.
            models.Index(
                fields=["agent_wallet", "status"],
                name="orders_open_idx",
                condition=Q(status__in=["pending", "submitted", "partial"]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="chk_quantity_positive"),
            models.CheckConstraint(condition=Q(side__in=OrderSide.values), name="chk_side_valid"),
            models.CheckConstraint(
                condition=Q(order_type__in=OrderType.values), name="chk_order_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=OrderStatus.values), name="chk_order_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(time_in_force__in=TimeInForce.values), name="chk_order_tif_valid"
            ),
            models.CheckConstraint(
                condition=Q(exchange__regex=VENUE_REGEX), name="chk_order_exchange_format"
            ),
            models.CheckConstraint(
                condition=Q(filled_quantity__gte=0) & Q(filled_quantity__lte=F("quantity")),
                name="chk_filled_quantity_range",
            ),
            models.CheckConstraint(
                condition=Q(price__isnull=True) | Q(price__gt=0), name="chk_order_price_positive"
            ),
            models.CheckConstraint(
                condition=~Q(order_type__in=[OrderType.LIMIT, OrderType.STOP_LIMIT])
                | Q(price__isnull=False),
                name="chk_order_limit_has_price",
            ),
            models.CheckConstraint(
                condition=~Q(order_type__in=[OrderType.STOP, OrderType.STOP_LIMIT])
                | Q(trigger_price__isnull=False, trigger_price__gt=0),
                name="chk_order_stop_has_trigger",
            ),
            models.CheckConstraint(
                condition=Q(leverage__isnull=True) | Q(leverage__gt=0),
                name="chk_order_leverage_positive",
            ),
            models.CheckConstraint(
                condition=Q(cloid__regex=CLOID_REGEX), name="chk_order_cloid_format"
            ),
            # The status and the quantities agree.
            models.CheckConstraint(
                condition=~Q(
                    status__in=[OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.FAILED]
                )
                | Q(filled_quantity=0),
                name="chk_order_unfilled_statuses",
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.PARTIAL)
                | (Q(filled_quantity__gt=0) & Q(filled_quantity__lt=F("quantity"))),
                name="chk_order_partial_quantity",
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.FILLED) | Q(filled_quantity=F("quantity")),
                name="chk_order_filled_quantity",
            ),
            models.CheckConstraint(
                condition=Q(filled_quantity=0)
                | Q(average_price__isnull=False, average_price__gt=0),
                name="chk_order_average_price",
            ),
            # Every move is timestamped.
            models.CheckConstraint(
                condition=~Q(
                    status__in=[OrderStatus.SUBMITTED, OrderStatus.PARTIAL, OrderStatus.FILLED]
                )
                | Q(submitted_at__isnull=False),
                name="chk_order_submitted_at",
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.FILLED) | Q(filled_at__isnull=False),
                name="chk_order_filled_at",
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.CANCELLED) | Q(cancelled_at__isnull=False),
                name="chk_order_cancelled_at",
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.FAILED) | Q(failed_at__isnull=False),
                name="chk_order_failed_at",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="orders_user_idempotency_key_uniq",
            ),
            models.UniqueConstraint(
                fields=["exchange", "exchange_order_id"],
                condition=Q(exchange_order_id__isnull=False),
                name="orders_venue_order_id_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity.normalize()} {self.symbol_id} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def remaining_quantity(self) -> Decimal:
        return self.quantity - self.filled_quantity


class OrderEventKind(models.TextChoices):
    CREATED = "created", "Created"
    # Written by the database trigger on every status change, whoever made it.
    TRANSITION = "transition", "Status changed"
    SUBMIT_ATTEMPT = "submit_attempt", "Submit attempt"
    VENUE_ACK = "venue_ack", "Venue acknowledged"
    VENUE_REJECT = "venue_reject", "Venue rejected"
    VENUE_ERROR = "venue_error", "Venue error (will retry)"
    LOOKUP = "lookup", "Looked up by cloid"
    FILL = "fill", "Fill"
    CANCEL_REQUESTED = "cancel_requested", "Cancel requested"
    RECONCILED = "reconciled", "Repaired by reconciliation"
    IGNORED = "ignored", "Stale venue event ignored"


class OrderEvent(models.Model):
    """Append-only history of an order: every status move (by trigger) and venue exchange."""

    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32, choices=OrderEventKind.choices)
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, blank=True, default="")
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "order_events"
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"], name="order_events_order_idx")]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}->{self.to_status}".strip()


class OutboxKind(models.TextChoices):
    SUBMIT = "submit", "Submit to venue"
    CANCEL = "cancel", "Cancel at venue"


class OrderOutbox(models.Model):
    """Work that must reach the venue, written in the same transaction as the order change.

    A worker *claims* a row (``claimed_until``, a lease) before talking to the venue, so two
    workers never submit one order at once; a worker that dies leaves the lease to expire and
    the sweeper dispatches the row again. ``attempts`` counts claims: any attempt after the
    first asks the venue about the cloid before sending anything.
    """

    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="outbox")
    kind = models.CharField(max_length=16, choices=OutboxKind.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    available_at = models.DateTimeField()
    attempts = models.PositiveIntegerField(default=0)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.UUIDField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "order_outbox"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["available_at"],
                name="order_outbox_due_idx",
                condition=Q(done_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=OutboxKind.values), name="order_outbox_kind_valid"
            ),
            models.UniqueConstraint(
                fields=["order", "kind"],
                condition=Q(done_at__isnull=True),
                name="order_outbox_one_pending_per_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.order_id} (attempt {self.attempts})"
