"""Billing API filters (django-filter). Querysets arrive already scoped to the user."""

from __future__ import annotations

import django_filters

from billing.models import FeeCategory, FeeLedgerEntry, FeeType, LedgerRowKind


class FeeFilter(django_filters.FilterSet):
    fee_type = django_filters.MultipleChoiceFilter(choices=FeeType.choices)
    fee_category = django_filters.MultipleChoiceFilter(choices=FeeCategory.choices)
    kind = django_filters.ChoiceFilter(choices=LedgerRowKind.choices)
    strategy = django_filters.UUIDFilter(field_name="strategy_id")
    order = django_filters.UUIDFilter(field_name="order_id")
    currency = django_filters.CharFilter(field_name="fee_currency")
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = FeeLedgerEntry
        fields = ["fee_type", "fee_category", "kind", "strategy", "order", "currency"]
