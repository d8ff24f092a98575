"""How a client proves who it is: wallet sign-in nonces, sessions and JWT families, API keys."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q


class SiweNonce(models.Model):
    """A single-use nonce for one EIP-4361 sign-in.

    Kept after use (``used_at``) rather than deleted, so that a replayed message is recognised
    as a replay (``nonce_reused``) instead of looking like an unknown nonce; a periodic task
    purges rows well after they expired.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    nonce = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by_address = models.CharField(max_length=42, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        db_table = "siwe_nonces"
        indexes = [models.Index(fields=["expires_at"], name="siwe_nonces_expires_at_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(nonce__regex=r"^[A-Za-z0-9]{8,32}$"), name="siwe_nonce_format"
            ),
            models.CheckConstraint(
                condition=Q(used_at__isnull=True) | ~Q(used_by_address=""),
                name="siwe_nonce_used_has_address",
            ),
        ]

    def __str__(self) -> str:
        return self.nonce


class AuthSessionKind(models.TextChoices):
    # A browser session (Django session cookie).
    PORTAL = "portal", "Portal session"
    # A mobile/API client: one chain of rotated refresh tokens.
    JWT = "jwt", "Refresh token"


class AuthMethod(models.TextChoices):
    SIWE = "siwe", "Wallet (Sign-In with Ethereum)"
    PASSWORD = "password", "Email and password"


class AuthSession(models.Model):
    """One signed-in device, whether it holds a session cookie or a chain of refresh tokens.

    The user lists and ends these (seed 002 ``user_sessions``). For a portal session the Django
    session key is kept so it can be deleted; for a JWT family the access and refresh tokens
    carry this row's id in their ``sid`` claim, and ``refresh_jti`` is the refresh token that is
    currently valid (each rotation blacklists the previous one).
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="auth_sessions"
    )
    kind = models.CharField(max_length=16, choices=AuthSessionKind.choices)
    method = models.CharField(max_length=16, choices=AuthMethod.choices)
    session_key = models.CharField(max_length=40, null=True, blank=True, unique=True)
    refresh_jti = models.CharField(max_length=255, blank=True, default="")
    user_agent = models.CharField(max_length=512, blank=True, default="")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "auth_sessions"
        ordering = ["-last_used_at"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="auth_sessions_user_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=AuthSessionKind.values), name="auth_sessions_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(method__in=AuthMethod.values), name="auth_sessions_method_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind=AuthSessionKind.PORTAL) | Q(session_key__isnull=False),
                name="auth_sessions_portal_has_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.user} ({self.created_at:%Y-%m-%d})"


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read"
    TRADE = "trade", "Trade"
    MANAGE = "manage", "Manage"


class ApiKey(models.Model):
    """A programmatic credential ``tdm_<prefix>.<secret>`` (seed 002 ``api_keys``).

    Only ``prefix`` (to find the row) and a keyed hash of the whole key are stored; the key
    itself is shown once, at creation. Revoked keys keep their row for the audit trail.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey("accounts.User", on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, editable=False)
    scopes = ArrayField(models.CharField(max_length=16, choices=ApiKeyScope.choices))
    # CIDR networks ("203.0.113.7/32", "2001:db8::/48"); empty means any address.
    allowed_ips = ArrayField(models.CharField(max_length=49), default=list, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "api_keys"
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user"], name="api_keys_user_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(scopes__contained_by=ApiKeyScope.values) & Q(scopes__len__gte=1),
                name="api_keys_scopes_valid",
            ),
            models.CheckConstraint(
                condition=Q(prefix__regex=r"^[A-Za-z0-9]{8,16}$"), name="api_keys_prefix_format"
            ),
            models.CheckConstraint(
                condition=Q(key_hash__regex=r"^[0-9a-f]{64}$"), name="api_keys_hash_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (tdm_{self.prefix}…)"

    @property
    def display_prefix(self) -> str:
        return f"tdm_{self.prefix}"
