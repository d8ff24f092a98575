"""``manage.py watch_traders``: the live ``userFills`` websockets for the watched Hyperliquid
traders (ten per connection, as the venue allows), feeding ``trader_fills_ingest``. Everyone
beyond ``--max-connections`` is left to polling (the ``traders_poll_task`` beat), which also
catches up after a restart from each trader's cursor."""

from __future__ import annotations

import signal
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from copytrade.conf import setting
from copytrade.models import Trader, TraderEventSource, TraderSource
from copytrade.watcher import FillWatcher


class Command(BaseCommand):
    help = "Watch leaders' fills over Hyperliquid websockets (10 traders per connection)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-connections", type=int, default=10)

    def handle(self, *args: Any, **options: Any) -> None:  # pragma: no cover - live venue
        from copytrade.services import trader_fills_ingest, trader_fills_poll

        per = int(setting("COPY_WS_TRADERS_PER_CONNECTION"))
        traders = list(
            Trader.objects.filter(is_active=True, exchange="hyperliquid")
            .exclude(source=TraderSource.DEMO)
            .order_by("created_at")[: per * options["max_connections"]]
        )
        by_address = {t.src_uid.lower(): t for t in traders}
        for trader in traders:  # catch up from each cursor before going live
            trader_fills_poll(trader=trader)

        def on_fills(address: str, fills: list[dict[str, Any]], snapshot: bool) -> None:
            close_old_connections()
            trader_fills_ingest(
                trader=by_address[address], fills=fills, source=TraderEventSource.WEBSOCKET
            )

        base = str(setting("COPY_POLL_URL"))
        watchers = [
            FillWatcher(base_url=base, addresses=list(by_address)[i : i + per], on_fills=on_fills)
            for i in range(0, len(by_address), per)
        ]
        for watcher in watchers:
            watcher.start()
        self.stdout.write(f"watching {len(by_address)} traders on {len(watchers)} connections")
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not stopping:
            time.sleep(1)
        for watcher in watchers:
            watcher.stop()
