"""Hypothesis through the real services and PostgreSQL: random schedules, allocation weights,
fills, equity paths and corrections, accrued by the services the tasks call. After every example
each journal transaction sums to zero (and passes the commit check), every fee is split across
its parties without losing or creating a unit of the currency, and the balances and the stored
``total_fees`` / ``allocated_fees`` are exactly the sums of what was charged."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Count, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.tests.factories import StaffFactory
from billing import selectors, services
from billing.models import (
    AccountKind,
    FeeLedgerEntry,
    JournalEntry,
    StrategyFeeSchedule,
)
from billing.money import currency_unit

D = Decimal
pytestmark = pytest.mark.django_db
USDC = currency_unit("USDC")

fills = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=10**7),  # size in 0.0001
        st.integers(min_value=1, max_value=10**8),  # price in 0.01
        st.integers(min_value=0, max_value=2),  # which followed trader it copied
    ),
    min_size=1,
    max_size=6,
)
schedules = st.fixed_dictionaries(
    {
        "builder_fee_bps": st.integers(0, 10),
        "copy_fee_bps": st.integers(0, 100),
        "management_fee_bps": st.integers(0, 1000),
        "performance_fee_bps": st.integers(0, 5000),
        "trader_share_bps": st.integers(0, 10_000),
        "performance_period": st.sampled_from(["weekly", "monthly"]),
    }
)
equity = st.integers(min_value=0, max_value=10**9).map(lambda n: D(n) / 100)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    schedule=schedules,
    # Allocation weights add up to at most 1 (copytrade's rule): each at most a third.
    weights=st.lists(st.integers(min_value=1, max_value=3333), min_size=1, max_size=3),
    fill_specs=fills,
    marks=st.lists(equity, min_size=2, max_size=4),
    corrections=st.lists(
        st.tuples(st.booleans(), st.integers(min_value=0, max_value=10**7)), max_size=12
    ),
)
def test_services_keep_every_transaction_balanced_and_every_unit_accounted_for(
    schedule: dict[str, Any],
    weights: list[int],
    fill_specs: list[tuple[int, int, int]],
    marks: list[Decimal],
    corrections: list[tuple[bool, int]],
    copied_fill: Any,
    check_journal: Callable[[], None],
) -> None:
    from billing.tests.factories import AllocationFactory, StrategyFactory

    with transaction.atomic():
        staff = StaffFactory.create()
        strategy = StrategyFactory.create()
        allocations = [
            AllocationFactory.create(strategy=strategy, weight=D(w) / 10_000) for w in weights
        ]
        StrategyFeeSchedule.objects.create(strategy=strategy, **schedule)

        # Fill fees: builder (venue-collected) and copy fees, attributed to the copying trader.
        made = [
            copied_fill(
                strategy,
                size=str(D(size) / 10_000),
                price=str(D(price) / 100),
                trader=allocations[which % len(allocations)].trader,
            )
            for size, price, which in fill_specs
        ]
        services.fill_fees_accrue(fill_ids=[f.pk for f in made])
        # Management fees, one a marked day; performance fees over weekly or monthly periods
        # closing on the marks, split between the platform and the traders by weight.
        days = [date(2025, 1, 1 + 9 * n) for n in range(len(marks))]
        for day, value in zip(days, marks, strict=True):
            services.equity_mark_record(strategy_id=strategy.pk, day=day, equity=value)
            services.management_fees_accrue(day=day)
        services.performance_fees_accrue(now=datetime(2025, 3, 1, tzinfo=UTC))

        # Corrections: reverse some charges, some with a corrected amount.
        charges = list(FeeLedgerEntry.objects.filter(kind="charge").order_by("created_at", "id"))
        for fee, (reverse, replacement_units) in zip(charges, corrections, strict=False):
            if not reverse:
                continue
            replacement = D(replacement_units) * USDC if replacement_units else None
            services.fee_reverse(
                fee_id=fee.pk, actor=staff, reason="property", replacement_amount=replacement
            )

        check_journal()  # the commit check, over everything written above
        sums = (
            JournalEntry.objects.values("transaction_id")
            .annotate(total=Sum("amount"), legs=Count("id"))
            .values_list("total", "legs")
        )
        assert all(total == 0 and legs >= 2 for total, legs in sums)

        fees = list(FeeLedgerEntry.objects.all())
        assert FeeLedgerEntry.objects.count() == len({f.journal_transaction_id for f in fees})
        by_transaction: dict[Any, list[JournalEntry]] = defaultdict(list)
        for e in JournalEntry.objects.select_related("account"):
            by_transaction[e.transaction_id].append(e)
        for fee in fees:
            legs = by_transaction[fee.journal_transaction_id]
            # Each side moves exactly the fee, in whole units: no unit lost or created by the
            # split across allocations (debit side) or platform and traders (credit side).
            sign = -1 if fee.kind == "reversal" else 1
            debit = sum((e.amount for e in legs if e.amount * sign > 0), D(0))
            assert debit == sign * fee.fee_amount
            assert all(e.amount % USDC == 0 for e in legs)
            if fee.fee_category == "performance_fee" and fee.kind == "charge":
                traders = -sum(
                    (e.amount for e in legs if e.account.kind == AccountKind.TRADER_SHARE_PAYABLE),
                    D(0),
                )
                exact = fee.fee_amount * schedule["trader_share_bps"] / 10_000
                assert abs(traders - exact) <= USDC * len(allocations)

        # Balances and stored totals are the sums of what was charged, net of reversals.
        signed = sum((f.signed_amount for f in fees), D(0))
        venue = sum((f.signed_amount for f in fees if f.fee_category == "builder_fee"), D(0))
        assert selectors.receivable_balance(user=strategy.user).get("USDC", D(0)) == (
            signed - venue
        )
        strategy.refresh_from_db()
        assert strategy.total_fees == signed
        assert (
            sum((a.allocated_fees for a in strategy.allocations.all()), D(0)) == strategy.total_fees
        )
        revenue_and_traders = -sum(
            (
                e.amount
                for legs in by_transaction.values()
                for e in legs
                if e.account.kind
                in (AccountKind.PLATFORM_REVENUE, AccountKind.TRADER_SHARE_PAYABLE)
            ),
            D(0),
        )
        assert revenue_and_traders == signed
        transaction.set_rollback(True)
