"""Trading back office: orders, fills, positions, symbols, risk. Money is read-only here; the
only write staff make on an order is a cancel, and it goes through the service."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from config.errors import DomainError
from trading import services
from trading.models import (
    Fill,
    Order,
    OrderEvent,
    OrderOutbox,
    Position,
    RiskEvent,
    RiskLimit,
    Symbol,
)

ORDER_MONEY = (
    "quantity",
    "price",
    "trigger_price",
    "submitted_price",
    "filled_quantity",
    "average_price",
    "fees",
    "leverage",
)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "kind", "from_status", "to_status", "details")
    readonly_fields = fields
    ordering = ("created_at", "id")


class OrderOutboxInline(ReadOnlyInline):
    model = OrderOutbox
    fields = ("kind", "attempts", "available_at", "claimed_until", "done_at", "last_error")
    readonly_fields = fields


class FillInline(ReadOnlyInline):
    model = Fill
    fk_name = "order"
    fields = (
        "filled_at",
        "side",
        "size",
        "price",
        "fee",
        "direction",
        "realized_pnl",
        "venue_fill_id",
    )
    readonly_fields = fields


@admin.action(description="Cancel the selected orders")
def cancel_orders(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Order]
) -> None:
    done = refused = 0
    for order in queryset:
        try:
            services.order_cancel(
                order=order,
                actor=request.user,  # type: ignore[arg-type]
                request=request,
                reason="staff",
            )
            done += 1
        except DomainError as exc:
            refused += 1
            modeladmin.message_user(request, f"{order.pk}: {exc.message}", messages.WARNING)
    if done:
        modeladmin.message_user(
            request, f"Cancellation requested for {done} order(s).", messages.SUCCESS
        )


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "user",
        "symbol",
        "side",
        "order_type",
        "quantity",
        "filled_quantity",
        "average_price",
        "status",
        "exchange",
        "is_copy_trade",
    )
    list_filter = (
        "status",
        "exchange",
        "side",
        "order_type",
        "is_copy_trade",
        "time_in_force",
        "created_at",
    )
    search_fields = (
        "=id",
        "=cloid",
        "=exchange_order_id",
        "user__wallet_addr",
        "user__email",
        "symbol__name",
        "source_event_id",
        "idempotency_key",
    )
    list_select_related = ("user", "symbol")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    actions = [cancel_orders]
    inlines = [OrderEventInline, OrderOutboxInline, FillInline]
    readonly_fields = (
        "id",
        "cloid",
        "user",
        "agent_wallet",
        "strategy",
        "symbol",
        "exchange",
        "side",
        "order_type",
        "time_in_force",
        "reduce_only",
        *ORDER_MONEY,
        "status",
        "venue_status",
        "venue_status_at",
        "exchange_order_id",
        "error_code",
        "error_message",
        "idempotency_key",
        "request_fingerprint",
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
        "metadata",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are placed through the services (API, copy engine)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Fill)
class FillAdmin(admin.ModelAdmin):
    list_display = (
        "filled_at",
        "user",
        "symbol",
        "side",
        "size",
        "price",
        "fee",
        "direction",
        "realized_pnl",
        "exchange",
    )
    list_filter = ("exchange", "side", "direction", "is_taker", "is_liquidation", "filled_at")
    search_fields = (
        "=venue_fill_id",
        "=venue_order_id",
        "=cloid",
        "=tx_hash",
        "=order__id",
        "user__wallet_addr",
        "symbol__name",
    )
    list_select_related = ("user", "symbol")
    date_hierarchy = "filled_at"
    readonly_fields = [f.name for f in Fill._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Position)
class PositionAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "symbol",
        "side",
        "quantity",
        "entry_price",
        "mark_price",
        "unrealized_pnl",
        "realized_pnl",
        "fees_paid",
        "liquidation_price",
        "last_updated_at",
    )
    list_filter = ("exchange", "side", "margin_mode")
    search_fields = ("user__wallet_addr", "user__email", "symbol__name", "=id")
    list_select_related = ("user", "symbol")
    readonly_fields = [f.name for f in Position._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Symbol)
class SymbolAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "venue",
        "status",
        "sz_decimals",
        "price_sig_figs",
        "price_max_decimals",
        "tick_size",
        "min_size",
        "min_notional",
        "max_leverage",
    )
    list_filter = ("venue", "status", "only_isolated")
    search_fields = ("name", "venue_symbol", "base_currency")
    readonly_fields = ("created_at", "updated_at")


@admin.register(RiskLimit)
class RiskLimitAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "strategy",
        "max_position_value",
        "max_leverage",
        "max_daily_loss",
        "max_drawdown",
        "max_orders_per_hour",
        "updated_at",
    )
    search_fields = ("user__wallet_addr", "user__email")
    raw_id_fields = ("user", "strategy")
    readonly_fields = ("pnl_peak", "created_at", "updated_at")


@admin.register(RiskEvent)
class RiskEventAdmin(admin.ModelAdmin):
    list_display = (
        "triggered_at",
        "event_type",
        "severity",
        "user",
        "symbol",
        "action_taken",
        "acknowledged",
    )
    list_filter = ("event_type", "severity", "acknowledged", "exchange", "triggered_at")
    search_fields = ("description", "user__wallet_addr", "symbol", "=order__id")
    date_hierarchy = "triggered_at"
    readonly_fields = [
        f.name for f in RiskEvent._meta.fields if f.name not in ("acknowledged", "resolved_at")
    ]
