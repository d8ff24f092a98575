"""Accounts models: one module a concern, every name importable from ``accounts.models``."""

from accounts.models.agent_wallets import (
    AgentWallet,
    AgentWalletKeySource,
    AgentWalletStatus,
    default_agent_permissions,
)
from accounts.models.audit import ActorType, AuditLog, AuditStatus
from accounts.models.auth import (
    ApiKey,
    ApiKeyScope,
    AuthMethod,
    AuthSession,
    AuthSessionKind,
    SiweNonce,
)
from accounts.models.connections import ExchangeConnection
from accounts.models.users import (
    WALLET_ADDRESS_REGEX,
    KycLevel,
    User,
    UserManager,
    UserStatus,
    checksum_address,
)

__all__ = [
    "WALLET_ADDRESS_REGEX",
    "ActorType",
    "AgentWallet",
    "AgentWalletKeySource",
    "AgentWalletStatus",
    "ApiKey",
    "ApiKeyScope",
    "AuditLog",
    "AuditStatus",
    "AuthMethod",
    "AuthSession",
    "AuthSessionKind",
    "ExchangeConnection",
    "KycLevel",
    "SiweNonce",
    "User",
    "UserManager",
    "UserStatus",
    "checksum_address",
    "default_agent_permissions",
]
