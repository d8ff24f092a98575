"""Fill-driven accrual through the real trading path: a copy-trade order placed with
``trading.services.order_create`` (strategy and source trader), its venue fill applied with
``trading.services.fills_apply``; after commit the configured fill listener
(settings.TANDEM["FILL_LISTENERS"]) dispatches the billing task, which charges the builder
and copy fees -- once, however often the fill or the listener comes again."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings

from billing.models import FeeLedgerEntry
from billing.services import fill_listener
from billing.tests.factories import AllocationFactory, StrategyFactory, TraderFactory
from trading.exchanges import VenueFill
from trading.services import fills_apply, order_create
from trading.tests.factories import SymbolFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def copier(db: Any) -> dict[str, Any]:
    from accounts.tests.factories import AgentWalletFactory, UserFactory

    user = UserFactory.create()
    wallet = AgentWalletFactory.create(user=user, exchange="paper")
    SymbolFactory.create(venue="paper", name="ETH")
    strategy = StrategyFactory.create(user=user, agent_wallet=wallet)
    trader = TraderFactory.create()
    AllocationFactory.create(strategy=strategy, trader=trader, weight=D(1))
    return {"user": user, "wallet": wallet, "strategy": strategy, "trader": trader}


def _venue_fill(order: Any, n: int = 1) -> VenueFill:
    return VenueFill(
        venue_fill_id=f"tid-{order.cloid}-{n}",
        symbol="ETH",
        side="buy",
        price=D("1500.5"),
        size=D("2"),
        time_ms=1_736_000_000_000 + n,
        fee=D("1.35"),
        cloid=order.cloid,
        tx_hash="0xabc",
    )


def test_the_listener_is_configured() -> None:
    assert "billing.services.fill_listener" in settings.TANDEM["FILL_LISTENERS"]


def test_copied_fill_accrues_builder_and_copy_fees_once(
    copier: dict[str, Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from config import streams

    stream = streams.account_stream(copier["user"].pk)
    seq_before = streams.current_seq(stream)
    order = order_create(
        user=copier["user"],
        symbol="ETH",
        side="buy",
        quantity=D("2"),
        order_type="limit",
        price=D("1500.5"),
        venue="paper",
        strategy=copier["strategy"],
        source_trader=copier["trader"],
    ).order
    assert order.is_copy_trade

    with django_capture_on_commit_callbacks(execute=True):
        result = fills_apply(agent_wallet=copier["wallet"], fills=[_venue_fill(order)])
    fill = result.created[0]
    fees = {f.fee_category: f for f in FeeLedgerEntry.objects.filter(fill=fill)}
    assert set(fees) == {"builder_fee", "copy_fee"}
    assert fees["builder_fee"].fee_amount == D("3.001")  # 10 bps of 3,001 (free plan)
    assert fees["copy_fee"].fee_amount == D("1.5005")  # 5 bps
    assert fees["copy_fee"].order_id == order.pk
    assert fees["copy_fee"].exchange_tx_id == fill.venue_fill_id
    strategy = copier["strategy"]
    strategy.refresh_from_db()
    assert strategy.total_fees == D("4.5015")
    allocation = strategy.allocations.get()
    assert allocation.allocated_fees == D("4.5015")
    # One live "fee" event on the owner's account stream (real Redis), with both rows.
    published = streams.backlog_since(stream, seq_before) or []
    fee_events = [e for e in published if e["type"] == "fee"]
    assert [e["data"]["count"] for e in fee_events] == [2]

    # The venue sends the same fill again: trading drops it, nothing new is charged.
    with django_capture_on_commit_callbacks(execute=True):
        again = fills_apply(agent_wallet=copier["wallet"], fills=[_venue_fill(order)])
    assert again.duplicates == 1
    # The listener (or its task) runs again with the same fill: still charged once.
    with django_capture_on_commit_callbacks(execute=True):
        fill_listener([fill.pk])
        fill_listener([fill.pk])
    assert FeeLedgerEntry.objects.filter(fill=fill).count() == 2
    strategy.refresh_from_db()
    assert strategy.total_fees == D("4.5015")


def test_manual_orders_are_not_charged(
    copier: dict[str, Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    order = order_create(
        user=copier["user"],
        symbol="ETH",
        side="buy",
        quantity=D("2"),
        order_type="limit",
        price=D("1500.5"),
        venue="paper",
    ).order
    with django_capture_on_commit_callbacks(execute=True):
        fills_apply(agent_wallet=copier["wallet"], fills=[_venue_fill(order)])
    assert not FeeLedgerEntry.objects.exists()
