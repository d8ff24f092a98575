"""The order state machine as the services drive it.

Every status change goes through :func:`order_settle`, which takes what is now known about an
order (acknowledged by the venue? how much filled? did the venue end it?) and walks the order
there through *legal* moves only, one UPDATE per move, because the database trigger checks each
UPDATE's old and new status against ``order_status_transitions``. Knowledge only ever grows:
the filled quantity never goes down, a final status never changes, and news older than the
order's state (a late "resting" after "filled", a duplicate) changes nothing. That is what makes
venue events safe to apply twice, late, or out of order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from config.errors import Conflict
from trading import live
from trading.models import (
    STATUS_TIMESTAMPS,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderStatus,
    transition_is_legal,
)
from trading.pnl import q8

ZERO = Decimal(0)


class IllegalOrderTransition(Conflict):
    default_code = "illegal_order_transition"


@dataclass(frozen=True)
class VenueNews:
    """What one venue message says about an order. ``None`` means "says nothing about it"."""

    acknowledged: bool = False
    filled: Decimal | None = None  # cumulative filled size
    average_price: Decimal | None = None
    ended: str | None = None  # OrderStatus.CANCELLED or OrderStatus.FAILED
    error_code: str | None = None
    error_message: str | None = None
    venue_order_id: str | None = None
    venue_status: str | None = None
    fees: Decimal | None = None


def order_move(
    order: Order,
    to: str,
    *,
    now: datetime,
    also: dict[str, Any] | None = None,
) -> None:
    """One legal status move, saved at once (with ``also``'s fields in the same UPDATE)."""
    if not transition_is_legal(order.status, to):
        raise IllegalOrderTransition(
            f"An order cannot go from {order.status} to {to}.", field="status"
        )
    fields = {"status", "updated_at"}
    order.status = to
    stamp = STATUS_TIMESTAMPS.get(to)
    if stamp and getattr(order, stamp) is None:
        setattr(order, stamp, now)
        fields.add(stamp)
    for name, value in (also or {}).items():
        setattr(order, name, value)
        fields.add(name)
    order.save(update_fields=sorted(fields))
    live.order_changed(order)


def _route(order: Order, target: str, *, acknowledged: bool, filled: Decimal) -> list[str]:
    path: list[str] = []
    current = order.status
    reached_venue = acknowledged or filled > 0
    if current == OrderStatus.PENDING and (
        target in (OrderStatus.PARTIAL, OrderStatus.FILLED)
        or (target == OrderStatus.CANCELLED and reached_venue)
        or target == OrderStatus.SUBMITTED
    ):
        path.append(OrderStatus.SUBMITTED)
        current = OrderStatus.SUBMITTED
    if target == OrderStatus.CANCELLED and filled > 0 and current == OrderStatus.SUBMITTED:
        path.append(OrderStatus.PARTIAL)
    if target not in path and target != order.status:
        path.append(target)
    return path


def _target(order: Order, news: VenueNews, filled: Decimal) -> str:
    if order.is_final:
        return order.status
    if filled >= order.quantity:
        return OrderStatus.FILLED
    if news.ended == OrderStatus.FAILED:
        return OrderStatus.FAILED if filled == 0 else OrderStatus.CANCELLED
    if news.ended == OrderStatus.CANCELLED:
        return OrderStatus.CANCELLED
    if filled > 0:
        return OrderStatus.PARTIAL
    if news.acknowledged or order.status == OrderStatus.SUBMITTED:
        return OrderStatus.SUBMITTED
    return order.status


def order_settle(
    order: Order,
    news: VenueNews,
    *,
    now: datetime,
    event: OrderEventKind | None = None,
    details: dict[str, Any] | None = None,
    also: dict[str, Any] | None = None,
) -> bool:
    """Bring ``order`` (locked by the caller) up to date with ``news``. Returns True if it
    changed. Never raises for stale news; raises only if the code asks for an illegal move."""
    filled = order.filled_quantity
    known_price = news.average_price or order.average_price
    if news.filled is not None and news.filled > filled and known_price:
        # A filled quantity is only taken with a price to go with it; a bare "N filled" waits
        # for the fills themselves (which always carry prices).
        filled = min(news.filled, order.quantity)
    if order.status == OrderStatus.FAILED:
        filled = ZERO  # a refused order has no fills to show; the fill itself is still kept
    target = _target(order, news, filled)

    quantities: dict[str, Any] = {}
    if filled != order.filled_quantity and order.status != OrderStatus.FAILED:
        quantities["filled_quantity"] = filled
        if news.average_price is not None:
            quantities["average_price"] = q8(news.average_price)
        if order.first_fill_at is None:
            quantities["first_fill_at"] = now
    elif (
        news.average_price is not None
        and filled > 0
        and order.average_price != q8(news.average_price)
    ):
        quantities["average_price"] = q8(news.average_price)
    if news.fees is not None and news.fees != order.fees and order.status != OrderStatus.FAILED:
        quantities["fees"] = q8(news.fees)
    identity: dict[str, Any] = {
        name: value for name, value in (also or {}).items() if getattr(order, name) != value
    }
    if news.venue_order_id and order.exchange_order_id != news.venue_order_id:
        identity["exchange_order_id"] = news.venue_order_id
    if news.venue_status and news.venue_status != order.venue_status:
        identity["venue_status"] = news.venue_status
        identity["venue_status_at"] = now
    if target == OrderStatus.FAILED:
        identity["error_code"] = (news.error_code or "rejected")[:64]
        identity["error_message"] = news.error_message or ""

    path = _route(order, target, acknowledged=news.acknowledged, filled=filled)
    changed = False
    for step in path:
        also = dict(identity)
        identity = {}
        if step in (OrderStatus.PARTIAL, OrderStatus.FILLED) or (
            step == OrderStatus.CANCELLED and quantities
        ):
            also.update(quantities)
            quantities = {}
        order_move(order, step, now=now, also=also)
        changed = True
    leftover = {**identity, **quantities}
    if leftover:
        for name, value in leftover.items():
            setattr(order, name, value)
        order.save(update_fields=sorted({*leftover, "updated_at"}))
        live.order_changed(order)
        changed = True
    if event is not None:
        OrderEvent.objects.create(order=order, kind=event, details=details or {})
    return changed
