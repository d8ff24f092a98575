"""The high-water mark (billing/hwm.py) against hand-computed tables -- gain, loss, partial
recovery, new high, deposits and withdrawals between periods -- and properties: flows alone
never make a fee, and a fee is never charged twice on the same profit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.hwm import hwm_period_close

D = Decimal

# Monthly periods, 20% performance fee (2,000 bps). Opening mark: the first equity, 10,000.
#            flows     equity    adj. mark  profit   fee    closing mark  what happens
HAND_TABLE = [
    (D(0), D(11000), D(10000), D(1000), D(200), D(11000)),  # gain: fee on 1,000
    (D(0), D(9000), D(11000), D(0), D(0), D(11000)),  # loss: 2,000 carried forward
    (D(0), D(10500), D(11000), D(0), D(0), D(11000)),  # partial recovery: still below
    (D(0), D(12000), D(11000), D(1000), D(200), D(12000)),  # new high: only the part above
    (D(5000), D(17500), D(17000), D(500), D(100), D(17500)),  # deposit raises the mark
    (D(-7500), D(9000), D(10000), D(0), D(0), D(10000)),  # withdrawal lowers it; loss 1,000
    (D(-1000), D(9600), D(9000), D(600), D(120), D(9600)),  # +1,000 -2,000: net -1,000
]


def test_the_hand_computed_table() -> None:
    opening = D(10000)
    for flows, equity, adjusted, profit, fee, closing in HAND_TABLE:
        period = hwm_period_close(
            opening_hwm=opening,
            net_flows=flows,
            closing_equity=equity,
            fee_bps=2000,
            currency="USDC",
        )
        assert (period.adjusted_hwm, period.profit, period.fee, period.closing_hwm) == (
            adjusted,
            profit,
            fee,
            closing,
        )
        opening = period.closing_hwm


def test_loss_carried_forward() -> None:
    period = hwm_period_close(
        opening_hwm=D(11000), net_flows=D(0), closing_equity=D(9000), fee_bps=2000, currency="USDC"
    )
    assert period.loss_carried_forward == D(2000)


def test_a_negative_rate_is_refused() -> None:
    with pytest.raises(ValueError, match="fee_bps"):
        hwm_period_close(
            opening_hwm=D(1), net_flows=D(0), closing_equity=D(2), fee_bps=-1, currency="USDC"
        )


money = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)


@given(start=money, flows=st.lists(money, min_size=1, max_size=12), bps=st.integers(0, 5000))
def test_deposits_alone_never_make_a_fee(start: Decimal, flows: list[Decimal], bps: int) -> None:
    """Equity that moves only by deposits (no trading result) is never charged."""
    opening, equity = start, start
    for flow in flows:
        equity += flow
        period = hwm_period_close(
            opening_hwm=opening, net_flows=flow, closing_equity=equity, fee_bps=bps, currency="USDC"
        )
        assert period.fee == 0
        opening = period.closing_hwm


@given(
    start=money,
    steps=st.lists(
        st.tuples(
            st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False),
            st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False),
        ),
        min_size=1,
        max_size=24,
    ),
    bps=st.integers(0, 5000),
)
def test_fees_are_charged_once_on_each_gain(
    start: Decimal, steps: list[tuple[Decimal, Decimal]], bps: int
) -> None:
    """Across any path of results and flows: the profit charged in total equals the rise of the
    final mark above the start plus net flows -- each gain is charged once, never again after a
    loss and its recovery -- and every fee is the period's profit at the rate, rounded once."""
    opening = start
    equity = start
    total_flows = D(0)
    charged_profit = D(0)
    for result, flow in steps:
        flow = max(flow, -equity)  # cannot withdraw more than there is
        equity = max(D(0), equity + flow + result)
        total_flows += flow
        period = hwm_period_close(
            opening_hwm=opening, net_flows=flow, closing_equity=equity, fee_bps=bps, currency="USDC"
        )
        assert period.fee >= 0
        assert period.closing_hwm >= period.closing_equity
        assert period.adjusted_hwm - period.closing_equity == period.loss_carried_forward or (
            period.profit > 0
        )
        assert abs(period.fee - period.profit * bps / 10_000) <= D("0.0000005")
        charged_profit += period.profit
        opening = period.closing_hwm
    assert charged_profit == opening - start - total_flows
