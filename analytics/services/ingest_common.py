"""Shared by the ingestion services: results, deduplication tokens, the quarantine and
ingestion counters."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clickhouse_driver import errors as driver_errors

from analytics.batches import (
    MetricRow,
    rows_to_json,
)
from analytics.buffer import Buffer
from analytics.clickhouse.client import ClickHouse, PoolTimeoutError
from analytics.conf import setting
from analytics.quality import (
    QualityConfig,
)

# Errors that mean "ClickHouse is not there right now": rows stay buffered, no attempt counted.
UNAVAILABLE = (driver_errors.NetworkError, OSError, EOFError, PoolTimeoutError)
NS = 1_000_000_000


@dataclass(frozen=True)
class IngestResult:
    dataset: str
    batch_id: str
    accepted: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    duplicate_batch: bool = False

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())


def quality_config(*, backfill: bool = False) -> QualityConfig:
    config = QualityConfig.from_settings(setting("QUALITY"))
    return config.for_backfill() if backfill else config


def clock_ns() -> int:
    return time.time_ns()


def token_settings(dataset: str, batch_id: str) -> dict[str, str]:
    return {"insert_deduplication_token": f"{dataset}:{batch_id}"}


# ======================================================================================
# Quarantine and metrics


QUARANTINE_COLUMNS = (
    "quarantined_at",
    "dataset",
    "reason",
    "detail",
    "exchange",
    "symbol",
    "event_time",
    "sequence_number",
    "price",
    "payload",
    "batch_id",
)


@dataclass(frozen=True)
class QuarantineRow:
    dataset: str
    reason: str
    detail: str
    exchange: str
    symbol: str
    event_time: datetime
    sequence_number: int
    price: Decimal
    payload: dict[str, Any]


def quarantine_insert(
    client: ClickHouse, rows: Sequence[QuarantineRow], *, batch_id: str, dataset: str
) -> None:
    if not rows:
        return
    at = datetime.now(tz=UTC)
    client.insert_rows(
        "data_quality_quarantine",
        QUARANTINE_COLUMNS,
        [
            (
                at,
                row.dataset,
                row.reason,
                row.detail[:500],
                row.exchange,
                row.symbol,
                row.event_time,
                row.sequence_number,
                row.price,
                json.dumps(row.payload, default=str, separators=(",", ":")),
                batch_id,
            )
            for row in rows
        ],
        settings=token_settings(f"quarantine:{dataset}", batch_id),
    )


def metrics_record(dataset: str, batch_id: str, values: Mapping[str, float]) -> None:
    """Ingestion counters go through the ``metrics`` buffer (one Redis push, no ClickHouse
    round trip and no tiny part per batch); a batch's counters are recorded once."""
    at = datetime.now(tz=UTC)
    rows = [
        MetricRow(
            timestamp=at,
            category="ingest",
            name=name,
            value=float(value),
            tags={"dataset": dataset},
        )
        for name, value in values.items()
    ]
    Buffer("metrics").push(rows_to_json(rows), rows=len(rows), item_id=f"{dataset}:{batch_id}")
