"""Staff: data quality -- quarantined rows, ingestion counters, buffers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.clickhouse.client import get_client

# --------------------------------------------------------------------------- data quality


def quality_report(*, hours: int = 24, recent: int = 50) -> dict[str, Any]:
    """Staff: quarantined rows by dataset and reason, the latest ones, ingestion counters
    and the state of the buffers."""
    from analytics.buffer import STREAMS, Buffer

    client = get_client()
    since = datetime.now(tz=UTC) - timedelta(hours=hours)
    counts = client.query_dicts(
        """
        SELECT dataset, reason, countIf(quarantined_at >= {since:DateTime64(3, 'UTC')}) AS recent,
               count() AS total, max(quarantined_at) AS last_seen
        FROM data_quality_quarantine
        GROUP BY dataset, reason
        ORDER BY recent DESC, total DESC
        """,
        {"since": since},
    )
    rows = quarantined_rows(limit=recent)
    metrics = client.query_dicts(
        """
        SELECT tags['dataset'] AS dataset, metric_name, sum(metric_value) AS value
        FROM system_metrics
        WHERE metric_category = 'ingest' AND timestamp >= {since:DateTime64(3, 'UTC')}
        GROUP BY dataset, metric_name
        ORDER BY dataset, metric_name
        """,
        {"since": since},
    )
    buffers = []
    for stream in STREAMS:
        buffer = Buffer(stream)
        buffers.append(
            {
                "stream": stream,
                "pending_rows": buffer.pending_rows(),
                "pending_batches": buffer.pending_items(),
                "dead_batches": buffer.dead_items(),
            }
        )
    return {
        "hours": hours,
        "counts": counts,
        "recent": rows,
        "metrics": metrics,
        "buffers": buffers,
    }


def quarantined_rows(
    *, dataset: str | None = None, reason: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The latest quarantined rows, optionally of one dataset and/or reason."""
    return get_client().query_dicts(
        """
        SELECT quarantined_at, dataset, reason, detail, exchange, symbol, event_time,
               sequence_number, price, payload, batch_id
        FROM data_quality_quarantine
        WHERE ({dataset:String} = '' OR dataset = {dataset:String})
          AND ({reason:String} = '' OR reason = {reason:String})
        ORDER BY quarantined_at DESC, event_time DESC
        LIMIT {limit:UInt32}
        """,
        {"dataset": dataset or "", "reason": reason or "", "limit": int(limit)},
    )
