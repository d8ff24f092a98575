"""Position arithmetic: pure functions over Decimals (no database), shared by the fill service,
the paper venue and the tests.

Conventions
-----------
* A position is a *signed* quantity (long > 0, short < 0) and a weighted-average entry price
  (0 when flat).
* Adding to a position moves the entry to the size-weighted average of the old entry and the
  fill price; reducing it leaves the entry alone and realises
  ``closed size x (fill price - entry) x sign(position)``; a fill that crosses zero (a flip)
  first closes the whole position that way, then opens the remainder at the fill price.
* Realised PnL here is gross. Fees are charged separately and the net is ``realised - fees``.
* Every number leaving this module is quantized to 8 decimals (the column scale), so what a
  test computes here is exactly what the database stores.

Several fills of one venue transaction can report the *same* start position (a customer's own
orders matching each other, README of data/hyperliquid). The venue computes each of them against
the state before the transaction, so :func:`apply_legs` does the same: every leg of a group sees
the pre-group position, and the group's net size moves the position once.

Liquidation (estimate)
----------------------
Hyperliquid's formula, which reproduces the venue's ``liquidationPx`` in the recorded
``clearinghouseState`` (tests/test_pnl.py)::

    liq = mark - side x margin_available / (|q| x (1 - mmr x side))

where ``side`` is +1 long / -1 short, ``mmr`` the maintenance margin rate (Hyperliquid:
``1 / (2 x maxLeverage)``) and ``margin_available`` the equity that can absorb losses beyond the
maintenance requirement: for an isolated position its margin minus ``mmr x |q| x mark``; for a
cross position the account value minus the maintenance requirement of every position. When the
account value is unknown the cross estimate falls back to the isolated one (the margin this
position uses), which is the conservative side: it can only report liquidation nearer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

Side = Literal["buy", "sell"]

QUANT = Decimal("0.00000001")
ZERO = Decimal(0)

OPEN_LONG = "Open Long"
CLOSE_LONG = "Close Long"
OPEN_SHORT = "Open Short"
CLOSE_SHORT = "Close Short"
LONG_TO_SHORT = "Long > Short"
SHORT_TO_LONG = "Short > Long"
DIRECTIONS = (OPEN_LONG, CLOSE_LONG, OPEN_SHORT, CLOSE_SHORT, LONG_TO_SHORT, SHORT_TO_LONG)


def q8(value: Decimal) -> Decimal:
    return value.quantize(QUANT, rounding=ROUND_HALF_EVEN)


def sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def signed_size(side: Side, size: Decimal) -> Decimal:
    return size if side == "buy" else -size


@dataclass(frozen=True)
class PositionState:
    quantity: Decimal = ZERO
    entry_price: Decimal = ZERO

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0


@dataclass(frozen=True)
class Leg:
    """One fill: unsigned ``size`` at ``price`` on ``side``."""

    side: Side
    size: Decimal
    price: Decimal


@dataclass(frozen=True)
class LegResult:
    direction: str
    closed_size: Decimal
    realized_pnl: Decimal


def fill_direction(start_position: Decimal, side: Side, size: Decimal) -> str:
    """The venue's ``dir`` of a fill, from the position just before it.

    A buy from >= 0 opens (or adds to) a long; a buy from < 0 closes the short, or flips it
    to a long when it ends above zero. Sells mirror this. (Hyperliquid labels every fill this
    way; all 500 recorded fills agree.)
    """
    if side == "buy":
        if start_position >= 0:
            return OPEN_LONG
        return CLOSE_SHORT if start_position + size <= 0 else SHORT_TO_LONG
    if start_position <= 0:
        return OPEN_SHORT
    return CLOSE_LONG if start_position - size >= 0 else LONG_TO_SHORT


def apply_legs(state: PositionState, legs: Sequence[Leg]) -> tuple[PositionState, list[LegResult]]:
    """Apply the fills of one venue transaction (or a single fill) to ``state``."""
    q0, e0 = state.quantity, state.entry_price
    results: list[LegResult] = []
    closable = abs(q0)
    for leg in legs:
        if leg.size <= 0 or leg.price <= 0:
            raise ValueError(f"a fill needs a positive size and price: {leg}")
        direction = fill_direction(q0, leg.side, leg.size)
        closed = ZERO
        pnl = ZERO
        if q0 != 0 and sign(signed_size(leg.side, leg.size)) == -sign(q0):
            closed = min(leg.size, closable)
            closable -= closed
            pnl = q8(closed * (leg.price - e0) * sign(q0))
        results.append(LegResult(direction=direction, closed_size=closed, realized_pnl=pnl))

    q1 = q0 + sum((signed_size(leg.side, leg.size) for leg in legs), ZERO)
    if q1 == 0:
        entry = ZERO
    elif q0 != 0 and sign(q1) == sign(q0):
        if abs(q1) <= abs(q0):
            entry = e0
        else:
            # Volume kept from before at e0, plus legs in the position's direction at their
            # price, minus legs against it (which closed volume valued at e0).
            same = [leg for leg in legs if sign(signed_size(leg.side, leg.size)) == sign(q0)]
            against = [leg for leg in legs if leg not in same]
            notional = (
                abs(q0) * e0
                + sum((leg.size * leg.price for leg in same), ZERO)
                - sum((leg.size * e0 for leg in against), ZERO)
            )
            entry = q8(notional / abs(q1))
    else:
        # Opened from flat or flipped: the new position's entry is the average price of the
        # legs pointing its way (a flip's remainder opens at the flipping fill's price).
        same = [leg for leg in legs if sign(signed_size(leg.side, leg.size)) == sign(q1)]
        volume = sum((leg.size for leg in same), ZERO)
        entry = q8(sum((leg.size * leg.price for leg in same), ZERO) / volume)
    return PositionState(quantity=q1, entry_price=entry), results


def apply_fill(state: PositionState, leg: Leg) -> tuple[PositionState, LegResult]:
    new_state, (result,) = apply_legs(state, [leg])
    return new_state, result


def fee_for(notional: Decimal, bps: Decimal) -> Decimal:
    return q8(notional * bps / Decimal(10_000))


def unrealized_pnl(quantity: Decimal, entry_price: Decimal, mark_price: Decimal) -> Decimal:
    return q8(quantity * (mark_price - entry_price)) if quantity else ZERO


def margin_used(quantity: Decimal, mark_price: Decimal, leverage: Decimal) -> Decimal:
    """Initial margin of a position at ``leverage``: its value at the mark over the leverage."""
    return q8(abs(quantity) * mark_price / leverage) if quantity else ZERO


def maintenance_margin_rate(max_leverage: int | Decimal) -> Decimal:
    """Hyperliquid: maintenance margin is half the initial margin at maximum leverage."""
    return Decimal(1) / (Decimal(2) * Decimal(max_leverage))


def liquidation_price(
    *, quantity: Decimal, mark_price: Decimal, margin_available: Decimal, mmr: Decimal
) -> Decimal | None:
    """Hyperliquid's liquidation price (module docstring); None when flat or never liquidated
    (a long whose margin covers a fall to zero)."""
    if quantity == 0:
        return None
    side = sign(quantity)
    price = mark_price - side * margin_available / (abs(quantity) * (1 - mmr * side))
    if price <= 0:
        return None
    return q8(price)


def isolated_margin_available(
    *, quantity: Decimal, entry_price: Decimal, mark_price: Decimal, leverage: Decimal, mmr: Decimal
) -> Decimal:
    """Margin left above maintenance for a position opened at ``leverage`` (isolated, or the
    cross fallback): initial margin plus unrealised PnL minus the maintenance requirement."""
    initial = abs(quantity) * entry_price / leverage
    return initial + quantity * (mark_price - entry_price) - mmr * abs(quantity) * mark_price
