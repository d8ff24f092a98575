"""Money arithmetic for fees: one rounding rule and one remainder policy, pure and exact.

Rounding rule
    A fee computed from a rate (bps of a notional, a day of an annual rate, a share of profit)
    is computed exactly in ``Decimal`` and rounded **once**, to the precision of its currency
    (``conf.CURRENCY_DECIMALS``: USDC 6 places, USD 2), **half to even**. Half-even is unbiased:
    over many fees the rounding errors cancel instead of always favouring one side. A fee that
    rounds to zero is not charged (the ledger refuses zero amounts).

Remainder policy (splits)
    An amount that is already rounded is split between parties (the platform and followed
    traders; the allocations of a portfolio by weight) by the **largest-remainder method**:
    work in whole currency units; every party first gets its exact share rounded *down*; the
    units left over -- always fewer than the number of parties -- go one each to the parties
    whose discarded fractions are largest, ties to the party listed first. Every part is then
    within one unit of its exact share, and the parts always add up to the amount: a split never
    loses or creates a unit (a cent, for USD). Shares are computed with ``Fraction``, so the
    outcome depends on the weights only, not on any intermediate precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from functools import lru_cache

from billing.conf import billing_setting

BPS = Decimal(10_000)
ZERO = Decimal(0)


def currency_decimals(currency: str) -> int:
    table: dict[str, int] = billing_setting("CURRENCY_DECIMALS")
    try:
        return int(table[currency])
    except KeyError:
        raise ValueError(f"unknown currency {currency!r}") from None


@lru_cache(maxsize=32)
def _unit(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


def currency_unit(currency: str) -> Decimal:
    """The smallest amount of ``currency`` a fee is expressed in (0.000001 USDC, 0.01 USD)."""
    return _unit(currency_decimals(currency))


def money_round(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded half to even to ``currency``'s precision."""
    return amount.quantize(currency_unit(currency), rounding=ROUND_HALF_EVEN)


def bps_fee(notional: Decimal, bps: int | Decimal, currency: str) -> Decimal:
    """``bps`` basis points of ``notional``, rounded once (see the module docstring)."""
    return bps_fee_in_units(notional, bps, currency_unit(currency))


def bps_fee_in_units(notional: Decimal, bps: int | Decimal, unit: Decimal) -> Decimal:
    """:func:`bps_fee` with the currency unit already looked up (the accrual's inner loop)."""
    return (abs(notional) * bps / BPS).quantize(unit, rounding=ROUND_HALF_EVEN)


def annual_bps_for_days(
    base: Decimal, annual_bps: int | Decimal, days: int, days_per_year: Decimal, currency: str
) -> Decimal:
    """``days`` of an annual rate on ``base`` (ACT/``days_per_year``), rounded once."""
    exact = base * Decimal(annual_bps) / BPS * Decimal(days) / days_per_year
    return money_round(exact, currency)


def split(
    amount: Decimal, weights: Sequence[Decimal | int | Fraction], currency: str
) -> list[Decimal]:
    """Split ``amount`` by ``weights`` so the parts add up exactly (largest remainder).

    ``amount`` must already be a whole number of currency units and not negative; weights must
    be non-negative with a positive sum (they need not add up to 1: they are normalised).
    A party with weight 0 always gets 0.
    """
    unit = currency_unit(currency)
    if amount < 0:
        raise ValueError("split() takes a non-negative amount")
    units_decimal = amount / unit
    if units_decimal != units_decimal.to_integral_value():
        raise ValueError(f"{amount} is not a whole number of {currency} units")
    fractions = [Fraction(w) for w in weights]
    if not fractions or any(f < 0 for f in fractions):
        raise ValueError("split() needs at least one weight, none negative")
    total_weight = sum(fractions, Fraction(0))
    if total_weight <= 0:
        raise ValueError("split() needs weights with a positive sum")
    units = int(units_decimal)
    exact = [Fraction(units) * f / total_weight for f in fractions]
    floors = [e.numerator // e.denominator for e in exact]
    left = units - sum(floors)
    # Largest discarded fraction first; Python's sort is stable, so ties keep the given order.
    order = sorted(range(len(exact)), key=lambda i: exact[i] - floors[i], reverse=True)
    for index in order[:left]:
        floors[index] += 1
    return [Decimal(n) * unit for n in floors]


def share_split(
    amount: Decimal, share_bps: int, weights: Sequence[Decimal], currency: str
) -> tuple[Decimal, list[Decimal]]:
    """Split ``amount`` between the platform and parties sharing ``share_bps`` of it by
    ``weights`` (the followed traders, by allocation weight), in one largest-remainder split.

    Returns (platform part, [part per weight]). With no weights or no share the platform keeps
    everything.
    """
    positive = [Fraction(w) for w in weights]
    if share_bps <= 0 or not positive or sum(positive, Fraction(0)) <= 0:
        return amount, [ZERO for _ in weights]
    total = sum(positive, Fraction(0))
    share = Fraction(share_bps, 10_000)
    party_weights = [Fraction(1) - share, *[share * w / total for w in positive]]
    parts = split(amount, party_weights, currency)
    return parts[0], parts[1:]
