"""Live account events are published from the instances the services saved, not read back: they
must still say exactly what the database says afterwards (the REST serializers' shapes), come
in the order things happened, and a fill the order path published is not published again by
the fill listener."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from config import streams
from trading.api.serializers import FillSerializer, OrderSerializer, PositionSerializer
from trading.exchanges import VenueFill
from trading.live import fills_published
from trading.models import Fill, Order, OrderStatus, Position
from trading.services import fills_apply, order_create
from trading.tests.factories import OrderFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("paper_symbols", "market")]


def _as_published(data: Any) -> Any:
    """What a payload looks like once it has been through the stream's JSON."""
    return json.loads(json.dumps(data, cls=streams.StreamEncoder))


def _account_events(user: Any) -> list[dict[str, Any]]:
    events = streams.backlog_since(streams.account_stream(user.pk), 0)
    assert events is not None
    return events


def test_published_order_fill_and_position_equal_the_database(
    trader: Any,
    settings: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.TANDEM = {**settings.TANDEM, "FILL_LISTENERS": ["trading.live.fills_published"]}
    with django_capture_on_commit_callbacks(execute=True):
        created = order_create(user=trader, symbol="ETH", side="buy", quantity=Decimal("0.5"))

    order = Order.objects.select_related("symbol").get(pk=created.order.pk)
    assert order.status == OrderStatus.FILLED
    fill = Fill.objects.select_related("symbol").get(order=order)
    position = Position.objects.select_related("symbol").get(pk=fill.position_id)

    events = _account_events(trader)
    # pending (at create), then what the venue made of it, then its fill and the position --
    # each exactly once (the listener does not send the fill again).
    assert [(e["type"], e["data"].get("status")) for e in events] == [
        ("order", "pending"),
        ("order", "filled"),
        ("fill", None),
        ("position", None),
    ]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == len(seqs)
    assert events[1]["data"] == _as_published(OrderSerializer(order).data)
    assert events[2]["data"] == _as_published(FillSerializer(fill).data)
    assert events[3]["data"] == _as_published(PositionSerializer(position).data)


def test_fill_listener_publishes_fills_it_was_not_handed(trader: Any, wallet: Any) -> None:
    """A fill written outside the order path (another process, an import) still reaches the
    owner through the listener, read from the database."""
    order = OrderFactory.create(user=trader, agent_wallet=wallet)
    fills_apply(
        agent_wallet=wallet,
        fills=[
            VenueFill(
                venue_fill_id="listener-1",
                symbol=order.symbol.address,
                side="buy",
                price=Decimal(2500),
                size=Decimal("0.1"),
                time_ms=1_700_000_000_000,
                fee=Decimal("0.1"),
                cloid=order.cloid,
            )
        ],
    )  # in the test's transaction: nothing committed, so nothing published yet
    fills = Fill.objects.filter(venue_fill_id="listener-1")
    before = len(_account_events(trader))
    fills_published([f.pk for f in fills])
    published = _account_events(trader)[before:]
    assert [e["type"] for e in published] == ["fill", "position"]
    assert published[0]["data"]["venue_fill_id"] == "listener-1"
