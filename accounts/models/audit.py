"""The audit log: an append-only record of every sensitive action (seed 000 ``audit_logs``)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q


class ActorType(models.TextChoices):
    USER = "user", "User"
    SYSTEM = "system", "System"
    ADMIN = "admin", "Admin"


class AuditStatus(models.TextChoices):
    SUCCESS = "success", "Success"
    FAILURE = "failure", "Failure"
    PARTIAL = "partial", "Partial"


class AuditLog(models.Model):
    """Append-only record of sensitive actions. A database trigger refuses UPDATE and DELETE."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    actor = models.ForeignKey(
        "accounts.User",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=True,
        related_name="+",
    )
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    action = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=64, blank=True, default="")
    resource_id = models.UUIDField(null=True, blank=True)
    old_values = models.JSONField(null=True, blank=True)
    new_values = models.JSONField(null=True, blank=True)
    request_context = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=AuditStatus.choices)
    error_code = models.CharField(max_length=64, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.TextField(blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        db_table = "audit_logs"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["actor"], name="audit_logs_actor_idx"),
            models.Index(fields=["action"], name="audit_logs_action_idx"),
            models.Index(fields=["resource_type"], name="audit_logs_resource_type_idx"),
            models.Index(fields=["-created_at"], name="audit_logs_created_at_idx"),
            models.Index(fields=["status"], name="audit_logs_status_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(actor_type__in=ActorType.values), name="audit_logs_actor_type_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=AuditStatus.values), name="audit_logs_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} ({self.status})"
