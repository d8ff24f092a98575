"""The default equity provider (``BILLING["EQUITY_PROVIDER"]``): what a strategy is worth now.

Equity = net capital flows into the strategy (``CapitalFlow``) + the PnL of its positions
(realised net of venue fees, plus unrealised at the latest mark). A deployment that can ask the
venue for a strategy's sub-account value configures a provider that does.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import F, Sum

from billing.models import CapitalFlow

ZERO = Decimal(0)


def strategy_equity(strategy: Any) -> Decimal:
    from trading.selectors import position_list

    flows = CapitalFlow.objects.filter(strategy=strategy).aggregate(total=Sum("amount"))["total"]
    pnl = (
        position_list(user=strategy.user)
        .filter(strategy=strategy)
        .aggregate(total=Sum(F("realized_pnl") - F("fees_paid") + F("unrealized_pnl")))["total"]
    )
    return max(ZERO, (flows or ZERO) + (pnl or ZERO))
