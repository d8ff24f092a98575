"""Domain errors particular to signing in (the shared ones are in config.errors)."""

from __future__ import annotations

from typing import Any

from config.errors import DomainError


class SignInFailed(DomainError):
    """Credentials that do not prove who the caller is (401), e.g. a bad SIWE signature."""

    status_code = 401
    default_code = "sign_in_failed"


class LockedOut(DomainError):
    """Too many failed password attempts: django-axes refuses for a cool-off period (429)."""

    status_code = 429
    default_code = "locked_out"

    def __init__(self, message: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(message, **extra)
        self.retry_after = retry_after
