"""The billing back office: every screen renders; the ledger is read-only (no add, change or
delete; money fields read-only); reversal goes through the service from an admin action; the
revenue report sums by day, fee type and plan in a bounded number of queries; plans and
subscription grants are checked by the services."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.sites import site
from django.test import Client, RequestFactory

from accounts.tests.factories import StaffFactory, UserFactory
from billing import services
from billing.models import FeeLedgerEntry, Plan, Subscription

D = Decimal
pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
CHANGELIST = "/admin/billing/feeledgerentry/"


@pytest.fixture
def staff_client(db: Any) -> Client:
    """A superuser signed in to the admin with password and TOTP (the admin demands both)."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    staff = StaffFactory.create(password=PASSWORD, is_superuser=True)
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    client = Client()
    response = client.post(
        "/admin/login/",
        {
            "username": staff.email,
            "password": PASSWORD,
            "next": "/admin/",
            "otp_token": str(totp.token()).zfill(device.digits),
        },
    )
    assert response.status_code == 302, response.content
    return client


@pytest.fixture
def fees(strategy: Any, copied_fill: Any) -> list[FeeLedgerEntry]:
    fills = [copied_fill(strategy, price=str(100 * (n + 1))) for n in range(3)]
    services.fill_fees_accrue(fill_ids=[f.pk for f in fills])
    return list(FeeLedgerEntry.objects.order_by("created_at", "id"))


def test_every_billing_screen_renders(staff_client: Client, fees: list[FeeLedgerEntry]) -> None:
    for model in (
        "plan",
        "subscription",
        "feeledgerentry",
        "journaltransaction",
        "ledgeraccount",
        "statement",
        "strategyequitymark",
        "capitalflow",
        "performanceperiod",
        "strategyfeeschedule",
    ):
        response = staff_client.get(f"/admin/billing/{model}/")
        assert response.status_code == 200, model
    assert staff_client.get(f"{CHANGELIST}{fees[0].pk}/change/").status_code == 200
    assert staff_client.get(f"{CHANGELIST}?q={fees[0].exchange_tx_id}").status_code == 200


def test_the_ledger_is_read_only(staff_client: Client, fees: list[FeeLedgerEntry]) -> None:
    rf = RequestFactory()
    request = rf.get("/")
    request.user = StaffFactory.create(is_superuser=True)
    model_admin = site._registry[FeeLedgerEntry]
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, fees[0])
    assert not model_admin.has_delete_permission(request, fees[0])
    readonly = set(model_admin.get_readonly_fields(request, fees[0]))
    assert {"fee_amount", "fee_bps", "notional_amount", "fee_currency"} <= readonly
    fee = fees[0]
    response = staff_client.post(f"{CHANGELIST}{fee.pk}/change/", {"fee_amount": "0.01"})
    assert response.status_code == 403
    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    assert staff_client.post(f"{CHANGELIST}{fee.pk}/delete/", {"post": "yes"}).status_code == 403
    fee.refresh_from_db()
    assert fee.fee_amount == fees[0].fee_amount


def test_reversal_action_goes_through_the_service(
    staff_client: Client,
    fees: list[FeeLedgerEntry],
    strategy: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    target = next(f for f in fees if f.fee_category == "copy_fee")
    form = staff_client.post(
        CHANGELIST, {"action": "reverse_fees", ACTION_CHECKBOX_NAME: [str(target.pk)]}
    )
    assert form.status_code == 200
    assert b"reason" in form.content
    with django_capture_on_commit_callbacks(execute=True):
        done = staff_client.post(
            CHANGELIST,
            {
                "action": "reverse_fees",
                ACTION_CHECKBOX_NAME: [str(target.pk)],
                "apply": "1",
                "reason": "charged twice",
            },
            follow=True,
        )
    assert b"1 fee(s) reversed" in done.content
    reversal = FeeLedgerEntry.objects.get(reversal_of=target)
    assert reversal.metadata["reason"] == "charged twice"
    from accounts.models import AuditLog

    assert AuditLog.objects.filter(action="fee_reverse", resource_id=target.pk).exists()
    # Reversing the reversal from the admin: refused with the service's reason, nothing written.
    count = FeeLedgerEntry.objects.count()
    refused = staff_client.post(
        CHANGELIST,
        {
            "action": "reverse_fees",
            ACTION_CHECKBOX_NAME: [str(reversal.pk)],
            "apply": "1",
            "reason": "undo",
        },
        follow=True,
    )
    assert b"a reversal cannot be reversed" in refused.content
    assert FeeLedgerEntry.objects.count() == count


def test_revenue_report_by_day_type_and_plan(
    staff_client: Client,
    strategy: Any,
    copied_fill: Any,
    django_assert_max_num_queries: Callable[..., Any],
) -> None:
    day1 = datetime(2025, 1, 10, 8, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    fills = [copied_fill(strategy, size="10", price="1000") for _ in range(2)]
    services.fill_fees_accrue(fill_ids=[fills[0].pk], now=day1)
    services.fill_fees_accrue(fill_ids=[fills[1].pk], now=day2)
    services.subscription_subscribe(user=UserFactory.create(), plan_code="pro", now=day2)
    # Many more rows must not mean more queries.
    for _ in range(20):
        services.fill_fees_accrue(fill_ids=[copied_fill(strategy).pk], now=day2)
    with django_assert_max_num_queries(12):
        response = staff_client.get(f"{CHANGELIST}revenue/?since=2025-01-10&until=2025-01-11")
    assert response.status_code == 200
    rows = response.context["rows"]
    assert {(r["day"].isoformat(), r["fee_type"], r["plan__code"]) for r in rows} == {
        ("2025-01-10", "trading", "free"),
        ("2025-01-10", "copy", "free"),
        ("2025-01-11", "trading", "free"),
        ("2025-01-11", "copy", "free"),
        ("2025-01-11", "subscription", "pro"),
    }
    by_type = dict(response.context["by_type"])
    # builder 10 bps + 10 bps on 10,000 (=20) plus 20 fills of 100 at 10 bps (=2).
    assert by_type[("trading", "USDC")] == D(22)
    assert by_type[("copy", "USDC")] == D(11)
    assert by_type[("subscription", "USDC")] == D(49)
    by_plan = dict(response.context["by_plan"])
    assert by_plan[("Free", "USDC")] == D(33)
    assert by_plan[("Pro", "USDC")] == D(49)
    assert b"Revenue report" in staff_client.get(CHANGELIST).content


def test_plan_admin_checks_fees_through_the_service(staff_client: Client) -> None:
    pro = Plan.objects.get(code="pro")
    data = {
        "code": "pro",
        "name": "Pro",
        "description": "",
        "is_active": "on",
        "sort_order": 10,
        "price": "59",
        "currency": "USDC",
        "billing_period": "monthly",
        "grace_days": 7,
        "max_strategies": 5,
        "max_traders_per_portfolio": 10,
        "max_api_keys": 10,
        "api_rate_per_minute": 600,
        "builder_fee_bps": 11,
        "copy_fee_bps": 2,
        "management_fee_bps": 0,
        "performance_fee_bps": 1500,
        "performance_period": "monthly",
        "trader_share_bps": 5000,
    }
    refused = staff_client.post(f"/admin/billing/plan/{pro.pk}/change/", data)
    assert refused.status_code == 200
    assert b"venue&#x27;s maximum" in refused.content or b"venue's maximum" in refused.content
    pro.refresh_from_db()
    assert (pro.price, pro.builder_fee_bps) == (D(49), 5)
    data["builder_fee_bps"] = 4
    saved = staff_client.post(f"/admin/billing/plan/{pro.pk}/change/", data)
    assert saved.status_code == 302
    pro.refresh_from_db()
    assert (pro.price, pro.builder_fee_bps) == (D(59), 4)


def test_subscription_grants_from_the_admin_refuse_overlaps(staff_client: Client) -> None:
    user = UserFactory.create()
    desk = Plan.objects.get(code="desk")
    start = datetime(2025, 5, 1, tzinfo=UTC)
    data = {
        "user": str(user.pk),
        "plan": str(desk.pk),
        "period_start_0": "2025-05-01",
        "period_start_1": "00:00:00",
        "period_end_0": "2025-06-01",
        "period_end_1": "00:00:00",
    }
    assert staff_client.post("/admin/billing/subscription/add/", data).status_code == 302
    granted = Subscription.objects.get(user=user)
    assert (granted.period_start, granted.price, granted.auto_renew) == (start, D(0), False)
    data["period_start_0"] = "2025-05-20"
    data["period_end_0"] = "2025-06-20"
    refused = staff_client.post("/admin/billing/subscription/add/", data, follow=True)
    assert b"overlaps another subscription period" in refused.content
    assert Subscription.objects.filter(user=user).count() == 1


def test_record_payment_action(staff_client: Client) -> None:
    user = UserFactory.create()
    sub = services.subscription_subscribe(user=user, plan_code="pro").subscription
    url = "/admin/billing/subscription/"
    staff_client.post(
        url,
        {
            "action": "record_payment",
            ACTION_CHECKBOX_NAME: [str(sub.pk)],
            "apply": "1",
            "reference": "wire-42",
        },
    )
    sub.refresh_from_db()
    assert (sub.payment_reference, sub.paid_at is not None) == ("wire-42", True)
