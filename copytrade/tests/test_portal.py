"""Portal pages (leaderboard, trader profile, builder with its running total and simulation,
strategy page with decisions), staff screens, the import command, live streams and the Celery
wiring."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.tests.factories import AgentWalletFactory, UserFactory
from copytrade.models import CopyStrategy, Trader, TraderSource
from copytrade.services import trader_fills_ingest
from copytrade.tests.conftest import fill
from copytrade.tests.factories import TraderFactory

D = Decimal
pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture
def customer(db: Any, paper_symbols: Any) -> Any:
    user = UserFactory.create(kyc_level=2, password=PASSWORD)
    AgentWalletFactory.create(user=user, exchange="paper", max_leverage=20)
    return user


@pytest.fixture
def browser(customer: Any) -> Client:
    client = Client()
    client.force_login(customer)
    return client


class TestPages:
    def test_leaderboard_page_with_filters(self, client: Client, leader: Any) -> None:
        with mock.patch("analytics.selectors.leaderboard", side_effect=ConnectionError("down")):
            page = client.get("/copy/leaderboard/", {"period": "7d", "metric": "pnl"})
        assert page.status_code == 200
        assert leader.alias in page.content.decode()
        assert "not available right now" in page.content.decode()
        with mock.patch("analytics.selectors.leaderboard", return_value=[]):
            partial = client.get("/copy/leaderboard/", HTTP_HX_REQUEST="true")
        assert b"<html" not in partial.content

    def test_trader_profile_and_follow(self, browser: Client, customer: Any, leader: Any) -> None:
        page = browser.get(f"/copy/traders/{leader.pk}/")
        assert page.status_code == 200
        assert b"Follow" in page.content
        answer = browser.post(f"/copy/traders/{leader.pk}/follow/", {"copy_pct": "10"})
        strategy = CopyStrategy.objects.get(user=customer)
        assert answer.status_code == 302
        assert answer["Location"] == f"/copy/strategies/{strategy.pk}/"
        assert strategy.mode == "single_trader"

    def test_builder_total_simulation_and_creation(self, browser: Client, customer: Any) -> None:
        a, b = TraderFactory.create(alias="Alpha"), TraderFactory.create(alias="Beta")
        page = browser.get("/copy/strategies/new/")
        assert page.status_code == 200
        assert b"Alpha" in page.content
        total = browser.post(
            "/copy/strategies/weights/", {f"weight_{a.pk}": "0.7", f"weight_{b.pk}": "0.5"}
        )
        assert b"120.00%" in total.content
        assert b"at most 100%" in total.content
        form = {
            "name": "Built", "mode": "portfolio", "size_mode": "proportional", "copy_pct": "50",
            "max_leverage": "5", "slippage_bps": "20", "min_order_usd": "10",
            "follow_new_entries_only": "on", "rebalance_threshold_bps": "50",
            f"weight_{a.pk}": "0.6", f"weight_{b.pk}": "0.4",
        }  # fmt: skip
        simulated = browser.post("/copy/strategies/simulate/", {**form, "days": "7"})
        assert simulated.status_code == 200
        assert b"Over the last 7 days" in simulated.content
        refused = browser.post("/copy/strategies/new/", {**form, f"weight_{b.pk}": "0.5"})
        assert refused.status_code == 200  # the form again, with the reason
        assert b"at most 1" in refused.content
        assert refused.content.count(b'class="form-errors"') == 1  # said once, at the top
        assert b'value="0.6"' in refused.content  # the weights are kept
        assert not CopyStrategy.objects.exists()
        created = browser.post("/copy/strategies/new/", form)
        strategy = CopyStrategy.objects.get(user=customer)
        assert created.status_code == 302
        assert strategy.allocations.count() == 2

    def test_strategy_page_shows_decisions_and_its_actions_work(
        self,
        browser: Client,
        customer: Any,
        leader: Any,
        market: None,
        django_capture_on_commit_callbacks: Callable[..., Any],
    ) -> None:
        from copytrade.models import FollowerEquity
        from copytrade.services import strategy_activate, strategy_create

        wallet = customer.agent_wallets.get()
        FollowerEquity.objects.create(
            agent_wallet=wallet, account_value=D(10_000), fetched_at=timezone.now()
        )
        strategy = strategy_create(
            user=customer, name="Page", allocations=[{"trader": leader.pk, "weight": "1"}],
            agent_wallet_id=wallet.pk, follow_new_entries_only=False,
        ).strategy  # fmt: skip
        strategy_activate(strategy=strategy)
        t = int(time.time() * 1000) + 5
        with django_capture_on_commit_callbacks(execute=True):
            trader_fills_ingest(
                trader=leader,
                fills=[
                    fill("ETH", "buy", "10", "2500", start="0", time_ms=t),
                    fill("ETH", "buy", "0.01", "2500", start="10", time_ms=t + 1),
                ],
            )
        page = browser.get(f"/copy/strategies/{strategy.pk}/")
        body = page.content.decode()
        assert page.status_code == 200
        # The status badge is kept current by the account stream (static/js/live.js).
        assert f'data-live-strategy-status="{strategy.pk}"' in body
        assert "js/live.js" in body
        assert "below minimum" in body
        assert "Copied." in body
        skipped = browser.get(f"/copy/strategies/{strategy.pk}/", {"outcome": "skipped"})
        assert "Copied." not in skipped.content.decode()
        browser.post(f"/copy/strategies/{strategy.pk}/pause/")
        strategy.refresh_from_db()
        assert strategy.status == "paused"
        other = Client()
        other.force_login(UserFactory.create())
        assert other.get(f"/copy/strategies/{strategy.pk}/").status_code == 404
        assert other.post(f"/copy/strategies/{strategy.pk}/activate/").status_code == 404

    def test_pages_need_signing_in(self, client: Client) -> None:
        assert client.get("/copy/").status_code == 302
        assert client.get("/copy/strategies/new/").status_code == 302


@pytest.fixture
def admin_client(db: Any) -> Client:
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
        {"username": staff.email, "password": PASSWORD, "next": "/admin/",
         "otp_token": str(totp.token()).zfill(device.digits)},
    )  # fmt: skip
    assert response.status_code == 302
    return client


class TestAdmin:
    def test_staff_screens_and_the_pause_action(
        self, admin_client: Client, leader: Any, follower: Any
    ) -> None:
        strategy = follower(leader)
        for path in (
            "/admin/copytrade/trader/",
            f"/admin/copytrade/trader/{leader.pk}/change/",
            "/admin/copytrade/copystrategy/?status__exact=active",
            f"/admin/copytrade/copystrategy/{strategy.pk}/change/",
            "/admin/copytrade/copyallocation/?status__exact=active",
            f"/admin/copytrade/copydecision/?strategy__id__exact={strategy.pk}",
            "/admin/copytrade/traderevent/",
        ):
            assert admin_client.get(path).status_code == 200, path
        answer = admin_client.post(
            "/admin/copytrade/copystrategy/",
            {"action": "strategies_pause", "_selected_action": [str(strategy.pk)]},
        )
        assert answer.status_code == 302
        strategy.refresh_from_db()
        assert (strategy.status, strategy.status_reason) == ("paused", "paused by staff")

    def test_staff_add_a_trader_through_the_service(self, admin_client: Client) -> None:
        address = "0x" + "cd" * 20
        answer = admin_client.post(
            "/admin/copytrade/trader/add/",
            {"alias": "Staff pick", "src_uid": address, "exchange": "hyperliquid", "tags": "swing",
             "is_active": "on", "source": "staff", "metadata": "{}",
             "positions-TOTAL_FORMS": "0", "positions-INITIAL_FORMS": "0"},
        )  # fmt: skip
        assert answer.status_code == 302, answer.content[:500]
        trader = Trader.objects.get(src_uid=address)
        assert (trader.alias, trader.source, trader.tags) == ("Staff pick", "staff", ["swing"])


class TestImportCommand:
    def test_csv_and_json(self, tmp_path: Path) -> None:
        csv_file = tmp_path / "traders.csv"
        csv_file.write_text(
            "address,alias,exchange,tags\n"
            f"0x{'a1' * 20},Alpha,hyperliquid,swing;btc\n"
            f"0x{'b2' * 20},,hyperliquid,\n"
        )
        out = StringIO()
        call_command("import_traders", str(csv_file), stdout=out)
        assert "2 traders created" in out.getvalue()
        json_file = tmp_path / "traders.json"
        json_file.write_text(json.dumps([{"address": f"0x{'a1' * 20}", "alias": "Alpha 2",
                                          "tags": ["eth"]}]))  # fmt: skip
        call_command("import_traders", str(json_file), stdout=StringIO())
        alpha = Trader.objects.get(src_uid=f"0x{'a1' * 20}")
        assert (alpha.alias, sorted(alpha.tags), alpha.source) == (
            "Alpha 2", ["btc", "eth", "swing"], TraderSource.IMPORT,
        )  # fmt: skip

    def test_one_bad_row_and_nothing_is_imported(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.csv"
        bad.write_text(f"address,alias\n0x{'a1' * 20},Fine\nnot-an-address,Bad\n")
        with pytest.raises(CommandError, match="1 bad rows"):
            call_command("import_traders", str(bad), stdout=StringIO(), stderr=StringIO())
        assert not Trader.objects.exists()


class TestStreams:
    def test_trader_and_leaderboard_streams_and_the_account_part(
        self, leader: Any, follower: Any
    ) -> None:
        import copytrade.consumers as consumers
        from config import streams

        assert streams.spec_for(f"trader.{leader.pk}") is not None
        assert streams.spec_for("leaderboard") is not None
        snapshot = consumers._trader_snapshot_sync(str(leader.pk))
        assert snapshot is not None
        assert snapshot["trader"]["alias"] == "Leader"
        assert consumers._trader_snapshot_sync(str(uuid.uuid4())) is None
        strategy = follower(leader)
        part = streams.account_snapshot(strategy.user)["strategies"]
        assert [s["id"] for s in part] == [str(strategy.pk)]
        with mock.patch("analytics.selectors.leaderboard", side_effect=ConnectionError):
            board = consumers._leaderboard_sync()
        assert board["kpis_available"] is False


def test_celery_wiring() -> None:
    beat = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for task in (
        "copytrade.tasks.traders_poll_task",
        "copytrade.tasks.strategies_align_task",
        "copytrade.tasks.follower_equities_refresh_task",
        "copytrade.tasks.trader_events_export_task",
        "copytrade.tasks.copy_outcomes_record_task",
        "copytrade.tasks.demo_traders_step_task",
    ):
        assert task in beat
    from config.settings import base

    assert "copytrade.services.copy_fills_listener" in base.TANDEM["FILL_LISTENERS"]
