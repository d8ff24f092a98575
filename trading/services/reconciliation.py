"""Reconciliation: one agent wallet's positions and orders against the venue's.

The venue is the truth about its own account. Per wallet, periodically (beat) or on demand
(``manage.py reconcile``):

1. Fills the venue has and Tandem has not are applied first (wallet_fills_sync).
2. Positions: each venue position is written over Tandem's when they differ; a Tandem position
   the venue does not hold is closed. Every difference is a ``position_drift`` risk event.
3. Orders Tandem thinks are in flight (pending past a grace period, submitted, partial):
   * open at the venue -> Tandem takes the venue's view (an order Tandem never heard back
     about becomes ``submitted``, with its fills);
   * not open -> looked up by cloid: filled, cancelled or refused there -> that status here;
   * unknown to the venue -> an order the venue never got: by policy
     (``TANDEM["RECONCILE_UNSENT_POLICY"]``) ``resubmit`` (its outbox row is released and
     dispatched; the submit path looks the cloid up again before sending) or ``fail``.
4. Orders open at the venue that Tandem never placed are reported (``unknown_venue_order``).

Every repaired difference is recorded as a risk event, so staff see what drifted and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from trading.exchanges import (
    VenueAdapter,
    VenueError,
    VenueOrder,
    VenuePosition,
    adapter_for_wallet,
)
from trading.models import (
    Order,
    OrderEvent,
    OrderEventKind,
    OrderOutbox,
    OrderStatus,
    OutboxKind,
    Position,
    RiskEvent,
    RiskEventType,
    RiskSeverity,
)
from trading.services.execution import venue_fills_for_order, venue_news, wallet_fills_sync
from trading.services.fills import apply_fills_locked
from trading.services.orders import order_submit_dispatch
from trading.services.positions import position_set_from_venue
from trading.services.risk import risk_event_record
from trading.services.state import VenueNews, order_settle
from trading.stores import setting

if TYPE_CHECKING:
    from accounts.models import AgentWallet

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    agent_wallet: str
    fills_applied: int = 0
    positions_fixed: int = 0
    orders_repaired: int = 0
    orders_resubmitted: int = 0
    orders_failed: int = 0
    unknown_venue_orders: int = 0
    error: str = ""
    notes: list[str] = field(default_factory=list)


def reconcile_agent_wallet(*, agent_wallet: AgentWallet) -> ReconcileReport:
    report = ReconcileReport(agent_wallet=str(agent_wallet.pk))
    adapter = adapter_for_wallet(agent_wallet)
    try:
        in_flight_before = dict(
            Order.objects.filter(
                agent_wallet=agent_wallet,
                status__in=[OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIAL],
            ).values_list("pk", "status")
        )
        report.fills_applied = wallet_fills_sync(agent_wallet=agent_wallet)
        _record_moved_by_fills(in_flight_before, report)
        state = adapter.account_state()
        venue_open = adapter.open_orders()
        _reconcile_positions(agent_wallet, state.positions, state.account_value, report)
        _reconcile_orders(agent_wallet, adapter, venue_open, report)
    except VenueError as exc:
        report.error = f"{exc.code}: {exc.message}"
        risk_event_record(
            event_type=RiskEventType.RECONCILIATION_FAILED,
            severity=RiskSeverity.WARNING,
            description=f"Reconciliation could not complete: {exc.message}",
            user=agent_wallet.user,
            agent_wallet=agent_wallet,
            exchange=agent_wallet.exchange,
            action_taken="will_retry",
            details={"code": exc.code},
        )
    finally:
        adapter.close()
    return report


def _record_moved_by_fills(before: dict[Any, str], report: ReconcileReport) -> None:
    """Orders the fill sync moved: fills Tandem had never heard of settled them. Each is a
    repaired difference (recorded), and a pending one's submission is over."""
    now = timezone.now()
    moved = (
        Order.objects.filter(pk__in=list(before))
        .exclude(status__in=[OrderStatus.PENDING])
        .select_related("symbol", "agent_wallet", "user", "strategy")
    )
    for order in moved:
        if order.status == before[order.pk]:
            continue
        if before[order.pk] == OrderStatus.PENDING:
            OrderOutbox.objects.filter(
                order=order, kind=OutboxKind.SUBMIT, done_at__isnull=True
            ).update(done_at=now)
        _repair_event(
            order,
            f"Order {order.pk} was {before[order.pk]} in Tandem; fills from the venue made "
            f"it {order.status}.",
            "status_from_venue_fills",
        )
        report.orders_repaired += 1


def _reconcile_positions(
    agent_wallet: AgentWallet,
    venue_positions: list[VenuePosition],
    account_value: Decimal | None,
    report: ReconcileReport,
) -> None:
    value = account_value
    held = set()
    for venue_position in venue_positions:
        held.add(venue_position.symbol)
        before = (
            Position.objects.filter(
                agent_wallet=agent_wallet,
                symbol__venue=agent_wallet.exchange,
            )
            .filter(symbol__name=venue_position.symbol)
            .values_list("quantity", "entry_price")
            .first()
        )
        position = position_set_from_venue(
            agent_wallet=agent_wallet,
            venue_position=venue_position,
            reason="Reconciliation.",
            account_value=value,
        )
        changed = position is not None and before != (position.quantity, position.entry_price)
        if changed and (before is not None or (position and position.quantity != 0)):
            report.positions_fixed += 1
    stale = (
        Position.objects.filter(agent_wallet=agent_wallet)
        .exclude(quantity=0)
        .select_related("symbol")
    )
    for position in stale:
        if position.symbol.address in held:
            continue
        position_set_from_venue(
            agent_wallet=agent_wallet,
            venue_position=VenuePosition(
                symbol=position.symbol.address, quantity=Decimal(0), entry_price=None
            ),
            reason="Reconciliation: the venue holds no position.",
            account_value=value,
        )
        report.positions_fixed += 1


def _repair_event(
    order: Order,
    description: str,
    action: str,
    event_type: str = RiskEventType.ORDER_STATUS_REPAIRED,
) -> None:
    risk_event_record(
        event_type=event_type,
        severity=RiskSeverity.WARNING,
        description=description,
        user=order.user,
        strategy=order.strategy,
        agent_wallet=order.agent_wallet,
        order=order,
        exchange=order.exchange,
        symbol=order.symbol.name,
        action_taken=action,
        details={"cloid": order.cloid},
    )


def _apply_venue_view(order: Order, found: VenueOrder, adapter: VenueAdapter) -> bool:
    fills = venue_fills_for_order(adapter, order, found) if found.filled_size > 0 else []
    now = timezone.now()
    with transaction.atomic():
        locked = (
            Order.objects.select_for_update(of=("self",))
            .select_related("symbol", "agent_wallet", "agent_wallet__user")
            .get(pk=order.pk)
        )
        before = locked.status
        if fills:
            apply_fills_locked(agent_wallet=locked.agent_wallet, fills=fills, orders=[locked])
        order_settle(locked, venue_news(found), now=now)
        if before != locked.status:
            OrderEvent.objects.create(
                order=locked,
                kind=OrderEventKind.RECONCILED,
                details={"from": before, "to": locked.status, "venue_status": str(found.status)},
            )
            if before == OrderStatus.PENDING:
                OrderOutbox.objects.filter(
                    order=locked, kind=OutboxKind.SUBMIT, done_at__isnull=True
                ).update(done_at=now)
            _repair_event(
                locked,
                f"Order {locked.pk} was {before} in Tandem and "
                f"{found.status} at the venue; took the venue's status.",
                "status_from_venue",
            )
            return True
    return False


def _reconcile_orders(
    agent_wallet: AgentWallet,
    adapter: VenueAdapter,
    venue_open: list[VenueOrder],
    report: ReconcileReport,
) -> None:
    grace = timedelta(seconds=int(setting("RECONCILE_GRACE_SECONDS")))
    now = timezone.now()
    open_by_cloid = {o.cloid: o for o in venue_open if o.cloid}
    in_flight = Order.objects.filter(
        agent_wallet=agent_wallet,
        status__in=[OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIAL],
    ).select_related("symbol", "agent_wallet", "agent_wallet__user", "strategy", "user")
    for order in in_flight:
        if order.status == OrderStatus.PENDING:
            if order.created_at > now - grace:
                continue  # still on its way: the execution task owns it
            claimed = OrderOutbox.objects.filter(
                order=order, kind=OutboxKind.SUBMIT, done_at__isnull=True, claimed_until__gt=now
            ).exists()
            if claimed:
                continue
        found = open_by_cloid.get(order.cloid)
        if found is None:
            try:
                found = adapter.order_by_cloid(symbol=order.symbol.address, cloid=order.cloid)
            except VenueError as exc:
                report.notes.append(f"{order.pk}: lookup failed ({exc.code})")
                continue
        if found is not None:
            if _apply_venue_view(order, found, adapter):
                report.orders_repaired += 1
            continue
        _never_reached(order, report)
    _report_unknown(agent_wallet, venue_open, report)


def _never_reached(order: Order, report: ReconcileReport) -> None:
    """The venue has no record of ``order``."""
    now = timezone.now()
    policy = str(setting("RECONCILE_UNSENT_POLICY"))
    if order.status == OrderStatus.PENDING and policy == "resubmit":
        with transaction.atomic():
            outbox, _ = OrderOutbox.objects.select_for_update().get_or_create(
                order=order,
                kind=OutboxKind.SUBMIT,
                done_at__isnull=True,
                defaults={"available_at": now},
            )
            outbox.claimed_until = None
            outbox.available_at = now
            outbox.save(update_fields=["claimed_until", "available_at"])
            _repair_event(
                order,
                f"Order {order.pk} never reached the venue; submitted again.",
                "resubmitted",
                RiskEventType.ORDER_NOT_AT_VENUE,
            )
            order_id = order.pk
            transaction.on_commit(lambda: order_submit_dispatch(order_id))
        report.orders_resubmitted += 1
        return
    with transaction.atomic():
        locked = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
        order_settle(
            locked,
            VenueNews(
                ended=OrderStatus.FAILED,
                error_code="not_at_venue",
                error_message="The venue has no record of this order.",
            ),
            now=now,
            event=OrderEventKind.RECONCILED,
        )
        OrderOutbox.objects.filter(order=locked, done_at__isnull=True).update(done_at=now)
        _repair_event(
            locked,
            f"Order {locked.pk} was {order.status} in Tandem but the venue "
            f"has no record of it; marked {locked.status}.",
            "marked_" + locked.status,
            RiskEventType.ORDER_NOT_AT_VENUE,
        )
    report.orders_failed += 1


def _report_unknown(
    agent_wallet: AgentWallet, venue_open: list[VenueOrder], report: ReconcileReport
) -> None:
    cloids = {o.cloid for o in venue_open if o.cloid}
    known = set(
        Order.objects.filter(agent_wallet=agent_wallet, cloid__in=cloids).values_list(
            "cloid", flat=True
        )
    )
    for venue_order in venue_open:
        if venue_order.cloid and venue_order.cloid in known:
            continue
        already = RiskEvent.objects.filter(
            agent_wallet=agent_wallet,
            event_type=RiskEventType.UNKNOWN_VENUE_ORDER,
            resolved_at__isnull=True,
            details__venue_order_id=venue_order.venue_order_id,
        ).exists()
        if already:
            continue
        risk_event_record(
            event_type=RiskEventType.UNKNOWN_VENUE_ORDER,
            severity=RiskSeverity.WARNING,
            description=(
                f"An order Tandem did not place is open at {agent_wallet.exchange}: "
                f"{venue_order.side} {venue_order.remaining} {venue_order.symbol}."
            ),
            user=agent_wallet.user,
            agent_wallet=agent_wallet,
            exchange=agent_wallet.exchange,
            symbol=venue_order.symbol,
            action_taken="reported",
            details={
                "venue_order_id": venue_order.venue_order_id,
                "cloid": venue_order.cloid or "",
            },
        )
        report.unknown_venue_orders += 1
