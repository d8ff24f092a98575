"""Polling leader fills and account state from the venue (copytrade.watcher does the paging)."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.utils import timezone

from copytrade.conf import setting
from copytrade.models import Trader, TraderEventSource, TraderFillCursor, TraderSource
from copytrade.watcher import InfoClient, PollResult, fills_poll
from trading.exchanges import VenueError

logger = logging.getLogger(__name__)


def info_client() -> InfoClient:
    return InfoClient(str(setting("COPY_POLL_URL")), timeout=10.0)


def trader_fills_poll(
    *, trader: Trader, client: InfoClient | None = None, now_ms: int | None = None
) -> PollResult:
    """Fetch the trader's fills since its cursor (the last processed fill time; a trader
    without one: the last ``COPY_POLL_WINDOW_MS``) and ingest them, page by page."""
    from copytrade.services.ingest import trader_fills_ingest

    own = client is None
    client = client or info_client()
    end = now_ms if now_ms is not None else int(time.time() * 1000)
    cursor, _ = TraderFillCursor.objects.get_or_create(trader=trader)
    start = cursor.last_fill_time_ms or end - int(setting("COPY_POLL_WINDOW_MS"))

    def ingest(page: list[dict[str, Any]]) -> int:
        return trader_fills_ingest(trader=trader, fills=page, source=TraderEventSource.POLL).new

    try:
        result = fills_poll(
            address=trader.src_uid, start_ms=start, end_ms=end, client=client, ingest=ingest
        )
    finally:
        if own:
            client.close()
    TraderFillCursor.objects.filter(trader=trader).update(
        last_polled_at=timezone.now(), last_error=result.error[:2000]
    )
    return result


def traders_to_poll() -> list[str]:
    """Active venue traders (not simulated ones) someone copies or staff added."""
    return [
        str(pk)
        for pk in Trader.objects.filter(is_active=True, exchange="hyperliquid")
        .exclude(source=TraderSource.DEMO)
        .values_list("pk", flat=True)
    ]


def trader_account_refresh(*, trader: Trader, client: InfoClient | None = None) -> bool:
    """Read the leader's clearinghouseState (positions, leverage, account value)."""
    from copytrade.services.traders import trader_state_sync

    own = client is None
    client = client or info_client()
    try:
        state = client.user_state(trader.src_uid)
    except VenueError as exc:
        logger.warning("account state of %s unavailable: %s", trader.src_uid, exc)
        return False
    finally:
        if own:
            client.close()
    trader_state_sync(trader=trader, state=state)
    return True
