"""Monthly statements: closing a month (idempotent, totals that add up and match the ledger),
the CSV with every fee row, the PDF made from the same data, and the portal pages."""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import StaffFactory, UserFactory
from billing import documents, services
from billing.models import FeeLedgerEntry, Statement

D = Decimal
pytestmark = pytest.mark.django_db
JAN = date(2025, 1, 1)


def pdf_text(body: bytes) -> str:
    """The text drawn in a PDF: every content stream inflated, the string operands joined."""
    assert body.startswith(b"%PDF-")
    chunks = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", body, re.S):
        raw = match.group(1)
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)
        chunks.extend(re.findall(rb"\((.*?)(?<!\\)\)\s*Tj", raw))
    return " ".join(c.decode("latin-1") for c in chunks)


@pytest.fixture
def january(strategy: Any, copied_fill: Any) -> dict[str, Any]:
    """January 2025 for one customer: two fills (builder + copy fees), a Pro period, a payment,
    a reversal; one February fee that must not appear."""
    user = strategy.user
    jan = datetime(2025, 1, 10, 9, tzinfo=UTC)
    fills = [copied_fill(strategy, size="2", price="1500.5"), copied_fill(strategy, price="2000")]
    services.fill_fees_accrue(fill_ids=[f.pk for f in fills], now=jan)
    services.subscription_subscribe(user=user, plan_code="pro", now=jan + timedelta(hours=1))
    services.payment_record(
        user=user, amount="20", reference="pay-jan", currency="USDC", now=jan + timedelta(days=2)
    )
    copy = FeeLedgerEntry.objects.filter(fill=fills[1], fee_category="copy_fee").get()
    services.fee_reverse(
        fee_id=copy.pk, actor=StaffFactory.create(), reason="goodwill", now=jan + timedelta(days=3)
    )
    later = copied_fill(strategy, price="999")
    services.fill_fees_accrue(fill_ids=[later.pk], now=datetime(2025, 2, 1, tzinfo=UTC))
    return {"user": user, "fills": fills}


def test_closing_a_month(january: dict[str, Any]) -> None:
    user = january["user"]
    now = datetime(2025, 2, 1, 2, tzinfo=UTC)
    assert services.statements_close(month=JAN, now=now) == 1
    assert services.statements_close(month=JAN, now=now) == 0  # idempotent
    statement = Statement.objects.get(user=user, month=JAN)
    # Fees: builder 3.001 + 2.0, copy 1.5005 + 1.0 (reversed), plan 49.
    assert statement.charges == D("56.5015")
    assert statement.reversals == D(1)
    assert statement.collected_by_venue == D("5.001")
    assert statement.payments == D(20)
    assert statement.opening_balance == D(0)
    # Owed: 1.5005 + 1.0 - 1.0 (reversed) + 49 - 20 = 30.5005.
    assert statement.closing_balance == D("30.5005")
    assert statement.fee_count == 6
    # The closing balance is the receivable's entries up to the month end.
    from billing.selectors import receivable_balance

    assert receivable_balance(user=user, before=datetime(2025, 2, 1, tzinfo=UTC)) == {
        "USDC": statement.closing_balance
    }


def test_a_month_that_has_not_ended_cannot_be_closed(january: dict[str, Any]) -> None:
    from config.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.statements_close(month=JAN, now=datetime(2025, 1, 31, tzinfo=UTC))
    assert not Statement.objects.exists()


def test_csv_has_every_fee_row_of_the_month(january: dict[str, Any]) -> None:
    text = documents.statement_csv(user=january["user"], month=JAN)
    lines = text.strip().splitlines()
    assert lines[0].startswith("booked_at,fee_id,kind,fee_type")
    assert len(lines) == 1 + 6  # header + 2 builder + 2 copy + plan + reversal
    assert sum(1 for line in lines if ",reversal," in line) == 1
    assert any(",-1.00000000," in line for line in lines)  # the reversal, signed
    assert "999" not in text  # the February fill is not in January


def test_pdf_is_generated_from_the_ledger(january: dict[str, Any]) -> None:
    body = documents.statement_pdf(user=january["user"], month=JAN)
    text = pdf_text(body)
    assert "Statement January 2025" in text
    assert "56.5015" in text  # fees charged
    assert "30.5005" in text  # balance due
    assert "pay-jan" in text
    assert "Builder fee" in text
    assert "Plan fee" in text


def test_portal_statement_pages_and_downloads(january: dict[str, Any], client: Client) -> None:
    user = january["user"]
    client.force_login(user)
    services.statements_close(month=JAN, now=datetime(2025, 2, 1, 2, tzinfo=UTC))
    listing = client.get(reverse("billing:statements"))
    assert listing.status_code == 200
    assert b"January 2025" in listing.content
    page = client.get(reverse("billing:statement", args=["2025-01"]))
    assert page.status_code == 200
    assert b"30.5005" in page.content
    csv_response = client.get(reverse("billing:statement-csv", args=["2025-01"]))
    assert csv_response["Content-Type"].startswith("text/csv")
    assert b"".join(csv_response.streaming_content).count(b"\n") == 7  # type: ignore[attr-defined]
    pdf = client.get(reverse("billing:statement-pdf", args=["2025-01"]))
    assert pdf["Content-Type"] == "application/pdf"
    assert "30.5005" in pdf_text(pdf.content)
    assert client.get(reverse("billing:statement", args=["2025-13"])).status_code == 404
    # Another customer sees only their own (empty) month.
    other = UserFactory.create()
    client.force_login(other)
    theirs = client.get(reverse("billing:statement-csv", args=["2025-01"]))
    assert b"".join(theirs.streaming_content).count(b"\n") == 1  # type: ignore[attr-defined]


def test_csv_under_asgi_streams_in_batches(
    january: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served by the ASGI app, the CSV is an async iterator of batches read in the sync thread
    (a plain iterator would be read whole by Django before the first byte goes out)."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncRequestFactory

    from billing import views

    monkeypatch.setattr(views, "CSV_BATCH_LINES", 2)
    user = january["user"]
    request = AsyncRequestFactory().get(reverse("billing:statement-csv", args=["2025-01"]))
    request.user = user
    response = views.statement_csv(request, "2025-01")
    assert response.is_async

    async def collect() -> list[bytes]:
        return [chunk async for chunk in response.streaming_content]  # type: ignore[union-attr]

    chunks = async_to_sync(collect)()
    assert len(chunks) == 4  # the header and 6 fee lines, two at a time
    assert b"".join(chunks).decode() == documents.statement_csv(user=user, month=JAN)


def test_portal_overview_and_plan_forms(user: Any, client: Client) -> None:
    client.force_login(user)
    page = client.get(reverse("billing:overview"))
    assert page.status_code == 200
    assert b"Your plan: Free" in page.content
    response = client.post(reverse("billing:subscribe"), {"plan": "pro"})
    assert response.status_code == 302
    assert b"Your plan: Pro" in client.get(reverse("billing:overview")).content
    client.post(reverse("billing:cancel"), {"confirm": "on"})
    assert b"Cancelled (at period end)" in client.get(reverse("billing:overview")).content
    anonymous = Client()
    assert anonymous.get(reverse("billing:overview")).status_code == 302


def test_portal_page_query_counts(
    january: dict[str, Any], client: Client, django_assert_max_num_queries: Callable[..., Any]
) -> None:
    client.force_login(january["user"])
    with django_assert_max_num_queries(20):
        assert client.get(reverse("billing:overview")).status_code == 200
    with django_assert_max_num_queries(15):
        assert client.get(reverse("billing:statement", args=["2025-01"])).status_code == 200
