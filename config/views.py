"""Portal pages that belong to no single app: the landing page and the customer dashboard."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


DASHBOARD_MARKETS = 6
DASHBOARD_COPIED_ORDERS = 10


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The customer's overview; the page keeps itself current over /ws/v1/ (static/js/live.js):
    market prices, strategy status, the orders the copy engine placed and open positions."""
    from copytrade.selectors import strategy_list
    from trading.selectors import latest_price, order_list, position_list, symbol_list

    venue = settings.TANDEM.get("DEFAULT_VENUE", "paper")
    markets = []
    for symbol in symbol_list(venue=venue).order_by("name")[:DASHBOARD_MARKETS]:
        price = latest_price(exchange=symbol.venue, symbol=symbol.name)
        markets.append({"name": symbol.name, "price": price.price if price else None})
    strategies = list(
        strategy_list(user=request.user)
        .prefetch_related("allocations__trader")
        .order_by("-created_at")[:20]
    )
    # Names for the ids a live order carries (its strategy, the trader it copies).
    names: dict[str, Any] = {"strategy": {}, "trader": {}}
    for strategy in strategies:
        names["strategy"][str(strategy.pk)] = strategy.name
        for allocation in strategy.allocations.all():
            names["trader"][str(allocation.trader_id)] = allocation.trader.alias
    context = {
        "markets": markets,
        "strategies": strategies,
        "names": names,
        "copied_orders": order_list(user=request.user)  # type: ignore[arg-type]
        .filter(is_copy_trade=True)
        .select_related("symbol", "strategy", "source_trader")
        .order_by("-created_at")[:DASHBOARD_COPIED_ORDERS],
        "positions": position_list(user=request.user, is_open=True)  # type: ignore[arg-type]
        .select_related("symbol")
        .order_by("symbol__name")[:50],
    }
    return render(request, "portal/dashboard.html", context)
