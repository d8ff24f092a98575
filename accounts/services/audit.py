"""The audit log writer every app uses: ``audit_log_record``."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import transaction
from django.http import HttpRequest

from accounts.models import ActorType, AuditLog, AuditStatus, User
from config.redaction import mask_mapping


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites
    # it, and production sets that up in the proxy, not here.
    return request.META.get("REMOTE_ADDR") or None


def user_agent(request: HttpRequest | None) -> str:
    return (request.META.get("HTTP_USER_AGENT", "") if request is not None else "")[:512]


def request_context(request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return {}
    return {
        "request_id": getattr(request, "request_id", None),
        "method": request.method,
        "path": request.path,
    }


def audit_log_record(
    *,
    action: str,
    actor: User | None = None,
    actor_type: str | None = None,
    resource_type: str = "",
    resource_id: uuid.UUID | str | None = None,
    old_values: dict[str, Any] | None = None,
    new_values: dict[str, Any] | None = None,
    status: str = AuditStatus.SUCCESS,
    error_code: str = "",
    error_message: str = "",
    request: HttpRequest | None = None,
    metadata: dict[str, Any] | None = None,
    immediate: bool = False,
) -> None:
    """Append an audit row once the surrounding transaction commits.

    Secrets are masked before they reach the row. ``immediate=True`` writes now, in its own
    transaction: used for failures (a refused sign-in) whose caller rolls back its own work.
    """
    if actor_type is None:
        if actor is None:
            actor_type = ActorType.SYSTEM
        elif actor.is_staff:
            actor_type = ActorType.ADMIN
        else:
            actor_type = ActorType.USER
    actor_id = getattr(actor, "pk", None) if actor is not None and actor.pk else None
    row = {
        "actor_id": actor_id,
        "actor_type": actor_type,
        "action": action,
        "resource_type": resource_type,
        "resource_id": uuid.UUID(str(resource_id)) if resource_id else None,
        "old_values": mask_mapping(old_values) if old_values is not None else None,
        "new_values": mask_mapping(new_values) if new_values is not None else None,
        "request_context": request_context(request) or None,
        "status": status,
        "error_code": error_code[:64],
        "error_message": error_message[:2000],
        "ip_address": client_ip(request),
        "user_agent": user_agent(request),
        "metadata": mask_mapping(metadata or {}),
    }
    if immediate:
        with transaction.atomic():
            AuditLog.objects.create(**row)
    else:
        transaction.on_commit(lambda: AuditLog.objects.create(**row))
