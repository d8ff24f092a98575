"""Leader fills and copy events in ClickHouse (embedded chDB by default): ``trader_events`` gets
each fill once however often it is exported, ``copy_trade_events`` gets each decision and each
order's outcome with its latency and slippage against the leader."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from analytics.services import buffer_drain
from copytrade.models import TraderEvent
from copytrade.services import copy_outcomes_record, trader_events_export, trader_fills_ingest
from copytrade.tests.conftest import fill

D = Decimal
pytestmark = pytest.mark.django_db


def test_fills_reach_trader_events_once_and_copies_reach_copy_trade_events(
    clickhouse: Any,
    leader: Any,
    follower: Any,
    market: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    strategy = follower(leader, equity="10000")
    t = int(time.time() * 1000)
    with django_capture_on_commit_callbacks(execute=True):
        trader_fills_ingest(
            trader=leader,
            fills=[
                fill("ETH", "buy", "6", "2500", start="0", time_ms=t, oid=1),
                fill("ETH", "buy", "4", "2500", start="0", time_ms=t, oid=1),
                fill("BTC", "sell", "1", "50000", start="0", time_ms=t + 1, oid=2),
            ],
        )
    # exported after commit (the task ran); at least once: exporting again is harmless
    assert not TraderEvent.objects.filter(exported_at__isnull=True).exists()
    TraderEvent.objects.update(exported_at=None)
    assert trader_events_export() == 3
    buffer_drain(stream="trader_events")
    rows = clickhouse.execute(
        "SELECT symbol, action, side, quantity, prev_exposure, new_exposure "
        "FROM trader_events FINAL WHERE trader_id = {t:String} ORDER BY symbol, quantity",
        {"t": str(leader.pk)},
    )
    assert [(r[0], r[1], r[2], D(r[3])) for r in rows] == [
        ("BTC", "open", "short", D(1)),
        ("ETH", "open", "long", D(4)),
        ("ETH", "open", "long", D(6)),
    ]

    copy_outcomes_record()
    buffer_drain(stream="copy_trade_events")
    events = clickhouse.execute(
        "SELECT event_type, symbol, status, latency_ms, slippage_bps, toString(leader_price) "
        "FROM copy_trade_events FINAL WHERE strategy_id = {s:String} ORDER BY event_type, symbol",
        {"s": str(strategy.pk)},
    )
    kinds = [(e[0], e[1], e[2]) for e in events]
    assert kinds == [
        ("decision", "BTC", "success"),
        ("decision", "ETH", "success"),
        ("order_filled", "BTC", "success"),
        ("order_filled", "ETH", "success"),
    ]
    filled = {e[1]: e for e in events if e[0] == "order_filled"}
    # the paper venue fills at its touch, a spread away from the leader: a few bps worse
    assert 0 <= filled["ETH"][4] <= 10
    assert D(filled["ETH"][5]) == D(2500)
    assert filled["ETH"][3] >= 0
    # recording again adds nothing
    assert copy_outcomes_record() == 0
