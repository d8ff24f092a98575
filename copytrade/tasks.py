"""Copy-trading Celery tasks: thin, they take ids and call one service.

Routed by settings.CELERY_TASK_ROUTES: fill ingestion and polling to ``ingest``, the rest to
``default``. Every task is idempotent (fills dedupe on their id, decisions on (strategy, event),
exports and outcome records are marked), so a redelivery is harmless.
"""

from __future__ import annotations

import logging

from celery import shared_task

from copytrade import services

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def trader_events_export_task() -> int:
    """Unexported leader fills -> ClickHouse trader_events (also on beat: catches misses)."""
    return services.trader_events_export()


@shared_task(acks_late=True, ignore_result=True)
def copy_outcomes_record_task() -> int:
    return services.copy_outcomes_record()


@shared_task(acks_late=True, ignore_result=True)
def decisions_announce_task(decision_ids: list[str]) -> int:
    return services.decisions_announce(decision_ids=decision_ids)


@shared_task(acks_late=True, ignore_result=True)
def follower_equities_refresh_task(wallet_ids: list[str] | None = None) -> int:
    return services.follower_equities_refresh(wallet_ids=wallet_ids)


@shared_task(acks_late=True, ignore_result=True)
def strategies_align_task() -> int:
    """Beat: alignment rate of every running strategy, and rebalance orders where asked."""
    return services.strategies_align()


@shared_task(acks_late=True, ignore_result=True)
def trader_fills_poll_task(trader_id: str) -> int:
    from copytrade.selectors import trader_for_system

    return services.trader_fills_poll(trader=trader_for_system(trader_id=trader_id)).new


@shared_task(acks_late=True, ignore_result=True)
def traders_poll_task() -> int:
    """Beat: one poll task per watched venue trader (catch-up and beyond the websockets)."""
    ids = services.traders_to_poll()
    for trader_id in ids:
        trader_fills_poll_task.delay(trader_id)
    return len(ids)


@shared_task(acks_late=True, ignore_result=True)
def trader_account_refresh_task(trader_id: str) -> bool:
    from copytrade.selectors import trader_for_system

    return services.trader_account_refresh(trader=trader_for_system(trader_id=trader_id))


@shared_task(acks_late=True, ignore_result=True)
def traders_account_refresh_task() -> int:
    ids = services.traders_to_poll()
    for trader_id in ids:
        trader_account_refresh_task.delay(trader_id)
    return len(ids)


@shared_task(acks_late=True, ignore_result=True)
def demo_traders_step_task() -> int:
    """Beat (embedded runs): the simulated traders trade the simulated market."""
    return services.demo_traders_step()
