"""Users: credentials, KYC level and account status (suspend / reactivate)."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from accounts.models import KycLevel, User, UserStatus
from accounts.services.audit import audit_log_record
from accounts.services.auth import auth_sessions_revoke_all
from config.errors import Conflict, ValidationFailed


@sensitive_variables("new_password", "current_password")
def user_credentials_set(
    *,
    user: User,
    email: str,
    new_password: str,
    current_password: str = "",
    request: HttpRequest | None = None,
) -> User:
    """Add (or change) the email and password a customer may sign in with besides the wallet.

    Changing an existing password needs the current one: a hijacked session alone must not be
    enough to take the account over.
    """
    email = (email or "").strip().lower()
    errors: dict[str, list[str]] = {}
    if user.has_usable_password() and not user.check_password(current_password or ""):
        errors["current_password"] = ["The current password is incorrect."]
    if not email or "@" not in email:
        errors["email"] = ["Enter a valid email address."]
    elif User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
        raise Conflict("Another account uses this email.", code="email_taken", field="email")
    try:
        validate_password(new_password, user)
    except ValidationError as exc:
        errors["new_password"] = list(exc.messages)
    if errors:
        raise ValidationFailed("The credentials are not valid.", code="invalid", fields=errors)
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        old_email = locked.email
        locked.email = email
        locked.set_password(new_password)
        locked.save(update_fields=["email", "password", "updated_at"])
        audit_log_record(
            action="credentials_change",
            actor=user,
            resource_type="user",
            resource_id=user.pk,
            old_values={"email": old_email},
            new_values={"email": email, "password": "changed"},
            request=request,
        )
    user.refresh_from_db()
    return user


def user_suspend(
    *, user: User, actor: User | None, reason: str, request: HttpRequest | None = None
) -> User:
    """Suspend an account: copying stops, every session and token ends, sign-in is refused.

    API keys are kept but refused while the account is not active (``User.is_active``), so a
    reactivation restores the customer's integrations without new keys.
    """
    from copytrade.services import strategies_pause_for_user

    if not reason.strip():
        raise ValidationFailed("Give a reason for the suspension.", field="reason")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.status == UserStatus.SUSPENDED:
            return locked
        old_status = locked.status
        locked.status = UserStatus.SUSPENDED
        locked.save(update_fields=["status", "updated_at"])
        paused = strategies_pause_for_user(
            user=locked, reason=f"account suspended: {reason}", actor=actor
        )
        revoked = auth_sessions_revoke_all(
            user=locked, actor=actor, request=request, reason="account suspended"
        )
        audit_log_record(
            action="user_suspend",
            actor=actor,
            resource_type="user",
            resource_id=locked.pk,
            old_values={"status": old_status},
            new_values={
                "status": UserStatus.SUSPENDED,
                "reason": reason,
                "strategies_paused": paused,
                "devices_signed_out": revoked,
            },
            request=request,
        )
    user.refresh_from_db()
    return user


def user_reactivate(*, user: User, actor: User | None, request: HttpRequest | None = None) -> User:
    """Lift a suspension. Strategies stay paused: the customer restarts them deliberately."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.status == UserStatus.ACTIVE:
            return locked
        if locked.status == UserStatus.CLOSED:
            raise Conflict("A closed account cannot be reactivated.", code="account_closed")
        old_status = locked.status
        locked.status = UserStatus.ACTIVE
        locked.save(update_fields=["status", "updated_at"])
        audit_log_record(
            action="user_reactivate",
            actor=actor,
            resource_type="user",
            resource_id=locked.pk,
            old_values={"status": old_status},
            new_values={"status": UserStatus.ACTIVE},
            request=request,
        )
    user.refresh_from_db()
    return user


def user_kyc_level_set(
    *, user: User, level: int, actor: User | None, request: HttpRequest | None = None
) -> User:
    """Change the KYC level (see accounts.policy). Dropping to 0 pauses copying."""
    from copytrade.services import strategies_pause_for_user

    if level not in KycLevel.values:
        raise ValidationFailed(f"KYC level must be one of {KycLevel.values}.", field="kyc_level")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        old_level = locked.kyc_level
        if old_level == level:
            return locked
        locked.kyc_level = level
        locked.save(update_fields=["kyc_level", "updated_at"])
        paused = 0
        if level == KycLevel.UNVERIFIED:
            paused = strategies_pause_for_user(
                user=locked, reason="KYC level lowered to 0", actor=actor
            )
        audit_log_record(
            action="user_kyc_change",
            actor=actor,
            resource_type="user",
            resource_id=locked.pk,
            old_values={"kyc_level": old_level},
            new_values={"kyc_level": level, "strategies_paused": paused},
            request=request,
        )
    user.refresh_from_db()
    return user
