"""Secrets at rest: exchange credentials and agent keys only as MultiFernet ciphertext, masked
everywhere, and re-encrypted by ``manage.py rotate_encryption_keys``."""

from __future__ import annotations

import io
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from accounts import crypto, selectors, services
from accounts.models import AgentWallet, AuditLog, ExchangeConnection, User

pytestmark = pytest.mark.django_db
CONNECTIONS = "v1:accounts-api:exchange-connections"
VENUE_KEY = "vk_live_4f9a8b7c6d5e4f3a2b1c0d9e"
VENUE_SECRET = "vs_SECRET_9z8y7x6w5v4u3t2s1r0q"
VENUE_PASSPHRASE = "correct-horse-passphrase"


def raw_dump() -> str:
    """Every column of every accounts table, as PostgreSQL prints it (bytea as escaped text)."""
    parts = []
    with connection.cursor() as cursor:
        for table in (
            "users",
            "api_keys",
            "agent_wallets",
            "exchange_connections",
            "audit_logs",
            "auth_sessions",
            "siwe_nonces",
        ):
            cursor.execute(f"SELECT t::text FROM {table} t")
            parts += [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT encode(api_key_encrypted, 'escape') || encode(api_secret_encrypted, 'escape')"
            " FROM exchange_connections"
        )
        parts += [row[0] for row in cursor.fetchall()]
    return "\n".join(parts)


def test_connection_credentials_are_encrypted_and_masked_everywhere(
    user_client: APIClient, user: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = user_client.post(
            reverse(CONNECTIONS),
            {
                "exchange_name": "bybit",
                "label": "main",
                "api_key": VENUE_KEY,
                "api_secret": VENUE_SECRET,
                "passphrase": VENUE_PASSPHRASE,
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    body = response.content.decode()
    assert VENUE_SECRET not in body
    assert VENUE_KEY not in body
    assert VENUE_PASSPHRASE not in body
    assert response.json()["api_key_masked"] == "••••" + VENUE_KEY[-4:]
    assert response.json()["has_passphrase"] is True
    listed = user_client.get(reverse(CONNECTIONS)).content.decode()
    assert VENUE_SECRET not in listed
    assert VENUE_KEY not in listed

    dump = raw_dump()
    for secret in (VENUE_KEY, VENUE_SECRET, VENUE_PASSPHRASE):
        assert secret not in dump
    assert AuditLog.objects.filter(action="exchange_connection_create").exists()

    # Adapters get the plaintext through the selector, and its repr hides it.
    connection_row = ExchangeConnection.objects.get()
    credentials = selectors.exchange_connection_credentials(connection=connection_row)
    assert (credentials.api_key, credentials.api_secret) == (VENUE_KEY, VENUE_SECRET)
    assert credentials.passphrase == VENUE_PASSPHRASE
    assert VENUE_SECRET not in repr(credentials)


def test_connection_bad_input_never_echoes_the_secret(user_client: APIClient) -> None:
    response = user_client.post(
        reverse(CONNECTIONS),
        {"exchange_name": "bybit", "api_key": "short", "api_secret": "has a space in it"},
        format="json",
    )
    assert response.status_code == 400
    assert "has a space" not in response.content.decode()
    unknown = user_client.post(
        reverse(CONNECTIONS),
        {"exchange_name": "nowhere", "api_key": VENUE_KEY, "api_secret": VENUE_SECRET},
        format="json",
    )
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "invalid_exchange"
    assert not ExchangeConnection.objects.exists()


def test_error_reports_never_show_the_credentials(user: User, settings: Any) -> None:
    """Django's error report (500 page, admin emails) hides the service's secret locals."""
    from django.views.debug import ExceptionReporter

    settings.ENCRYPTION_KEYS = ["not a fernet key"]  # makes encryption fail mid-service
    with pytest.raises(ValueError, match="Fernet key") as info:
        services.exchange_connection_create(
            user=user, exchange_name="bybit", api_key=VENUE_KEY, api_secret=VENUE_SECRET
        )
    report = ExceptionReporter(None, info.type, info.value, info.tb).get_traceback_html()
    assert "exchange_connection_create" in report
    assert VENUE_KEY not in report
    assert VENUE_SECRET not in report
    assert not ExchangeConnection.objects.exists()


def test_connection_update_and_delete(user_client: APIClient, user: User) -> None:
    created = services.exchange_connection_create(
        user=user, exchange_name="okx", api_key=VENUE_KEY, api_secret=VENUE_SECRET
    )
    url = reverse("v1:accounts-api:exchange-connection-detail", kwargs={"pk": created.pk})
    half = user_client.patch(url, {"api_key": "vk_new_key_000000001111"}, format="json")
    assert half.status_code == 400
    assert half.json()["code"] == "credentials_incomplete"
    replaced = user_client.patch(
        url,
        {"api_key": "vk_new_key_000000001111", "api_secret": "vs_new_secret_2222", "label": "x"},
        format="json",
    )
    assert replaced.status_code == 200
    assert replaced.json()["api_key_masked"].endswith("1111")
    creds = selectors.exchange_connection_credentials(
        connection=ExchangeConnection.objects.get(pk=created.pk)
    )
    assert creds.api_secret == "vs_new_secret_2222"
    disabled = user_client.patch(url, {"is_active": False}, format="json")
    assert disabled.json()["is_active"] is False
    assert user_client.delete(url).status_code == 204
    assert not ExchangeConnection.objects.filter(pk=created.pk).exists()


def test_no_plaintext_api_key_secret_or_private_key_in_any_table(
    user: User, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        _, raw_api_key = services.api_key_create(user=user, name="k", scopes=["read"])
        approval = services.agent_wallet_generate(user=user)
        services.exchange_connection_create(
            user=user, exchange_name="bybit", api_key=VENUE_KEY, api_secret=VENUE_SECRET
        )
    private_key = selectors.agent_wallet_private_key(agent_wallet=approval.agent_wallet)
    assert private_key
    assert AuditLog.objects.count() >= 3  # the audit rows are part of the dump
    dump = raw_dump().lower()
    assert raw_api_key.split(".", 1)[1].lower() not in dump
    assert private_key.removeprefix("0x").lower() not in dump
    assert VENUE_SECRET.lower() not in dump
    assert VENUE_KEY.lower() not in dump


def test_rotation_re_encrypts_every_row_and_old_ciphertext_still_decrypts(
    user: User, other_user: User, settings: Any
) -> None:
    old_key = settings.ENCRYPTION_KEYS[0]
    wallets = [services.agent_wallet_generate(user=u).agent_wallet for u in (user, other_user)]
    keys_before = {w.pk: selectors.agent_wallet_private_key(agent_wallet=w) for w in wallets}
    connections = [
        services.exchange_connection_create(
            user=u,
            exchange_name="bybit",
            api_key=VENUE_KEY,
            api_secret=VENUE_SECRET,
            passphrase=VENUE_PASSPHRASE,
        )
        for u in (user, other_user)
    ]
    before = {c.pk: bytes(c.api_secret_encrypted) for c in ExchangeConnection.objects.all()}

    new_key = Fernet.generate_key().decode()
    settings.ENCRYPTION_KEYS = [new_key, old_key]
    # During rotation: ciphertext under the old key still opens.
    for wallet in AgentWallet.objects.all():
        assert selectors.agent_wallet_private_key(agent_wallet=wallet) == keys_before[wallet.pk]
        assert not crypto.is_current(wallet.encrypted_private_key)  # type: ignore[arg-type]

    out = io.StringIO()
    call_command("rotate_encryption_keys", "--batch-size", "1", stdout=out)
    assert "accounts.AgentWallet: 2 re-encrypted" in out.getvalue()
    assert "accounts.ExchangeConnection: 2 re-encrypted" in out.getvalue()

    for connection_row in ExchangeConnection.objects.all():
        assert bytes(connection_row.api_secret_encrypted) != before[connection_row.pk]
        for field in ("api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted"):
            assert crypto.is_current(getattr(connection_row, field))

    # Only the new key now: everything still opens.
    settings.ENCRYPTION_KEYS = [new_key]
    for wallet in AgentWallet.objects.all():
        assert selectors.agent_wallet_private_key(agent_wallet=wallet) == keys_before[wallet.pk]
    for connection_row in connections:
        fresh = ExchangeConnection.objects.get(pk=connection_row.pk)
        creds = selectors.exchange_connection_credentials(connection=fresh)
        assert (creds.api_secret, creds.passphrase) == (VENUE_SECRET, VENUE_PASSPHRASE)

    # The old key alone no longer opens anything: it can be retired.
    settings.ENCRYPTION_KEYS = [old_key]
    with pytest.raises(crypto.DecryptionError):
        selectors.agent_wallet_private_key(agent_wallet=AgentWallet.objects.first())  # type: ignore[arg-type]

    # Safe to re-run: nothing left to do.
    settings.ENCRYPTION_KEYS = [new_key, old_key]
    again = io.StringIO()
    call_command("rotate_encryption_keys", stdout=again)
    assert "accounts.AgentWallet: 0 re-encrypted, 2 already current" in again.getvalue()
