"""API keys: ``tdm_<prefix>.<secret>``, shown once, stored as a keyed hash, revocable."""

from __future__ import annotations

import ipaddress
import secrets
import string
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.views.decorators.debug import sensitive_variables

from accounts.models import ApiKey, ApiKeyScope, User
from accounts.services.audit import audit_log_record
from config.errors import Conflict, NotFound, PermissionDenied, ValidationFailed

KEY_PREFIX = "tdm_"
PREFIX_LENGTH = 10
MAX_ACTIVE_KEYS = 25
MAX_ALLOWED_NETWORKS = 32
MAX_LIFETIME = timedelta(days=366)
# last_used_at tells a person whether a key is still in use; a write a minute is plenty.
LAST_USED_INTERVAL = timedelta(seconds=60)
_ALPHANUMERIC = string.ascii_letters + string.digits


@sensitive_variables("raw_key", "secret", "secrets_")
def api_key_hash(raw_key: str, *, secret: str | None = None) -> str:
    """HMAC-SHA256 of the whole key under a server secret (SECRET_KEY, or a fallback).

    A fast keyed hash rather than argon2 on purpose: the secret half of a key is 256 random
    bits, so there is no low-entropy guess for a slow hash to slow down, while argon2 would
    add tens of milliseconds of CPU to every API request. Keying it with the server secret
    also means a copy of the table alone cannot even test a candidate key offline. Rotating
    SECRET_KEY keeps old keys working while the old secret is in SECRET_KEY_FALLBACKS.
    """
    return salted_hmac(
        "tandem.accounts.ApiKey", raw_key, secret=secret, algorithm="sha256"
    ).hexdigest()


@sensitive_variables("raw_key", "secret", "secrets_")
def api_key_hash_candidates(raw_key: str) -> list[str]:
    secrets_ = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [api_key_hash(raw_key, secret=s) for s in secrets_]


def _clean_scopes(scopes: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(scopes or []))
    unknown = [s for s in chosen if s not in ApiKeyScope.values]
    if not chosen or unknown:
        raise ValidationFailed(
            f"Choose one or more scopes from {', '.join(ApiKeyScope.values)}.",
            code="invalid_scopes",
            field="scopes",
        )
    # Stored in a fixed order so equal scope sets look equal.
    return [s for s in ApiKeyScope.values if s in chosen]


def _clean_networks(allowed_ips: Iterable[str] | None) -> list[str]:
    networks: list[str] = []
    for entry in allowed_ips or []:
        try:
            networks.append(str(ipaddress.ip_network(str(entry).strip(), strict=False)))
        except ValueError as exc:
            raise ValidationFailed(
                f"{entry!r} is not an IP address or CIDR network.",
                code="invalid_ip",
                field="allowed_ips",
            ) from exc
    if len(networks) > MAX_ALLOWED_NETWORKS:
        raise ValidationFailed(
            f"At most {MAX_ALLOWED_NETWORKS} networks.", code="invalid_ip", field="allowed_ips"
        )
    return list(dict.fromkeys(networks))


def _check_within_parent(
    parent: ApiKey, *, scopes: list[str], networks: list[str], expires_at: datetime | None
) -> None:
    """A key creating a key: no scope it does not hold itself, usable from no address it cannot
    be used from, and expiring no later than itself. Otherwise a leaked, limited key (a
    ``manage`` key locked to one network) could mint an unlimited one."""
    missing = sorted(set(scopes) - set(parent.scopes))
    if missing:
        raise PermissionDenied(
            f"This API key cannot grant scopes it does not hold: {', '.join(missing)}.",
            code="insufficient_scope",
            field="scopes",
        )
    if parent.allowed_ips:
        allowed = [ipaddress.ip_network(entry, strict=False) for entry in parent.allowed_ips]
        inside = bool(networks) and all(
            any(
                network.version == outer.version and network.subnet_of(outer)  # type: ignore[arg-type]
                for outer in allowed
            )
            for network in map(ipaddress.ip_network, networks)
        )
        if not inside:
            raise PermissionDenied(
                "A key created by an IP-restricted key must be restricted to (part of) the "
                "same networks.",
                code="insufficient_scope",
                field="allowed_ips",
            )
    if parent.expires_at is not None and (expires_at is None or expires_at > parent.expires_at):
        raise PermissionDenied(
            "A key created by an expiring key must expire no later than it.",
            code="insufficient_scope",
            field="expires_at",
        )


@sensitive_variables("raw_key", "secret", "secrets_")
def api_key_create(
    *,
    user: User,
    name: str,
    scopes: Iterable[str],
    expires_at: datetime | None = None,
    allowed_ips: Iterable[str] | None = None,
    request: HttpRequest | None = None,
    parent: ApiKey | None = None,
) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never available again.

    ``parent``: the API key the request creating this one was authenticated by. A key may only
    create keys no stronger than itself (see :func:`_check_within_parent`).
    """
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("Name the key (1 to 100 characters).", field="name")
    clean_scopes = _clean_scopes(scopes)
    networks = _clean_networks(allowed_ips)
    now = timezone.now()
    if parent is not None:
        _check_within_parent(parent, scopes=clean_scopes, networks=networks, expires_at=expires_at)
    if expires_at is not None:
        if timezone.is_naive(expires_at):
            raise ValidationFailed("Give the expiry with a time zone.", field="expires_at")
        if expires_at <= now or expires_at > now + MAX_LIFETIME:
            raise ValidationFailed(
                "The expiry must be in the future and within a year.", field="expires_at"
            )
    prefix = "".join(secrets.choice(_ALPHANUMERIC) for _ in range(PREFIX_LENGTH))
    raw_key = f"{KEY_PREFIX}{prefix}.{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        # Lock the user row so two concurrent creations cannot both pass the limit.
        User.objects.select_for_update().filter(pk=user.pk).first()
        active = ApiKey.objects.filter(user=user, revoked_at__isnull=True).count()
        if active >= MAX_ACTIVE_KEYS:
            raise Conflict(
                f"At most {MAX_ACTIVE_KEYS} active keys; revoke one first.", code="too_many_keys"
            )
        # The plan's limit (billing), counted under the same user lock.
        from billing.services import plan_limit_check

        plan_limit_check(user=user, resource="api_keys", current=active)
        api_key = ApiKey.objects.create(
            user=user,
            name=name,
            prefix=prefix,
            key_hash=api_key_hash(raw_key),
            scopes=clean_scopes,
            allowed_ips=networks,
            expires_at=expires_at,
        )
        audit_log_record(
            action="api_key_create",
            actor=user,
            resource_type="api_key",
            resource_id=api_key.pk,
            new_values={
                "name": name,
                "prefix": api_key.display_prefix,
                "scopes": clean_scopes,
                "allowed_ips": networks,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
            request=request,
        )
    return api_key, raw_key


def api_key_revoke(
    *,
    user: User,
    api_key_id: uuid.UUID | str,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> ApiKey:
    """Revoke one of ``user``'s keys (idempotent). Another user's key is "not found"."""
    with transaction.atomic():
        try:
            api_key = ApiKey.objects.select_for_update().get(pk=api_key_id, user=user)
        except (ApiKey.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
            raise NotFound("API key not found.", field="api_key") from exc
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            audit_log_record(
                action="api_key_revoke",
                actor=actor or user,
                resource_type="api_key",
                resource_id=api_key.pk,
                old_values={"revoked_at": None},
                new_values={"revoked_at": api_key.revoked_at.isoformat()},
                metadata={"prefix": api_key.display_prefix, "name": api_key.name},
                request=request,
            )
    return api_key


def api_key_touch(*, api_key: ApiKey, ip: str | None) -> None:
    """Record use at most once a minute, with one conditional UPDATE and no transaction."""
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_INTERVAL:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now, last_used_ip=ip)
    api_key.last_used_at = now
    api_key.last_used_ip = ip
