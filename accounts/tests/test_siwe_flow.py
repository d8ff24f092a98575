"""Wallet sign-in end to end over the API, with real eth-account signatures."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone
from eth_account import Account
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient

from accounts.models import AuditLog, AuthSession, AuthSessionKind, KycLevel, SiweNonce, User
from accounts.tests.conftest import bearer, personal_sign, siwe_text
from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
SIWE = "v1:accounts-api:auth-siwe"


def post(client: APIClient, text: str, signature: str, mode: str = "jwt") -> Any:
    return client.post(
        reverse(SIWE), {"message": text, "signature": signature, "mode": mode}, format="json"
    )


def test_nonce_is_single_use_with_five_minute_expiry_and_server_expectations(
    api_client: APIClient,
) -> None:
    body = api_client.get(reverse("v1:accounts-api:auth-nonce")).json()
    row = SiweNonce.objects.get(nonce=body["nonce"])
    assert row.used_at is None
    assert (
        timedelta(minutes=4, seconds=59)
        < row.expires_at - row.created_at
        <= timedelta(minutes=5, seconds=1)
    )
    assert body["domain"] == "localhost:8000"
    assert body["uri"] == "http://localhost:8000"
    assert body["chain_ids"] == [1, 42161]
    assert "message" not in body


def test_first_sign_in_creates_the_user_and_returns_a_working_jwt_pair(
    api_client: APIClient,
    wallet: LocalAccount,
    siwe_sign_in: Callable[..., Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = siwe_sign_in(wallet, mode="jwt")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["created"] is True
    assert body["user"]["wallet_addr"] == wallet.address
    assert body["user"]["kyc_level"] == KycLevel.UNVERIFIED
    user = User.objects.get(wallet_addr=wallet.address)
    assert not user.has_usable_password()
    session = AuthSession.objects.get(pk=body["session_id"])
    assert session.kind == AuthSessionKind.JWT
    assert session.user == user
    me = bearer(APIClient(), body["access"]).get(reverse("v1:accounts-api:me"))
    assert me.status_code == 200
    assert me.json()["id"] == str(user.pk)
    audit = AuditLog.objects.get(action="sign_in", actor=user)
    assert audit.status == "success"
    assert audit.metadata["method"] == "siwe"
    assert audit.ip_address == "127.0.0.1"

    # The second sign-in finds the same user.
    again = siwe_sign_in(wallet, mode="jwt")
    assert again.status_code == 200
    assert again.json()["created"] is False
    assert User.objects.filter(wallet_addr=wallet.address).count() == 1


def test_session_mode_opens_a_portal_session(
    client: Any, wallet: LocalAccount, new_nonce: Callable[[], str]
) -> None:
    text = siwe_text(wallet, new_nonce())
    response = client.post(
        reverse(SIWE),
        {"message": text, "signature": personal_sign(wallet, text), "mode": "session"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert "access" not in response.json()
    assert client.get(reverse("accounts:settings")).status_code == 200
    session = AuthSession.objects.get(user__wallet_addr=wallet.address)
    assert session.kind == AuthSessionKind.PORTAL
    assert session.method == "siwe"
    assert session.session_key == client.session.session_key


def test_session_mode_requires_the_csrf_token(
    wallet: LocalAccount, new_nonce: Callable[[], str]
) -> None:
    csrf_client = APIClient(enforce_csrf_checks=True)
    text = siwe_text(wallet, new_nonce())
    response = post(csrf_client, text, personal_sign(wallet, text), mode="session")
    assert response.status_code == 403
    assert response.json()["code"] == "csrf_failed"
    assert not User.objects.filter(wallet_addr=wallet.address).exists()


def test_replaying_a_used_nonce_is_refused(
    api_client: APIClient,
    wallet: LocalAccount,
    new_nonce: Callable[[], str],
    django_capture_on_commit_callbacks: Any,
) -> None:
    text = siwe_text(wallet, new_nonce())
    signature = personal_sign(wallet, text)
    assert post(api_client, text, signature).status_code == 200
    sessions = AuthSession.objects.count()

    replay = post(APIClient(), text, signature)
    assert replay.status_code == 401
    assert replay.json()["code"] == "nonce_reused"
    assert AuthSession.objects.count() == sessions
    failure = AuditLog.objects.get(action="sign_in", status="failure")
    assert failure.error_code == "nonce_reused"
    assert failure.metadata["address"] == wallet.address


def test_expired_nonce_is_refused_and_creates_nothing(
    api_client: APIClient, wallet: LocalAccount, new_nonce: Callable[[], str]
) -> None:
    nonce = new_nonce()
    SiweNonce.objects.filter(nonce=nonce).update(expires_at=timezone.now() - timedelta(seconds=1))
    text = siwe_text(wallet, nonce)
    response = post(api_client, text, personal_sign(wallet, text))
    assert response.status_code == 401
    assert response.json()["code"] == "nonce_expired"
    assert not User.objects.filter(wallet_addr=wallet.address).exists()
    assert SiweNonce.objects.get(nonce=nonce).used_at is None


def test_unknown_nonce_is_refused(api_client: APIClient, wallet: LocalAccount) -> None:
    text = siwe_text(wallet, "NeverIssued12345")
    response = post(api_client, text, personal_sign(wallet, text))
    assert response.status_code == 401
    assert response.json()["code"] == "nonce_unknown"


@pytest.mark.parametrize(
    ("overrides", "status", "code"),
    [
        ({"domain": "evil.example"}, 400, "wrong_domain"),
        ({"domain": "localhost:8001"}, 400, "wrong_domain"),
        ({"uri": "https://evil.example/login"}, 400, "wrong_uri"),
        ({"chain_id": 5}, 400, "wrong_chain"),
        ({"expiration_time": "2020-01-01T00:00:00Z"}, 401, "expired"),
        ({"not_before": "2099-01-01T00:00:00Z"}, 401, "not_yet_valid"),
        ({"issued_at": "2099-01-01T00:00:00Z", "expiration_time": None}, 401, "not_yet_valid"),
    ],
)
def test_wrong_message_fields_are_refused_and_nothing_is_created(
    api_client: APIClient,
    wallet: LocalAccount,
    new_nonce: Callable[[], str],
    overrides: dict[str, Any],
    status: int,
    code: str,
) -> None:
    nonce = new_nonce()
    text = siwe_text(wallet, nonce, **overrides)
    response = post(api_client, text, personal_sign(wallet, text))
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response["Content-Type"] == "application/problem+json"
    assert not User.objects.filter(wallet_addr=wallet.address).exists()
    assert SiweNonce.objects.get(nonce=nonce).used_at is None
    assert AuditLog.objects.filter(action="sign_in", status="failure", error_code=code).exists()


def test_bad_signature_is_refused(
    api_client: APIClient, wallet: LocalAccount, new_nonce: Callable[[], str]
) -> None:
    text = siwe_text(wallet, new_nonce())
    impostor = personal_sign(Account.create(), text)
    response = post(api_client, text, impostor)
    assert response.status_code == 401
    assert response.json()["code"] == "bad_signature"
    garbage = post(api_client, text, "0x1234")
    assert garbage.status_code == 401
    assert garbage.json()["code"] == "bad_signature"
    assert not User.objects.filter(wallet_addr=wallet.address).exists()


def test_malformed_message_is_400(api_client: APIClient) -> None:
    response = post(api_client, "hello", "0x" + "00" * 65)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_message"
    assert "message" in response.json()["errors"]


def test_suspended_user_is_refused_at_sign_in(
    api_client: APIClient, new_nonce: Callable[[], str]
) -> None:
    account = Account.create()
    user = UserFactory.create(account=account, status="suspended")
    text = siwe_text(account, new_nonce())
    response = post(api_client, text, personal_sign(account, text))
    assert response.status_code == 403
    assert response.json()["code"] == "account_inactive"
    assert not AuthSession.objects.filter(user=user).exists()
    assert AuditLog.objects.get(status="failure", actor=user).error_code == "account_inactive"


def test_nonce_with_address_returns_the_exact_message_to_sign(
    api_client: APIClient, wallet: LocalAccount
) -> None:
    response = api_client.get(
        reverse("v1:accounts-api:auth-nonce"),
        {"address": wallet.address.lower(), "chain_id": "42161"},
    )
    assert response.status_code == 200, response.content
    text = response.json()["message"]
    assert wallet.address in text  # EIP-55 form, computed by the server
    assert "Chain ID: 42161" in text
    signed = post(api_client, text, personal_sign(wallet, text))
    assert signed.status_code == 200, signed.content


def test_nonce_with_bad_address_or_chain_is_400_and_issues_nothing(
    api_client: APIClient,
) -> None:
    url = reverse("v1:accounts-api:auth-nonce")
    assert api_client.get(url, {"address": "0x123"}).json()["code"] == "invalid_address"
    wrong_chain = api_client.get(url, {"address": Account.create().address, "chain_id": 5})
    assert wrong_chain.status_code == 400
    assert wrong_chain.json()["code"] == "wrong_chain"
    assert SiweNonce.objects.count() == 0


def test_two_uses_of_one_nonce_only_one_wins(
    api_client: APIClient, new_nonce: Callable[[], str]
) -> None:
    """Two different wallets racing for one nonce: the row lock lets exactly one through."""
    nonce = new_nonce()
    first, second = Account.create(), Account.create()
    text_a, text_b = siwe_text(first, nonce), siwe_text(second, nonce)
    assert post(api_client, text_a, personal_sign(first, text_a)).status_code == 200
    loser = post(APIClient(), text_b, personal_sign(second, text_b))
    assert loser.json()["code"] == "nonce_reused"
    assert not User.objects.filter(wallet_addr=second.address).exists()


def test_forged_attempt_is_audited_against_the_account_not_as_its_owner(
    api_client: APIClient, new_nonce: Callable[[], str]
) -> None:
    victim_key = Account.create()
    victim = UserFactory.create(account=victim_key)
    text = siwe_text(victim_key, new_nonce())
    response = post(api_client, text, personal_sign(Account.create(), text))
    assert response.status_code == 401
    row = AuditLog.objects.get(action="sign_in", status="failure")
    assert row.resource_id == victim.pk
    assert row.actor is None
    assert row.actor_type == "system"
    assert not AuthSession.objects.filter(user=victim).exists()
