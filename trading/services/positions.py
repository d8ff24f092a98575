"""Positions: one row per (user, agent wallet, symbol), moved by fills (trading.services.fills),
marked to market from the latest prices, and set to the venue's when reconciliation finds them
different. The formulas (PnL, margin, liquidation estimate) are in trading.pnl.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from trading import pnl
from trading.exchanges import VenuePosition
from trading.marketdata import prices_get
from trading.models import (
    MarginMode,
    Position,
    PositionSide,
    RiskEventType,
    RiskSeverity,
    Symbol,
)
from trading.services.risk import risk_event_record

if TYPE_CHECKING:
    from accounts.models import AgentWallet

ZERO = Decimal(0)

# What applying fills can change on a position (the rest is set when the row is created).
POSITION_FIELDS = [
    "quantity",
    "entry_price",
    "side",
    "mark_price",
    "unrealized_pnl",
    "realized_pnl",
    "fees_paid",
    "leverage",
    "margin_used",
    "liquidation_price",
    "last_fill_time_ms",
    "opened_at",
    "closed_at",
    "strategy",
    "metadata",
    "last_updated_at",
]


def position_side_of(quantity: Decimal) -> str:
    if quantity > 0:
        return PositionSide.LONG
    return PositionSide.SHORT if quantity < 0 else PositionSide.FLAT


def symbols_by_address(venue: str, addresses: set[str]) -> dict[str, Symbol]:
    """Venue names (Symbol.address) -> Symbol, for the addresses a venue's data uses."""
    found = Symbol.objects.filter(venue=venue).filter(
        Q(name__in=addresses) | Q(venue_symbol__in=addresses)
    )
    return {symbol.address: symbol for symbol in found}


def position_for_update(*, agent_wallet: AgentWallet, symbol: Symbol) -> Position:
    """The (locked) position of the wallet's user in ``symbol``, created flat if missing."""
    position, _ = Position.objects.select_for_update().get_or_create(
        user_id=agent_wallet.user_id,
        agent_wallet=agent_wallet,
        symbol=symbol,
        defaults={"exchange": symbol.venue},
    )
    position.symbol = symbol  # already loaded: spare the lazy query
    position.agent_wallet = agent_wallet
    return position


def position_marks_refresh(
    position: Position, symbol: Symbol, mark: Decimal | None, account_value: Decimal | None = None
) -> None:
    """Refresh the mark-dependent fields of ``position`` (no save)."""
    if mark is not None:
        position.mark_price = mark
    if position.quantity == 0:
        position.unrealized_pnl = ZERO
        position.margin_used = ZERO
        position.liquidation_price = None
        return
    price = position.mark_price or position.entry_price
    mmr = symbol.maintenance_margin_rate
    position.unrealized_pnl = pnl.unrealized_pnl(position.quantity, position.entry_price, price)
    position.margin_used = pnl.margin_used(position.quantity, price, position.leverage)
    if position.margin_mode == MarginMode.CROSS and account_value is not None:
        available = account_value - mmr * abs(position.quantity) * price
    else:
        available = pnl.isolated_margin_available(
            quantity=position.quantity,
            entry_price=position.entry_price,
            mark_price=price,
            leverage=position.leverage,
            mmr=mmr,
        )
    position.liquidation_price = pnl.liquidation_price(
        quantity=position.quantity, mark_price=price, margin_available=available, mmr=mmr
    )


def position_state_set(position: Position, state: pnl.PositionState, at: datetime) -> None:
    before = position.quantity
    position.quantity = state.quantity
    position.entry_price = state.entry_price if state.quantity else ZERO
    position.side = position_side_of(state.quantity)
    if state.quantity != 0 and (before == 0 or pnl.sign(before) != pnl.sign(state.quantity)):
        position.opened_at = at  # opened, reopened after a close, or flipped
        position.closed_at = None
    elif state.quantity == 0 and before != 0:
        position.closed_at = at


def position_set_from_venue(
    *,
    agent_wallet: AgentWallet,
    venue_position: VenuePosition,
    reason: str,
    record: bool = True,
    account_value: Decimal | None = None,
) -> Position | None:
    """Make Tandem's position the venue's (the venue is the truth), recording the difference
    as a risk event when there is one. Returns None for a symbol Tandem does not list."""
    symbols = symbols_by_address(agent_wallet.exchange, {venue_position.symbol})
    symbol = symbols.get(venue_position.symbol)
    if symbol is None:
        return None
    with transaction.atomic():
        position = position_for_update(agent_wallet=agent_wallet, symbol=symbol)
        before_quantity, before_entry = position.quantity, position.entry_price
        quantity = venue_position.quantity
        entry = (venue_position.entry_price or position.entry_price) if quantity else ZERO
        differs = quantity != before_quantity or (quantity != 0 and entry != before_entry)
        if differs:
            position_state_set(position, pnl.PositionState(quantity, pnl.q8(entry)), timezone.now())
            meta = dict(position.metadata)
            meta.pop("entry_estimated", None)
            position.metadata = meta
        if venue_position.leverage:
            position.leverage = venue_position.leverage
        if venue_position.margin_mode in MarginMode.values:
            position.margin_mode = venue_position.margin_mode
        mark = None
        if venue_position.position_value is not None and quantity:
            mark = pnl.q8(venue_position.position_value / abs(quantity))
        position_marks_refresh(position, symbol, mark, account_value)
        if venue_position.liquidation_price is not None or quantity == 0:
            position.liquidation_price = venue_position.liquidation_price
        position.save()
        if differs and record and (before_quantity != 0 or quantity != 0):
            risk_event_record(
                event_type=RiskEventType.POSITION_DRIFT,
                severity=RiskSeverity.WARNING,
                description=(
                    f"{symbol.name}: the venue holds {quantity} at "
                    f"{entry.normalize() if quantity else '-'}, Tandem had "
                    f"{before_quantity} at {before_entry.normalize()}; set to the "
                    f"venue's. {reason}"
                ).strip(),
                user=agent_wallet.user,
                agent_wallet=agent_wallet,
                exchange=symbol.venue,
                symbol=symbol.name,
                metric_name="position_quantity",
                metric_value=quantity,
                threshold_value=before_quantity,
                action_taken="position_set_to_venue",
                details={"entry_before": str(before_entry), "entry_venue": str(entry)},
            )
    return position


def position_mark(*, position: Position, mark_price: Decimal) -> Position:
    with transaction.atomic():
        locked = Position.objects.select_for_update().select_related("symbol").get(pk=position.pk)
        position_marks_refresh(locked, locked.symbol, mark_price)
        locked.save(
            update_fields=[
                "mark_price",
                "unrealized_pnl",
                "margin_used",
                "liquidation_price",
                "last_updated_at",
            ]
        )
    return locked


def position_mark_all(*, venue: str | None = None) -> int:
    """Refresh unrealised PnL, margin and liquidation estimates of every open position from the
    latest published prices. Returns how many positions changed."""
    open_positions = Position.objects.exclude(quantity=0).select_related("symbol")
    if venue:
        open_positions = open_positions.filter(exchange=venue)
    by_venue: dict[str, set[str]] = defaultdict(set)
    for exchange, name in (
        open_positions.order_by().values_list("exchange", "symbol__name").distinct()
    ):
        by_venue[exchange].add(name)
    marks = {
        (exchange, name): snap.mark or snap.price
        for exchange, names in by_venue.items()
        for name, snap in prices_get(exchange, names).items()
    }
    now = timezone.now()
    with transaction.atomic():
        batch = []
        for position in open_positions.select_for_update(of=("self",)).order_by("pk"):
            mark = marks.get((position.exchange, position.symbol.name))
            if mark is None or mark == position.mark_price:
                continue
            position_marks_refresh(position, position.symbol, mark)
            position.last_updated_at = now
            batch.append(position)
        Position.objects.bulk_update(
            batch,
            ["mark_price", "unrealized_pnl", "margin_used", "liquidation_price", "last_updated_at"],
        )
        changed = len(batch)
    return changed
