"""The journal writer: every fee, reversal and payment is written here, set-based.

``fees_post`` takes any number of fee drafts and writes, with three ``COPY`` statements, their
journal transactions, their entries and their ``fees_ledger`` rows; then it re-derives the fee
totals of the strategies touched from the entries and schedules the live events. It must run
inside the caller's transaction (every public service opens one): the deferred constraint
trigger checks every journal transaction it wrote when that transaction commits.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from django.db import connection

from billing.models import (
    CATEGORY_TYPE,
    AccountKind,
    JournalKind,
    LedgerAccount,
    LedgerRowKind,
)
from billing.money import currency_unit, split
from billing.selectors import AllocationWeight
from config.streams import publish_account_on_commit

# pg_advisory_xact_lock(namespace, bucket): accruals for a strategy are serialised by bucket
# (1,024 buckets keep the number of locks one transaction holds bounded).
LOCK_NAMESPACE = 0x42494C4C  # "BILL"
LOCK_BUCKETS = 1024
LIVE_FEES_PER_EVENT = 50


_random_pool: list[bytes] = []
# A forked worker (Celery prefork) must not hand out the random bytes its parent drew.
os.register_at_fork(after_in_child=_random_pool.clear)
_MS_MASK = (1 << 48) - 1
_RAND_A_MASK = (1 << 12) - 1
_RAND_B_MASK = (1 << 62) - 1


def new_uuid() -> uuid.UUID:
    """A time-ordered UUID (version 7, RFC 9562): 48 bits of Unix milliseconds, then 74 random
    bits, drawn from a pool of random bytes 4 KiB at a time (one ``os.urandom`` call per 256
    ids). Time order keeps the primary keys and the indexes on them (journal transactions, the
    entries' transaction index, fee rows) appending at the right edge of their B-trees instead
    of splitting pages all over them: a bulk accrual writes 200,000 of each. The random bits
    keep ids unguessable; the millisecond they reveal is when the row was written."""
    if not _random_pool:
        block = os.urandom(16 * 256)
        _random_pool.extend(block[i : i + 16] for i in range(0, len(block), 16))
    rand = int.from_bytes(_random_pool.pop(), "big")
    ms = time.time_ns() // 1_000_000
    value = (
        (ms & _MS_MASK) << 80
        | 0x7 << 76
        | ((rand >> 64) & _RAND_A_MASK) << 64
        | 0b10 << 62
        | (rand & _RAND_B_MASK)
    )
    return uuid.UUID(int=value)


class AccountKey(NamedTuple):
    """Which account (a tuple: hashed and compared in C, hundreds of thousands of times a
    bulk accrual)."""

    kind: str
    currency: str
    user_id: uuid.UUID | None = None
    trader_id: uuid.UUID | None = None
    fee_type: str = ""
    venue: str = ""


def receivable(user_id: uuid.UUID, currency: str) -> AccountKey:
    return AccountKey(AccountKind.CUSTOMER_RECEIVABLE, currency, user_id=user_id)


def venue_clearing(venue: str, currency: str) -> AccountKey:
    return AccountKey(AccountKind.VENUE_CLEARING, currency, venue=venue)


def revenue(fee_type: str, currency: str) -> AccountKey:
    return AccountKey(AccountKind.PLATFORM_REVENUE, currency, fee_type=fee_type)


def trader_payable(trader_id: uuid.UUID, currency: str) -> AccountKey:
    return AccountKey(AccountKind.TRADER_SHARE_PAYABLE, currency, trader_id=trader_id)


def cash(currency: str) -> AccountKey:
    return AccountKey(AccountKind.CASH, currency)


class Leg(NamedTuple):
    account: AccountKey
    amount: Decimal
    strategy_id: uuid.UUID | None = None
    allocation_id: uuid.UUID | None = None


@dataclass(slots=True)
class FeeDraft:
    """One fee to write: its ``fees_ledger`` fields and the legs of its journal transaction."""

    user_id: uuid.UUID
    fee_category: str
    fee_bps: int
    fee_amount: Decimal
    fee_currency: str
    legs: list[Leg]
    kind: str = LedgerRowKind.CHARGE
    order_id: uuid.UUID | None = None
    strategy_id: uuid.UUID | None = None
    fill_id: uuid.UUID | None = None
    plan_id: uuid.UUID | None = None
    subscription_id: uuid.UUID | None = None
    notional_amount: Decimal | None = None
    calculation_base: str | None = None
    transaction_hash: str | None = None
    exchange_tx_id: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    reversal_of_id: uuid.UUID | None = None
    replaces_id: uuid.UUID | None = None
    reverses_journal_id: uuid.UUID | None = None
    memo: str = ""
    id: uuid.UUID = field(default_factory=lambda: new_uuid())
    journal_id: uuid.UUID = field(default_factory=lambda: new_uuid())

    @property
    def fee_type(self) -> str:
        return CATEGORY_TYPE[self.fee_category]


def customer_legs(
    account: AccountKey,
    amount: Decimal,
    *,
    strategy_id: uuid.UUID | None,
    allocations: Sequence[AllocationWeight] = (),
    allocation_id: uuid.UUID | None = None,
) -> list[Leg]:
    """The debit side of a fee, attributed to the strategy and split across its allocations by
    weight (largest remainder: the parts add up to ``amount`` exactly). A fee of one fill is
    attributed whole to the allocation that copied it (``allocation_id``)."""
    if allocation_id is not None or strategy_id is None:
        return [Leg(account, amount, strategy_id, allocation_id)]
    weighted = [a for a in allocations if a.weight > 0]
    if not weighted:
        return [Leg(account, amount, strategy_id, None)]
    parts = split(amount, [a.weight for a in weighted], account.currency)
    return [
        Leg(account, part, strategy_id, allocation.allocation_id)
        for allocation, part in zip(weighted, parts, strict=True)
        if part != 0
    ]


# --------------------------------------------------------------------------- locks and accounts


def strategies_lock(strategy_ids: Iterable[uuid.UUID]) -> None:
    """Serialise billing writes per strategy until commit (always in bucket order)."""
    buckets = sorted({uuid.UUID(str(s)).int % LOCK_BUCKETS for s in strategy_ids})
    if not buckets:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(%s, b) FROM "
            "(SELECT b FROM unnest(%s::int[]) AS b ORDER BY b) AS ordered",
            [LOCK_NAMESPACE, buckets],
        )


def accounts_resolve(keys: Iterable[AccountKey]) -> dict[AccountKey, uuid.UUID]:
    """The id of every account in ``keys``, creating the missing ones (concurrent creators
    are harmless: the unique key makes the second insert a no-op)."""
    wanted = set(keys)
    found = _accounts_find(wanted)
    missing = wanted - set(found)
    if missing:
        LedgerAccount.objects.bulk_create(
            [
                LedgerAccount(
                    kind=k.kind,
                    currency=k.currency,
                    user_id=k.user_id,
                    trader_id=k.trader_id,
                    fee_type=k.fee_type,
                    venue=k.venue,
                )
                for k in missing
            ],
            ignore_conflicts=True,
        )
        found.update(_accounts_find(missing))
    return found


def _accounts_find(keys: set[AccountKey]) -> dict[AccountKey, uuid.UUID]:
    by_kind: dict[str, set[AccountKey]] = defaultdict(set)
    for key in keys:
        by_kind[key.kind].add(key)
    found: dict[AccountKey, uuid.UUID] = {}
    for kind, group in by_kind.items():
        accounts = LedgerAccount.objects.filter(kind=kind, currency__in={k.currency for k in group})
        if kind == AccountKind.CUSTOMER_RECEIVABLE:
            accounts = accounts.filter(user_id__in={k.user_id for k in group})
        elif kind == AccountKind.TRADER_SHARE_PAYABLE:
            accounts = accounts.filter(trader_id__in={k.trader_id for k in group})
        elif kind == AccountKind.PLATFORM_REVENUE:
            accounts = accounts.filter(fee_type__in={k.fee_type for k in group})
        elif kind == AccountKind.VENUE_CLEARING:
            accounts = accounts.filter(venue__in={k.venue for k in group})
        for row in accounts.values(
            "id", "kind", "currency", "user_id", "trader_id", "fee_type", "venue"
        ):
            key = AccountKey(
                row["kind"],
                row["currency"],
                row["user_id"],
                row["trader_id"],
                row["fee_type"],
                row["venue"],
            )
            if key in group:
                found[key] = row["id"]
    return found


# --------------------------------------------------------------------------- writing


JT_COLUMNS = ("id", "kind", "currency", "reverses_id", "reference", "memo", "created_at")
JT_TYPES = ("uuid", "text", "text", "uuid", "text", "text", "timestamptz")
JE_COLUMNS = ("transaction_id", "account_id", "amount", "strategy_id", "allocation_id")
JE_TYPES = ("uuid", "uuid", "numeric", "uuid", "uuid")
FEE_COLUMNS = (
    "id",
    "user_id",
    "order_id",
    "strategy_id",
    "fee_type",
    "fee_category",
    "fee_bps",
    "fee_amount",
    "fee_currency",
    "notional_amount",
    "calculation_base",
    "transaction_hash",
    "exchange_tx_id",
    "period_start",
    "period_end",
    "created_at",
    "metadata",
    "kind",
    "fill_id",
    "plan_id",
    "subscription_id",
    "reversal_of_id",
    "replaces_id",
    "journal_transaction_id",
)
FEE_TYPES = (
    "uuid",
    "uuid",
    "uuid",
    "uuid",
    "text",
    "text",
    "int4",
    "numeric",
    "text",
    "numeric",
    "text",
    "text",
    "text",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",  # jsonb, sent as its JSON text
    "text",
    "uuid",
    "uuid",
    "uuid",
    "uuid",
    "uuid",
    "uuid",
)


def _copy(
    table: str, columns: Sequence[str], types: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    # The psycopg cursor under Django's wrapper; errors still become Django's (IntegrityError).
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,
        cursor.cursor.copy(sql) as copy,
    ):
        copy.set_types(types)  # one dumper per column, not a lookup per value
        for row in rows:
            copy.write_row(row)


def _json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _check_draft(draft: FeeDraft) -> None:
    unit = currency_unit(draft.fee_currency)
    if draft.fee_amount <= 0 or draft.fee_amount % unit != 0:
        raise ValueError(f"fee amount {draft.fee_amount} is not a positive {draft.fee_currency}")
    if draft.fee_bps < 0:
        raise ValueError("fee_bps must not be negative")
    if sum((leg.amount for leg in draft.legs), Decimal(0)) != 0:
        raise ValueError("the legs of a fee must sum to zero")
    if any(leg.account.currency != draft.fee_currency for leg in draft.legs):
        raise ValueError("every leg of a fee is in the fee's currency")
    # Both sides move the fee amount (for a reversal the customer side is the credit).
    debit_side = sum((leg.amount for leg in draft.legs if leg.amount > 0), Decimal(0))
    if debit_side != draft.fee_amount:
        raise ValueError("a fee's journal moves exactly its amount")


def fees_post(drafts: Sequence[FeeDraft], *, now: datetime) -> list[uuid.UUID]:
    """Write ``drafts`` (inside the caller's transaction) and return their ledger row ids."""
    if not drafts:
        return []
    if not connection.in_atomic_block:
        raise RuntimeError("fees_post runs inside the caller's transaction")
    for draft in drafts:
        _check_draft(draft)
    accounts = accounts_resolve(leg.account for d in drafts for leg in d.legs)

    def journal_rows() -> Iterable[tuple[Any, ...]]:
        for d in drafts:
            kind = JournalKind.REVERSAL if d.kind == LedgerRowKind.REVERSAL else JournalKind.FEE
            yield (
                d.journal_id,
                kind,
                d.fee_currency,
                d.reverses_journal_id,
                "",
                d.memo,
                now,
            )

    def entry_rows() -> Iterable[tuple[Any, ...]]:
        for d in drafts:
            for leg in d.legs:
                yield (
                    d.journal_id,
                    accounts[leg.account],
                    leg.amount,
                    leg.strategy_id,
                    leg.allocation_id,
                )

    def fee_rows() -> Iterable[tuple[Any, ...]]:
        for d in drafts:
            yield (
                d.id,
                d.user_id,
                d.order_id,
                d.strategy_id,
                d.fee_type,
                d.fee_category,
                d.fee_bps,
                d.fee_amount,
                d.fee_currency,
                d.notional_amount,
                d.calculation_base,
                d.transaction_hash,
                d.exchange_tx_id,
                d.period_start,
                d.period_end,
                now,
                orjson.dumps(d.metadata, default=_json_default).decode(),
                d.kind,
                d.fill_id,
                d.plan_id,
                d.subscription_id,
                d.reversal_of_id,
                d.replaces_id,
                d.journal_id,
            )

    _copy("billing_journal_transactions", JT_COLUMNS, JT_TYPES, journal_rows())
    _copy("billing_journal_entries", JE_COLUMNS, JE_TYPES, entry_rows())
    _copy("fees_ledger", FEE_COLUMNS, FEE_TYPES, fee_rows())

    strategy_fee_totals_sync({d.strategy_id for d in drafts if d.strategy_id is not None})
    _publish(drafts, now)
    return [d.id for d in drafts]


def payment_post(
    *,
    user_id: uuid.UUID,
    amount: Decimal,
    currency: str,
    reference: str,
    now: datetime,
    memo: str = "",
) -> uuid.UUID:
    """A payment received: Dr cash, Cr the customer's receivable (inside the caller's
    transaction). Returns the journal transaction id."""
    accounts = accounts_resolve([cash(currency), receivable(user_id, currency)])
    journal_id = uuid.uuid4()
    _copy(
        "billing_journal_transactions",
        JT_COLUMNS,
        JT_TYPES,
        [(journal_id, JournalKind.PAYMENT, currency, None, reference, memo, now)],
    )
    _copy(
        "billing_journal_entries",
        JE_COLUMNS,
        JE_TYPES,
        [
            (journal_id, accounts[cash(currency)], amount, None, None),
            (journal_id, accounts[receivable(user_id, currency)], -amount, None, None),
        ],
    )
    return journal_id


def strategy_fee_totals_sync(strategy_ids: Iterable[uuid.UUID]) -> None:
    """Set ``CopyStrategy.total_fees`` and ``CopyAllocation.allocated_fees`` to the sums of
    their journal entries, in the caller's transaction: the stored columns are a cache of the
    entries, never incremented on their own. Rows are locked in id order (no deadlocks between
    concurrent accruals)."""
    ids = sorted({str(s) for s in strategy_ids})
    if not ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM copy_strategies WHERE id = ANY(%s::uuid[]) ORDER BY id "
            "FOR NO KEY UPDATE",
            [ids],
        )
        cursor.execute(
            """
            UPDATE copy_strategies AS s
               SET total_fees = t.total
              FROM (SELECT x.id,
                           COALESCE((SELECT SUM(e.amount) FROM billing_journal_entries e
                                      WHERE e.strategy_id = x.id), 0) AS total
                      FROM unnest(%s::uuid[]) AS x(id)) AS t
             WHERE s.id = t.id AND s.total_fees <> t.total
            """,
            [ids],
        )
        cursor.execute(
            "SELECT id FROM copy_allocations WHERE strategy_id = ANY(%s::uuid[]) ORDER BY id "
            "FOR NO KEY UPDATE",
            [ids],
        )
        cursor.execute(
            """
            UPDATE copy_allocations AS a
               SET allocated_fees = t.total
              FROM (SELECT c.id,
                           COALESCE((SELECT SUM(e.amount) FROM billing_journal_entries e
                                      WHERE e.allocation_id = c.id), 0) AS total
                      FROM copy_allocations c
                     WHERE c.strategy_id = ANY(%s::uuid[])) AS t
             WHERE a.id = t.id AND a.allocated_fees <> t.total
            """,
            [ids],
        )


def _publish(drafts: Sequence[FeeDraft], now: datetime) -> None:
    """One ``fee`` event per user per write, on commit, with (up to 50 of) the new rows."""
    per_user: dict[uuid.UUID, list[FeeDraft]] = defaultdict(list)
    for draft in drafts:
        per_user[draft.user_id].append(draft)
    for user_id, items in per_user.items():
        data = {
            "count": len(items),
            "truncated": len(items) > LIVE_FEES_PER_EVENT,
            "fees": [
                {
                    "id": d.id,
                    "kind": d.kind,
                    "fee_type": d.fee_type,
                    "fee_category": d.fee_category,
                    "fee_bps": d.fee_bps,
                    # To the currency's precision whatever the source (a reversal copies the
                    # stored numeric(18, 8)): clients compare amounts as strings.
                    "fee_amount": (
                        -d.fee_amount if d.kind == LedgerRowKind.REVERSAL else d.fee_amount
                    ).quantize(currency_unit(d.fee_currency)),
                    "fee_currency": d.fee_currency,
                    "strategy": d.strategy_id,
                    "order": d.order_id,
                    "fill": d.fill_id,
                    "created_at": now,
                }
                for d in items[:LIVE_FEES_PER_EVENT]
            ],
        }
        publish_account_on_commit(user_id, "fee", data)
