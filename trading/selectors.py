"""Trading: every read. Customer reads are scoped to the acting user (another user's object is
"not found"); the few system reads used by beat tasks say so in their names."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone

from config.errors import NotFound
from trading.marketdata import BookTop, PriceSnapshot, book_get, price_get
from trading.models import (
    OPEN_STATUSES,
    Fill,
    Order,
    OrderStatus,
    Position,
    RiskEvent,
    Symbol,
    SymbolStatus,
)

if TYPE_CHECKING:
    from accounts.models import AgentWallet, User


# --------------------------------------------------------------------------- market data


def latest_price(*, exchange: str, symbol: str) -> PriceSnapshot | None:
    """The latest published price of a market (Redis ``price:{exchange}:{symbol}``)."""
    return price_get(exchange, symbol)


def latest_book(*, exchange: str, symbol: str) -> BookTop | None:
    return book_get(exchange, symbol)


def symbol_list(*, venue: str | None = None, active_only: bool = True) -> QuerySet[Symbol]:
    symbols = Symbol.objects.all()
    if venue:
        symbols = symbols.filter(venue=venue)
    if active_only:
        symbols = symbols.filter(status=SymbolStatus.ACTIVE)
    return symbols


# --------------------------------------------------------------------------- customer reads


def order_list(*, user: User) -> QuerySet[Order]:
    return Order.objects.filter(user=user).select_related("symbol", "agent_wallet")


def order_get(*, user: User, order_id: uuid.UUID | str) -> Order:
    try:
        return order_list(user=user).get(pk=order_id)
    except (Order.DoesNotExist, ValueError, TypeError, DjangoValidationError) as exc:
        raise NotFound("Order not found.", field="order") from exc


def order_events(*, order: Order) -> QuerySet:
    return order.events.order_by("created_at", "id")


def fill_list(*, user: User) -> QuerySet[Fill]:
    return Fill.objects.filter(user=user).select_related("symbol", "order")


def position_list(*, user: User, is_open: bool | None = None) -> QuerySet[Position]:
    positions = Position.objects.filter(user=user).select_related("symbol", "agent_wallet")
    if is_open is True:
        positions = positions.exclude(quantity=0)
    elif is_open is False:
        positions = positions.filter(quantity=0)
    return positions


def risk_event_list(*, user: User) -> QuerySet[RiskEvent]:
    return RiskEvent.objects.filter(user=user)


def open_orders_count(*, user: User) -> int:
    return Order.objects.filter(user=user, status__in=OPEN_STATUSES).count()


# --------------------------------------------------------------------------- system reads


def agent_wallet_ids_to_reconcile(*, active_within: timedelta = timedelta(days=7)) -> list[str]:
    """System scope (beat): wallets with an open position, an order in flight, or recent
    trading -- the ones whose venue state can have drifted from Tandem's."""
    since = timezone.now() - active_within
    from_orders = (
        Order.objects.filter(
            Q(status__in=[OrderStatus.PENDING, *OPEN_STATUSES]) | Q(created_at__gte=since)
        )
        .order_by()
        .values_list("agent_wallet_id", flat=True)
    )
    from_positions = (
        Position.objects.exclude(quantity=0).order_by().values_list("agent_wallet_id", flat=True)
    )
    return sorted({str(pk) for pk in from_orders.union(from_positions)})


def agent_wallet_for_system(*, agent_wallet_id: uuid.UUID | str) -> AgentWallet:
    """System scope (beat tasks, commands): the wallet with its user, whoever owns it."""
    from accounts.models import AgentWallet

    try:
        return AgentWallet.objects.select_related("user").get(pk=agent_wallet_id)
    except (AgentWallet.DoesNotExist, ValueError) as exc:
        raise NotFound("Agent wallet not found.", field="agent_wallet") from exc
