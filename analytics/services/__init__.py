"""Analytics: every write (ARCHITECTURE.md §1). Split by subject; import from here.

* ingestion (``ingest``): ticks, trader fills, copy-trade events, venue candles, funding,
  open interest, book snapshots and equity samples -- buffered (``*_enqueue``,
  ``copy_trade_events_record``, the tick listener) or immediate (``*_ingest``), drains;
* KPI rollups and copy scores (``kpis``);
* the liquidation heatmap (``heatmap``);
* the staff SQL console (``console``).
"""

from analytics.services.console import ConsoleResult, sql_console_run, sql_statement_check
from analytics.services.heatmap import HeatmapBuildResult, liq_heatmap_build
from analytics.services.ingest import (
    DrainResult,
    IngestResult,
    buffer_dead_letters_requeue,
    buffer_drain,
    buffers_drain_all,
    candles_ingest,
    copy_trade_events_ingest,
    copy_trade_events_record,
    drain_request,
    equity_samples_enqueue,
    equity_samples_ingest,
    feed_message_ingest,
    funding_ingest,
    market_ticks_ingest,
    open_interest_ingest,
    quality_config,
    rows_enqueue,
    rows_ingest,
    tick_batch_enqueue,
    ticks_listener,
    trader_events_enqueue,
    trader_events_ingest,
)
from analytics.services.kpis import (
    KpiRefreshResult,
    trader_kpis_refresh,
    trader_scores_compute,
    trader_scores_publish,
)

__all__ = [
    "ConsoleResult",
    "DrainResult",
    "HeatmapBuildResult",
    "IngestResult",
    "KpiRefreshResult",
    "buffer_dead_letters_requeue",
    "buffer_drain",
    "buffers_drain_all",
    "candles_ingest",
    "copy_trade_events_ingest",
    "copy_trade_events_record",
    "drain_request",
    "equity_samples_enqueue",
    "equity_samples_ingest",
    "feed_message_ingest",
    "funding_ingest",
    "liq_heatmap_build",
    "market_ticks_ingest",
    "open_interest_ingest",
    "quality_config",
    "rows_enqueue",
    "rows_ingest",
    "sql_console_run",
    "sql_statement_check",
    "tick_batch_enqueue",
    "ticks_listener",
    "trader_events_enqueue",
    "trader_events_ingest",
    "trader_kpis_refresh",
    "trader_scores_compute",
    "trader_scores_publish",
]
