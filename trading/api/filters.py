"""Trading API filters (django-filter). Querysets arrive already scoped to the user."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from trading.models import Fill, Order, OrderSide, OrderStatus, Position


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices)
    symbol = django_filters.CharFilter(field_name="symbol__name")
    venue = django_filters.CharFilter(field_name="exchange")
    side = django_filters.ChoiceFilter(choices=OrderSide.choices)
    strategy = django_filters.UUIDFilter(field_name="strategy_id")
    is_copy_trade = django_filters.BooleanFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Order
        fields = ["status", "symbol", "venue", "side", "strategy", "is_copy_trade"]


class FillFilter(django_filters.FilterSet):
    symbol = django_filters.CharFilter(field_name="symbol__name")
    venue = django_filters.CharFilter(field_name="exchange")
    side = django_filters.ChoiceFilter(choices=OrderSide.choices)
    order = django_filters.UUIDFilter(field_name="order_id")
    filled_after = django_filters.IsoDateTimeFilter(field_name="filled_at", lookup_expr="gte")
    filled_before = django_filters.IsoDateTimeFilter(field_name="filled_at", lookup_expr="lt")

    class Meta:
        model = Fill
        fields = ["symbol", "venue", "side", "order"]


class PositionFilter(django_filters.FilterSet):
    is_open = django_filters.BooleanFilter(
        method="filter_open", label="Open positions only (true) or closed ones (false)"
    )
    symbol = django_filters.CharFilter(field_name="symbol__name")
    venue = django_filters.CharFilter(field_name="exchange")

    class Meta:
        model = Position
        fields = ["symbol", "venue"]

    def filter_open(
        self, queryset: QuerySet[Position], name: str, value: bool | None
    ) -> QuerySet[Position]:
        if value is None:
            return queryset
        return queryset.exclude(quantity=0) if value else queryset.filter(quantity=0)
