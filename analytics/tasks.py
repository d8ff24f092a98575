"""Analytics Celery tasks: thin, each calls one service.

Drains run on the ``ingest`` queue (every second from beat, and at once when a listener
pushes a buffer past its size threshold); rollups on ``default``. Every task is idempotent
(deduplication tokens, replacing tables), so a redelivery after a lost worker is harmless.
"""

from __future__ import annotations

from celery import shared_task

from analytics import services


@shared_task(acks_late=True, ignore_result=True)
def buffers_drain_task() -> int:
    """Beat, every second: drain every buffer (flush by time)."""
    return sum(result.rows for result in services.buffers_drain_all(time_budget=5.0))


@shared_task(acks_late=True, ignore_result=True)
def buffer_drain_task(stream: str) -> int:
    """One stream at once (flush by size, requested by the producer)."""
    return services.buffer_drain(stream=stream).rows


@shared_task(acks_late=True, ignore_result=True)
def trader_kpis_refresh_task() -> int:
    return services.trader_kpis_refresh().periods


@shared_task(acks_late=True, ignore_result=True)
def trader_scores_publish_task() -> int:
    return services.trader_scores_publish()


@shared_task(acks_late=True, ignore_result=True)
def liq_heatmap_build_task() -> int:
    return services.liq_heatmap_build().bins
