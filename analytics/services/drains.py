"""Draining the Redis buffers into ClickHouse (analytics.buffer describes the protocol)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.batches import (
    TickBatch,
    rows_from_json,
)
from analytics.buffer import Buffer, Claim
from analytics.clickhouse.client import ClickHouse, get_client
from analytics.conf import setting
from analytics.services.ingest_common import (
    NS,
    UNAVAILABLE,
    IngestResult,
    quality_config,
)
from analytics.services.rows import ROW_DATASETS, rows_write
from analytics.services.ticks import tick_states_save, ticks_write
from config.errors import ValidationFailed

log = logging.getLogger("analytics.ingest")

# ======================================================================================
# Drains


@dataclass(frozen=True)
class DrainResult:
    stream: str
    batches: int = 0
    rows: int = 0
    quarantined: int = 0
    deferred: bool = False  # ClickHouse unreachable: rows stay buffered
    dead_lettered: int = 0
    busy: bool = False  # another drain holds the stream
    error: str = ""


def buffer_drain(*, stream: str, max_rows: int | None = None) -> DrainResult:
    """Insert the oldest buffered batches of ``stream`` (one claim); see analytics.buffer."""
    buffer = Buffer(stream)
    limit = int(max_rows or setting("DRAIN_MAX_ROWS"))
    with buffer.locked() as acquired:
        if not acquired:
            return DrainResult(stream, busy=True)
        claim = buffer.claim(max_rows=limit)
        if claim is None:
            return DrainResult(stream)
        try:
            client = get_client()
            result, extra = drain_write(client, stream, claim)
        except UNAVAILABLE as exc:
            log.warning("ClickHouse unavailable, %s stays buffered: %s", stream, exc)
            return DrainResult(stream, deferred=True, error=f"{type(exc).__name__}: {exc}")
        except Exception as exc:
            if claim.attempts >= int(setting("DRAIN_MAX_ATTEMPTS")):
                log.exception("dead-lettering %d %s batches", claim.count, stream)
                buffer.dead_letter(claim, f"{type(exc).__name__}: {exc}")
                return DrainResult(stream, dead_lettered=claim.count, error=str(exc))
            raise
        buffer.ack(claim, extra=extra)
    return DrainResult(
        stream,
        batches=claim.count,
        rows=result.accepted,
        quarantined=result.quarantined_total,
    )


def drain_write(
    client: ClickHouse, stream: str, claim: Claim
) -> tuple[IngestResult, Callable[[Any], None] | None]:
    if not claim.items:
        return IngestResult(stream, claim.token), None
    if stream == "ticks":
        batches = [TickBatch.from_bytes(item.payload) for item in claim.items]
        # Staleness is judged against when each batch arrived, not when it is drained.
        arrived = np.concatenate(
            [
                np.full(len(b), int(item.enqueued_at * NS), dtype=np.int64)
                for b, item in zip(batches, claim.items, strict=True)
            ]
        )
        result, states = ticks_write(
            client,
            TickBatch.concat(batches),
            batch_id=claim.token,
            config=quality_config(),
            now_ns=arrived,
        )
        return result, lambda pipe: tick_states_save(pipe, states)
    spec = ROW_DATASETS[stream]
    rows: list[Any] = [
        row for item in claim.items for row in rows_from_json(spec.row_type, item.payload)
    ]
    return rows_write(client, spec, rows, batch_id=claim.token), None


def buffers_drain_all(*, time_budget: float = 5.0) -> list[DrainResult]:
    """Drain every stream until it is empty, ClickHouse is unreachable, or time is up."""
    from analytics.buffer import STREAMS

    deadline = time.monotonic() + time_budget
    results = []
    for stream in STREAMS:
        while time.monotonic() < deadline:
            result = buffer_drain(stream=stream)
            results.append(result)
            if result.deferred:
                return results
            if result.busy or not (result.batches or result.dead_lettered):
                break
    return results


def buffer_dead_letters_requeue(*, stream: str, actor: Any = None) -> int:
    """Put a stream's dead-lettered batches back in line (staff, once the cause is fixed)."""
    from accounts.services import audit_log_record

    buffer = Buffer(stream)
    with buffer.locked(wait=30) as acquired:
        if not acquired:
            raise TimeoutError(f"the {stream} buffer is being drained; try again")
        if buffer.redis.exists(buffer.inflight_key):
            raise ValidationFailed("A drain of this stream is in progress.", field="stream")
        moved = buffer.requeue_dead()
    audit_log_record(
        action="analytics_dead_letters_requeue",
        actor=actor,
        resource_type="analytics_buffer",
        new_values={"stream": stream, "batches": moved},
        immediate=True,
    )
    return moved
