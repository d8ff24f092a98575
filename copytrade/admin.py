"""Copy-trading back office: traders (staff add them), strategies and allocations with filters,
pause/resume/terminate through the services, and the engine's decisions, read-only. Money,
versions and decisions are never edited here: they are the record."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from config.errors import DomainError
from copytrade import services
from copytrade.models import (
    CopyAllocation,
    CopyDecision,
    CopySlot,
    CopyStrategy,
    StrategyVersion,
    Trader,
    TraderEvent,
    TraderPosition,
    TraderSource,
)


class ReadOnlyMixin:
    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class TraderPositionInline(ReadOnlyMixin, admin.TabularInline):
    model = TraderPosition
    extra = 0
    fields = ("coin", "quantity", "entry_price", "leverage", "opened_at_ms", "last_time_ms")
    readonly_fields = fields


@admin.register(Trader)
class TraderAdmin(admin.ModelAdmin):
    list_display = ("alias", "src_uid", "exchange", "source", "is_active", "public_score",
                    "account_value", "created_at")  # fmt: skip
    list_filter = ("exchange", "source", "is_active")
    search_fields = ("alias", "src_uid", "addr", "tags")
    readonly_fields = ("public_score", "account_value", "account_value_at", "created_at",
                       "updated_at")  # fmt: skip
    fields = ("alias", "src_uid", "exchange", "tags", "is_active", "source", "metadata",
              *readonly_fields)  # fmt: skip
    inlines = [TraderPositionInline]
    actions = ["deactivate", "activate"]

    def save_model(self, request: HttpRequest, obj: Trader, form: Any, change: bool) -> None:
        if change:
            services.trader_update(
                trader=obj, alias=obj.alias, tags=obj.tags, is_active=obj.is_active,
                actor=request.user,  # type: ignore[arg-type]
            )  # fmt: skip
            return
        try:
            trader, _ = services.trader_create(
                address=obj.src_uid,
                alias=obj.alias,
                exchange=obj.exchange,
                tags=obj.tags,
                source=obj.source or TraderSource.STAFF,
                actor=request.user,  # type: ignore[arg-type]
            )
        except DomainError as exc:
            messages.error(request, exc.message)
            return
        obj.pk = trader.pk

    @admin.action(description="Stop watching the selected traders (no new copies)")
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Trader]) -> None:
        for trader in queryset:
            services.trader_update(trader=trader, is_active=False, actor=request.user)  # type: ignore[arg-type]
        messages.success(request, f"{queryset.count()} traders deactivated.")

    @admin.action(description="Watch the selected traders again")
    def activate(self, request: HttpRequest, queryset: QuerySet[Trader]) -> None:
        for trader in queryset:
            services.trader_update(trader=trader, is_active=True, actor=request.user)  # type: ignore[arg-type]
        messages.success(request, f"{queryset.count()} traders activated.")


@admin.register(TraderEvent)
class TraderEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("filled_at", "trader", "coin", "side", "size", "price", "start_position",
                    "source", "seen_at", "exported_at")  # fmt: skip
    list_filter = ("source", "exchange", "coin")
    search_fields = ("fill_id", "move_key", "tx_hash", "trader__alias")
    list_select_related = ("trader",)
    date_hierarchy = "filled_at"


class AllocationInline(ReadOnlyMixin, admin.TabularInline):
    model = CopyAllocation
    extra = 0
    fields = ("trader", "weight", "status", "allocated_pnl", "updated_at")
    readonly_fields = fields


class VersionInline(ReadOnlyMixin, admin.TabularInline):
    model = StrategyVersion
    extra = 0
    fields = ("number", "reason", "created_by", "created_at", "config")
    readonly_fields = fields
    ordering = ("-number",)


class SlotInline(ReadOnlyMixin, admin.TabularInline):
    model = CopySlot
    extra = 0
    fields = ("trader", "symbol", "base_quantity", "committed_quantity", "remainder", "updated_at")
    readonly_fields = fields


def _status_action(operation: str, description: str) -> Any:
    def run(modeladmin: Any, request: HttpRequest, queryset: QuerySet[CopyStrategy]) -> None:
        done = 0
        for strategy in queryset:
            try:
                if operation == "pause":
                    services.strategy_pause(
                        strategy=strategy,
                        reason="paused by staff",
                        actor=request.user,  # type: ignore[arg-type]
                    )
                elif operation == "resume":
                    services.strategy_resume(strategy=strategy, actor=request.user)  # type: ignore[arg-type]
                else:
                    services.strategy_terminate(
                        strategy=strategy,
                        reason="terminated by staff",
                        actor=request.user,  # type: ignore[arg-type]
                    )
                done += 1
            except DomainError as exc:
                messages.error(request, f"{strategy.name}: {exc.message}")
        if done:
            messages.success(request, f"{done} strategies: {operation} done.")

    run.__name__ = f"strategies_{operation}"
    return admin.action(description=description)(run)


@admin.register(CopyStrategy)
class CopyStrategyAdmin(admin.ModelAdmin):
    list_display = ("name", "user", "status", "mode", "size_mode", "alignment_rate", "total_pnl",
                    "started_at", "created_at")  # fmt: skip
    list_filter = ("status", "mode", "size_mode", "follow_new_entries_only", "auto_rebalance",
                   "inverse")  # fmt: skip
    search_fields = ("name", "user__email", "user__wallet_addr", "pk")
    list_select_related = ("user",)
    readonly_fields = [f.name for f in CopyStrategy._meta.concrete_fields]
    inlines = [AllocationInline, SlotInline, VersionInline]
    actions = [
        _status_action("pause", "Pause copying"),
        _status_action("resume", "Resume copying (activation checks apply)"),
        _status_action("terminate", "Terminate (final)"),
    ]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # customers create strategies; staff act on them

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(CopyAllocation)
class CopyAllocationAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ("strategy", "trader", "weight", "status", "allocated_pnl", "updated_at")
    list_filter = ("status", "strategy__status")
    search_fields = ("strategy__name", "trader__alias", "trader__src_uid")
    list_select_related = ("strategy", "trader")


@admin.register(CopyDecision)
class CopyDecisionAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """The engine's decisions, filterable per strategy (``?strategy__id__exact=``)."""

    list_display = ("created_at", "strategy", "trader", "kind", "outcome", "reason_code", "coin",
                    "side", "quantity", "version_number")  # fmt: skip
    list_filter = ("outcome", "kind", "reason_code", "coin")
    search_fields = ("strategy__name", "strategy__id", "source_event_id", "reason")
    list_select_related = ("strategy", "trader")
    date_hierarchy = "created_at"
    raw_id_fields = ("strategy", "order")
