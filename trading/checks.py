"""System checks for the trading settings whose misconfiguration would be silent."""

from __future__ import annotations

from typing import Any

from django.core import checks

from trading.stores import setting


@checks.register(checks.Tags.compatibility)
def lease_outlasts_venue_timeout(
    app_configs: Any = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """The submit protocol's no-double-placement argument needs a claim lease longer than any
    venue request: when a lease expires, the previous holder's request must be over."""
    lease = float(setting("ORDER_SUBMIT_LEASE_SECONDS"))
    timeout = float(setting("VENUE_TIMEOUT_SECONDS"))
    if lease <= timeout:
        return [
            checks.Error(
                f"TANDEM['ORDER_SUBMIT_LEASE_SECONDS'] ({lease:g}) must be longer than "
                f"TANDEM['VENUE_TIMEOUT_SECONDS'] ({timeout:g}).",
                hint="A worker whose lease expired mid-request could otherwise be overtaken by "
                "another that re-sends the order.",
                id="trading.E001",
            )
        ]
    return []
