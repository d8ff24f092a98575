"""Accounts test helpers: real eth-account keys, real SIWE messages, real tokens and keys."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.urls import reverse
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient

from accounts import services
from accounts.models import User
from accounts.siwe import SiweMessage
from accounts.tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Throttle counters live in the shared Redis cache: start every test with none.

    Only our own keys are deleted (never a flush: other suites share the server).
    """
    for pattern in ("throttle_*", "accounts:session-touch:*"):
        cache.delete_pattern(pattern)  # type: ignore[attr-defined]


@pytest.fixture
def no_throttle(settings: Any) -> None:
    """Lift the rate limits for a test that sends many requests on purpose."""
    rates = dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


def stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def siwe_text(account: LocalAccount, nonce: str, **overrides: Any) -> str:
    """A valid EIP-4361 message for this server, with any field overridden."""
    expected = services.siwe_expectations()
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "domain": expected.domain,
        "address": account.address,
        "statement": expected.statement,
        "uri": expected.uri,
        "version": "1",
        "chain_id": expected.chain_ids[0],
        "nonce": nonce,
        "issued_at": stamp(now),
        "expiration_time": stamp(now + timedelta(minutes=5)),
    }
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not None}
    return SiweMessage.build(**fields).prepare_message()


def personal_sign(account: LocalAccount, text: str) -> str:
    return "0x" + bytes(account.sign_message(encode_defunct(text=text)).signature).hex()


def typed_sign(account: LocalAccount, typed_data: dict[str, Any]) -> str:
    signed = account.sign_message(encode_typed_data(full_message=typed_data))
    return "0x" + bytes(signed.signature).hex()


@pytest.fixture
def wallet() -> LocalAccount:
    return Account.create()


@pytest.fixture
def new_nonce(api_client: APIClient) -> Callable[[], str]:
    def issue() -> str:
        response = api_client.get(reverse("v1:accounts-api:auth-nonce"))
        assert response.status_code == 200, response.content
        return str(response.json()["nonce"])

    return issue


@pytest.fixture
def siwe_sign_in(api_client: APIClient, new_nonce: Callable[[], str]) -> Callable[..., Any]:
    """Sign in ``account`` over the API with a real signature; returns the response."""

    def sign_in(account: LocalAccount, mode: str = "jwt", client: APIClient | None = None) -> Any:
        text = siwe_text(account, new_nonce())
        return (client or api_client).post(
            reverse("v1:accounts-api:auth-siwe"),
            {"message": text, "signature": personal_sign(account, text), "mode": mode},
            format="json",
        )

    return sign_in


@pytest.fixture
def owner_account() -> LocalAccount:
    return Account.create()


@pytest.fixture
def owner(db: Any, owner_account: LocalAccount) -> User:
    """A customer whose wallet key the test holds (so it can sign as the master wallet)."""
    return UserFactory.create(account=owner_account)


def bearer(client: APIClient, access: str) -> APIClient:
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client
