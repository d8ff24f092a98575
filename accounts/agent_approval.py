"""The Hyperliquid ``approveAgent`` action a master wallet signs to authorise an agent wallet.

Everything about the EIP-712 payload comes from hyperliquid-python-sdk's
``hyperliquid.utils.signing`` (``user_signed_payload`` builds the domain and types,
``recover_user_from_user_signed_action`` checks a signature), so what a user signs here is
byte for byte what Hyperliquid's ``/exchange`` endpoint verifies. The SDK inlines the field
list of ``approveAgent`` inside ``sign_agent``; ``APPROVE_AGENT_TYPES`` repeats it and a test
signs with ``sign_agent`` itself to prove the two agree.
"""

from __future__ import annotations

import copy
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from eth_utils import to_hex
from hyperliquid.utils import signing

if TYPE_CHECKING:
    from accounts.models import AgentWallet

PRIMARY_TYPE = "HyperliquidTransaction:ApproveAgent"
APPROVE_AGENT_TYPES: list[dict[str, str]] = [
    {"name": "hyperliquidChain", "type": "string"},
    {"name": "agentAddress", "type": "address"},
    {"name": "agentName", "type": "string"},
    {"name": "nonce", "type": "uint64"},
]
# The SDK signs with Arbitrum Sepolia's id; Hyperliquid accepts any chain id here because
# ``hyperliquidChain`` is what prevents replays across environments. Browser wallets insist
# that it equals the chain they are connected to, so clients may ask for theirs.
DEFAULT_SIGNATURE_CHAIN_ID = 0x66EEE
_SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")


@dataclass(frozen=True)
class ApprovalRequest:
    """What the master wallet must sign (``typed_data``) and what is posted to the venue."""

    agent_wallet: AgentWallet
    action: dict[str, Any]
    typed_data: dict[str, Any]
    expires_at: datetime


class ApprovalSignatureError(ValueError):
    """A signature that is malformed or cannot be recovered."""


def is_mainnet() -> bool:
    return not settings.TANDEM["HYPERLIQUID_TESTNET"]


def nonce_now() -> int:
    """Hyperliquid nonces are the signer's epoch-millisecond clock."""
    return int(time.time() * 1000)


def approve_agent_action(
    *,
    agent_address: str,
    agent_name: str,
    nonce: int,
    signature_chain_id: int = DEFAULT_SIGNATURE_CHAIN_ID,
    mainnet: bool | None = None,
) -> dict[str, Any]:
    """The ``approveAgent`` action as ``Exchange.approve_agent`` builds and signs it."""
    return {
        "type": "approveAgent",
        "agentAddress": agent_address,
        "agentName": agent_name,
        "nonce": nonce,
        "signatureChainId": hex(signature_chain_id),
        "hyperliquidChain": "Mainnet"
        if (is_mainnet() if mainnet is None else mainnet)
        else "Testnet",
    }


def typed_data(action: dict[str, Any]) -> dict[str, Any]:
    """The EIP-712 payload for ``eth_signTypedData_v4`` (domain, types, primaryType, message)."""
    return signing.user_signed_payload(PRIMARY_TYPE, APPROVE_AGENT_TYPES, copy.deepcopy(action))


def split_signature(signature: str) -> dict[str, Any]:
    """``0x`` r‖s‖v hex into the ``{"r", "s", "v"}`` form Hyperliquid and the SDK use."""
    if not isinstance(signature, str) or not _SIGNATURE.match(signature):
        raise ApprovalSignatureError("the signature must be 0x followed by 65 bytes in hex")
    raw = bytes.fromhex(signature[2:])
    v = raw[64]
    if v in (0, 1):
        v += 27
    if v not in (27, 28):
        raise ApprovalSignatureError("the signature's recovery byte must be 27 or 28")
    # Minimal hex, as the SDK's sign_inner writes r and s (to_hex of the integers).
    return {
        "r": to_hex(int.from_bytes(raw[:32], "big")),
        "s": to_hex(int.from_bytes(raw[32:64], "big")),
        "v": v,
    }


def recover_signer(action: dict[str, Any], signature: str) -> str:
    """The address that signed ``action`` (the master wallet, if the approval is genuine)."""
    parts = split_signature(signature)
    mainnet = action.get("hyperliquidChain") == "Mainnet"
    try:
        return str(
            signing.recover_user_from_user_signed_action(
                copy.deepcopy(action), parts, APPROVE_AGENT_TYPES, PRIMARY_TYPE, mainnet
            )
        )
    except Exception as exc:  # eth-keys raises several types for an unrecoverable signature
        raise ApprovalSignatureError("the signature cannot be recovered") from exc
