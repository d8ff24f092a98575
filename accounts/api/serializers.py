"""Accounts API serializers: parse input, shape output. No secret is ever a readable field."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema_field, extend_schema_serializer
from rest_framework import serializers

from accounts import policy, selectors, services
from accounts.models import (
    AgentWallet,
    ApiKey,
    ApiKeyScope,
    AuthSession,
    ExchangeConnection,
    User,
)
from config.api import PROBLEM_CONTENT_TYPE

# --------------------------------------------------------------------------- problems


@extend_schema_serializer(component_name="ProblemDetails")
class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as config.api.exception_handler renders every error."""

    # Built in get_fields: a declared attribute named "errors" would shadow Serializer.errors.
    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "type": serializers.CharField(),
            "title": serializers.CharField(),
            "status": serializers.IntegerField(),
            "code": serializers.CharField(help_text="Stable, machine-readable reason."),
            "detail": serializers.CharField(),
            # Usually field → [messages]; nested input (lists, objects) nests the same way.
            "errors": serializers.DictField(
                required=False, help_text="Field errors: field name → messages."
            ),
        }


def problems(*statuses: int) -> dict[Any, Any]:
    """Schema entries for error answers (problem+json) of the given statuses."""
    return {
        (status, PROBLEM_CONTENT_TYPE): OpenApiResponse(ProblemSerializer, description="Problem")
        for status in statuses
    }


AUTHENTICATED_PROBLEMS = (401, 403, 429)

# --------------------------------------------------------------------------- users


class MeSerializer(serializers.ModelSerializer):
    has_password = serializers.SerializerMethodField()
    copy_equity_cap_usd = serializers.SerializerMethodField(
        help_text="Most USD equity the KYC level allows under copy; null means no cap."
    )

    class Meta:
        model = User
        fields = [
            "id",
            "wallet_addr",
            "email",
            "kyc_level",
            "status",
            "is_staff",
            "has_password",
            "copy_equity_cap_usd",
            "created_at",
        ]
        read_only_fields = fields

    def get_has_password(self, obj: User) -> bool:
        return obj.has_usable_password()

    @extend_schema_field(serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True))
    def get_copy_equity_cap_usd(self, obj: User) -> str | None:
        cap = policy.kyc_equity_cap(obj)
        return None if cap is None else str(cap)


class CredentialsSerializer(serializers.Serializer):
    email = serializers.EmailField()
    new_password = serializers.CharField(trim_whitespace=False, max_length=256)
    current_password = serializers.CharField(
        trim_whitespace=False, max_length=256, required=False, allow_blank=True, default=""
    )


class PasswordResetRequestSerializer(serializers.Serializer):
    email = serializers.EmailField()


# --------------------------------------------------------------------------- sign-in


class NonceQuerySerializer(serializers.Serializer):
    address = serializers.CharField(
        required=False,
        max_length=64,
        help_text="Your wallet address: the answer then includes the message to sign.",
    )
    chain_id = serializers.IntegerField(
        required=False, min_value=0, help_text="The chain for the message (default: the first)."
    )


class NonceSerializer(serializers.Serializer):
    """A nonce and everything a client needs to build the EIP-4361 message it will sign."""

    nonce = serializers.CharField()
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    domain = serializers.CharField(help_text="The message's domain must be exactly this.")
    uri = serializers.CharField(help_text="The message's URI must be on this origin.")
    chain_ids = serializers.ListField(child=serializers.IntegerField())
    version = serializers.CharField()
    statement = serializers.CharField()
    message = serializers.CharField(
        required=False, help_text="With ?address=: the exact EIP-4361 text to personal_sign."
    )


class SignInModeField(serializers.ChoiceField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", "jwt")
        kwargs.setdefault(
            "help_text", "session: open a portal session (cookie); jwt: return a token pair."
        )
        super().__init__(choices=list(services.SIGN_IN_MODES), **kwargs)


class SiweSignInSerializer(serializers.Serializer):
    # Not trimmed: the signature covers the exact text, whitespace included.
    message = serializers.CharField(trim_whitespace=False, max_length=8192)
    signature = serializers.CharField(max_length=200)
    mode = SignInModeField()


class PasswordSignInSerializer(serializers.Serializer):
    email = serializers.CharField(max_length=254)
    password = serializers.CharField(trim_whitespace=False, max_length=256)
    mode = SignInModeField()


class SignInResultSerializer(serializers.Serializer):
    user = MeSerializer()
    created = serializers.BooleanField(help_text="True when this sign-in created the account.")
    mode = serializers.ChoiceField(choices=list(services.SIGN_IN_MODES))
    session_id = serializers.UUIDField()
    access = serializers.CharField(required=False, help_text="JWT access token (mode jwt).")
    refresh = serializers.CharField(required=False, help_text="JWT refresh token (mode jwt).")


class TokenRefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=4096)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


# --------------------------------------------------------------------------- sessions


class AuthSessionSerializer(serializers.ModelSerializer):
    current = serializers.BooleanField(help_text="The session making this request.")

    class Meta:
        model = AuthSession
        fields = [
            "id",
            "kind",
            "method",
            "user_agent",
            "ip_address",
            "created_at",
            "last_used_at",
            "expires_at",
            "current",
        ]
        read_only_fields = fields


class RevokedCountSerializer(serializers.Serializer):
    revoked = serializers.IntegerField()


# --------------------------------------------------------------------------- API keys


class ApiKeySerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(source="display_prefix", read_only=True)
    is_active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "scopes",
            "allowed_ips",
            "expires_at",
            "last_used_at",
            "last_used_ip",
            "revoked_at",
            "created_at",
            "is_active",
        ]
        read_only_fields = fields

    def get_is_active(self, obj: ApiKey) -> bool:
        from django.utils import timezone

        return obj.revoked_at is None and (
            obj.expires_at is None or obj.expires_at > timezone.now()
        )


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scopes = serializers.ListField(
        child=serializers.ChoiceField(choices=ApiKeyScope.choices), min_length=1, max_length=3
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    allowed_ips = serializers.ListField(
        child=serializers.CharField(max_length=49), required=False, default=list, max_length=32
    )


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(
        read_only=True,
        help_text="The full key. Shown once: store it now, it cannot be shown again.",
    )

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


# --------------------------------------------------------------------------- agent wallets


class ApprovalSerializer(serializers.Serializer):
    """The approveAgent request the master wallet signs with ``eth_signTypedData_v4``."""

    typed_data = serializers.DictField(
        help_text="EIP-712 payload: domain, types, primaryType, message."
    )
    action = serializers.DictField(help_text="The action to post to Hyperliquid's /exchange.")
    expires_at = serializers.DateTimeField()
    signer = serializers.CharField(help_text="The wallet that must sign: your master wallet.")


def approval_data(approval: services.ApprovalRequest) -> dict[str, Any]:
    return {
        "typed_data": approval.typed_data,
        "action": approval.action,
        "expires_at": approval.expires_at,
        "signer": approval.agent_wallet.user.wallet_addr,
    }


class AgentWalletSerializer(serializers.ModelSerializer):
    has_private_key = serializers.SerializerMethodField(
        help_text="Whether Tandem holds this agent's key (encrypted) and can trade with it."
    )
    approval = serializers.SerializerMethodField(
        help_text="While pending: the payload to sign (null when none is outstanding)."
    )

    class Meta:
        model = AgentWallet
        fields = [
            "id",
            "addr",
            "name",
            "exchange",
            "status",
            "key_source",
            "has_private_key",
            "min_order_usd",
            "max_leverage",
            "permissions",
            "approved_at",
            "created_at",
            "updated_at",
            "approval",
        ]
        read_only_fields = fields

    def get_has_private_key(self, obj: AgentWallet) -> bool:
        return obj.encrypted_private_key is not None

    @extend_schema_field(ApprovalSerializer(allow_null=True))
    def get_approval(self, obj: AgentWallet) -> dict[str, Any] | None:
        approval = selectors.agent_wallet_approval_current(agent_wallet=obj)
        return approval_data(approval) if approval else None


class AgentWalletCreateSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(
        choices=["generate", "register"],
        help_text="generate: Tandem makes the key; register: an agent you already have.",
    )
    address = serializers.CharField(max_length=64, required=False, allow_blank=True)
    private_key = serializers.CharField(
        max_length=80,
        required=False,
        allow_blank=True,
        write_only=True,
        help_text="register only: the agent's key, if Tandem is to trade with it (encrypted).",
    )
    name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    exchange = serializers.ChoiceField(
        choices=list(services.AGENT_WALLET_VENUES), required=False, allow_null=True, default=None
    )
    signature_chain_id = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        min_value=1,
        max_value=2**53 - 1,
        help_text="The chain your wallet is on (EIP-712 domain chainId); default 421614.",
    )


class AgentWalletUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64, required=False, allow_blank=True)
    max_leverage = serializers.IntegerField(required=False, min_value=1, max_value=50)
    min_order_usd = serializers.DecimalField(
        max_digits=18, decimal_places=8, required=False, min_value=0
    )
    permissions = serializers.DictField(child=serializers.BooleanField(), required=False)


class ApprovalRequestSerializer(serializers.Serializer):
    signature_chain_id = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, max_value=2**53 - 1
    )


class ApproveSerializer(serializers.Serializer):
    signature = serializers.CharField(
        max_length=200, help_text="0x-prefixed 65-byte signature from eth_signTypedData_v4."
    )


# --------------------------------------------------------------------------- connections


class ExchangeConnectionSerializer(serializers.ModelSerializer):
    api_key_masked = serializers.CharField(read_only=True)
    has_passphrase = serializers.SerializerMethodField()

    class Meta:
        model = ExchangeConnection
        fields = [
            "id",
            "exchange_name",
            "label",
            "api_key_masked",
            "has_passphrase",
            "is_active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_has_passphrase(self, obj: ExchangeConnection) -> bool:
        return obj.passphrase_encrypted is not None


class ExchangeConnectionCreateSerializer(serializers.Serializer):
    exchange_name = serializers.CharField(max_length=32, help_text="A ccxt venue id, e.g. bybit.")
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=64, required=False, allow_blank=True, default=""
    )
    api_key = serializers.CharField(max_length=512, write_only=True)
    api_secret = serializers.CharField(max_length=512, write_only=True)
    passphrase = serializers.CharField(
        max_length=512, write_only=True, required=False, allow_blank=True, default=""
    )


class ExchangeConnectionUpdateSerializer(serializers.Serializer):
    label = serializers.CharField(  # type: ignore[assignment]
        max_length=64, required=False, allow_blank=True
    )
    is_active = serializers.BooleanField(required=False)
    api_key = serializers.CharField(max_length=512, write_only=True, required=False)
    api_secret = serializers.CharField(max_length=512, write_only=True, required=False)
    passphrase = serializers.CharField(max_length=512, write_only=True, required=False)
