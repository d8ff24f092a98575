"""Agent wallets: generate or register, approve with the master wallet, update, revoke.

Life of a wallet: ``pending`` (created; Tandem hands out the Hyperliquid ``approveAgent``
typed data) → ``active`` once the master wallet's signature over that payload is verified
→ ``revoked`` when the user deletes it. A revoked row stays forever, and its address can
never be registered again, by anyone: a venue may still honour an old approval of it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables
from eth_account import Account

from accounts import agent_approval, crypto
from accounts.agent_approval import ApprovalRequest
from accounts.models import (
    AgentWallet,
    AgentWalletKeySource,
    AgentWalletStatus,
    User,
    checksum_address,
)
from accounts.services.audit import audit_log_record
from config.errors import Conflict, NotFound, ValidationFailed

AGENT_WALLET_VENUES = ("hyperliquid", "paper")
MAX_LIVE_WALLETS = 10
# The user signs the payload right after asking for it; Hyperliquid itself refuses nonces
# more than two days old, so an hour is generous and keeps a stale payload from lingering.
APPROVAL_TTL = timedelta(hours=1)
MAX_LEVERAGE_LIMIT = 50


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if len(name) > 64:
        raise ValidationFailed("The name may have at most 64 characters.", field="name")
    return name


def _clean_venue(exchange: str | None) -> str:
    venue = exchange or settings.TANDEM["DEFAULT_VENUE"]
    if venue not in AGENT_WALLET_VENUES:
        raise ValidationFailed(
            f"Agent wallets exist on {', '.join(AGENT_WALLET_VENUES)}.",
            code="invalid_exchange",
            field="exchange",
        )
    return venue


def _clean_chain_id(signature_chain_id: int | None) -> int:
    if signature_chain_id is None:
        return agent_approval.DEFAULT_SIGNATURE_CHAIN_ID
    if isinstance(signature_chain_id, bool) or not 0 < int(signature_chain_id) < 2**53:
        raise ValidationFailed("Invalid chain id.", field="signature_chain_id")
    return int(signature_chain_id)


def _check_address_unused(*, address: str, user: User) -> None:
    if user.wallet_addr and address == user.wallet_addr:
        raise ValidationFailed(
            "The agent must be a separate key, not your own wallet.",
            code="agent_is_master",
            field="address",
        )
    if (
        AgentWallet.objects.filter(addr=address).exists()
        or User.objects.filter(wallet_addr=address).exists()
    ):
        raise Conflict(
            "This address has already been used and cannot be registered again.",
            code="address_used",
            field="address",
        )


def _check_capacity(user: User) -> None:
    live = AgentWallet.objects.filter(user=user).exclude(status=AgentWalletStatus.REVOKED)
    if live.count() >= MAX_LIVE_WALLETS:
        raise Conflict(
            f"At most {MAX_LIVE_WALLETS} agent wallets; revoke one first.",
            code="too_many_agent_wallets",
        )


def _prepare(wallet: AgentWallet, *, signature_chain_id: int) -> ApprovalRequest:
    """Store a fresh approveAgent action on ``wallet`` (caller holds the row lock)."""
    action = agent_approval.approve_agent_action(
        agent_address=wallet.addr,
        agent_name=wallet.name,
        nonce=agent_approval.nonce_now(),
        signature_chain_id=signature_chain_id,
    )
    expires_at = timezone.now() + APPROVAL_TTL
    wallet.approval_nonce = action["nonce"]
    wallet.metadata = {
        **wallet.metadata,
        "approval": {"action": action, "expires_at": expires_at.isoformat()},
    }
    wallet.save(update_fields=["approval_nonce", "metadata", "updated_at"])
    return ApprovalRequest(
        agent_wallet=wallet,
        action=action,
        typed_data=agent_approval.typed_data(action),
        expires_at=expires_at,
    )


@sensitive_variables("private_key", "account", "encrypted_key", "key", "derived")
def _create(
    *,
    user: User,
    address: str,
    key_source: str,
    encrypted_key: bytes | None,
    name: str,
    venue: str,
    chain_id: int,
    request: HttpRequest | None,
) -> ApprovalRequest:
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        _check_capacity(user)
        _check_address_unused(address=address, user=user)
        try:
            with transaction.atomic():
                wallet = AgentWallet.objects.create(
                    user=user,
                    addr=address,
                    name=name,
                    exchange=venue,
                    key_source=key_source,
                    encrypted_private_key=encrypted_key,
                    status=AgentWalletStatus.PENDING,
                )
        except IntegrityError as exc:  # registered concurrently by someone else
            raise Conflict(
                "This address has already been used.", code="address_used", field="address"
            ) from exc
        approval = _prepare(wallet, signature_chain_id=chain_id)
        audit_log_record(
            action="agent_wallet_create",
            actor=user,
            resource_type="agent_wallet",
            resource_id=wallet.pk,
            new_values={
                "addr": address,
                "name": name,
                "exchange": venue,
                "key_source": key_source,
                "status": wallet.status,
            },
            request=request,
        )
    return approval


@sensitive_variables("private_key", "account", "encrypted_key", "key", "derived")
def agent_wallet_generate(
    *,
    user: User,
    name: str = "",
    exchange: str | None = None,
    signature_chain_id: int | None = None,
    request: HttpRequest | None = None,
) -> ApprovalRequest:
    """Make a new key with eth-account; only its ciphertext is stored, it is never returned."""
    name, venue, chain_id = (
        _clean_name(name),
        _clean_venue(exchange),
        _clean_chain_id(signature_chain_id),
    )
    account = Account.create()
    return _create(
        user=user,
        address=str(account.address),
        key_source=AgentWalletKeySource.GENERATED,
        encrypted_key=crypto.encrypt(_key_hex(bytes(account.key))),
        name=name,
        venue=venue,
        chain_id=chain_id,
        request=request,
    )


@sensitive_variables("private_key", "account", "encrypted_key", "key", "derived")
def agent_wallet_register(
    *,
    user: User,
    address: str,
    private_key: str | None = None,
    name: str = "",
    exchange: str | None = None,
    signature_chain_id: int | None = None,
    request: HttpRequest | None = None,
) -> ApprovalRequest:
    """Register an agent the user already has. With its private key, Tandem can trade with it
    (the key is encrypted at rest); without, the wallet is recorded and approved but orders
    cannot be signed by Tandem."""
    name, venue, chain_id = (
        _clean_name(name),
        _clean_venue(exchange),
        _clean_chain_id(signature_chain_id),
    )
    try:
        clean_address = checksum_address(address)
    except ValidationError as exc:  # not an address at all
        raise ValidationFailed(
            "Enter a valid address (0x followed by 40 hex digits).",
            code="invalid_address",
            field="address",
        ) from exc
    encrypted_key = None
    if private_key:
        try:
            derived = Account.from_key(private_key.strip()).address
        except Exception as exc:  # eth-keys: wrong length, not hex, out of range
            raise ValidationFailed(
                "The private key is not valid.", code="invalid_private_key", field="private_key"
            ) from exc
        if derived != clean_address:
            raise ValidationFailed(
                "The private key does not belong to this address.",
                code="key_address_mismatch",
                field="private_key",
            )
        encrypted_key = crypto.encrypt(_key_hex(bytes(Account.from_key(private_key.strip()).key)))
    return _create(
        user=user,
        address=clean_address,
        key_source=AgentWalletKeySource.REGISTERED,
        encrypted_key=encrypted_key,
        name=name,
        venue=venue,
        chain_id=chain_id,
        request=request,
    )


def _locked_wallet(*, user: User, agent_wallet_id: uuid.UUID | str) -> AgentWallet:
    try:
        return (
            AgentWallet.objects.select_for_update()
            .exclude(status=AgentWalletStatus.REVOKED)
            .get(pk=agent_wallet_id, user=user)
        )
    except (AgentWallet.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Agent wallet not found.", field="agent_wallet") from exc


def agent_wallet_approval_prepare(
    *,
    user: User,
    agent_wallet_id: uuid.UUID | str,
    signature_chain_id: int | None = None,
    request: HttpRequest | None = None,
) -> ApprovalRequest:
    """A fresh approveAgent payload (new nonce) for a pending wallet, e.g. for another chain."""
    chain_id = _clean_chain_id(signature_chain_id)
    with transaction.atomic():
        wallet = _locked_wallet(user=user, agent_wallet_id=agent_wallet_id)
        if wallet.status != AgentWalletStatus.PENDING:
            raise Conflict(
                f"This agent wallet is {wallet.status}; only pending wallets are approved.",
                code="not_pending",
            )
        return _prepare(wallet, signature_chain_id=chain_id)


def agent_wallet_approve(
    *,
    user: User,
    agent_wallet_id: uuid.UUID | str,
    signature: str,
    request: HttpRequest | None = None,
) -> AgentWallet:
    """Activate a pending wallet once the master wallet's approveAgent signature checks out."""
    with transaction.atomic():
        wallet = _locked_wallet(user=user, agent_wallet_id=agent_wallet_id)
        if wallet.status != AgentWalletStatus.PENDING:
            raise Conflict(f"This agent wallet is already {wallet.status}.", code="not_pending")
        stored = (wallet.metadata or {}).get("approval") or {}
        action = stored.get("action")
        if not action or datetime.fromisoformat(stored["expires_at"]) <= timezone.now():
            raise ValidationFailed(
                "The approval request has expired; request a new one and sign it.",
                code="approval_expired",
                field="signature",
            )
        try:
            signer = agent_approval.recover_signer(action, signature)
        except agent_approval.ApprovalSignatureError as exc:
            raise ValidationFailed(str(exc), code="bad_signature", field="signature") from exc
        if not user.wallet_addr or signer != user.wallet_addr:
            raise ValidationFailed(
                "The approval was not signed by your wallet.",
                code="wrong_signer",
                field="signature",
            )
        wallet.status = AgentWalletStatus.ACTIVE
        wallet.approval_signature = signature
        wallet.approved_at = timezone.now()
        wallet.save(update_fields=["status", "approval_signature", "approved_at", "updated_at"])
        audit_log_record(
            action="agent_wallet_approve",
            actor=user,
            resource_type="agent_wallet",
            resource_id=wallet.pk,
            old_values={"status": AgentWalletStatus.PENDING},
            new_values={
                "status": AgentWalletStatus.ACTIVE,
                "approval_nonce": action["nonce"],
                "hyperliquid_chain": action["hyperliquidChain"],
            },
            request=request,
        )
    return wallet


def agent_wallet_update(
    *,
    user: User,
    agent_wallet_id: uuid.UUID | str,
    name: str | None = None,
    max_leverage: int | None = None,
    min_order_usd: Decimal | str | None = None,
    permissions: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AgentWallet:
    """Change a wallet's label and limits. ``withdraw`` can never be granted."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = _clean_name(name)
    if max_leverage is not None:
        if isinstance(max_leverage, bool) or not 1 <= int(max_leverage) <= MAX_LEVERAGE_LIMIT:
            raise ValidationFailed(
                f"Leverage must be between 1 and {MAX_LEVERAGE_LIMIT}.", field="max_leverage"
            )
        changes["max_leverage"] = int(max_leverage)
    if min_order_usd is not None:
        try:
            amount = Decimal(str(min_order_usd))
        except InvalidOperation as exc:
            raise ValidationFailed("Enter an amount.", field="min_order_usd") from exc
        if not amount.is_finite() or amount <= 0:
            raise ValidationFailed("The minimum order must be positive.", field="min_order_usd")
        changes["min_order_usd"] = amount
    if permissions is not None:
        if not isinstance(permissions, dict) or set(permissions) - {"trade", "withdraw"}:
            raise ValidationFailed(
                "Permissions are {trade: bool, withdraw: false}.", field="permissions"
            )
        if permissions.get("withdraw"):
            raise ValidationFailed(
                "Agent wallets can never withdraw.",
                code="withdraw_forbidden",
                field="permissions",
            )
        changes["permissions"] = {"trade": bool(permissions.get("trade", True)), "withdraw": False}
    with transaction.atomic():
        wallet = _locked_wallet(user=user, agent_wallet_id=agent_wallet_id)
        old = {field: getattr(wallet, field) for field in changes}
        for field, value in changes.items():
            setattr(wallet, field, value)
        if changes:
            wallet.save(update_fields=[*changes, "updated_at"])
            audit_log_record(
                action="agent_wallet_update",
                actor=user,
                resource_type="agent_wallet",
                resource_id=wallet.pk,
                old_values={k: _jsonable(v) for k, v in old.items()},
                new_values={k: _jsonable(v) for k, v in changes.items()},
                request=request,
            )
    return wallet


def agent_wallet_revoke(
    *,
    user: User,
    agent_wallet_id: uuid.UUID | str,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> AgentWallet:
    """Soft-delete: status ``revoked``, ``deleted_at`` set, the stored key destroyed.

    The row stays so the address can never be reused. Destroying the key means Tandem can no
    longer sign with it, even though the venue may still honour the old approval until the
    user approves another agent in its place.
    """
    with transaction.atomic():
        wallet = _locked_wallet(user=user, agent_wallet_id=agent_wallet_id)
        old_status = wallet.status
        wallet.status = AgentWalletStatus.REVOKED
        wallet.deleted_at = timezone.now()
        had_key = wallet.encrypted_private_key is not None
        wallet.encrypted_private_key = None
        wallet.save(update_fields=["status", "deleted_at", "encrypted_private_key", "updated_at"])
        audit_log_record(
            action="agent_wallet_revoke",
            actor=actor or user,
            resource_type="agent_wallet",
            resource_id=wallet.pk,
            old_values={"status": old_status, "stored_key": had_key},
            new_values={"status": AgentWalletStatus.REVOKED, "stored_key": False},
            request=request,
        )
    return wallet


@sensitive_variables("private_key", "account", "encrypted_key", "key", "derived")
def _key_hex(key: bytes) -> str:
    return "0x" + key.hex()


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    return value
