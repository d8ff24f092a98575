"""Analytics portal pages: market candles, readable by anyone (thin: parse, call selectors)."""

from __future__ import annotations

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from analytics import selectors
from analytics.api.serializers import SYMBOL_REGEX
from config.errors import DomainError


class MarketForm(forms.Form):
    symbol = forms.RegexField(regex=SYMBOL_REGEX, max_length=32, initial="BTC")
    interval = forms.ChoiceField(choices=[(i, i) for i in selectors.INTERVALS], initial="1h")


def markets(request: HttpRequest) -> HttpResponse:
    from django.conf import settings

    from trading.selectors import symbol_list

    exchange = str(settings.TANDEM.get("MARKET_DATA_VENUE") or "hyperliquid")
    form = MarketForm(request.GET or {"symbol": "BTC", "interval": "1h"})
    candles: list[dict[str, object]] = []
    if form.is_valid():
        try:
            candles = selectors.candles(
                symbol=form.cleaned_data["symbol"],
                exchange=exchange,
                interval=form.cleaned_data["interval"],
                limit=48,
            )
        except DomainError as exc:
            for field, errors in (exc.fields or {"symbol": [exc.message]}).items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
    context = {
        "form": form,
        "exchange": exchange,
        "symbols": [s.name for s in symbol_list(venue=exchange)],
        "candles": list(reversed(candles)),
    }
    return render(request, "analytics/markets.html", context)
