"""Staff screens (filters, search, read-only money, the cancel action), the management commands,
the portal page, and the Celery wiring (beat entries, queues)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.admin.sites import site
from django.core.management import CommandError, call_command
from django.test import Client, RequestFactory

from trading.admin import OrderAdmin, cancel_orders
from trading.models import Order, OrderStatus, Symbol, SymbolStatus
from trading.tests.factories import OrderFactory

D = Decimal
DATA = Path(__file__).parent / "data"


PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_client(db: Any) -> Client:
    """A superuser signed in to the admin with password and TOTP (the admin demands both)."""
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.tests.factories import StaffFactory

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


@pytest.mark.django_db
class TestAdmin:
    def test_order_admin_money_is_read_only_and_cancel_uses_the_service(
        self, rf: RequestFactory
    ) -> None:
        order = OrderFactory.create()
        model_admin = OrderAdmin(Order, site)
        request = rf.get("/")
        from accounts.tests.factories import StaffFactory

        request.user = StaffFactory.create(is_superuser=True)
        readonly = set(model_admin.get_readonly_fields(request, order))
        assert {
            "quantity",
            "price",
            "filled_quantity",
            "average_price",
            "fees",
            "status",
            "cloid",
        } <= readonly
        assert not model_admin.has_add_permission(request)
        assert not model_admin.has_delete_permission(request, order)
        messages: list[str] = []

        def record(req: Any, message: Any, *args: Any, **kwargs: Any) -> None:
            messages.append(str(message))

        model_admin.message_user = record  # type: ignore[method-assign,assignment]
        cancel_orders(model_admin, request, Order.objects.filter(pk=order.pk))
        order.refresh_from_db()
        assert order.status == OrderStatus.CANCELLED
        cancel_orders(model_admin, request, Order.objects.filter(pk=order.pk))
        assert any("already cancelled" in m for m in messages)
        assert order.events.filter(kind="cancel_requested").count() == 1

    def test_changelists_render_with_filters_and_search(self, admin_client: Client) -> None:
        order = OrderFactory.create()
        for url in (
            "/admin/trading/order/?status__exact=pending&q=" + order.cloid,
            "/admin/trading/fill/",
            "/admin/trading/position/",
            "/admin/trading/symbol/",
            "/admin/trading/riskevent/",
            f"/admin/trading/order/{order.pk}/change/",
        ):
            response = admin_client.get(url)
            assert response.status_code == 200, url
        listing = admin_client.get("/admin/trading/order/?q=" + order.cloid)
        assert str(order.pk) in listing.content.decode()


@pytest.mark.django_db
class TestCommands:
    def test_sync_symbols_from_a_saved_meta_answer(self) -> None:
        out = StringIO()
        call_command(
            "sync_symbols",
            "--venue",
            "hyperliquid",
            "--from-file",
            str(DATA / "meta_small.json"),
            stdout=out,
        )
        assert "5 created" in out.getvalue()
        btc = Symbol.objects.get(venue="hyperliquid", name="BTC")
        assert (
            btc.venue_asset_id,
            btc.sz_decimals,
            btc.price_max_decimals,
            btc.max_leverage,
            btc.maintenance_margin_rate,
        ) == (0, 5, 1, 50, D("0.01"))
        assert Symbol.objects.get(name="OLD").status == SymbolStatus.INACTIVE
        call_command(
            "sync_symbols",
            "--venue",
            "hyperliquid",
            "--from-file",
            str(DATA / "meta_small.json"),
            stdout=out,
        )
        assert "0 created, 0 updated" in out.getvalue()

    def test_sync_symbols_recorded_meta(self, shared_data: Path) -> None:
        call_command(
            "sync_symbols",
            "--venue",
            "hyperliquid",
            "--from-file",
            str(shared_data / "hyperliquid" / "meta.json"),
            stdout=StringIO(),
        )
        assert Symbol.objects.filter(venue="hyperliquid").count() == 28

    def test_sync_symbols_through_the_adapter_and_deprecation(self) -> None:
        Symbol.objects.create(
            venue="paper",
            name="GONE",
            base_currency="GONE",
            sz_decimals=0,
            lot_size=1,
            min_size=1,
            max_leverage=3,
            maintenance_margin_rate=D("0.1"),
        )
        call_command("sync_symbols", "--venue", "paper", stdout=StringIO())
        assert Symbol.objects.filter(venue="paper", status="active").count() == 6
        assert Symbol.objects.get(name="GONE").status == SymbolStatus.DEPRECATED

    def test_sync_symbols_bad_file(self, tmp_path: Path) -> None:
        bad = tmp_path / "meta.json"
        bad.write_text(json.dumps({"nope": []}))
        with pytest.raises(CommandError):
            call_command("sync_symbols", "--venue", "hyperliquid", "--from-file", str(bad))


@pytest.mark.django_db
def test_portal_page(trader: Any) -> None:
    order = OrderFactory.create(user=trader, agent_wallet=trader.agent_wallets.get())
    client = Client()
    client.force_login(trader)
    response = client.get("/trading/")
    assert response.status_code == 200
    assert order.symbol.name in response.content.decode()


def test_celery_wiring() -> None:
    from config.celery import app

    schedule = settings.CELERY_BEAT_SCHEDULE
    tasks = {entry["task"] for entry in schedule.values()}
    assert {
        "trading.tasks.market_simulator_step",
        "trading.tasks.outbox_sweep_task",
        "trading.tasks.reconcile_all_task",
        "trading.tasks.position_mark_all_task",
        "trading.tasks.fills_sync_all_task",
    } <= tasks
    app.loader.import_default_modules()
    for name in tasks:
        if str(name).startswith("trading."):
            assert name in app.tasks
    routes = settings.CELERY_TASK_ROUTES
    assert routes["trading.tasks.*"] == {"queue": "execution"}
    assert app.tasks["trading.tasks.order_submit_task"].acks_late is True
    assert settings.TANDEM["DEFAULT_VENUE"] == "paper"


def test_lease_must_outlast_the_venue_timeout(settings: Any) -> None:
    from trading.checks import lease_outlasts_venue_timeout

    assert lease_outlasts_venue_timeout() == []
    settings.TANDEM = {
        **settings.TANDEM,
        "ORDER_SUBMIT_LEASE_SECONDS": 5,
        "VENUE_TIMEOUT_SECONDS": 10,
    }
    (error,) = lease_outlasts_venue_timeout()
    assert error.id == "trading.E001"
