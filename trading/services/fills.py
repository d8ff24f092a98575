"""Fills and positions: every venue fill applied to its position exactly once.

How a batch of fills is applied (``fills_apply``):

1. Lock the orders the fills belong to (by cloid or venue order id), then the positions, always
   in that order and sorted, so concurrent appliers never deadlock.
2. Drop fills already stored (unique ``(venue, venue_fill_id)``): a replay changes nothing.
3. Per symbol, oldest first (a *stable* sort on the venue time), group fills that report the
   same start position in the same millisecond -- several fills of one transaction, or the
   customer's own orders matching each other -- and apply each group against the position
   before it (trading.pnl.apply_legs), as the venue does.
4. When the venue reports a start position and Tandem's position differs, the venue is the
   truth: the position is re-anchored to it and a ``position_drift`` risk event records the
   difference (fills Tandem never saw, trades made at the venue directly). A fill older than
   the newest one applied arrived late: a newer start position already includes it, so it is
   recorded (with its PnL) without moving the quantity again.
5. Realised PnL booked per fill: the venue's ``closedPnl`` when it reports one (the venue is the
   truth about its own account), else Tandem's weighted-average computation.
6. Update each order's filled quantity, average price and fees from all of its fills, and walk
   its status (order_settle); then, after commit, tell the fill listeners (hooks).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import DecimalField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone

from trading import live, pnl
from trading.exchanges import VenueFill
from trading.models import (
    Fill,
    Order,
    OrderStatus,
    Position,
    RiskEventType,
    RiskSeverity,
    Symbol,
)
from trading.services import hooks
from trading.services.positions import (
    POSITION_FIELDS,
    position_for_update,
    position_marks_refresh,
    position_state_set,
    symbols_by_address,
)
from trading.services.risk import risk_event_record
from trading.services.state import VenueNews, order_settle

if TYPE_CHECKING:
    from accounts.models import AgentWallet

logger = logging.getLogger(__name__)
ZERO = Decimal(0)


@dataclass
class FillsApplyResult:
    created: list[Fill] = field(default_factory=list)
    duplicates: int = 0
    unknown_symbol: int = 0
    drifts: int = 0


def _ms_to_datetime(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, tz=UTC)


def _groups(fills: list[VenueFill]) -> list[list[VenueFill]]:
    groups: list[list[VenueFill]] = []
    for item in fills:
        previous = groups[-1][0] if groups else None
        if (
            previous is not None
            and item.start_position is not None
            and previous.time_ms == item.time_ms
            and previous.start_position == item.start_position
        ):
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def fills_apply(*, agent_wallet: AgentWallet, fills: Sequence[VenueFill]) -> FillsApplyResult:
    """Apply venue fills of one account (any order, duplicates allowed) in one transaction."""
    with transaction.atomic():
        return apply_fills_locked(agent_wallet=agent_wallet, fills=fills)


def apply_fills_locked(
    *, agent_wallet: AgentWallet, fills: Sequence[VenueFill], orders: Sequence[Order] = ()
) -> FillsApplyResult:
    """:func:`fills_apply` inside the caller's transaction. ``orders`` already locked by the
    caller are reused instead of being looked up again."""
    result = FillsApplyResult()
    unique: dict[str, VenueFill] = {}
    for item in fills:
        unique.setdefault(item.venue_fill_id, item)
    if not unique:
        return result
    venue = agent_wallet.exchange
    now = timezone.now()

    # 1. orders (locked), then positions (locked)
    by_cloid = {o.cloid: o for o in orders}
    by_oid = {o.exchange_order_id: o for o in orders if o.exchange_order_id}
    cloids = {f.cloid for f in unique.values() if f.cloid} - set(by_cloid)
    oids = {f.venue_order_id for f in unique.values() if f.venue_order_id} - set(by_oid)
    missing = [
        f
        for f in unique.values()
        if not (f.cloid and f.cloid in by_cloid)
        and not (f.venue_order_id and f.venue_order_id in by_oid)
    ]
    if missing and (cloids or oids):
        for order in (
            Order.objects.select_for_update()
            .filter(agent_wallet=agent_wallet)
            .filter(Q(cloid__in=cloids) | Q(exchange_order_id__in=oids))
            .order_by("pk")
        ):
            by_cloid[order.cloid] = order
            if order.exchange_order_id:
                by_oid[order.exchange_order_id] = order
    symbols = {
        o.symbol.address: o.symbol
        for o in by_cloid.values()
        if o.symbol.address in {f.symbol for f in unique.values()}
    }
    wanted = {f.symbol for f in unique.values()} - set(symbols)
    if wanted:
        symbols.update(symbols_by_address(venue, wanted))
    positions: dict[str, Position] = {}
    for address in sorted({f.symbol for f in unique.values() if f.symbol in symbols}):
        positions[address] = position_for_update(agent_wallet=agent_wallet, symbol=symbols[address])

    # 2. drop what is already stored
    stored = set(
        Fill.objects.filter(exchange=venue, venue_fill_id__in=list(unique)).values_list(
            "venue_fill_id", flat=True
        )
    )
    result.duplicates = len(stored)
    fresh = [f for f in unique.values() if f.venue_fill_id not in stored]
    if not fresh:
        return result

    # 3-5. per symbol, oldest first, grouped
    per_symbol: dict[str, list[VenueFill]] = defaultdict(list)
    for item in fresh:
        if item.symbol not in symbols:
            result.unknown_symbol += 1
            logger.warning(
                "fill %s for unknown symbol %s on %s skipped",
                item.venue_fill_id,
                item.symbol,
                venue,
            )
            continue
        per_symbol[item.symbol].append(item)
    rows: list[Fill] = []
    order_news: dict[Any, list[Fill]] = defaultdict(list)
    for address, items in per_symbol.items():
        items.sort(key=lambda f: f.time_ms)  # stable: keeps the venue's order within a ms
        position, symbol = positions[address], symbols[address]
        result.drifts += _apply_to_position(
            position, symbol, items, rows, by_cloid, by_oid, order_news, agent_wallet
        )
    Fill.objects.bulk_create(rows)
    for position in positions.values():
        position_marks_refresh(position, position.symbol, position.mark_price)
        position.save(update_fields=POSITION_FIELDS)
        # The database computes this generated column; the instance (published live as it
        # stands, trading.live) must show the same value without reading the row back.
        position.net_realized_pnl = position.realized_pnl - position.fees_paid

    # 6. orders
    _orders_update(order_news, now)
    result.created = rows
    live.fills_applied(rows)
    hooks.fills_committed([row.pk for row in rows])
    return result


def _apply_to_position(
    position: Position,
    symbol: Symbol,
    items: list[VenueFill],
    rows: list[Fill],
    by_cloid: dict[str, Order],
    by_oid: dict[str, Order],
    order_news: dict[Any, list[Fill]],
    agent_wallet: AgentWallet,
) -> int:
    drifts = 0
    state = pnl.PositionState(position.quantity, position.entry_price)
    newest = position.last_fill_time_ms or 0
    for group in _groups(items):
        first = group[0]
        at = _ms_to_datetime(first.time_ms)
        start = first.start_position
        late = start is not None and first.time_ms < newest
        before = state
        if late and start is not None:
            # A newer start position already includes this fill: book it, move nothing.
            before = pnl.PositionState(start, state.entry_price or first.price)
        elif start is not None and start != state.quantity:
            drifts += 1
            estimated = False
            if start == 0:
                anchored = pnl.PositionState()
            elif state.quantity != 0 and pnl.sign(state.quantity) == pnl.sign(start):
                anchored = pnl.PositionState(start, state.entry_price)
            else:
                # Opened behind Tandem's back: its entry is unknown; the fill price is the
                # best estimate until reconciliation reads the venue's entry.
                anchored = pnl.PositionState(start, first.price)
                estimated = True
            risk_event_record(
                event_type=RiskEventType.POSITION_DRIFT,
                severity=RiskSeverity.WARNING,
                description=(
                    f"{symbol.name}: the venue reports a position of {start} before a "
                    f"fill, Tandem had {state.quantity}; re-anchored to the venue."
                ),
                user=agent_wallet.user,
                agent_wallet=agent_wallet,
                exchange=symbol.venue,
                symbol=symbol.name,
                metric_name="position_quantity",
                metric_value=start,
                threshold_value=state.quantity,
                action_taken="position_set_to_venue",
                details={
                    "fill": first.venue_fill_id,
                    "time_ms": first.time_ms,
                    "entry_estimated": estimated,
                },
            )
            if estimated:
                position.metadata = {**position.metadata, "entry_estimated": True}
            position_state_set(position, anchored, at)
            state = before = anchored
        legs = [pnl.Leg(f.side, f.size, f.price) for f in group]
        after, results = pnl.apply_legs(before, legs)
        for item, leg in zip(group, results, strict=True):
            order = by_cloid.get(item.cloid) if item.cloid else None
            if order is None and item.venue_order_id:
                order = by_oid.get(item.venue_order_id)
            booked = item.closed_pnl if item.closed_pnl is not None else leg.realized_pnl
            row = Fill(
                exchange=symbol.venue,
                venue_fill_id=item.venue_fill_id,
                user_id=position.user_id,
                agent_wallet=agent_wallet,
                order=order,
                position=position,
                symbol=symbol,
                side=item.side,
                price=item.price,
                size=item.size,
                fee=item.fee,
                fee_token=item.fee_token,
                builder_fee=item.builder_fee,
                # Derived as the venue derives it, from the start position (the venue's own
                # label, when it sends one, stays in ``raw``).
                direction=leg.direction,
                start_position=item.start_position,
                realized_pnl=pnl.q8(booked),
                venue_closed_pnl=item.closed_pnl,
                is_taker=item.is_taker,
                is_liquidation=item.is_liquidation,
                venue_order_id=item.venue_order_id,
                cloid=item.cloid,
                tx_hash=item.tx_hash,
                time_ms=item.time_ms,
                filled_at=_ms_to_datetime(item.time_ms),
                raw=item.raw,
            )
            rows.append(row)
            position.realized_pnl += row.realized_pnl
            position.fees_paid += item.fee
            if order is not None:
                order_news[order.pk].append(row)
                if position.strategy_id is None and order.strategy_id is not None:
                    position.strategy_id = order.strategy_id
                if order.leverage:
                    position.leverage = order.leverage
        if not late:
            position_state_set(position, after, at)
            state = after
            newest = max(newest, first.time_ms)
            position.mark_price = position.mark_price or first.price
    position.last_fill_time_ms = newest or None
    return drifts


def _orders_update(order_news: dict[Any, list[Fill]], now: datetime) -> None:
    if not order_news:
        return
    orders = {
        rows[0].order.pk: rows[0].order for rows in order_news.values() if rows[0].order is not None
    }
    # Earlier fills of these orders (stored by an earlier batch). An order with nothing filled
    # has none, which spares the query on the common path.
    need = [pk for pk, order in orders.items() if order.filled_quantity > 0]
    earlier: dict[Any, dict[str, Any]] = {}
    if need:
        notional = ExpressionWrapper(
            F("price") * F("size"), output_field=DecimalField(max_digits=36, decimal_places=16)
        )
        for row in (
            Fill.objects.filter(order_id__in=need)
            .exclude(pk__in=[r.pk for rows in order_news.values() for r in rows])
            .values("order_id")
            .annotate(total_size=Sum("size"), total_notional=Sum(notional), total_fees=Sum("fee"))
        ):
            earlier[row["order_id"]] = dict(row)
    for pk, rows in order_news.items():
        order = orders[pk]
        prior = earlier.get(pk, {})
        size = (prior.get("total_size") or ZERO) + sum((r.size for r in rows), ZERO)
        notional_total = (prior.get("total_notional") or ZERO) + sum(
            (r.size * r.price for r in rows), ZERO
        )
        fees = (prior.get("total_fees") or ZERO) + sum((r.fee for r in rows), ZERO)
        if size > order.quantity:
            risk_event_record(
                event_type=RiskEventType.FILL_OVERFLOW,
                severity=RiskSeverity.CRITICAL,
                description=f"Fills of order {order.pk} add up to {size}, more than its "
                f"quantity {order.quantity}.",
                user=order.user,
                agent_wallet=order.agent_wallet,
                order=order,
                exchange=order.exchange,
                symbol=order.symbol.name,
                metric_name="filled_size",
                metric_value=size,
                threshold_value=order.quantity,
                action_taken="filled_quantity_capped",
            )
        if order.status == OrderStatus.FAILED:
            risk_event_record(
                event_type=RiskEventType.ORDER_STATUS_REPAIRED,
                severity=RiskSeverity.CRITICAL,
                description=f"A fill arrived for order {order.pk}, which the venue refused.",
                user=order.user,
                agent_wallet=order.agent_wallet,
                order=order,
                exchange=order.exchange,
                symbol=order.symbol.name,
                action_taken="fill_kept_order_unchanged",
            )
            continue
        order_settle(
            order,
            VenueNews(
                acknowledged=True,
                filled=size,
                average_price=notional_total / size if size else None,
                fees=fees,
            ),
            now=now,
        )
