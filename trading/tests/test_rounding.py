"""Tick and lot rules (trading.rounding): examples from Hyperliquid's docs, then properties."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from trading.rounding import (
    PriceRules,
    RoundingMode,
    SizeRules,
    decimals_of,
    price_problem,
    price_round,
    significant_figures,
    size_problem,
    size_round,
    to_wire,
)

D = Decimal


@pytest.mark.parametrize(
    ("price", "sz_decimals", "valid"),
    [
        ("12345", 5, True),  # 5 significant figures
        ("12345.6", 5, False),  # 6 figures
        ("123456", 5, True),  # integer prices are always allowed
        ("1234.5", 5, True),  # 5 figures, 1 decimal = 6 - szDecimals(5)
        ("0.001234", 0, True),  # 4 figures, 6 decimals
        ("0.0012345", 0, False),  # 7 decimals > 6 - 0
        ("1.2345", 1, True),  # 4 decimals <= 6 - 1
        ("0.12345", 2, False),  # 5 decimals > 6 - 2
        ("0.1234", 2, True),
        ("30135", 5, True),
        ("30135.5", 5, False),
        ("1903.95", 4, False),  # 6 figures
        ("1903.9", 4, True),
    ],
)
def test_hyperliquid_price_examples(price: str, sz_decimals: int, valid: bool) -> None:
    rules = PriceRules.hyperliquid_perp(sz_decimals)
    assert (price_problem(D(price), rules) is None) is valid


def test_non_positive_prices_are_refused() -> None:
    rules = PriceRules.hyperliquid_perp(2)
    assert price_problem(D(0), rules)
    assert price_problem(D("-1"), rules)
    with pytest.raises(ValueError, match="non-positive"):
        price_round(D(0), rules)


def test_tick_size_rule() -> None:
    rules = PriceRules(tick_size=D("0.1"))
    assert price_problem(D("100.1"), rules) is None
    assert price_problem(D("100.15"), rules) is not None
    assert price_round(D("100.15"), rules, "down") == D("100.1")
    assert price_round(D("100.15"), rules, "up") == D("100.2")


def test_rounding_directions() -> None:
    rules = PriceRules.hyperliquid_perp(5)  # BTC: 5 figures, 1 decimal
    assert price_round(D("12345.67"), rules, "down") == D("12345")
    assert price_round(D("12345.67"), rules, "up") == D("12346")
    assert price_round(D("1234.56"), rules) == D("1234.6")
    assert price_round(D("99999.7"), rules) == D("100000")  # carries to an integer: allowed


def test_size_rules() -> None:
    rules = SizeRules.from_decimals(3, min_notional=D(10))
    assert size_problem(D("0.001"), D(20000), rules) is None
    assert size_problem(D("0.0015"), D(20000), rules)[0] == "size_off_lot"  # type: ignore[index]
    assert size_problem(D("0.0004"), D(20000), rules)[0] == "size_off_lot"  # type: ignore[index]
    assert size_problem(D(0), None, rules)[0] == "quantity_not_positive"  # type: ignore[index]
    problem = size_problem(D("0.001"), D(5000), rules)
    assert problem is not None
    assert problem[0] == "notional_below_minimum"
    assert size_round(D("1.23456"), rules) == D("1.234")  # always down


def test_wire_strings() -> None:
    assert to_wire(D("30000.000")) == "30000"
    assert to_wire(D("1E+5")) == "100000"
    assert to_wire(D("0.00120")) == "0.0012"
    assert to_wire(D("-0")) == "0"


prices = st.decimals(
    min_value=D("0.000001"),
    max_value=D("10000000"),
    places=9,
    allow_nan=False,
    allow_infinity=False,
)
sz_decimals = st.integers(min_value=0, max_value=6)
modes = st.sampled_from(["nearest", "up", "down"])


@given(price=prices, sz=sz_decimals, mode=modes)
@example(price=D("9.99996"), sz=0, mode="up")
@example(price=D("99999.9"), sz=5, mode="nearest")
@example(price=D("0.0000004"), sz=0, mode="down")
def test_rounded_prices_are_always_valid(price: Decimal, sz: int, mode: RoundingMode) -> None:
    assume(price > 0)
    rules = PriceRules.hyperliquid_perp(sz)
    rounded = price_round(price, rules, mode)
    assert price_problem(rounded, rules) is None
    assert price_round(rounded, rules, mode) == rounded  # idempotent
    if mode == "up":
        assert rounded >= price or price_problem(price, rules) is None
    if mode == "down":
        assert rounded <= price or rounded == Decimal(1).scaleb(-(6 - sz))


@given(mantissa=st.integers(min_value=1, max_value=99_999), sz=sz_decimals, data=st.data())
def test_valid_prices_are_left_alone(mantissa: int, sz: int, data: st.DataObject) -> None:
    exponent = data.draw(st.integers(min_value=-(6 - sz), max_value=3))
    price = Decimal(mantissa).scaleb(exponent)
    rules = PriceRules.hyperliquid_perp(sz)
    assert price_problem(price, rules) is None
    modes: tuple[RoundingMode, ...] = ("nearest", "up", "down")
    for mode in modes:
        assert price_round(price, rules, mode) == price


@given(price=prices, sz=sz_decimals)
def test_rounding_moves_at_most_one_step(price: Decimal, sz: int) -> None:
    rules = PriceRules.hyperliquid_perp(sz)
    down = price_round(price, rules, "down")
    up = price_round(price, rules, "up")
    assert down <= up
    # No valid price lies strictly between the two results.
    nearest = price_round(price, rules)
    assert nearest in (down, up)
    if down < price < up:
        gap = up - down
        # the step is one unit in the last allowed figure: relative size <= 1e-4 for 5 figures
        # (or one unit of the 6 - szDecimals decimals for small prices)
        assert gap <= max(up * D("0.0001"), Decimal(1).scaleb(-(6 - sz)))


@given(size=st.decimals(min_value=D(0), max_value=D(1_000_000), places=10), sz=sz_decimals)
def test_size_round_is_down_to_the_lot(size: Decimal, sz: int) -> None:
    rules = SizeRules.from_decimals(sz)
    rounded = size_round(size, rules)
    assert rounded <= size
    assert size - rounded < rules.lot_size
    assert decimals_of(rounded) <= sz


def test_helpers() -> None:
    assert significant_figures(D("0.001230")) == 3
    assert significant_figures(D("12300")) == 3
    assert decimals_of(D("1.500")) == 1
    assert decimals_of(D("100")) == 0
