"""In the browser: the trading page shows a new order, its fill and the position it opens
without a reload, pushed over /ws/v1/ with the portal session (docs/websocket.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts.models import User
from config.tests.browser.harness import BrowserWallet, Journey

pytestmark = pytest.mark.browser


@pytest.fixture
def live_listeners(settings: Any, trading_namespace: str) -> None:
    settings.TANDEM = {
        **settings.TANDEM,
        "FILL_LISTENERS": ["trading.live.fills_published"],
        "TICK_LISTENERS": ["trading.live.ticks_published"],
    }


def test_orders_fills_and_positions_appear_without_reload(
    live_listeners: None,
    paper_symbols: Any,
    market: Any,
    live: Any,
    page: Any,
) -> None:
    from accounts.services import user_kyc_level_set
    from accounts.tests.factories import AgentWalletFactory, UserFactory
    from trading.services import order_create

    wallet = BrowserWallet()
    wallet.install(page)
    journey = Journey("live-trading-page", page)
    page.goto(live.url + "/")
    page.get_by_role("link", name="Sign in").first.click()
    page.get_by_role("button", name="Sign in with wallet").click()
    page.wait_for_url("**/dashboard/")
    user = User.objects.get(wallet_addr=wallet.address)
    # Staff verify the customer's identity; then an approved paper agent wallet can trade.
    user_kyc_level_set(user=user, level=1, actor=UserFactory.create(is_staff=True))
    AgentWalletFactory.create(user=user, exchange="paper")

    page.goto(live.url + "/trading/")
    page.locator("[data-live-status]").get_by_text("Live").wait_for()
    assert page.get_by_text("No orders yet.").is_visible()
    journey.shot("before")

    result = order_create(user=user, symbol="ETH", side="buy", quantity=Decimal("0.5"))

    order_row = page.locator(f'[data-live-table="orders"] tr[data-id="{result.order.pk}"]')
    order_row.get_by_text("filled").wait_for()
    position_row = page.locator('[data-live-table="positions"] tbody tr')
    position_row.get_by_text("ETH").wait_for()
    assert position_row.locator('[data-field="quantity"]').inner_text() == "0.5"
    assert page.locator('[data-live-table="fills"] tbody tr').count() >= 1
    assert not page.get_by_text("No orders yet.").is_visible()
    journey.shot("after-order")
