"""Money arithmetic (billing/money.py): one rounding rule, and splits that never lose or create
a unit of the currency -- properties over generated amounts and weights, plus hand examples."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import (
    annual_bps_for_days,
    bps_fee,
    currency_unit,
    money_round,
    share_split,
    split,
)

D = Decimal
CURRENCIES = ["USD", "USDC"]


@st.composite
def amounts(draw: st.DrawFn, currency: str) -> Decimal:
    units = draw(st.integers(min_value=0, max_value=10**14))
    return Decimal(units) * currency_unit(currency)


weights = st.lists(
    st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False),
    min_size=1,
    max_size=12,
).filter(lambda ws: sum(ws) > 0)


@given(data=st.data(), currency=st.sampled_from(CURRENCIES), ws=weights)
def test_split_never_loses_or_creates_a_unit(
    data: st.DataObject, currency: str, ws: list[Decimal]
) -> None:
    amount = data.draw(amounts(currency))
    parts = split(amount, ws, currency)
    unit = currency_unit(currency)
    assert sum(parts, D(0)) == amount
    total = sum((Fraction(w) for w in ws), Fraction(0))
    for weight, part in zip(ws, parts, strict=True):
        assert part % unit == 0  # whole units of the currency
        assert part >= 0
        exact = Fraction(amount) * Fraction(weight) / total
        assert abs(Fraction(part) - exact) < Fraction(unit)  # within one unit of its share
        if weight == 0:
            assert part == 0


@given(
    data=st.data(),
    currency=st.sampled_from(CURRENCIES),
    share_bps=st.integers(min_value=0, max_value=10_000),
    ws=weights,
)
def test_platform_and_trader_shares_add_up_to_the_fee(
    data: st.DataObject, currency: str, share_bps: int, ws: list[Decimal]
) -> None:
    fee = data.draw(amounts(currency))
    platform, traders = share_split(fee, share_bps, ws, currency)
    assert platform + sum(traders, D(0)) == fee
    assert len(traders) == len(ws)
    unit = currency_unit(currency)
    exact_traders = Fraction(fee) * Fraction(share_bps, 10_000)
    # The traders together get their share to within one unit per party.
    assert abs(Fraction(sum(traders, D(0))) - exact_traders) <= Fraction(unit) * len(ws)


@given(
    notional=st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False),
    bps=st.integers(min_value=0, max_value=10),
    currency=st.sampled_from(CURRENCIES),
)
def test_a_bps_fee_is_the_exact_fee_rounded_once(
    notional: Decimal, bps: int, currency: str
) -> None:
    fee = bps_fee(notional, bps, currency)
    exact = Fraction(notional) * bps / 10_000
    unit = Fraction(currency_unit(currency))
    assert abs(Fraction(fee) - exact) <= unit / 2
    assert fee % currency_unit(currency) == 0


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (D("0.125"), "USD", D("0.12")),  # half to even: down to the even cent
        (D("0.135"), "USD", D("0.14")),  # half to even: up to the even cent
        (D("0.0000025"), "USDC", D("0.000002")),
        (D("0.0000035"), "USDC", D("0.000004")),
        (D("1.2345678"), "USDC", D("1.234568")),
    ],
)
def test_rounding_is_half_to_even(amount: Decimal, currency: str, expected: Decimal) -> None:
    assert money_round(amount, currency) == expected


def test_hand_examples() -> None:
    # 3,001 notional at 10 bps and 5 bps (the fill of test_accrual_fills).
    assert bps_fee(D("3001"), 10, "USDC") == D("3.001000")
    assert bps_fee(D("3001"), 5, "USDC") == D("1.500500")
    # 10,000 of equity, 2% a year, one day of 365.
    assert annual_bps_for_days(D("10000"), 200, 1, D(365), "USDC") == D("0.547945")
    # 1 cent across three equal parties: the first gets it (ties keep the given order).
    assert split(D("0.01"), [D(1), D(1), D(1)], "USD") == [D("0.01"), D(0), D(0)]
    # 100.00 by 0.5 / 0.3 / 0.2.
    assert split(D("100"), [D("0.5"), D("0.3"), D("0.2")], "USD") == [D(50), D(30), D(20)]
    # 10 units by thirds: 3.34 / 3.33 / 3.33.
    assert split(D("10"), [D(1)] * 3, "USD") == [D("3.34"), D("3.33"), D("3.33")]
    # 200 performance fee, half to traders weighted 0.5/0.3/0.2.
    assert share_split(D(200), 5000, [D("0.5"), D("0.3"), D("0.2")], "USDC") == (
        D(100),
        [D(50), D(30), D(20)],
    )


@pytest.mark.parametrize(
    ("amount", "ws"),
    [
        (D("-1"), [D(1)]),  # negative amount
        (D("0.001"), [D(1)]),  # finer than a cent
        (D("1"), []),  # nobody to split between
        (D("1"), [D(0), D(0)]),  # weights with no sum
        (D("1"), [D(1), D(-1), D(1)]),  # a negative weight
    ],
)
def test_split_refuses_bad_input(amount: Decimal, ws: list[Decimal]) -> None:
    with pytest.raises(ValueError, match=r"split|whole number"):
        split(amount, ws, "USD")


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        money_round(D(1), "XYZ")
