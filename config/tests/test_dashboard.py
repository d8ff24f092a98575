"""The dashboard: copied orders with their strategy and trader, in a constant number of
queries whatever the number of strategies, traders and orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db


def _customer_with(rows: int) -> Any:
    from accounts.tests.factories import AgentWalletFactory, UserFactory
    from copytrade.tests.factories import AllocationFactory, StrategyFactory, TraderFactory
    from trading.tests.factories import OrderFactory, SymbolFactory

    user = UserFactory.create()
    wallet = AgentWalletFactory.create(user=user, exchange="paper")
    symbol = SymbolFactory.create()
    for n in range(rows):
        strategy = StrategyFactory.create(user=user, name=f"Portfolio {n}")
        trader = TraderFactory.create(alias=f"Leader {n}")
        AllocationFactory.create(strategy=strategy, trader=trader, weight=Decimal("0.5"))
        OrderFactory.create(
            user=user,
            agent_wallet=wallet,
            symbol=symbol,
            is_copy_trade=True,
            strategy=strategy,
            source_trader=trader,
        )
    OrderFactory.create(user=user, agent_wallet=wallet, symbol=symbol)  # not a copy
    return user


def _dashboard(client: Any, user: Any) -> tuple[Any, int]:
    client.force_login(user)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/dashboard/")
    assert response.status_code == 200
    return response, len(queries)


def test_copied_orders_show_their_strategy_and_trader(client: Any) -> None:
    user = _customer_with(1)
    response, _ = _dashboard(client, user)
    html = response.content.decode()
    assert "Copied orders" in html
    assert "Portfolio 0" in html
    assert "Leader 0" in html
    # only copied orders are listed, and the live script can name the ids it receives
    assert html.count('<tr data-id="') == 1
    names = response.context["names"]
    strategy = user.copy_strategies.get()
    assert names["strategy"] == {str(strategy.pk): "Portfolio 0"}
    assert list(names["trader"].values()) == ["Leader 0"]


def test_the_dashboard_runs_the_same_queries_for_1_and_50_rows(client: Any) -> None:

    _, one = _dashboard(client, _customer_with(1))
    client.logout()
    many_user = _customer_with(50)
    response, many = _dashboard(client, many_user)
    assert one == many
    assert response.context["copied_orders"].count() == 10  # the newest ten
    assert len(response.context["names"]["trader"]) == 20  # the newest twenty strategies'
