"""Acceptance (c): 50 concurrent allocation writes -- threads with their own database
connections, committing for real -- never leave a strategy with weights summing over 1: not
through the service (which locks the strategy row), and not around it (the trigger, under the
same lock, refuses)."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.tests.factories import UserFactory
from config.errors import ValidationFailed
from copytrade.models import CopyAllocation, CopyStrategy
from copytrade.services import allocation_set, strategy_create
from copytrade.tests.factories import TraderFactory

D = Decimal
pytestmark = pytest.mark.django_db(transaction=True)


def _desk_customer() -> Any:
    """A customer on the Desk plan (25 traders per portfolio): these tests are about weights,
    and weights of 0.05 and more fit at most 20 traders, so the plan never refuses first. The
    plans are written again because a transactional test's flush removes the migration's."""
    import importlib

    from accounts.tests.factories import StaffFactory
    from billing.models import Plan
    from billing.services import subscription_grant

    for values in importlib.import_module("billing.migrations.0003_default_plans").PLANS:
        Plan.objects.get_or_create(code=values["code"], defaults={**values, "currency": "USDC"})
    customer = UserFactory.create()
    subscription_grant(
        user=customer,
        plan=Plan.objects.get(code="desk"),
        actor=StaffFactory.create(),
        period_start=timezone.now() - timedelta(days=1),
        period_end=timezone.now() + timedelta(days=30),
    )
    return customer


def _run_threads(count: int, work: Callable[[int], str]) -> list[str]:
    barrier = threading.Barrier(count)
    outcomes: list[str] = []
    lock = threading.Lock()

    def runner(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcome = work(index)
        except Exception as exc:  # recorded, never swallowed silently
            outcome = f"error: {type(exc).__name__}: {exc}"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return outcomes


def _total(strategy: CopyStrategy) -> Decimal:
    return CopyAllocation.objects.filter(strategy=strategy).aggregate(s=Sum("weight"))["s"] or D(0)


def test_fifty_concurrent_allocation_writes_through_the_service() -> None:
    user = _desk_customer()
    traders = [TraderFactory.create() for _ in range(50)]
    strategy = strategy_create(user=user, name="Crowded").strategy
    rng = random.Random(7)
    weights = [D(rng.choice(["0.05", "0.1", "0.15", "0.2", "0.3"])) for _ in range(50)]

    def work(index: int) -> str:
        try:
            allocation_set(strategy=strategy, trader_id=traders[index].pk, weight=weights[index])
            return "written"
        except ValidationFailed as exc:
            return "refused" if exc.code == "weights_over_one" else f"error: {exc.code}"

    outcomes = _run_threads(50, work)
    assert len(outcomes) == 50
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    assert "refused" in outcomes  # the weights asked for add up to far more than 1
    assert _total(strategy) <= 1
    assert CopyAllocation.objects.filter(strategy=strategy).count() == outcomes.count("written")
    # every write that went through made a version, numbered without gaps
    numbers = sorted(strategy.versions.values_list("number", flat=True))
    assert numbers == list(range(1, outcomes.count("written") + 2))


def test_fifty_concurrent_raw_writes_around_the_service_meet_the_trigger() -> None:
    """Writers that skip the service's lock: the database trigger takes it and refuses any
    write that would take the sum over 1."""
    user = _desk_customer()
    traders = [TraderFactory.create() for _ in range(50)]
    strategy = strategy_create(user=user, name="Raw").strategy

    def work(index: int) -> str:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO copy_allocations (id, strategy_id, trader_id, weight, status, "
                    "allocated_pnl, allocated_fees, created_at, updated_at) "
                    "VALUES (gen_random_uuid(), %s, %s, %s, 'active', 0, 0, now(), now())",
                    [strategy.pk, traders[index].pk, D("0.1")],
                )
            return "written"
        except IntegrityError as exc:
            return "refused" if "cannot exceed 1.0" in str(exc) else f"error: {exc}"

    outcomes = _run_threads(50, work)
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    assert outcomes.count("written") == 10
    assert outcomes.count("refused") == 40
    assert _total(strategy) == 1


def test_concurrent_raises_of_existing_weights_never_exceed_one() -> None:
    user = _desk_customer()
    traders = [TraderFactory.create() for _ in range(5)]
    strategy = strategy_create(
        user=user,
        name="Raises",
        allocations=[{"trader": t.pk, "weight": D("0.1")} for t in traders],
    ).strategy

    def work(index: int) -> str:
        try:
            allocation_set(strategy=strategy, trader_id=traders[index % 5].pk, weight=D("0.5"))
            return "written"
        except ValidationFailed:
            return "refused"

    outcomes = _run_threads(50, work)
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    assert _total(strategy) <= 1
