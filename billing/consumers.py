"""Billing's part of the live ``account`` stream.

Fee events (``type: "fee"``) are published by the journal writer on commit
(billing/services/journal.py); the snapshot part ``fees`` gives today's and the month's
totals, so a client that (re)subscribes starts from the right figures.
"""

from __future__ import annotations

from typing import Any

from config import streams


def _account_fees(user: Any) -> dict[str, Any]:
    from billing.selectors import fee_totals

    totals = fee_totals(user=user)
    return {
        "as_of": totals["as_of"].isoformat(),
        "currencies": [
            {
                "currency": row["currency"],
                "today": str(row["today"]),
                "month_to_date": str(row["month_to_date"]),
                "count": row["count"],
            }
            for row in totals["currencies"]
        ],
    }


streams.register_account_part("fees", _account_fees)
