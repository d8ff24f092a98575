"""Portal pages: sign-in, password reset, settings (credentials, devices, API keys, agent
wallets, connections). Server-rendered; the wallet JS is a static file, no CDN."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.core import mail
from django.test import Client
from django.urls import reverse
from eth_account.signers.local import LocalAccount

from accounts import services
from accounts.models import AgentWallet, ApiKey, AuthSession, ExchangeConnection, User
from accounts.tests.conftest import typed_sign
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "a long enough passphrase 42"


@pytest.fixture
def owner_browser(client: Client, owner: User) -> Client:
    client.force_login(owner)
    return client


def test_sign_in_page_offers_wallet_and_password_without_cdn(client: Client) -> None:
    page = client.get(reverse("accounts:login"))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Sign in with wallet" in html
    assert 'data-nonce-url="/api/v1/auth/nonce"' in html
    assert 'data-siwe-url="/api/v1/auth/siwe"' in html
    assert 'name="password"' in html
    scripts = re.findall(r'<script[^>]*src="([^"]+)"', html)
    assert "/static/js/wallet.js" in scripts
    assert all(src.startswith("/static/") for src in scripts), scripts
    assert finders.find("js/wallet.js")
    script = Path(str(finders.find("js/wallet.js"))).read_text()
    for call in ("eth_requestAccounts", "personal_sign", "eth_signTypedData_v4", "X-CSRFToken"):
        assert call in script


def test_settings_pages_need_sign_in(client: Client) -> None:
    for name in ("settings", "sessions", "api_keys", "agent_wallets", "connections"):
        response = client.get(reverse(f"accounts:{name}"))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("accounts:login"))


def test_settings_pages_render(owner_browser: Client) -> None:
    for name in ("settings", "sessions", "api_keys", "agent_wallets", "connections"):
        response = owner_browser.get(reverse(f"accounts:{name}"))
        assert response.status_code == 200, name
        assert b'aria-current="page"' in response.content


def test_add_email_and_password_then_sign_in_with_them(owner_browser: Client, owner: User) -> None:
    response = owner_browser.post(
        reverse("accounts:settings"),
        {"email": "Owner@Example.com", "new_password": PASSWORD, "confirm_password": PASSWORD},
    )
    assert response.status_code == 302
    owner.refresh_from_db()
    assert owner.email == "owner@example.com"
    assert owner.check_password(PASSWORD)
    # Still signed in on this browser after the password change.
    assert owner_browser.get(reverse("accounts:settings")).status_code == 200
    # Changing it again needs the current password.
    refused = owner_browser.post(
        reverse("accounts:settings"),
        {
            "email": "owner@example.com",
            "new_password": PASSWORD + "x",
            "confirm_password": PASSWORD + "x",
        },
    )
    assert refused.status_code == 200
    assert b"current password is incorrect" in refused.content
    fresh = Client()
    signed_in = fresh.post(
        reverse("accounts:login"), {"username": "owner@example.com", "password": PASSWORD}
    )
    assert signed_in.status_code == 302


def test_password_reset_by_email(client: Client) -> None:
    user = UserFactory.create(email="erin@example.com", password="old password that is long")
    UserFactory.create(email="nopass@example.com")  # wallet-only: no usable password, no email
    suspended = UserFactory.create(email="gone@example.com", password=PASSWORD, status="suspended")
    for email in ("erin@example.com", "nopass@example.com", suspended.email, "x@example.com"):
        response = client.post(reverse("accounts:password_reset"), {"email": email})
        assert response.status_code == 302
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["erin@example.com"]
    link = re.search(r"http://[^/]+(/accounts/reset/\S+/)", str(mail.outbox[0].body))
    assert link
    form_page = client.get(link.group(1), follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0]
    done = client.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_reset_request_over_the_api_is_always_202(client: Client) -> None:
    UserFactory.create(email="fay@example.com", password=PASSWORD)
    url = reverse("v1:accounts-api:auth-password-reset")
    for email in ("fay@example.com", "unknown@example.com"):
        response = client.post(url, {"email": email}, content_type="application/json")
        assert response.status_code == 202
    assert len(mail.outbox) == 1


def test_api_key_is_shown_once_in_the_portal(owner_browser: Client, owner: User) -> None:
    response = owner_browser.post(
        reverse("accounts:api_keys"), {"name": "bot", "scopes": ["read", "trade"]}
    )
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    raw = re.search(r'value="(tdm_[A-Za-z0-9]+\.[A-Za-z0-9_-]+)"', response.content.decode())
    assert raw
    api_key = ApiKey.objects.get(user=owner)
    assert api_key.key_hash == services.api_key_hash(raw.group(1))
    again = owner_browser.get(reverse("accounts:api_keys")).content.decode()
    assert raw.group(1) not in again
    assert api_key.display_prefix in again
    revoke = owner_browser.post(reverse("accounts:api_key_revoke", kwargs={"pk": api_key.pk}))
    assert revoke.status_code == 302
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None


def test_agent_wallet_generate_sign_and_approve_in_the_portal(
    owner_browser: Client, owner: User, owner_account: LocalAccount
) -> None:
    response = owner_browser.post(
        reverse("accounts:agent_wallets"), {"mode": "generate", "exchange": "hyperliquid"}
    )
    assert response.status_code == 302
    wallet = AgentWallet.objects.get(user=owner)
    page = owner_browser.get(response["Location"])
    html = page.content.decode()
    assert "eth_signTypedData_v4" in html
    assert 'id="approval-typed-data"' in html
    typed = json.loads(
        re.search(
            r'id="approval-typed-data" type="application/json">(.*?)</script>', html, re.S
        ).group(1)  # type: ignore[union-attr]
    )
    assert typed["message"]["agentAddress"] == wallet.addr
    forged = owner_browser.post(response["Location"], {"signature": "0x" + "11" * 65})
    assert forged.status_code == 200
    signed = owner_browser.post(
        response["Location"], {"signature": typed_sign(owner_account, typed)}
    )
    assert signed.status_code == 302
    wallet.refresh_from_db()
    assert wallet.status == "active"


def test_another_users_agent_wallet_page_is_404(owner_browser: Client, other_user: User) -> None:
    theirs = services.agent_wallet_generate(user=other_user).agent_wallet
    response = owner_browser.get(reverse("accounts:agent_wallet", kwargs={"pk": theirs.pk}))
    assert response.status_code == 404
    assert theirs.addr not in response.content.decode()
    revoke = owner_browser.post(reverse("accounts:agent_wallet_revoke", kwargs={"pk": theirs.pk}))
    assert revoke.status_code == 302
    theirs.refresh_from_db()
    assert theirs.status == "pending"


def test_connection_form_never_shows_the_secret(owner_browser: Client, owner: User) -> None:
    response = owner_browser.post(
        reverse("accounts:connections"),
        {
            "exchange_name": "bybit",
            "label": "main",
            "api_key": "vk_portal_1234",
            "api_secret": "vs_portal_secret",
        },
        follow=True,
    )
    html = response.content.decode()
    assert "••••1234" in html
    assert "vk_portal_1234" not in html
    assert "vs_portal_secret" not in html
    connection = ExchangeConnection.objects.get(user=owner)
    owner_browser.post(reverse("accounts:connection_toggle", kwargs={"pk": connection.pk}))
    connection.refresh_from_db()
    assert connection.is_active is False
    owner_browser.post(reverse("accounts:connection_delete", kwargs={"pk": connection.pk}))
    assert not ExchangeConnection.objects.filter(pk=connection.pk).exists()


def test_sign_out_everywhere_from_the_portal(owner_browser: Client, owner: User) -> None:
    services.jwt_pair_issue(user=owner, method="siwe")
    response = owner_browser.post(reverse("accounts:sessions_revoke_all"))
    assert response.status_code == 302
    assert not AuthSession.objects.filter(user=owner, revoked_at__isnull=True).exists()
    assert owner_browser.get(reverse("accounts:settings")).status_code == 302


def test_nav_links_to_settings_when_signed_in(owner_browser: Client) -> Any:
    html = owner_browser.get("/").content.decode()
    assert 'href="/accounts/settings/"' in html
