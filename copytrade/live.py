"""Copy trading's live updates (protocol and delivery: config.streams, config.consumers).

* ``trader.<id>`` -- a public trader's new fills and moved positions, from ingestion;
* ``leaderboard`` -- score changes (analytics' KPI rollup) and follower counts (strategies
  starting or stopping); the consumer coalesces it to one burst a second per client;
* ``account`` -- a customer's strategy status (``strategy``) and the engine's decisions
  (``decision``), to that customer's sockets only.

Everything here is published after the database commit (``*_on_commit``; decisions are
announced from a task that runs after it), from services, never from views. Payloads are
built here once, so a snapshot (copytrade.consumers) and a delta carry the same shape.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.db import transaction

from config import streams
from copytrade.models import CopyDecision, CopyStrategy, TraderEvent, TraderPosition

logger = logging.getLogger(__name__)

LEADERBOARD = "leaderboard"
# A delivery can hold up to 2,000 fills (the venue's cap on one answer): the stream carries the
# newest few, a client wanting more reads the REST history.
TRADER_FILLS_PER_DELIVERY = 50


def trader_stream(trader_id: uuid.UUID | str) -> str:
    return f"trader.{trader_id}"


# --------------------------------------------------------------------------- payloads


def trader_event_payload(row: TraderEvent) -> dict[str, Any]:
    return {
        "id": str(row.pk),
        "coin": row.coin,
        "side": row.side,
        "price": str(row.price),
        "size": str(row.size),
        "start_position": None if row.start_position is None else str(row.start_position),
        "direction": row.direction,
        "closed_pnl": str(row.closed_pnl),
        "time": row.time_ms,
    }


def trader_position_payload(position: TraderPosition) -> dict[str, Any]:
    return {
        "coin": position.coin,
        "quantity": str(position.quantity),
        "entry_price": None if position.entry_price is None else str(position.entry_price),
        "leverage": None if position.leverage is None else str(position.leverage),
        "opened_at": position.opened_at_ms,
    }


def strategy_payload(strategy: CopyStrategy) -> dict[str, Any]:
    return {
        "id": str(strategy.pk),
        "name": strategy.name,
        "status": strategy.status,
        "status_display": strategy.get_status_display(),  # what the portal's badge shows
        "status_reason": strategy.status_reason,
        "mode": strategy.mode,
        "version": strategy.version.number if strategy.version_id and strategy.version else None,
        "alignment_rate": str(strategy.alignment_rate),
        "started_at": strategy.started_at.isoformat() if strategy.started_at else None,
    }


def decision_payload(d: CopyDecision) -> dict[str, Any]:
    return {
        "id": str(d.pk),
        "strategy_id": str(d.strategy_id),
        "kind": d.kind,
        "outcome": d.outcome,
        "reason_code": d.reason_code,
        "reason": d.reason,
        "coin": d.coin,
        "leader_side": d.leader_side,
        "leader_size": str(d.leader_size),
        "leader_price": None if d.leader_price is None else str(d.leader_price),
        "side": d.side,
        "quantity": None if d.quantity is None else str(d.quantity),
        "limit_price": None if d.limit_price is None else str(d.limit_price),
        "order_id": None if d.order_id is None else str(d.order_id),
        "version": d.version_number,
        "created_at": d.created_at.isoformat(),
    }


# --------------------------------------------------------------------------- trader streams


def trader_activity_publish_on_commit(
    *, trader_id: uuid.UUID, fills: Sequence[TraderEvent], positions: Iterable[TraderPosition]
) -> None:
    """A delivery's new fills (oldest first, the newest few) and the positions they moved."""
    stream = trader_stream(trader_id)
    newest = sorted(fills, key=lambda r: (r.time_ms, r.seq))[-TRADER_FILLS_PER_DELIVERY:]
    # Payloads are built now, inside the transaction, from the rows as written: after the
    # commit another delivery may already have moved the position again, and it publishes its
    # own state with a higher sequence.
    events = [("fill", trader_event_payload(row)) for row in newest]
    events += [("position", trader_position_payload(p)) for p in positions]
    if events:
        transaction.on_commit(lambda: _publish_all(stream, events))


def _publish_all(stream: str, events: list[tuple[str, dict[str, Any]]]) -> None:
    try:
        for event_type, data in events:
            streams.publish(stream, event_type, data)
    except Exception:  # a live update must never break ingestion (the REST history has it)
        logger.exception("publishing %d events to %s failed", len(events), stream)


# --------------------------------------------------------------------------- account stream


def strategy_publish_on_commit(strategy: CopyStrategy, *, followers_changed: bool = False) -> None:
    """The strategy's state to its owner's ``account`` stream; when it started or stopped
    copying, its traders' follower counts to the ``leaderboard`` stream too."""
    streams.publish_account_on_commit(strategy.user_id, "strategy", strategy_payload(strategy))
    if followers_changed:
        trader_ids = list(strategy.allocations.values_list("trader_id", flat=True))
        if trader_ids:
            transaction.on_commit(lambda: leaderboard_followers_publish(trader_ids=trader_ids))


def decisions_publish(decisions: Iterable[CopyDecision]) -> int:
    """Each decision to its owner's ``account`` stream (called after the commit)."""
    count = 0
    for d in decisions:
        try:
            streams.publish_account(d.user_id, "decision", decision_payload(d))
            count += 1
        except Exception:  # a live update must never break copying
            logger.exception("decision %s not published", d.pk)
    return count


# --------------------------------------------------------------------------- leaderboard


def leaderboard_scores_publish_on_commit(scores: dict[str, str]) -> None:
    """Traders' new copy scores (``{trader id: score}``)."""
    if scores:
        transaction.on_commit(lambda: _leaderboard_publish({"scores": scores}))


def leaderboard_followers_publish(*, trader_ids: Sequence[uuid.UUID | str]) -> None:
    """The follower counts of these traders as committed (read now, after the commit, so two
    strategies starting at once both count)."""
    from copytrade.selectors import trader_directory

    counts = {
        str(t.pk): int(cast(Any, t).followers)  # annotated by the selector
        for t in trader_directory(trader_ids=trader_ids).only("pk")
    }
    if counts:
        _leaderboard_publish({"followers": counts})


def _leaderboard_publish(data: dict[str, Any]) -> None:
    try:
        streams.publish(LEADERBOARD, LEADERBOARD, data)
    except Exception:  # the leaderboard page reloads the ranking anyway
        logger.exception("leaderboard update not published")
