"""Ingestion: market ticks, trader fills, copy events and the smaller market datasets.

Two ways in, for every dataset:

* ``*_enqueue`` (and the tick listener, and :func:`copy_trade_events_record`): append one
  batch to the dataset's Redis buffer and return at once -- what the web process, the feed and
  the copy engine call; they never wait for ClickHouse. A drain (:func:`buffer_drain`, Celery)
  inserts buffered batches later, at least once, with deduplication tokens.
* ``*_ingest``: validate and insert now (drains, backfills, benchmarks). Pass a stable
  ``batch_id`` to make a retry harmless: the insert carries ``insert_deduplication_token`` and
  the id is remembered in Redis, so the same batch twice adds nothing.

Every row that fails a quality check goes to ``data_quality_quarantine`` with its reason
(analytics.quality); nothing is dropped silently.

For the copytrade engineer -- the calls to make:

* a leader's fills: ``trader_events_enqueue(events=trader_events_from_fills(fills,
  trader_id=str(trader.pk)))`` (``analytics.feeds.hyperliquid``); re-sending a fill is harmless
  (``trader_events`` is deduplicated on ``event_hash``);
* account-value samples of a leader (equity base of its returns):
  ``equity_samples_enqueue(samples=equity_samples_from_portfolio(portfolio, trader_id=...))``;
* one step of copying: ``copy_trade_events_record(event=CopyTradeEventRow(...))``, after the
  transaction commits (``transaction.on_commit``); ``event_id`` is its dedupe key.
"""

from analytics.services.drains import (
    DrainResult,
    buffer_dead_letters_requeue,
    buffer_drain,
    buffers_drain_all,
    drain_write,
)
from analytics.services.ingest_common import IngestResult, quality_config
from analytics.services.rows import (
    ROW_DATASETS,
    candles_ingest,
    copy_trade_events_ingest,
    copy_trade_events_record,
    equity_samples_enqueue,
    equity_samples_ingest,
    feed_message_ingest,
    funding_ingest,
    open_interest_ingest,
    rows_enqueue,
    rows_ingest,
    trader_events_enqueue,
    trader_events_ingest,
)
from analytics.services.ticks import (
    drain_request,
    market_ticks_ingest,
    tick_batch_enqueue,
    ticks_listener,
)

__all__ = [
    "ROW_DATASETS",
    "DrainResult",
    "IngestResult",
    "buffer_dead_letters_requeue",
    "buffer_drain",
    "buffers_drain_all",
    "candles_ingest",
    "copy_trade_events_ingest",
    "copy_trade_events_record",
    "drain_request",
    "drain_write",
    "equity_samples_enqueue",
    "equity_samples_ingest",
    "feed_message_ingest",
    "funding_ingest",
    "market_ticks_ingest",
    "open_interest_ingest",
    "quality_config",
    "rows_enqueue",
    "rows_ingest",
    "tick_batch_enqueue",
    "ticks_listener",
    "trader_events_enqueue",
    "trader_events_ingest",
]
