"""Tandem's ClickHouse schema in one place, and the one function that turns it into DDL.

Every table and materialized view is declared here as data (:class:`Table`,
:class:`MaterializedView`); :func:`render` produces the statements for either deployment:

* **single server** (the embedded chDB server, a lone ClickHouse): ``CREATE TABLE db.name``
  with the plain engine, ``non_replicated_deduplication_window`` so a retried insert with the
  same deduplication token (or the same block) is dropped, as a replicated table would;
* **cluster** (``settings.CLICKHOUSE_CLUSTER`` set): every statement carries ``ON CLUSTER``;
  each table becomes ``name_local`` with the ``Replicated*`` engine (ZooKeeper path per shard,
  ``{replica}`` macro) plus ``name`` as a ``Distributed`` table over it, sharded by a key that
  keeps what must be deduplicated or merged together on one shard (a market's ticks, a
  trader's events); materialized views are created on every node between the local tables,
  so an insert into a ``Distributed`` table lands on a shard and that shard's views fire.

Where the seeds' SQL cannot run as written on ClickHouse 24+ (chDB 4.4 is ClickHouse 26.9),
the intent is kept and the difference is explained next to the definition. The recurring ones:

* ``CODEC(Gorilla)`` on ``Decimal`` columns is refused ("meaningless": Gorilla is a
  floating-point codec). Slowly moving prices use ``Delta + LZ4`` (small integer deltas of the
  scaled decimal), sizes and amounts ``T64 + LZ4``; the intent -- compact numeric series --
  is kept, and LZ4 instead of ZSTD keeps tick ingestion above a million rows a second on two
  cores (the seed's ``ZSTD(1)`` stays on timestamps, names and sequence numbers).
* The seed's 1-minute materialized view wrote ``anyState``/``sumState`` results into plain
  columns of a ``ReplacingMergeTree`` and took ``any`` for open and close. ``any`` is not
  "first"/"last", and replacing merges would *drop* partial aggregates of the same minute that
  arrive in different inserts. Candles are therefore ``AggregatingMergeTree`` tables: open and
  close are ``argMin``/``argMax`` states keyed by the tick's ``sequence_number`` (the venue's
  print order, exact even for ticks in one nanosecond), high/low/volume/trade_count are
  ``SimpleAggregateFunction`` columns. Queries finalize with ``argMinMerge``/``argMaxMerge``
  and ``GROUP BY`` (see ``analytics.selectors.candles``). ``trade_count`` is an exact sum of
  ``count()``.
* Volumes and other sums use ``Decimal(38, 8)``: a day of kPEPE volume (10^10 units and more)
  does not fit the seed's ``Decimal(18, 8)``.
* ``JSON`` columns are stored as ``String`` holding JSON text: the native protocol's JSON
  serialization is not supported by the embedded server, and the text round-trips exactly.
* The seeds' retention: seed 000's TTLs, with seed 002 where it is more specific (1-minute
  candles 2 years, 5-minute and longer 5 years, individual trades 1 year, performance metrics
  5 years, order-book snapshots 30 days) and seed 004's 180 days for system metrics. ``TTL``
  expressions use ``toDateTime(...)`` because TTL must be a Date/DateTime expression.

Tables are only ever created through migrations (:mod:`analytics.clickhouse.migrations`);
this module describes the schema those migrations create.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from analytics.clickhouse.client import quote_identifier

__all__ = [
    "CANDLE_TABLES",
    "MIGRATIONS_TABLE",
    "TABLES",
    "VIEWS",
    "MaterializedView",
    "Table",
    "create_database_sql",
    "drop_database_sql",
    "render",
    "table_names",
]

DEDUPLICATION_WINDOW = 1000
MIGRATIONS_TABLE = "clickhouse_migrations"

# Codecs that replace the seed's Gorilla on Decimal columns (see the module docstring).
PRICE = "CODEC(Delta(8), LZ4)"
AMOUNT = "CODEC(T64, LZ4)"
TEXT = "CODEC(ZSTD(1))"
TIME = "CODEC(Delta(8), ZSTD(1))"
# Open and close are the first and last print by sequence number (see MV_OHLCV_1MIN).
OPEN_KEY = "UInt64"


@dataclass(frozen=True)
class Table:
    """One table: columns and engine clauses as SQL text, the engine name without
    ``Replicated``/arguments prefix (``MergeTree``, ``ReplacingMergeTree``, ...)."""

    name: str
    columns: str
    engine: str
    order_by: str
    engine_args: str = ""
    partition_by: str | None = None
    ttl: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    # Distributed sharding key in cluster mode: rows that must meet (dedupe, merge) share it.
    sharding_key: str = "rand()"
    comment: str = ""


@dataclass(frozen=True)
class MaterializedView:
    """``CREATE MATERIALIZED VIEW name TO target AS select``; ``select`` names its source
    table as ``{source}`` (rendered as the local table in cluster mode)."""

    name: str
    source: str
    target: str
    select: str


def _ohlcv_columns() -> str:
    return f"""
    timestamp DateTime('UTC') CODEC(DoubleDelta, ZSTD(1)),
    symbol LowCardinality(String) {TEXT},
    exchange LowCardinality(String) {TEXT},
    open AggregateFunction(argMin, Decimal(18, 8), {OPEN_KEY}),
    high SimpleAggregateFunction(max, Decimal(18, 8)) {PRICE},
    low SimpleAggregateFunction(min, Decimal(18, 8)) {PRICE},
    close AggregateFunction(argMax, Decimal(18, 8), {OPEN_KEY}),
    volume SimpleAggregateFunction(sum, Decimal(38, 8)) {TEXT},
    quote_volume SimpleAggregateFunction(sum, Decimal(38, 16)) {TEXT},
    trade_count SimpleAggregateFunction(sum, UInt64) {TEXT}
    """


def _ohlcv_table(name: str, *, years: int, partition: str) -> Table:
    return Table(
        name=name,
        columns=_ohlcv_columns(),
        engine="AggregatingMergeTree",
        partition_by=f"(exchange, {partition})",
        order_by="(symbol, exchange, timestamp)",
        ttl=f"timestamp + INTERVAL {years} YEAR DELETE",
        sharding_key="cityHash64(symbol)",
    )


def _rollup_view(name: str, source: str, target: str, bucket: str) -> MaterializedView:
    # Re-aggregates the states of the finer table's inserted block; cascading views are how
    # seed 004's continuous aggregates (5m from ticks, 1h from 5m, 1d from 1h) map to ClickHouse.
    return MaterializedView(
        name=name,
        source=source,
        target=target,
        select=f"""
        SELECT
            {bucket} AS timestamp,
            src.symbol AS symbol,
            src.exchange AS exchange,
            argMinMergeState(src.open) AS open,
            max(src.high) AS high,
            min(src.low) AS low,
            argMaxMergeState(src.close) AS close,
            sum(src.volume) AS volume,
            sum(src.quote_volume) AS quote_volume,
            sum(src.trade_count) AS trade_count
        FROM {{source}} AS src
        GROUP BY symbol, exchange, timestamp
        """,  # noqa: S608 - DDL text from constants of this module, no input
    )


MARKET_TICKS_RAW = Table(
    # Seed 000 as written, codecs aside. A tick is one trade print (live: one Hyperliquid
    # trade; simulator/replay: one simulated print). Optional fields the source does not
    # report (index price, funding rate, open interest, and bid/ask for a bare trade) are 0:
    # non-Nullable columns keep the columnar insert on its fast path.
    name="market_ticks_raw",
    columns=f"""
    timestamp DateTime64(9, 'UTC') {TIME},
    symbol LowCardinality(String) {TEXT},
    exchange LowCardinality(String) {TEXT},
    price Decimal(18, 8) {PRICE},
    bid_price Decimal(18, 8) {PRICE},
    ask_price Decimal(18, 8) {PRICE},
    volume Decimal(18, 8) {AMOUNT},
    bid_volume Decimal(18, 8) {AMOUNT},
    ask_volume Decimal(18, 8) {AMOUNT},
    oi Decimal(18, 8) {PRICE},
    funding_rate Decimal(10, 8) {AMOUNT},
    mark_price Decimal(18, 8) {PRICE},
    index_price Decimal(18, 8) {PRICE},
    sequence_number UInt64 {TIME}
    """,
    engine="MergeTree",
    partition_by="toYYYYMM(timestamp)",
    order_by="(symbol, exchange, timestamp)",
    ttl="toDateTime(timestamp) + INTERVAL 90 DAY DELETE",
    settings={"index_granularity": "8192"},
    sharding_key="cityHash64(symbol)",
)

MARKET_OHLCV_1MIN = _ohlcv_table("market_ohlcv_1min", years=2, partition="toYYYYMM(timestamp)")
MARKET_OHLCV_5M = _ohlcv_table("market_ohlcv_5m", years=5, partition="toYYYYMM(timestamp)")
MARKET_OHLCV_1H = _ohlcv_table("market_ohlcv_1h", years=5, partition="toYYYYMM(timestamp)")
MARKET_OHLCV_1D = _ohlcv_table("market_ohlcv_1d", years=5, partition="toYear(timestamp)")

MV_OHLCV_1MIN = MaterializedView(
    # Seed 000's mv_ohlcv_1min with first/last done right (see the module docstring). Open
    # and close are the prices of the lowest and highest sequence number in the minute: the
    # sequence is the venue's print order (Hyperliquid trade ids), strictly increasing per
    # market -- ingestion quarantines a tick whose sequence does not advance -- so ticks of
    # one nanosecond are ordered too. An argMin keyed by (timestamp, sequence) gives the same
    # answer but costs three times as much per inserted row. vwap is
    # sum(price x volume) / sum(volume) at query time, price change close - open.
    name="mv_ohlcv_1min",
    source="market_ticks_raw",
    target="market_ohlcv_1min",
    select="""
    SELECT
        toStartOfMinute(src.timestamp) AS timestamp,
        src.symbol AS symbol,
        src.exchange AS exchange,
        argMinState(src.price, src.sequence_number) AS open,
        max(src.price) AS high,
        min(src.price) AS low,
        argMaxState(src.price, src.sequence_number) AS close,
        sum(toDecimal128(src.volume, 8)) AS volume,
        sum(toDecimal128(src.price, 8) * src.volume) AS quote_volume,
        count() AS trade_count
    FROM {source} AS src
    GROUP BY symbol, exchange, timestamp
    """,
)
MV_OHLCV_5M = _rollup_view(
    "mv_ohlcv_5m", "market_ohlcv_1min", "market_ohlcv_5m", "toStartOfFiveMinutes(src.timestamp)"
)
MV_OHLCV_1H = _rollup_view(
    "mv_ohlcv_1h", "market_ohlcv_5m", "market_ohlcv_1h", "toStartOfHour(src.timestamp)"
)
MV_OHLCV_1D = _rollup_view(
    "mv_ohlcv_1d", "market_ohlcv_1h", "market_ohlcv_1d", "toStartOfDay(src.timestamp)"
)

MARKET_CANDLES = Table(
    # Candles as the venue reports them (Hyperliquid candleSnapshot / `candle` stream). The
    # stream re-sends the open candle on every trade, so rows *replace* by key, newest ingest
    # wins; these are never summed into the tick aggregates above.
    name="market_candles",
    columns=f"""
    exchange LowCardinality(String) {TEXT},
    symbol LowCardinality(String) {TEXT},
    interval LowCardinality(String) {TEXT},
    open_time DateTime64(3, 'UTC') {TIME},
    close_time DateTime64(3, 'UTC') {TIME},
    open Decimal(18, 8) {PRICE},
    high Decimal(18, 8) {PRICE},
    low Decimal(18, 8) {PRICE},
    close Decimal(18, 8) {PRICE},
    volume Decimal(38, 8) {TEXT},
    trade_count UInt64 {TEXT},
    ingested_at DateTime64(6, 'UTC') {TIME}
    """,
    engine="ReplacingMergeTree",
    engine_args="ingested_at",
    partition_by="toYYYYMM(open_time)",
    order_by="(exchange, symbol, interval, open_time)",
    ttl=(
        "toDateTime(open_time) + INTERVAL 2 YEAR DELETE WHERE interval = '1m', "
        "toDateTime(open_time) + INTERVAL 5 YEAR DELETE"
    ),
    sharding_key="cityHash64(symbol)",
)

MARKET_FUNDING = Table(
    name="market_funding",
    columns=f"""
    timestamp DateTime64(3, 'UTC') {TIME},
    exchange LowCardinality(String) {TEXT},
    symbol LowCardinality(String) {TEXT},
    funding_rate Decimal(18, 10) {AMOUNT},
    premium Decimal(18, 10) {AMOUNT},
    ingested_at DateTime64(6, 'UTC') {TIME}
    """,
    engine="ReplacingMergeTree",
    engine_args="ingested_at",
    partition_by="toYear(timestamp)",
    order_by="(exchange, symbol, timestamp)",
    ttl="toDateTime(timestamp) + INTERVAL 5 YEAR DELETE",
    sharding_key="cityHash64(symbol)",
)

MARKET_OPEN_INTEREST = Table(
    # Open interest observations per market (Hyperliquid asset contexts: openInterest, markPx,
    # oraclePx, funding), the input of the open-interest side of the heatmap.
    name="market_open_interest",
    columns=f"""
    timestamp DateTime64(3, 'UTC') {TIME},
    exchange LowCardinality(String) {TEXT},
    symbol LowCardinality(String) {TEXT},
    open_interest Decimal(38, 8) {TEXT},
    mark_price Decimal(18, 8) {PRICE},
    oracle_price Decimal(18, 8) {PRICE},
    funding_rate Decimal(18, 10) {AMOUNT},
    ingested_at DateTime64(6, 'UTC') {TIME}
    """,
    engine="ReplacingMergeTree",
    engine_args="ingested_at",
    partition_by="toYYYYMM(timestamp)",
    order_by="(exchange, symbol, timestamp)",
    ttl="toDateTime(timestamp) + INTERVAL 2 YEAR DELETE",
    sharding_key="cityHash64(symbol)",
)

MARKET_BOOK_SNAPSHOTS = Table(
    # Hyperliquid l2Book snapshots (seed 004 order_book_snapshots; 30 days per seed 002).
    name="market_book_snapshots",
    columns=f"""
    timestamp DateTime64(3, 'UTC') {TIME},
    exchange LowCardinality(String) {TEXT},
    symbol LowCardinality(String) {TEXT},
    bid_prices Array(Decimal(18, 8)) {TEXT},
    bid_sizes Array(Decimal(18, 8)) {TEXT},
    bid_orders Array(UInt32) {TEXT},
    ask_prices Array(Decimal(18, 8)) {TEXT},
    ask_sizes Array(Decimal(18, 8)) {TEXT},
    ask_orders Array(UInt32) {TEXT}
    """,
    engine="MergeTree",
    partition_by="toYYYYMMDD(timestamp)",
    order_by="(exchange, symbol, timestamp)",
    ttl="toDateTime(timestamp) + INTERVAL 30 DAY DELETE",
    sharding_key="cityHash64(symbol)",
)

TRADER_EVENTS = Table(
    # Seed 000, corrected: ReplacingMergeTree's second argument is now `is_deleted`, so the
    # seed's ReplacingMergeTree(timestamp, event_hash) would treat the hash as a delete flag;
    # and ORDER BY (trader_id, symbol, timestamp) would collapse *different* fills of one
    # millisecond. Rows are deduplicated on event_hash by putting it last in the sorting key;
    # queries read with FINAL. Added: closed_pnl, fee (KPIs need them), fill_side, crossed.
    # Retention: 1 year (seed 002 "individual trades"; seed 000 said 30 days) -- daily KPIs
    # outlive it in trader_kpis_day.
    name="trader_events",
    columns=f"""
    timestamp DateTime64(9, 'UTC') {TIME},
    trader_id LowCardinality(String) {TEXT},
    symbol LowCardinality(String) {TEXT},
    exchange LowCardinality(String) {TEXT},
    action LowCardinality(String) {TEXT},
    side LowCardinality(String) {TEXT},
    fill_side LowCardinality(String) {TEXT},
    quantity Decimal(18, 8) {AMOUNT},
    price Decimal(18, 8) {PRICE},
    notional_value Decimal(18, 8) {AMOUNT},
    prev_exposure Decimal(18, 8) {AMOUNT},
    new_exposure Decimal(18, 8) {AMOUNT},
    exposure_change Decimal(18, 8) {AMOUNT},
    closed_pnl Decimal(18, 8) {AMOUNT},
    fee Decimal(18, 8) {AMOUNT},
    fee_token LowCardinality(String) {TEXT},
    crossed UInt8,
    order_id String {TEXT},
    trade_id String {TEXT},
    leverage Decimal(5, 2) {AMOUNT},
    event_hash String {TEXT},
    ingested_at DateTime64(6, 'UTC') {TIME}
    """,
    engine="ReplacingMergeTree",
    engine_args="ingested_at",
    partition_by="toYYYYMM(timestamp)",
    order_by="(trader_id, symbol, timestamp, event_hash)",
    ttl="toDateTime(timestamp) + INTERVAL 1 YEAR DELETE",
    sharding_key="cityHash64(trader_id)",
)

TRADER_EQUITY_SAMPLES = Table(
    # Account value samples of a trader (Hyperliquid `portfolio` accountValueHistory,
    # clearinghouseState marginSummary.accountValue): the equity base of daily returns.
    name="trader_equity_samples",
    columns=f"""
    timestamp DateTime64(3, 'UTC') {TIME},
    trader_id LowCardinality(String) {TEXT},
    account_value Decimal(38, 8) {TEXT},
    source LowCardinality(String) {TEXT},
    ingested_at DateTime64(6, 'UTC') {TIME}
    """,
    engine="ReplacingMergeTree",
    engine_args="ingested_at",
    partition_by="toYear(timestamp)",
    order_by="(trader_id, timestamp)",
    ttl="toDateTime(timestamp) + INTERVAL 5 YEAR DELETE",
    sharding_key="cityHash64(trader_id)",
)

TRADER_KPIS_DAY = Table(
    # Seed 000's table was a SummingMergeTree fed by a view over trader_events; summing
    # counts every re-delivered fill twice (the events table only drops duplicates when it
    # merges), and per-day Sharpe/drawdown are meaningless. Daily rows are computed by the
    # rollup service from trader_events FINAL and replaced on recomputation; one row per
    # trader and day over all symbols, with the equity base and the day's return (see
    # analytics.kpis for the definitions). Retention 5 years (seed 002 performance metrics).
    name="trader_kpis_day",
    columns=f"""
    date Date,
    trader_id LowCardinality(String) {TEXT},
    pnl Decimal(38, 8) {TEXT},
    fees Decimal(38, 8) {TEXT},
    net_pnl Decimal(38, 8) {TEXT},
    volume Decimal(38, 8) {TEXT},
    trade_count UInt32,
    closing_count UInt32,
    win_count UInt32,
    gross_profit Decimal(38, 8) {TEXT},
    gross_loss Decimal(38, 8) {TEXT},
    leverage_sum Float64,
    leverage_count UInt32,
    leverage_max Float64,
    equity_start Decimal(38, 8) {TEXT},
    equity_source LowCardinality(String),
    return_pct Float64,
    computed_at DateTime64(6, 'UTC')
    """,
    engine="ReplacingMergeTree",
    engine_args="computed_at",
    partition_by="toYear(date)",
    order_by="(trader_id, date)",
    ttl="date + INTERVAL 5 YEAR DELETE",
    sharding_key="cityHash64(trader_id)",
)

TRADER_KPIS_PERIOD = Table(
    # KPIs over 1d/7d/30d/all per trader, as of a day: what the leaderboard sorts.
    name="trader_kpis_period",
    columns="""
    period LowCardinality(String),
    trader_id LowCardinality(String),
    as_of Date,
    start_date Date,
    days UInt32,
    history_days UInt32,
    pnl Decimal(38, 8),
    volume Decimal(38, 8),
    trade_count UInt64,
    roi Float64,
    win_rate Nullable(Float64),
    sharpe Nullable(Float64),
    sortino Nullable(Float64),
    max_drawdown Float64,
    var_95 Nullable(Float64),
    profit_factor Nullable(Float64),
    avg_leverage Nullable(Float64),
    copy_score Decimal(5, 2),
    computed_at DateTime64(6, 'UTC')
    """,
    engine="ReplacingMergeTree",
    engine_args="computed_at",
    order_by="(period, trader_id)",
    sharding_key="cityHash64(trader_id)",
)

LIQ_HEATMAP_BINS = Table(
    # Seed 000 declared AggregatingMergeTree with plain columns (which would keep an arbitrary
    # row per key) and a `Long Decimal` type that does not exist. Each build of a snapshot
    # (symbol, window, timestamp) writes all its bins with one computed_at; queries read the
    # latest build of each snapshot. `side` added: long liquidations sit below the price,
    # short ones above. data_sources stays an Array(String).
    name="liq_heatmap_bins",
    columns=f"""
    timestamp DateTime64(3, 'UTC') {TIME},
    symbol LowCardinality(String) {TEXT},
    exchange LowCardinality(String) {TEXT},
    window_type LowCardinality(String) {TEXT},
    side LowCardinality(String) {TEXT},
    price_bin_center Decimal(18, 8) {PRICE},
    price_bin_width Decimal(18, 8) {PRICE},
    liq_volume Decimal(38, 8) {TEXT},
    liq_count UInt32,
    liq_notional Decimal(38, 8) {TEXT},
    method_version UInt16 {TEXT},
    confidence_score Decimal(5, 4) {TEXT},
    data_sources Array(String) {TEXT},
    computed_at DateTime64(6, 'UTC') {TIME}
    """,
    engine="ReplacingMergeTree",
    engine_args="computed_at",
    partition_by="(exchange, toYYYYMMDD(timestamp))",
    order_by="(symbol, exchange, window_type, timestamp, side, price_bin_center)",
    ttl="toDateTime(timestamp) + INTERVAL 7 DAY DELETE",
    sharding_key="cityHash64(symbol)",
)

COPY_TRADE_EVENTS = Table(
    # Seed 000 with: event_id (the dedupe key, last in the sorting key of a
    # ReplacingMergeTree), realized_pnl/fee/leader_price for copy performance, and
    # `metadata JSON` kept as String holding JSON text (see the module docstring).
    name="copy_trade_events",
    columns=f"""
    timestamp DateTime64(9, 'UTC') {TIME},
    event_id String {TEXT},
    strategy_id LowCardinality(String) {TEXT},
    user_id LowCardinality(String) {TEXT},
    source_trader_id LowCardinality(String) {TEXT},
    event_type LowCardinality(String) {TEXT},
    symbol LowCardinality(String) {TEXT},
    latency_ms UInt32 {AMOUNT},
    alignment_rate Decimal(5, 2) {AMOUNT},
    slippage_bps Int32 {TEXT},
    order_id String {TEXT},
    quantity Decimal(18, 8) {AMOUNT},
    price Decimal(18, 8) {PRICE},
    leader_price Decimal(18, 8) {PRICE},
    side LowCardinality(String) {TEXT},
    status LowCardinality(String) {TEXT},
    error_code String {TEXT},
    retry_count UInt8 {TEXT},
    realized_pnl Decimal(18, 8) {AMOUNT},
    fee Decimal(18, 8) {AMOUNT},
    metadata String {TEXT},
    ingested_at DateTime64(6, 'UTC') {TIME}
    """,
    engine="ReplacingMergeTree",
    engine_args="ingested_at",
    partition_by="toYYYYMM(timestamp)",
    order_by="(strategy_id, timestamp, event_id)",
    ttl="toDateTime(timestamp) + INTERVAL 30 DAY DELETE",
    sharding_key="cityHash64(strategy_id)",
)

DATA_QUALITY_QUARANTINE = Table(
    # Seed 004's quality checks: whatever fails one lands here with its reason, never dropped.
    # Kept in ClickHouse (not PostgreSQL): its volume follows the feed, the ingest path must
    # not write to the system of record, and it ages out with the ticks it stands for (90 d).
    name="data_quality_quarantine",
    columns=f"""
    quarantined_at DateTime64(6, 'UTC') {TIME},
    dataset LowCardinality(String) {TEXT},
    reason LowCardinality(String) {TEXT},
    detail String {TEXT},
    exchange LowCardinality(String) {TEXT},
    symbol LowCardinality(String) {TEXT},
    event_time DateTime64(9, 'UTC') {TIME},
    sequence_number UInt64 {TEXT},
    price Decimal(18, 8) {PRICE},
    payload String {TEXT},
    batch_id String {TEXT}
    """,
    engine="MergeTree",
    partition_by="toYYYYMM(quarantined_at)",
    order_by="(dataset, reason, quarantined_at)",
    ttl="toDateTime(quarantined_at) + INTERVAL 90 DAY DELETE",
)

SYSTEM_METRICS = Table(
    # Seed 004 system_metrics (180-day retention): ingestion throughput, lag, quarantine counts.
    name="system_metrics",
    columns=f"""
    timestamp DateTime64(3, 'UTC') {TIME},
    metric_category LowCardinality(String),
    metric_name LowCardinality(String),
    metric_value Float64,
    unit LowCardinality(String),
    tags Map(LowCardinality(String), String) {TEXT}
    """,
    engine="MergeTree",
    partition_by="toYYYYMM(timestamp)",
    order_by="(metric_category, metric_name, timestamp)",
    ttl="toDateTime(timestamp) + INTERVAL 180 DAY DELETE",
)

TABLES: tuple[Table, ...] = (
    MARKET_TICKS_RAW,
    MARKET_OHLCV_1MIN,
    MARKET_OHLCV_5M,
    MARKET_OHLCV_1H,
    MARKET_OHLCV_1D,
    MARKET_CANDLES,
    MARKET_FUNDING,
    MARKET_OPEN_INTEREST,
    MARKET_BOOK_SNAPSHOTS,
    TRADER_EVENTS,
    TRADER_EQUITY_SAMPLES,
    TRADER_KPIS_DAY,
    TRADER_KPIS_PERIOD,
    LIQ_HEATMAP_BINS,
    COPY_TRADE_EVENTS,
    DATA_QUALITY_QUARANTINE,
    SYSTEM_METRICS,
)
# Order matters: a view must exist before rows reach its source, and a cascade is created
# from the coarsest end so no level misses a block while the chain is being built.
VIEWS: tuple[MaterializedView, ...] = (
    MV_OHLCV_1D,
    MV_OHLCV_1H,
    MV_OHLCV_5M,
    MV_OHLCV_1MIN,
)
CANDLE_TABLES = {
    "1m": MARKET_OHLCV_1MIN.name,
    "5m": MARKET_OHLCV_5M.name,
    "1h": MARKET_OHLCV_1H.name,
    "1d": MARKET_OHLCV_1D.name,
}

MIGRATIONS = Table(
    name=MIGRATIONS_TABLE,
    columns="""
    name String,
    checksum String,
    applied_at DateTime64(3, 'UTC')
    """,
    engine="ReplacingMergeTree",
    engine_args="applied_at",
    order_by="name",
    sharding_key="cityHash64(name)",
)


# ======================================================================================
# Rendering

_WS = re.compile(r"\s+")


def _clean(sql: str) -> str:
    """One statement on tidy lines (definitions keep their own layout)."""
    lines = [line.rstrip() for line in sql.strip().splitlines()]
    return "\n".join(line for line in lines if line.strip())


def _on_cluster(cluster: str) -> str:
    return f" ON CLUSTER {quote_identifier(cluster)}" if cluster else ""


def local_name(name: str, cluster: str) -> str:
    """The table that holds the rows: ``name`` alone, ``name_local`` under a Distributed."""
    return f"{name}_local" if cluster else name


def _engine(table: Table, database: str, cluster: str) -> str:
    if not cluster:
        return f"{table.engine}({table.engine_args})"
    # ZooKeeper path per shard and table; {shard}/{replica} are server macros, left as text.
    path = f"/clickhouse/tables/{{shard}}/{database}/{local_name(table.name, cluster)}"
    args = [f"'{path}'", "'{replica}'"]
    if table.engine_args:
        args.append(table.engine_args)
    return f"Replicated{table.engine}({', '.join(args)})"


def create_table_sql(table: Table, *, database: str, cluster: str = "") -> list[str]:
    db = quote_identifier(database)
    stored = local_name(table.name, cluster)
    settings = dict(table.settings)
    if cluster:
        settings["replicated_deduplication_window"] = str(DEDUPLICATION_WINDOW)
    else:
        settings["non_replicated_deduplication_window"] = str(DEDUPLICATION_WINDOW)
    clauses = [f"ENGINE = {_engine(table, database, cluster)}"]
    if table.partition_by:
        clauses.append(f"PARTITION BY {table.partition_by}")
    clauses.append(f"ORDER BY {table.order_by}")
    if table.ttl:
        clauses.append(f"TTL {table.ttl}")
    clauses.append("SETTINGS " + ", ".join(f"{k} = {v}" for k, v in settings.items()))
    statements = [
        f"CREATE TABLE IF NOT EXISTS {db}.{quote_identifier(stored)}{_on_cluster(cluster)}\n"
        f"(\n    {_clean(table.columns)}\n)\n" + "\n".join(clauses)
    ]
    if cluster:
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {db}.{quote_identifier(table.name)}"
            f"{_on_cluster(cluster)} AS {db}.{quote_identifier(stored)}\n"
            f"ENGINE = Distributed({quote_identifier(cluster)}, {db}, "
            f"{quote_identifier(stored)}, {table.sharding_key})"
        )
    return statements


def create_view_sql(view: MaterializedView, *, database: str, cluster: str = "") -> list[str]:
    db = quote_identifier(database)
    source = f"{db}.{quote_identifier(local_name(view.source, cluster))}"
    target = f"{db}.{quote_identifier(local_name(view.target, cluster))}"
    select = _clean(view.select.replace("{source}", source))
    return [
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{quote_identifier(view.name)}"
        f"{_on_cluster(cluster)} TO {target}\nAS {select}"
    ]


def render(item: Table | MaterializedView, *, database: str, cluster: str = "") -> list[str]:
    """The DDL that creates ``item`` in ``database`` (single server, or ``cluster``)."""
    if isinstance(item, Table):
        return create_table_sql(item, database=database, cluster=cluster)
    return create_view_sql(item, database=database, cluster=cluster)


def create_database_sql(database: str, *, cluster: str = "") -> str:
    return f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}{_on_cluster(cluster)}"


def drop_database_sql(database: str, *, cluster: str = "") -> str:
    return f"DROP DATABASE IF EXISTS {quote_identifier(database)}{_on_cluster(cluster)}"


def table_names(items: Sequence[Table | MaterializedView] = TABLES) -> list[str]:
    return [item.name for item in items]
