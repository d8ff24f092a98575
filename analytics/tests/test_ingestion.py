"""Ingestion end to end on the embedded ClickHouse: listener -> Redis buffer -> drain ->
tables, deduplication of retried batches, quarantine, ClickHouse outages, dead letters."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from analytics import selectors, services
from analytics.batches import FACTOR, CopyTradeEventRow, TickBatch
from analytics.buffer import Buffer
from analytics.clickhouse.client import ClickHouse, get_client
from analytics.feeds.hyperliquid import trader_events_from_fills
from analytics.services.drains import drain_write
from analytics.tests.conftest import load_json, recent
from trading.marketdata import MarketSimulator, ticks_publish

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(180)]


def counts(ch: ClickHouse) -> dict[str, int]:
    def one(sql: str) -> int:
        return int(ch.execute(sql)[0][0])

    return {
        "ticks": one("SELECT count() FROM market_ticks_raw"),
        "candles_1m": one("SELECT sum(trade_count) FROM market_ohlcv_1min"),
        "candles_1d": one("SELECT sum(trade_count) FROM market_ohlcv_1d"),
        "quarantine": one("SELECT count() FROM data_quality_quarantine"),
    }


def simulated(steps: int, *, start: datetime | None = None, seed: int = 11) -> list[Any]:
    sim = MarketSimulator(
        seed=seed, start=start or datetime.now(tz=UTC) - timedelta(seconds=steps + 5)
    )
    return [tick for _ in range(steps) for tick in sim.step(1.0)]


def spiked(ticks: list[Any], index: int, factor: str = "1.5") -> list[Any]:
    """A copy of ``ticks`` where tick ``index`` has its price multiplied (a bad print)."""
    out = list(ticks)
    bad = out[index]
    out[index] = type(bad)(**{**bad.__dict__, "price": bad.price * Decimal(factor)})
    return out


# --------------------------------------------------------------------------- direct path


def test_a_retried_batch_leaves_every_count_unchanged(clickhouse: ClickHouse) -> None:
    ticks = spiked(simulated(50), 40)
    batch = TickBatch.from_ticks(ticks)
    first = services.market_ticks_ingest(batch=batch, batch_id="batch-1")
    assert first.accepted == len(ticks) - 1
    assert first.quarantined == {"price_deviation": 1}
    before = counts(clickhouse)
    assert before == {"ticks": 299, "candles_1m": 299, "candles_1d": 299, "quarantine": 1}

    again = services.market_ticks_ingest(batch=batch, batch_id="batch-1")
    assert again.duplicate_batch
    assert again.accepted == 0
    assert counts(clickhouse) == before


def test_same_rows_in_a_new_batch_are_quarantined_as_duplicates(clickhouse: ClickHouse) -> None:
    batch = TickBatch.from_ticks(simulated(10))
    services.market_ticks_ingest(batch=batch, batch_id="a")
    resent = services.market_ticks_ingest(batch=batch, batch_id="b")
    assert resent.accepted == 0
    assert resent.quarantined == {"duplicate": 60}
    assert counts(clickhouse)["ticks"] == 60
    rows = selectors.quarantined_rows(reason="duplicate", limit=100)
    assert len(rows) == 60
    assert all("does not advance" in r["detail"] for r in rows)


def test_a_quarantined_row_can_be_found_with_its_reason(clickhouse: ClickHouse) -> None:
    ticks = spiked(simulated(30), 100, "0.5")
    bad = ticks[100]
    services.market_ticks_ingest(batch=TickBatch.from_ticks(ticks), batch_id="q")
    [row] = selectors.quarantined_rows(dataset="market_ticks")
    assert row["reason"] == "price_deviation"
    assert row["symbol"] == bad.symbol
    assert row["sequence_number"] == bad.sequence_number
    assert row["price"] == bad.price
    assert "-50.00%" in row["detail"]
    assert f'"sequence_number":{bad.sequence_number}' in row["payload"]
    # It is not in the market data.
    assert not clickhouse.execute(
        "SELECT 1 FROM market_ticks_raw WHERE sequence_number = {s:UInt64}",
        {"s": bad.sequence_number},
    )


def test_a_crash_after_the_insert_before_the_ack_adds_nothing_on_retry(
    clickhouse: ClickHouse,
) -> None:
    """The drain inserted, then died before removing the batch from Redis: the next drain
    takes the same items with the same deduplication token, and ClickHouse drops them."""
    ticks = simulated(40)
    services.tick_batch_enqueue(batch=TickBatch.from_ticks(ticks[:120]))
    services.tick_batch_enqueue(batch=TickBatch.from_ticks(ticks[120:]))
    buffer = Buffer("ticks")
    with buffer.locked() as acquired:
        assert acquired
        claim = buffer.claim(max_rows=1_000_000)
        assert claim is not None
        assert claim.count == 2
        drain_write(get_client(), "ticks", claim)  # inserted ... and "crashed": no ack
    after_crash = counts(clickhouse)
    assert after_crash == {"ticks": 240, "candles_1m": 240, "candles_1d": 240, "quarantine": 0}
    result = services.buffer_drain(stream="ticks")
    assert result.batches == 2
    assert counts(clickhouse) == after_crash
    assert buffer.pending_items() == 0
    assert buffer.pending_rows() == 0


def test_an_item_enqueued_twice_is_inserted_once(clickhouse: ClickHouse) -> None:
    batch = TickBatch.from_ticks(simulated(5))
    services.tick_batch_enqueue(batch=batch, batch_id="producer-retry")
    services.buffer_drain(stream="ticks")
    services.tick_batch_enqueue(batch=batch, batch_id="producer-retry")
    result = services.buffer_drain(stream="ticks")
    assert result.rows == 0
    assert counts(clickhouse) == {"ticks": 30, "candles_1m": 30, "candles_1d": 30, "quarantine": 0}


# --------------------------------------------------------------------------- listener path


def test_published_ticks_reach_clickhouse_through_the_buffer(
    clickhouse: ClickHouse, symbols: Any
) -> None:
    ticks = simulated(40)
    for start in range(0, len(ticks), 6):
        ticks_publish(ticks[start : start + 6])  # trading's publisher calls our listener
    buffer = Buffer("ticks")
    assert buffer.pending_rows() == len(ticks)
    assert counts(clickhouse)["ticks"] == 0  # publishing never waited for ClickHouse
    services.buffers_drain_all()
    assert counts(clickhouse)["ticks"] == len(ticks)
    assert buffer.pending_rows() == 0


def test_flush_by_size_drains_without_waiting_for_beat(
    clickhouse: ClickHouse, settings: Any
) -> None:
    settings.ANALYTICS = {**settings.ANALYTICS, "TICK_FLUSH_ROWS": 100}
    ticks = simulated(20)
    services.ticks_listener(ticks[:60])  # 60 rows: below the threshold
    assert counts(clickhouse)["ticks"] == 0
    services.ticks_listener(ticks[60:])  # past 100: a drain is requested (eager here)
    assert counts(clickhouse)["ticks"] == 120


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_rows_wait_in_redis_while_clickhouse_is_down_and_catch_up(
    clickhouse: ClickHouse, settings: Any
) -> None:
    real_url = settings.CLICKHOUSE_URL
    settings.CLICKHOUSE_URL = f"clickhouse://default@127.0.0.1:{_dead_port()}/tandem"
    ticks = simulated(30)
    services.ticks_listener(ticks[:90])
    services.ticks_listener(ticks[90:])
    down = services.buffer_drain(stream="ticks")
    assert down.deferred
    assert "Error" in down.error
    assert Buffer("ticks").pending_rows() == 180
    settings.CLICKHOUSE_URL = real_url
    results = services.buffers_drain_all()
    assert sum(r.rows for r in results if r.stream == "ticks") == 180
    assert counts(get_client())["ticks"] == 180
    assert Buffer("ticks").pending_rows() == 0


def test_staleness_is_judged_at_arrival_not_at_drain(clickhouse: ClickHouse) -> None:
    """Rows that waited in Redis through an outage are not stale because they waited: a
    batch that arrived an hour ago with then-fresh ticks is accepted when drained now."""
    from analytics.buffer import BufferItem

    arrived = datetime.now(tz=UTC) - timedelta(hours=1)
    ticks = simulated(5, start=arrived - timedelta(seconds=10))
    buffer = Buffer("ticks")
    item = BufferItem(
        id="arrived-an-hour-ago",
        rows=len(ticks),
        enqueued_at=arrived.timestamp(),
        payload=TickBatch.from_ticks(ticks).to_bytes(),
    )
    buffer.redis.rpush(buffer.list_key, item.encode())
    buffer.redis.incrby(buffer.rows_key, item.rows)
    result = services.buffer_drain(stream="ticks")
    assert result.rows == 30
    assert result.quarantined == 0
    # The same ticks arriving now are an hour old: stale.
    late = services.market_ticks_ingest(
        batch=TickBatch.from_ticks(simulated(5, start=arrived, seed=5))
    )
    assert late.quarantined == {"stale_timestamp": 30}


def test_a_batch_clickhouse_keeps_refusing_goes_to_dead_letters(
    clickhouse: ClickHouse, settings: Any
) -> None:
    settings.ANALYTICS = {**settings.ANALYTICS, "DRAIN_MAX_ATTEMPTS": 2}
    buffer = Buffer("candles")
    buffer.push(b"[{not json", rows=1)
    with pytest.raises(ValueError, match=r"Expecting"):
        services.buffer_drain(stream="candles")
    dead = services.buffer_drain(stream="candles")
    assert dead.dead_lettered == 1
    assert buffer.pending_items() == 0
    assert buffer.dead_items() == 1
    report = selectors.quality_report()
    assert {
        "stream": "candles",
        "pending_rows": 0,
        "pending_batches": 0,
        "dead_batches": 1,
    } in report["buffers"]


# --------------------------------------------------------------------------- traders, copies


def test_trader_fills_are_deduplicated_on_event_hash(
    clickhouse: ClickHouse, shared_data: Any
) -> None:
    fills = recent(load_recorded_fills(shared_data))[:120]
    events = trader_events_from_fills(fills, trader_id="t-1")
    first = services.trader_events_ingest(events=events, batch_id="fills-1")
    assert first.accepted == 120
    # The watcher re-delivers the same fills in a new batch (at-least-once): no new rows.
    services.trader_events_ingest(events=events[:60], batch_id="fills-2")
    final = clickhouse.execute("SELECT count() FROM trader_events FINAL")[0][0]
    assert final == 120
    assert len({e.event_hash for e in events}) == 120
    # The same batch id again is skipped before ClickHouse is touched.
    assert services.trader_events_ingest(events=events, batch_id="fills-1").duplicate_batch


def load_recorded_fills(shared_data: Any) -> list[dict[str, Any]]:
    import json

    return json.loads((shared_data / "hyperliquid" / "user_fills.json").read_text())


def test_future_fills_are_quarantined_not_dropped(clickhouse: ClickHouse) -> None:
    fills = recent(load_json("fills_synthetic.json"))[:3]
    future = dict(fills[0], time=int((datetime.now(tz=UTC) + timedelta(days=2)).timestamp() * 1000))
    events = trader_events_from_fills([future, *fills[1:]], trader_id="t-2")
    result = services.trader_events_ingest(events=events)
    assert result.accepted == 2
    assert result.quarantined == {"future_timestamp": 1}
    [row] = selectors.quarantined_rows(dataset="trader_events")
    assert row["reason"] == "future_timestamp"


def test_copy_events_are_buffered_then_recorded_once(clickhouse: ClickHouse, user: Any) -> None:
    event = CopyTradeEventRow(
        strategy_id="3b4f0b9e-7a51-4f5e-9a55-3d7c1b1e2f00",
        user_id=str(user.pk),
        source_trader_id="9f6c1d2e-0000-4000-8000-000000000001",
        event_type="order_filled",
        symbol="BTC",
        timestamp=datetime.now(tz=UTC) - timedelta(minutes=1),
        latency_ms=120,
        slippage_bps=3,
        quantity=Decimal("0.5"),
        price=Decimal("95000"),
        leader_price=Decimal("94990"),
        side="buy",
        realized_pnl=Decimal("12.5"),
        fee=Decimal("0.25"),
        metadata={"cloid": "0xabc", "note": "ünïcode"},
    )
    event_id = services.copy_trade_events_record(event=event)
    services.copy_trade_events_record(event=event)  # recorded twice by a retried task
    services.buffers_drain_all()
    assert clickhouse.execute("SELECT count() FROM copy_trade_events FINAL")[0][0] == 1
    stored = clickhouse.query_dicts("SELECT event_id, metadata FROM copy_trade_events")[0]
    assert stored["event_id"] == event_id
    assert '"note": "ünïcode"' in stored["metadata"]


def test_every_dataset_round_trips_through_its_buffer(
    clickhouse: ClickHouse, shared_data: Any
) -> None:
    from analytics.feeds import hyperliquid as hl

    data = shared_data / "hyperliquid"
    import json

    funding = hl.funding_from_history(json.loads((data / "funding_history_btc.json").read_text()))
    book = hl.book_snapshot_from_l2(json.loads((data / "l2_book_dydx.json").read_text()))
    now = datetime.now(tz=UTC)
    recent_funding = [
        type(f)(**{**f.__dict__, "timestamp": now - timedelta(hours=i + 1)})
        for i, f in enumerate(funding[:48])
    ]
    recent_book = type(book)(**{**book.__dict__, "timestamp": now - timedelta(seconds=5)})
    services.rows_enqueue(dataset="funding", rows=recent_funding)
    services.rows_enqueue(dataset="book_snapshots", rows=[recent_book])
    services.buffers_drain_all()
    assert clickhouse.execute("SELECT count() FROM market_funding FINAL")[0][0] == 48
    bids, asks = clickhouse.execute("SELECT bid_prices, ask_sizes FROM market_book_snapshots")[0]
    assert bids[0] == Decimal("2.111")
    assert len(bids) == 20
    assert len(asks) == 20


def test_enqueue_refuses_rows_of_the_wrong_type() -> None:
    from config.errors import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.trader_events_enqueue(events=[object()])  # type: ignore[list-item]


def test_tick_batch_from_arrays_is_the_fast_path(clickhouse: ClickHouse) -> None:
    n = 50_000
    now = np.int64(datetime.now(tz=UTC).timestamp() * 1e9)
    batch = TickBatch.from_arrays(
        timestamp=now - np.arange(n, 0, -1, dtype=np.int64) * 1_000_000,
        symbol=np.array(["BTC", "ETH"])[np.arange(n) % 2],
        exchange=["paper"] * n,
        sequence_number=np.arange(1, n + 1, dtype=np.uint64),
        price=np.full(n, 100 * FACTOR, dtype=np.int64),
        volume=np.full(n, FACTOR // 10, dtype=np.int64),
    )
    result = services.market_ticks_ingest(batch=batch, batch_id="fast")
    assert result.accepted == n
    assert clickhouse.execute("SELECT count(), sum(volume) FROM market_ticks_raw")[0] == (
        n,
        Decimal("5000"),
    )
