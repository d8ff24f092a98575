"""Liquidation heatmap: the estimation method, and bins built from ingested fills checked
against a separate replay of the same fills."""

from __future__ import annotations

import statistics
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest

from analytics import selectors, services
from analytics.clickhouse.client import ClickHouse
from analytics.feeds.hyperliquid import trader_events_from_fills
from analytics.heatmap import FillEvent, bin_center, liquidation_price, nice_width, positions_at
from analytics.tests.conftest import load_json, recent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_liquidation_price_is_where_equity_meets_maintenance() -> None:
    entry, lev, mmr = Decimal(100), Decimal(10), Decimal("0.02")
    long = liquidation_price(entry=entry, long=True, leverage=lev, mmr=mmr)
    short = liquidation_price(entry=entry, long=False, leverage=lev, mmr=mmr)
    # Equity per unit at price P: margin E/L plus the move; maintenance is mmr x P.
    assert entry / lev + (long - entry) == pytest.approx(mmr * long)
    assert entry / lev - (short - entry) == pytest.approx(mmr * short)
    assert long < entry < short
    assert liquidation_price(entry=entry, long=True, leverage=Decimal(1), mmr=Decimal(0)) == 0


@pytest.mark.parametrize(
    ("reference", "bps", "width"),
    [
        (Decimal(95000), 25, Decimal(200)),
        (Decimal("3300"), 25, Decimal(10)),
        (Decimal("0.0016"), 25, Decimal("0.000005")),
        (Decimal(0), 25, Decimal("0.00000001")),
    ],
)
def test_bin_width_is_a_round_number(reference: Decimal, bps: int, width: Decimal) -> None:
    assert nice_width(reference, bps) == width
    assert bin_center(Decimal("95123.4"), Decimal(200)) == Decimal(95100)
    assert bin_center(Decimal(95000), Decimal(200)) == Decimal(95100)


def test_positions_follow_the_fills() -> None:
    def fill(minutes: int, prev: str, new: str, price: str, lev: str = "0") -> FillEvent:
        return FillEvent(
            "t",
            "BTC",
            T0 + timedelta(minutes=minutes),
            Decimal(prev),
            Decimal(new),
            Decimal(price),
            Decimal(lev),
        )

    events = [
        fill(1, "0", "1", "100", "5"),  # open long at 100, 5x
        fill(2, "1", "3", "130"),  # add 2 at 130: entry (100 + 260) / 3 = 120
        fill(3, "3", "2", "150"),  # reduce: entry stays 120
        fill(4, "2", "-1", "90"),  # flip short at 90
        fill(5, "-1", "0", "80"),  # close
        fill(6, "0.5", "0.7", "200"),  # an add to a position opened before our first fill
    ]
    moments = [T0 + timedelta(minutes=m, seconds=30) for m in range(0, 7)]
    snapshots = positions_at(events, moments)
    entries = [[(p.size, p.entry, p.leverage) for p in snap] for snap in snapshots]
    assert entries == [
        [],
        [(Decimal(1), Decimal(100), Decimal(5))],
        [(Decimal(3), Decimal(120), Decimal(5))],
        [(Decimal(2), Decimal(120), Decimal(5))],
        [(Decimal(-1), Decimal(90), Decimal(5))],
        [],
        [(Decimal("0.7"), Decimal(200), Decimal(0))],
    ]


def reference_bins(
    fills: list[dict[str, Any]],
    trader: str,
    moments: list[datetime],
    mmr: Decimal,
    leverage: Decimal,
) -> dict[tuple[datetime, str, Decimal], tuple[Decimal, int]]:
    """A separate replay: positions from the fills' own startPosition/side/sz, entry as the
    size-weighted price since flat, the isolated-margin formula, bins of 25 bp."""
    ordered = sorted(fills, key=lambda f: f["time"])
    state: dict[str, tuple[Decimal, Decimal]] = {}
    at_moment: list[dict[str, tuple[Decimal, Decimal]]] = []
    i = 0
    for moment in moments:
        cutoff = moment.timestamp() * 1000
        while i < len(ordered) and ordered[i]["time"] <= cutoff:
            f = ordered[i]
            start, size, px = Decimal(f["startPosition"]), Decimal(f["sz"]), Decimal(f["px"])
            new = start + size if f["side"] == "B" else start - size
            old_size, old_entry = state.get(f["coin"], (Decimal(0), Decimal(0)))
            if new == 0:
                state.pop(f["coin"], None)
            elif start == 0 or (start > 0) != (new > 0):
                state[f["coin"]] = (new, px)
            else:
                entry = old_entry if old_size == start and old_entry > 0 else px
                if abs(new) > abs(start):
                    entry = (entry * abs(start) + px * (abs(new) - abs(start))) / abs(new)
                state[f["coin"]] = (new, entry)
            i += 1
        at_moment.append(dict(state))
    widths = {}
    for coin in {c for snap in at_moment for c in snap}:
        widths[coin] = nice_width(
            statistics.median([snap[coin][1] for snap in at_moment if coin in snap]), 25
        )
    out: dict[tuple[datetime, str, Decimal], tuple[Decimal, int]] = {}
    for moment, snap in zip(moments, at_moment, strict=True):
        for coin, (size, entry) in snap.items():
            if coin != "BTC":
                continue
            long = size > 0
            price = (
                entry * (1 - 1 / leverage) / (1 - mmr)
                if long
                else entry * (1 + 1 / leverage) / (1 + mmr)
            )
            w = widths[coin]
            center = ((price / w).to_integral_value(rounding=ROUND_FLOOR) + Decimal("0.5")) * w
            key = (moment, "long" if long else "short", center.quantize(Decimal("0.00000001")))
            volume, count = out.get(key, (Decimal(0), 0))
            out[key] = (volume + abs(size), count + 1)
    return out


@pytest.mark.django_db
def test_heatmap_bins_match_a_separate_replay(
    clickhouse: ClickHouse, symbols: Any, settings: Any
) -> None:
    settings.ANALYTICS = {**settings.ANALYTICS, "HEATMAP_DEFAULT_LEVERAGE": "10"}
    fills = recent(load_json("fills_synthetic.json"), days_back=0)
    newest = max(f["time"] for f in fills)
    end = datetime.fromtimestamp(newest / 1000, tz=UTC).replace(
        minute=0, second=0, microsecond=0
    ) + timedelta(hours=1)
    start = end - timedelta(days=6)
    services.trader_events_ingest(events=trader_events_from_fills(fills, trader_id="leader-1"))
    result = services.liq_heatmap_build(
        exchange="hyperliquid", symbols=["BTC", "ETH", "SOL"], start=start, end=end
    )
    assert result.snapshots == 6 * 24 + 1
    assert result.bins > 0
    got = selectors.liq_heatmap(
        symbol="BTC",
        exchange="hyperliquid",
        start=start,
        end=end + timedelta(seconds=1),
        limit=5000,
    )
    assert got
    assert all(b["method_version"] == 1 for b in got)
    moments = [start + timedelta(hours=h) for h in range(6 * 24 + 1)]
    mmr = Decimal(symbols[("hyperliquid", "BTC")].maintenance_margin_rate)
    want = reference_bins(fills, "leader-1", moments, mmr, Decimal(10))
    assert {(b["time"], b["side"], b["price"]): (b["volume"], b["positions"]) for b in got} == want
    # A rebuild replaces the earlier build: no bin counted twice.
    services.liq_heatmap_build(
        exchange="hyperliquid", symbols=["BTC", "ETH", "SOL"], start=start, end=end
    )
    again = selectors.liq_heatmap(
        symbol="BTC",
        exchange="hyperliquid",
        start=start,
        end=end + timedelta(seconds=1),
        limit=5000,
    )
    assert len(again) == len(got)


@pytest.mark.django_db
def test_a_closed_position_disappears_from_a_rebuilt_snapshot(
    clickhouse: ClickHouse, symbols: Any
) -> None:
    now = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0)
    opened: dict[str, Any] = {
        "coin": "ETH", "px": "3000", "sz": "2", "side": "B",
        "time": int((now - timedelta(hours=3)).timestamp() * 1000),
        "startPosition": "0", "dir": "Open Long", "closedPnl": "0", "hash": "0x1", "oid": 1,
        "crossed": True, "fee": "0", "tid": 1,
    }  # fmt: skip
    services.trader_events_ingest(events=trader_events_from_fills([opened], trader_id="t-9"))

    def build() -> None:
        services.liq_heatmap_build(
            exchange="hyperliquid", symbols=["ETH"], start=now - timedelta(hours=1), end=now
        )

    build()
    before = selectors.liq_heatmap(
        symbol="ETH",
        exchange="hyperliquid",
        start=now - timedelta(hours=2),
        end=now + timedelta(hours=1),
    )
    assert [b["positions"] for b in before] == [1, 1]
    # The venue later reports a close we had missed, timestamped before the snapshots.
    closed = {
        **opened,
        "side": "A",
        "startPosition": "2",
        "dir": "Close Long",
        "time": opened["time"] + 60_000,
        "tid": 2,
    }
    services.trader_events_ingest(events=trader_events_from_fills([closed], trader_id="t-9"))
    build()
    assert (
        selectors.liq_heatmap(
            symbol="ETH",
            exchange="hyperliquid",
            start=now - timedelta(hours=2),
            end=now + timedelta(hours=1),
        )
        == []
    )


@pytest.mark.django_db
def test_heatmap_range_is_bounded(clickhouse: ClickHouse, symbols: Any) -> None:
    from config.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as info:
        selectors.liq_heatmap(
            symbol="BTC", exchange="hyperliquid", start=T0, end=T0 + timedelta(days=30)
        )
    assert info.value.fields == {"end": [info.value.message]}
