"""Alignment: the rate as copytrade.services.alignment defines it, and rebalance orders when the
drift passes the threshold and the strategy asks for them."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from copytrade.models import CopyDecision
from copytrade.services import strategy_align, strategy_alignment, trader_fills_ingest
from copytrade.tests.conftest import fill
from trading.exchanges import VenuePosition
from trading.models import Order, Position
from trading.services import position_set_from_venue

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def copied(
    leader: Any,
    follower: Any,
    market: None,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Any:
    """A follower at 10 % of a leader long 10 ETH (bought through the engine)."""
    strategy = follower(leader, equity="10000", rebalance_threshold_bps=100)
    with django_capture_on_commit_callbacks(execute=True):
        trader_fills_ingest(
            trader=leader,
            fills=[fill("ETH", "buy", "10", "2500", start="0", time_ms=int(time.time() * 1000))],
        )
    return strategy


def _hold(strategy: Any, quantity: str) -> None:
    """The account's ETH position changed behind the engine's back (a manual trade at the
    venue, which Tandem's reconciliation then records)."""
    from trading.exchanges.paper import PaperVenue

    PaperVenue().set_position(strategy.user.wallet_addr, "ETH", D(quantity), D(2500))
    position_set_from_venue(
        agent_wallet=strategy.agent_wallet,
        reason="test",
        record=False,
        venue_position=VenuePosition(symbol="ETH", quantity=D(quantity), entry_price=D(2500)),
    )


def test_a_follower_holding_its_target_is_100_percent_aligned(copied: Any) -> None:
    report = strategy_alignment(strategy=copied)
    (eth,) = report.coins
    assert (eth.target, eth.actual) == (D(1), D(1))
    assert report.rate == D("100.00")


def test_the_rate_is_the_share_of_the_target_exposure_held_correctly(copied: Any) -> None:
    _hold(copied, "0.6")  # 40 % of the 1 ETH target is missing: drift 1000 USD of 2500
    report = strategy_alignment(strategy=copied)
    assert report.coins[0].drift_usd == D(1000)
    assert report.rate == D("60.00")
    _hold(copied, "2")  # twice the target: 100 % of it is excess
    assert strategy_alignment(strategy=copied).rate == D("0.00")


def test_a_drift_too_small_to_trade_does_not_count(copied: Any) -> None:
    _hold(copied, "0.998")  # 5 USD off: below the venue's 10 USD minimum order
    assert strategy_alignment(strategy=copied).rate == D("100.00")


def test_drift_above_the_threshold_is_rebalanced_through_a_recorded_decision(
    copied: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    _hold(copied, "0.6")  # 1000 USD off on 10,000 of equity: 1000 bps > 100
    with django_capture_on_commit_callbacks(execute=True):
        result = strategy_align(strategy=copied)
    assert result.rate == D("60.00")
    assert result.rebalance_orders == 1
    decision = CopyDecision.objects.get(kind="rebalance")
    assert (decision.outcome, decision.side, decision.quantity) == ("placed", "buy", D("0.4"))
    assert decision.order is not None
    assert str(decision.order.source_event_id).startswith("rebalance:ETH:")
    assert Position.objects.get(agent_wallet=copied.agent_wallet).quantity == D(1)
    copied.refresh_from_db()
    assert copied.alignment_rate == D("60.00")
    # aligned again: nothing more to do
    with django_capture_on_commit_callbacks(execute=True):
        again = strategy_align(strategy=copied)
    assert (again.rate, again.rebalance_orders) == (D("100.00"), 0)


def test_below_the_threshold_or_with_auto_rebalance_off_nothing_is_ordered(
    copied: Any,
) -> None:
    _hold(copied, "0.99")  # 25 USD off = 25 bps < 100
    assert strategy_align(strategy=copied).rebalance_orders == 0
    _hold(copied, "0.5")
    assert strategy_align(strategy=copied, rebalance=False).rebalance_orders == 0
    assert not Order.objects.filter(source_event_id__startswith="rebalance").exists()


def test_a_leaders_position_from_before_the_start_is_no_target_with_new_entries_only(
    leader: Any, follower: Any, market: None
) -> None:
    from copytrade.services import trader_state_sync

    trader_state_sync(
        trader=leader,
        state={
            "assetPositions": [{"position": {"coin": "ETH", "szi": "10", "entryPx": "2500"}}],
            "marginSummary": {"accountValue": "100000"},
        },
    )
    new_only = follower(leader, equity="10000", follow_new_entries_only=True)
    everything = follower(leader, equity="10000", follow_new_entries_only=False)
    assert strategy_alignment(strategy=new_only).coins == []
    (eth,) = strategy_alignment(strategy=everything).coins
    assert eth.target == D(1)
    assert strategy_alignment(strategy=everything).rate == D("0.00")
