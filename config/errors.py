"""Domain errors raised by services and selectors, rendered by the API and portal alike.

A service refuses bad input by raising one of these *before* it writes anything; the API turns
it into an RFC 9457 problem (HTTP 400/403/404/409) with field errors, the portal into a form
error, a management command into a readable line.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    default_code = "invalid"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        fields: dict[str, list[str]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.fields: dict[str, list[str]] = dict(fields or {})
        if field:
            self.fields.setdefault(field, []).append(message)
        self.extra = extra

    def __str__(self) -> str:
        return self.message


class ValidationFailed(DomainError):
    """The input is malformed or breaks a rule (400)."""


class PermissionDenied(DomainError):
    status_code = 403
    default_code = "permission_denied"


class NotFound(DomainError):
    """Also raised for another user's object: its existence is not disclosed (404)."""

    status_code = 404
    default_code = "not_found"


class Conflict(DomainError):
    status_code = 409
    default_code = "conflict"
