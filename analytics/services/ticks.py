"""Tick ingestion: the listener, the buffer, quality checks, the columnar insert."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np

from analytics.batches import (
    TickBatch,
)
from analytics.buffer import Buffer, BufferItem
from analytics.clickhouse.client import ClickHouse, get_client
from analytics.conf import key_prefix, setting
from analytics.quality import (
    MarketKey,
    MarketState,
    QualityConfig,
    Reason,
    Verdict,
    describe,
    evaluate,
    market_keys,
)
from analytics.services.ingest_common import (
    NS,
    IngestResult,
    QuarantineRow,
    clock_ns,
    metrics_record,
    quality_config,
    quarantine_insert,
    token_settings,
)

log = logging.getLogger("analytics.ingest")

# ======================================================================================
# Ticks


def _states_key() -> str:
    return f"{key_prefix()}quality:ticks"


def _field(key: MarketKey) -> str:
    return f"{key[0]}\x1f{key[1]}"


def tick_states_load(keys: Sequence[MarketKey]) -> dict[MarketKey, MarketState]:
    if not keys:
        return {}
    raw = Buffer("ticks").redis.hmget(_states_key(), [_field(k) for k in keys])
    return {
        key: MarketState.from_json(json.loads(value))
        for key, value in zip(keys, raw, strict=True)
        if value
    }


def tick_states_save(pipe: Any, states: Mapping[MarketKey, MarketState]) -> None:
    if states:
        pipe.hset(
            _states_key(),
            mapping={_field(k): json.dumps(s.to_json()) for k, s in states.items()},
        )


def _batch_market_keys(batch: TickBatch) -> list[MarketKey]:
    return market_keys(batch)[1] if len(batch) else []


def ticks_write(
    client: ClickHouse,
    batch: TickBatch,
    *,
    batch_id: str,
    config: QualityConfig,
    now_ns: int | np.ndarray,
) -> tuple[IngestResult, dict[MarketKey, MarketState]]:
    """Check, insert the accepted rows, quarantine the rest; the new states are returned for
    the caller to save in the same Redis transaction that marks the batch processed.

    One insert for the whole batch: splitting a large one so the check of a chunk overlaps
    the insert of the previous was measured slower (each insert runs the candle views once)."""
    states = tick_states_load(_batch_market_keys(batch))
    verdict = evaluate(batch, states, config, now_ns=now_ns)
    accepted = _checked_write(client, batch, verdict, states, batch_id)
    counts = {k: v for k, v in verdict.counts().items() if k != "ok"}
    metrics_record(
        "market_ticks",
        batch_id,
        {"rows_accepted": accepted, "rows_quarantined": len(batch) - accepted},
    )
    result = IngestResult("market_ticks", batch_id, accepted=accepted, quarantined=counts)
    return result, verdict.states


def _checked_write(
    client: ClickHouse,
    batch: TickBatch,
    verdict: Verdict,
    states_before: Mapping[MarketKey, MarketState],
    batch_id: str,
) -> int:
    """Insert a checked batch's accepted rows and quarantine the others; returns accepted."""
    accepted_mask = verdict.accepted
    accepted = int(accepted_mask.sum())
    if accepted == len(batch):
        if accepted:
            client.insert_columns(
                "market_ticks_raw",
                batch.insert_columns(),
                settings=token_settings("ticks", batch_id),
            )
        return accepted
    if accepted:
        client.insert_columns(
            "market_ticks_raw",
            batch.take(accepted_mask).insert_columns(),
            settings=token_settings("ticks", batch_id),
        )
    rows = []
    for i in np.nonzero(~accepted_mask)[0].tolist():
        exchange, symbol = str(batch.exchange[i]), str(batch.symbol[i])
        rows.append(
            QuarantineRow(
                dataset="market_ticks",
                reason=Reason(int(verdict.reasons[i])).label,
                detail=describe(
                    int(verdict.reasons[i]),
                    batch,
                    i,
                    verdict.reference(i),
                    states_before.get((exchange, symbol)),
                ),
                exchange=exchange,
                symbol=symbol,
                event_time=datetime.fromtimestamp(int(batch.timestamp[i]) / NS, tz=UTC),
                sequence_number=int(batch.sequence_number[i]),
                price=Decimal(int(batch.decimals["price"][i])).scaleb(-8),
                payload=batch.row(i),
            )
        )
    quarantine_insert(client, rows, batch_id=batch_id, dataset="market_ticks")
    return accepted


def market_ticks_ingest(
    *,
    batch: TickBatch,
    batch_id: str | None = None,
    backfill: bool = False,
    quality: QualityConfig | None = None,
    now: datetime | None = None,
) -> IngestResult:
    """Check and insert ``batch`` into ``market_ticks_raw`` now (candles follow through the
    materialized views). ``backfill=True`` skips the staleness check (history)."""
    batch_id = batch_id or uuid.uuid4().hex
    config = quality or quality_config(backfill=backfill)
    buffer = Buffer("ticks")
    now_ns = epoch_ns(now) if now else clock_ns()
    # The quality state is shared with the drains: one writer at a time.
    with buffer.locked(wait=60) as acquired:
        if not acquired:
            raise TimeoutError("the tick ingestion lock is held by a stuck drain")
        if buffer.is_processed(batch_id):
            return IngestResult("market_ticks", batch_id, duplicate_batch=True)
        client = get_client()
        result, states = ticks_write(client, batch, batch_id=batch_id, config=config, now_ns=now_ns)
        pipe = buffer.redis.pipeline(transaction=True)
        tick_states_save(pipe, states)
        buffer.mark_processed(pipe, batch_id)
        pipe.execute()
    return result


def epoch_ns(moment: datetime) -> int:
    return int(moment.timestamp()) * NS + moment.microsecond * 1000


def tick_batch_enqueue(*, batch: TickBatch, batch_id: str | None = None) -> BufferItem | None:
    """Buffer ``batch`` for the next drain; asks for a drain at once past TICK_FLUSH_ROWS."""
    if not len(batch):
        return None
    buffer = Buffer("ticks")
    item = buffer.push(batch.to_bytes(), rows=len(batch), item_id=batch_id)
    if buffer.last_total_rows >= int(setting("TICK_FLUSH_ROWS")):
        drain_request(stream="ticks")
    return item


def ticks_listener(ticks: Sequence[Any]) -> None:
    """trading's tick listener (settings.TANDEM["TICK_LISTENERS"]): every published batch of
    ticks goes to the buffer. Never raises -- market data publishing must not fail because
    analytics could not take a copy (the error is logged)."""
    try:
        tick_batch_enqueue(batch=TickBatch.from_ticks(list(ticks)))
    except Exception:
        log.exception("analytics could not buffer %d ticks", len(ticks))


def drain_request(*, stream: str) -> None:
    """Ask a worker to drain ``stream`` now (at most one pending request a stream)."""
    buffer = Buffer(stream)
    if not buffer.redis.set(f"{buffer.list_key}:drain-requested", 1, nx=True, ex=2):
        return
    try:
        from analytics.tasks import buffer_drain_task

        buffer_drain_task.apply_async(args=(stream,))
    except Exception:
        log.exception("could not request a drain of %s", stream)
