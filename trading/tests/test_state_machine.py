"""Acceptance (a): random venue event sequences never break the order state machine.

A model venue decides what really happens to one order (accepted or refused, filled in random
slices, cancelled), and every message it sends is delivered to Tandem's services late, out of
order, twice, or not yet -- as a network and a venue's websocket really behave. After every
step: no illegal state, never more filled than ordered (or than the venue really filled), a
status never ahead of the venue's truth, and every recorded move legal. Once every message is
delivered, Tandem's order and position equal the venue's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.tests.factories import AgentWalletFactory, UserFactory
from trading.exchanges import VenueFill, VenueOrder, VenueOrderStatus
from trading.models import ORDER_TRANSITIONS, Order, OrderEvent, OrderStatus, Position
from trading.services import fills_apply, order_cancel
from trading.services.execution import venue_news
from trading.services.state import order_settle
from trading.tests.factories import OrderFactory, SymbolFactory

D = Decimal
_fill_ids = itertools.count(1)
_order_ids = itertools.count(1)


@dataclass(frozen=True)
class Message:
    kind: str  # "order" | "fill"
    order: VenueOrder | None = None
    fill: VenueFill | None = None


class VenueEventsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.outbox: list[Message] = []  # sent by the venue, not delivered yet
        self.delivered: list[Message] = []
        self.venue_status = "none"  # none | open | filled | cancelled | rejected
        self.venue_filled = D(0)
        self.locally_cancelled = False

    @initialize(lots=st.integers(min_value=1, max_value=40))
    def place(self, lots: int) -> None:
        user = UserFactory.create()
        self.wallet = AgentWalletFactory.create(user=user, exchange="paper")
        self.symbol = SymbolFactory.create(name="SM", sz_decimals=1)
        self.quantity = D(lots) / 10
        self.order = OrderFactory.create(
            user=user,
            agent_wallet=self.wallet,
            symbol=self.symbol,
            quantity=self.quantity,
            price=D(100),
        )
        self.venue_order_id = f"sm-order-{next(_order_ids)}"

    # ---------------------------------------------------------------- the venue decides
    def _status_message(self) -> Message:
        status = {
            "open": VenueOrderStatus.OPEN,
            "filled": VenueOrderStatus.FILLED,
            "cancelled": VenueOrderStatus.CANCELLED,
            "rejected": VenueOrderStatus.REJECTED,
        }[self.venue_status]
        return Message(
            "order",
            order=VenueOrder(
                cloid=self.order.cloid,
                venue_order_id=self.venue_order_id,
                symbol="SM",
                side="buy",
                status=status,
                size=self.quantity,
                filled_size=self.venue_filled,
                average_price=D(100) if self.venue_filled else None,
            ),
        )

    @precondition(lambda self: self.venue_status == "none" and not self.locally_cancelled)
    @rule()
    def venue_accepts(self) -> None:
        self.venue_status = "open"
        self.outbox.append(self._status_message())

    @precondition(lambda self: self.venue_status == "none" and not self.locally_cancelled)
    @rule()
    def venue_rejects(self) -> None:
        self.venue_status = "rejected"
        self.outbox.append(self._status_message())

    @precondition(lambda self: self.venue_status == "open")
    @rule(share=st.integers(min_value=1, max_value=10), report_status=st.booleans())
    def venue_fills(self, share: int, report_status: bool) -> None:
        remaining = self.quantity - self.venue_filled
        size = max(min((remaining * share / 10).quantize(D("0.1")), remaining), D("0.1"))
        self.venue_filled += size
        fill = VenueFill(
            venue_fill_id=f"sm-{next(_fill_ids)}",
            symbol="SM",
            side="buy",
            price=D(100),
            size=size,
            time_ms=1_700_000_000_000 + len(self.outbox),
            fee=D("0.01"),
            venue_order_id=self.venue_order_id,
            cloid=self.order.cloid,
        )
        self.outbox.append(Message("fill", fill=fill))
        if self.venue_filled == self.quantity:
            self.venue_status = "filled"
        if report_status or self.venue_status == "filled":
            self.outbox.append(self._status_message())

    @precondition(lambda self: self.venue_status == "open")
    @rule()
    def venue_cancels(self) -> None:
        self.venue_status = "cancelled"
        self.outbox.append(self._status_message())

    @precondition(lambda self: self.venue_status == "none" and not self.locally_cancelled)
    @rule()
    def customer_cancels_before_sending(self) -> None:
        order_cancel(order=self.order, reason="test")
        self.locally_cancelled = True

    # ---------------------------------------------------------------- the network delivers
    def _deliver(self, message: Message) -> None:
        if message.kind == "fill":
            assert message.fill is not None
            fills_apply(agent_wallet=self.wallet, fills=[message.fill])
        else:
            assert message.order is not None
            with transaction.atomic():
                order = Order.objects.select_for_update().get(pk=self.order.pk)
                order_settle(order, venue_news(message.order), now=timezone.now())

    @precondition(lambda self: bool(self.outbox))
    @rule(data=st.data())
    def deliver_any(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(self.outbox) - 1))
        message = self.outbox.pop(index)
        self._deliver(message)
        self.delivered.append(message)

    @precondition(lambda self: bool(self.delivered))
    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        index = data.draw(st.integers(min_value=0, max_value=len(self.delivered) - 1))
        self._deliver(self.delivered[index])

    @rule()
    def time_passes(self) -> None:
        """Nothing happens (keeps the machine going once the venue has said its last word)."""

    # ---------------------------------------------------------------- what must always hold
    @invariant()
    def never_illegal_nor_overfilled(self) -> None:
        if not hasattr(self, "order"):
            return
        order = Order.objects.get(pk=self.order.pk)
        assert order.status in OrderStatus.values
        assert D(0) <= order.filled_quantity <= order.quantity
        assert order.filled_quantity <= self.venue_filled  # never believes more than happened
        truth: set[str] = {
            str(OrderStatus.FILLED): {"filled"},
            str(OrderStatus.FAILED): {"rejected"},
            str(OrderStatus.PARTIAL): {"open", "filled", "cancelled"},
            str(OrderStatus.SUBMITTED): {"open", "filled", "cancelled"},
            str(OrderStatus.CANCELLED): {"cancelled"}
            | ({"none"} if self.locally_cancelled else set()),
            str(OrderStatus.PENDING): {"none", "open", "filled", "cancelled", "rejected"},
        }[order.status]
        assert self.venue_status in truth, (order.status, self.venue_status)
        for kind, old, new in OrderEvent.objects.filter(order=order).values_list(
            "kind", "from_status", "to_status"
        ):
            if kind == "transition":
                assert new in ORDER_TRANSITIONS[old], (old, new)

    def teardown(self) -> None:
        if not hasattr(self, "order"):
            return
        for message in self.outbox:  # everything still in flight arrives, at last
            self._deliver(message)
        order = Order.objects.get(pk=self.order.pk)
        expected = {
            "none": OrderStatus.CANCELLED if self.locally_cancelled else OrderStatus.PENDING,
            "open": OrderStatus.PARTIAL if self.venue_filled else OrderStatus.SUBMITTED,
            "filled": OrderStatus.FILLED,
            "cancelled": OrderStatus.CANCELLED,
            "rejected": OrderStatus.FAILED,
        }[self.venue_status]
        assert order.status == expected
        assert order.filled_quantity == self.venue_filled
        position = Position.objects.filter(agent_wallet=self.wallet).first()
        assert (position.quantity if position else D(0)) == self.venue_filled
        if self.venue_filled:
            assert order.average_price == D(100)


@pytest.mark.django_db
def test_random_venue_events_never_reach_an_illegal_state() -> None:
    run_state_machine_as_test(
        VenueEventsMachine,
        settings=settings(
            max_examples=120,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_machine_definition_covers_every_status() -> None:
    reached: set[str] = set()
    for old, moves in ORDER_TRANSITIONS.items():
        reached |= moves | {old}
    assert reached == set(OrderStatus.values)
