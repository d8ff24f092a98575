"""Live fees: a ``fee`` event on the owner's account stream once the fees commit (never before,
never to anyone else), and the ``fees`` part of the account snapshot (today and this month)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from accounts.tests.factories import StaffFactory
from billing import services
from billing.models import FeeLedgerEntry
from config import streams

D = Decimal
pytestmark = pytest.mark.django_db


def test_fee_events_are_published_after_commit(
    strategy: Any,
    copied_fill: Any,
    live_events: list[Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    fill = copied_fill(strategy, size="2", price="1500.5")
    with django_capture_on_commit_callbacks(execute=False) as pending:
        services.fill_fees_accrue(fill_ids=[fill.pk])
    assert live_events == []  # nothing before the commit
    for callback in pending:
        callback()
    assert len(live_events) == 1
    user_id, event_type, data = live_events[0]
    assert (user_id, event_type, data["count"], data["truncated"]) == (
        strategy.user_id,
        "fee",
        2,
        False,
    )
    assert {f["fee_category"] for f in data["fees"]} == {"builder_fee", "copy_fee"}
    assert {f["fee_amount"] for f in data["fees"]} == {D("3.001"), D("1.5005")}

    live_events.clear()
    copy = FeeLedgerEntry.objects.get(fill=fill, fee_category="copy_fee")
    with django_capture_on_commit_callbacks(execute=True):
        services.fee_reverse(fee_id=copy.pk, actor=StaffFactory.create(), reason="x")
    [(_, _, reversal)] = [e for e in live_events if e[1] == "fee"]
    assert reversal["fees"][0]["kind"] == "reversal"
    assert reversal["fees"][0]["fee_amount"] == D("-1.5005")


def test_the_account_snapshot_has_todays_and_the_months_fees(
    strategy: Any, copied_fill: Any
) -> None:
    import billing.consumers  # noqa: F401 - registers the part (config.routing autodiscovers)

    now = timezone.now()
    services.fill_fees_accrue(fill_ids=[copied_fill(strategy, price="1000").pk], now=now)
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if now - month_start > timedelta(days=1):
        services.fill_fees_accrue(
            fill_ids=[copied_fill(strategy, price="1000").pk], now=now - timedelta(days=1)
        )
        expected_month = D("3")
    else:
        expected_month = D("1.5")
    snapshot = streams.account_snapshot(strategy.user)
    assert snapshot["fees"]["currencies"] == [
        {
            "currency": "USDC",
            "today": "1.50000000",
            "month_to_date": f"{expected_month:.8f}",
            "count": 2 if expected_month == D("1.5") else 4,
        }
    ]
