"""Acceptance (b): replaying Hyperliquid's recorded userFills through the fill and position
services.

The recorded list (data/hyperliquid/README.md) is newest first by millisecond but oldest first
within one; it has no ``tid``; several fills of one transaction share a start position; and
positions were already open when the window starts. So: parse (stable sort on time), start each
coin from its first start position, apply everything, and the result must be the venue's --
every coin flat, every ``dir`` derived as the venue does, total closedPnl -152.586132 -- and a
second replay must change nothing. The small synthetic file in tests/data has the same shape and
the same traps, and always runs.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from accounts.tests.factories import AgentWalletFactory, UserFactory
from trading.exchanges import VenuePosition, hlformat
from trading.models import Fill, Position, RiskEvent, RiskEventType
from trading.services import fills_apply, position_set_from_venue, symbols_sync

D = Decimal
DATA = Path(__file__).parent / "data"
pytestmark = pytest.mark.django_db


def _venue_ends(raw: list[dict[str, Any]]) -> dict[str, D]:
    """What the venue says each coin ends at: the newest millisecond's fills, applied to the
    start position they report (the first list entry alone would be wrong: README)."""
    ends: dict[str, D] = {}
    for coin in {f["coin"] for f in raw}:
        fills = [f for f in raw if f["coin"] == coin]
        newest = max(f["time"] for f in fills)
        last = [f for f in fills if f["time"] == newest]  # listed oldest first
        position = D(last[-1]["startPosition"])
        for f in [last[-1]]:
            position += D(f["sz"]) if f["side"] == "B" else -D(f["sz"])
        ends[coin] = position
    return ends


def _replay(
    wallet: Any,
    raw: list[dict[str, Any]],
    *,
    entries: dict[str, D] | None = None,
    strip_pnl: bool = False,
    start: bool = True,
) -> int:
    fills = hlformat.parse_fills(raw)
    if strip_pnl:
        from dataclasses import replace

        fills = [replace(f, closed_pnl=None) for f in fills]
    first: dict[str, Any] = {}
    for item in fills:  # oldest first
        first.setdefault(item.symbol, item)
    for coin, item in first.items() if start else ():
        # The window opens on positions already held: start from the venue's start position.
        # Their entry is unknown to this history; the venue's closedPnl covers the PnL.
        entry = (entries or {}).get(coin, item.price)
        position_set_from_venue(
            agent_wallet=wallet,
            reason="replay start",
            record=False,
            venue_position=VenuePosition(
                symbol=coin, quantity=item.start_position, entry_price=entry
            ),
        )
    return len(fills_apply(agent_wallet=wallet, fills=fills).created)


def _snapshot() -> tuple[Any, ...]:
    positions = tuple(
        Position.objects.order_by("symbol__name").values_list(
            "symbol__name",
            "quantity",
            "entry_price",
            "realized_pnl",
            "fees_paid",
            "closed_at",
            "last_fill_time_ms",
        )
    )
    return positions, Fill.objects.count(), RiskEvent.objects.count()


def _check_replay(
    meta: dict[str, Any], raw: list[dict[str, Any]], total_pnl: D, expected_drifts: int
) -> None:
    symbols_sync(venue="hyperliquid", infos=hlformat.parse_meta(meta))
    wallet = AgentWalletFactory.create(user=UserFactory.create(), exchange="hyperliquid")
    created = _replay(wallet, raw)
    assert created == len(raw)

    # every coin's position is the venue's (all flat at the end of these windows)
    ends = _venue_ends(raw)
    positions = {p.symbol.name: p for p in Position.objects.select_related("symbol")}
    assert set(positions) == set(ends)
    for coin, position in positions.items():
        assert position.quantity == ends[coin], coin
        assert position.quantity == 0
        assert position.side == "flat"
        assert position.closed_at

    # every fill's direction derived as the venue does, and the venue's PnL booked
    venue_dir = {hlformat.parse_fill(f).venue_fill_id: f["dir"] for f in raw}
    stored = dict(Fill.objects.values_list("venue_fill_id", "direction"))
    assert stored == venue_dir
    assert sum(Fill.objects.values_list("realized_pnl", flat=True)) == total_pnl
    assert sum(p.realized_pnl for p in positions.values()) == total_pnl
    drifts = RiskEvent.objects.filter(event_type=RiskEventType.POSITION_DRIFT).count()
    assert drifts == expected_drifts

    # a second replay changes nothing
    before = _snapshot()
    assert _replay(wallet, raw, start=False) == 0
    assert _snapshot() == before


def test_replay_of_recorded_user_fills(shared_data: Path) -> None:
    folder = shared_data / "hyperliquid"
    raw = json.loads((folder / "user_fills.json").read_text())
    meta = json.loads((folder / "meta.json").read_text())
    assert len(raw) == 500
    # One break in the chain: the oldest SUI fill's other leg is past the 500-fill cap
    # (README), so the venue's next start position re-anchors SUI once.
    _check_replay(meta, raw, D("-152.586132"), expected_drifts=1)


def test_replay_of_synthetic_user_fills() -> None:
    raw = json.loads((DATA / "user_fills_small.json").read_text())
    meta = json.loads((DATA / "meta_small.json").read_text())
    _check_replay(meta, raw, D("131.5"), expected_drifts=0)


def test_synthetic_replay_pnl_computed_by_tandem_matches_the_venue() -> None:
    """With the opening entries known (1900 ETH, 21 SOL) and the venue's closedPnl withheld,
    Tandem's own computation -- including the group of fills sharing a start position and the
    flip -- gives the venue's numbers fill by fill."""
    raw = json.loads((DATA / "user_fills_small.json").read_text())
    symbols_sync(
        venue="hyperliquid",
        infos=hlformat.parse_meta(json.loads((DATA / "meta_small.json").read_text())),
    )
    wallet = AgentWalletFactory.create(user=UserFactory.create(), exchange="hyperliquid")
    _replay(wallet, raw, entries={"ETH": D(1900), "SOL": D(21)}, strip_pnl=True)
    venue_pnl = {hlformat.parse_fill(f).venue_fill_id: D(f["closedPnl"]) for f in raw}
    assert dict(Fill.objects.values_list("venue_fill_id", "realized_pnl")) == venue_pnl
    assert not Fill.objects.filter(venue_closed_pnl__isnull=False).exists()
