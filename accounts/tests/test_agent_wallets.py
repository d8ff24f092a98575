"""Agent wallets: generate/register, the exact approveAgent payload, signed approval with
eth-account, never withdraw, soft delete, never reuse an address."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from eth_account import Account
from eth_account.signers.local import LocalAccount
from hyperliquid.utils import signing
from rest_framework.test import APIClient

from accounts import agent_approval, selectors, services
from accounts.models import AgentWallet, AgentWalletStatus, AuditLog, User
from accounts.tests.conftest import typed_sign
from accounts.tests.factories import AgentWalletFactory
from config.errors import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db
WALLETS = "v1:accounts-api:agent-wallets"


@pytest.fixture
def owner_client(owner: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


def detail(pk: Any, name: str = "agent-wallet-detail") -> str:
    return reverse(f"v1:accounts-api:{name}", kwargs={"pk": pk})


def test_generate_returns_the_hyperliquid_approve_agent_payload(
    owner_client: APIClient, owner: User, settings: Any
) -> None:
    response = owner_client.post(
        reverse(WALLETS), {"mode": "generate", "name": "bot"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["key_source"] == "generated"
    assert body["has_private_key"] is True
    assert "private_key" not in body
    assert "encrypted_private_key" not in body
    typed = body["approval"]["typed_data"]
    assert typed["primaryType"] == "HyperliquidTransaction:ApproveAgent"
    assert typed["domain"] == {
        "name": "HyperliquidSignTransaction",
        "version": "1",
        "chainId": 0x66EEE,
        "verifyingContract": "0x0000000000000000000000000000000000000000",
    }
    assert typed["types"]["HyperliquidTransaction:ApproveAgent"] == [
        {"name": "hyperliquidChain", "type": "string"},
        {"name": "agentAddress", "type": "address"},
        {"name": "agentName", "type": "string"},
        {"name": "nonce", "type": "uint64"},
    ]
    message = typed["message"]
    assert message["agentAddress"] == body["addr"]
    assert message["hyperliquidChain"] == "Mainnet"
    assert message["agentName"] == "bot"
    assert abs(message["nonce"] - agent_approval.nonce_now()) < 60_000  # ms timestamp
    assert body["approval"]["signer"] == owner.wallet_addr

    settings.TANDEM = {**settings.TANDEM, "HYPERLIQUID_TESTNET": True}
    testnet = services.agent_wallet_generate(user=owner)
    assert testnet.typed_data["message"]["hyperliquidChain"] == "Testnet"


def test_payload_matches_what_the_sdk_signs() -> None:
    """Our typed data and the SDK's sign_agent produce the very same signature (over enough
    random keys that r or s with a leading zero byte shows up)."""
    for _ in range(40):
        master, agent = Account.create(), Account.create()
        nonce = agent_approval.nonce_now()
        ours = agent_approval.approve_agent_action(
            agent_address=agent.address, agent_name="", nonce=nonce, mainnet=True
        )
        sdk = signing.sign_agent(
            master,
            {
                "type": "approveAgent",
                "agentAddress": agent.address,
                "agentName": "",
                "nonce": nonce,
            },
            True,
        )
        signature = typed_sign(master, agent_approval.typed_data(ours))
        assert agent_approval.split_signature(signature) == sdk
        assert agent_approval.recover_signer(ours, signature) == master.address


def test_signed_approval_activates_the_wallet(
    owner_client: APIClient,
    owner: User,
    owner_account: LocalAccount,
    django_capture_on_commit_callbacks: Any,
) -> None:
    created = owner_client.post(reverse(WALLETS), {"mode": "generate"}, format="json").json()
    signature = typed_sign(owner_account, created["approval"]["typed_data"])
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            detail(created["id"], "agent-wallet-approve"), {"signature": signature}, format="json"
        )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "active"
    wallet = AgentWallet.objects.get(pk=created["id"])
    assert wallet.approval_signature == signature
    assert wallet.approved_at is not None
    assert selectors.agent_wallet_for_trading(user=owner) == wallet
    key = selectors.agent_wallet_private_key(agent_wallet=wallet)
    assert key is not None
    assert Account.from_key(key).address == wallet.addr
    audit = AuditLog.objects.get(action="agent_wallet_approve")
    assert audit.old_values == {"status": "pending"}
    assert (audit.new_values or {})["status"] == "active"


def test_approval_signed_by_another_wallet_is_refused(owner_client: APIClient) -> None:
    created = owner_client.post(reverse(WALLETS), {"mode": "generate"}, format="json").json()
    forged = typed_sign(Account.create(), created["approval"]["typed_data"])
    response = owner_client.post(
        detail(created["id"], "agent-wallet-approve"), {"signature": forged}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "wrong_signer"
    assert AgentWallet.objects.get(pk=created["id"]).status == AgentWalletStatus.PENDING


def test_signature_over_another_nonce_is_refused(
    owner_client: APIClient, owner_account: LocalAccount
) -> None:
    """A fresh request replaces the payload: a signature of the old one no longer counts."""
    created = owner_client.post(reverse(WALLETS), {"mode": "generate"}, format="json").json()
    old_signature = typed_sign(owner_account, created["approval"]["typed_data"])
    fresh = owner_client.post(
        detail(created["id"], "agent-wallet-approval"), {"signature_chain_id": 42161}, format="json"
    )
    assert fresh.status_code == 200
    assert fresh.json()["typed_data"]["domain"]["chainId"] == 42161
    refused = owner_client.post(
        detail(created["id"], "agent-wallet-approve"), {"signature": old_signature}, format="json"
    )
    assert refused.json()["code"] == "wrong_signer"
    signature = typed_sign(owner_account, fresh.json()["typed_data"])
    accepted = owner_client.post(
        detail(created["id"], "agent-wallet-approve"), {"signature": signature}, format="json"
    )
    assert accepted.status_code == 200


def test_malformed_signature_is_400(owner_client: APIClient) -> None:
    created = owner_client.post(reverse(WALLETS), {"mode": "generate"}, format="json").json()
    response = owner_client.post(
        detail(created["id"], "agent-wallet-approve"), {"signature": "0xdead"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "bad_signature"


def test_register_an_existing_address_with_and_without_its_key(
    owner_client: APIClient, owner: User
) -> None:
    agent = Account.create()
    plain = owner_client.post(
        reverse(WALLETS), {"mode": "register", "address": agent.address.lower()}, format="json"
    )
    assert plain.status_code == 201, plain.content
    assert plain.json()["addr"] == agent.address  # checksummed
    assert plain.json()["has_private_key"] is False

    other = Account.create()
    keyed = services.agent_wallet_register(
        user=owner, address=other.address, private_key="0x" + bytes(other.key).hex()
    )
    stored = selectors.agent_wallet_private_key(agent_wallet=keyed.agent_wallet)
    assert stored is not None
    assert Account.from_key(stored).address == other.address


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"mode": "register", "address": "0x1234"}, 400, "invalid_address"),
        ({"mode": "register", "address": "not an address"}, 400, "invalid_address"),
        (
            {"mode": "register", "address": Account.create().address, "private_key": "0x01"},
            400,
            "invalid_private_key",
        ),
        (
            {
                "mode": "register",
                "address": Account.create().address,
                "private_key": "0x" + bytes(Account.create().key).hex(),
            },
            400,
            "key_address_mismatch",
        ),
        ({"mode": "generate", "exchange": "binance"}, 400, "invalid"),
    ],
)
def test_bad_registrations_are_refused_and_create_nothing(
    owner_client: APIClient, payload: dict[str, Any], status: int, code: str
) -> None:
    response = owner_client.post(reverse(WALLETS), payload, format="json")
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert not AgentWallet.objects.exists()


def test_own_master_wallet_cannot_be_an_agent(owner_client: APIClient, owner: User) -> None:
    response = owner_client.post(
        reverse(WALLETS), {"mode": "register", "address": owner.wallet_addr}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "agent_is_master"


def test_withdraw_can_never_be_granted(owner_client: APIClient, owner: User) -> None:
    created = owner_client.post(reverse(WALLETS), {"mode": "generate"}, format="json").json()
    response = owner_client.patch(
        detail(created["id"]), {"permissions": {"trade": True, "withdraw": True}}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "withdraw_forbidden"
    with pytest.raises(ValidationFailed):
        services.agent_wallet_update(
            user=owner, agent_wallet_id=created["id"], permissions={"withdraw": True}
        )
    # And the database refuses it even when the service is bypassed.
    with pytest.raises(IntegrityError), transaction.atomic():
        AgentWallet.objects.filter(pk=created["id"]).update(
            permissions={"trade": True, "withdraw": True}
        )
    ok = owner_client.patch(
        detail(created["id"]), {"permissions": {"trade": False}, "max_leverage": 3}, format="json"
    )
    assert ok.status_code == 200
    assert ok.json()["permissions"] == {"trade": False, "withdraw": False}


def test_revoke_is_a_soft_delete_and_the_address_is_never_reused(
    owner_client: APIClient, owner: User, other_user: User
) -> None:
    created = owner_client.post(reverse(WALLETS), {"mode": "generate"}, format="json").json()
    assert owner_client.delete(detail(created["id"])).status_code == 204
    row = AgentWallet.objects.get(pk=created["id"])
    assert row.status == AgentWalletStatus.REVOKED
    assert row.deleted_at is not None
    assert row.encrypted_private_key is None  # the key is destroyed
    assert owner_client.get(detail(created["id"])).status_code == 404
    assert created["id"] not in str(owner_client.get(reverse(WALLETS)).json())

    again = owner_client.post(
        reverse(WALLETS), {"mode": "register", "address": created["addr"]}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["code"] == "address_used"
    with pytest.raises(Conflict):
        services.agent_wallet_register(user=other_user, address=created["addr"])
    assert AgentWallet.objects.filter(addr=created["addr"]).count() == 1


def test_another_users_wallet_is_404_never_its_data(
    owner_client: APIClient, other_user: User
) -> None:
    theirs = AgentWalletFactory.create(user=other_user, status=AgentWalletStatus.PENDING)
    for method, name, payload in [
        ("get", "agent-wallet-detail", None),
        ("patch", "agent-wallet-detail", {"name": "mine"}),
        ("delete", "agent-wallet-detail", None),
        ("post", "agent-wallet-approval", {}),
        ("post", "agent-wallet-approve", {"signature": "0x" + "00" * 65}),
    ]:
        response = getattr(owner_client, method)(detail(theirs.pk, name), payload, format="json")
        assert response.status_code == 404, (method, name)
        assert theirs.addr not in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.status == AgentWalletStatus.PENDING
    assert theirs.name == ""


def test_private_key_is_not_in_the_database_in_plaintext(owner: User) -> None:
    approval = services.agent_wallet_generate(user=owner)
    key = selectors.agent_wallet_private_key(agent_wallet=approval.agent_wallet)
    assert key is not None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT agent_wallets::text, encode(encrypted_private_key, 'escape') FROM agent_wallets"
        )
        dump = " ".join(" ".join(row) for row in cursor.fetchall())
    assert key.removeprefix("0x").lower() not in dump.lower()
