"""``manage.py analytics_feed --coins BTC,ETH``: the live Hyperliquid market feed into analytics.

Subscribes (hyperliquid-python-sdk's websocket manager) to ``trades``, ``l2Book``, ``candle``
and ``activeAssetCtx`` for each coin and hands every message to
``analytics.services.feed_message_ingest``, which parses it (analytics.feeds.hyperliquid,
tested against the recorded shapes) and appends it to the Redis buffers; the Celery drain
inserts into ClickHouse. The connection itself needs the venue, so it is not exercised by the
offline test suite; everything after the socket is.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from analytics import services
from analytics.feeds.hyperliquid import FeedError

log = logging.getLogger("analytics.feed")
CHANNELS = ("trades", "l2Book", "candle", "activeAssetCtx")


class Command(BaseCommand):
    help = "Stream Hyperliquid market data into the analytics buffers until interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--coins", required=True, help="comma-separated coins, e.g. BTC,ETH")
        parser.add_argument("--channels", default=",".join(CHANNELS))
        parser.add_argument("--candle-interval", default="1m")

    def handle(self, *args: Any, **options: Any) -> None:
        from hyperliquid.info import Info

        coins = [c.strip() for c in options["coins"].split(",") if c.strip()]
        channels = [c for c in options["channels"].split(",") if c in CHANNELS]
        info = Info(settings.TANDEM["HYPERLIQUID_API_URL"], skip_ws=False)

        def on_message(message: Any) -> None:
            try:
                services.feed_message_ingest(message=message)
            except FeedError:
                log.warning("unexpected %s message shape", message.get("channel"), exc_info=True)

        for coin in coins:
            for channel in channels:
                subscription: dict[str, Any] = {"type": channel, "coin": coin}
                if channel == "candle":
                    subscription["interval"] = options["candle_interval"]
                info.subscribe(subscription, on_message)
        self.stdout.write(f"streaming {', '.join(channels)} for {', '.join(coins)}; Ctrl-C stops")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            info.disconnect_websocket()
