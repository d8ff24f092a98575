"""Accounts: every read, scoped to the acting user.

KYC gates are documented in accounts.policy; ``kyc_equity_cap`` and
``user_trading_block_reason`` are re-exported here for callers that only import selectors.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from accounts import agent_approval, policy
from accounts.agent_approval import ApprovalRequest
from accounts.models import (
    AgentWallet,
    AgentWalletStatus,
    ApiKey,
    AuditLog,
    AuthSession,
    AuthSessionKind,
    ExchangeConnection,
    User,
)
from config.errors import NotFound, PermissionDenied

kyc_equity_cap = policy.kyc_equity_cap
copy_block_reason = policy.copy_block_reason

_API_KEY = re.compile(r"^tdm_([A-Za-z0-9]{8,16})\.([A-Za-z0-9_-]{16,128})$")


def user_trading_block_reason(*, user: User) -> str | None:
    """Why ``user`` may not trade right now, or None. Used by every pre-trade check."""
    return policy.trading_block_reason(user)


# --------------------------------------------------------------------------- agent wallets


def agent_wallet_list(*, user: User) -> QuerySet[AgentWallet]:
    return AgentWallet.objects.filter(user=user).exclude(status=AgentWalletStatus.REVOKED)


def agent_wallet_get(*, user: User, agent_wallet_id: uuid.UUID | str) -> AgentWallet:
    try:
        return agent_wallet_list(user=user).get(pk=agent_wallet_id)
    except (AgentWallet.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Agent wallet not found.", field="agent_wallet") from exc


def agent_wallet_approval_current(*, agent_wallet: AgentWallet) -> ApprovalRequest | None:
    """The approveAgent payload a pending wallet is waiting for, unless it has expired."""
    stored = (agent_wallet.metadata or {}).get("approval") or {}
    action = stored.get("action")
    if agent_wallet.status != AgentWalletStatus.PENDING or not action:
        return None
    expires_at = datetime.fromisoformat(stored["expires_at"])
    if expires_at <= timezone.now():
        return None
    return ApprovalRequest(
        agent_wallet=agent_wallet,
        action=action,
        typed_data=agent_approval.typed_data(action),
        expires_at=expires_at,
    )


def agent_wallet_for_trading(
    *, user: User, agent_wallet_id: uuid.UUID | str | None = None, exchange: str | None = None
) -> AgentWallet:
    """The wallet orders for ``user`` are placed with; refuses one that may not trade."""
    qs = agent_wallet_list(user=user)
    if exchange:
        qs = qs.filter(exchange=exchange)
    wallet: AgentWallet | None
    if agent_wallet_id is not None:
        wallet = agent_wallet_get(user=user, agent_wallet_id=agent_wallet_id)
    else:
        wallet = qs.filter(status=AgentWalletStatus.ACTIVE).order_by("-created_at").first()
        if wallet is None:
            raise PermissionDenied(
                "No active agent wallet: authorise one before trading.",
                code="no_active_agent_wallet",
                field="agent_wallet",
            )
    if not wallet.can_trade:
        raise PermissionDenied(
            f"Agent wallet {wallet.addr} is {wallet.status} and cannot trade.",
            code="agent_wallet_inactive",
            field="agent_wallet",
        )
    return wallet


@sensitive_variables("passphrase", "raw_key", "candidates")
def agent_wallet_private_key(*, agent_wallet: AgentWallet) -> str | None:
    """The decrypted signing key of a generated agent wallet (adapters only; never logged)."""
    from accounts.crypto import decrypt

    if not agent_wallet.encrypted_private_key:
        return None
    return decrypt(agent_wallet.encrypted_private_key).decode()


# --------------------------------------------------------------------------- API keys


def api_key_list(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user).order_by("-created_at", "-id")


def api_key_get(*, user: User, api_key_id: uuid.UUID | str) -> ApiKey:
    try:
        return api_key_list(user=user).get(pk=api_key_id)
    except (ApiKey.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("API key not found.", field="api_key") from exc


@sensitive_variables("passphrase", "raw_key", "candidates")
def api_key_resolve(*, raw_key: str) -> ApiKey | None:
    """The key row a presented ``tdm_<prefix>.<secret>`` belongs to, or None.

    Whether it is revoked, expired or usable from this IP is the caller's check, so it can
    say which. The hash is compared in constant time.
    """
    from accounts.services.api_keys import api_key_hash_candidates

    match = _API_KEY.match(raw_key or "")
    if not match:
        return None
    api_key = ApiKey.objects.select_related("user").filter(prefix=match.group(1)).first()
    candidates = api_key_hash_candidates(raw_key)
    if api_key is None:
        return None
    if any(hmac.compare_digest(candidate, api_key.key_hash) for candidate in candidates):
        return api_key
    return None


def api_key_for_websocket(raw_key: str) -> tuple[User, list[str]] | None:
    """The user and scopes of a key presented in a websocket handshake, or None to refuse.

    settings.TANDEM_WS_API_KEY_RESOLVER (config/ws_auth.py). The handshake resolver is not
    given the client address, so a key restricted to an IP allow-list is refused here rather
    than accepted from anywhere.
    """
    from django.utils import timezone

    api_key = api_key_resolve(raw_key=raw_key)
    if api_key is None or api_key.revoked_at is not None or api_key.allowed_ips:
        return None
    if api_key.expires_at is not None and api_key.expires_at <= timezone.now():
        return None
    if not api_key.user.is_active:
        return None
    return api_key.user, list(api_key.scopes)


def jwt_user_for_websocket(raw_token: str) -> User | None:
    """The user of an access token presented in a websocket handshake, or None to refuse.

    settings.TANDEM_WS_JWT_RESOLVER (config/ws_auth.py). Same rules as the API's
    SessionJWTAuthentication: a valid, unexpired access token of an active user whose session
    (the ``sid`` claim) is still signed in, so "sign out everywhere" also ends live streams.
    """
    from rest_framework_simplejwt.authentication import JWTAuthentication
    from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

    from accounts.services import SID_CLAIM

    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(raw_token.encode())
        user = auth.get_user(validated)
    except (InvalidToken, TokenError):
        return None
    except Exception:  # AuthenticationFailed for unknown or inactive users
        return None
    session_id = validated.get(SID_CLAIM)
    if not isinstance(user, User) or not session_id:
        return None
    if not auth_session_is_live(auth_session_id=session_id, user=user):
        return None
    return user


def api_key_ip_allowed(*, api_key: ApiKey, ip: str | None) -> bool:
    if not api_key.allowed_ips:
        return True
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in api_key.allowed_ips)


# --------------------------------------------------------------------------- sessions


@dataclass(frozen=True)
class SessionView:
    """An AuthSession as the user sees it, with whether it is the one making the request."""

    auth_session: AuthSession
    current: bool


def auth_session_list(
    *, user: User, current_id: uuid.UUID | str | None = None
) -> list[SessionView]:
    """``user``'s devices that are still signed in, most recently used first.

    A portal session whose Django session has expired or been flushed is not listed, even if
    its row was never marked ended (a browser that simply stopped coming back).
    """
    now = timezone.now()
    rows = list(
        AuthSession.objects.filter(user=user, revoked_at__isnull=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by("-last_used_at", "-id")
    )
    portal_keys = [r.session_key for r in rows if r.kind == AuthSessionKind.PORTAL]
    live_keys = set(
        Session.objects.filter(session_key__in=portal_keys, expire_date__gt=now).values_list(
            "session_key", flat=True
        )
    )
    current = str(current_id) if current_id else None
    return [
        SessionView(auth_session=row, current=str(row.pk) == current)
        for row in rows
        if row.kind != AuthSessionKind.PORTAL or row.session_key in live_keys
    ]


def auth_session_is_live(*, auth_session_id: uuid.UUID | str, user: User) -> bool:
    try:
        session_uuid = uuid.UUID(str(auth_session_id))
    except ValueError:
        return False
    return AuthSession.objects.filter(pk=session_uuid, user=user, revoked_at__isnull=True).exists()


# --------------------------------------------------------------------------- connections


def exchange_connection_list(*, user: User) -> QuerySet[ExchangeConnection]:
    return ExchangeConnection.objects.filter(user=user).order_by("-created_at", "-id")


def exchange_connection_get(*, user: User, connection_id: uuid.UUID | str) -> ExchangeConnection:
    try:
        return exchange_connection_list(user=user).get(pk=connection_id)
    except (ExchangeConnection.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Connection not found.", field="connection") from exc


@dataclass(frozen=True)
class VenueCredentials:
    """Decrypted credentials for an exchange adapter. ``repr`` hides them from logs."""

    exchange_name: str
    api_key: str
    api_secret: str
    passphrase: str | None

    def __repr__(self) -> str:
        return f"VenueCredentials({self.exchange_name}, api_key=***, api_secret=***)"


@sensitive_variables("passphrase", "raw_key", "candidates")
def exchange_connection_credentials(*, connection: ExchangeConnection) -> VenueCredentials:
    """The plaintext credentials of an active connection (adapters only; never logged)."""
    from accounts.crypto import decrypt

    if not connection.is_active:
        raise PermissionDenied("This connection is disabled.", code="connection_disabled")
    passphrase = connection.passphrase_encrypted
    return VenueCredentials(
        exchange_name=connection.exchange_name,
        api_key=decrypt(connection.api_key_encrypted).decode(),
        api_secret=decrypt(connection.api_secret_encrypted).decode(),
        passphrase=decrypt(passphrase).decode() if passphrase else None,
    )


# --------------------------------------------------------------------------- audit


def audit_log_for_user(*, user: User) -> QuerySet[AuditLog]:
    """What happened to ``user``'s own account (the portal's security activity list)."""
    return AuditLog.objects.filter(actor=user).order_by("-created_at")
