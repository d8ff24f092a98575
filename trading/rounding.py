"""Venue tick and lot rules: pure functions over Decimals, no database, no I/O.

Two ways to use them, on purpose:

* customer orders are *checked* (:func:`price_problem`, :func:`size_problem`): a price off the
  tick is refused with a reason, never silently moved, because the customer typed it;
* copy-engine orders are *rounded* (:func:`price_round`, :func:`size_round`): the engine derived
  the numbers from a leader's fill and a ratio, so they carry arbitrary decimals by nature.

Hyperliquid perps (ARCHITECTURE.md §4): a price has at most 5 significant figures and at most
``6 - szDecimals`` decimals, and an integer price is always allowed whatever its number of
figures; a size has at most ``szDecimals`` decimals. Venues with a fixed tick (OKX through
ccxt) use ``tick_size`` instead; both rules may apply at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Literal

RoundingMode = Literal["nearest", "up", "down"]

_MODES: dict[str, str] = {"nearest": ROUND_HALF_EVEN, "up": ROUND_CEILING, "down": ROUND_FLOOR}

HYPERLIQUID_PERP_MAX_DECIMALS = 6
HYPERLIQUID_SIG_FIGS = 5


@dataclass(frozen=True)
class PriceRules:
    """How a venue lets a price be written. ``None`` means "no such rule"."""

    sig_figs: int | None = None
    max_decimals: int | None = None
    tick_size: Decimal | None = None

    @classmethod
    def hyperliquid_perp(cls, sz_decimals: int) -> PriceRules:
        return cls(
            sig_figs=HYPERLIQUID_SIG_FIGS,
            max_decimals=max(HYPERLIQUID_PERP_MAX_DECIMALS - sz_decimals, 0),
        )


@dataclass(frozen=True)
class SizeRules:
    """How a venue lets a size be written and how small an order may be."""

    lot_size: Decimal
    min_size: Decimal = Decimal(0)
    min_notional: Decimal = Decimal(0)

    @classmethod
    def from_decimals(cls, sz_decimals: int, *, min_notional: Decimal = Decimal(0)) -> SizeRules:
        lot = Decimal(1).scaleb(-sz_decimals)
        return cls(lot_size=lot, min_size=lot, min_notional=min_notional)


def decimals_of(value: Decimal) -> int:
    """Digits after the decimal point once trailing zeros are dropped (0 for integers)."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite Decimals only
    return max(-exponent, 0)


def significant_figures(value: Decimal) -> int:
    """Significant figures of a non-zero value, trailing zeros of an integer not counted."""
    normalized = value.normalize()
    return len(normalized.as_tuple().digits)


def _allowed_decimals(price: Decimal, rules: PriceRules) -> int | None:
    """How many decimals a price of this magnitude may have under the sig-fig/decimal rules."""
    allowed: int | None = rules.max_decimals
    if rules.sig_figs is not None:
        # adjusted() is the exponent of the leading digit: 12345.6 -> 4, 0.00123 -> -3.
        by_figures = max(rules.sig_figs - 1 - price.adjusted(), 0)
        allowed = by_figures if allowed is None else min(allowed, by_figures)
    return allowed


def price_problem(price: Decimal, rules: PriceRules) -> str | None:
    """Why ``price`` cannot be sent as it is, or None when the venue would accept it."""
    if not price.is_finite() or price <= 0:
        return "Price must be a positive number."
    is_integer = price == price.to_integral_value()
    if not is_integer:
        if rules.max_decimals is not None and decimals_of(price) > rules.max_decimals:
            return f"Price may have at most {rules.max_decimals} decimals."
        if rules.sig_figs is not None and significant_figures(price) > rules.sig_figs:
            return (
                f"Price may have at most {rules.sig_figs} significant figures "
                "(integer prices are always allowed)."
            )
    if rules.tick_size is not None and price % rules.tick_size != 0:
        return f"Price must be a multiple of the tick size {rules.tick_size.normalize()}."
    return None


def price_round(price: Decimal, rules: PriceRules, mode: RoundingMode = "nearest") -> Decimal:
    """The closest valid price in the direction ``mode`` ("up" for a buy's limit that must stay
    marketable, "down" for a sell's). The result always passes :func:`price_problem`."""
    if not price.is_finite() or price <= 0:
        raise ValueError(f"cannot round a non-positive price: {price}")
    rounding = _MODES[mode]
    result = price
    allowed = _allowed_decimals(price, rules)
    if allowed is not None:
        result = result.quantize(Decimal(1).scaleb(-allowed), rounding=rounding)
        # Rounding up can add a digit (9.99995 -> 10.000): the magnitude changed, so the
        # figure budget did too. One more pass settles it (the second cannot carry again).
        again = _allowed_decimals(result, rules) if result > 0 else None
        if again is not None and again < allowed:
            result = result.quantize(Decimal(1).scaleb(-again), rounding=rounding)
    if rules.tick_size is not None:
        ticks = (result / rules.tick_size).to_integral_value(rounding=rounding)
        result = ticks * rules.tick_size
    if result <= 0:
        # A price below the smallest representable step rounds to that step, never to zero.
        step = rules.tick_size or Decimal(1).scaleb(-(allowed or 0))
        result = step
    if result == result.to_integral_value():
        return Decimal(int(result))
    return result.normalize()


def size_problem(size: Decimal, price: Decimal | None, rules: SizeRules) -> tuple[str, str] | None:
    """(code, reason) when ``size`` cannot be sent, else None. ``price`` checks the notional."""
    if not size.is_finite() or size <= 0:
        return "quantity_not_positive", "Quantity must be greater than zero."
    if size % rules.lot_size != 0:
        return (
            "size_off_lot",
            f"Quantity must be a multiple of the lot size {rules.lot_size.normalize()}.",
        )
    if size < rules.min_size:
        return (
            "size_below_minimum",
            f"Quantity is below the venue minimum of {rules.min_size.normalize()}.",
        )
    if price is not None and rules.min_notional and size * price < rules.min_notional:
        return (
            "notional_below_minimum",
            f"Order value {(size * price).quantize(Decimal('0.01'))} is below the venue "
            f"minimum of {rules.min_notional.normalize()}.",
        )
    return None


def size_round(size: Decimal, rules: SizeRules) -> Decimal:
    """Round a size *down* to the lot: a copy order never exceeds what the engine sized."""
    if not size.is_finite() or size < 0:
        raise ValueError(f"cannot round a negative size: {size}")
    lots = (size / rules.lot_size).to_integral_value(rounding=ROUND_DOWN)
    return lots * rules.lot_size


def to_wire(value: Decimal) -> str:
    """A Decimal as the plain string venues expect: no exponent, no trailing zeros."""
    normalized = value.normalize()
    text = f"{normalized:f}"
    return "0" if text in ("-0", "") else text
