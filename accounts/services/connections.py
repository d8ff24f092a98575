"""Exchange connections: venue API credentials, encrypted on the way in, never shown again."""

from __future__ import annotations

import re
import uuid
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from accounts import crypto
from accounts.models import ExchangeConnection, User
from accounts.services.audit import audit_log_record
from config.errors import Conflict, NotFound, ValidationFailed

MAX_CONNECTIONS = 20
_CREDENTIAL = re.compile(r"^[\x21-\x7e]{8,512}$")  # printable ASCII, no spaces


@lru_cache(maxsize=1)
def supported_venues() -> frozenset[str]:
    """Venue ids ccxt knows (its list is the well-kept registry of exchange APIs)."""
    import ccxt

    return frozenset(ccxt.exchanges)


@sensitive_variables(
    "api_key", "api_secret", "passphrase", "key", "secret", "phrase", "value", "cleaned"
)
def _clean_credential(value: str | None, field: str, *, required: bool) -> str | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise ValidationFailed("This field is required.", field=field)
        return None
    if not _CREDENTIAL.match(value):
        # Never echo the value: it is a secret even when malformed.
        raise ValidationFailed(
            "Expected 8 to 512 printable characters without spaces.",
            code="invalid_credential",
            field=field,
        )
    return value


@sensitive_variables(
    "api_key", "api_secret", "passphrase", "key", "secret", "phrase", "value", "cleaned"
)
def _required_credential(value: str | None, field: str) -> str:
    cleaned = _clean_credential(value, field, required=True)
    if cleaned is None:  # unreachable: required=True raises instead
        raise ValidationFailed("This field is required.", field=field)
    return cleaned


def _clean_venue(exchange_name: str) -> str:
    venue = (exchange_name or "").strip().lower()
    if venue not in supported_venues():
        raise ValidationFailed(
            f"Unknown venue {venue!r}.", code="invalid_exchange", field="exchange_name"
        )
    return venue


def _clean_label(label: str | None) -> str:
    label = (label or "").strip()
    if len(label) > 64:
        raise ValidationFailed("The label may have at most 64 characters.", field="label")
    return label


@sensitive_variables(
    "api_key", "api_secret", "passphrase", "key", "secret", "phrase", "value", "cleaned"
)
def exchange_connection_create(
    *,
    user: User,
    exchange_name: str,
    api_key: str,
    api_secret: str,
    passphrase: str | None = None,
    label: str = "",
    request: HttpRequest | None = None,
) -> ExchangeConnection:
    venue = _clean_venue(exchange_name)
    label = _clean_label(label)
    key = _required_credential(api_key, "api_key")
    secret = _required_credential(api_secret, "api_secret")
    phrase = _clean_credential(passphrase, "passphrase", required=False)
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=user.pk).first()
        if ExchangeConnection.objects.filter(user=user).count() >= MAX_CONNECTIONS:
            raise Conflict(f"At most {MAX_CONNECTIONS} connections.", code="too_many_connections")
        try:
            with transaction.atomic():
                connection = ExchangeConnection.objects.create(
                    user=user,
                    exchange_name=venue,
                    label=label,
                    api_key_encrypted=crypto.encrypt(key),
                    api_secret_encrypted=crypto.encrypt(secret),
                    passphrase_encrypted=crypto.encrypt(phrase) if phrase else None,
                    api_key_last4=key[-4:],
                )
        except IntegrityError as exc:
            raise Conflict(
                "You already have a connection to this venue with this label.",
                code="duplicate_connection",
                field="label",
            ) from exc
        audit_log_record(
            action="exchange_connection_create",
            actor=user,
            resource_type="exchange_connection",
            resource_id=connection.pk,
            new_values={
                "exchange_name": venue,
                "label": label,
                "key_hint": connection.api_key_masked,
                "has_passphrase": phrase is not None,
            },
            request=request,
        )
    return connection


def _locked(*, user: User, connection_id: uuid.UUID | str) -> ExchangeConnection:
    try:
        return ExchangeConnection.objects.select_for_update().get(pk=connection_id, user=user)
    except (ExchangeConnection.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise NotFound("Connection not found.", field="connection") from exc


@sensitive_variables(
    "api_key", "api_secret", "passphrase", "key", "secret", "phrase", "value", "cleaned"
)
def exchange_connection_update(
    *,
    user: User,
    connection_id: uuid.UUID | str,
    label: str | None = None,
    is_active: bool | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    passphrase: str | None = None,
    request: HttpRequest | None = None,
) -> ExchangeConnection:
    """Relabel, enable/disable, or replace the credentials (key and secret go together)."""
    new_label = _clean_label(label) if label is not None else None
    key = _clean_credential(api_key, "api_key", required=False)
    secret = _clean_credential(api_secret, "api_secret", required=False)
    phrase = _clean_credential(passphrase, "passphrase", required=False)
    if (key is None) != (secret is None):
        raise ValidationFailed(
            "Replace the API key and secret together.",
            code="credentials_incomplete",
            field="api_secret" if key else "api_key",
        )
    with transaction.atomic():
        connection = _locked(user=user, connection_id=connection_id)
        old: dict[str, object] = {}
        new: dict[str, object] = {}
        if new_label is not None and new_label != connection.label:
            old["label"], new["label"] = connection.label, new_label
            connection.label = new_label
        if is_active is not None and bool(is_active) != connection.is_active:
            old["is_active"], new["is_active"] = connection.is_active, bool(is_active)
            connection.is_active = bool(is_active)
        if key is not None and secret is not None:
            old["key_hint"] = connection.api_key_masked
            connection.api_key_encrypted = crypto.encrypt(key)
            connection.api_secret_encrypted = crypto.encrypt(secret)
            connection.api_key_last4 = key[-4:]
            new["key_hint"] = connection.api_key_masked
            new["credentials"] = "replaced"
        if phrase is not None:
            connection.passphrase_encrypted = crypto.encrypt(phrase)
            new["passphrase_replaced"] = True
        if new:
            try:
                with transaction.atomic():
                    connection.save()
            except IntegrityError as exc:
                raise Conflict(
                    "You already have a connection to this venue with this label.",
                    code="duplicate_connection",
                    field="label",
                ) from exc
            audit_log_record(
                action="exchange_connection_update",
                actor=user,
                resource_type="exchange_connection",
                resource_id=connection.pk,
                old_values=old,
                new_values=new,
                request=request,
            )
    return connection


def exchange_connection_delete(
    *, user: User, connection_id: uuid.UUID | str, request: HttpRequest | None = None
) -> None:
    """Delete the row and with it the only copy of the ciphertext."""
    with transaction.atomic():
        connection = _locked(user=user, connection_id=connection_id)
        snapshot = {
            "exchange_name": connection.exchange_name,
            "label": connection.label,
            "key_hint": connection.api_key_masked,
        }
        connection_pk = connection.pk
        connection.delete()
        audit_log_record(
            action="exchange_connection_delete",
            actor=user,
            resource_type="exchange_connection",
            resource_id=connection_pk,
            old_values=snapshot,
            request=request,
        )
