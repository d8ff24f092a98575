"""The ledger's guarantees, tested against PostgreSQL: balanced at commit (deferred constraint
trigger), immutable, corrected only by reversal (never of a reversal, never twice), entries only
in the transaction that created them, derived totals reconciled with the entries -- and a
Hypothesis run of random fees, splits and reversals after which every journal transaction sums
to zero."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import StaffFactory
from billing import selectors, services
from billing.models import (
    AccountKind,
    FeeLedgerEntry,
    JournalEntry,
    JournalKind,
    JournalTransaction,
    LedgerAccount,
)
from billing.services.journal import (
    FeeDraft,
    Leg,
    customer_legs,
    fees_post,
    receivable,
    revenue,
    trader_payable,
)
from config.errors import ValidationFailed

D = Decimal
pytestmark = pytest.mark.django_db


def _charge(strategy: Any, copied_fill: Any) -> FeeLedgerEntry:
    fill = copied_fill(strategy, size="2", price="1500.5")
    services.fill_fees_accrue(fill_ids=[fill.pk])
    return FeeLedgerEntry.objects.get(fill=fill, fee_category="copy_fee")


def _account(kind: str, **key: Any) -> LedgerAccount:
    account, _ = LedgerAccount.objects.get_or_create(kind=kind, currency="USDC", **key)
    return account


# --------------------------------------------------------------------------- balanced at commit


def test_an_unbalanced_transaction_is_refused_at_commit(
    strategy: Any, check_journal: Callable[[], None]
) -> None:
    cash = _account(AccountKind.CASH)
    owed = _account(AccountKind.CUSTOMER_RECEIVABLE, user=strategy.user)

    def unbalanced() -> None:
        # Nothing is checked before commit (a transaction is built leg by leg); the commit
        # check refuses it, and the savepoint with the rows rolls back.
        with transaction.atomic():
            jt = JournalTransaction.objects.create(
                kind=JournalKind.PAYMENT, currency="USDC", created_at=timezone.now(), reference="p1"
            )
            JournalEntry.objects.create(transaction=jt, account=cash, amount=D("10"))
            JournalEntry.objects.create(transaction=jt, account=owed, amount=D("-9.99"))
            check_journal()

    with pytest.raises(IntegrityError, match="does not balance"):
        unbalanced()
    assert not JournalTransaction.objects.filter(reference="p1").exists()


def test_a_balanced_transaction_written_leg_by_leg_passes(
    strategy: Any, check_journal: Callable[[], None]
) -> None:
    cash = _account(AccountKind.CASH)
    owed = _account(AccountKind.CUSTOMER_RECEIVABLE, user=strategy.user)
    jt = JournalTransaction.objects.create(
        kind=JournalKind.PAYMENT, currency="USDC", created_at=timezone.now(), reference="p2"
    )
    JournalEntry.objects.create(transaction=jt, account=cash, amount=D("10"))
    JournalEntry.objects.create(transaction=jt, account=owed, amount=D("-10"))
    check_journal()


@pytest.mark.parametrize(
    "problem", ["one_leg", "no_legs", "fee_without_row", "fee_amount_mismatch", "other_currency"]
)
def test_the_commit_check_catches_every_malformed_transaction(
    strategy: Any, check_journal: Callable[[], None], problem: str
) -> None:
    cash = _account(AccountKind.CASH)
    owed = _account(AccountKind.CUSTOMER_RECEIVABLE, user=strategy.user)
    usd = LedgerAccount.objects.create(kind=AccountKind.CASH, currency="USD")

    def malformed() -> None:
        with transaction.atomic():
            kind = JournalKind.FEE if problem.startswith("fee") else JournalKind.PAYMENT
            jt = JournalTransaction.objects.create(
                kind=kind, currency="USDC", created_at=timezone.now(), reference=f"x-{problem}"
            )
            if problem == "one_leg":
                JournalEntry.objects.create(transaction=jt, account=cash, amount=D(1))
            elif problem == "other_currency":
                JournalEntry.objects.create(transaction=jt, account=usd, amount=D(1))
                JournalEntry.objects.create(transaction=jt, account=owed, amount=D(-1))
            elif problem.startswith("fee"):
                JournalEntry.objects.create(transaction=jt, account=owed, amount=D(1))
                JournalEntry.objects.create(transaction=jt, account=cash, amount=D(-1))
                if problem == "fee_amount_mismatch":
                    FeeLedgerEntry.objects.create(
                        user=strategy.user,
                        fee_type="copy",
                        fee_category="copy_fee",
                        fee_bps=5,
                        fee_amount=D(2),
                        created_at=timezone.now(),
                        journal_transaction=jt,
                    )
            check_journal()

    with pytest.raises(IntegrityError):
        malformed()


@pytest.mark.django_db(transaction=True)
def test_a_real_commit_of_an_unbalanced_transaction_fails_and_leaves_nothing(
    strategy: Any,
) -> None:
    cash = _account(AccountKind.CASH)
    owed = _account(AccountKind.CUSTOMER_RECEIVABLE, user=strategy.user)

    def commit_unbalanced() -> None:
        with transaction.atomic():
            jt = JournalTransaction.objects.create(
                kind=JournalKind.PAYMENT, currency="USDC", created_at=timezone.now(), reference="r"
            )
            JournalEntry.objects.create(transaction=jt, account=cash, amount=D(5))
            JournalEntry.objects.create(transaction=jt, account=owed, amount=D(-4))

    with pytest.raises(IntegrityError, match="does not balance"):
        commit_unbalanced()
    assert not JournalTransaction.objects.exists()
    assert not JournalEntry.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_entries_cannot_join_a_transaction_committed_earlier(
    strategy: Any, copied_fill: Any
) -> None:
    fee = _charge(strategy, copied_fill)
    owed = _account(AccountKind.CUSTOMER_RECEIVABLE, user=strategy.user)

    def add_to_committed() -> None:
        with transaction.atomic():
            # Balanced on its own, but it would change a committed transaction.
            JournalEntry.objects.create(
                transaction_id=fee.journal_transaction_id, account=owed, amount=D(1)
            )
            JournalEntry.objects.create(
                transaction_id=fee.journal_transaction_id, account=owed, amount=D(-1)
            )

    with pytest.raises(IntegrityError, match="database transaction that created it"):
        add_to_committed()
    payment = services.payment_record(
        user=strategy.user, amount="1", reference="committed", currency="USDC"
    )
    with (
        pytest.raises(IntegrityError, match="written with its journal transaction"),
        transaction.atomic(),
    ):
        FeeLedgerEntry.objects.create(
            user=strategy.user,
            fee_type="copy",
            fee_category="copy_fee",
            fee_bps=5,
            fee_amount=D(1),
            created_at=timezone.now(),
            journal_transaction=payment,
        )


def test_entries_need_an_existing_transaction_and_account(strategy: Any) -> None:
    """The statement trigger that stands in for the entries' foreign keys."""
    owed = _account(AccountKind.CUSTOMER_RECEIVABLE, user=strategy.user)
    with transaction.atomic():
        jt = JournalTransaction.objects.create(
            kind=JournalKind.PAYMENT, currency="USDC", created_at=timezone.now(), reference="fk"
        )
        with pytest.raises(IntegrityError, match="created it"), transaction.atomic():
            JournalEntry.objects.create(transaction_id=uuid.uuid4(), account=owed, amount=D(1))
        with (
            pytest.raises(IntegrityError, match="account that does not exist"),
            transaction.atomic(),
        ):
            JournalEntry.objects.create(transaction=jt, account_id=uuid.uuid4(), amount=D(1))
        transaction.set_rollback(True)  # the empty payment transaction never commits


def test_created_txid_cannot_be_forged(strategy: Any) -> None:
    with (
        pytest.raises(IntegrityError, match="created_txid"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "INSERT INTO billing_journal_transactions "
            "(id, kind, currency, reference, memo, created_at, created_txid) "
            "VALUES (%s, 'payment', 'USDC', 'forged', '', now(), 1)",
            [uuid.uuid4()],
        )


# --------------------------------------------------------------------------- immutable


def test_ledger_rows_journal_and_entries_are_immutable(strategy: Any, copied_fill: Any) -> None:
    fee = _charge(strategy, copied_fill)
    attempts: list[Callable[[], Any]] = [
        lambda: FeeLedgerEntry.objects.filter(pk=fee.pk).update(fee_amount=D(1)),
        lambda: FeeLedgerEntry.objects.filter(pk=fee.pk).delete(),
        lambda: JournalTransaction.objects.filter(pk=fee.journal_transaction_id).update(memo="x"),
        lambda: JournalEntry.objects.filter(transaction_id=fee.journal_transaction_id).update(
            amount=D(0)
        ),
        lambda: JournalEntry.objects.filter(transaction_id=fee.journal_transaction_id).delete(),
        lambda: LedgerAccount.objects.update(currency="USD"),
        lambda: LedgerAccount.objects.all()._raw_delete("default"),  # past the ORM's PROTECT
    ]
    for attempt in attempts:
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    fee.refresh_from_db()
    assert fee.fee_amount == D("1.5005")


# --------------------------------------------------------------------------- reversals


def test_reversal_negates_the_charge_and_the_totals_follow(
    portfolio: Any, copied_fill: Any, check_journal: Callable[[], None]
) -> None:
    staff = StaffFactory.create()
    fill = copied_fill(portfolio, size="10", price="1000")
    services.fill_fees_accrue(fill_ids=[fill.pk])
    copy = FeeLedgerEntry.objects.get(fill=fill, fee_category="copy_fee")
    portfolio.refresh_from_db()
    assert portfolio.total_fees == D(15)  # 10 + 5 bps of 10,000
    reversal = services.fee_reverse(fee_id=copy.pk, actor=staff, reason="duplicate fill")
    check_journal()
    assert (reversal.kind, reversal.fee_amount, reversal.signed_amount) == (
        "reversal",
        D(5),
        D(-5),
    )
    assert reversal.reversal_of_id == copy.pk
    original = sorted(
        (e.account_id, e.amount, e.allocation_id)
        for e in JournalEntry.objects.filter(transaction_id=copy.journal_transaction_id)
    )
    negated = sorted(
        (e.account_id, -e.amount, e.allocation_id)
        for e in JournalEntry.objects.filter(transaction_id=reversal.journal_transaction_id)
    )
    assert original == negated
    assert selectors.receivable_balance(user=portfolio.user) == {"USDC": D(0)}
    portfolio.refresh_from_db()
    assert portfolio.total_fees == D(10)


def test_a_reversal_cannot_be_reversed_nor_a_fee_reversed_twice(
    strategy: Any, copied_fill: Any
) -> None:
    staff = StaffFactory.create()
    fee = _charge(strategy, copied_fill)
    reversal = services.fee_reverse(fee_id=fee.pk, actor=staff, reason="wrong rate")
    before = (FeeLedgerEntry.objects.count(), JournalEntry.objects.count())
    with pytest.raises(ValidationFailed) as twice:
        services.fee_reverse(fee_id=fee.pk, actor=staff, reason="again")
    assert twice.value.code == "already_reversed"
    with pytest.raises(ValidationFailed) as of_reversal:
        services.fee_reverse(fee_id=reversal.pk, actor=staff, reason="undo")
    assert of_reversal.value.code == "reversal_of_reversal"
    with pytest.raises(ValidationFailed) as no_reason:
        services.fee_reverse(fee_id=fee.pk, actor=staff, reason=" ")
    assert no_reason.value.fields == {"reason": [no_reason.value.message]}
    assert (FeeLedgerEntry.objects.count(), JournalEntry.objects.count()) == before


def test_the_database_refuses_a_reversal_of_a_reversal_and_a_second_reversal(
    strategy: Any, copied_fill: Any
) -> None:
    staff = StaffFactory.create()
    fee = _charge(strategy, copied_fill)
    reversal = services.fee_reverse(fee_id=fee.pk, actor=staff, reason="wrong rate")

    def forged(target: FeeLedgerEntry) -> None:
        fees_post(
            [
                FeeDraft(
                    user_id=target.user_id,
                    fee_category=target.fee_category,
                    fee_bps=target.fee_bps,
                    fee_amount=target.fee_amount,
                    fee_currency="USDC",
                    legs=[
                        Leg(revenue("copy", "USDC"), target.fee_amount),
                        Leg(receivable(target.user_id, "USDC"), -target.fee_amount),
                    ],
                    kind="reversal",
                    reversal_of_id=target.pk,
                    reverses_journal_id=target.journal_transaction_id,
                )
            ],
            now=timezone.now(),
        )

    with pytest.raises(IntegrityError, match="cannot be reversed"), transaction.atomic():
        forged(reversal)
    with pytest.raises(IntegrityError), transaction.atomic():
        forged(fee)  # unique reversal_of / reverses


def test_a_reversal_with_a_corrected_charge(
    portfolio: Any, copied_fill: Any, check_journal: Callable[[], None]
) -> None:
    staff = StaffFactory.create()
    fill = copied_fill(portfolio, size="10", price="1000")
    services.fill_fees_accrue(fill_ids=[fill.pk])
    copy = FeeLedgerEntry.objects.get(fill=fill, fee_category="copy_fee")
    services.fee_reverse(fee_id=copy.pk, actor=staff, reason="negotiated", replacement_amount="3")
    check_journal()
    corrected = FeeLedgerEntry.objects.get(replaces=copy)
    assert (corrected.kind, corrected.fee_amount, corrected.fill_id) == ("charge", D(3), fill.pk)
    assert selectors.receivable_balance(user=portfolio.user) == {"USDC": D(3)}
    # The fill stays charged once per category for accrual: running it again adds nothing.
    assert services.fill_fees_accrue(fill_ids=[fill.pk]).charged == 0
    with pytest.raises(ValidationFailed):
        services.fee_reverse(fee_id=corrected.pk, actor=staff, reason="x", replacement_amount="-1")


# --------------------------------------------------------------------------- reconciliation


def test_stored_totals_reconcile_with_the_entries(
    portfolio: Any, strategy: Any, copied_fill: Any
) -> None:
    """total_fees and allocated_fees are recomputed from the entries and compared with what the
    services stored, after fills, management fees, a performance fee and a reversal."""
    from copytrade.models import CopyAllocation, CopyStrategy

    staff = StaffFactory.create()
    for s in (portfolio, strategy):
        for price in ("1000", "2000.5", "333.33"):
            copied_fill(s, size="3", price=price)
    from trading.models import Fill

    services.fill_fees_accrue(fill_ids=list(Fill.objects.values_list("pk", flat=True)))
    services.subscription_subscribe(
        user=portfolio.user, plan_code="desk", now=datetime(2025, 1, 1, tzinfo=UTC)
    )
    from datetime import date

    services.equity_mark_record(strategy_id=portfolio.pk, day=date(2024, 12, 31), equity=D(7000))
    services.equity_mark_record(strategy_id=portfolio.pk, day=date(2025, 1, 5), equity=D(7777))
    services.equity_mark_record(strategy_id=portfolio.pk, day=date(2025, 1, 12), equity=D(9999))
    services.management_fees_accrue(day=date(2025, 1, 5))
    services.performance_fees_accrue(now=datetime(2025, 1, 13, 1, tzinfo=UTC))
    services.fee_reverse(
        fee_id=FeeLedgerEntry.objects.filter(strategy=strategy).first().pk,  # type: ignore[union-attr]
        actor=staff,
        reason="check",
    )
    ids = [portfolio.pk, strategy.pk]
    per_strategy, per_allocation = selectors.derived_fee_totals(strategy_ids=ids)
    for s in CopyStrategy.objects.filter(pk__in=ids):
        assert s.total_fees == per_strategy.get(s.pk, D(0))
        assert s.total_fees == sum(
            (f.signed_amount for f in FeeLedgerEntry.objects.filter(strategy=s)), D(0)
        )
    for a in CopyAllocation.objects.filter(strategy_id__in=ids):
        assert a.allocated_fees == per_allocation.get(a.pk, D(0))
    assert selectors.journal_imbalances() == []


# --------------------------------------------------------------------------- property


leg_amounts = st.integers(min_value=1, max_value=10**9).map(lambda n: Decimal(n).scaleb(-6))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fees=st.lists(
        st.tuples(
            leg_amounts,
            st.integers(min_value=0, max_value=10_000),  # trader share
            st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=3),
            st.booleans(),  # reverse it afterwards
        ),
        min_size=1,
        max_size=8,
    )
)
def test_every_journal_transaction_sums_to_zero(
    fees: list[tuple[Decimal, int, list[int], bool]], check_journal: Callable[[], None]
) -> None:
    """Random fees, each split across random allocation weights on the customer side and
    between the platform and random traders on the other, some reversed: every transaction
    sums to zero, the commit check passes, and every account's balance is the sum of what was
    posted to it."""
    from billing.money import share_split
    from billing.selectors import AllocationWeight
    from billing.tests.factories import AllocationFactory, StrategyFactory

    staff = StaffFactory.create()
    strategy = StrategyFactory.create()
    allocations = [AllocationFactory.create(strategy=strategy, weight=D("0.25")) for _ in range(3)]
    with transaction.atomic():
        drafts = []
        for amount, share_bps, weights, _ in fees:
            alloc = [
                AllocationWeight(a.pk, a.trader_id, D(w))
                for a, w in zip(allocations, weights, strict=False)
            ]
            platform, parts = share_split(amount, share_bps, [x.weight for x in alloc], "USDC")
            legs = customer_legs(
                receivable(strategy.user_id, "USDC"),
                amount,
                strategy_id=strategy.pk,
                allocations=alloc,
            )
            if platform:
                legs.append(Leg(revenue("performance", "USDC"), -platform))
            legs.extend(
                Leg(trader_payable(x.trader_id, "USDC"), -p)
                for x, p in zip(alloc, parts, strict=True)
                if p
            )
            drafts.append(
                FeeDraft(
                    user_id=strategy.user_id,
                    fee_category="performance_fee",
                    fee_bps=0,
                    fee_amount=amount,
                    fee_currency="USDC",
                    legs=legs,
                    strategy_id=strategy.pk,
                )
            )
        fees_post(drafts, now=timezone.now())
        for draft, (_, _, _, reverse) in zip(drafts, fees, strict=True):
            if reverse:
                services.fee_reverse(fee_id=draft.id, actor=staff, reason="property")
        check_journal()
        assert selectors.journal_imbalances() == []
        sums = {
            e["transaction_id"]: e["total"]
            for e in JournalEntry.objects.values("transaction_id")
            .annotate(total=Sum("amount"))
            .values("transaction_id", "total")
        }
        assert sums
        assert set(sums.values()) == {D(0)}
        expected = sum((amount for amount, _, _, reverse in fees if not reverse), D(0))
        strategy.refresh_from_db()
        assert strategy.total_fees == expected
        assert selectors.receivable_balance(user=strategy.user).get("USDC", D(0)) == expected
        transaction.set_rollback(True)


# --------------------------------------------------------------------------- attribution keys


def test_attribution_keys_are_checked_per_statement_and_protected(
    portfolio: Any, strategy: Any, copied_fill: Any, check_journal: Callable[[], None]
) -> None:
    """The entries' strategy and allocation are checked by statement triggers (migration 0004)
    instead of row-level foreign keys: unknown ones, an allocation of another strategy, and a
    customer entry attributed to a strategy other than its fee's are refused; a strategy or
    allocation that entries name cannot be deleted, even past the ORM."""
    fill = copied_fill(portfolio, size="10", price="1000")
    services.fill_fees_accrue(fill_ids=[fill.pk])
    owed = _account(AccountKind.CUSTOMER_RECEIVABLE, user=portfolio.user)
    other_allocation = strategy.allocations.get()

    def entry(**attribution: Any) -> None:
        with transaction.atomic():
            jt = JournalTransaction.objects.create(
                kind=JournalKind.PAYMENT, currency="USDC", created_at=timezone.now(), reference="a"
            )
            JournalEntry.objects.create(transaction=jt, account=owed, amount=D(1), **attribution)

    with pytest.raises(IntegrityError, match="strategy that does not exist"):
        entry(strategy_id=uuid.uuid4())
    with pytest.raises(IntegrityError, match="not of its strategy"):
        entry(strategy_id=portfolio.pk, allocation_id=other_allocation.pk)
    with pytest.raises(IntegrityError, match="not of its strategy"):
        entry(strategy_id=portfolio.pk, allocation_id=uuid.uuid4())

    # A fee whose customer entry names another strategy than the fee row: refused at commit.
    def misattributed() -> None:
        with transaction.atomic():
            fees_post(
                [
                    FeeDraft(
                        user_id=portfolio.user_id,
                        fee_category="copy_fee",
                        fee_bps=5,
                        fee_amount=D(1),
                        fee_currency="USDC",
                        legs=[
                            Leg(receivable(portfolio.user_id, "USDC"), D(1), strategy.pk),
                            Leg(revenue("copy", "USDC"), D(-1)),
                        ],
                        strategy_id=portfolio.pk,
                    )
                ],
                now=timezone.now(),
            )
            check_journal()

    with pytest.raises(IntegrityError, match="does not balance"):
        misattributed()

    from copytrade.models import CopyAllocation, CopyStrategy

    charged = portfolio.allocations.order_by("created_at").first()
    for table, pk in (
        (CopyAllocation._meta.db_table, charged.pk),
        (CopyStrategy._meta.db_table, portfolio.pk),
    ):
        with (
            pytest.raises(IntegrityError, match="attributed to cannot be deleted"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"DELETE FROM {table} WHERE id = %s", [pk])
    assert CopyAllocation.objects.filter(pk=charged.pk).exists()


def test_journal_ids_are_random_time_ordered_uuids() -> None:
    """billing.services.journal.new_uuid: RFC 9562 version 7 (time-ordered, for the B-trees),
    unique, and ordered by the millisecond they were drawn in."""
    import time

    from billing.services.journal import new_uuid

    first = [new_uuid() for _ in range(20_000)]
    time.sleep(0.002)
    later = new_uuid()
    assert len(set(first)) == len(first)
    assert {(u.version, u.variant) for u in first} == {(7, uuid.RFC_4122)}
    assert all(u.int >> 80 <= later.int >> 80 for u in first)
    assert later > max(first)
    assert abs((later.int >> 80) - time.time_ns() // 1_000_000) < 5_000
