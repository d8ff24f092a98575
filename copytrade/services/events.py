"""What the engine decided, told to the customer (live stream) and to ClickHouse
(``copy_trade_events``: latency from the leader's fill to each step, slippage against the
leader's price).

Two moments per decision:

* when it is made (``decisions_announce``, after commit): the decision to its owner's
  ``account`` stream; a ``decision`` row to ClickHouse with the signal latency (leader fill ->
  seen) and the decision latency (leader fill -> decided);
* when its order is final (``copy_outcomes_record``, from the fill listener and a beat task):
  an ``order_filled`` / ``order_cancelled`` / ``order_failed`` row with the latency to submitted
  and to filled, and the slippage in bps (positive: worse than the leader). Decisions carry
  ``outcome_recorded_at``, so a crash before the mark sends again (at least once; rows have a
  stable ``event_id``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from copytrade.live import decisions_publish
from copytrade.models import CopyDecision, DecisionOutcome
from trading.models import FINAL_STATUSES, Fill

logger = logging.getLogger(__name__)
BPS = Decimal(10_000)


def _ms_between(start: datetime | None, end: datetime | None) -> int:
    if start is None or end is None:
        return 0
    return max(int((end - start).total_seconds() * 1000), 0)


def _event_id(*parts: Any) -> str:
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:32]


def decisions_announce(*, decision_ids: Sequence[str]) -> int:
    """Live update per decision to its owner, and one ClickHouse batch for all of them."""
    from analytics.batches import CopyTradeEventRow
    from analytics.services import rows_enqueue

    decisions = list(CopyDecision.objects.filter(pk__in=list(decision_ids)))
    decisions_publish(decisions)
    rows = []
    for d in decisions:
        rows.append(
            CopyTradeEventRow(
                strategy_id=str(d.strategy_id),
                user_id=str(d.user_id),
                source_trader_id=str(d.trader_id or ""),
                event_type="decision",
                symbol=d.coin,
                timestamp=d.created_at,
                event_id=_event_id("decision", d.pk),
                latency_ms=_ms_between(d.leader_time, d.created_at),
                order_id=str(d.order_id or ""),
                quantity=d.quantity or Decimal(0),
                price=d.limit_price or Decimal(0),
                leader_price=d.leader_price or Decimal(0),
                side=d.side,
                status="success" if d.outcome == DecisionOutcome.PLACED else d.outcome,
                error_code=d.reason_code,
                metadata={
                    "source_event_id": d.source_event_id,
                    "kind": d.kind,
                    "version": d.version_number,
                    "seen_latency_ms": _ms_between(d.leader_time, d.seen_at),
                    "decide_latency_ms": _ms_between(d.seen_at, d.created_at),
                },
            )
        )
    if rows:
        ids = sorted(str(d.pk) for d in decisions)
        batch = "decisions-" + hashlib.sha256("|".join(ids).encode()).hexdigest()[:24]
        try:
            rows_enqueue(dataset="copy_trade_events", rows=rows, batch_id=batch)
        except Exception:
            logger.exception("copy_trade_events for %d decisions not buffered", len(rows))
    return len(decisions)


def slippage_bps(side: str, leader_price: Decimal, price: Decimal) -> int:
    """Basis points the follower paid beyond the leader's price (negative: better)."""
    if not leader_price:
        return 0
    diff = (price - leader_price) if side == "buy" else (leader_price - price)
    return int((diff / leader_price * BPS).to_integral_value())


def copy_outcomes_record(*, limit: int = 2000) -> int:
    """ClickHouse rows for decisions whose order reached a final status (module docstring)."""
    from analytics.batches import CopyTradeEventRow
    from analytics.services import rows_enqueue

    with transaction.atomic():
        decisions = list(
            CopyDecision.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("order")
            .filter(
                order__isnull=False,
                outcome_recorded_at__isnull=True,
                order__status__in=list(FINAL_STATUSES),
            )
            .order_by("created_at")[:limit]
        )
        if not decisions:
            return 0
        fees = {
            order_id: (realized, fee)
            for order_id, realized, fee in _fill_totals([d.order_id for d in decisions])
        }
        rows = []
        for d in decisions:
            order = d.order
            assert order is not None
            filled = order.filled_quantity > 0
            price = order.average_price or order.price or Decimal(0)
            realized, fee = fees.get(order.pk, (Decimal(0), Decimal(0)))
            rows.append(
                CopyTradeEventRow(
                    strategy_id=str(d.strategy_id),
                    user_id=str(d.user_id),
                    source_trader_id=str(d.trader_id or ""),
                    event_type=f"order_{order.status}",
                    symbol=d.coin,
                    timestamp=order.filled_at
                    or order.cancelled_at
                    or order.failed_at
                    or timezone.now(),
                    event_id=_event_id("outcome", d.pk),
                    latency_ms=_ms_between(
                        d.leader_time, order.first_fill_at or order.filled_at or order.submitted_at
                    ),
                    slippage_bps=slippage_bps(order.side, d.leader_price or Decimal(0), price)
                    if filled
                    else 0,
                    order_id=str(order.pk),
                    quantity=order.filled_quantity,
                    price=price,
                    leader_price=d.leader_price or Decimal(0),
                    side=order.side,
                    status="success"
                    if order.status == "filled"
                    else ("partial" if filled else "failed"),
                    error_code=order.error_code or "",
                    realized_pnl=realized,
                    fee=fee,
                    metadata={
                        "source_event_id": d.source_event_id,
                        "version": d.version_number,
                        "seen_latency_ms": _ms_between(d.leader_time, d.seen_at),
                        "created_latency_ms": _ms_between(d.leader_time, order.created_at),
                        "submitted_latency_ms": _ms_between(d.leader_time, order.submitted_at),
                        "filled_latency_ms": _ms_between(d.leader_time, order.filled_at),
                    },
                )
            )
        ids = sorted(str(d.pk) for d in decisions)
        batch = "outcomes-" + hashlib.sha256("|".join(ids).encode()).hexdigest()[:24]
        rows_enqueue(dataset="copy_trade_events", rows=rows, batch_id=batch)
        CopyDecision.objects.filter(pk__in=[d.pk for d in decisions]).update(
            outcome_recorded_at=timezone.now()
        )
    return len(decisions)


def _fill_totals(order_ids: list[Any]) -> list[tuple[Any, Decimal, Decimal]]:
    from django.db.models import Sum

    return [
        (row["order_id"], row["realized"] or Decimal(0), row["fee"] or Decimal(0))
        for row in Fill.objects.filter(order_id__in=order_ids)
        .values("order_id")
        .annotate(realized=Sum("realized_pnl"), fee=Sum("fee"))
    ]


def copy_fills_listener(fill_ids: Sequence[Any]) -> None:
    """Trading fill listener (settings.TANDEM["FILL_LISTENERS"]): fills of copy orders have
    their outcome recorded soon (a task; this runs after the fills' commit)."""
    if not Fill.objects.filter(pk__in=list(fill_ids), order__is_copy_trade=True).exists():
        return
    from copytrade.tasks import copy_outcomes_record_task

    copy_outcomes_record_task.delay()
