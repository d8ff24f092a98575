"""Execution against the paper venue: submit after commit, fills into positions, refusals,
retries that ask the venue before re-sending, leases, the sweeper, cancels, fill sync."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from trading.exchanges import (
    OrderRequest,
    PlaceResult,
    RateLimited,
    VenueAdapter,
    VenueOrder,
    VenueTimeout,
    VenueUnavailable,
    override_adapter,
)
from trading.exchanges.paper import PaperAdapter, PaperVenue
from trading.models import (
    Fill,
    Order,
    OrderEventKind,
    OrderOutbox,
    OrderStatus,
    Position,
    Symbol,
)
from trading.services import (
    order_cancel,
    order_create,
    order_submit,
    outbox_sweep,
    wallet_fills_sync,
)
from trading.tests.factories import SymbolFactory

D = Decimal
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("paper_symbols", "market")]


def _place(user: Any, capture: Callable[..., Any], **kwargs: Any) -> Order:
    values: dict[str, Any] = {"symbol": "ETH", "side": "buy", "quantity": D(1)}
    values.update(kwargs)
    with capture(execute=True):
        order = order_create(user=user, **values).order
    order.refresh_from_db()
    return order


def _expire_lease(order: Order) -> None:
    past = timezone.now() - timedelta(seconds=1)
    OrderOutbox.objects.filter(order=order).update(claimed_until=past, available_at=past)


class Flaky(VenueAdapter):
    """Wraps the paper adapter and fails on cue, the ways a network fails."""

    venue = "paper"

    def __init__(self, inner: PaperAdapter, plan: list[str]) -> None:
        self.inner = inner
        self.plan = plan  # per place_order call: "ok", "lost", "timeout_before", "429", "503"
        self.lookups = 0

    def place_order(self, request: OrderRequest) -> PlaceResult:
        step = self.plan.pop(0) if self.plan else "ok"
        if step == "429":
            raise RateLimited("Too many requests", retry_after=2.0)
        if step == "503":
            raise VenueUnavailable("Service unavailable", status_code=503)
        if step == "timeout_before":
            raise VenueTimeout()
        result = self.inner.place_order(request)
        if step == "lost":  # the venue placed it; the answer never came back
            raise VenueTimeout()
        return result

    def order_by_cloid(self, *, symbol: str, cloid: str) -> VenueOrder | None:
        self.lookups += 1
        return self.inner.order_by_cloid(symbol=symbol, cloid=cloid)

    def cancel_order(self, **kwargs: Any) -> None:
        self.inner.cancel_order(**kwargs)

    def open_orders(self) -> list[VenueOrder]:
        return self.inner.open_orders()

    def account_state(self) -> Any:
        return self.inner.account_state()

    def fills_since(self, *, since_ms: int) -> Any:
        return self.inner.fills_since(since_ms=since_ms)

    def symbols(self) -> Any:
        return self.inner.symbols()

    def mark_prices(self) -> Any:
        return self.inner.mark_prices()


@pytest.fixture
def flaky(wallet: Any, paper_venue: PaperVenue) -> Iterator[Callable[[list[str]], Flaky]]:
    made: list[Flaky] = []

    def install(plan: list[str]) -> Flaky:
        adapter = Flaky(PaperAdapter(account=wallet.user.wallet_addr, venue=paper_venue), plan)
        made.append(adapter)
        return adapter

    holder: dict[str, Flaky] = {}

    def factory(agent_wallet: Any) -> VenueAdapter:
        return holder["adapter"]

    with override_adapter("paper", factory):

        def use(plan: list[str]) -> Flaky:
            holder["adapter"] = install(plan)
            return holder["adapter"]

        yield use


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    monkeypatch.setattr(
        "trading.services.orders.order_submit_dispatch", lambda order_id: sent.append(str(order_id))
    )
    return sent


def test_market_order_is_submitted_after_commit_and_fills(
    trader: Any, paper_venue: PaperVenue, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    order = _place(trader, django_capture_on_commit_callbacks, leverage=5)
    assert order.status == OrderStatus.FILLED
    assert order.filled_quantity == D(1)
    assert order.exchange_order_id
    assert order.submitted_at
    assert order.filled_at
    assert order.first_fill_at
    # A market order goes out as an IOC limit 5 % through the touch, on the venue's tick.
    assert order.submitted_price == D("2625.4")  # ask 2500.3 x 1.05 = 2625.315, 5 figures up
    assert order.time_in_force == "Ioc"
    fill = Fill.objects.get(order=order)
    assert order.average_price == fill.price
    assert order.fees == fill.fee > 0
    position = Position.objects.get(user=trader)
    assert (position.quantity, position.entry_price, position.fees_paid) == (
        D(1),
        fill.price,
        fill.fee,
    )
    assert position.leverage == D(5)
    assert list(order.events.filter(kind="transition").values_list("from_status", "to_status")) == [
        ("pending", "submitted"),
        ("submitted", "filled"),
    ]
    assert OrderOutbox.objects.get(order=order).done_at is not None
    assert paper_venue.placement_counts() == {order.cloid: 1}


def test_venue_refusal_ends_failed_with_the_venues_words(
    trader: Any,
    paper_venue: PaperVenue,
    wallet: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    paper_venue.set_balance(wallet.user.wallet_addr, D(100))
    order = _place(trader, django_capture_on_commit_callbacks, quantity=D(2))
    assert order.status == OrderStatus.FAILED
    assert order.failed_at
    assert order.error_code == "insufficient_margin"
    assert order.error_message == "Insufficient margin to place order."
    assert order.events.filter(kind=OrderEventKind.VENUE_REJECT).exists()
    order = _place(trader, django_capture_on_commit_callbacks, side="sell", reduce_only=True)
    assert (order.status, order.error_code) == (OrderStatus.FAILED, "reduce_only_would_increase")


def test_symbol_the_venue_does_not_list_and_no_market_price(
    trader: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    SymbolFactory.create(venue="paper", name="XYZ", sz_decimals=0, min_notional=D(0))
    order = _place(
        trader,
        django_capture_on_commit_callbacks,
        symbol="XYZ",
        quantity=D(5),
        order_type="limit",
        price=D(3),
    )
    assert (order.status, order.error_code) == (OrderStatus.FAILED, "unknown_symbol")
    order = _place(trader, django_capture_on_commit_callbacks, symbol="XYZ", quantity=D(5))
    assert (order.status, order.error_code) == (OrderStatus.FAILED, "no_market_price")


def test_large_market_order_partially_fills_then_cancels(
    trader: Any, publish: Callable[..., Any], django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    publish("ETH", "2500", size="2")
    order = _place(trader, django_capture_on_commit_callbacks, quantity=D(25))
    assert order.status == OrderStatus.CANCELLED
    assert order.filled_quantity == D(10)
    assert list(order.events.filter(kind="transition").values_list("to_status", flat=True)) == [
        "submitted",
        "partial",
        "cancelled",
    ]


def test_resting_limit_order_fills_later_through_the_fill_sync(
    trader: Any,
    wallet: Any,
    paper_venue: PaperVenue,
    publish: Callable[..., Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    order = _place(
        trader, django_capture_on_commit_callbacks, quantity=D(3), order_type="limit", price=D(2400)
    )
    assert order.status == OrderStatus.SUBMITTED
    publish("ETH", "2390", size="2")
    paper_venue.match_resting(["ETH"])
    assert wallet_fills_sync(agent_wallet=wallet) == 1
    order.refresh_from_db()
    assert (order.status, order.filled_quantity) == (OrderStatus.PARTIAL, D(1))
    paper_venue.match_resting(["ETH"])
    paper_venue.match_resting(["ETH"])
    assert wallet_fills_sync(agent_wallet=wallet) == 2
    assert wallet_fills_sync(agent_wallet=wallet) == 0  # idempotent
    order.refresh_from_db()
    assert (order.status, order.filled_quantity, order.average_price) == (
        OrderStatus.FILLED,
        D(3),
        D(2400),
    )
    assert Position.objects.get(user=trader).quantity == D(3)


def test_cancel_at_the_venue(
    trader: Any, paper_venue: PaperVenue, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    order = _place(trader, django_capture_on_commit_callbacks, order_type="limit", price=D(2400))
    with django_capture_on_commit_callbacks(execute=True):
        order_cancel(order=order, actor=trader)
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_requested_at
    account = PaperAdapter(account=trader.wallet_addr, venue=paper_venue)
    assert account.open_orders() == []


def test_lost_answer_is_resolved_by_asking_the_venue_not_by_resending(
    trader: Any,
    no_dispatch: list[str],
    flaky: Callable[[list[str]], Flaky],
    paper_venue: PaperVenue,
) -> None:
    adapter = flaky(["lost"])
    order = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    first = order_submit(order_id=order.pk)
    assert first.status == "retry"
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING  # Tandem does not know yet
    assert paper_venue.placement_counts() == {order.cloid: 1}  # but the venue has it
    assert order_submit(order_id=order.pk).status == "skipped"  # backoff: lease still held
    _expire_lease(order)
    second = order_submit(order_id=order.pk)
    assert second.status == "done"
    assert "found at the venue" in second.detail
    assert adapter.lookups == 1
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert Fill.objects.filter(order=order).count() == 1
    assert paper_venue.placement_counts() == {order.cloid: 1}  # never placed twice
    assert order.events.filter(kind=OrderEventKind.LOOKUP).exists()


@pytest.mark.parametrize("failure", ["429", "503", "timeout_before"])
def test_retryable_failures_back_off_then_succeed_once(
    failure: str,
    trader: Any,
    no_dispatch: list[str],
    flaky: Callable[[list[str]], Flaky],
    paper_venue: PaperVenue,
) -> None:
    adapter = flaky([failure, "ok"])
    order = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    outcome = order_submit(order_id=order.pk)
    assert outcome.status == "retry"
    assert outcome.retry_in == (2.0 if failure == "429" else 0.5)  # Retry-After, or backoff
    outbox = OrderOutbox.objects.get(order=order)
    assert outbox.available_at > timezone.now()
    assert outbox.last_error
    _expire_lease(order)
    assert order_submit(order_id=order.pk).status == "done"
    assert adapter.lookups == 1  # asked before the second send
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert paper_venue.placement_counts() == {order.cloid: 1}


def test_gives_up_after_the_maximum_attempts(
    trader: Any,
    no_dispatch: list[str],
    flaky: Callable[[list[str]], Flaky],
    settings: Any,
    paper_venue: PaperVenue,
) -> None:
    settings.TANDEM = {**settings.TANDEM, "ORDER_SUBMIT_MAX_ATTEMPTS": 2}
    flaky(["503", "503", "503"])
    order = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    assert order_submit(order_id=order.pk).status == "retry"
    _expire_lease(order)
    assert order_submit(order_id=order.pk).status == "retry"
    _expire_lease(order)
    assert order_submit(order_id=order.pk).status == "done"
    order.refresh_from_db()
    assert (order.status, order.error_code) == (OrderStatus.FAILED, "submit_exhausted")
    assert paper_venue.placement_counts() == {}


def test_a_held_lease_keeps_other_workers_out(
    trader: Any, no_dispatch: list[str], paper_venue: PaperVenue
) -> None:
    order = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    OrderOutbox.objects.filter(order=order).update(
        attempts=1, claimed_until=timezone.now() + timedelta(seconds=30)
    )
    outcome = order_submit(order_id=order.pk)
    assert (outcome.status, outcome.detail) == ("skipped", "another worker holds the lease")
    assert paper_venue.placement_counts() == {}


def test_sweeper_dispatches_only_rows_left_behind(
    trader: Any, no_dispatch: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    monkeypatch.setattr("trading.tasks.dispatch", lambda task, pk: sent.append(pk))
    old = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    claimed = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    fresh = order_create(user=trader, symbol="ETH", side="buy", quantity=D(1)).order
    long_ago = timezone.now() - timedelta(minutes=5)
    OrderOutbox.objects.filter(order__in=[old, claimed]).update(
        created_at=long_ago, available_at=long_ago
    )
    OrderOutbox.objects.filter(order=claimed).update(
        claimed_until=timezone.now() + timedelta(seconds=30)
    )
    assert outbox_sweep() == 1
    assert sent == [str(old.pk)]
    assert str(fresh.pk) not in sent


def test_submit_is_idempotent(
    trader: Any, paper_venue: PaperVenue, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    order = _place(trader, django_capture_on_commit_callbacks)
    for _ in range(3):  # redelivered tasks
        assert order_submit(order_id=order.pk).status == "skipped"
    assert paper_venue.placement_counts() == {order.cloid: 1}


def test_task_retries_with_the_services_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    from trading import tasks
    from trading.services.execution import SubmitOutcome

    monkeypatch.setattr(
        tasks.services, "order_submit", lambda order_id: SubmitOutcome("retry", "503", 1.5)
    )
    seen: dict[str, Any] = {}

    def fake_retry(**kwargs: Any) -> Exception:
        seen.update(kwargs)
        return RuntimeError("retry")

    monkeypatch.setattr(tasks.order_submit_task, "retry", fake_retry)
    with pytest.raises(RuntimeError):
        tasks.order_submit_task.run("some-id")
    assert seen["countdown"] == 1.5
    assert tasks.order_submit_task.acks_late is True


def test_symbols_are_synced_from_the_paper_venue(paper_symbols: dict[str, Symbol]) -> None:
    assert set(paper_symbols) == {"BTC", "ETH", "SOL", "ARB", "DOGE", "kPEPE"}
    eth = paper_symbols["ETH"]
    assert (
        eth.sz_decimals,
        eth.price_sig_figs,
        eth.price_max_decimals,
        eth.min_notional,
        eth.max_leverage,
    ) == (4, 5, 2, D(10), 25)
    assert eth.maintenance_margin_rate == D(1) / D(50)
