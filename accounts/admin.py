"""Staff screens for accounts. Status and KYC change only through actions that call the
services (so strategies pause and sessions end); secrets and hashes are never displayed."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework_simplejwt.token_blacklist import admin as simplejwt_admin
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts import services
from accounts.models import (
    AgentWallet,
    ApiKey,
    AuditLog,
    AuthSession,
    ExchangeConnection,
    KycLevel,
    User,
)
from config.errors import DomainError


def _staff(request: HttpRequest) -> User | None:
    return request.user if isinstance(request.user, User) else None


class UserCreationForm(forms.ModelForm):
    """Staff create staff (email + password) or a customer record (wallet)."""

    password = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput,
        help_text="For staff. Leave empty for a customer who signs in with the wallet.",
    )

    class Meta:
        model = User
        fields = ["email", "wallet_addr", "is_staff", "is_superuser"]

    def save(self, commit: bool = True) -> User:
        user: User = super().save(commit=False)
        if self.cleaned_data.get("password"):
            user.set_password(self.cleaned_data["password"])
        else:
            user.set_unusable_password()
        if commit:
            user.save()
        return user


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "wallet_addr",
        "email",
        "kyc_level",
        "status",
        "is_staff",
        "created_at",
        "last_login",
    ]
    list_filter = ["status", "kyc_level", "is_staff", "is_superuser", "created_at"]
    search_fields = ["email", "wallet_addr", "id"]
    ordering = ["-created_at"]
    readonly_fields = ["id", "status", "kyc_level", "created_at", "updated_at", "last_login"]
    fields = [
        "id",
        "wallet_addr",
        "email",
        "status",
        "kyc_level",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
        "preferences",
        "last_login",
        "created_at",
        "updated_at",
    ]
    filter_horizontal = ["groups", "user_permissions"]
    actions = ["suspend", "reactivate", "set_kyc_0", "set_kyc_1", "set_kyc_2"]
    add_form = UserCreationForm

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = ["email", "wallet_addr", "is_staff", "is_superuser", "password"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ["email", "wallet_addr", "is_staff", "is_superuser", "password"]
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [] if obj is None else self.readonly_fields

    def _each(self, request: HttpRequest, queryset: QuerySet[User], done: str, call: Any) -> None:
        count = 0
        for user in queryset:
            try:
                call(user)
                count += 1
            except DomainError as exc:
                self.message_user(request, f"{user}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{count} account(s) {done}.", messages.SUCCESS)

    @admin.action(description="Suspend (pause strategies, sign out everywhere)")
    def suspend(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(
            request,
            queryset,
            "suspended",
            lambda user: services.user_suspend(
                user=user, actor=_staff(request), reason="suspended by staff", request=request
            ),
        )

    @admin.action(description="Reactivate")
    def reactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._each(
            request,
            queryset,
            "reactivated",
            lambda user: services.user_reactivate(
                user=user, actor=_staff(request), request=request
            ),
        )

    def _kyc(self, request: HttpRequest, queryset: QuerySet[User], level: int) -> None:
        self._each(
            request,
            queryset,
            f"set to KYC level {level}",
            lambda user: services.user_kyc_level_set(
                user=user, level=level, actor=_staff(request), request=request
            ),
        )

    @admin.action(description="Set KYC level 0 (unverified)")
    def set_kyc_0(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._kyc(request, queryset, KycLevel.UNVERIFIED)

    @admin.action(description="Set KYC level 1 (basic)")
    def set_kyc_1(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._kyc(request, queryset, KycLevel.BASIC)

    @admin.action(description="Set KYC level 2 (full)")
    def set_kyc_2(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        self._kyc(request, queryset, KycLevel.FULL)


@admin.register(AgentWallet)
class AgentWalletAdmin(admin.ModelAdmin):
    list_display = ["addr", "user", "exchange", "status", "key_source", "approved_at", "created_at"]
    list_filter = ["status", "exchange", "key_source", "created_at"]
    search_fields = ["addr", "name", "user__wallet_addr", "user__email"]
    list_select_related = ["user"]
    # The encrypted key is not a field here at all; the approval signature is public data.
    fields = (
        "id",
        "user",
        "addr",
        "name",
        "exchange",
        "status",
        "key_source",
        "has_stored_key",
        "min_order_usd",
        "max_leverage",
        "permissions",
        "approval_nonce",
        "approval_signature",
        "approved_at",
        "deleted_at",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    @admin.display(boolean=True, description="Key held (encrypted)")
    def has_stored_key(self, obj: AgentWallet) -> bool:
        return obj.encrypted_private_key is not None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are made by the service, never typed in by staff

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # rows are kept forever so an address is never reused

    @admin.action(description="Revoke (soft-delete, destroys the stored key)")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AgentWallet]) -> None:
        count = 0
        for wallet in queryset.select_related("user"):
            try:
                services.agent_wallet_revoke(
                    user=wallet.user,
                    agent_wallet_id=wallet.pk,
                    actor=_staff(request),
                    request=request,
                )
                count += 1
            except DomainError as exc:
                self.message_user(request, f"{wallet}: {exc.message}", messages.ERROR)
        self.message_user(request, f"{count} agent wallet(s) revoked.", messages.SUCCESS)


@admin.register(ExchangeConnection)
class ExchangeConnectionAdmin(admin.ModelAdmin):
    list_display = ["exchange_name", "label", "user", "api_key_masked", "is_active", "created_at"]
    list_filter = ["exchange_name", "is_active"]
    search_fields = ["label", "exchange_name", "user__wallet_addr", "user__email"]
    list_select_related = ["user"]
    fields = (
        "id",
        "user",
        "exchange_name",
        "label",
        "api_key_masked",
        "has_passphrase",
        "is_active",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(boolean=True)
    def has_passphrase(self, obj: ExchangeConnection) -> bool:
        return obj.passphrase_encrypted is not None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # credentials are the customer's to enter, never staff's


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "display_prefix",
        "user",
        "scopes",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["revoked_at", "expires_at", "created_at"]
    search_fields = ["name", "prefix", "user__wallet_addr", "user__email"]
    list_select_related = ["user"]
    # key_hash is deliberately absent.
    fields = (
        "id",
        "user",
        "name",
        "display_prefix",
        "scopes",
        "allowed_ips",
        "expires_at",
        "last_used_at",
        "last_used_ip",
        "revoked_at",
        "created_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Revoke")
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for api_key in queryset.select_related("user"):
            services.api_key_revoke(
                user=api_key.user, api_key_id=api_key.pk, actor=_staff(request), request=request
            )
        self.message_user(request, "Revoked.", messages.SUCCESS)


@admin.register(AuthSession)
class AuthSessionAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "method", "ip_address", "last_used_at", "revoked_at"]
    list_filter = ["kind", "method", "revoked_at"]
    search_fields = ["user__wallet_addr", "user__email", "ip_address"]
    list_select_related = ["user"]
    # The session key and refresh jti would let staff hijack or identify tokens: not shown.
    fields = (
        "id",
        "user",
        "kind",
        "method",
        "user_agent",
        "ip_address",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ["revoke"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Sign out")
    def revoke(self, request: HttpRequest, queryset: QuerySet[AuthSession]) -> None:
        for row in queryset.filter(revoked_at__isnull=True).select_related("user"):
            services.auth_session_revoke(
                user=row.user, auth_session_id=row.pk, actor=_staff(request), request=request
            )
        self.message_user(request, "Signed out.", messages.SUCCESS)


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    """Read-only: the table refuses UPDATE and DELETE anyway (migration 0002)."""

    list_display = [
        "created_at",
        "action",
        "status",
        "actor",
        "actor_type",
        "resource_type",
        "resource_id",
        "ip_address",
    ]
    list_filter = ["status", "actor_type", "action", "resource_type", "created_at"]
    search_fields = ["action", "resource_id", "actor__email", "actor__wallet_addr", "error_code"]
    date_hierarchy = "created_at"
    list_select_related = ["actor"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return [field.name for field in AuditLog._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --------------------------------------------------------------------------- refresh tokens
# simplejwt's own admin shows every field of an outstanding token, the token itself included:
# a customer's live refresh token, which would let anyone with admin access mint access tokens
# as that customer. Registered again here without it (the jti identifies the token).


class OutstandingTokenAdmin(simplejwt_admin.OutstandingTokenAdmin):
    exclude = ("token",)

    def get_readonly_fields(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [f.name for f in OutstandingToken._meta.fields if f.name != "token"]


if admin.site.is_registered(OutstandingToken):
    admin.site.unregister(OutstandingToken)
admin.site.register(OutstandingToken, OutstandingTokenAdmin)
