"""Masking of secrets before anything is logged, audited or shown.

Tandem never logs private keys, API secrets, passwords, JWTs or session ids on purpose; this is
the net under that rule for text that comes from elsewhere (exceptions, third-party libraries).
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"
SENSITIVE_KEYS = re.compile(
    r"(pass(word)?|secret|private[_-]?key|api[_-]?key|token|session(id)?|signature|"
    r"authorization|cookie|otp|seed|mnemonic)",
    re.IGNORECASE,
)
_PATTERNS = [
    # 32-byte hex private keys (with or without 0x); 20-byte addresses are public and kept.
    re.compile(r"\b(0x)?[0-9a-fA-F]{64}\b"),
    # JWTs: three base64url segments.
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\b"),
    # Tandem API keys: tdm_<prefix>.<secret>
    re.compile(r"\btdm_[A-Za-z0-9]{6,}\.[A-Za-z0-9_-]{16,}\b"),
    # Bearer credentials in headers copied into messages.
    re.compile(r"(?i)\b(bearer|api-key)\s+[A-Za-z0-9._~+/=-]{16,}"),
]


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(MASK, text)
    return text


def mask_mapping(values: Any) -> Any:
    """Mask values whose key names a secret, recursively; redact secret-looking strings."""
    if isinstance(values, dict):
        return {
            key: (
                MASK
                if isinstance(key, str) and SENSITIVE_KEYS.search(key) and value
                else mask_mapping(value)
            )
            for key, value in values.items()
        }
    if isinstance(values, list | tuple):
        return [mask_mapping(item) for item in values]
    if isinstance(values, str):
        return redact(values)
    return values
