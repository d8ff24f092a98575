"""Billing back office: plans, subscriptions, the ledger (read-only; a wrong fee is reversed
through the service), the journal, statements, and the revenue report.

Every write goes through billing.services: saving a plan (``plan_save``), granting a period
(``subscription_grant``), cancelling or recording a payment, overriding a strategy's fees
(``strategy_fee_schedule_set``) and reversing a fee (``fee_reverse``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone

from billing import selectors, services
from billing.models import (
    FEE_FIELDS,
    CapitalFlow,
    FeeLedgerEntry,
    JournalEntry,
    JournalTransaction,
    LedgerAccount,
    PerformancePeriod,
    Plan,
    Statement,
    StrategyEquityMark,
    StrategyFeeSchedule,
    Subscription,
)
from config.errors import DomainError


class ReadOnlyAdmin(admin.ModelAdmin):
    """Ledger-like records: visible, never added, changed or deleted here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _errors(
    modeladmin: admin.ModelAdmin, request: HttpRequest, label: str, exc: DomainError
) -> None:
    modeladmin.message_user(request, f"{label}: {exc.message}", messages.ERROR)


class FeeScheduleFormMixin(admin.ModelAdmin):
    """The fee fields are checked by the service's rules (caps, the venue's builder maximum)
    in the form, so staff see the reason next to the field instead of an error page."""

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)

        class ValidatedForm(form):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                data: dict[str, Any] = super().clean()
                try:
                    services.fee_schedule_validate(
                        {f: data.get(f) for f in FEE_FIELDS if f in data}
                    )
                except DomainError as exc:
                    for field, problems in exc.fields.items():
                        for problem in problems:
                            self.add_error(field if field in self.fields else None, problem)
                return data

        return ValidatedForm


# --------------------------------------------------------------------------- plans


@admin.register(Plan)
class PlanAdmin(FeeScheduleFormMixin):
    list_display = (
        "name",
        "code",
        "price",
        "currency",
        "billing_period",
        "is_active",
        "is_default",
        "max_strategies",
        "max_traders_per_portfolio",
        "max_api_keys",
        "builder_fee_bps",
        "copy_fee_bps",
        "management_fee_bps",
        "performance_fee_bps",
    )
    list_filter = ("is_active", "is_default", "billing_period")
    search_fields = ("code", "name")
    fieldsets = (
        (
            None,
            {"fields": ("code", "name", "description", "is_active", "is_default", "sort_order")},
        ),
        ("Price", {"fields": ("price", "currency", "billing_period", "grace_days")}),
        (
            "Limits (empty: unlimited)",
            {
                "fields": (
                    "max_strategies",
                    "max_traders_per_portfolio",
                    "max_api_keys",
                    "api_rate_per_minute",
                )
            },
        ),
        ("Fee schedule", {"fields": FEE_FIELDS}),
    )

    def save_model(self, request: HttpRequest, obj: Plan, form: Any, change: bool) -> None:
        services.plan_save(plan=obj, actor=request.user, request=request)  # type: ignore[arg-type]

    def has_delete_permission(self, request: HttpRequest, obj: Plan | None = None) -> bool:
        return False  # retire a plan (is_active off); subscriptions and fees point at it


@admin.register(StrategyFeeSchedule)
class StrategyFeeScheduleAdmin(FeeScheduleFormMixin):
    list_display = ("strategy", *FEE_FIELDS, "updated_by", "updated_at")
    search_fields = ("=strategy__id", "strategy__name", "strategy__user__wallet_addr")
    raw_id_fields = ("strategy",)
    readonly_fields = ("updated_by", "created_at", "updated_at")
    list_select_related = ("strategy", "updated_by")

    def save_model(
        self, request: HttpRequest, obj: StrategyFeeSchedule, form: Any, change: bool
    ) -> None:
        schedule = services.strategy_fee_schedule_set(
            strategy=obj.strategy,
            values={field: getattr(obj, field) for field in FEE_FIELDS},
            actor=request.user,  # type: ignore[arg-type]
            request=request,
        )
        obj.pk = schedule.pk


# --------------------------------------------------------------------------- subscriptions


class SubscriptionGrantForm(forms.ModelForm):
    class Meta:
        model = Subscription
        fields = ("user", "plan", "period_start", "period_end")


class PaymentForm(forms.Form):
    reference = forms.CharField(max_length=128, help_text="The payment provider's id.")


def _intermediate(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet[Any],
    form: forms.Form,
    title: str,
    action: str,
) -> TemplateResponse:
    return TemplateResponse(
        request,
        "admin/billing/action_form.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "objects": queryset,
            "form": form,
            "action": action,
            "opts": modeladmin.model._meta,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        },
    )


@admin.action(description="Cancel at the end of the period")
def cancel_subscriptions(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Subscription]
) -> None:
    done = 0
    for subscription in queryset.select_related("user"):
        try:
            services.subscription_cancel(
                user=subscription.user,
                actor=request.user,  # type: ignore[arg-type]
                request=request,
            )
            done += 1
        except DomainError as exc:
            _errors(modeladmin, request, str(subscription.pk), exc)
    if done:
        modeladmin.message_user(request, f"{done} subscription(s) cancelled.", messages.SUCCESS)


@admin.action(description="Record the payment of the period")
def record_payment(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Subscription]
) -> HttpResponse | None:
    form = PaymentForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done = 0
        for subscription in queryset:
            reference = form.cleaned_data["reference"]
            if queryset.count() > 1:
                reference = f"{reference}:{subscription.pk}"
            try:
                services.subscription_payment_record(
                    subscription_id=subscription.pk,
                    reference=reference,
                    actor=request.user,  # type: ignore[arg-type]
                    request=request,
                )
                done += 1
            except DomainError as exc:
                _errors(modeladmin, request, str(subscription.pk), exc)
        if done:
            modeladmin.message_user(request, f"{done} payment(s) recorded.", messages.SUCCESS)
        return None
    return _intermediate(modeladmin, request, queryset, form, "Record payment", "record_payment")


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "plan",
        "status",
        "period_start",
        "period_end",
        "price",
        "paid_at",
        "grace_until",
        "next_plan",
        "ended_reason",
    )
    list_filter = ("status", "plan", "auto_renew", "ended_reason")
    search_fields = ("=id", "user__wallet_addr", "user__email", "payment_reference")
    list_select_related = ("user", "plan", "next_plan")
    date_hierarchy = "period_start"
    raw_id_fields = ("user",)
    actions = [cancel_subscriptions, record_payment]
    readonly_fields = (
        "id",
        "user",
        "plan",
        "status",
        "period_start",
        "period_end",
        "price",
        "currency",
        "due_at",
        "paid_at",
        "payment_reference",
        "grace_until",
        "cancelled_at",
        "ended_reason",
        "next_plan",
        "auto_renew",
        "renewed_from",
        "created_at",
        "updated_at",
    )

    def get_form(
        self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any
    ) -> Any:
        if obj is None:
            kwargs["form"] = SubscriptionGrantForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ("user", "plan", "period_start", "period_end")
        return self.readonly_fields

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        granted = services.subscription_grant(
            user=obj.user,
            plan=obj.plan,
            period_start=obj.period_start,
            period_end=obj.period_end,
            actor=request.user,  # type: ignore[arg-type]
            request=request,
        )
        obj.pk = granted.pk
        obj._state.adding = False

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        try:
            return super().add_view(request, form_url, extra_context)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # viewing is read-only; changes are actions through the services


# --------------------------------------------------------------------------- ledger


class ReverseForm(forms.Form):
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 3}))
    replacement_amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.000001"),
        decimal_places=8,
        help_text="Optional: charge this amount instead (a corrected charge replaces the fee).",
    )


@admin.action(description="Reverse the selected fees")
def reverse_fees(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[FeeLedgerEntry]
) -> HttpResponse | None:
    form = ReverseForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        done = 0
        for fee in queryset:
            try:
                services.fee_reverse(
                    fee_id=fee.pk,
                    actor=request.user,  # type: ignore[arg-type]
                    reason=form.cleaned_data["reason"],
                    replacement_amount=form.cleaned_data.get("replacement_amount"),
                    request=request,
                )
                done += 1
            except DomainError as exc:
                _errors(modeladmin, request, str(fee.pk), exc)
        if done:
            modeladmin.message_user(request, f"{done} fee(s) reversed.", messages.SUCCESS)
        return None
    return _intermediate(modeladmin, request, queryset, form, "Reverse fees", "reverse_fees")


@admin.register(FeeLedgerEntry)
class FeeLedgerEntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "kind",
        "fee_type",
        "fee_category",
        "fee_bps",
        "fee_amount",
        "fee_currency",
        "notional_amount",
        "strategy",
        "plan",
    )
    list_filter = ("kind", "fee_type", "fee_category", "fee_currency", "plan", "created_at")
    search_fields = (
        "=id",
        "user__wallet_addr",
        "user__email",
        "=order__id",
        "=strategy__id",
        "exchange_tx_id",
        "transaction_hash",
    )
    list_select_related = ("user", "strategy", "plan")
    date_hierarchy = "created_at"
    actions = [reverse_fees]
    show_full_result_count = False
    readonly_fields = [f.name for f in FeeLedgerEntry._meta.concrete_fields]
    change_list_template = "admin/billing/feeledgerentry/change_list.html"

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "revenue/",
                self.admin_site.admin_view(self.revenue_view),
                name="billing_feeledgerentry_revenue",
            ),
            *super().get_urls(),
        ]

    def revenue_view(self, request: HttpRequest) -> HttpResponse:
        """Revenue by day, fee type and plan over a date range (default: the last 30 days)."""
        today = timezone.now().date()
        try:
            since_day = date.fromisoformat(request.GET.get("since", ""))
        except ValueError:
            since_day = today - timedelta(days=29)
        try:
            until_day = date.fromisoformat(request.GET.get("until", ""))
        except ValueError:
            until_day = today
        if until_day < since_day:
            since_day, until_day = until_day, since_day
        since = datetime(since_day.year, since_day.month, since_day.day, tzinfo=UTC)
        until = datetime(until_day.year, until_day.month, until_day.day, tzinfo=UTC) + timedelta(
            days=1
        )
        rows = selectors.revenue_report(since=since, until=until)
        by_type: dict[tuple[str, str], Decimal] = {}
        by_plan: dict[tuple[str, str], Decimal] = {}
        for row in rows:
            key_type = (row["fee_type"], row["fee_currency"])
            key_plan = (row["plan__name"] or "(no plan)", row["fee_currency"])
            by_type[key_type] = by_type.get(key_type, Decimal(0)) + row["amount"]
            by_plan[key_plan] = by_plan.get(key_plan, Decimal(0)) + row["amount"]
        return TemplateResponse(
            request,
            "admin/billing/revenue.html",
            {
                **self.admin_site.each_context(request),
                "title": "Revenue",
                "opts": self.model._meta,
                "rows": rows,
                "by_type": sorted(by_type.items()),
                "by_plan": sorted(by_plan.items()),
                "since": since_day,
                "until": until_day,
                "changelist_url": reverse("admin:billing_feeledgerentry_changelist"),
            },
        )


class JournalEntryInline(admin.TabularInline):
    model = JournalEntry
    extra = 0
    can_delete = False
    fields = ("account", "amount", "strategy", "allocation")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(JournalTransaction)
class JournalTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "currency", "reference", "memo")
    list_filter = ("kind", "currency", "created_at")
    search_fields = ("=id", "reference", "=fee__id")
    date_hierarchy = "created_at"
    inlines = [JournalEntryInline]
    show_full_result_count = False
    readonly_fields = (
        "id",
        "kind",
        "currency",
        "reverses",
        "reference",
        "memo",
        "created_at",
    )


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("kind", "user", "trader", "fee_type", "venue", "currency", "balance")
    list_filter = ("kind", "currency", "fee_type")
    search_fields = ("=id", "user__wallet_addr", "user__email", "trader__alias", "venue")
    list_select_related = ("user", "trader")
    readonly_fields = (
        "id",
        "kind",
        "user",
        "trader",
        "fee_type",
        "venue",
        "currency",
        "created_at",
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[LedgerAccount]:
        return selectors.account_balances(accounts=super().get_queryset(request))

    @admin.display(description="Balance (sum of entries)")
    def balance(self, obj: Any) -> Decimal:
        return Decimal(obj.balance)


@admin.register(Statement)
class StatementAdmin(ReadOnlyAdmin):
    list_display = (
        "month",
        "user",
        "currency",
        "opening_balance",
        "charges",
        "reversals",
        "collected_by_venue",
        "payments",
        "closing_balance",
        "fee_count",
        "closed_at",
    )
    list_filter = ("month", "currency")
    search_fields = ("user__wallet_addr", "user__email")
    list_select_related = ("user",)
    readonly_fields = [f.name for f in Statement._meta.concrete_fields]


@admin.register(StrategyEquityMark)
class StrategyEquityMarkAdmin(ReadOnlyAdmin):
    list_display = ("day", "strategy", "equity", "source", "created_at")
    list_filter = ("day", "source")
    search_fields = ("=strategy__id", "strategy__name")
    list_select_related = ("strategy",)
    readonly_fields = [f.name for f in StrategyEquityMark._meta.concrete_fields]


@admin.register(CapitalFlow)
class CapitalFlowAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "strategy", "amount", "reference")
    search_fields = ("=strategy__id", "strategy__name", "reference")
    list_select_related = ("strategy",)
    readonly_fields = [f.name for f in CapitalFlow._meta.concrete_fields]


@admin.register(PerformancePeriod)
class PerformancePeriodAdmin(ReadOnlyAdmin):
    list_display = (
        "period_start",
        "period_end",
        "strategy",
        "opening_hwm",
        "net_flows",
        "adjusted_hwm",
        "closing_equity",
        "profit",
        "fee_amount",
        "closing_hwm",
    )
    list_filter = ("period_kind",)
    search_fields = ("=strategy__id", "strategy__name")
    list_select_related = ("strategy",)
    readonly_fields = [f.name for f in PerformancePeriod._meta.concrete_fields]
