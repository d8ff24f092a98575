"""The ledger: customer reads (scoped to the user; another user's fee is "not found") and the
system reads accrual and reconciliation need (named so)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from billing.models import (
    AccountKind,
    FeeCategory,
    FeeLedgerEntry,
    JournalEntry,
    JournalKind,
    LedgerAccount,
    LedgerRowKind,
)
from config.errors import NotFound

if TYPE_CHECKING:
    from accounts.models import User

ZERO = Decimal(0)
MONEY = DecimalField(max_digits=30, decimal_places=8)
SIGNED_AMOUNT = Case(
    When(kind=LedgerRowKind.REVERSAL, then=-F("fee_amount")),
    default=F("fee_amount"),
    output_field=MONEY,
)


# --------------------------------------------------------------------------- customer reads


def fee_list(*, user: User) -> QuerySet[FeeLedgerEntry]:
    return FeeLedgerEntry.objects.filter(user=user).select_related("strategy")


def fee_get(*, user: User, fee_id: uuid.UUID | str) -> FeeLedgerEntry:
    try:
        return fee_list(user=user).get(pk=fee_id)
    except (FeeLedgerEntry.DoesNotExist, ValueError, TypeError, DjangoValidationError) as exc:
        raise NotFound("Fee not found.", field="fee") from exc


def receivable_balance(*, user: User, before: datetime | None = None) -> dict[str, Decimal]:
    """What ``user`` owes Tandem, per currency: the sum of the receivable account's entries
    (positive: owed; negative: a credit)."""
    entries = JournalEntry.objects.filter(
        account__kind=AccountKind.CUSTOMER_RECEIVABLE, account__user=user
    )
    if before is not None:
        entries = entries.filter(transaction__created_at__lt=before)
    rows = entries.values("account__currency").annotate(total=Sum("amount"))
    return {row["account__currency"]: row["total"] for row in rows}


def month_start(at: datetime) -> datetime:
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(start: datetime) -> datetime:
    return (start + timedelta(days=32)).replace(day=1)


def fee_totals(*, user: User, at: datetime | None = None) -> dict[str, Any]:
    """Fees charged to ``user`` today and this month (UTC), net of reversals, per currency:
    the ``fees`` part of the account snapshot. One query."""
    at = at or timezone.now()
    today = at.replace(hour=0, minute=0, second=0, microsecond=0)
    month = month_start(at)
    rows = (
        FeeLedgerEntry.objects.filter(user=user, created_at__gte=month, created_at__lte=at)
        .values("fee_currency")
        .annotate(
            month_to_date=Sum(SIGNED_AMOUNT),
            today=Coalesce(
                Sum(SIGNED_AMOUNT, filter=Q(created_at__gte=today)), Value(ZERO), output_field=MONEY
            ),
            count=Count("id"),
        )
        .order_by("fee_currency")
    )
    return {
        "as_of": at,
        "currencies": [
            {
                "currency": row["fee_currency"],
                "today": row["today"],
                "month_to_date": row["month_to_date"],
                "count": row["count"],
            }
            for row in rows
        ],
    }


# --------------------------------------------------------------------------- system reads


def _any_uuid(model: Any, column: str, ids: Iterable[uuid.UUID | str]) -> RawSQL:
    """``<table>.<column> = ANY(<one uuid[] parameter>)``: a batch of 50,000 ids is one bound
    array, not 50,000 placeholders for Django to build and PostgreSQL to parse. ``= ANY`` rather
    than ``IN (SELECT unnest(...))``: right after a bulk accrual the table's statistics still say
    "empty", and the semi-join then planned as a nested loop over a sequential scan took 35 s to
    find 40,000 fills already charged; ``= ANY`` is an index scan or a hashed filter, linear
    either way."""
    table = connection.ops.quote_name(model._meta.db_table)
    # Identifiers come from the model and are quoted; the ids are one bound parameter.
    return RawSQL(  # noqa: S611
        f"{table}.{connection.ops.quote_name(column)} = ANY(%s::uuid[])",
        ([str(i) for i in ids],),
        output_field=BooleanField(),
    )


class CopiedFill(NamedTuple):
    fill_id: uuid.UUID
    user_id: uuid.UUID
    order_id: uuid.UUID
    strategy_id: uuid.UUID
    trader_id: uuid.UUID | None
    exchange: str
    size: Decimal
    price: Decimal
    tx_hash: str
    venue_fill_id: str


def copied_fills_for_accrual(*, fill_ids: Sequence[uuid.UUID | str]) -> list[CopiedFill]:
    """System scope: of ``fill_ids``, the fills of copy-trade orders that belong to a strategy
    (the only fills Tandem charges builder and copy fees on), leaving out those already
    charged both fees: a redelivered batch is answered by index probes in the database instead
    of shipping every fill and every charge to Python to find there is nothing to do."""
    from trading.models import Fill

    charged = FeeLedgerEntry.objects.filter(
        fill_id=OuterRef("pk"), kind=LedgerRowKind.CHARGE, replaces__isnull=True
    )
    rows = (
        Fill.objects.filter(
            _any_uuid(Fill, "id", fill_ids),
            order__is_copy_trade=True,
            order__strategy__isnull=False,
        )
        .filter(
            ~Exists(charged.filter(fee_category=FeeCategory.BUILDER_FEE))
            | ~Exists(charged.filter(fee_category=FeeCategory.COPY_FEE))
        )
        .order_by("filled_at", "id")
        .values_list(
            "id",
            "user_id",
            "order_id",
            "order__strategy_id",
            "order__source_trader_id",
            "exchange",
            "size",
            "price",
            "tx_hash",
            "venue_fill_id",
        )
    )
    return [CopiedFill(*row) for row in rows]


def copied_fill_ids_uncharged(*, since: datetime, limit: int) -> list[uuid.UUID]:
    """System scope (the sweep): copied fills since ``since`` with no fill fee charged yet.

    A fill whose fees all round to zero has no row and is looked at again by every sweep
    within the look-back; that is cheap and harmless (it still rounds to zero)."""
    from trading.models import Fill

    charged = FeeLedgerEntry.objects.filter(
        fill_id=F("pk"), kind=LedgerRowKind.CHARGE, replaces__isnull=True
    )
    return list(
        Fill.objects.filter(
            filled_at__gte=since, order__is_copy_trade=True, order__strategy__isnull=False
        )
        .exclude(pk__in=charged.values("fill_id"))
        .order_by("filled_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def fill_charges_existing(*, fill_ids: Iterable[uuid.UUID]) -> set[tuple[uuid.UUID, str]]:
    return set(
        FeeLedgerEntry.objects.filter(
            _any_uuid(FeeLedgerEntry, "fill_id", fill_ids),
            kind=LedgerRowKind.CHARGE,
            replaces__isnull=True,
        ).values_list("fill_id", "fee_category")
    )


def period_charges_existing(
    *, strategy_ids: Iterable[uuid.UUID], category: str, period_start: datetime
) -> set[uuid.UUID]:
    return set(
        FeeLedgerEntry.objects.filter(
            strategy_id__in=list(strategy_ids),
            fee_category=category,
            period_start=period_start,
            kind=LedgerRowKind.CHARGE,
            replaces__isnull=True,
        ).values_list("strategy_id", flat=True)
    )


@dataclass(frozen=True)
class AllocationWeight:
    allocation_id: uuid.UUID
    trader_id: uuid.UUID
    weight: Decimal


def allocations_by_strategy(
    *, strategy_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[AllocationWeight]]:
    """System scope: every allocation of each strategy (any status: a paused trader's share of
    a strategy still carries its share of the strategy's fees), in a stable order."""
    from copytrade.models import CopyAllocation

    result: dict[uuid.UUID, list[AllocationWeight]] = defaultdict(list)
    for allocation_id, strategy_id, trader_id, weight in (
        CopyAllocation.objects.filter(strategy_id__in=list(strategy_ids))
        .order_by("strategy_id", "created_at", "id")
        .values_list("pk", "strategy_id", "trader_id", "weight")
    ):
        result[strategy_id].append(AllocationWeight(allocation_id, trader_id, weight))
    return result


def strategy_owners(*, strategy_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    from copytrade.models import CopyStrategy

    return dict(CopyStrategy.objects.filter(pk__in=list(strategy_ids)).values_list("pk", "user_id"))


def derived_fee_totals(
    *, strategy_ids: Iterable[uuid.UUID]
) -> tuple[dict[uuid.UUID, Decimal], dict[uuid.UUID, Decimal]]:
    """Reconciliation: fees per strategy and per allocation, recomputed from journal entries
    (the customer-side entries carry the attribution)."""
    ids = list(strategy_ids)
    per_strategy = dict(
        JournalEntry.objects.filter(strategy_id__in=ids)
        .values("strategy_id")
        .annotate(total=Sum("amount"))
        .values_list("strategy_id", "total")
    )
    per_allocation = dict(
        JournalEntry.objects.filter(strategy_id__in=ids, allocation_id__isnull=False)
        .values("allocation_id")
        .annotate(total=Sum("amount"))
        .values_list("allocation_id", "total")
    )
    return per_strategy, per_allocation


def account_balances(*, accounts: QuerySet[LedgerAccount] | None = None) -> QuerySet[LedgerAccount]:
    """Staff: accounts with their balance (sum of entries)."""
    accounts = accounts if accounts is not None else LedgerAccount.objects.all()
    return accounts.annotate(
        balance=Coalesce(Sum("entries__amount"), Value(ZERO), output_field=MONEY)
    )


def journal_imbalances() -> list[tuple[uuid.UUID, Decimal]]:
    """Reconciliation: journal transactions whose entries do not sum to zero (always empty)."""
    return list(
        JournalEntry.objects.values("transaction_id")
        .annotate(total=Sum("amount"))
        .exclude(total=0)
        .values_list("transaction_id", "total")
    )


# --------------------------------------------------------------------------- staff reports


def revenue_report(*, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Revenue booked in ``[since, until)`` by UTC day, fee type and plan (charges minus
    reversals), newest day first: one aggregate query over the ``created_at`` index."""
    rows: Any = (
        FeeLedgerEntry.objects.filter(created_at__gte=since, created_at__lt=until)
        .annotate(day=TruncDate("created_at"))
        .values("day", "fee_type", "fee_currency", "plan__code", "plan__name")
        .annotate(
            amount=Sum(SIGNED_AMOUNT),
            charge_count=Count("id", filter=Q(kind=LedgerRowKind.CHARGE)),
            reversal_count=Count("id", filter=Q(kind=LedgerRowKind.REVERSAL)),
        )
        .order_by("-day", "fee_type", "plan__code")
    )
    return list(rows)


def trader_share_balances() -> QuerySet[LedgerAccount]:
    return account_balances(
        accounts=LedgerAccount.objects.filter(kind=AccountKind.TRADER_SHARE_PAYABLE).select_related(
            "trader"
        )
    )


def payments_in(*, user: User, since: datetime, until: datetime) -> QuerySet[JournalEntry]:
    """Payments credited to ``user``'s receivable in ``[since, until)``."""
    return (
        JournalEntry.objects.filter(
            account__kind=AccountKind.CUSTOMER_RECEIVABLE,
            account__user=user,
            transaction__kind=JournalKind.PAYMENT,
            transaction__created_at__gte=since,
            transaction__created_at__lt=until,
        )
        .select_related("transaction", "account")
        .order_by("transaction__created_at", "id")
    )


BUILDER = FeeCategory.BUILDER_FEE
