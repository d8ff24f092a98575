"""Exchange connections: a user's API credentials on a venue, encrypted at rest (seed 002)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class ExchangeConnection(models.Model):
    """Venue API key and secret, stored only as MultiFernet ciphertext (accounts.crypto).

    ``api_key_last4`` is the one plaintext fragment: enough for a person to recognise which key
    this is, useless for calling the venue. Nothing in the API, admin or logs shows more.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, related_name="exchange_connections"
    )
    exchange_name = models.CharField("venue", max_length=32)
    label = models.CharField(max_length=64, blank=True, default="")
    api_key_encrypted = models.BinaryField(editable=False)
    api_secret_encrypted = models.BinaryField(editable=False)
    # Some venues (OKX, KuCoin, Bitget) sign requests with a third secret, the passphrase.
    passphrase_encrypted = models.BinaryField(null=True, blank=True, editable=False)
    api_key_last4 = models.CharField(max_length=4, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "exchange_connections"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["user"], name="exchange_connections_user_idx"),
            models.Index(fields=["exchange_name"], name="exchange_connections_venue_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(exchange_name__regex=r"^[a-z0-9_]{2,32}$"),
                name="exchange_connections_venue_format",
            ),
            models.UniqueConstraint(
                fields=["user", "exchange_name", "label"],
                name="exchange_connections_user_venue_label_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.exchange_name} {self.label or ''} ({self.api_key_masked})".replace("  ", " ")

    @property
    def api_key_masked(self) -> str:
        return f"••••{self.api_key_last4}"
