"""A first-time visitor signs in with a browser wallet and lands on the dashboard."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import User
from config.tests.browser.harness import BrowserWallet, Journey

pytestmark = pytest.mark.browser


def test_wallet_sign_in_from_the_home_page(live: Any, page: Any) -> None:
    wallet = BrowserWallet()
    wallet.install(page)
    journey = Journey("wallet-sign-in", page)

    page.goto(live.url + "/")
    journey.shot("home")
    page.get_by_role("link", name="Sign in").first.click()
    page.get_by_role("button", name="Sign in with wallet").click()
    page.wait_for_url("**/dashboard/")
    journey.shot("dashboard")

    assert wallet.signed == ["personal_sign"]
    user = User.objects.get(wallet_addr=wallet.address)
    assert page.get_by_text(user.short_wallet).first.is_visible()
