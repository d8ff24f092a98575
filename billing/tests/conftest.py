"""Fixtures for the billing tests: the plans of the data migration (re-created when a
transactional test elsewhere emptied the tables), strategies with allocations, copied fills."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from billing.models import Plan

D = Decimal


@pytest.fixture(autouse=True)
def billing_plans(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("django_db") is None and not {
        "db",
        "transactional_db",
    } & set(request.fixturenames):
        return
    import importlib

    plans = importlib.import_module("billing.migrations.0003_default_plans").PLANS
    for values in plans:
        Plan.objects.get_or_create(code=values["code"], defaults={**values, "currency": "USDC"})


@pytest.fixture
def plans(db: Any) -> dict[str, Plan]:
    return {plan.code: plan for plan in Plan.objects.all()}


@pytest.fixture
def strategy(db: Any) -> Any:
    """A strategy of a fresh customer following one trader (weight 1)."""
    from billing.tests.factories import AllocationFactory

    return AllocationFactory.create().strategy


@pytest.fixture
def portfolio(db: Any) -> Any:
    """A strategy following three traders with weights 0.5 / 0.3 / 0.2."""
    from billing.tests.factories import AllocationFactory, StrategyFactory

    strategy = StrategyFactory.create()
    for weight in ("0.5", "0.3", "0.2"):
        AllocationFactory.create(strategy=strategy, weight=D(weight))
    return strategy


@pytest.fixture
def copied_fill(db: Any) -> Callable[..., Any]:
    """copied_fill(strategy, size="1", price="100", venue="hyperliquid", trader=None): a fill
    of a copy-trade order of ``strategy``, written directly (the trading services' own path is
    exercised by test_fill_listener.py)."""
    from accounts.tests.factories import AgentWalletFactory
    from trading.models import Fill, Position
    from trading.tests.factories import OrderFactory, SymbolFactory

    counter = iter(range(1, 10**9))

    def make(
        strategy: Any,
        size: str = "1",
        price: str = "100",
        venue: str = "hyperliquid",
        trader: Any = None,
        filled_at: datetime | None = None,
    ) -> Fill:
        n = next(counter)
        user = strategy.user
        wallet = user.agent_wallets.filter(exchange=venue).first() or AgentWalletFactory.create(
            user=user, exchange=venue
        )
        symbol = SymbolFactory.create(venue=venue, name="ETH")
        if trader is None:
            allocation = strategy.allocations.order_by("created_at").first()
            trader = allocation.trader if allocation else None
        order = OrderFactory.create(
            user=user,
            agent_wallet=wallet,
            symbol=symbol,
            strategy=strategy,
            is_copy_trade=True,
            source_trader=trader,
            quantity=D(size),
            price=D(price),
        )
        position, _ = Position.objects.get_or_create(
            user=user, agent_wallet=wallet, symbol=symbol, defaults={"exchange": venue}
        )
        at = filled_at or datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
        return Fill.objects.create(
            exchange=venue,
            venue_fill_id=f"billing-{uuid.uuid4().hex[:12]}-{n}",
            user=user,
            agent_wallet=wallet,
            order=order,
            position=position,
            symbol=symbol,
            side="buy",
            price=D(price),
            size=D(size),
            direction="Open Long",
            time_ms=int(at.timestamp() * 1000),
            filled_at=at,
            tx_hash=f"0x{n:064x}",
        )

    return make


@pytest.fixture
def check_journal() -> Callable[[], None]:
    """Fire the deferred constraints now (as a commit would) and fail on any violation."""

    def check() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    return check
