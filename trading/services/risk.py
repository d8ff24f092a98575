"""Risk limits and risk events: the pre-trade checks and the record of what they refused.

A check that fails writes a ``risk_events`` row and refuses the order (the order itself is never
written). A breached *loss* limit (daily loss, drawdown) also pauses copying: the order's
strategy, or for a user-wide limit every running strategy of the user, through
``copytrade.services``. Orders that only reduce a position pass the loss and position-value
limits: a customer in trouble must always be able to get out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from config.errors import ValidationFailed
from trading.models import (
    Fill,
    Order,
    Position,
    RiskEvent,
    RiskEventType,
    RiskLimit,
    RiskSeverity,
)

if TYPE_CHECKING:
    from accounts.models import AgentWallet, User
    from copytrade.models import CopyStrategy
    from trading.models import Symbol

ZERO = Decimal(0)
_MONEY = DecimalField(max_digits=24, decimal_places=8)


class RiskLimitExceeded(ValidationFailed):
    """An order refused by a risk limit (HTTP 400 with the limit as the field)."""

    default_code = "risk_limit_exceeded"


@dataclass(frozen=True)
class Breach:
    limit: RiskLimit
    metric: str
    value: Decimal
    threshold: Decimal
    reason: str
    pauses: bool = False

    @property
    def scope(self) -> str:
        return "strategy" if self.limit.strategy_id else "account"


@dataclass(frozen=True)
class ProposedOrder:
    """What the checks need to know about an order that is not written yet."""

    user: User
    agent_wallet: AgentWallet
    symbol: Symbol
    strategy: CopyStrategy | None
    side: str
    quantity: Decimal
    reference_price: Decimal | None
    leverage: Decimal | None
    reduce_only: bool

    def as_details(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol.name,
            "venue": self.symbol.venue,
            "side": self.side,
            "quantity": str(self.quantity),
            "leverage": str(self.leverage or ""),
            "reference_price": str(self.reference_price or ""),
            "reduce_only": self.reduce_only,
        }


def risk_limit_set(
    *, user: User, strategy: CopyStrategy | None = None, **limits: Decimal | int | None
) -> RiskLimit:
    """Create or change the limits of a user (``strategy`` None) or of one of their strategies."""
    allowed = {
        "max_position_value",
        "max_leverage",
        "max_daily_loss",
        "max_drawdown",
        "max_orders_per_hour",
    }
    unknown = set(limits) - allowed
    if unknown:
        raise ValidationFailed(f"Unknown limits: {', '.join(sorted(unknown))}.", field="limits")
    for name, value in limits.items():
        if value is not None and Decimal(value) <= 0:
            raise ValidationFailed("A limit must be greater than zero (or empty).", field=name)
    if strategy is not None and strategy.user_id != user.pk:
        raise ValidationFailed("Strategy not found.", field="strategy")
    with transaction.atomic():
        limit, _ = RiskLimit.objects.select_for_update().get_or_create(user=user, strategy=strategy)
        for name, value in limits.items():
            setattr(limit, name, value)
        limit.save()
    return limit


def risk_event_record(
    *,
    event_type: str,
    severity: str,
    description: str,
    user: User | None = None,
    strategy: CopyStrategy | None = None,
    agent_wallet: AgentWallet | None = None,
    order: Order | None = None,
    exchange: str = "",
    symbol: str = "",
    metric_name: str = "",
    metric_value: Decimal | None = None,
    threshold_value: Decimal | None = None,
    action_taken: str = "",
    details: dict[str, Any] | None = None,
) -> RiskEvent:
    with transaction.atomic():
        return RiskEvent.objects.create(
            event_type=event_type,
            severity=severity,
            description=description,
            user=user,
            strategy=strategy,
            agent_wallet=agent_wallet,
            order=order,
            exchange=exchange,
            symbol=symbol,
            metric_name=metric_name,
            metric_value=metric_value,
            threshold_value=threshold_value,
            action_taken=action_taken,
            details=details or {},
        )


def _scope(limit: RiskLimit) -> Q:
    """Rows a limit governs: the user's, or those of one strategy."""
    return Q(strategy_id=limit.strategy_id) if limit.strategy_id else Q(user_id=limit.user_id)


def _day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _pnl_totals(limit: RiskLimit, now: datetime) -> tuple[Decimal, Decimal, Decimal]:
    """(net realised today, net realised ever, unrealised now) for the limit's scope."""
    fills_scope = (
        Q(order__strategy_id=limit.strategy_id) if limit.strategy_id else Q(user_id=limit.user_id)
    )
    realized = Fill.objects.filter(fills_scope).aggregate(
        today=Coalesce(
            Sum("realized_pnl", filter=Q(filled_at__gte=_day_start(now)))
            - Sum("fee", filter=Q(filled_at__gte=_day_start(now))),
            Value(ZERO),
            output_field=_MONEY,
        ),
        total=Coalesce(Sum("realized_pnl") - Sum("fee"), Value(ZERO), output_field=_MONEY),
    )
    unrealized = (
        Position.objects.filter(_scope(limit))
        .exclude(quantity=0)
        .aggregate(total=Coalesce(Sum("unrealized_pnl"), Value(ZERO), output_field=_MONEY))["total"]
    )
    return realized["today"], realized["total"], unrealized


def _evaluate(
    limit: RiskLimit, proposed: ProposedOrder, now: datetime, position_quantity: Decimal
) -> Breach | None:
    if (
        limit.max_leverage is not None
        and proposed.leverage is not None
        and proposed.leverage > limit.max_leverage
    ):
        return Breach(
            limit,
            "leverage",
            proposed.leverage,
            limit.max_leverage,
            f"Leverage {proposed.leverage.normalize()}x is above the "
            f"{limit.max_leverage.normalize()}x limit.",
        )
    if limit.max_orders_per_hour is not None:
        recent = Order.objects.filter(_scope(limit), created_at__gte=now - timedelta(hours=1))
        count = recent.aggregate(n=Count("id"))["n"]
        if count >= limit.max_orders_per_hour:
            return Breach(
                limit,
                "orders_per_hour",
                Decimal(count),
                Decimal(limit.max_orders_per_hour),
                f"{count} orders in the last hour; the limit is {limit.max_orders_per_hour}.",
            )
    signed = proposed.quantity if proposed.side == "buy" else -proposed.quantity
    reduces = proposed.reduce_only or (
        position_quantity != 0 and abs(position_quantity + signed) < abs(position_quantity)
    )
    if reduces:
        return None
    if limit.max_position_value is not None and proposed.reference_price is not None:
        value = abs(position_quantity + signed) * proposed.reference_price
        if value > limit.max_position_value:
            return Breach(
                limit,
                "position_value",
                value,
                limit.max_position_value,
                f"The position would be worth {value:.2f}, above the "
                f"{limit.max_position_value.normalize()} limit.",
            )
    if limit.max_daily_loss is None and limit.max_drawdown is None:
        return None
    today, total, unrealized = _pnl_totals(limit, now)
    if limit.max_daily_loss is not None:
        loss = -(today + min(unrealized, ZERO))
        if loss >= limit.max_daily_loss:
            return Breach(
                limit,
                "daily_loss",
                loss,
                limit.max_daily_loss,
                f"Today's loss {loss:.2f} has reached the "
                f"{limit.max_daily_loss.normalize()} limit.",
                pauses=True,
            )
    if limit.max_drawdown is not None:
        current = total + unrealized
        if current > limit.pnl_peak:
            RiskLimit.objects.filter(pk=limit.pk, pnl_peak__lt=current).update(pnl_peak=current)
            limit.pnl_peak = current
        drawdown = limit.pnl_peak - current
        if drawdown >= limit.max_drawdown:
            return Breach(
                limit,
                "drawdown",
                drawdown,
                limit.max_drawdown,
                f"Drawdown {drawdown:.2f} from the PnL peak has reached the "
                f"{limit.max_drawdown.normalize()} limit.",
                pauses=True,
            )
    return None


def risk_limits_for(*, user: User, strategy: CopyStrategy | None) -> list[RiskLimit]:
    """The limits an order of ``user`` (for ``strategy``) must pass, the strategy's first."""
    scope = Q(user=user, strategy__isnull=True)
    if strategy is not None:
        scope |= Q(strategy=strategy)
    return sorted(RiskLimit.objects.filter(scope), key=lambda limit: limit.strategy_id is None)


def risk_check_order(
    *,
    proposed: ProposedOrder,
    limits: list[RiskLimit] | None = None,
    now: datetime | None = None,
) -> Breach | None:
    """The first limit the proposed order breaks, or None. Reads only; the caller decides."""
    now = now or timezone.now()
    if limits is None:
        limits = risk_limits_for(user=proposed.user, strategy=proposed.strategy)
    if not limits:
        return None
    position_quantity = (
        Position.objects.filter(
            user=proposed.user,
            agent_wallet=proposed.agent_wallet,
            symbol=proposed.symbol,
        )
        .values_list("quantity", flat=True)
        .first()
        or ZERO
    )
    for limit in limits:
        breach = _evaluate(limit, proposed, now, position_quantity)
        if breach is not None:
            return breach
    return None


def risk_breach_record(*, breach: Breach, proposed: ProposedOrder) -> RiskEvent:
    """Write the event for a refused order and pause copying when a loss limit broke.
    Runs inside the caller's transaction (order_create), which then refuses the order."""
    from copytrade.services import strategies_pause_for_user, strategy_pause

    action = "order_rejected"
    if breach.pauses:
        reason = f"Risk limit: {breach.reason}"
        if breach.limit.strategy_id and breach.limit.strategy is not None:
            strategy_pause(strategy=breach.limit.strategy, reason=reason)
            action = "order_rejected_strategy_paused"
        elif proposed.strategy is not None or breach.scope == "account":
            paused = strategies_pause_for_user(user=proposed.user, reason=reason)
            if paused:
                action = "order_rejected_strategies_paused"
    return RiskEvent.objects.create(
        event_type=RiskEventType.LIMIT_BREACH,
        severity=RiskSeverity.CRITICAL if breach.pauses else RiskSeverity.WARNING,
        description=breach.reason,
        user=proposed.user,
        strategy=proposed.strategy,
        agent_wallet=proposed.agent_wallet,
        exchange=proposed.symbol.venue,
        symbol=proposed.symbol.name,
        metric_name=breach.metric,
        metric_value=breach.value,
        threshold_value=breach.threshold,
        action_taken=action,
        details={
            "order": proposed.as_details(),
            "limit_id": breach.limit.pk,
            "scope": breach.scope,
        },
    )
