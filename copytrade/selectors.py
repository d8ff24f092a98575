"""Copy trading: every read. Customer reads are scoped to the acting user (another user's
strategy or decision is "not found"); public trader reads expose only public data; the few
system reads used by tasks say so in their names."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from config.errors import NotFound, ValidationFailed
from copytrade.models import (
    AllocationStatus,
    CopyAllocation,
    CopyDecision,
    CopySlot,
    CopyStrategy,
    StrategyStatus,
    StrategyVersion,
    Trader,
    TraderEvent,
    TraderPosition,
)

logger = logging.getLogger(__name__)


def _uuid(value: Any, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError) as exc:
        raise NotFound(f"{what} not found.") from exc


# --------------------------------------------------------------------------- traders (public)


def trader_directory(
    *,
    trader_ids: Iterable[uuid.UUID | str] | None = None,
    tag: str | None = None,
    active_only: bool = True,
) -> QuerySet[Trader]:
    """Traders anyone may see (leaderboard, public trader pages), annotated with
    ``followers``: distinct customers with an active allocation to the trader in an active
    strategy. Public data only -- no customer is identifiable from it."""
    traders = Trader.objects.all()
    if active_only:
        traders = traders.filter(is_active=True)
    if trader_ids is not None:
        traders = traders.filter(pk__in=list(trader_ids))
    if tag:
        traders = traders.filter(tags__contains=[tag])
    return traders.annotate(
        followers=Count(
            "allocations__strategy__user",
            filter=Q(
                allocations__status=AllocationStatus.ACTIVE,
                allocations__strategy__status=StrategyStatus.ACTIVE,
            ),
            distinct=True,
        )
    )


def trader_get(*, trader_id: uuid.UUID | str) -> Trader:
    """A public (active) trader, with its follower count."""
    trader = trader_directory(trader_ids=[_uuid(trader_id, "Trader")]).first()
    if trader is None:
        raise NotFound("Trader not found.", field="trader")
    return trader


def trader_for_system(*, trader_id: uuid.UUID | str) -> Trader:
    """System scope (tasks): any trader, active or not."""
    try:
        return Trader.objects.get(pk=_uuid(trader_id, "Trader"))
    except Trader.DoesNotExist as exc:
        raise NotFound("Trader not found.", field="trader") from exc


def trader_fills_recent(*, trader: Trader, limit: int = 50) -> QuerySet[TraderEvent]:
    return TraderEvent.objects.filter(trader=trader).order_by("-time_ms", "-seq")[:limit]


def trader_positions_open(*, trader: Trader) -> QuerySet[TraderPosition]:
    return TraderPosition.objects.filter(trader=trader).exclude(quantity=0).order_by("coin")


def trader_tags() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT unnest(tags) AS tag FROM traders WHERE is_active ORDER BY tag"
        )
        return [row[0] for row in cursor.fetchall()]


# --------------------------------------------------------------------------- leaderboard

PERIODS = ("1d", "7d", "30d", "all")
METRICS = ("pnl", "roi", "win_rate", "sharpe", "drawdown", "copy_score", "followers")


def leaderboard(
    *,
    period: str = "30d",
    metric: str = "copy_score",
    tag: str | None = None,
    min_days: int = 0,
    limit: int = 50,
) -> dict[str, Any]:
    """Traders ranked by ``metric`` over ``period`` (analytics' KPIs from ClickHouse).

    Returns ``{"entries": [...], "kpis_available": bool}``. When the KPI store cannot answer,
    the active traders are listed by public score and followers instead (``kpis_available``
    False), so the page still works; bad parameters are a 400 either way.
    """
    from analytics import selectors as analytics_selectors

    if period not in PERIODS:
        raise ValidationFailed(f"period is one of {', '.join(PERIODS)}.", field="period")
    if metric not in METRICS:
        raise ValidationFailed(f"metric is one of {', '.join(METRICS)}.", field="metric")
    try:
        entries = analytics_selectors.leaderboard(
            period=period, metric=metric, tag=tag or None, min_days=min_days, limit=limit
        )
        return {"entries": entries, "kpis_available": True}
    except ValidationFailed:
        raise
    except Exception:  # ClickHouse down: degrade to what PostgreSQL knows
        logger.exception("leaderboard KPIs unavailable")
    traders = cast(Any, trader_directory(tag=tag or None)).order_by(
        "-public_score", "-followers", "alias"
    )
    fallback = [
        {
            "rank": rank,
            "trader_id": t.pk,
            "alias": t.alias,
            "exchange": t.exchange,
            "tags": list(t.tags),
            "followers": int(getattr(t, "followers", 0)),
            "copy_score": t.public_score,
        }
        for rank, t in enumerate(traders[:limit], start=1)
    ]
    return {"entries": fallback, "kpis_available": False}


# --------------------------------------------------------------------------- strategies


def strategy_list(*, user: Any) -> QuerySet[CopyStrategy]:
    return (
        CopyStrategy.objects.filter(user=user)
        .select_related("agent_wallet", "version")
        .prefetch_related("allocations__trader")
    )


def strategy_get(*, user: Any, strategy_id: uuid.UUID | str) -> CopyStrategy:
    try:
        return strategy_list(user=user).get(pk=_uuid(strategy_id, "Strategy"))
    except (CopyStrategy.DoesNotExist, DjangoValidationError) as exc:
        raise NotFound("Strategy not found.", field="strategy") from exc


def strategy_for_system(*, strategy_id: uuid.UUID | str) -> CopyStrategy:
    try:
        return CopyStrategy.objects.select_related("agent_wallet", "user", "version").get(
            pk=_uuid(strategy_id, "Strategy")
        )
    except CopyStrategy.DoesNotExist as exc:
        raise NotFound("Strategy not found.", field="strategy") from exc


def strategy_allocations(*, strategy: CopyStrategy) -> QuerySet[CopyAllocation]:
    return strategy.allocations.select_related("trader").order_by("-weight", "trader__alias")


def strategy_versions(*, strategy: CopyStrategy) -> QuerySet[StrategyVersion]:
    return strategy.versions.select_related("created_by").order_by("-number")


def strategy_positions(*, strategy: CopyStrategy) -> list[dict[str, Any]]:
    """The strategy's share of each leader position, per coin and trader."""
    return [
        {
            "trader_id": slot.trader_id,
            "trader": slot.trader.alias,
            "coin": slot.symbol.name,
            "quantity": slot.attributable,
            "remainder": slot.remainder,
        }
        for slot in CopySlot.objects.filter(strategy=strategy)
        .select_related("trader", "symbol")
        .order_by("symbol__name", "trader__alias")
        if slot.attributable or slot.remainder
    ]


# --------------------------------------------------------------------------- decisions


def decision_list(
    *,
    user: Any,
    strategy_id: uuid.UUID | str | None = None,
    outcome: str | None = None,
    reason_code: str | None = None,
) -> QuerySet[CopyDecision]:
    decisions = CopyDecision.objects.filter(user=user).select_related("trader", "order")
    if strategy_id is not None:
        decisions = decisions.filter(strategy_id=_uuid(strategy_id, "Strategy"))
    if outcome:
        decisions = decisions.filter(outcome=outcome)
    if reason_code:
        decisions = decisions.filter(reason_code=reason_code)
    return decisions


def decision_get(*, user: Any, decision_id: uuid.UUID | str) -> CopyDecision:
    try:
        return decision_list(user=user).get(pk=_uuid(decision_id, "Decision"))
    except CopyDecision.DoesNotExist as exc:
        raise NotFound("Decision not found.", field="decision") from exc


def decision_summary(*, strategy: CopyStrategy) -> dict[str, Any]:
    rows = (
        CopyDecision.objects.filter(strategy=strategy)
        .values("outcome", "reason_code")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    summary: dict[str, Any] = {"placed": 0, "skipped": 0, "refused": 0, "reasons": {}}
    for row in rows:
        summary[row["outcome"]] = summary.get(row["outcome"], 0) + row["n"]
        if row["reason_code"]:
            summary["reasons"][row["reason_code"]] = row["n"]
    return summary


_LATENCY_SQL = """
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.seen_at - d.leader_time)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM d.created_at - d.seen_at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.submitted_at - d.seen_at)),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM o.submitted_at - d.seen_at)),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM o.filled_at - d.leader_time)),
       avg(CASE WHEN o.average_price IS NOT NULL AND d.leader_price > 0 THEN
           (CASE WHEN o.side = 'buy' THEN o.average_price - d.leader_price
                 ELSE d.leader_price - o.average_price END) / d.leader_price * 10000 END)
  FROM copy_decisions d
  JOIN orders o ON o.id = d.order_id
 WHERE d.strategy_id = %s AND d.created_at >= %s
"""


def strategy_latency(*, strategy: CopyStrategy, days: int = 30) -> dict[str, Any]:
    """Copy latency of the strategy's orders (median seconds per step; submit p95) and the
    average slippage against the leader in bps (positive: paid more than the leader)."""
    with connection.cursor() as cursor:
        cursor.execute(_LATENCY_SQL, [strategy.pk, timezone.now() - timedelta(days=days)])
        row = cursor.fetchone()
    count, seen, decide, submit, submit95, fill, slip = row or (0, *([None] * 6))

    def ms(value: Any) -> int | None:
        return None if value is None else int(Decimal(str(value)) * 1000)

    return {
        "orders": int(count or 0),
        "signal_ms_p50": ms(seen),
        "decide_ms_p50": ms(decide),
        "submit_ms_p50": ms(submit),
        "submit_ms_p95": ms(submit95),
        "fill_ms_p50": ms(fill),
        "slippage_bps_avg": None if slip is None else round(float(slip), 2),
    }


def strategies_for_account(user: Any) -> list[dict[str, Any]]:
    """The ``strategies`` part of the account stream snapshot."""
    from copytrade.live import strategy_payload

    return [
        strategy_payload(s)
        for s in strategy_list(user=user).exclude(status=StrategyStatus.TERMINATED)[:100]
    ]
