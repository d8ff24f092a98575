"""The engine end to end: leader fills through ingestion to decisions, orders on the paper venue
and follower positions -- the rules as the services apply them, and what the orders carry."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from copytrade.models import CopyDecision, CopySlot, TraderEvent
from copytrade.services import (
    strategy_rollback,
    strategy_update,
    trader_fills_ingest,
    trader_state_sync,
)
from copytrade.tests.conftest import fill
from copytrade.tests.factories import TraderFactory
from trading.models import Order, Position, RiskEvent
from trading.services import risk_limit_set

D = Decimal
pytestmark = pytest.mark.django_db


def now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
def ingest(
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> Callable[..., Any]:
    """ingest(trader, *fills): one delivery, committed (orders sent to the paper venue)."""

    def run(trader: Any, *fills: dict[str, Any], **kwargs: Any) -> Any:
        with django_capture_on_commit_callbacks(execute=True):
            return trader_fills_ingest(trader=trader, fills=list(fills), **kwargs)

    return run


def position(strategy: Any, coin: str) -> D:
    row = Position.objects.filter(agent_wallet=strategy.agent_wallet, symbol__name=coin).first()
    return row.quantity if row else D(0)


class TestCopying:
    def test_an_order_carries_its_copy_context_and_fills_on_the_venue(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        strategy = follower(leader, equity="10000")
        result = ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=now_ms()))
        assert (result.new, result.moves, result.decisions, result.orders) == (1, 1, 1, 1)
        order = Order.objects.get()
        event = TraderEvent.objects.get()
        assert order.is_copy_trade
        assert order.strategy_id == strategy.pk
        assert order.source_trader_id == leader.pk
        assert order.source_event_id == event.move_key
        assert order.metadata["copy"]["strategy_version"] == 1
        assert (order.order_type, order.time_in_force) == ("limit", "Ioc")
        assert order.status == "filled"
        decision = CopyDecision.objects.get()
        assert (decision.outcome, decision.order_id, decision.version_number) == (
            "placed",
            order.pk,
            1,
        )
        assert decision.trader_event_id == event.pk
        assert position(strategy, "ETH") == D(1)
        # the engine's bookkeeping follows the fills
        assert CopySlot.objects.get(strategy=strategy).attributable == D(1)

    def test_one_leader_fill_fans_out_to_every_follower_with_its_own_settings(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        a = follower(leader, equity="10000")
        b = follower(leader, equity="50000", copy_pct=D(50))
        c = follower(leader, size_mode="fixed", fixed_notional_usd=D(500))
        d = follower(leader, inverse=True, equity="20000")
        ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=now_ms()))
        assert position(a, "ETH") == D(1)
        assert position(b, "ETH") == D("2.5")
        assert position(c, "ETH") == D("0.2")
        assert position(d, "ETH") == D(-2)
        assert CopyDecision.objects.count() == 4

    def test_partial_fills_of_one_leader_order_are_one_move_and_one_order(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        strategy = follower(leader, equity="10000")
        t = now_ms()
        ingest(
            leader,
            fill("ETH", "buy", "4", "2500", start="0", time_ms=t, oid=7),
            fill("ETH", "buy", "6", "2500", start="0", time_ms=t, oid=7),
        )
        assert TraderEvent.objects.values("move_key").distinct().count() == 1
        assert Order.objects.get().quantity == D(1)
        assert position(strategy, "ETH") == D(1)

    def test_fills_arriving_out_of_order_end_in_the_same_place(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        strategy = follower(leader, equity="10000")
        t = now_ms()
        ingest(leader, fill("ETH", "buy", "5", "2500", start="10", time_ms=t + 5))  # the add
        ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=t))  # the open
        assert position(strategy, "ETH") == D("1.5")
        # the leader's tracked position is the newest one's, not the late fill's
        assert leader.positions.get(coin="ETH").quantity == D(15)

    def test_a_late_part_of_a_move_is_sized_from_where_the_first_part_left_the_leader(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        strategy = follower(leader, equity="10000")
        t = now_ms()
        ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=t))
        t += 10
        # one closing order filled in two parts, delivered apart (same ms, same start)
        ingest(leader, fill("ETH", "sell", "4", "2500", start="10", time_ms=t, oid=9))
        assert position(strategy, "ETH") == D("0.6")
        ingest(leader, fill("ETH", "sell", "6", "2500", start="10", time_ms=t, oid=9))
        # the second part took the leader from 6 to 0: the follower closes what it has left
        assert position(strategy, "ETH") == D(0)

    def test_replaying_fills_decides_nothing_again(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        follower(leader, equity="10000")
        fills = [fill("ETH", "buy", "10", "2500", start="0", time_ms=now_ms())]
        ingest(leader, *fills)
        again = ingest(leader, *fills, *fills)
        assert (again.new, again.duplicates, again.decisions) == (0, 2, 0)
        assert (Order.objects.count(), CopyDecision.objects.count()) == (1, 1)

    def test_the_2023_shape_without_tid_dedupes_on_the_derived_id(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        follower(leader, equity="10000")
        record = fill("ETH", "buy", "10", "2500", start="0", time_ms=now_ms())
        del record["tid"], record["feeToken"]
        ingest(leader, record)
        ingest(leader, dict(record))
        event = TraderEvent.objects.get()
        assert event.fill_id.startswith("d:")
        assert Order.objects.count() == 1


class TestSkips:
    def test_a_stale_signal_is_not_chased(
        self, leader: Any, follower: Any, market: None, ingest: Any, settings: Any
    ) -> None:
        settings.TANDEM = {**settings.TANDEM, "COPY_MAX_SIGNAL_AGE_SECONDS": 60}
        follower(leader, started_at=timezone.now() - timedelta(hours=1))
        ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=now_ms() - 300_000))
        decision = CopyDecision.objects.get()
        assert (decision.outcome, decision.reason_code) == ("skipped", "stale_signal")
        assert not Order.objects.exists()

    def test_fills_before_the_strategy_started_are_not_decided(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        follower(leader)
        ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=now_ms() - 60_000))
        assert not CopyDecision.objects.exists()

    def test_a_coin_the_followers_venue_does_not_list(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        follower(leader)
        ingest(leader, fill("XYZ", "buy", "10", "2", start="0", time_ms=now_ms()))
        assert CopyDecision.objects.get().reason_code == "not_listed"

    def test_an_account_that_may_no_longer_trade(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        strategy = follower(leader)
        strategy.user.kyc_level = 0
        strategy.user.save()
        ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=now_ms()))
        decision = CopyDecision.objects.get()
        assert decision.reason_code == "account_blocked"
        assert "KYC" in decision.reason

    def test_a_risk_limit_refuses_the_order_with_trading_s_reason(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        strategy = follower(leader, equity="10000")
        risk_limit_set(user=strategy.user, max_position_value=D(100))
        ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=now_ms()))
        decision = CopyDecision.objects.get()
        assert (decision.outcome, decision.reason_code) == ("refused", "risk_limit")
        assert "The position would be worth 2502.50" in decision.reason
        assert not Order.objects.exists()
        assert RiskEvent.objects.filter(user=strategy.user, metric_name="position_value").exists()

    def test_small_moves_add_up_across_deliveries(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        strategy = follower(leader, equity="1000", min_order_usd=D(5))  # 1 % of the leader
        t = now_ms()
        for step in range(4):  # 0.4 ETH each -> 0.004 ETH = 10 USD owed... each 0.004 x 2500
            ingest(
                leader,
                fill("ETH", "buy", "0.1", "2500", start=str(D("0.1") * step), time_ms=t + step),
            )
        reasons = list(
            CopyDecision.objects.order_by("created_at").values_list("reason_code", flat=True)
        )
        # 0.001 ETH (2.5 USD) per move: three carried, the fourth places 0.004 ETH = 10 USD
        assert reasons == ["below_minimum", "below_minimum", "below_minimum", ""]
        assert position(strategy, "ETH") == D("0.004")
        assert CopySlot.objects.get(strategy=strategy).remainder == 0


class TestNewEntriesOnly:
    def test_the_leaders_old_position_is_ignored_until_it_is_flat(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        trader_state_sync(
            trader=leader,
            state={
                "assetPositions": [
                    {"position": {"coin": "ETH", "szi": "10", "entryPx": "2400",
                                  "leverage": {"type": "cross", "value": 5}}}
                ],
                "marginSummary": {"accountValue": "100000"},
            },
            at=timezone.now() - timedelta(minutes=5),
        )  # fmt: skip
        strategy = follower(leader, equity="10000", follow_new_entries_only=True)
        t = now_ms()
        ingest(leader, fill("ETH", "buy", "5", "2500", start="10", time_ms=t))
        ingest(leader, fill("ETH", "sell", "15", "2500", start="15", time_ms=t + 1))
        ingest(leader, fill("ETH", "buy", "4", "2500", start="0", time_ms=t + 2))
        reasons = list(
            CopyDecision.objects.order_by("leader_time", "created_at").values_list(
                "reason_code", flat=True
            )
        )
        assert reasons == ["new_entries_only", "new_entries_only", ""]
        assert position(strategy, "ETH") == D("0.4")


class TestVersions:
    def test_each_order_records_the_version_it_was_sized_with_and_a_rollback_brings_it_back(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        strategy = follower(leader, equity="10000")
        t = now_ms()
        ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=t))
        strategy = strategy_update(strategy=strategy, copy_pct=D(50))
        assert strategy.version is not None
        assert strategy.version.number == 2
        ingest(leader, fill("ETH", "buy", "10", "2500", start="10", time_ms=t + 1))
        strategy = strategy_rollback(strategy=strategy, number=1)
        assert strategy.copy_pct == D(100)
        ingest(leader, fill("ETH", "buy", "10", "2500", start="20", time_ms=t + 2))
        decisions = CopyDecision.objects.order_by("leader_time")
        assert [(d.version_number, d.quantity) for d in decisions] == [
            (1, D(1)),
            (2, D("0.5")),
            (1, D(1)),
        ]
        assert [o.metadata["copy"]["strategy_version"] for o in Order.objects.order_by(
            "created_at"
        )] == [1, 2, 1]  # fmt: skip


class TestAnnouncements:
    def test_decisions_reach_their_owner_s_stream_and_clickhouse_buffer(
        self, leader: Any, follower: Any, market: None, ingest: Any
    ) -> None:
        from config import streams

        strategy = follower(leader, equity="10000")
        stream = streams.account_stream(strategy.user_id)  # the owner's, in real Redis
        before = streams.current_seq(stream)
        ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=now_ms()))
        published = streams.backlog_since(stream, before) or []
        decisions = [e["data"] for e in published if e["type"] == "decision"]
        assert [(d["strategy_id"], d["outcome"]) for d in decisions] == [
            (str(strategy.pk), "placed")
        ]
        from analytics.buffer import Buffer

        assert Buffer("copy_trade_events").pending_rows() >= 1


def test_a_follower_of_two_traders_keeps_their_shares_apart(
    leader: Any, follower: Any, market: None, ingest: Any
) -> None:
    other = TraderFactory.create(account_value=D(100_000))
    strategy = follower(leader, equity="10000", weight="0.5", others=[(other, "0.5")])
    t = now_ms()
    ingest(leader, fill("ETH", "buy", "10", "2500", start="0", time_ms=t))
    ingest(other, fill("ETH", "buy", "20", "2500", start="0", time_ms=t + 1))
    assert position(strategy, "ETH") == D("1.5")
    # the first leader closes: only its share goes
    ingest(leader, fill("ETH", "sell", "10", "2500", start="10", time_ms=t + 2))
    assert position(strategy, "ETH") == D(1)
    shares = dict(CopySlot.objects.values_list("trader_id", "committed_quantity"))
    assert shares == {leader.pk: D(0), other.pk: D(1)}
