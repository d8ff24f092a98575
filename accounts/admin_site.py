"""The admin site: staff need a verified TOTP device, and every change is audited.

``accounts.apps.TandemAdminConfig`` makes this the class of ``django.contrib.admin.site``,
so every app's ``@admin.register`` lands here without knowing it. Registration wraps each
ModelAdmin in :class:`AuditedAdminMixin`, which writes an ``audit_logs`` row (old and new
values, secrets masked) for every add, change and delete made through the admin.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django_otp import devices_for_user
from django_otp.admin import OTPAdminAuthenticationForm, OTPAdminSite

from accounts.models import ActorType, User
from accounts.services import audit_log_record
from config.redaction import MASK, SENSITIVE_KEYS

# Field names whose values never reach an audit row, beyond config.redaction's list.
_MASKED_NAMES = ("key", "hash", "encrypted", "passphrase", "secret", "password", "token")


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return MASK
    if isinstance(value, models.Model):
        return str(value.pk)
    if isinstance(value, QuerySet):
        return [str(pk) for pk in value.values_list("pk", flat=True)]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return str(value)


def _as_uuid(pk: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(pk))
    except ValueError:
        return None


class AuditedAdminMixin:
    """Audit rows for admin adds, changes and deletes (mixed into every registered admin)."""

    # Extra field names to mask in audit rows for one admin.
    audit_masked_fields: Iterable[str] = ()

    def _audit_values(self, values: dict[str, Any]) -> dict[str, Any]:
        masked = set(self.audit_masked_fields)
        out: dict[str, Any] = {}
        for name, value in values.items():
            lowered = name.lower()
            secret = (
                name in masked
                or SENSITIVE_KEYS.search(name) is not None
                or any(part in lowered for part in _MASKED_NAMES)
            )
            out[name] = MASK if secret and value not in (None, "") else _jsonable(value)
        return out

    def _audit(
        self,
        request: HttpRequest,
        *,
        action: str,
        obj: models.Model,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
    ) -> None:
        audit_log_record(
            action=action,
            actor=request.user if isinstance(request.user, User) else None,
            actor_type=ActorType.ADMIN,
            resource_type=obj._meta.label_lower,
            resource_id=_as_uuid(obj.pk),
            old_values=self._audit_values(old) if old is not None else None,
            new_values=self._audit_values(new) if new is not None else None,
            request=request,
            metadata={"object_id": str(obj.pk), "object": str(obj)[:200]},
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        if change:
            # Only what really changed (a form may flag an untouched JSON or m2m field).
            names = [
                name
                for name in form.changed_data
                if _jsonable(form.initial.get(name)) != _jsonable(form.cleaned_data.get(name))
            ]
            old = {name: form.initial.get(name) for name in names}
            new = {name: form.cleaned_data.get(name) for name in names}
        else:
            old, new = None, dict(form.cleaned_data)
        super().save_model(request, obj, form, change)  # type: ignore[misc]
        if change and not new:
            return
        self._audit(
            request, action="admin_change" if change else "admin_add", obj=obj, old=old, new=new
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        snapshot = {"repr": str(obj)}
        self._audit(request, action="admin_delete", obj=obj, old=snapshot, new=None)
        super().delete_model(request, obj)  # type: ignore[misc]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self._audit(request, action="admin_delete", obj=obj, old={"repr": str(obj)}, new=None)
        super().delete_queryset(request, queryset)  # type: ignore[misc]


class TandemAdminAuthenticationForm(OTPAdminAuthenticationForm):
    """Email, password and a code in one step when the staff member has a single device.

    django-otp asks to pick a device rather than trying the code on each (a miss would count
    as a failed attempt against every other device). With one confirmed device there is
    nothing to pick, so it is chosen for them; with several the picker still appears.
    """

    def _chosen_device(self, user: Any) -> Any:
        device = super()._chosen_device(user)
        if device is None and not self.cleaned_data.get("otp_device"):
            devices = list(devices_for_user(user, confirmed=True))
            if len(devices) == 1:
                return devices[0]
        return device


class TandemAdminSite(OTPAdminSite):
    """OTPAdminSite: a staff member without a verified TOTP device is treated as non-staff."""

    site_header = "Tandem back office"
    site_title = "Tandem"
    index_title = "Operations"
    login_template = "admin/tandem_login.html"
    login_form = TandemAdminAuthenticationForm

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def register(
        self,
        model_or_iterable: Any,
        admin_class: type[admin.ModelAdmin[Any]] | None = None,
        **options: Any,
    ) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedAdminMixin):
            admin_class = type(
                admin_class.__name__,
                (AuditedAdminMixin, admin_class),
                {"__module__": admin_class.__module__},
            )
        super().register(model_or_iterable, admin_class, **options)
