"""Constraints that live in PostgreSQL: the order state machine trigger, status/quantity
consistency, uniqueness. Each test writes what the services never would and expects refusal."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from trading.models import (
    ORDER_TRANSITIONS,
    Order,
    OrderEvent,
    OrderStatus,
    Position,
    PositionSide,
    new_cloid,
)
from trading.tests.factories import OrderFactory, SymbolFactory

pytestmark = pytest.mark.django_db


def _set(order: Order, **values: Any) -> None:
    """An UPDATE straight through SQL, as a buggy path (or a person in psql) would do."""
    assignments = ", ".join(f"{column} = %s" for column in values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE orders SET {assignments} WHERE id = %s",
            [*list(values.values()), order.pk],
        )


def test_the_database_guard_knows_the_code_state_machine() -> None:
    import importlib

    migration = importlib.import_module("trading.migrations.0002_order_state_guard")
    in_code = {(a, b) for a, moves in ORDER_TRANSITIONS.items() for b in moves}
    assert set(migration.TRANSITIONS) == in_code
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_functiondef('orders_guard'::regproc)")
        source = cursor.fetchone()[0]
    assert all(f"'{a}>{b}'" in source for a, b in in_code)


def test_every_illegal_move_is_refused_by_the_database() -> None:
    now = timezone.now()
    legal = {(a, b) for a, moves in ORDER_TRANSITIONS.items() for b in moves}
    statuses = list(OrderStatus.values)
    # Reach each status legally (through SQL), then try every move out of it.
    paths = {
        "pending": [],
        "submitted": ["submitted"],
        "partial": ["submitted", "partial"],
        "filled": ["submitted", "filled"],
        "cancelled": ["cancelled"],
        "failed": ["failed"],
    }
    for start in statuses:
        for target in statuses:
            if target == start:
                continue
            order = OrderFactory.create(quantity=Decimal(2))
            for step in paths[start]:
                _set(
                    order,
                    status=step,
                    submitted_at=now,
                    filled_at=now,
                    cancelled_at=now,
                    failed_at=now,
                    filled_quantity=Decimal(1)
                    if step == "partial"
                    else Decimal(2)
                    if step == "filled"
                    else Decimal(0),
                    average_price=Decimal(100) if step in ("partial", "filled") else None,
                )
            filled = {"partial": Decimal(1), "filled": Decimal(2)}.get(target, Decimal(0))
            if start in ("partial", "filled") and target in ("cancelled",):
                filled = Decimal(1) if start == "partial" else Decimal(2)
            values = {
                "status": target,
                "submitted_at": now,
                "filled_at": now,
                "cancelled_at": now,
                "failed_at": now,
                "filled_quantity": filled,
                "average_price": Decimal(100) if filled else None,
            }
            if (start, target) in legal:
                with transaction.atomic():
                    _set(order, **values)
            else:
                with pytest.raises(IntegrityError), transaction.atomic():
                    _set(order, **values)


def test_orders_are_created_pending_only() -> None:
    symbol = SymbolFactory.create()
    with pytest.raises(IntegrityError, match="must be created pending"), transaction.atomic():
        OrderFactory.create(
            symbol=symbol,
            status=OrderStatus.FILLED,
            filled_quantity=Decimal(1),
            average_price=Decimal(1),
            submitted_at=timezone.now(),
            filled_at=timezone.now(),
        )


def test_filled_quantity_never_goes_down_and_the_order_never_changes() -> None:
    now = timezone.now()
    order = OrderFactory.create(quantity=Decimal(3))
    _set(order, status="submitted", submitted_at=now)
    _set(order, status="partial", filled_quantity=Decimal(2), average_price=Decimal(100))
    with pytest.raises(IntegrityError, match="cannot go down"), transaction.atomic():
        _set(order, filled_quantity=Decimal(1))
    for column, value in (("quantity", Decimal(5)), ("side", "sell"), ("cloid", new_cloid())):
        with pytest.raises(IntegrityError, match="cannot change"), transaction.atomic():
            _set(order, **{column: value})


def test_status_and_quantities_must_agree() -> None:
    now = timezone.now()
    order = OrderFactory.create(quantity=Decimal(3))
    _set(order, status="submitted", submitted_at=now)
    with pytest.raises(IntegrityError), transaction.atomic():  # partial without a fill
        _set(order, status="partial")
    with pytest.raises(IntegrityError), transaction.atomic():  # filled short of the quantity
        _set(
            order,
            status="filled",
            filled_at=now,
            filled_quantity=Decimal(1),
            average_price=Decimal(1),
        )
    with pytest.raises(IntegrityError), transaction.atomic():  # filled with no timestamp
        _set(order, status="filled", filled_quantity=Decimal(3), average_price=Decimal(1))
    with pytest.raises(IntegrityError), transaction.atomic():  # more than ordered
        _set(order, status="partial", filled_quantity=Decimal(4), average_price=Decimal(1))


def test_every_move_is_recorded_by_the_trigger() -> None:
    now = timezone.now()
    order = OrderFactory.create(quantity=Decimal(3))
    _set(order, status="submitted", submitted_at=now)
    _set(order, status="partial", filled_quantity=Decimal(1), average_price=Decimal(1))
    _set(order, status="cancelled", cancelled_at=now)
    moves = list(
        OrderEvent.objects.filter(order=order)
        .order_by("id")
        .values_list("kind", "from_status", "to_status")
    )
    assert moves == [
        ("created", "", "pending"),
        ("transition", "pending", "submitted"),
        ("transition", "submitted", "partial"),
        ("transition", "partial", "cancelled"),
    ]


def test_cloid_format_and_uniqueness() -> None:
    order = OrderFactory.create()
    assert order.cloid.startswith("0x")
    assert len(order.cloid) == 34
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory.create(cloid="not-a-cloid")
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory.create(cloid=order.cloid)


def test_idempotency_key_is_unique_per_user_only() -> None:
    first = OrderFactory.create(idempotency_key="k-1")
    OrderFactory.create(idempotency_key="k-1")  # another user may use the same key
    OrderFactory.create(user=first.user, idempotency_key=None)
    OrderFactory.create(user=first.user, idempotency_key=None)  # NULLs never collide
    with pytest.raises(IntegrityError), transaction.atomic():
        OrderFactory.create(user=first.user, idempotency_key="k-1")


def test_order_shape_constraints() -> None:
    for values in (
        {"quantity": Decimal(0)},
        {"quantity": Decimal(-1)},
        {"order_type": "limit", "price": None},
        {"side": "hold"},
        {"order_type": "stop", "trigger_price": None, "price": None},
        {"time_in_force": "Fok"},
        {"leverage": Decimal(0)},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            OrderFactory.create(**values)


def test_position_side_must_match_its_quantity() -> None:
    order = OrderFactory.create()
    position = Position.objects.create(
        user=order.user, agent_wallet=order.agent_wallet, symbol=order.symbol, exchange="paper"
    )
    assert position.side == PositionSide.FLAT
    for values in (
        {"quantity": Decimal(1), "side": "short", "entry_price": Decimal(1)},
        {"quantity": Decimal(1), "side": "long", "entry_price": Decimal(0)},
        {"quantity": Decimal(0), "side": "long"},
    ):
        with pytest.raises(IntegrityError), transaction.atomic():
            Position.objects.filter(pk=position.pk).update(**values)
    with pytest.raises(IntegrityError), transaction.atomic():
        Position.objects.create(
            user=order.user, agent_wallet=order.agent_wallet, symbol=order.symbol, exchange="paper"
        )
    Position.objects.filter(pk=position.pk).update(
        realized_pnl=Decimal(5), fees_paid=Decimal("0.5")
    )
    position.refresh_from_db()
    assert position.net_realized_pnl == Decimal("4.5")
