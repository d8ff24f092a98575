"""Acceptance (d): reconciliation against the paper venue. A position changed at the venue
behind Tandem's back, an order the venue never got, an order Tandem never heard back about,
an order at the venue Tandem never placed, and a venue that cannot be reached."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from trading.exchanges import OrderRequest, VenueUnavailable, override_adapter
from trading.exchanges.paper import PaperAdapter, PaperVenue
from trading.models import (
    Fill,
    Order,
    OrderOutbox,
    OrderStatus,
    Position,
    RiskEvent,
    RiskEventType,
    new_cloid,
)
from trading.services import order_create, reconcile_agent_wallet

D = Decimal
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("paper_symbols", "market")]


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    monkeypatch.setattr(
        "trading.services.orders.order_submit_dispatch", lambda order_id: sent.append(str(order_id))
    )
    return sent


def _events(kind: str) -> list[RiskEvent]:
    return list(RiskEvent.objects.filter(event_type=kind))


def _age(order: Order, seconds: int = 600) -> None:
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(seconds=seconds))


def test_position_changed_at_the_venue_behind_tandems_back(
    trader: Any,
    wallet: Any,
    paper_venue: PaperVenue,
    paper_symbols: dict[str, Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        order_create(user=trader, symbol="ETH", side="buy", quantity=D(1))
    assert Position.objects.get(symbol__name="ETH").quantity == D(1)
    # The customer traded on the venue's own site: 3 ETH long at 2400, and closed nothing else.
    paper_venue.set_position(trader.wallet_addr, "ETH", D(3), D(2400))
    # ... and Tandem believes in a SOL position the venue does not hold.
    Position.objects.create(
        user=trader,
        agent_wallet=wallet,
        exchange="paper",
        symbol=paper_symbols["SOL"],
        quantity=D(5),
        side="long",
        entry_price=D(100),
        opened_at=timezone.now(),
    )

    report = reconcile_agent_wallet(agent_wallet=wallet)
    assert report.error == ""
    assert report.positions_fixed == 2
    eth = Position.objects.get(symbol__name="ETH")
    assert (eth.quantity, eth.entry_price, eth.side) == (D(3), D(2400), "long")
    sol = Position.objects.get(symbol__name="SOL")
    assert (sol.quantity, sol.side) == (D(0), "flat")
    assert sol.closed_at is not None
    drifts = _events(RiskEventType.POSITION_DRIFT)
    assert {e.symbol for e in drifts} == {"ETH", "SOL"}
    eth_event = next(e for e in drifts if e.symbol == "ETH")
    assert (eth_event.metric_value, eth_event.threshold_value) == (D(3), D(1))
    assert eth_event.action_taken == "position_set_to_venue"

    again = reconcile_agent_wallet(agent_wallet=wallet)  # nothing left to repair
    assert again.positions_fixed == 0
    assert len(_events(RiskEventType.POSITION_DRIFT)) == 2


def test_order_the_venue_never_got_is_resubmitted(
    trader: Any,
    wallet: Any,
    paper_venue: PaperVenue,
    no_dispatch: list[str],
    django_capture_on_commit_callbacks: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    _age(order)  # its task was lost long ago
    monkeypatch.undo()  # from here on, dispatches run (eagerly)
    with django_capture_on_commit_callbacks(execute=True):
        report = reconcile_agent_wallet(agent_wallet=wallet)
    assert report.orders_resubmitted == 1
    (event,) = _events(RiskEventType.ORDER_NOT_AT_VENUE)
    assert (event.order_id, event.action_taken) == (order.pk, "resubmitted")
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert paper_venue.placement_counts() == {order.cloid: 1}


def test_order_the_venue_never_got_fails_by_policy(
    trader: Any, wallet: Any, settings: Any, no_dispatch: list[str]
) -> None:
    settings.TANDEM = {**settings.TANDEM, "RECONCILE_UNSENT_POLICY": "fail"}
    order = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    young = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    _age(order)
    report = reconcile_agent_wallet(agent_wallet=wallet)
    assert report.orders_failed == 1
    order.refresh_from_db()
    young.refresh_from_db()
    assert (order.status, order.error_code) == (OrderStatus.FAILED, "not_at_venue")
    assert young.status == OrderStatus.PENDING  # still within the grace period: left alone
    assert OrderOutbox.objects.get(order=order).done_at is not None


def test_order_tandem_never_heard_back_about(
    trader: Any, wallet: Any, paper_venue: PaperVenue, no_dispatch: list[str]
) -> None:
    """The venue filled one order and rests another; both answers were lost (the worker died
    after sending). Reconciliation takes the venue's word, fills included."""
    filled = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    resting = order_create(
        user=trader, symbol="ETH", side="buy", quantity=D(1), order_type="limit", price=D(2000)
    ).order
    account = PaperAdapter(account=trader.wallet_addr, venue=paper_venue)
    for order, price, tif in ((filled, D(2600), "Ioc"), (resting, D(2000), "Gtc")):
        account.place_order(
            OrderRequest(
                cloid=order.cloid,
                symbol="ETH",
                side="buy",
                size=D(1),
                limit_price=price,
                time_in_force=tif,
            )
        )
        OrderOutbox.objects.filter(order=order).update(attempts=1)  # claimed, then lost
        _age(order)

    report = reconcile_agent_wallet(agent_wallet=wallet)
    assert report.orders_repaired == 2
    filled.refresh_from_db()
    resting.refresh_from_db()
    assert (filled.status, filled.filled_quantity) == (OrderStatus.FILLED, D(1))
    assert Fill.objects.filter(order=filled).count() == 1
    assert resting.status == OrderStatus.SUBMITTED
    assert resting.exchange_order_id
    assert Position.objects.get(symbol__name="ETH").quantity == D(1)
    repaired = _events(RiskEventType.ORDER_STATUS_REPAIRED)
    assert {e.order_id for e in repaired} == {filled.pk, resting.pk}
    assert all(OrderOutbox.objects.get(order=o).done_at for o in (filled, resting))
    assert paper_venue.placement_counts() == {filled.cloid: 1, resting.cloid: 1}

    again = reconcile_agent_wallet(agent_wallet=wallet)
    assert again.orders_repaired == 0
    assert len(_events(RiskEventType.ORDER_STATUS_REPAIRED)) == 2


def test_submitted_order_the_venue_lost_ends_failed(
    trader: Any, wallet: Any, no_dispatch: list[str]
) -> None:
    order = order_create(
        user=trader, symbol="ETH", side="buy", quantity=D(1), order_type="limit", price=D(2000)
    ).order
    Order.objects.filter(pk=order.pk).update(status="submitted", submitted_at=timezone.now())
    OrderOutbox.objects.filter(order=order).update(done_at=timezone.now())
    reconcile_agent_wallet(agent_wallet=wallet)
    order.refresh_from_db()
    assert (order.status, order.error_code) == (OrderStatus.FAILED, "not_at_venue")
    assert _events(RiskEventType.ORDER_NOT_AT_VENUE)[0].action_taken == "marked_failed"


def test_order_at_the_venue_tandem_never_placed_is_reported_once(
    trader: Any, wallet: Any, paper_venue: PaperVenue
) -> None:
    account = PaperAdapter(account=trader.wallet_addr, venue=paper_venue)
    account.place_order(
        OrderRequest(
            cloid=new_cloid(),
            symbol="ETH",
            side="sell",
            size=D(1),
            limit_price=D(3000),
            time_in_force="Gtc",
        )
    )
    assert reconcile_agent_wallet(agent_wallet=wallet).unknown_venue_orders == 1
    assert reconcile_agent_wallet(agent_wallet=wallet).unknown_venue_orders == 0
    (event,) = _events(RiskEventType.UNKNOWN_VENUE_ORDER)
    assert event.details["venue_order_id"]


def test_unreachable_venue_is_recorded(trader: Any, wallet: Any) -> None:
    class Down(PaperAdapter):
        def account_state(self) -> Any:
            raise VenueUnavailable("connection refused")

    with override_adapter("paper", lambda agent_wallet: Down(account=trader.wallet_addr)):
        report = reconcile_agent_wallet(agent_wallet=wallet)
    assert report.error.startswith("venue_unavailable")
    assert len(_events(RiskEventType.RECONCILIATION_FAILED)) == 1


def test_reconcile_command_and_beat_fan_out(
    trader: Any,
    wallet: Any,
    paper_venue: PaperVenue,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from trading import tasks

    with django_capture_on_commit_callbacks(execute=True):
        order_create(user=trader, symbol="ETH", side="buy", quantity=D(1))
    paper_venue.set_position(trader.wallet_addr, "ETH", D(2), D(2500))
    out = StringIO()
    call_command("reconcile", stdout=out)
    assert f"{wallet.addr} (paper)" in out.getvalue()
    assert "1 positions fixed" in out.getvalue()
    call_command("reconcile", "--agent-wallet", str(wallet.pk), stdout=out)
    sent: list[str] = []
    monkeypatch.setattr(tasks, "dispatch", lambda task, pk: sent.append(pk))
    assert tasks.reconcile_all_task() == 1
    assert sent == [str(wallet.pk)]
