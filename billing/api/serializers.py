"""Billing API serializers: they parse and present; every rule lives in billing.services."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers
from rest_framework.reverse import reverse

from billing.models import (
    BillingPeriod,
    CalculationBase,
    FeeCategory,
    FeeLedgerEntry,
    FeeType,
    LedgerRowKind,
    PerformancePeriodKind,
    Plan,
    Statement,
    Subscription,
    SubscriptionStatus,
)


def _money(*, allow_null: bool = False, source: str | None = None) -> serializers.DecimalField:
    """A read-only amount, as a decimal string (never a float)."""
    kwargs: dict[str, Any] = {"source": source} if source else {}
    return serializers.DecimalField(
        max_digits=20,
        decimal_places=8,
        coerce_to_string=True,
        read_only=True,
        allow_null=allow_null,
        **kwargs,
    )


ProblemSerializer = inline_serializer(
    name="BillingProblem",
    fields={
        "type": serializers.CharField(),
        "title": serializers.CharField(),
        "status": serializers.IntegerField(),
        "code": serializers.CharField(),
        "detail": serializers.CharField(),
        "errors": serializers.DictField(
            child=serializers.ListField(child=serializers.CharField()), required=False
        ),
    },
)


class FeeSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=LedgerRowKind.choices, read_only=True)
    fee_type = serializers.ChoiceField(choices=FeeType.choices, read_only=True)
    fee_category = serializers.ChoiceField(choices=FeeCategory.choices, read_only=True)
    calculation_base = serializers.ChoiceField(
        choices=CalculationBase.choices, read_only=True, allow_null=True
    )
    fee_amount = _money()
    signed_amount = _money()
    notional_amount = _money(allow_null=True)
    metadata = serializers.JSONField(read_only=True)

    class Meta:
        model = FeeLedgerEntry
        fields = [
            "id",
            "kind",
            "fee_type",
            "fee_category",
            "fee_bps",
            "fee_amount",
            "signed_amount",
            "fee_currency",
            "notional_amount",
            "calculation_base",
            "transaction_hash",
            "exchange_tx_id",
            "period_start",
            "period_end",
            "created_at",
            "order",
            "strategy",
            "fill",
            "subscription",
            "reversal_of",
            "replaces",
            "metadata",
        ]
        read_only_fields = fields


class StatementSerializer(serializers.ModelSerializer):
    month = serializers.SerializerMethodField()
    opening_balance = _money()
    charges = _money()
    reversals = _money()
    collected_by_venue = _money()
    payments = _money()
    closing_balance = _money()
    csv_url = serializers.SerializerMethodField()
    pdf_url = serializers.SerializerMethodField()

    class Meta:
        model = Statement
        fields = [
            "id",
            "month",
            "currency",
            "opening_balance",
            "charges",
            "reversals",
            "collected_by_venue",
            "payments",
            "closing_balance",
            "fee_count",
            "closed_at",
            "csv_url",
            "pdf_url",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_month(self, obj: Statement) -> str:
        return f"{obj.month:%Y-%m}"

    def _url(self, obj: Statement, name: str) -> str:
        return reverse(
            f"v1:billing-api:statement-{name}",
            kwargs={"pk": obj.pk},
            request=self.context.get("request"),
        )

    @extend_schema_field(OpenApiTypes.URI)
    def get_csv_url(self, obj: Statement) -> str:
        return self._url(obj, "csv")

    @extend_schema_field(OpenApiTypes.URI)
    def get_pdf_url(self, obj: Statement) -> str:
        return self._url(obj, "pdf")


class PlanLimitsSerializer(serializers.Serializer):
    strategies = serializers.IntegerField(allow_null=True, source="max_strategies")
    traders_per_portfolio = serializers.IntegerField(
        allow_null=True, source="max_traders_per_portfolio"
    )
    api_keys = serializers.IntegerField(allow_null=True, source="max_api_keys")
    api_rate_per_minute = serializers.IntegerField(allow_null=True)


class PlanFeesSerializer(serializers.Serializer):
    builder_fee_bps = serializers.IntegerField()
    copy_fee_bps = serializers.IntegerField()
    management_fee_bps = serializers.IntegerField(help_text="Annual, on strategy equity.")
    performance_fee_bps = serializers.IntegerField(help_text="Of profit above the high-water mark.")
    performance_period = serializers.ChoiceField(choices=PerformancePeriodKind.choices)
    trader_share_bps = serializers.IntegerField(
        help_text="The part of the performance fee passed on to the followed traders."
    )


class PlanSerializer(serializers.ModelSerializer):
    price = _money()
    billing_period = serializers.ChoiceField(choices=BillingPeriod.choices, read_only=True)
    limits = serializers.SerializerMethodField()
    fees = serializers.SerializerMethodField()

    class Meta:
        model = Plan
        fields = [
            "code",
            "name",
            "description",
            "is_default",
            "price",
            "currency",
            "billing_period",
            "grace_days",
            "limits",
            "fees",
        ]
        read_only_fields = fields

    @extend_schema_field(PlanLimitsSerializer)
    def get_limits(self, obj: Plan) -> dict[str, Any]:
        return dict(PlanLimitsSerializer(obj).data)

    @extend_schema_field(PlanFeesSerializer)
    def get_fees(self, obj: Plan) -> dict[str, Any]:
        return dict(PlanFeesSerializer(obj).data)


class SubscriptionSerializer(serializers.ModelSerializer):
    plan = PlanSerializer(read_only=True)
    status = serializers.ChoiceField(choices=SubscriptionStatus.choices, read_only=True)
    price = _money()
    next_plan: serializers.SlugRelatedField[Plan] = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True
    )

    class Meta:
        model = Subscription
        fields = [
            "id",
            "plan",
            "status",
            "period_start",
            "period_end",
            "price",
            "currency",
            "due_at",
            "paid_at",
            "grace_until",
            "cancelled_at",
            "next_plan",
            "auto_renew",
        ]
        read_only_fields = fields


class UsageSerializer(serializers.Serializer):
    strategies = serializers.IntegerField()
    api_keys = serializers.IntegerField()


class LimitsSerializer(serializers.Serializer):
    strategies = serializers.IntegerField(allow_null=True)
    traders_per_portfolio = serializers.IntegerField(allow_null=True)
    api_keys = serializers.IntegerField(allow_null=True)
    api_rate_per_minute = serializers.IntegerField(allow_null=True)


class SubscriptionStateSerializer(serializers.Serializer):
    """The plan a user is on now, the subscription period behind it (none on the default
    plan), the limits it grants and what is used of them."""

    plan = PlanSerializer(allow_null=True)
    subscription = SubscriptionSerializer(allow_null=True)
    limits = LimitsSerializer()
    usage = UsageSerializer()


class SubscribeSerializer(serializers.Serializer):
    plan = serializers.CharField(max_length=32, help_text="The code of a plan on offer.")


class CurrencyTotalsSerializer(serializers.Serializer):
    currency = serializers.CharField()
    today = _money()
    month_to_date = _money()
    count = serializers.IntegerField()


class BalanceSerializer(serializers.Serializer):
    currency = serializers.CharField()
    balance = _money(
        # positive: owed to Tandem; negative: a credit
    )


class FeeSummarySerializer(serializers.Serializer):
    as_of = serializers.DateTimeField()
    currencies = CurrencyTotalsSerializer(many=True)
    balances = BalanceSerializer(many=True)
