"""The billing API: fees (filters, cursor pages), statements (list, CSV, PDF), plans,
subscription (view, subscribe/change, cancel), summary -- as the owner, another user,
anonymously and with API keys lacking the scope; problem details for bad input; query counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from billing import services
from billing.models import FeeLedgerEntry
from billing.tests.test_statements import pdf_text

D = Decimal
pytestmark = pytest.mark.django_db


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"v1:billing-api:{name}", kwargs=kwargs or None)


@pytest.fixture
def owner_fees(strategy: Any, copied_fill: Any) -> list[FeeLedgerEntry]:
    fills = [copied_fill(strategy, price=str(100 + n)) for n in range(5)]
    services.fill_fees_accrue(fill_ids=[f.pk for f in fills])
    return list(FeeLedgerEntry.objects.filter(user=strategy.user))


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_fee_list_filters_and_cursor_pages(owner_fees: list[FeeLedgerEntry], strategy: Any) -> None:
    client = client_for(strategy.user)
    response = client.get(url("fee-list"), {"page_size": 4})
    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == 4
    assert body["next"]
    assert "cursor=" in body["next"]
    seen = [r["id"] for r in body["results"]]
    page = body
    while page["next"]:
        page = client.get(page["next"]).json()
        seen += [r["id"] for r in page["results"]]
    assert len(seen) == len(set(seen)) == 10  # every fee once, newest first across pages
    first = body["results"][0]
    assert set(first) >= {
        "fee_type",
        "fee_category",
        "fee_bps",
        "fee_amount",
        "fee_currency",
        "notional_amount",
        "calculation_base",
        "transaction_hash",
        "exchange_tx_id",
        "period_start",
        "period_end",
        "metadata",
        "order",
        "strategy",
    }
    assert isinstance(first["fee_amount"], str)  # decimals as strings, never floats
    builders = client.get(url("fee-list"), {"fee_category": "builder_fee"}).json()["results"]
    assert {r["fee_category"] for r in builders} == {"builder_fee"}
    assert len(builders) == 5
    assert client.get(url("fee-list"), {"strategy": str(strategy.pk)}).json()["results"]
    future = client.get(url("fee-list"), {"created_after": "2999-01-01T00:00:00Z"})
    assert future.json()["results"] == []
    assert client.get(url("fee-list"), {"fee_type": "bogus"}).status_code == 400


def test_fee_detail_is_scoped_to_the_owner(owner_fees: list[FeeLedgerEntry], strategy: Any) -> None:
    fee = owner_fees[0]
    assert client_for(strategy.user).get(url("fee-detail", pk=fee.pk)).status_code == 200
    other = client_for(UserFactory.create())
    response = other.get(url("fee-detail", pk=fee.pk))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert other.get(url("fee-list")).json()["results"] == []
    assert APIClient().get(url("fee-list")).status_code == 401


def test_fee_list_query_count_does_not_grow(
    owner_fees: list[FeeLedgerEntry],
    strategy: Any,
    django_assert_max_num_queries: Callable[..., Any],
) -> None:
    client = client_for(strategy.user)
    with django_assert_max_num_queries(4):
        assert len(client.get(url("fee-list")).json()["results"]) == 10


def test_statements_list_and_downloads(strategy: Any, copied_fill: Any) -> None:
    fill = copied_fill(strategy)
    services.fill_fees_accrue(fill_ids=[fill.pk], now=datetime(2025, 1, 5, tzinfo=UTC))
    services.statements_close(month=date(2025, 1, 1), now=datetime(2025, 2, 1, 1, tzinfo=UTC))
    client = client_for(strategy.user)
    listing = client.get(url("statement-list")).json()
    assert [s["month"] for s in listing["results"]] == ["2025-01"]
    statement = listing["results"][0]
    assert statement["charges"] == "0.15000000"  # 10 + 5 bps of 100
    detail = client.get(url("statement-detail", pk=statement["id"]))
    assert detail.status_code == 200
    csv_response = client.get(statement["csv_url"])
    assert csv_response.status_code == 200
    assert csv_response["Content-Type"].startswith("text/csv")
    assert csv_response.getvalue().count(b"\n") == 3
    pdf = client.get(statement["pdf_url"], HTTP_ACCEPT="application/pdf")
    assert pdf.status_code == 200
    assert pdf["Content-Type"] == "application/pdf"
    assert "0.15" in pdf_text(pdf.content)
    other = client_for(UserFactory.create())
    for name in ("statement-detail", "statement-csv", "statement-pdf"):
        response = other.get(url(name, pk=statement["id"]), HTTP_ACCEPT="*/*")
        assert response.status_code == 404, name
    assert other.get(url("statement-list")).json()["results"] == []


def test_plans_and_subscription_flow(user: Any) -> None:
    client = client_for(user)
    plans = client.get(url("plans")).json()
    assert [p["code"] for p in plans] == ["free", "pro", "desk"]
    assert plans[1]["fees"]["builder_fee_bps"] == 5
    assert plans[1]["limits"]["strategies"] == 5
    state = client.get(url("subscription")).json()
    assert state["plan"]["code"] == "free"
    assert state["subscription"] is None
    assert state["limits"]["api_keys"] == 5
    assert state["usage"] == {"strategies": 0, "api_keys": 0}

    started = client.post(url("subscription"), {"plan": "pro"}, format="json")
    assert started.status_code == 201
    assert started.json()["plan"]["code"] == "pro"
    scheduled = client.post(url("subscription"), {"plan": "desk"}, format="json")
    assert scheduled.status_code == 200
    assert scheduled.json()["next_plan"] == "desk"
    cancelled = client.post(url("subscription-cancel"))
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert client.post(url("subscription-cancel")).status_code == 200  # idempotent


@pytest.mark.parametrize(
    ("payload", "field"), [({"plan": "nope"}, "plan"), ({}, "plan"), ({"plan": "free"}, "plan")]
)
def test_bad_subscription_requests_are_problems(
    user: Any, payload: dict[str, Any], field: str
) -> None:
    response = client_for(user).post(url("subscription"), payload, format="json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert field in response.json()["errors"]
    assert not user.subscriptions.exists()
    assert client_for(user).post(url("subscription-cancel")).status_code == 400


def test_api_key_scopes(user: Any, api_key_client: Callable[..., APIClient]) -> None:
    reader = api_key_client("read")
    assert reader.get(url("fee-list")).status_code == 200
    assert reader.get(url("subscription")).status_code == 200
    refused = reader.post(url("subscription"), {"plan": "pro"}, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    assert api_key_client("trade").get(url("fee-list")).status_code == 403
    manager = api_key_client("manage")
    assert manager.post(url("subscription"), {"plan": "pro"}, format="json").status_code == 201


def test_summary(owner_fees: list[FeeLedgerEntry], strategy: Any) -> None:
    body = client_for(strategy.user).get(url("summary")).json()
    today = sum((f.fee_amount for f in owner_fees), D(0))
    assert body["currencies"] == [
        {"currency": "USDC", "today": f"{today:.8f}", "month_to_date": f"{today:.8f}", "count": 10}
    ]
    copy = sum((f.fee_amount for f in owner_fees if f.fee_category == "copy_fee"), D(0))
    assert body["balances"] == [{"currency": "USDC", "balance": f"{copy:.8f}"}]


def test_schema_documents_the_billing_operations() -> None:
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in (
        "/api/v1/billing/fees/",
        "/api/v1/billing/fees/{id}/",
        "/api/v1/billing/statements/",
        "/api/v1/billing/statements/{id}/csv/",
        "/api/v1/billing/statements/{id}/pdf/",
        "/api/v1/billing/plans/",
        "/api/v1/billing/subscription/",
        "/api/v1/billing/subscription/cancel/",
        "/api/v1/billing/summary/",
    ):
        assert path in paths, path
    assert (
        "application/pdf"
        in paths["/api/v1/billing/statements/{id}/pdf/"]["get"]["responses"]["200"]["content"]
    )


def test_the_plans_api_rate_is_enforced_per_customer(
    user: Any, api_key_client: Callable[..., APIClient], plans: Any, settings: Any
) -> None:
    """Plan.api_rate_per_minute (billing/api/throttling.py): API-key and token requests beyond
    the plan's rate get 429 with Retry-After; another customer and portal sessions are not
    affected; a plan with more room allows more."""
    from billing.models import Plan

    settings.BILLING_PLAN_RATE_ENFORCED = True
    Plan.objects.filter(code="free").update(api_rate_per_minute=3)
    Plan.objects.filter(code="pro").update(api_rate_per_minute=5)
    reader = api_key_client("read")
    assert [reader.get(url("summary")).status_code for _ in range(3)] == [200, 200, 200]
    refused = reader.get(url("summary"))
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 0
    # Someone else on the same plan has their own budget; the portal session is not counted.
    other = UserFactory.create()
    assert client_for(other).get(url("summary")).status_code == 200
    portal = APIClient()
    portal.force_login(user)
    assert portal.get(url("summary")).status_code == 200
    # On Pro (5 a minute) the next customer gets five.
    upgraded = UserFactory.create()
    services.subscription_subscribe(user=upgraded, plan_code="pro")
    key = api_key_client("read", owner=upgraded)
    assert [key.get(url("summary")).status_code for _ in range(6)] == [200] * 5 + [429]


def test_the_plans_api_rate_covers_every_api_endpoint(
    api_key_client: Callable[..., APIClient], plans: Any, settings: Any
) -> None:
    """The plan's rate is one of the API's default throttles, not only billing's: a key over
    its plan's rate is refused on the trading and copy-trading endpoints too, and the budget is
    shared across them."""
    from billing.models import Plan

    settings.BILLING_PLAN_RATE_ENFORCED = True
    Plan.objects.filter(code="free").update(api_rate_per_minute=3)
    reader = api_key_client("read")
    answers = [
        reader.get("/api/v1/orders/").status_code,
        reader.get("/api/v1/positions/").status_code,
        reader.get("/api/v1/strategies/").status_code,
        reader.get("/api/v1/orders/").status_code,
    ]
    assert answers == [200, 200, 200, 429]
