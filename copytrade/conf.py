"""Copy-trading settings: ``settings.TANDEM[name]`` or these defaults.

* ``COPY_MAX_SIGNAL_AGE_SECONDS`` -- a leader fill seen later than this after it happened is not
  copied (``stale_signal``): chasing an old trade at today's price is not copying it. None
  disables the rule (replays, backtests).
* ``COPY_EQUITY_MAX_AGE_SECONDS`` -- how old a cached follower account value may be before the
  engine asks the venue again.
* ``COPY_EQUITY_FETCH_LIMIT`` -- how many missing or stale follower equities one fan-out may
  fetch from venues inline; beyond that, proportional copies wait for the refresh task
  (``follower_equity_unknown``) rather than hold everyone else up.
* ``COPY_POLL_URL`` -- Hyperliquid's info endpoint for fill polling and leader account reads
  (defaults to ``HYPERLIQUID_API_URL``); ``COPY_WS_URL`` its websocket.
* ``COPY_POLL_WINDOW_MS`` -- how far back a trader without a cursor is polled.
* ``COPY_WS_TRADERS_PER_CONNECTION`` -- watched traders per websocket (the venue allows 10
  user subscriptions per connection).
* ``COPY_DEMO_TRADERS`` -- how many simulated traders the demo keeps trading.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    "COPY_MAX_SIGNAL_AGE_SECONDS": 120,
    "COPY_EQUITY_MAX_AGE_SECONDS": 60,
    "COPY_EQUITY_FETCH_LIMIT": 50,
    "COPY_POLL_URL": None,
    "COPY_WS_URL": "wss://api.hyperliquid.xyz/ws",
    "COPY_POLL_WINDOW_MS": 3_600_000,
    "COPY_WS_TRADERS_PER_CONNECTION": 10,
    "COPY_DEMO_TRADERS": 4,
}


def setting(name: str) -> Any:
    tandem: dict[str, Any] = getattr(settings, "TANDEM", {})
    if name in tandem:
        return tandem[name]
    if name == "COPY_POLL_URL":
        return tandem.get("HYPERLIQUID_API_URL", "https://api.hyperliquid.xyz")
    return DEFAULTS[name]
