"""The trading API: owner-scoped lists with filters, cursor pages and constant query counts;
order placement with Idempotency-Key; refusals as problem details with nothing written;
another user's objects are 404; cancel; scopes; the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import AgentWalletFactory, UserFactory
from copytrade.models import CopyStrategy
from trading.exchanges import VenueFill
from trading.models import Fill, Order, OrderOutbox, OrderStatus, Position, RiskEvent
from trading.services import fills_apply
from trading.tests.factories import OrderFactory

D = Decimal
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("paper_symbols", "market")]

ORDERS = "/api/v1/orders/"
FILLS = "/api/v1/fills/"
POSITIONS = "/api/v1/positions/"


@pytest.fixture
def client(trader: Any) -> APIClient:
    api = APIClient()
    api.force_authenticate(trader)
    return api


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    sent: list[str] = []
    monkeypatch.setattr(
        "trading.services.orders.order_submit_dispatch", lambda order_id: sent.append(str(order_id))
    )
    return sent


def _orders(user: Any, n: int, **kwargs: Any) -> list[Order]:
    symbol = kwargs.pop("symbol", None)
    from trading.models import Symbol

    symbol = symbol or Symbol.objects.get(venue="paper", name="ETH")
    wallet = user.agent_wallets.first()
    return [
        OrderFactory.create(user=user, agent_wallet=wallet, symbol=symbol, **kwargs)
        for _ in range(n)
    ]


def _counts() -> tuple[int, ...]:
    return (
        Order.objects.count(),
        OrderOutbox.objects.count(),
        RiskEvent.objects.count(),
        Fill.objects.count(),
        Position.objects.count(),
    )


def test_routes_are_namespaced() -> None:
    assert reverse("v1:trading-api:order-list") == ORDERS
    assert reverse("v1:trading-api:order-cancel", args=["x"]) == f"{ORDERS}x/cancel/"


class TestOrderList:
    def test_only_the_owners_orders_newest_first(self, client: APIClient, trader: Any) -> None:
        mine = _orders(trader, 3)
        other = UserFactory.create()
        AgentWalletFactory.create(user=other)
        _orders(other, 2)
        response = client.get(ORDERS)
        assert response.status_code == 200
        ids = [row["id"] for row in response.json()["results"]]
        assert ids == [str(o.pk) for o in reversed(mine)]
        row = response.json()["results"][0]
        assert row["symbol"] == "ETH"
        assert row["quantity"] == "1.00000000"
        assert row["cloid"].startswith("0x")
        assert row["status"] == "pending"

    def test_filters(self, client: APIClient, trader: Any, paper_symbols: dict[str, Any]) -> None:
        strategy = CopyStrategy.objects.create(user=trader, name="s")
        eth = _orders(trader, 1)[0]
        btc = _orders(
            trader,
            1,
            symbol=paper_symbols["BTC"],
            side="sell",
            strategy=strategy,
            price=D(50000),
            quantity=D("0.01"),
        )[0]
        Order.objects.filter(pk=eth.pk).update(status="cancelled", cancelled_at=timezone.now())
        Order.objects.filter(pk=btc.pk).update(created_at=timezone.now() - timedelta(days=3))

        def ids(query: str) -> set[str]:
            return {row["id"] for row in client.get(ORDERS + query).json()["results"]}

        assert ids("?symbol=BTC") == {str(btc.pk)}
        assert ids("?side=sell") == {str(btc.pk)}
        assert ids(f"?strategy={strategy.pk}") == {str(btc.pk)}
        assert ids("?status=cancelled") == {str(eth.pk)}
        assert ids("?status=cancelled&status=pending") == {str(eth.pk), str(btc.pk)}
        since = (timezone.now() - timedelta(days=1)).isoformat()
        assert ids(f"?created_after={since.replace('+', '%2B')}") == {str(eth.pk)}
        assert ids(f"?created_before={since.replace('+', '%2B')}") == {str(btc.pk)}
        assert ids("?ordering=created_at") == {str(eth.pk), str(btc.pk)}
        response = client.get(ORDERS + "?status=bogus")
        assert response.status_code == 400
        assert "status" in response.json()["errors"]

    def test_cursor_pages(self, client: APIClient, trader: Any) -> None:
        made = _orders(trader, 5)
        first = client.get(ORDERS + "?page_size=2").json()
        assert len(first["results"]) == 2
        assert first["next"]
        assert "cursor=" in first["next"]
        second = client.get(first["next"]).json()
        third = client.get(second["next"]).json()
        seen = [r["id"] for page in (first, second, third) for r in page["results"]]
        assert seen == [str(o.pk) for o in reversed(made)]
        assert third["next"] is None

    @pytest.mark.parametrize("path", [ORDERS, FILLS, POSITIONS])
    def test_query_count_does_not_grow_with_rows(
        self,
        client: APIClient,
        trader: Any,
        wallet: Any,
        path: str,
        django_assert_num_queries: Callable[..., Any],
    ) -> None:
        def make(n: int, offset: int) -> None:
            orders = _orders(trader, n)
            fills_apply(
                agent_wallet=wallet,
                fills=[
                    VenueFill(
                        venue_fill_id=f"q{offset + i}",
                        symbol=["ETH", "BTC", "SOL"][i % 3],
                        side="buy",
                        price=D(100),
                        size=D(1),
                        time_ms=1_700_000_000_000 + offset + i,
                        cloid=orders[i].cloid,
                    )
                    for i in range(n)
                ],
            )

        make(1, 0)
        with CaptureQueriesContext(connection) as one_row:
            assert client.get(path).status_code == 200
        make(49, 100)
        with django_assert_num_queries(len(one_row)):
            response = client.get(path)
        assert len(response.json()["results"]) >= 3


class TestOrderCreate:
    def test_created_with_201(
        self,
        client: APIClient,
        trader: Any,
        no_dispatch: list[str],
        django_capture_on_commit_callbacks: Callable[..., Any],
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                ORDERS,
                {
                    "symbol": "ETH",
                    "side": "buy",
                    "quantity": "0.5",
                    "order_type": "limit",
                    "price": "2400",
                    "leverage": 3,
                },
                format="json",
            )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert (body["status"], body["price"], body["leverage"], body["time_in_force"]) == (
            "pending",
            "2400.00000000",
            "3.00",
            "Gtc",
        )
        assert no_dispatch == [body["id"]]

    def test_repeated_idempotency_key_returns_the_first_order_with_200(
        self,
        client: APIClient,
        no_dispatch: list[str],
        django_capture_on_commit_callbacks: Callable[..., Any],
    ) -> None:
        payload = {"symbol": "ETH", "side": "buy", "quantity": "1"}
        with django_capture_on_commit_callbacks(execute=True):
            first = client.post(ORDERS, payload, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
        with django_capture_on_commit_callbacks(execute=True):
            again = client.post(ORDERS, payload, format="json", HTTP_IDEMPOTENCY_KEY="key-1")
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["id"] == first.json()["id"]
        assert again["Idempotent-Replayed"] == "true"
        assert Order.objects.count() == 1
        assert len(no_dispatch) == 1
        conflict = client.post(
            ORDERS, {**payload, "quantity": "2"}, format="json", HTTP_IDEMPOTENCY_KEY="key-1"
        )
        assert conflict.status_code == 409
        assert conflict.json()["code"] == "idempotency_key_reused"

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"quantity": "0"}, "quantity"),
            ({"quantity": "-2"}, "quantity"),
            ({"order_type": "limit", "price": "2400.123"}, "price"),
            ({"quantity": "0.001"}, "quantity"),
            ({"symbol": "NOPE"}, "symbol"),
            ({"leverage": 26}, "leverage"),
            ({"side": "up"}, "side"),
        ],
    )
    def test_bad_input_is_a_problem_with_field_errors_and_writes_nothing(
        self, client: APIClient, no_dispatch: list[str], payload: dict[str, Any], field: str
    ) -> None:
        before = _counts()
        response = client.post(
            ORDERS, {"symbol": "ETH", "side": "buy", "quantity": "1", **payload}, format="json"
        )
        assert response.status_code == 400
        assert response["Content-Type"] == "application/problem+json"
        assert field in response.json()["errors"]
        assert _counts() == before
        assert no_dispatch == []

    def test_suspended_account_and_inactive_wallet(
        self, client: APIClient, trader: Any, wallet: Any, no_dispatch: list[str]
    ) -> None:
        before = _counts()
        wallet.status = "inactive"
        wallet.save()
        response = client.post(
            ORDERS, {"symbol": "ETH", "side": "buy", "quantity": "1"}, format="json"
        )
        assert response.status_code == 400
        assert "agent_wallet" in response.json()["errors"]
        trader.status = "suspended"
        trader.save()
        client.force_authenticate(trader)
        response = client.post(
            ORDERS, {"symbol": "ETH", "side": "buy", "quantity": "1"}, format="json"
        )
        assert response.status_code in (400, 401, 403)
        assert _counts() == before

    def test_inactive_symbol_is_a_400_on_the_symbol(
        self, client: APIClient, paper_symbols: dict[str, Any], no_dispatch: list[str]
    ) -> None:
        paper_symbols["ETH"].status = "inactive"
        paper_symbols["ETH"].save()
        before = _counts()
        response = client.post(
            ORDERS, {"symbol": "ETH", "side": "buy", "quantity": "1"}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "symbol_inactive"
        assert "symbol" in response.json()["errors"]
        assert _counts() == before
        assert no_dispatch == []

    def test_suspended_account_is_a_400_on_the_account(
        self, client: APIClient, trader: Any, no_dispatch: list[str]
    ) -> None:
        """A suspended customer is still authenticated (they can see their history); placing
        an order is what is refused, as bad input on the account, with nothing written."""
        trader.status = "suspended"
        trader.save()
        before = _counts()
        response = client.post(
            ORDERS, {"symbol": "ETH", "side": "buy", "quantity": "1"}, format="json"
        )
        assert response.status_code == 400, response.json()
        assert response.json()["code"] == "account_cannot_trade"
        assert "account" in response.json()["errors"]
        assert _counts() == before
        assert no_dispatch == []

    def test_risk_limit_refusal_is_a_400_with_the_limit(
        self, client: APIClient, trader: Any, no_dispatch: list[str]
    ) -> None:
        from trading.services import risk_limit_set

        risk_limit_set(user=trader, max_leverage=D(2))
        response = client.post(
            ORDERS, {"symbol": "ETH", "side": "buy", "quantity": "1", "leverage": 5}, format="json"
        )
        assert response.status_code == 400
        assert response.json()["code"] == "risk_limit_exceeded"
        assert "risk_limit.leverage" in response.json()["errors"]
        assert Order.objects.count() == 0
        assert RiskEvent.objects.count() == 1


class TestOwnership:
    def test_another_users_order_is_not_found(self, client: APIClient) -> None:
        stranger = UserFactory.create()
        AgentWalletFactory.create(user=stranger)
        theirs = _orders(stranger, 1)[0]
        assert client.get(f"{ORDERS}{theirs.pk}/").status_code == 404
        response = client.post(f"{ORDERS}{theirs.pk}/cancel/")
        assert response.status_code == 404
        theirs.refresh_from_db()
        assert theirs.status == OrderStatus.PENDING
        assert client.get(f"{ORDERS}not-a-uuid/").status_code == 404

    def test_anonymous_is_refused(self) -> None:
        assert APIClient().get(ORDERS).status_code in (401, 403)


class TestCancel:
    def test_pending_is_cancelled_at_once_submitted_is_accepted(
        self, client: APIClient, trader: Any
    ) -> None:
        pending = _orders(trader, 1)[0]
        response = client.post(f"{ORDERS}{pending.pk}/cancel/")
        assert (response.status_code, response.json()["status"]) == (200, "cancelled")
        again = client.post(f"{ORDERS}{pending.pk}/cancel/")
        assert again.status_code == 409
        assert again.json()["code"] == "order_final"

    def test_open_order_cancel_goes_to_the_venue(
        self, client: APIClient, trader: Any, django_capture_on_commit_callbacks: Callable[..., Any]
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            created = client.post(
                ORDERS,
                {
                    "symbol": "ETH",
                    "side": "buy",
                    "quantity": "1",
                    "order_type": "limit",
                    "price": "2400",
                },
                format="json",
            ).json()
        assert Order.objects.get(pk=created["id"]).status == OrderStatus.SUBMITTED
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = client.post(f"{ORDERS}{created['id']}/cancel/")
        assert response.status_code == 202
        assert response.json()["cancel_requested_at"]
        for callback in callbacks:
            callback()
        assert Order.objects.get(pk=created["id"]).status == OrderStatus.CANCELLED


class TestFillsAndPositions:
    def test_lists_are_the_owners(self, client: APIClient, trader: Any, wallet: Any) -> None:
        fills_apply(
            agent_wallet=wallet,
            fills=[
                VenueFill(
                    venue_fill_id="a",
                    symbol="ETH",
                    side="buy",
                    price=D(100),
                    size=D(1),
                    time_ms=1_700_000_000_000,
                ),
                VenueFill(
                    venue_fill_id="b",
                    symbol="BTC",
                    side="buy",
                    price=D(100),
                    size=D(1),
                    time_ms=1_700_000_001_000,
                ),
                VenueFill(
                    venue_fill_id="c",
                    symbol="BTC",
                    side="sell",
                    price=D(110),
                    size=D(1),
                    time_ms=1_700_000_002_000,
                ),
            ],
        )
        stranger_wallet = AgentWalletFactory.create(user=UserFactory.create())
        fills_apply(
            agent_wallet=stranger_wallet,
            fills=[
                VenueFill(
                    venue_fill_id="z",
                    symbol="ETH",
                    side="buy",
                    price=D(100),
                    size=D(1),
                    time_ms=1_700_000_000_000,
                )
            ],
        )
        fills = client.get(FILLS).json()["results"]
        assert {f["venue_fill_id"] for f in fills} == {"a", "b", "c"}
        assert {
            f["venue_fill_id"] for f in client.get(FILLS + "?symbol=BTC").json()["results"]
        } == {"b", "c"}
        positions = client.get(POSITIONS).json()["results"]
        assert {p["symbol"] for p in positions} == {"ETH", "BTC"}
        open_only = client.get(POSITIONS + "?is_open=true").json()["results"]
        closed_only = client.get(POSITIONS + "?is_open=false").json()["results"]
        assert [p["symbol"] for p in open_only] == ["ETH"]
        assert [(p["symbol"], p["realized_pnl"], p["is_open"]) for p in closed_only] == [
            ("BTC", "10.00000000", False)
        ]
        stranger_position = Position.objects.get(agent_wallet=stranger_wallet)
        assert client.get(f"{POSITIONS}{stranger_position.pk}/").status_code == 404


def test_views_declare_their_scopes() -> None:
    from accounts.api.permissions import required_scope
    from trading.api.views import FillViewSet, OrderViewSet, PositionViewSet

    order_view = OrderViewSet()
    order_view.action = "create"
    assert required_scope(order_view, "POST") == "trade"
    order_view.action = "cancel"
    assert required_scope(order_view, "POST") == "trade"
    assert required_scope(order_view, "GET") == "read"
    assert required_scope(FillViewSet(), "GET") == "read"
    assert required_scope(PositionViewSet(), "GET") == "read"


def test_openapi_schema_documents_the_endpoints() -> None:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator(api_version="v1").get_schema(request=None, public=True)
    paths = schema["paths"]
    create = paths["/api/v1/orders/"]["post"]
    assert {"201", "200", "400", "409"} <= set(create["responses"])
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in create["parameters"])
    assert "/api/v1/orders/{id}/cancel/" in paths
    listing = paths["/api/v1/orders/"]["get"]
    names = {p["name"] for p in listing["parameters"]}
    assert {
        "status",
        "symbol",
        "side",
        "strategy",
        "created_after",
        "created_before",
        "cursor",
        "ordering",
    } <= names
    assert "/api/v1/positions/" in paths
    assert "/api/v1/fills/" in paths
    position = schema["components"]["schemas"]["Position"]["properties"]
    assert position["quantity"]["type"] == "string"  # decimals as strings, never floats
