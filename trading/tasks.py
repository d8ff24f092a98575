"""Trading Celery tasks: thin, they take ids and call one service.

Routed to the ``execution`` queue (market data to ``ingest``) by settings.CELERY_TASK_ROUTES.
Every task is idempotent and acks late: a task whose worker dies is simply run again (or, with
the Redis broker's long visibility timeout, re-dispatched by ``outbox_sweep_task``).
"""

from __future__ import annotations

import json
from typing import Any

from celery import shared_task

from trading import selectors, services
from trading.stores import setting


def dispatch(task: Any, *args: str) -> None:
    """Send ``task``: to TANDEM["EXECUTION_QUEUE"] when one is set (pinning execution to a
    worker pool, or keeping a test's worker to itself), else where CELERY_TASK_ROUTES says."""
    queue = setting("EXECUTION_QUEUE")
    task.apply_async(args=list(args), **({"queue": queue} if queue else {}))


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def order_submit_task(self: Any, order_id: str) -> str:
    outcome = services.order_submit(order_id=order_id)
    if outcome.status == "retry" and outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    return outcome.status


@shared_task(acks_late=True, ignore_result=True)
def orders_submit_bulk_task(order_ids_json: str) -> int:
    """A chunk of orders written by the bulk path (trading.services.bulk); orders sent back to
    the outbox (venue busy or down) continue one by one through ``order_submit_task``."""
    from trading.services.bulk import orders_submit_bulk

    result = orders_submit_bulk(order_ids=json.loads(order_ids_json))
    for order_id, retry_in in result.retries:
        order_submit_task.apply_async(args=(order_id,), countdown=retry_in)
    return result.submitted


@shared_task(bind=True, acks_late=True, max_retries=None, ignore_result=True)
def order_cancel_task(self: Any, order_id: str) -> str:
    outcome = services.order_cancel_execute(order_id=order_id)
    if outcome.status == "retry" and outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, max_retries=None)
    return outcome.status


@shared_task(acks_late=True, ignore_result=True)
def outbox_sweep_task() -> int:
    return services.outbox_sweep()


@shared_task(acks_late=True, ignore_result=True)
def market_simulator_step() -> int:
    return services.market_simulator_step().ticks


@shared_task(acks_late=True, ignore_result=True)
def position_mark_all_task() -> int:
    return services.position_mark_all()


@shared_task(acks_late=True, ignore_result=True)
def wallet_fills_sync_task(agent_wallet_id: str) -> int:
    wallet = selectors.agent_wallet_for_system(agent_wallet_id=agent_wallet_id)
    return services.wallet_fills_sync(agent_wallet=wallet)


@shared_task(acks_late=True, ignore_result=True)
def reconcile_agent_wallet_task(agent_wallet_id: str) -> str:
    wallet = selectors.agent_wallet_for_system(agent_wallet_id=agent_wallet_id)
    return services.reconcile_agent_wallet(agent_wallet=wallet).error or "ok"


@shared_task(acks_late=True, ignore_result=True)
def reconcile_all_task() -> int:
    """Fan out: one reconciliation task per wallet with something to reconcile."""
    ids = selectors.agent_wallet_ids_to_reconcile()
    for agent_wallet_id in ids:
        dispatch(reconcile_agent_wallet_task, agent_wallet_id)
    return len(ids)


@shared_task(acks_late=True, ignore_result=True)
def fills_sync_all_task() -> int:
    """Fan out: pull new fills for every wallet with orders in flight or open positions."""
    ids = selectors.agent_wallet_ids_to_reconcile()
    for agent_wallet_id in ids:
        dispatch(wallet_fills_sync_task, agent_wallet_id)
    return len(ids)
