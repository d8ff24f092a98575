"""Trader KPIs through the real rollup on ClickHouse, each checked against an independent
pandas/numpy computation from the raw fills (synthetic and the recorded ones)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest

from analytics import selectors, services
from analytics.batches import EquitySampleRow
from analytics.clickhouse.client import ClickHouse
from analytics.feeds.hyperliquid import trader_events_from_fills
from analytics.kpis import copy_score
from analytics.tests.conftest import days_ago, load_json, recent
from copytrade.models import Trader

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(180)]
BASE = Decimal(10000)
WINDOWS = {"1d": 1, "7d": 7, "30d": 30, "all": None}


def make_trader(alias: str = "leader", tags: list[str] | None = None) -> Trader:
    return Trader.objects.create(
        alias=alias, src_uid=f"0x{uuid.uuid4().hex[:40]}", exchange="hyperliquid", tags=tags or []
    )


# --------------------------------------------------------------------------- the reference


def reference_days(
    fills: list[dict[str, Any]],
    *,
    as_of: date,
    base: Decimal = BASE,
    samples: dict[date, Decimal] | None = None,
) -> pd.DataFrame:
    """Per-day figures straight from Hyperliquid fills with pandas, apart from analytics.kpis:
    net PnL, fees, volume, trades, closing and winning fills, gross profit/loss, the equity at
    the start of the day and the day's return."""
    df = pd.DataFrame(fills)
    df["day"] = pd.to_datetime(df["time"], unit="ms", utc=True).dt.date
    dec = lambda col: df[col].map(Decimal)  # noqa: E731
    df["closed"], df["fee_d"], df["px_d"], df["sz_d"] = (
        dec("closedPnl"),
        dec("fee"),
        dec("px"),
        dec("sz"),
    )
    df["start"] = dec("startPosition")
    df["new"] = [
        s + z if side == "B" else s - z
        for s, z, side in zip(df["start"], df["sz_d"], df["side"], strict=True)
    ]
    df["net"] = df["closed"] - df["fee_d"]
    # A fill closes (part of) a position when it makes the position smaller or flips it.
    df["closing"] = [
        s != 0 and (n == 0 or (s > 0) != (n > 0) or abs(n) < abs(s))
        for s, n in zip(df["start"], df["new"], strict=True)
    ]
    df["win"] = df["closing"] & (df["net"] > 0)
    df["notional"] = df["px_d"] * df["sz_d"]
    by_day = df.groupby("day").agg(
        net=("net", lambda s: sum(s, Decimal(0))),
        fees=("fee_d", lambda s: sum(s, Decimal(0))),
        volume=("notional", lambda s: sum(s, Decimal(0))),
        trades=("net", "size"),
        closing=("closing", "sum"),
        wins=("win", "sum"),
    )
    closing = df[df["closing"]]
    gp = closing[closing["net"] > 0].groupby("day")["net"].apply(lambda s: sum(s, Decimal(0)))
    gl = closing[closing["net"] < 0].groupby("day")["net"].apply(lambda s: -sum(s, Decimal(0)))
    days = pd.date_range(min(df["day"]), as_of, freq="D").date
    by_day = by_day.reindex(days)
    for col in ("net", "fees", "volume"):
        by_day[col] = by_day[col].map(lambda v: v if isinstance(v, Decimal) else Decimal(0))
    for col in ("trades", "closing", "wins"):
        by_day[col] = by_day[col].fillna(0).astype(int)
    by_day["gp"] = [gp.get(d, Decimal(0)) for d in days]
    by_day["gl"] = [gl.get(d, Decimal(0)) for d in days]
    # Equity at the start of each day: the notional, or the last earlier sample, plus PnL since.
    equity, starts = base, []
    samples = samples or {}
    earlier = [d for d in samples if d < days[0]]
    if earlier:
        equity = samples[max(earlier)]
    for d in days:
        starts.append(equity)
        equity = samples[d] if d in samples else equity + by_day.loc[d, "net"]
    by_day["equity"] = starts
    by_day["r"] = [
        float(n / e) if e > 0 else 0.0 for n, e in zip(by_day["net"], starts, strict=True)
    ]
    return by_day


def reference(
    fills: list[dict[str, Any]],
    *,
    as_of: date,
    base: Decimal = BASE,
    samples: dict[date, Decimal] | None = None,
) -> dict[str, dict[str, Any]]:
    """KPIs over 1d/7d/30d/all from the per-day reference (pandas/numpy only)."""
    by_day = reference_days(fills, as_of=as_of, base=base, samples=samples)
    days = by_day.index
    out = {}
    for period, length in WINDOWS.items():
        w = by_day if length is None else by_day[by_day.index >= as_of - timedelta(days=length - 1)]
        r = w["r"].astype(float)
        wealth = (1 + r).cumprod()
        peak = pd.concat([pd.Series([1.0]), wealth]).cummax().iloc[1:].to_numpy()
        downside = math.sqrt(float((np.minimum(r, 0) ** 2).mean()))
        closing_n = int(w["closing"].sum())
        gross_loss = sum(w["gl"], Decimal(0))
        roi = float(wealth.iloc[-1] - 1)
        win_rate = int(w["wins"].sum()) / closing_n if closing_n else None
        sharpe = float(r.mean() / r.std() * math.sqrt(365)) if len(r) > 1 and r.std() > 0 else None
        drawdown = float(max(0.0, (1 - wealth.to_numpy() / peak).max()))
        history = (as_of - days[0]).days + 1
        active = int((w["trades"] > 0).sum())
        out[period] = {
            "pnl": sum(w["net"], Decimal(0)),
            "volume": sum(w["volume"], Decimal(0)),
            "trade_count": int(w["trades"].sum()),
            "roi": roi,
            "win_rate": win_rate,
            "sharpe": sharpe,
            "sortino": float(r.mean() / downside * math.sqrt(365))
            if len(r) > 1 and downside > 0
            else None,
            "max_drawdown": drawdown,
            "var_95": float(-r.quantile(0.05)) if len(r) > 1 else None,
            "profit_factor": float(sum(w["gp"], Decimal(0)) / gross_loss)
            if gross_loss > 0
            else None,
            "days": len(w),
            "history_days": history,
            "copy_score": _score(sharpe, roi, drawdown, win_rate, history, active, len(w)),
        }
    return out


def _score(
    sharpe: float | None,
    roi: float,
    dd: float,
    win: float | None,
    history: int,
    active: int,
    days: int,
) -> Decimal:
    def clip(x: float) -> float:
        return min(max(x, 0.0), 1.0)

    raw = 100 * (
        0.3 * clip((sharpe or 0) / 3) + 0.2 * clip(roi / 0.5) + 0.2 * clip(1 - dd / 0.5)
        + 0.1 * clip(win or 0) + 0.1 * clip(history / 90) + 0.1 * clip(active / min(days, 10))
    )  # fmt: skip
    return Decimal(repr(raw)).quantize(Decimal("0.01"))


def assert_matches(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got["pnl"] == want["pnl"].quantize(Decimal("0.00000001"))
    assert abs(got["volume"] - want["volume"]) <= Decimal("0.000001")
    for key in ("trade_count", "days", "history_days"):
        assert got[key] == want[key], key
    for key in ("roi", "win_rate", "sharpe", "sortino", "max_drawdown", "var_95", "profit_factor"):
        if want[key] is None:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key
    assert abs(got["copy_score"] - want["copy_score"]) <= Decimal("0.01")


def assert_days_match(
    ch: ClickHouse,
    trader: Trader,
    fills: list[dict[str, Any]],
    *,
    as_of: date,
    samples: dict[date, Decimal] | None = None,
) -> int:
    """Every stored daily row (trader_kpis_day) equals the pandas per-day reference."""
    want = reference_days(fills, as_of=as_of, samples=samples)
    rows = ch.query_dicts(
        """
        SELECT date, net_pnl, fees, volume, trade_count, closing_count, win_count,
               gross_profit, gross_loss, equity_start, return_pct
        FROM trader_kpis_day FINAL WHERE trader_id = {t:String} ORDER BY date
        """,
        {"t": str(trader.pk)},
    )
    assert [r["date"] for r in rows] == list(want.index)
    eight = Decimal("0.00000001")
    for row in rows:
        day = want.loc[row["date"]]
        assert row["net_pnl"] == day["net"].quantize(eight), row["date"]
        assert row["fees"] == day["fees"].quantize(eight), row["date"]
        assert abs(row["volume"] - day["volume"]) <= Decimal("0.000001"), row["date"]
        assert (row["trade_count"], row["closing_count"], row["win_count"]) == (
            day["trades"], day["closing"], day["wins"],
        ), row["date"]  # fmt: skip
        assert row["gross_profit"] == day["gp"].quantize(eight), row["date"]
        assert row["gross_loss"] == day["gl"].quantize(eight), row["date"]
        assert row["equity_start"] == day["equity"].quantize(eight), row["date"]
        assert row["return_pct"] == pytest.approx(day["r"], rel=1e-9, abs=1e-15), row["date"]
    return len(rows)


def ingest_and_refresh(fills: list[dict[str, Any]], trader: Trader, as_of: date) -> dict[str, Any]:
    services.trader_events_ingest(events=trader_events_from_fills(fills, trader_id=str(trader.pk)))
    services.trader_kpis_refresh(as_of=as_of, trader_ids=[str(trader.pk)])
    return selectors.trader_kpis(trader_id=trader.pk)["periods"]


# --------------------------------------------------------------------------- tests


def test_every_kpi_of_synthetic_fills_matches_pandas(clickhouse: ClickHouse) -> None:
    fills = recent(load_json("fills_synthetic.json"), days_back=2)
    trader = make_trader()
    as_of = days_ago(0).date()
    got = ingest_and_refresh(fills, trader, as_of)
    want = reference(fills, as_of=as_of)
    assert set(got) == set(WINDOWS)
    for period in WINDOWS:
        assert_matches(got[period], want[period])
    assert assert_days_match(clickhouse, trader, fills, as_of=as_of) == 47
    # Not a vacuous comparison: the statistics exist and differ between windows.
    assert got["all"]["sharpe"] is not None
    assert got["30d"]["var_95"] is not None
    assert got["all"]["trade_count"] == 199
    assert got["all"]["days"] == 47
    assert 0 <= got["all"]["copy_score"] <= 100


def test_kpis_of_the_recorded_fills_as_recorded(clickhouse: ClickHouse, shared_data: Any) -> None:
    raw = json.loads((shared_data / "hyperliquid" / "user_fills.json").read_text())
    fills = recent(raw, days_back=1)
    as_of = days_ago(1).date()
    trader = make_trader("recorded")
    got = ingest_and_refresh(fills, trader, as_of)
    want = reference(fills, as_of=as_of)
    for period in WINDOWS:
        assert_matches(got[period], want[period])
    assert assert_days_match(clickhouse, trader, fills, as_of=as_of) >= 1
    # What the data README says about this account.
    assert got["all"]["pnl"] == Decimal("-152.586132")
    assert got["all"]["trade_count"] == 500
    assert got["all"]["roi"] == pytest.approx(-152.586132 / 10000, rel=1e-12)
    assert got["all"]["sharpe"] is None  # one day: no dispersion to speak of


def test_kpis_of_the_recorded_fills_spread_over_days(
    clickhouse: ClickHouse, shared_data: Any
) -> None:
    """The same real fills, each minute of the recording moved to a day of its own (times of
    day kept): six days of real PnL for the multi-day statistics."""
    raw = json.loads((shared_data / "hyperliquid" / "user_fills.json").read_text())
    first_minute = min(f["time"] for f in raw) // 60_000
    anchor = int(days_ago(7).timestamp() * 1000)
    spread = [
        {
            **f,
            "time": anchor
            + (f["time"] // 60_000 - first_minute) * 86_400_000
            + f["time"] % 86_400_000,
        }
        for f in raw
    ]
    as_of = days_ago(0).date()
    trader = make_trader("spread")
    got = ingest_and_refresh(spread, trader, as_of)
    want = reference(spread, as_of=as_of)
    for period in WINDOWS:
        assert_matches(got[period], want[period])
    assert assert_days_match(clickhouse, trader, spread, as_of=as_of) >= 6
    assert got["all"]["sharpe"] is not None
    assert got["all"]["sortino"] is not None
    assert got["all"]["max_drawdown"] > 0
    assert got["all"]["profit_factor"] is not None


def test_equity_samples_anchor_the_returns(clickhouse: ClickHouse) -> None:
    fills = recent(load_json("fills_synthetic.json"), days_back=2)
    trader = make_trader("sampled")
    first_day = min(datetime.fromtimestamp(f["time"] / 1000, tz=UTC).date() for f in fills)
    samples = {
        first_day - timedelta(days=3): Decimal("25000"),
        first_day + timedelta(days=10): Decimal("40000"),  # a deposit: not a return
        first_day + timedelta(days=30): Decimal("38000.5"),
    }
    rows = []
    for day, value in samples.items():
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        rows.append(
            EquitySampleRow(
                trader_id=str(trader.pk),
                timestamp=noon - timedelta(hours=2),
                account_value=value - 1,
            )
        )
        rows.append(
            EquitySampleRow(trader_id=str(trader.pk), timestamp=noon, account_value=value)
        )  # the day's last
    services.equity_samples_ingest(samples=rows)
    as_of = days_ago(0).date()
    got = ingest_and_refresh(fills, trader, as_of)
    want = reference(fills, as_of=as_of, samples=samples)
    for period in WINDOWS:
        assert_matches(got[period], want[period])
    assert assert_days_match(clickhouse, trader, fills, as_of=as_of, samples=samples) == 47
    curve = selectors.trader_equity_curve(trader_id=trader.pk, start=first_day, end=as_of)
    assert curve[0]["equity_start"] == Decimal("25000")
    assert curve[11]["equity_start"] == Decimal("40000")
    assert curve[-1]["equity_end"] == curve[-1]["equity_start"] + curve[-1]["net_pnl"]


def test_refresh_is_idempotent_and_survives_events_retention(clickhouse: ClickHouse) -> None:
    fills = recent(load_json("fills_synthetic.json"), days_back=2)
    trader = make_trader()
    as_of = days_ago(0).date()
    first = ingest_and_refresh(fills, trader, as_of)
    services.trader_kpis_refresh(as_of=as_of)
    # Events age out of trader_events; the daily rows computed while they existed remain.
    clickhouse.command("TRUNCATE TABLE trader_events")
    services.trader_kpis_refresh(as_of=as_of)
    again = selectors.trader_kpis(trader_id=trader.pk)["periods"]
    assert again == first
    days = clickhouse.execute(
        "SELECT count() FROM trader_kpis_day FINAL WHERE trader_id = {t:String}",
        {"t": str(trader.pk)},
    )[0][0]
    assert days == 47


def test_copy_score_formula_bounds() -> None:
    top = copy_score(
        sharpe=9, roi=3, max_drawdown=0, win_rate=1, history_days=400, active_days=30, days=30
    )
    assert top == Decimal("100.00")
    bottom = copy_score(
        sharpe=None,
        roi=-0.9,
        max_drawdown=0.9,
        win_rate=None,
        history_days=0,
        active_days=0,
        days=30,
    )
    assert bottom == Decimal("0.00")
    mid = copy_score(
        sharpe=1.5, roi=0.1, max_drawdown=0.1, win_rate=0.5, history_days=45, active_days=5, days=30
    )
    assert mid == Decimal(
        repr(100 * (0.3 * 0.5 + 0.2 * 0.2 + 0.2 * 0.8 + 0.1 * 0.5 + 0.1 * 0.5 + 0.1 * 0.5))
    ).quantize(Decimal("0.01"))


def test_scores_are_published_to_public_score(clickhouse: ClickHouse) -> None:
    fills = recent(load_json("fills_synthetic.json"), days_back=2)
    trader = make_trader()
    other = make_trader("untouched")
    got = ingest_and_refresh(fills, trader, days_ago(0).date())
    assert services.trader_scores_publish() == 1
    trader.refresh_from_db()
    other.refresh_from_db()
    assert trader.public_score == got["30d"]["copy_score"]
    assert other.public_score is None
    assert services.trader_scores_publish() == 0  # nothing changed


def test_unknown_or_inactive_trader_is_not_found(clickhouse: ClickHouse) -> None:
    from config.errors import NotFound

    hidden = make_trader()
    hidden.is_active = False
    hidden.save()
    for trader_id in (uuid.uuid4(), hidden.pk, "not-a-uuid"):
        with pytest.raises(NotFound):
            selectors.trader_kpis(trader_id=trader_id)


def test_average_leverage_of_fills_with_known_leverage(clickhouse: ClickHouse) -> None:
    fills = recent(load_json("fills_synthetic.json"), days_back=2)
    trader = make_trader("levered")
    leverage = {"BTC": Decimal(10), "ETH": Decimal("2.5")}  # SOL unknown
    events = trader_events_from_fills(fills, trader_id=str(trader.pk), leverage=leverage)
    services.trader_events_ingest(events=events)
    as_of = days_ago(0).date()
    services.trader_kpis_refresh(as_of=as_of, trader_ids=[str(trader.pk)])
    got = selectors.trader_kpis(trader_id=trader.pk)["periods"]
    df = pd.DataFrame(fills)
    df["day"] = pd.to_datetime(df["time"], unit="ms", utc=True).dt.date
    df["lev"] = df["coin"].map({k: float(v) for k, v in leverage.items()})
    for period, length in WINDOWS.items():
        window = df if length is None else df[df["day"] >= as_of - timedelta(days=length - 1)]
        known = window["lev"].dropna()
        want = float(known.mean()) if len(known) else None
        assert got[period]["avg_leverage"] == (pytest.approx(want) if want is not None else None)
    assert got["all"]["avg_leverage"] is not None
    assert 2.5 < got["all"]["avg_leverage"] < 10
