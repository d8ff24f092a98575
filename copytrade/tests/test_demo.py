"""The demo: simulated traders whose fills have the exact userFills shape and go through the
same ingestion path; ``seed_demo`` leaves a living copy-trading setup, and can run again."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from copytrade.models import CopyStrategy, StrategyStatus, Trader, TraderEvent, TraderSource
from copytrade.services import demo_history_generate, demo_traders_ensure, demo_traders_step
from copytrade.services.demo import PERSONAS
from trading.models import Order

D = Decimal
pytestmark = pytest.mark.django_db
USER_FILL_KEYS = {
    "coin", "px", "sz", "side", "time", "startPosition", "dir", "closedPnl", "hash", "oid",
    "crossed", "fee", "tid", "feeToken",
}  # fmt: skip


def test_demo_traders_trade_in_the_user_fills_format(
    paper_symbols: Any, market: None, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    traders = demo_traders_ensure(count=3)
    assert len(traders) == 3
    assert {t.source for t in traders} == {TraderSource.DEMO}
    assert demo_traders_ensure(count=3) == traders  # idempotent
    made = 0
    for seed in range(6):
        with django_capture_on_commit_callbacks(execute=True):
            made += demo_traders_step(seed=seed, force=True)
    events = list(TraderEvent.objects.all())
    assert made == len(events) > 0
    for event in events:
        assert set(event.raw) == USER_FILL_KEYS
        assert event.raw["side"] in ("B", "A")
        assert event.source == "demo"
    # the chain holds: each move starts where the previous one of its coin ended
    for trader in traders:
        for position in trader.positions.all():
            moves = (
                TraderEvent.objects.filter(trader=trader, coin=position.coin)
                .order_by("time_ms", "seq")
                .values_list("move_key", "start_position", "side", "size")
            )
            ends: dict[str, D] = {}
            last_end = None
            for key, start, side, size in moves:
                if key not in ends:
                    if last_end is not None:
                        assert start == last_end
                    ends[key] = start or D(0)
                ends[key] += size if side == "buy" else -size
                last_end = ends[key]
            assert position.quantity == (last_end if last_end is not None else D(0))


def test_history_is_generated_once_and_not_copied(
    paper_symbols: Any, market: None, leader: Any, follower: Any
) -> None:
    (trader,) = demo_traders_ensure(count=1)
    follower(trader)
    made = demo_history_generate(trader=trader, days=3, trades=40)
    assert made > 0
    assert TraderEvent.objects.filter(trader=trader).count() == made
    assert demo_history_generate(trader=trader) == 0
    assert not Order.objects.exists()


def test_seed_demo_leaves_a_living_copy_setup_and_runs_again(market: None, settings: Any) -> None:
    settings.SETTINGS_MODULE = "config.settings.test"
    out = StringIO()
    call_command("seed_demo", stdout=out)
    strategy = CopyStrategy.objects.get(name="Demo portfolio")
    assert strategy.status == StrategyStatus.ACTIVE
    assert strategy.allocations.count() == 2
    assert strategy.agent_wallet is not None
    assert strategy.agent_wallet.status == "active"
    assert Trader.objects.filter(source=TraderSource.DEMO).count() == min(4, len(PERSONAS))
    history = TraderEvent.objects.count()
    assert history > 0
    call_command("seed_demo", stdout=StringIO())
    assert CopyStrategy.objects.filter(name="Demo portfolio").count() == 1
    assert TraderEvent.objects.count() == history
    assert "demo portfolio strategy copying" in out.getvalue()
