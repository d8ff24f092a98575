"""The copy simulation runs the engine's own sizing over a trader's stored fills: replaying the
same fills live through the engine (paper venue) and simulating them give the same decisions
and the same positions."""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from copytrade.models import CopyDecision
from copytrade.services import copy_simulate, trader_fills_ingest
from trading.models import Position

D = Decimal
DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.django_db


def _recent(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The synthetic fills moved to the last minute (same spacing, same order)."""
    shift = int(time.time() * 1000) - 60_000 - min(int(r["time"]) for r in raw)
    return [{**r, "time": int(r["time"]) + shift} for r in raw]


def test_simulation_matches_the_live_engine_on_the_same_fills(
    leader: Any,
    follower: Any,
    publish: Callable[..., Any],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    raw = _recent(json.loads((DATA / "user_fills_small.json").read_text()))
    settings = {
        "size_mode": "multiplier",
        "multiplier": D("0.1"),
        "slippage_bps": 100,
        "min_order_usd": D(1),
        "follow_new_entries_only": True,
        "max_leverage": D(10),
    }
    strategy = follower(leader, started_at=timezone.now() - timedelta(minutes=5), **settings)
    by_ms: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for record in raw:
        by_ms[record["time"]].append(record)
    for ms in sorted(by_ms):
        batch = by_ms[ms]
        for coin in {r["coin"] for r in batch}:
            prices = [D(r["px"]) for r in batch if r["coin"] == coin]
            publish(coin, prices[-1])
        with django_capture_on_commit_callbacks(execute=True):
            trader_fills_ingest(trader=leader, fills=batch)
    live_positions = {
        p.symbol.name: p.quantity.normalize()
        for p in Position.objects.filter(agent_wallet=strategy.agent_wallet).select_related(
            "symbol"
        )
        if p.quantity
    }
    decisions = CopyDecision.objects.filter(strategy=strategy)
    live_skips = Counter(decisions.exclude(outcome="placed").values_list("reason_code", flat=True))

    simulated = copy_simulate(
        allocations=[{"trader": leader.pk, "weight": D(1)}],
        settings=settings,
        days=1,
        venue="paper",
    )
    assert simulated.copied == decisions.filter(outcome="placed").count()
    assert simulated.skipped_by_reason == dict(live_skips)
    assert {c: D(q) for c, q in simulated.positions.items()} == live_positions
    assert simulated.copied > 0
    assert "new_entries_only" in simulated.skipped_by_reason  # ETH and DOGE were open already


def test_simulation_refuses_a_bad_draft(leader: Any) -> None:
    from config.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as weights:
        copy_simulate(allocations=[{"trader": leader.pk, "weight": "1.5"}], settings={})
    assert "allocations[0].weight" in weights.value.fields
    with pytest.raises(ValidationFailed):
        copy_simulate(allocations=[], settings={})
    with pytest.raises(ValidationFailed):
        copy_simulate(
            allocations=[{"trader": leader.pk, "weight": "1"}], settings={"size_mode": "fixed"}
        )


def test_simulation_of_a_quiet_trader_is_flat(leader: Any, paper_symbols: Any) -> None:
    result = copy_simulate(allocations=[{"trader": leader.pk, "weight": "1"}], settings={}, days=7)
    data = result.as_dict()
    assert (data["copied"], data["total_pnl"], data["return_pct"]) == (0, "0.00", "0.00")
    assert data["assumptions"]
