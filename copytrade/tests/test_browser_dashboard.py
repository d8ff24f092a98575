"""In the browser: the dashboard's prices and strategy status change as they happen, without a
reload -- market ticks over market.<symbol>, a pause over the account stream."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from accounts.models import User
from config.tests.browser.harness import BrowserWallet, Journey

pytestmark = pytest.mark.browser


@pytest.fixture
def live_ticks(settings: Any, copy_namespace: str) -> None:
    settings.TANDEM = {**settings.TANDEM, "TICK_LISTENERS": ["trading.live.ticks_published"]}


def test_prices_and_strategy_status_update_in_place(
    live_ticks: None,
    paper_symbols: Any,
    market: None,
    leader: Any,
    publish: Any,
    live: Any,
    page: Any,
) -> None:
    from accounts.services import user_kyc_level_set
    from accounts.tests.factories import AgentWalletFactory, UserFactory
    from copytrade.services import strategy_activate, strategy_create
    from copytrade.services.strategies import strategy_pause

    wallet = BrowserWallet()
    wallet.install(page)
    journey = Journey("live-dashboard", page)
    page.goto(live.url + "/")
    page.get_by_role("link", name="Sign in").first.click()
    page.get_by_role("button", name="Sign in with wallet").click()
    page.wait_for_url("**/dashboard/")
    user = User.objects.get(wallet_addr=wallet.address)
    user_kyc_level_set(user=user, level=2, actor=UserFactory.create(is_staff=True))
    agent = AgentWalletFactory.create(user=user, exchange="paper")
    strategy = strategy_create(
        user=user,
        name="Follow the leader",
        allocations=[{"trader": leader.pk, "weight": Decimal(1)}],
        agent_wallet_id=agent.pk,
    ).strategy
    strategy = strategy_activate(strategy=strategy)

    page.goto(live.url + "/dashboard/")
    page.locator("[data-live-status]").get_by_text("Live").wait_for()
    btc = page.locator('[data-live-market="BTC"]')
    assert btc.inner_text() == "50000"
    status = page.locator(f'[data-live-strategy-status="{strategy.pk}"]')
    assert status.inner_text() == "Active"
    journey.shot("before")

    publish("BTC", "51234.5")
    page.wait_for_function(
        "document.querySelector('[data-live-market=\"BTC\"]').textContent === '51234.5'"
    )
    strategy_pause(strategy=strategy, reason="taking a break", actor=user)
    status.get_by_text("Paused").wait_for()
    journey.shot("after")
