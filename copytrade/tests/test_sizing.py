"""The copy engine's rules, one test (or more) per rule, on the pure sizing function.

Each test states the numbers, so a change of rule fails loudly: proportional, fixed and
multiplier sizes; the leverage minimum; lot rounding; below-minimum with its running remainder;
the slippage guard; follow-new-entries-only; proportional closes (40 %); flips; the max
position cap; inverse copying. Hypothesis checks what must hold for any input.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from copytrade.sizing import (
    FollowerFacts,
    MarketFacts,
    MoveFacts,
    Reason,
    leverage_for,
    size_copy,
)
from trading.rounding import PriceRules, SizeRules

D = Decimal
ETH = MarketFacts(
    price_rules=PriceRules.hyperliquid_perp(4),
    size_rules=SizeRules.from_decimals(4, min_notional=D(10)),
    max_leverage=25,
    bid=D("2499.9"),
    ask=D("2500.1"),
    mark=D(2500),
)


def move(before: str, after: str, price: str = "2500", **kw: object) -> MoveFacts:
    values: dict[str, object] = {
        "coin": "ETH",
        "before": D(before),
        "after": D(after),
        "price": D(price),
        "time_ms": 2_000,
        "leader_equity": D(100_000),
        "leader_leverage": D(20),
        "opened_at_ms": 1_500,
    }
    values.update(kw)
    return MoveFacts(**values)  # type: ignore[arg-type]


def follower(**kw: object) -> FollowerFacts:
    values: dict[str, object] = {
        "size_mode": "proportional",
        "copy_pct": D(100),
        "equity": D(10_000),
        "max_leverage": D(10),
        "wallet_max_leverage": 20,
        "min_order_usd": D(5),
        "wallet_min_order_usd": D(5),
        "slippage_bps": 10,
        "follow_new_entries_only": True,
        "started_at_ms": 1_000,
    }
    values.update(kw)
    return FollowerFacts(**values)  # type: ignore[arg-type]


class TestSizeModes:
    def test_proportional_is_equity_ratio_times_weight_times_copy_pct(self) -> None:
        # 10k / 100k x 0.5 x 80 % = 4 % of the leader's 10 ETH
        sized = size_copy(move("0", "10"), ETH, follower(weight=D("0.5"), copy_pct=D(80)))
        assert sized.place
        assert (sized.side, sized.quantity) == ("buy", D("0.4"))

    def test_fixed_notional_per_trade(self) -> None:
        sized = size_copy(
            move("0", "-10"), ETH, follower(size_mode="fixed", fixed_notional_usd=D(1000))
        )
        assert (sized.side, sized.quantity) == ("sell", D("0.4"))  # 1000 USD / 2500

    def test_fixed_notional_scales_with_the_weight(self) -> None:
        sized = size_copy(
            move("0", "10"),
            ETH,
            follower(size_mode="fixed", fixed_notional_usd=D(1000), weight=D("0.25")),
        )
        assert sized.quantity == D("0.1")

    def test_multiplier_of_the_leaders_size(self) -> None:
        sized = size_copy(
            move("2", "5"), ETH, follower(size_mode="multiplier", multiplier=D("0.1"))
        )
        assert sized.quantity == D("0.3")  # the add of 3 ETH x 0.1

    def test_proportional_without_equities_is_skipped_with_the_reason(self) -> None:
        sized = size_copy(move("0", "1", leader_equity=None), ETH, follower())
        assert (sized.place, sized.reason_code) == (False, Reason.LEADER_EQUITY_UNKNOWN)
        sized = size_copy(move("0", "1"), ETH, follower(equity=None))
        assert (sized.place, sized.reason_code) == (False, Reason.FOLLOWER_EQUITY_UNKNOWN)


class TestLeverage:
    def test_lowest_of_leader_strategy_wallet_and_venue(self) -> None:
        assert leverage_for(move("0", "1", leader_leverage=D(3)), ETH, follower()) == 3
        assert leverage_for(move("0", "1"), ETH, follower(max_leverage=D("7.5"))) == 7
        assert leverage_for(move("0", "1"), ETH, follower(wallet_max_leverage=2)) == 2
        low_venue = MarketFacts(ETH.price_rules, ETH.size_rules, 4, ETH.bid, ETH.ask, ETH.mark)
        assert leverage_for(move("0", "1"), low_venue, follower()) == 4
        assert leverage_for(move("0", "1", leader_leverage=None), ETH, follower()) == 10

    def test_the_order_carries_it_and_a_reduce_only_order_none(self) -> None:
        opened = size_copy(move("0", "10", leader_leverage=D(3)), ETH, follower())
        assert opened.leverage == 3
        closed = size_copy(move("10", "0"), ETH, follower(attributable=D(1), wallet_position=D(1)))
        assert closed.reduce_only
        assert closed.leverage is None


class TestRounding:
    def test_size_down_to_the_lot_and_the_residue_carried(self) -> None:
        # 10 % of 1.23456 = 0.123456 -> 0.1234, 0.000056 owed
        sized = size_copy(move("0", "1.23456"), ETH, follower())
        assert sized.quantity == D("0.1234")
        assert sized.remainder_after == D("0.000056")

    def test_limit_price_on_the_tick_and_toward_the_leader(self) -> None:
        # 2500 + 10 bps = 2502.5 (5 figures: 2502.5 valid); a sell rounds up
        assert size_copy(move("0", "10"), ETH, follower()).limit_price == D("2502.5")
        sold = size_copy(move("0", "-10", price="2512.37"), ETH, follower())
        # 2512.37 x 0.999 = 2509.857... -> up to 2509.9 (never below the allowed slippage)
        assert sold.limit_price == D("2509.9")


class TestBelowMinimum:
    def test_skipped_with_the_reason_and_carried_until_it_adds_up(self) -> None:
        first = size_copy(move("0", "0.01"), ETH, follower())  # 0.001 ETH = 2.50 USD
        assert not first.place
        assert first.reason_code == Reason.BELOW_MINIMUM
        assert first.reason.startswith("below minimum")
        assert first.remainder_after == D("0.001")
        # two more small adds stay below 10 USD, the fourth crosses it: one order for all
        remainder = first.remainder_after
        for before, after in (("0.01", "0.02"), ("0.02", "0.03")):
            step = size_copy(move(before, after), ETH, follower(remainder=remainder))
            assert (step.place, step.reason_code) == (False, Reason.BELOW_MINIMUM)
            remainder = step.remainder_after
        assert remainder == D("0.003")
        placed = size_copy(move("0.03", "0.04"), ETH, follower(remainder=remainder))
        assert placed.place
        assert placed.quantity == D("0.004")
        assert placed.remainder_after == 0

    def test_the_strictest_minimum_applies_to_opening_orders(self) -> None:
        sized = size_copy(move("0", "0.1"), ETH, follower(min_order_usd=D(50)))  # 25 USD
        assert sized.reason_code == Reason.BELOW_MINIMUM
        sized = size_copy(move("0", "0.1"), ETH, follower(wallet_min_order_usd=D(50)))
        assert sized.reason_code == Reason.BELOW_MINIMUM

    def test_a_reduce_only_order_needs_only_the_venue_minimum(self) -> None:
        sized = size_copy(
            move("1", "0"),
            ETH,
            follower(attributable=D("0.005"), wallet_position=D("0.005"), min_order_usd=D(50)),
        )
        assert sized.place  # 12.5 USD >= the venue's 10
        assert sized.reduce_only

    def test_a_reduction_shrinks_what_is_owed_with_the_position(self) -> None:
        # owed 0.003 ETH of a long the follower does not hold yet; the leader halves it
        sized = size_copy(move("1", "0.5"), ETH, follower(remainder=D("0.003")))
        assert sized.reason_code == Reason.BELOW_MINIMUM
        assert sized.remainder_after == D("0.0015")


class TestSlippage:
    def test_market_beyond_the_limit_is_skipped_with_the_prices(self) -> None:
        moved = MarketFacts(
            ETH.price_rules, ETH.size_rules, 25, bid=D(2510), ask=D("2503.1"), mark=D(2503)
        )
        sized = size_copy(move("0", "10"), moved, follower(slippage_bps=10))
        assert (sized.place, sized.reason_code) == (False, Reason.SLIPPAGE)
        assert "2503.1" in sized.reason
        assert "2502.5" in sized.reason
        # a wider allowance copies it
        assert size_copy(move("0", "10"), moved, follower(slippage_bps=20)).place

    def test_sells_compare_with_the_bid(self) -> None:
        low = MarketFacts(ETH.price_rules, ETH.size_rules, 25, bid=D(2497), ask=D(2498))
        sized = size_copy(move("0", "-10"), low, follower(slippage_bps=10))
        assert sized.reason_code == Reason.SLIPPAGE

    def test_no_market_price_is_a_reason_too(self) -> None:
        blind = MarketFacts(ETH.price_rules, ETH.size_rules, 25)
        assert size_copy(move("0", "10"), blind, follower()).reason_code == Reason.NO_MARKET_PRICE


class TestNewEntriesOnly:
    def test_a_position_opened_before_the_start_is_ignored_until_flat(self) -> None:
        before_start = move("5", "8", opened_at_ms=500)
        sized = size_copy(before_start, ETH, follower())
        assert (sized.place, sized.reason_code) == (False, Reason.NEW_ENTRIES_ONLY)
        # also a position Tandem saw already open (opened_at unknown), and its reductions
        assert size_copy(move("5", "2", opened_at_ms=None), ETH, follower()).reason_code == (
            Reason.NEW_ENTRIES_ONLY
        )
        # a new entry after it went flat is copied
        assert size_copy(move("0", "3", opened_at_ms=None), ETH, follower()).place

    def test_a_flip_of_an_old_position_copies_only_the_new_side(self) -> None:
        sized = size_copy(move("5", "-10", opened_at_ms=500), ETH, follower())
        assert (sized.side, sized.quantity) == ("sell", D(1))  # 10 % of the new short only

    def test_positions_the_follower_shares_keep_being_followed(self) -> None:
        # paused and resumed: the leader's position predates the new start, but the follower
        # holds its share of it, so the reduction is copied
        sized = size_copy(
            move("10", "6", opened_at_ms=500),
            ETH,
            follower(attributable=D(1), wallet_position=D(1)),
        )
        assert (sized.side, sized.quantity) == ("sell", D("0.4"))

    def test_off_copies_changes_of_old_positions(self) -> None:
        sized = size_copy(
            move("5", "8", opened_at_ms=500), ETH, follower(follow_new_entries_only=False)
        )
        assert sized.quantity == D("0.3")


class TestCloses:
    def test_a_leader_closing_40_percent_closes_40_percent_of_the_followers(self) -> None:
        sized = size_copy(
            move("10", "6"), ETH, follower(attributable=D("2.5"), wallet_position=D("2.5"))
        )
        assert (sized.side, sized.quantity, sized.reduce_only) == ("sell", D(1), True)

    def test_whatever_the_size_mode(self) -> None:
        sized = size_copy(
            move("-10", "-6"),
            ETH,
            follower(
                size_mode="fixed",
                fixed_notional_usd=D(100),
                attributable=D(-2),
                wallet_position=D(-2),
            ),
        )
        assert (sized.side, sized.quantity) == ("buy", D("0.8"))

    def test_a_close_never_exceeds_what_the_account_holds(self) -> None:
        sized = size_copy(
            move("10", "0"), ETH, follower(attributable=D(2), wallet_position=D("0.5"))
        )
        assert sized.quantity == D("0.5")
        assert sized.details["clamped_to_venue_position"] == "0.5"

    def test_nothing_to_close_is_said(self) -> None:
        sized = size_copy(move("10", "4"), ETH, follower())
        assert sized.reason_code == Reason.NOTHING_TO_CLOSE


class TestFlip:
    def test_close_then_open_the_remainder_in_one_order(self) -> None:
        # leader 10 long -> 5 short; follower holds 1 long: sell 1 + 0.5
        sized = size_copy(move("10", "-5"), ETH, follower(attributable=D(1), wallet_position=D(1)))
        assert (sized.side, sized.quantity) == ("sell", D("1.5"))
        assert not sized.reduce_only  # it opens too
        assert sized.leverage is not None


class TestMaxPosition:
    def test_caps_an_increasing_order(self) -> None:
        # wants 1 ETH (2500 USD) with 1000 USD of room left of a 3000 USD cap
        sized = size_copy(
            move("0", "10"),
            ETH,
            follower(max_position_usd=D(3000), strategy_position=D("0.8")),
        )
        assert sized.place
        assert sized.capped
        assert sized.quantity == D("0.4")
        assert sized.remainder_after == 0  # what the cap removes is not owed

    def test_no_room_is_a_skip_with_the_reason(self) -> None:
        sized = size_copy(
            move("0", "10"), ETH, follower(max_position_usd=D(2000), strategy_position=D("0.8"))
        )
        assert (sized.place, sized.reason_code) == (False, Reason.MAX_POSITION)

    def test_reductions_are_never_capped(self) -> None:
        sized = size_copy(
            move("10", "5"),
            ETH,
            follower(
                max_position_usd=D(10),
                attributable=D(2),
                wallet_position=D(2),
                strategy_position=D(2),
            ),
        )
        assert sized.quantity == D(1)


class TestInverse:
    def test_opens_the_opposite_side(self) -> None:
        sized = size_copy(move("0", "10"), ETH, follower(inverse=True))
        assert (sized.side, sized.quantity) == ("sell", D(1))

    def test_and_closes_its_own_position(self) -> None:
        sized = size_copy(
            move("10", "5"),
            ETH,
            follower(inverse=True, attributable=D(-1), wallet_position=D(-1)),
        )
        assert (sized.side, sized.quantity, sized.reduce_only) == ("buy", D("0.5"), True)


def test_a_self_matched_millisecond_copies_nothing() -> None:
    assert size_copy(move("3", "3"), ETH, follower()).reason_code == Reason.NO_NET_CHANGE


amounts = st.decimals(min_value=D("-50"), max_value=D("50"), places=3, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    before=amounts,
    after=amounts,
    held=amounts,
    owed=st.decimals(-1, 1, places=4),
    inverse=st.booleans(),
    mode=st.sampled_from(["proportional", "fixed", "multiplier"]),
)
def test_invariants_for_any_move(
    before: Decimal, after: Decimal, held: Decimal, owed: Decimal, inverse: bool, mode: str
) -> None:
    f = follower(
        size_mode=mode,
        fixed_notional_usd=D(500),
        multiplier=D("0.2"),
        inverse=inverse,
        attributable=held,
        wallet_position=held,
        remainder=owed,
        follow_new_entries_only=False,
    )
    sized = size_copy(move(str(before), str(after)), ETH, f)
    if not sized.place:
        assert sized.reason_code
        return
    assert sized.quantity is not None
    assert sized.quantity > 0
    assert sized.quantity % ETH.size_rules.lot_size == 0  # on the lot
    assert sized.quantity * (sized.limit_price or 0) >= ETH.size_rules.min_notional
    signed = sized.quantity if sized.side == "buy" else -sized.quantity
    if not sized.capped:
        # what was placed plus what is still owed is exactly what was wanted
        assert signed + sized.remainder_after == sized.desired
    if sized.reduce_only:
        # a reduce-only order never goes past flat
        assert held != 0
        assert abs(signed) <= abs(held)
        assert (signed > 0) != (held > 0)
    # the limit is within the slippage allowance of the leader's price
    assert sized.limit_price is not None
    assert abs(sized.limit_price / D(2500) - 1) <= D("0.001")


@pytest.mark.parametrize("pct", ["100", "10", "1"])
def test_proportional_scales_linearly(pct: str) -> None:
    sized = size_copy(move("0", "100"), ETH, follower(copy_pct=D(pct)))
    assert sized.quantity == D(10) * D(pct) / 100
