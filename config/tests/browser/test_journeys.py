"""The acceptance journeys of the portal and the back office, in headless Chromium.

A new customer signs in with a browser wallet, sets up an agent wallet (the ``approveAgent``
signature through ``window.ethereum``), builds a two-trader portfolio, starts it, watches a copied
order and its position arrive without a reload, and downloads a statement. A staff member signs
in to the back office with a TOTP code and suspends a customer, whose strategies show as paused.

Every step leaves a numbered screenshot in artifacts/browser/<journey>/. The copied order comes
from a real leader fill handed to the copy engine (``trader_fills_ingest``) in the test thread;
the engine, the paper venue, the ledger and the live stream do the rest.
"""

from __future__ import annotations

import csv
import io
import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest

from accounts.models import User
from config.tests.browser.harness import BrowserWallet, Journey

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
PRICES = {"BTC": "50000", "ETH": "2500", "SOL": "100"}
_tids = itertools.count(50_000)


# --------------------------------------------------------------------------- fixtures


def _wipe(prefix: str) -> None:
    from analytics.buffer import buffer_redis
    from trading.stores import market_redis, paper_redis

    for client in (market_redis(), paper_redis(), buffer_redis()):
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


@pytest.fixture
def namespace(settings: Any) -> Iterator[str]:
    """Own Redis keys for this journey; fills and ticks pushed to the browser over /ws/v1/."""
    prefix = f"test-journey-{uuid.uuid4().hex[:12]}:"
    settings.TANDEM = {
        **settings.TANDEM,
        "REDIS_KEY_PREFIX": prefix,
        "PAPER_LATENCY_MS": 0,
        "MARKET_DATA_VENUE": "paper",
        # As in production: the live stream, fee accrual and the copy engine's bookkeeping.
        "FILL_LISTENERS": [
            "trading.live.fills_published",
            "billing.services.fill_listener",
            "copytrade.services.copy_fills_listener",
        ],
        "TICK_LISTENERS": ["trading.live.ticks_published"],
        "COPY_MAX_SIGNAL_AGE_SECONDS": None,
        "PAPER_STARTING_BALANCE": "10000",
    }
    yield prefix
    _wipe(prefix)


@pytest.fixture
def markets(namespace: str, transactional_db: Any) -> None:
    """The paper venue's symbols and a deep book at known prices (before the live server: the
    publishing happens on this thread, ahead of Playwright's event loop)."""
    from trading.marketdata import quote_tick, ticks_publish
    from trading.services import symbols_sync

    symbols_sync(venue="paper")
    ticks_publish(
        [
            quote_tick("paper", name, Decimal(price), spread_bps=Decimal(2), size=Decimal(10**6))
            for name, price in PRICES.items()
        ]
    )


@pytest.fixture
def traders(transactional_db: Any) -> list[Any]:
    """Two traders at the top of the directory the strategy builder lists."""
    from copytrade.tests.factories import TraderFactory

    return [
        TraderFactory.create(
            alias="Alpha Whale", account_value=Decimal(100_000), public_score=Decimal(95)
        ),
        TraderFactory.create(
            alias="Beta Scalper", account_value=Decimal(50_000), public_score=Decimal(90)
        ),
    ]


def leader_fill(coin: str, side: str, size: str, price: str, *, start: str) -> dict[str, Any]:
    """A userFills record as the venue sends it."""
    tid = next(_tids)
    return {
        "coin": coin,
        "px": price,
        "sz": size,
        "side": "B" if side == "buy" else "A",
        "time": int(time.time() * 1000),
        "startPosition": start,
        "dir": "Open Long" if side == "buy" else "Open Short",
        "closedPnl": "0.0",
        "hash": f"0x{tid:064x}",
        "oid": tid,
        "crossed": True,
        "fee": "0.0",
        "tid": tid,
        "feeToken": "USDC",
    }


def wallet_sign_in(page: Any, live: Any, journey: Journey) -> None:
    page.goto(live.url + "/")
    journey.shot("home")
    page.get_by_role("link", name="Sign in").first.click()
    journey.shot("sign-in")
    page.get_by_role("button", name="Sign in with wallet").click()
    page.wait_for_url("**/dashboard/")
    journey.shot("dashboard")


# --------------------------------------------------------------------------- customer


def test_new_customer_copies_a_two_trader_portfolio_and_downloads_a_statement(
    markets: None,
    traders: list[Any],
    live: Any,
    page: Any,
) -> None:
    from accounts.services import user_kyc_level_set
    from accounts.tests.factories import StaffFactory
    from copytrade.models import CopyStrategy, StrategyStatus
    from copytrade.services import trader_fills_ingest
    from trading.models import Order, Position

    alpha = traders[0]
    wallet = BrowserWallet()
    wallet.install(page)
    journey = Journey("customer-journey", page)

    # 1. Sign in with the browser wallet (SIWE, personal_sign).
    wallet_sign_in(page, live, journey)
    user = User.objects.get(wallet_addr=wallet.address)
    # Staff verify the customer's identity (KYC level 1: may trade).
    user_kyc_level_set(user=user, level=1, actor=StaffFactory.create())

    # 2. An agent wallet: generated by Tandem, approved with approveAgent (EIP-712).
    page.goto(live.url + "/accounts/settings/agent-wallets/")
    assert page.get_by_text("No agent wallet yet.").is_visible()
    page.get_by_label("Name").fill("Paper agent")
    page.get_by_label("Exchange").select_option("paper")
    journey.shot("agent-wallet-form")
    page.get_by_role("button", name="Create").click()
    page.get_by_role("heading", name="Approve it with your wallet").wait_for()
    journey.shot("agent-wallet-approval")
    page.get_by_role("button", name="Sign with wallet").click()
    page.get_by_text("Agent wallet approved and active.").wait_for()
    journey.shot("agent-wallet-active")
    assert wallet.signed == ["personal_sign", "eth_signTypedData_v4"]
    agent = user.agent_wallets.get()
    assert agent.status == "active"

    # 3. A two-trader portfolio in the strategy builder, simulated, then started.
    page.goto(live.url + "/copy/strategies/new/")
    page.get_by_label("Name", exact=True).fill("Two whales")
    page.get_by_label("Weight of Alpha Whale").fill("0.6")
    page.get_by_label("Weight of Beta Scalper").fill("0.4")
    page.locator("#weights-total").get_by_text("100.00%").wait_for()
    page.get_by_label("Minimum order (USD)").fill("1")
    page.get_by_label("Agent wallet").select_option(str(agent.pk))
    page.get_by_role("button", name="Simulate").click()
    page.locator("#simulation").get_by_text("Over the last 30 days").wait_for()
    journey.shot("strategy-builder")
    page.get_by_role("button", name="Save and start copying").click()
    page.get_by_text("Strategy created.").wait_for()
    strategy = CopyStrategy.objects.get(user=user)
    assert strategy.status == StrategyStatus.ACTIVE
    assert sorted(strategy.allocations.values_list("trader__alias", "weight")) == [
        ("Alpha Whale", Decimal("0.6")),
        ("Beta Scalper", Decimal("0.4")),
    ]
    assert page.locator(f'[data-live-strategy-status="{strategy.pk}"]').inner_text() == "Active"
    journey.shot("strategy-active")

    # 4. The dashboard, live; a leader's fill arrives and is copied, no reload.
    page.goto(live.url + "/dashboard/")
    page.locator("[data-live-status]").get_by_text("Live").wait_for()
    assert page.get_by_text("No copied orders yet").is_visible()
    assert page.get_by_text("No open positions.").is_visible()
    journey.shot("dashboard-before-copy")
    page.evaluate("window.__notReloaded = true")

    result = trader_fills_ingest(
        trader=alpha, fills=[leader_fill("ETH", "buy", "20", "2500", start="0")]
    )
    assert result.orders == 1, result
    order = Order.objects.get(strategy=strategy)
    assert order.is_copy_trade
    assert order.source_trader_id == alpha.pk

    order_row = page.locator(f'[data-live-table="orders"] tr[data-id="{order.pk}"]')
    order_row.get_by_text("filled").wait_for()
    assert order_row.locator('[data-field="strategy"]').inner_text() == "Two whales"
    assert order_row.locator('[data-field="source_trader"]').inner_text() == "Alpha Whale"
    assert order_row.locator('[data-field="quantity"]').inner_text() == "1.2"
    position_row = page.locator('[data-live-table="positions"] tbody tr')
    position_row.get_by_text("ETH").wait_for()
    position = Position.objects.get(agent_wallet=agent, symbol__name="ETH")
    # 10 000 USD of equity (KYC level 1's cap) copying 60% of a 100 000 USD trader who
    # bought 20 ETH: 1.2 ETH.
    assert position.quantity == Decimal("1.2")
    assert position_row.locator('[data-field="quantity"]').inner_text() == "1.2"
    assert not page.get_by_text("No copied orders yet").is_visible()
    assert page.evaluate("window.__notReloaded") is True
    journey.shot("dashboard-copied")

    # The trading page has the order, its fill and the position too.
    page.goto(live.url + "/trading/")
    page.locator(f'[data-live-table="orders"] tr[data-id="{order.pk}"]').wait_for()
    assert page.locator('[data-live-table="fills"] tbody tr').count() == 1
    journey.shot("trading")

    # 5. Billing: this month's statement, downloaded as CSV.
    page.goto(live.url + "/billing/statements/")
    journey.shot("statements")
    month = time.strftime("%Y-%m", time.gmtime())
    page.get_by_role("link", name=time.strftime("%B %Y", time.gmtime())).click()
    page.get_by_role("heading", name="Summary").wait_for()
    journey.shot("statement")
    with page.expect_download() as info:
        page.get_by_role("link", name="Download CSV").click()
    download = info.value
    assert download.suggested_filename == f"tandem-statement-{month}.csv"
    path = download.path()
    assert path is not None
    with open(path, encoding="utf-8") as handle:
        rows = list(csv.reader(io.StringIO(handle.read())))
    assert len(rows) > 1
    assert any("copy" in ",".join(row).lower() for row in rows[1:]), rows
    with page.expect_download() as info:
        page.get_by_role("link", name="Download PDF").click()
    pdf_path = info.value.path()
    assert pdf_path is not None
    with open(pdf_path, "rb") as handle:
        assert handle.read(5) == b"%PDF-"
    journey.shot("statement-downloaded")


# --------------------------------------------------------------------------- staff


@pytest.fixture
def staff_with_totp(transactional_db: Any) -> tuple[User, Callable[[], str]]:
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from accounts.tests.factories import StaffFactory

    staff = StaffFactory.create(password=PASSWORD, is_superuser=True)
    device = TOTPDevice.objects.create(user=staff, name="Authenticator", confirmed=True)

    def token() -> str:
        totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
        totp.time = time.time()
        return str(totp.token()).zfill(device.digits)

    return staff, token


def test_staff_suspends_a_customer_whose_strategies_show_as_paused(
    markets: None,
    traders: list[Any],
    staff_with_totp: tuple[User, Callable[[], str]],
    live: Any,
    context: Any,
    page: Any,
) -> None:
    from accounts.services import user_kyc_level_set
    from accounts.tests.factories import AgentWalletFactory
    from copytrade.models import CopyStrategy, StrategyStatus
    from copytrade.services import strategy_create

    staff, token = staff_with_totp
    alpha, beta = traders

    # A customer copying a portfolio, signed in to the portal in their own browser.
    wallet = BrowserWallet()
    wallet.install(page)
    customer_journey = Journey("staff-suspension-customer", page)
    wallet_sign_in(page, live, customer_journey)
    customer = User.objects.get(wallet_addr=wallet.address)
    user_kyc_level_set(user=customer, level=1, actor=staff)
    agent = AgentWalletFactory.create(user=customer, exchange="paper")
    strategy = strategy_create(
        user=customer,
        name="Portfolio",
        allocations=[
            {"trader": alpha.pk, "weight": Decimal("0.5")},
            {"trader": beta.pk, "weight": Decimal("0.5")},
        ],
        agent_wallet_id=agent.pk,
        activate=True,
    ).strategy
    page.goto(live.url + "/dashboard/")
    page.locator("[data-live-status]").get_by_text("Live").wait_for()
    status = page.locator(f'[data-live-strategy-status="{strategy.pk}"]')
    assert status.inner_text() == "Active"
    customer_journey.shot("customer-active")

    # The staff member, in another browser: password and TOTP code.
    staff_context = context.browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        admin = staff_context.new_page()
        admin.set_default_timeout(15_000)
        journey = Journey("staff-suspension", admin)
        admin.goto(live.url + "/admin/")
        admin.get_by_label("Email").fill(staff.email)
        admin.get_by_label("Password").fill(PASSWORD)
        admin.get_by_label("OTP Token").fill(token())
        journey.shot("admin-login")
        admin.get_by_role("button", name="Log in").click()
        admin.get_by_role("heading", name="Operations").wait_for()
        journey.shot("admin-home")

        # Find the customer and suspend them with the admin action.
        admin.goto(live.url + "/admin/accounts/user/?q=" + customer.wallet_addr)
        row = admin.locator("#result_list tbody tr")
        assert row.count() == 1
        row.locator("input.action-select").check()
        admin.locator("select[name=action]").select_option("suspend")
        journey.shot("admin-suspend-selected")
        admin.get_by_role("button", name="Go").click()
        admin.get_by_text("1 account(s) suspended.").wait_for()
        journey.shot("admin-suspended")
        customer.refresh_from_db()
        assert customer.status == "suspended"

        # The customer's strategies, in the back office: paused, with the reason.
        admin.goto(live.url + "/admin/copytrade/copystrategy/?q=" + customer.wallet_addr)
        strategy_rows = admin.locator("#result_list tbody tr")
        assert strategy_rows.count() == 1
        assert "Paused" in strategy_rows.first.inner_text()
        journey.shot("admin-strategies-paused")
        admin.locator("#result_list tbody tr a").first.click()
        admin.get_by_text("account suspended: suspended by staff").first.wait_for()
        journey.shot("admin-strategy-detail")
    finally:
        staff_context.close()

    strategy = CopyStrategy.objects.get(pk=strategy.pk)
    assert strategy.status == StrategyStatus.PAUSED

    # The customer's open dashboard shows the pause as it happens (user_suspend pauses the
    # strategies before it ends the sessions); a reload finds them signed out, and signing in
    # again is refused while the account is suspended.
    status.get_by_text("Paused").wait_for()
    customer_journey.shot("customer-paused")
    page.reload()
    page.wait_for_url("**/accounts/login/**")
    page.get_by_role("button", name="Sign in with wallet").click()
    page.locator("[data-role=wallet-error]").get_by_text("This account is suspended.").wait_for()
    customer_journey.shot("customer-refused")
    assert "/accounts/login/" in page.url
