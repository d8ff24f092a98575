"""Signal receivers: every sign-in, sign-out and failed sign-in, whoever handled it.

Django's own login views (portal password form, admin) and our services all go through
``login()`` / ``authenticate()``, so hooking the auth signals here is what guarantees that
no sign-in path escapes the audit log or the session list.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest
from django_otp.forms import otp_verification_failed

from accounts import services
from accounts.models import AuditStatus, AuthMethod, User


@receiver(user_logged_in, dispatch_uid="accounts.user_logged_in")
def on_user_logged_in(sender: Any, request: HttpRequest | None, user: User, **kwargs: Any) -> None:
    if request is None or not hasattr(request, "session"):
        return
    method = getattr(request, "_tandem_sign_in_method", AuthMethod.PASSWORD)
    services.auth_session_open_portal(user=user, request=request, method=method)
    if not getattr(request, "_tandem_sign_in_audited", False):
        services.audit_log_record(
            action="sign_in",
            actor=user,
            resource_type="user",
            resource_id=user.pk,
            request=request,
            metadata={"method": method, "mode": "session", "path": request.path},
        )


@receiver(user_logged_out, dispatch_uid="accounts.user_logged_out")
def on_user_logged_out(
    sender: Any, request: HttpRequest | None, user: User | None, **kwargs: Any
) -> None:
    if request is None:
        return
    services.auth_session_end_portal(request=request)
    if user is not None:
        services.audit_log_record(
            action="sign_out",
            actor=user,
            resource_type="user",
            resource_id=user.pk,
            request=request,
        )


@receiver(user_login_failed, dispatch_uid="accounts.user_login_failed")
def on_user_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    locked = bool(request is not None and getattr(request, "axes_locked_out", False))
    username = str(credentials.get("username") or credentials.get("email") or "")[:254]
    actor = User.objects.filter(email__iexact=username).first() if username else None
    services.audit_log_record(
        action="sign_in",
        actor=actor,
        resource_type="user",
        resource_id=actor.pk if actor else None,
        status=AuditStatus.FAILURE,
        error_code="locked_out" if locked else "invalid_credentials",
        error_message="too many failed attempts" if locked else "wrong email or password",
        request=request,
        metadata={"method": "password", "username": username},
        immediate=True,
    )


@receiver(otp_verification_failed, dispatch_uid="accounts.otp_verification_failed")
def on_otp_verification_failed(sender: Any, user: User | None = None, **kwargs: Any) -> None:
    services.audit_log_record(
        action="sign_in_otp",
        actor=user,
        resource_type="user",
        resource_id=user.pk if user is not None else None,
        status=AuditStatus.FAILURE,
        error_code="invalid_otp",
        error_message="wrong or reused TOTP code",
        metadata={"method": "totp"},
        immediate=True,
    )
