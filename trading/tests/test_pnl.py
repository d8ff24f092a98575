"""Position arithmetic (trading.pnl): hand-computed cases, the venue's own numbers, properties."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading import pnl
from trading.pnl import Leg, PositionState, apply_fill, apply_legs, fill_direction

D = Decimal
TAKER_BPS = D("4.5")


def test_open_add_partial_close_full_close_reopen_flip_by_hand() -> None:
    """Every step computed on paper first; fees at 4.5 bps are tracked apart from PnL."""
    state = PositionState()
    steps = [
        # leg, expected (quantity, entry, realised, direction)
        (Leg("buy", D(2), D(100)), (D(2), D(100), D(0), "Open Long")),
        (Leg("buy", D(1), D(130)), (D(3), D(110), D(0), "Open Long")),  # (200+130)/3
        (Leg("sell", D(1), D(140)), (D(2), D(110), D(30), "Close Long")),  # (140-110)x1
        (Leg("sell", D(2), D(90)), (D(0), D(0), D(-40), "Close Long")),  # (90-110)x2
        (Leg("sell", D(1), D(100)), (D(-1), D(100), D(0), "Open Short")),
        (Leg("buy", D(3), D(80)), (D(2), D(80), D(20), "Short > Long")),  # (80-100)x1x(-1)
    ]
    realized = fees = D(0)
    for leg, (quantity, entry, pnl_expected, direction) in steps:
        state, result = apply_fill(state, leg)
        assert (state.quantity, state.entry_price) == (quantity, entry)
        assert result.realized_pnl == pnl_expected
        assert result.direction == direction
        realized += result.realized_pnl
        fees += pnl.fee_for(leg.size * leg.price, TAKER_BPS)
    assert realized == D(10)
    assert fees == D("0.09") + D("0.0585") + D("0.063") + D("0.081") + D("0.045") + D("0.108")
    assert realized - fees == D("9.5545")


def test_short_side_by_hand() -> None:
    state, _ = apply_fill(PositionState(), Leg("sell", D(4), D(50)))
    state, _ = apply_fill(state, Leg("sell", D(4), D(40)))  # entry 45
    assert state == PositionState(D(-8), D(45))
    state, result = apply_fill(state, Leg("buy", D(3), D(30)))
    assert result.realized_pnl == D(45)  # (30-45) x 3 x -1
    assert result.direction == "Close Short"
    state, result = apply_fill(state, Leg("buy", D(10), D(50)))
    assert result.realized_pnl == D(-25)  # closes 5 at (50-45) x -1
    assert result.direction == "Short > Long"
    assert state == PositionState(D(5), D(50))


def test_a_group_sharing_a_start_position_is_applied_against_it() -> None:
    """A customer's buy and sell matching each other in one transaction: both see the same
    start position (the venue reports it for both), and the position moves once, net."""
    start = PositionState(D(100), D(10))
    after, (buy, sell) = apply_legs(start, [Leg("buy", D(5), D(11)), Leg("sell", D(5), D(11))])
    assert (buy.direction, sell.direction) == ("Open Long", "Close Long")
    assert sell.realized_pnl == D(5)
    assert after == PositionState(D(100), D(10))


@pytest.mark.parametrize(
    ("start", "side", "size", "expected"),
    [
        ("0", "buy", "1", "Open Long"),
        ("2", "buy", "1", "Open Long"),
        ("-2", "buy", "1", "Close Short"),
        ("-2", "buy", "2", "Close Short"),
        ("-2", "buy", "3", "Short > Long"),
        ("0", "sell", "1", "Open Short"),
        ("-2", "sell", "1", "Open Short"),
        ("2", "sell", "2", "Close Long"),
        ("2", "sell", "5", "Long > Short"),
    ],
)
def test_fill_direction(start: str, side: str, size: str, expected: str) -> None:
    assert fill_direction(D(start), side, D(size)) == expected  # type: ignore[arg-type]


def test_unrealized_margin_and_isolated_liquidation_by_hand() -> None:
    assert pnl.unrealized_pnl(D(2), D(100), D(110)) == D(20)
    assert pnl.unrealized_pnl(D(-2), D(100), D(110)) == D(-20)
    assert pnl.margin_used(D(-2), D(110), D(10)) == D(22)
    mmr = pnl.maintenance_margin_rate(10)
    assert mmr == D("0.05")
    # Long 1 @ 100 at 10x isolated: margin 10; equity 10 + (p - 100) = 0.05 p at p = 94.7368...
    available = pnl.isolated_margin_available(
        quantity=D(1), entry_price=D(100), mark_price=D(100), leverage=D(10), mmr=mmr
    )
    liq = pnl.liquidation_price(
        quantity=D(1), mark_price=D(100), margin_available=available, mmr=mmr
    )
    assert liq == pnl.q8(D(90) / D("0.95"))
    # Short 1 @ 100 at 10x: 10 - (p - 100) = 0.05 p at p = 104.7619...
    available = pnl.isolated_margin_available(
        quantity=D(-1), entry_price=D(100), mark_price=D(100), leverage=D(10), mmr=mmr
    )
    liq = pnl.liquidation_price(
        quantity=D(-1), mark_price=D(100), margin_available=available, mmr=mmr
    )
    assert liq == pnl.q8(D(110) / D("1.05"))
    # 1x long never liquidates
    available = pnl.isolated_margin_available(
        quantity=D(1), entry_price=D(100), mark_price=D(100), leverage=D(1), mmr=mmr
    )
    assert (
        pnl.liquidation_price(quantity=D(1), mark_price=D(100), margin_available=available, mmr=mmr)
        is None
    )


def _liquidation_inputs(state: dict, meta: dict) -> list[tuple[str, D, D, D, D]]:
    max_leverage = {asset["name"]: asset["maxLeverage"] for asset in meta["universe"]}
    rows = []
    for item in state["assetPositions"]:
        position = item["position"]
        if position["liquidationPx"] is None:
            continue
        quantity = D(position["szi"])
        mark = D(position["positionValue"]) / abs(quantity)
        rows.append(
            (
                position["coin"],
                quantity,
                mark,
                D(position["liquidationPx"]),
                pnl.maintenance_margin_rate(max_leverage[position["coin"]]),
            )
        )
    return rows


def _check_cross_liquidation(state: dict, meta: dict) -> None:
    rows = _liquidation_inputs(state, meta)
    assert len(rows) >= 3
    # The margin available to a cross account is one number for all its positions: solve it
    # from the first position, then the formula must predict every other one.
    coin, quantity, mark, venue_liq, mmr = rows[0]
    side = pnl.sign(quantity)
    available = (mark - venue_liq) * side * abs(quantity) * (1 - mmr * side)
    for coin, quantity, mark, venue_liq, mmr in rows[1:]:
        predicted = pnl.liquidation_price(
            quantity=quantity, mark_price=mark, margin_available=available, mmr=mmr
        )
        assert predicted is not None
        assert abs(predicted / venue_liq - 1) < D("0.000001"), coin


def test_cross_liquidation_formula_matches_the_venue(shared_data: Path) -> None:
    """Hyperliquid's liquidationPx for five cross positions of one recorded account, with
    mmr = 1 / (2 x maxLeverage): all five agree on one margin_available to 1e-6."""
    folder = shared_data / "hyperliquid"
    _check_cross_liquidation(
        json.loads((folder / "user_state.json").read_text()),
        json.loads((folder / "meta.json").read_text()),
    )


def test_cross_liquidation_formula_matches_synthetic_state() -> None:
    folder = Path(__file__).parent / "data"
    _check_cross_liquidation(
        json.loads((folder / "user_state_small.json").read_text()),
        json.loads((folder / "meta_small.json").read_text()),
    )


legs = st.lists(
    st.tuples(
        st.sampled_from(["buy", "sell"]),
        st.decimals(min_value=D("0.01"), max_value=D(50), places=2),
        st.decimals(min_value=D(1), max_value=D(1000), places=2),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(sequence=legs, mark=st.decimals(min_value=D(1), max_value=D(1000), places=2))
def test_marking_to_market_conserves_value(sequence: list[tuple[str, D, D]], mark: D) -> None:
    """Whatever the fills: realised PnL + unrealised PnL at a mark equals what the trades are
    worth at that mark, sum(signed size x (mark - price)). Only entry rounding (8 decimals)
    may make a difference, bounded by the volume traded."""
    state = PositionState()
    realized = D(0)
    worth = D(0)
    volume = D(0)
    for side, size, price in sequence:
        state, result = apply_fill(state, Leg(side, size, price))  # type: ignore[arg-type]
        realized += result.realized_pnl
        worth += pnl.signed_size(side, size) * (mark - price)  # type: ignore[arg-type]
        volume += size
    total = realized + pnl.unrealized_pnl(state.quantity, state.entry_price, mark)
    assert abs(total - worth) <= volume * D("0.00000002") * len(sequence) + D("0.00000002")
    assert (state.quantity == 0) == (state.entry_price == 0)
