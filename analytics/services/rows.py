"""Row datasets: trader fills, copy-trade events, venue candles, funding, open interest,
book snapshots, equity samples and ingestion counters; and the live feed router."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from analytics.batches import (
    BookSnapshotRow,
    CandleRow,
    CopyTradeEventRow,
    EquitySampleRow,
    FundingRow,
    MetricRow,
    OpenInterestRow,
    TraderEventRow,
    rows_to_json,
)
from analytics.buffer import Buffer, BufferItem
from analytics.clickhouse.client import ClickHouse, get_client
from analytics.feeds.hyperliquid import parse_ws_message
from analytics.quality import (
    Reason,
)
from analytics.services.ingest_common import (
    IngestResult,
    QuarantineRow,
    quarantine_insert,
    token_settings,
)
from analytics.services.ticks import tick_batch_enqueue
from config.errors import ValidationFailed

# ======================================================================================
# Row datasets (trader events, copy events, candles, funding, open interest, books, equity)


@dataclass(frozen=True)
class RowDataset:
    name: str  # buffer stream and quarantine dataset
    table: str
    row_type: type[Any]
    columns: tuple[str, ...]
    to_values: Callable[[Any, datetime], tuple[Any, ...]]
    checks: Callable[[Any, datetime], str | None] = lambda row, now: None


def _future(limit: timedelta) -> Callable[[Any, datetime], str | None]:
    def check(row: Any, now: datetime) -> str | None:
        moment = getattr(row, "timestamp", None) or getattr(row, "open_time", None)
        if moment is not None and moment > now + limit:
            return Reason.FUTURE_TIMESTAMP.label
        return None

    return check


def _trader_event_check(row: TraderEventRow, now: datetime) -> str | None:
    if row.timestamp > now + timedelta(minutes=5):
        return Reason.FUTURE_TIMESTAMP.label
    if row.price <= 0 or row.quantity <= 0:
        return Reason.INVALID_VALUE.label
    return None


def _candle_check(row: CandleRow, now: datetime) -> str | None:
    if row.open_time > now + timedelta(minutes=5):
        return Reason.FUTURE_TIMESTAMP.label
    prices = (row.open, row.high, row.low, row.close)
    if (
        min(prices) <= 0
        or row.high < max(row.open, row.close)
        or row.low > min(row.open, row.close)
    ):
        return Reason.INVALID_VALUE.label
    return None


TRADER_EVENTS = RowDataset(
    name="trader_events",
    table="trader_events",
    row_type=TraderEventRow,
    columns=(
        "timestamp", "trader_id", "symbol", "exchange", "action", "side", "fill_side",
        "quantity", "price", "notional_value", "prev_exposure", "new_exposure",
        "exposure_change", "closed_pnl", "fee", "fee_token", "crossed", "order_id",
        "trade_id", "leverage", "event_hash", "ingested_at",
    ),
    to_values=lambda r, at: (
        r.timestamp, r.trader_id, r.symbol, r.exchange, r.action, r.side, r.fill_side,
        r.quantity, r.price, r.notional_value, r.prev_exposure, r.new_exposure,
        r.exposure_change, r.closed_pnl, r.fee, r.fee_token, int(r.crossed), r.order_id,
        r.trade_id, r.leverage, r.event_hash, at,
    ),
    checks=_trader_event_check,
)  # fmt: skip


def _json_text(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)


COPY_TRADE_EVENTS = RowDataset(
    name="copy_trade_events",
    table="copy_trade_events",
    row_type=CopyTradeEventRow,
    columns=(
        "timestamp", "event_id", "strategy_id", "user_id", "source_trader_id", "event_type",
        "symbol", "latency_ms", "alignment_rate", "slippage_bps", "order_id", "quantity",
        "price", "leader_price", "side", "status", "error_code", "retry_count",
        "realized_pnl", "fee", "metadata", "ingested_at",
    ),
    to_values=lambda r, at: (
        r.timestamp, r.event_id, r.strategy_id, r.user_id, r.source_trader_id, r.event_type,
        r.symbol, r.latency_ms, r.alignment_rate, r.slippage_bps, r.order_id, r.quantity,
        r.price, r.leader_price, r.side, r.status, r.error_code, r.retry_count,
        r.realized_pnl, r.fee, _json_text(r.metadata), at,
    ),
    checks=_future(timedelta(minutes=5)),
)  # fmt: skip

CANDLES = RowDataset(
    name="candles",
    table="market_candles",
    row_type=CandleRow,
    columns=(
        "exchange", "symbol", "interval", "open_time", "close_time", "open", "high", "low",
        "close", "volume", "trade_count", "ingested_at",
    ),
    to_values=lambda r, at: (
        r.exchange, r.symbol, r.interval, r.open_time, r.close_time, r.open, r.high, r.low,
        r.close, r.volume, r.trade_count, at,
    ),
    checks=_candle_check,
)  # fmt: skip

FUNDING = RowDataset(
    name="funding",
    table="market_funding",
    row_type=FundingRow,
    columns=("timestamp", "exchange", "symbol", "funding_rate", "premium", "ingested_at"),
    to_values=lambda r, at: (r.timestamp, r.exchange, r.symbol, r.funding_rate, r.premium, at),
    checks=_future(timedelta(minutes=5)),
)

OPEN_INTEREST = RowDataset(
    name="open_interest",
    table="market_open_interest",
    row_type=OpenInterestRow,
    columns=(
        "timestamp", "exchange", "symbol", "open_interest", "mark_price", "oracle_price",
        "funding_rate", "ingested_at",
    ),
    to_values=lambda r, at: (
        r.timestamp, r.exchange, r.symbol, r.open_interest, r.mark_price, r.oracle_price,
        r.funding_rate, at,
    ),
    checks=_future(timedelta(minutes=5)),
)  # fmt: skip

BOOK_SNAPSHOTS = RowDataset(
    name="book_snapshots",
    table="market_book_snapshots",
    row_type=BookSnapshotRow,
    columns=(
        "timestamp", "exchange", "symbol", "bid_prices", "bid_sizes", "bid_orders",
        "ask_prices", "ask_sizes", "ask_orders",
    ),
    to_values=lambda r, at: (
        r.timestamp, r.exchange, r.symbol,
        [lv[0] for lv in r.bids], [lv[1] for lv in r.bids], [lv[2] for lv in r.bids],
        [lv[0] for lv in r.asks], [lv[1] for lv in r.asks], [lv[2] for lv in r.asks],
    ),
    checks=_future(timedelta(minutes=5)),
)  # fmt: skip

EQUITY_SAMPLES = RowDataset(
    name="equity_samples",
    table="trader_equity_samples",
    row_type=EquitySampleRow,
    columns=("timestamp", "trader_id", "account_value", "source", "ingested_at"),
    to_values=lambda r, at: (r.timestamp, r.trader_id, r.account_value, r.source, at),
    checks=_future(timedelta(minutes=5)),
)

METRICS = RowDataset(
    name="metrics",
    table="system_metrics",
    row_type=MetricRow,
    columns=("timestamp", "metric_category", "metric_name", "metric_value", "unit", "tags"),
    to_values=lambda r, at: (r.timestamp, r.category, r.name, r.value, r.unit, r.tags),
)

ROW_DATASETS: dict[str, RowDataset] = {
    d.name: d
    for d in (
        TRADER_EVENTS,
        COPY_TRADE_EVENTS,
        CANDLES,
        FUNDING,
        OPEN_INTEREST,
        BOOK_SNAPSHOTS,
        EQUITY_SAMPLES,
        METRICS,
    )
}


def _quarantine_row(dataset: RowDataset, row: Any, reason: str) -> QuarantineRow:
    moment = getattr(row, "timestamp", None) or getattr(row, "open_time", None)
    return QuarantineRow(
        dataset=dataset.name,
        reason=reason,
        detail=reason.replace("_", " "),
        exchange=str(getattr(row, "exchange", "")),
        symbol=str(getattr(row, "symbol", "")),
        event_time=moment or datetime.now(tz=UTC),
        sequence_number=0,
        price=Decimal(str(getattr(row, "price", 0) or 0)),
        payload=json.loads(rows_to_json([row]))[0],
    )


def rows_write(
    client: ClickHouse, dataset: RowDataset, rows: Sequence[Any], *, batch_id: str
) -> IngestResult:
    now = datetime.now(tz=UTC)
    good, bad = [], []
    quarantined: dict[str, int] = {}
    for row in rows:
        if not isinstance(row, dataset.row_type):
            raise ValidationFailed(
                f"{dataset.name} takes {dataset.row_type.__name__} rows", field="rows"
            )
        reason = dataset.checks(row, now)
        if reason is None:
            good.append(dataset.to_values(row, now))
        else:
            bad.append(_quarantine_row(dataset, row, reason))
            quarantined[reason] = quarantined.get(reason, 0) + 1
    if good:
        client.insert_rows(
            dataset.table, dataset.columns, good, settings=token_settings(dataset.name, batch_id)
        )
    quarantine_insert(client, bad, batch_id=batch_id, dataset=dataset.name)
    return IngestResult(dataset.name, batch_id, accepted=len(good), quarantined=quarantined)


def rows_ingest(*, dataset: str, rows: Sequence[Any], batch_id: str | None = None) -> IngestResult:
    """Insert rows of one dataset now; a known ``batch_id`` is not inserted twice."""
    spec = ROW_DATASETS[dataset]
    batch_id = batch_id or uuid.uuid4().hex
    buffer = Buffer(spec.name)
    if buffer.is_processed(batch_id):
        return IngestResult(spec.name, batch_id, duplicate_batch=True)
    result = rows_write(get_client(), spec, list(rows), batch_id=batch_id)
    pipe = buffer.redis.pipeline(transaction=True)
    buffer.mark_processed(pipe, batch_id)
    pipe.execute()
    return result


def rows_enqueue(
    *, dataset: str, rows: Sequence[Any], batch_id: str | None = None
) -> BufferItem | None:
    spec = ROW_DATASETS[dataset]
    rows = list(rows)
    for row in rows:
        if not isinstance(row, spec.row_type):
            raise ValidationFailed(f"{spec.name} takes {spec.row_type.__name__} rows", field="rows")
    if not rows:
        return None
    return Buffer(spec.name).push(rows_to_json(rows), rows=len(rows), item_id=batch_id)


# Named entry points (what other apps call).


def trader_events_ingest(
    *, events: Sequence[TraderEventRow], batch_id: str | None = None
) -> IngestResult:
    """Insert a trader's fills now. Duplicates (same ``event_hash``) collapse in queries."""
    return rows_ingest(dataset="trader_events", rows=events, batch_id=batch_id)


def trader_events_enqueue(
    *, events: Sequence[TraderEventRow], batch_id: str | None = None
) -> BufferItem | None:
    """Buffer a trader's fills (returns at once); the drain inserts them."""
    return rows_enqueue(dataset="trader_events", rows=events, batch_id=batch_id)


def copy_trade_events_record(*, event: CopyTradeEventRow) -> str:
    """Record one copy-trade step (buffered). Returns its ``event_id`` (the dedupe key)."""
    rows_enqueue(dataset="copy_trade_events", rows=[event], batch_id=f"copy-{event.event_id}")
    return event.event_id


def copy_trade_events_ingest(
    *, events: Sequence[CopyTradeEventRow], batch_id: str | None = None
) -> IngestResult:
    return rows_ingest(dataset="copy_trade_events", rows=events, batch_id=batch_id)


def candles_ingest(*, candles: Sequence[CandleRow], batch_id: str | None = None) -> IngestResult:
    """Venue candles (backfill or the ``candle`` stream): newest version of a candle wins."""
    return rows_ingest(dataset="candles", rows=candles, batch_id=batch_id)


def funding_ingest(*, rows: Sequence[FundingRow], batch_id: str | None = None) -> IngestResult:
    return rows_ingest(dataset="funding", rows=rows, batch_id=batch_id)


def open_interest_ingest(
    *, rows: Sequence[OpenInterestRow], batch_id: str | None = None
) -> IngestResult:
    return rows_ingest(dataset="open_interest", rows=rows, batch_id=batch_id)


def equity_samples_ingest(
    *, samples: Sequence[EquitySampleRow], batch_id: str | None = None
) -> IngestResult:
    return rows_ingest(dataset="equity_samples", rows=samples, batch_id=batch_id)


def equity_samples_enqueue(
    *, samples: Sequence[EquitySampleRow], batch_id: str | None = None
) -> BufferItem | None:
    return rows_enqueue(dataset="equity_samples", rows=samples, batch_id=batch_id)


def feed_message_ingest(
    *, message: Mapping[str, Any], exchange: str = "hyperliquid"
) -> dict[str, int]:
    """Route one Hyperliquid websocket message to the buffers; what the live feed calls.
    Returns rows buffered per stream (``allMids`` and ``userFills`` are not stored here:
    mids are latest prices, fills need a trader id)."""
    parsed = parse_ws_message(message, exchange=exchange)
    counts: dict[str, int] = {}
    if parsed.ticks is not None and len(parsed.ticks):
        tick_batch_enqueue(batch=parsed.ticks)
        counts["ticks"] = len(parsed.ticks)
    for stream, rows in (
        ("candles", parsed.candles),
        ("book_snapshots", parsed.books),
        ("open_interest", parsed.open_interest),
    ):
        if rows:
            rows_enqueue(dataset=stream, rows=rows)
            counts[stream] = len(rows)
    return counts
