"""Trading API serializers: they parse and present; every rule lives in trading.services."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from trading.models import (
    Fill,
    MarginMode,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    PositionSide,
    TimeInForce,
)


def _money(*, allow_null: bool = False) -> serializers.DecimalField:
    """A read-only amount, as a decimal string (never a float)."""
    return serializers.DecimalField(
        max_digits=18,
        decimal_places=8,
        coerce_to_string=True,
        read_only=True,
        allow_null=allow_null,
    )


# RFC 9457 problem details, as config.api renders every error (for the schema).
ProblemSerializer = inline_serializer(
    name="Problem",
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


class OrderSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="symbol.name", read_only=True)
    venue = serializers.CharField(source="exchange", read_only=True)
    status = serializers.ChoiceField(choices=OrderStatus.choices, read_only=True)
    side = serializers.ChoiceField(choices=OrderSide.choices, read_only=True)
    order_type = serializers.ChoiceField(choices=OrderType.choices, read_only=True)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, read_only=True)
    quantity = _money()
    price = _money(allow_null=True)
    trigger_price = _money(allow_null=True)
    submitted_price = _money(allow_null=True)
    filled_quantity = _money()
    average_price = _money(allow_null=True)
    fees = _money()
    leverage = serializers.DecimalField(
        max_digits=5, decimal_places=2, read_only=True, allow_null=True
    )

    class Meta:
        model = Order
        fields = [
            "id",
            "cloid",
            "symbol",
            "venue",
            "agent_wallet",
            "strategy",
            "side",
            "order_type",
            "time_in_force",
            "reduce_only",
            "leverage",
            "quantity",
            "price",
            "trigger_price",
            "submitted_price",
            "filled_quantity",
            "average_price",
            "fees",
            "status",
            "venue_status",
            "exchange_order_id",
            "error_code",
            "error_message",
            "is_copy_trade",
            "source_trader",
            "source_event_id",
            "created_at",
            "updated_at",
            "submitted_at",
            "first_fill_at",
            "filled_at",
            "cancelled_at",
            "failed_at",
            "cancel_requested_at",
        ]
        read_only_fields = fields


class OrderCreateSerializer(serializers.Serializer):
    """What a customer may send. Numbers are checked against the venue's rules by the
    service (400 with the field named), not here."""

    symbol = serializers.CharField(max_length=32, help_text="The venue's name, e.g. BTC.")
    side = serializers.ChoiceField(choices=OrderSide.choices)
    quantity = serializers.DecimalField(
        max_digits=18, decimal_places=8, help_text="In base units (BTC for BTC)."
    )
    order_type = serializers.ChoiceField(choices=OrderType.choices, default=OrderType.MARKET)
    price = serializers.DecimalField(
        max_digits=18,
        decimal_places=8,
        required=False,
        allow_null=True,
        help_text="Limit price (limit orders).",
    )
    trigger_price = serializers.DecimalField(
        max_digits=18, decimal_places=8, required=False, allow_null=True
    )
    time_in_force = serializers.ChoiceField(
        choices=TimeInForce.choices, required=False, allow_null=True
    )
    reduce_only = serializers.BooleanField(default=False)
    leverage = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=200)
    agent_wallet = serializers.UUIDField(
        required=False, allow_null=True, help_text="Default: the newest active agent wallet."
    )
    venue = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)


class FillSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="symbol.name", read_only=True)
    venue = serializers.CharField(source="exchange", read_only=True)
    side = serializers.ChoiceField(choices=OrderSide.choices, read_only=True)
    price = _money()
    size = _money()
    fee = _money()
    realized_pnl = _money()
    start_position = _money(allow_null=True)

    class Meta:
        model = Fill
        fields = [
            "id",
            "order",
            "symbol",
            "venue",
            "side",
            "price",
            "size",
            "fee",
            "fee_token",
            "direction",
            "start_position",
            "realized_pnl",
            "is_taker",
            "is_liquidation",
            "venue_fill_id",
            "venue_order_id",
            "cloid",
            "tx_hash",
            "filled_at",
            "created_at",
        ]
        read_only_fields = fields


class PositionSerializer(serializers.ModelSerializer):
    symbol = serializers.CharField(source="symbol.name", read_only=True)
    venue = serializers.CharField(source="exchange", read_only=True)
    side = serializers.ChoiceField(choices=PositionSide.choices, read_only=True)
    margin_mode = serializers.ChoiceField(choices=MarginMode.choices, read_only=True)
    quantity = _money()
    entry_price = _money()
    mark_price = _money(allow_null=True)
    unrealized_pnl = _money()
    realized_pnl = _money()
    fees_paid = _money()
    net_realized_pnl = serializers.DecimalField(
        max_digits=19, decimal_places=8, coerce_to_string=True, read_only=True
    )
    margin_used = _money()
    liquidation_price = _money(allow_null=True)
    leverage = serializers.DecimalField(max_digits=5, decimal_places=2, read_only=True)
    is_open = serializers.BooleanField(read_only=True)

    class Meta:
        model = Position
        fields = [
            "id",
            "symbol",
            "venue",
            "agent_wallet",
            "strategy",
            "side",
            "quantity",
            "entry_price",
            "mark_price",
            "unrealized_pnl",
            "realized_pnl",
            "fees_paid",
            "net_realized_pnl",
            "leverage",
            "margin_mode",
            "margin_used",
            "liquidation_price",
            "is_open",
            "opened_at",
            "closed_at",
            "created_at",
            "last_updated_at",
        ]
        read_only_fields = fields
