"""Trading portal pages: the customer's positions, orders and fills (server-rendered)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from trading import selectors


@login_required
def overview(request: HttpRequest) -> HttpResponse:
    user = request.user
    context = {
        "positions": selectors.position_list(user=user, is_open=True)[:50],  # type: ignore[arg-type]
        "orders": selectors.order_list(user=user).order_by("-created_at")[:25],  # type: ignore[arg-type]
        "fills": selectors.fill_list(user=user).order_by("-filled_at")[:25],  # type: ignore[arg-type]
    }
    return render(request, "trading/overview.html", context)
