"""fills_apply and positions, through the services and the database: hand-computed PnL with
fees, replays, late fills, positions changed behind Tandem's back, closing and reopening,
marking to market."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from trading.exchanges import VenueFill, VenuePosition
from trading.models import Fill, Position, RiskEvent, RiskEventType
from trading.services import (
    fills_apply,
    position_mark,
    position_mark_all,
    position_set_from_venue,
)
from trading.services.hooks import register_fill_listener, unregister_fill_listener

D = Decimal
T0 = 1_700_000_000_000
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("paper_symbols")]


def fill(
    n: int,
    side: str,
    size: str,
    price: str,
    *,
    fee: str = "0",
    start: str | None = None,
    closed: str | None = None,
    symbol: str = "ETH",
    time_ms: int | None = None,
) -> VenueFill:
    return VenueFill(
        venue_fill_id=f"f{n}",
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        price=D(price),
        size=D(size),
        time_ms=time_ms or T0 + n * 1000,
        fee=D(fee),
        start_position=D(start) if start is not None else None,
        closed_pnl=D(closed) if closed is not None else None,
    )


def _position(wallet: Any, symbol: str = "ETH") -> Position:
    return Position.objects.get(agent_wallet=wallet, symbol__name=symbol)


def test_hand_computed_lifecycle_through_the_service(wallet: Any) -> None:
    """open, add, partial close, full close, reopen short, flip -- one batch per fill, fees
    4.5 bps, PnL computed by Tandem (no closedPnl from the venue)."""
    steps = [
        (fill(1, "buy", "2", "100", fee="0.09"), D(2), D(100), D(0)),
        (fill(2, "buy", "1", "130", fee="0.0585"), D(3), D(110), D(0)),
        (fill(3, "sell", "1", "140", fee="0.063"), D(2), D(110), D(30)),
        (fill(4, "sell", "2", "90", fee="0.081"), D(0), D(0), D(-10)),
        (fill(5, "sell", "1", "100", fee="0.045"), D(-1), D(100), D(-10)),
        (fill(6, "buy", "3", "80", fee="0.108"), D(2), D(80), D(10)),
    ]
    for venue_fill, quantity, entry, realized in steps:
        fills_apply(agent_wallet=wallet, fills=[venue_fill])
        position = _position(wallet)
        assert (position.quantity, position.entry_price, position.realized_pnl) == (
            quantity,
            entry,
            realized,
        )
    assert position.fees_paid == D("0.4455")
    assert position.net_realized_pnl == D("9.5545")
    assert position.side == "long"
    assert list(Fill.objects.order_by("time_ms").values_list("direction", flat=True)) == [
        "Open Long",
        "Open Long",
        "Close Long",
        "Close Long",
        "Open Short",
        "Short > Long",
    ]
    assert list(Fill.objects.order_by("time_ms").values_list("realized_pnl", flat=True)) == [
        D(0),
        D(0),
        D(30),
        D(-40),
        D(0),
        D(20),
    ]


def test_a_closed_position_keeps_its_history_and_reopens_on_the_same_row(wallet: Any) -> None:
    fills_apply(agent_wallet=wallet, fills=[fill(1, "buy", "1", "100")])
    opened_first = _position(wallet).opened_at
    fills_apply(agent_wallet=wallet, fills=[fill(2, "sell", "1", "110")])
    closed = _position(wallet)
    assert closed.quantity == 0
    assert closed.side == "flat"
    assert closed.closed_at is not None
    assert closed.entry_price == 0
    assert closed.realized_pnl == D(10)
    fills_apply(agent_wallet=wallet, fills=[fill(3, "sell", "2", "120")])
    reopened = _position(wallet)
    assert reopened.pk == closed.pk
    assert reopened.closed_at is None
    assert opened_first is not None
    assert reopened.opened_at is not None
    assert reopened.opened_at > opened_first
    assert (reopened.quantity, reopened.entry_price, reopened.realized_pnl) == (
        D(-2),
        D(120),
        D(10),
    )
    assert reopened.fills.count() == 3


def test_replayed_fills_change_nothing(wallet: Any) -> None:
    batch = [fill(1, "buy", "1", "100", fee="0.05"), fill(2, "sell", "1", "120", fee="0.05")]
    first = fills_apply(agent_wallet=wallet, fills=batch)
    snapshot = Position.objects.values().get()
    again = fills_apply(agent_wallet=wallet, fills=batch + batch)
    assert (len(first.created), len(again.created), again.duplicates) == (2, 0, 2)
    assert Position.objects.values().get() == snapshot
    assert Fill.objects.count() == 2


def test_the_venues_closed_pnl_is_booked_when_given(wallet: Any) -> None:
    fills_apply(
        agent_wallet=wallet,
        fills=[
            fill(1, "buy", "1", "100", start="0", closed="0"),
            fill(2, "sell", "1", "120", start="1", closed="19.5"),  # the venue knows best
        ],
    )
    position = _position(wallet)
    assert position.realized_pnl == D("19.5")
    assert Fill.objects.get(venue_fill_id="f2").venue_closed_pnl == D("19.5")


def test_position_changed_behind_tandems_back_is_reanchored(wallet: Any) -> None:
    fills_apply(agent_wallet=wallet, fills=[fill(1, "buy", "1", "100", start="0")])
    # The customer bought 4 more on the venue's website; the next fill says so.
    fills_apply(agent_wallet=wallet, fills=[fill(2, "sell", "1", "110", start="5")])
    position = _position(wallet)
    assert position.quantity == D(4)
    event = RiskEvent.objects.get(event_type=RiskEventType.POSITION_DRIFT)
    assert (event.metric_value, event.threshold_value) == (D(5), D(1))
    assert event.action_taken == "position_set_to_venue"


def test_late_fill_is_recorded_without_moving_the_position_twice(wallet: Any) -> None:
    fills_apply(agent_wallet=wallet, fills=[fill(1, "buy", "1", "100", start="0")])
    # fill 3 arrives before fill 2; its start position already includes fill 2
    fills_apply(agent_wallet=wallet, fills=[fill(3, "buy", "1", "102", start="2")])
    assert _position(wallet).quantity == D(3)
    drift_events = RiskEvent.objects.count()
    fills_apply(agent_wallet=wallet, fills=[fill(2, "buy", "1", "101", start="1")])
    assert _position(wallet).quantity == D(3)  # not 4
    assert Fill.objects.count() == 3
    assert RiskEvent.objects.count() == drift_events


def test_fills_of_one_transaction_sharing_a_start_position(wallet: Any) -> None:
    fills_apply(agent_wallet=wallet, fills=[fill(1, "buy", "10", "100", start="0")])
    same_ms = T0 + 5000
    result = fills_apply(
        agent_wallet=wallet,
        fills=[
            fill(2, "buy", "2", "110", start="10", time_ms=same_ms),
            fill(3, "sell", "2", "110", start="10", time_ms=same_ms),
        ],
    )
    assert len(result.created) == 2
    assert result.drifts == 0
    position = _position(wallet)
    assert (position.quantity, position.entry_price, position.realized_pnl) == (
        D(10),
        D(100),
        D(20),
    )


def test_unknown_symbol_is_skipped(wallet: Any) -> None:
    result = fills_apply(agent_wallet=wallet, fills=[fill(1, "buy", "1", "1", symbol="NOPE")])
    assert result.unknown_symbol == 1
    assert Fill.objects.count() == 0


def test_listeners_hear_of_committed_fills(
    wallet: Any, django_capture_on_commit_callbacks: Any
) -> None:
    heard: list[list[Any]] = []

    def listener(fill_ids: Sequence[uuid.UUID]) -> None:
        heard.append(list(fill_ids))

    register_fill_listener(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            fills_apply(agent_wallet=wallet, fills=[fill(1, "buy", "1", "100")])
        with django_capture_on_commit_callbacks(execute=True):
            fills_apply(agent_wallet=wallet, fills=[fill(1, "buy", "1", "100")])  # replay
    finally:
        unregister_fill_listener(listener)
    assert len(heard) == 1
    assert heard[0] == [Fill.objects.get().pk]


def test_marking_to_market(wallet: Any, publish: Any) -> None:
    fills_apply(agent_wallet=wallet, fills=[fill(1, "buy", "2", "2000")])
    position = _position(wallet)
    Position.objects.filter(pk=position.pk).update(leverage=D(10))
    position = position_mark(position=position, mark_price=D(2100))
    assert (position.unrealized_pnl, position.margin_used) == (D(200), D(420))
    # isolated estimate at 10x, mmr 1/(2x25): equity 400 + 2 (p - 2000) = 0.02 x 2 x p,
    # so 1.96 p = 3600
    assert position.liquidation_price == (D(3600) / D("1.96")).quantize(D("0.00000001"))
    publish("ETH", "1900")
    assert position_mark_all() == 1
    position.refresh_from_db()
    assert (position.mark_price, position.unrealized_pnl) == (D(1900), D(-200))
    assert position_mark_all() == 0  # nothing changed since


def test_position_set_from_the_venue(wallet: Any) -> None:
    fills_apply(agent_wallet=wallet, fills=[fill(1, "buy", "1", "100")])
    position = position_set_from_venue(
        agent_wallet=wallet,
        reason="test",
        venue_position=VenuePosition(
            symbol="ETH", quantity=D("-3"), entry_price=D(105), leverage=D(5), position_value=D(330)
        ),
    )
    assert position is not None
    assert (position.quantity, position.entry_price, position.side, position.leverage) == (
        D(-3),
        D(105),
        "short",
        D(5),
    )
    assert position.mark_price == D(110)
    assert RiskEvent.objects.filter(event_type=RiskEventType.POSITION_DRIFT).count() == 1
    position_set_from_venue(
        agent_wallet=wallet,
        reason="again",
        venue_position=VenuePosition(symbol="ETH", quantity=D("-3"), entry_price=D(105)),
    )
    assert RiskEvent.objects.filter(event_type=RiskEventType.POSITION_DRIFT).count() == 1
