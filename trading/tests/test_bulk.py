"""The bulk order path (trading.services.bulk): the same rules as ``order_create``, one COPY per
table, one paper-venue transaction per batch, and the same exactly-once protocol."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import AgentWalletStatus, KycLevel
from accounts.tests.factories import AgentWalletFactory, UserFactory
from trading.exchanges.paper import PaperVenue
from trading.models import (
    Order,
    OrderEvent,
    OrderOutbox,
    OrderStatus,
    Position,
    RiskEvent,
    Symbol,
)
from trading.services import order_submit, risk_limit_set
from trading.services.bulk import BulkOrder, orders_create_bulk, orders_submit_bulk

D = Decimal
pytestmark = pytest.mark.django_db


def _customers(count: int) -> list[Any]:
    wallets = []
    for _ in range(count):
        user = UserFactory.create()
        wallets.append(AgentWalletFactory.create(user=user, exchange="paper"))
    return wallets


def _orders(wallets: list[Any], symbol: Symbol, **overrides: Any) -> list[BulkOrder]:
    values: dict[str, Any] = {"side": "buy", "quantity": D("0.01"), "price": D(2510)} | overrides
    return [
        BulkOrder(user_id=w.user_id, agent_wallet_id=w.pk, symbol=symbol, **values) for w in wallets
    ]


def _create(orders: list[BulkOrder], **kwargs: Any) -> Any:
    with transaction.atomic():
        return orders_create_bulk(orders=orders, **kwargs)


class TestCreate:
    def test_writes_orders_and_outbox_with_cloids_and_submits_after_commit(
        self,
        paper_symbols: dict[str, Symbol],
        market: dict[str, Any],
        paper_venue: PaperVenue,
        django_capture_on_commit_callbacks: Callable[..., Any],
    ) -> None:
        wallets = _customers(5)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            result = _create(_orders(wallets, paper_symbols["ETH"]))
        assert len(result.created) == 5
        assert not result.refused
        orders = list(Order.objects.filter(pk__in=[o.id for o in result.created]))
        assert {o.status for o in orders} == {OrderStatus.PENDING}
        assert {o.cloid for o in orders} == {o.cloid for o in result.created}
        assert OrderOutbox.objects.filter(order__in=orders, done_at__isnull=True).count() == 5
        # the history trigger saw every insert, like the single path
        assert OrderEvent.objects.filter(order__in=orders, kind="created").count() == 5
        # nothing is sent before the commit; the callbacks submit
        assert paper_venue.placements() == []
        for callback in callbacks:
            callback()
        assert set(
            Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", flat=True)
        ) == {OrderStatus.FILLED}
        counts = paper_venue.placement_counts()
        assert sorted(counts) == sorted(o.cloid for o in orders)
        assert set(counts.values()) == {1}
        for wallet in wallets:
            position = Position.objects.get(agent_wallet=wallet)
            assert position.quantity == D("0.01")

    def test_refusals_are_reported_by_index_and_nothing_of_them_written(
        self, paper_symbols: dict[str, Symbol], market: dict[str, Any]
    ) -> None:
        ok, revoked, unverified, small = _customers(4)
        revoked.status = AgentWalletStatus.REVOKED
        revoked.save()
        unverified.user.kyc_level = KycLevel.UNVERIFIED
        unverified.user.save()
        eth = paper_symbols["ETH"]
        orders = [
            *_orders([ok, revoked, unverified], eth),
            *_orders([small], eth, quantity=D("0.001")),  # $2.5: below the venue minimum
            *_orders([ok], eth, quantity=D("0.0123456"), price=D("2510.123")),  # rounded
        ]
        result = _create(orders, dispatch=False)
        assert sorted(result.refused) == [1, 2, 3]
        assert result.refused[1][0] == "agent_wallet_inactive"
        assert result.refused[2][0] == "account_cannot_trade"
        assert result.refused[3][0] == "notional_below_minimum"
        assert Order.objects.count() == 2
        rounded = Order.objects.get(pk=orders[4].id)
        assert rounded.quantity == D("0.0123")
        assert rounded.price == D("2510.1")

    def test_risk_limits_run_for_users_that_have_them(
        self, paper_symbols: dict[str, Symbol], market: dict[str, Any]
    ) -> None:
        free, limited = _customers(2)
        risk_limit_set(user=limited.user, max_position_value=D(10))
        result = _create(_orders([free, limited], paper_symbols["ETH"]), dispatch=False)
        assert [o.user_id for o in result.created] == [free.user_id]
        assert result.refused[1][0] == "risk_limit_exceeded"
        event = RiskEvent.objects.get(user=limited.user)
        assert event.metric_name == "position_value"
        assert not Order.objects.filter(user=limited.user).exists()


class TestSubmit:
    def test_a_replayed_task_claims_nothing_and_places_nothing_twice(
        self, paper_symbols: dict[str, Symbol], market: dict[str, Any], paper_venue: PaperVenue
    ) -> None:
        result = _create(_orders(_customers(3), paper_symbols["ETH"]), dispatch=False)
        ids = [o.id for o in result.created]
        first = orders_submit_bulk(order_ids=ids)
        assert (first.claimed, first.submitted, first.failed) == (3, 3, 0)
        again = orders_submit_bulk(order_ids=ids)
        assert again.claimed == 0
        assert set(paper_venue.placement_counts().values()) == {1}
        # submitted_at is when the venue answered, the same instant for the whole batch
        stamps = set(Order.objects.filter(pk__in=ids).values_list("submitted_at", flat=True))
        assert stamps == {first.venue_answered_at}

    def test_venue_refusals_fail_their_orders_only(
        self, paper_symbols: dict[str, Symbol], market: dict[str, Any], paper_venue: PaperVenue
    ) -> None:
        rich, poor = _customers(2)
        paper_venue.set_balance(poor.user.wallet_addr, D(1))
        result = _create(
            _orders([rich, poor], paper_symbols["ETH"], quantity=D(1), price=D(2600)),
            dispatch=False,
        )
        outcome = orders_submit_bulk(order_ids=[o.id for o in result.created])
        assert (outcome.submitted, outcome.failed) == (1, 1)
        failed = Order.objects.get(user=poor.user)
        assert failed.status == OrderStatus.FAILED
        assert failed.error_code == "insufficient_margin"
        assert Order.objects.get(user=rich.user).status == OrderStatus.FILLED

    def test_a_batch_lost_on_the_way_back_is_looked_up_never_resent(
        self, paper_symbols: dict[str, Symbol], market: dict[str, Any], paper_venue: PaperVenue
    ) -> None:
        """The venue executes the batch, the answer is lost: the orders go back to the outbox
        and the next attempt finds them by cloid instead of placing them again."""
        from trading.exchanges.paper import bulk as paper_bulk

        result = _create(_orders(_customers(2), paper_symbols["ETH"]), dispatch=False)
        ids = [o.id for o in result.created]
        real = paper_bulk.place_batch

        def executed_then_lost(venue: Any, placements: Any) -> Any:
            real(venue, placements)
            raise ConnectionError("connection reset")

        with mock.patch.object(paper_bulk, "place_batch", executed_then_lost):
            outcome = orders_submit_bulk(order_ids=ids)
        assert outcome.submitted == 0
        assert len(outcome.retries) == 2
        # the backoff is over
        past = timezone.now() - timedelta(seconds=5)
        OrderOutbox.objects.filter(order_id__in=ids).update(claimed_until=past, available_at=past)
        for order_id in ids:
            assert order_submit(order_id=order_id).status == "done"
        assert set(Order.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
            OrderStatus.FILLED
        }
        assert set(paper_venue.placement_counts().values()) == {1}

    def test_the_task_takes_a_json_chunk(
        self, paper_symbols: dict[str, Symbol], market: dict[str, Any]
    ) -> None:
        from trading.tasks import orders_submit_bulk_task

        result = _create(_orders(_customers(2), paper_symbols["ETH"]), dispatch=False)
        submitted = orders_submit_bulk_task(json.dumps([str(o.id) for o in result.created]))
        assert submitted == 2
