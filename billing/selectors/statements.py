"""Monthly statements: the stored (closed) ones and the live figures of any month."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate

from billing.models import (
    AccountKind,
    FeeCategory,
    FeeLedgerEntry,
    JournalEntry,
    JournalKind,
    LedgerRowKind,
    Statement,
)
from billing.selectors.ledger import SIGNED_AMOUNT, ZERO, next_month
from config.errors import NotFound, ValidationFailed

if TYPE_CHECKING:
    from accounts.models import User


def month_bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    return start, next_month(start)


def parse_month(value: str) -> date:
    """``"2025-01"`` -> date(2025, 1, 1); anything else is refused."""
    try:
        parsed = datetime.strptime(value, "%Y-%m").replace(tzinfo=UTC)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("Give the month as YYYY-MM.", field="month") from exc
    return parsed.date()


def statement_list(*, user: User) -> QuerySet[Statement]:
    return Statement.objects.filter(user=user)


def statement_get(*, user: User, statement_id: uuid.UUID | str) -> Statement:
    try:
        return statement_list(user=user).get(pk=statement_id)
    except (Statement.DoesNotExist, ValueError, TypeError, DjangoValidationError) as exc:
        raise NotFound("Statement not found.", field="statement") from exc


@dataclass
class MonthSummary:
    currency: str
    opening_balance: Decimal = ZERO
    charges: Decimal = ZERO
    reversals: Decimal = ZERO
    collected_by_venue: Decimal = ZERO
    payments: Decimal = ZERO
    closing_balance: Decimal = ZERO
    fee_count: int = 0
    by_type: dict[str, Decimal] = field(default_factory=dict)

    @property
    def net_fees(self) -> Decimal:
        return self.charges - self.reversals


def month_summaries(
    *, month: date, user_ids: list[uuid.UUID] | None = None
) -> dict[tuple[uuid.UUID, str], MonthSummary]:
    """Every figure of a month's statement, for one, some or all users, per (user, currency),
    in three aggregate queries. A user appears when they had fees or payments in the month or
    a non-zero balance at its start."""
    start, end = month_bounds(month)
    summaries: dict[tuple[uuid.UUID, str], MonthSummary] = {}

    def summary(user_id: uuid.UUID, currency: str) -> MonthSummary:
        key = (user_id, currency)
        if key not in summaries:
            summaries[key] = MonthSummary(currency=currency)
        return summaries[key]

    fees = FeeLedgerEntry.objects.filter(created_at__gte=start, created_at__lt=end)
    entries = JournalEntry.objects.filter(
        account__kind=AccountKind.CUSTOMER_RECEIVABLE, transaction__created_at__lt=end
    )
    if user_ids is not None:
        fees = fees.filter(user_id__in=user_ids)
        entries = entries.filter(account__user_id__in=user_ids)

    charge = Q(kind=LedgerRowKind.CHARGE)
    reversal = Q(kind=LedgerRowKind.REVERSAL)
    builder = Q(fee_category=FeeCategory.BUILDER_FEE)
    fee_rows: Any = (
        fees.values("user_id", "fee_currency", "fee_type")
        .annotate(
            charges=Sum("fee_amount", filter=charge),
            reversed_amount=Sum("fee_amount", filter=reversal),
            venue=Sum(SIGNED_AMOUNT, filter=builder),
            net=Sum(SIGNED_AMOUNT),
            count=Count("id"),
        )
        .order_by()
    )
    for row in fee_rows:
        item = summary(row["user_id"], row["fee_currency"])
        item.charges += row["charges"] or ZERO
        item.reversals += row["reversed_amount"] or ZERO
        item.collected_by_venue += row["venue"] or ZERO
        item.fee_count += row["count"]
        item.by_type[row["fee_type"]] = item.by_type.get(row["fee_type"], ZERO) + row["net"]

    entry_rows: Any = (
        entries.values("account__user_id", "account__currency")
        .annotate(
            opening=Sum("amount", filter=Q(transaction__created_at__lt=start)),
            closing=Sum("amount"),
            payments=Sum(
                "amount",
                filter=Q(transaction__created_at__gte=start, transaction__kind=JournalKind.PAYMENT),
            ),
        )
        .order_by()
    )
    for row in entry_rows:
        opening = row["opening"] or ZERO
        payments = -(row["payments"] or ZERO)
        if (row["account__user_id"], row["account__currency"]) not in summaries and not (
            opening or payments
        ):
            continue
        item = summary(row["account__user_id"], row["account__currency"])
        item.opening_balance = opening
        item.closing_balance = row["closing"] or ZERO
        item.payments = payments
    return summaries


def month_summary(*, user: User, month: date) -> list[MonthSummary]:
    found = month_summaries(month=month, user_ids=[user.pk])
    return [found[key] for key in sorted(found)]


def month_fee_lines(*, user: User, month: date) -> QuerySet[FeeLedgerEntry]:
    """Every fee row booked in the month, oldest first (the CSV lines)."""
    start, end = month_bounds(month)
    return (
        FeeLedgerEntry.objects.filter(user=user, created_at__gte=start, created_at__lt=end)
        .select_related("strategy", "plan")
        .order_by("created_at", "id")
    )


def month_daily_lines(*, user: User, month: date) -> list[dict[str, Any]]:
    """The fees of the month by day and category (the HTML and PDF lines): one aggregate."""
    start, end = month_bounds(month)
    rows: Any = (
        FeeLedgerEntry.objects.filter(user=user, created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at"))
        .values("day", "fee_type", "fee_category", "fee_currency")
        .annotate(
            count=Count("id"),
            notional=Sum("notional_amount"),
            amount=Sum(SIGNED_AMOUNT),
        )
        .order_by("day", "fee_type", "fee_category")
    )
    return list(rows)


def month_payments(*, user: User, month: date) -> list[dict[str, Any]]:
    start, end = month_bounds(month)
    rows: Any = (
        JournalEntry.objects.filter(
            account__kind=AccountKind.CUSTOMER_RECEIVABLE,
            account__user=user,
            transaction__kind=JournalKind.PAYMENT,
            transaction__created_at__gte=start,
            transaction__created_at__lt=end,
        )
        .order_by("transaction__created_at", "id")
        .values("transaction__created_at", "transaction__reference", "account__currency", "amount")
    )
    return list(rows)


def statement_months(*, user: User, limit: int = 24) -> list[date]:
    """Months with fee activity, newest first (the portal's statement list, open month too)."""
    months: dict[date, None] = {}
    for day in (
        FeeLedgerEntry.objects.filter(user=user)
        .annotate(day=TruncDate("created_at"))
        .values_list("day", flat=True)
        .distinct()
        .order_by("-day")[:1000]
    ):
        months[day.replace(day=1)] = None
        if len(months) >= limit:
            break
    for month in Statement.objects.filter(user=user).values_list("month", flat=True):
        months.setdefault(month, None)
    return sorted(months, reverse=True)[:limit]


def users_with_activity(*, month: date) -> list[uuid.UUID]:
    found = month_summaries(month=month)
    return sorted({user_id for user_id, _ in found})


def group_by_currency(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["fee_currency"]].append(row)
    return dict(grouped)
