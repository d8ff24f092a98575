"""The analytics stack on an embedded server of its own: started fresh, migrated, written,
then stopped and started again on the same data directory -- everything is still there,
queries answer the same, and a retried insert is still recognised."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings as django_settings

from analytics import selectors, services
from analytics.batches import TickBatch
from analytics.clickhouse import migrator
from analytics.clickhouse.client import ClickHouse, get_client
from analytics.clickhouse.embedded_server import SpawnedServer, spawn
from analytics.feeds.hyperliquid import trader_events_from_fills
from analytics.tests.conftest import days_ago, load_json, recent
from copytrade.models import Trader
from trading.marketdata import MarketSimulator

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(300), pytest.mark.embedded]
DATABASE = "restart_check"


@pytest.fixture
def own_server(tmp_path: Path, settings: Any) -> Iterator[dict[str, Any]]:
    holder: dict[str, Any] = {"dir": tmp_path / "data", "log": tmp_path / "server.log"}

    def start() -> SpawnedServer:
        server = spawn(holder["dir"], log_file=holder["log"])
        holder["server"] = server
        settings.CLICKHOUSE_URL = f"clickhouse://default@{server.host}:{server.port}/{DATABASE}"
        settings.CLICKHOUSE_DATABASE = DATABASE
        return server

    holder["start"] = start
    yield holder
    server = holder.get("server")
    if server is not None:
        server.stop()
    get_client().close()


def snapshot(symbols: Any, trader: Trader) -> dict[str, Any]:
    ch = get_client()
    start = days_ago(0) - timedelta(hours=3)
    return {
        "tables": ch.execute(
            "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
        ),
        "ticks": ch.execute("SELECT count(), sum(volume) FROM market_ticks_raw"),
        "candles_1m": selectors.candles(symbol="BTC", exchange="paper", interval="1m", start=start),
        "candles_4h": selectors.candles(
            symbol="ETH", exchange="paper", interval="4h", start=start - timedelta(days=1)
        ),
        "kpis": selectors.trader_kpis(trader_id=trader.pk),
        "quarantine": selectors.quarantined_rows(limit=10),
    }


def test_data_survives_a_restart_of_the_embedded_server(
    own_server: dict[str, Any], symbols: Any
) -> None:
    server = own_server["start"]()
    admin = ClickHouse(server.url, pool_size=1)
    assert migrator.migrate(admin, database=DATABASE).applied == ["0001_initial"]

    start = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    sim = MarketSimulator(seed=8, start=start)
    ticks = [t for _ in range(600) for t in sim.step(10)]
    ticks[77] = type(ticks[77])(**{**ticks[77].__dict__, "price": ticks[77].price * 2})
    services.market_ticks_ingest(
        batch=TickBatch.from_ticks(ticks), batch_id="before-restart", backfill=True
    )
    trader = Trader.objects.create(alias="r", src_uid=uuid.uuid4().hex, exchange="hyperliquid")
    services.trader_events_ingest(
        events=trader_events_from_fills(
            recent(load_json("fills_synthetic.json"), days_back=1), trader_id=str(trader.pk)
        )
    )
    services.trader_kpis_refresh(as_of=days_ago(0).date())
    token = {"insert_deduplication_token": f"restart-{uuid.uuid4().hex}"}
    stamp = np.array([int(datetime.now(tz=UTC).timestamp() * 1e9)], dtype=np.int64)
    get_client().insert_columns(
        "system_metrics",
        {
            "timestamp": stamp // 1_000_000,
            "metric_category": ["t"],
            "metric_name": ["n"],
            "metric_value": np.array([1.0]),
            "unit": [""],
        },
        settings=token,
    )
    before = snapshot(symbols, trader)
    assert before["ticks"][0][0] == len(ticks) - 1
    assert len(before["quarantine"]) == 1
    assert before["kpis"]["periods"]["all"]["trade_count"] == 199

    get_client().close()
    admin.close()
    assert server.stop() == 0, own_server["log"].read_text()
    restarted = own_server["start"]()
    assert restarted.port != server.port or restarted.process.pid != server.process.pid

    assert snapshot(symbols, trader) == before
    admin = ClickHouse(restarted.url, pool_size=1)
    try:
        assert migrator.migrate(admin, database=DATABASE).applied == []  # recorded in ClickHouse
    finally:
        admin.close()
    # The deduplication log is on disk too: the same token after the restart adds nothing.
    get_client().insert_columns(
        "system_metrics",
        {
            "timestamp": stamp // 1_000_000,
            "metric_category": ["t"],
            "metric_name": ["n"],
            "metric_value": np.array([1.0]),
            "unit": [""],
        },
        settings=token,
    )
    assert get_client().execute(
        "SELECT count() FROM system_metrics WHERE metric_category = 't'"
    ) == [(1,)]
    # And it keeps working: new rows land next to the old ones.
    more = [t for _ in range(10) for t in sim.step(1)]
    result = services.market_ticks_ingest(batch=TickBatch.from_ticks(more), backfill=True)
    assert result.accepted == 60
    assert get_client().execute("SELECT count() FROM market_ticks_raw")[0][0] == len(ticks) - 1 + 60
    assert django_settings.CLICKHOUSE_DATABASE == DATABASE
