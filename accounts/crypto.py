"""Encryption at rest for agent-wallet keys and venue API secrets.

MultiFernet over settings.ENCRYPTION_KEYS: the first key encrypts, every key decrypts, so a new
key is rolled out by putting it first, running ``manage.py rotate_encryption_keys`` (which
re-encrypts each row with the first key) and only then removing the old key.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.views.decorators.debug import sensitive_variables


class DecryptionError(Exception):
    """Ciphertext that no configured key opens (wrong key set, or corrupted)."""


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet(
        [Fernet(key.encode() if isinstance(key, str) else key) for key in settings.ENCRYPTION_KEYS]
    )


@receiver(setting_changed)
def _reset_keys(setting: str, **kwargs: object) -> None:
    if setting == "ENCRYPTION_KEYS":
        _fernet.cache_clear()


@sensitive_variables("plaintext", "data")
def encrypt(plaintext: str | bytes) -> bytes:
    data = plaintext.encode() if isinstance(plaintext, str) else plaintext
    return _fernet().encrypt(data)


@sensitive_variables()
def decrypt(ciphertext: bytes | memoryview) -> bytes:
    try:
        return _fernet().decrypt(bytes(ciphertext))
    except InvalidToken as exc:
        raise DecryptionError("ciphertext does not open with any configured key") from exc


@sensitive_variables()
def rotate(ciphertext: bytes | memoryview) -> bytes:
    """Re-encrypt under the first (newest) key; old ciphertext must still open."""
    try:
        return _fernet().rotate(bytes(ciphertext))
    except InvalidToken as exc:
        raise DecryptionError("ciphertext does not open with any configured key") from exc


def is_current(ciphertext: bytes | memoryview) -> bool:
    """Whether ``ciphertext`` already opens with the first (newest) key: rotation skips it."""
    primary = Fernet(_primary_key())
    try:
        primary.decrypt(bytes(ciphertext))
    except InvalidToken:
        return False
    return True


def _primary_key() -> bytes:
    key = settings.ENCRYPTION_KEYS[0]
    return key.encode() if isinstance(key, str) else bytes(key)


def generate_key() -> str:
    return Fernet.generate_key().decode()
