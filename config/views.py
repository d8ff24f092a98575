"""Portal pages that belong to no single app: the landing page and the customer dashboard."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html")


DASHBOARD_MARKETS = 6


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The customer's overview; the page keeps itself current over /ws/v1/ (static/js/live.js):
    market prices, strategy status and open positions."""
    from copytrade.selectors import strategy_list
    from trading.selectors import latest_price, position_list, symbol_list

    venue = settings.TANDEM.get("DEFAULT_VENUE", "paper")
    markets = []
    for symbol in symbol_list(venue=venue).order_by("name")[:DASHBOARD_MARKETS]:
        price = latest_price(exchange=symbol.venue, symbol=symbol.name)
        markets.append({"name": symbol.name, "price": price.price if price else None})
    context = {
        "markets": markets,
        "strategies": strategy_list(user=request.user).order_by("-created_at")[:20],
        "positions": position_list(user=request.user, is_open=True)  # type: ignore[arg-type]
        .select_related("symbol")
        .order_by("symbol__name")[:50],
    }
    return render(request, "portal/dashboard.html", context)
