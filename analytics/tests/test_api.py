"""The analytics API: public reads, private copy performance, validation naming the
parameter, injection strings never running as SQL, per-query limits and caching."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from analytics import selectors, services
from analytics.batches import CopyTradeEventRow, TickBatch
from analytics.clickhouse.client import ClickHouse, ServerException
from analytics.feeds.hyperliquid import trader_events_from_fills
from analytics.selectors import api_settings
from analytics.tests.conftest import days_ago, load_json, recent
from copytrade.models import CopyAllocation, CopyStrategy, StrategyStatus, Trader
from trading.marketdata import MarketSimulator

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(300)]


def url(name: str, **kwargs: Any) -> str:
    return reverse(f"v1:analytics-api:{name}", kwargs=kwargs)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture
def market(clickhouse: ClickHouse, symbols: Any) -> dict[str, Any]:
    """Two hours of simulated ticks on the paper venue, ingested."""
    start = datetime.now(tz=UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    sim = MarketSimulator(seed=99, start=start)
    ticks = [t for _ in range(719) for t in sim.step(10)]
    services.market_ticks_ingest(batch=TickBatch.from_ticks(ticks), backfill=True)
    return {"start": start, "ticks": ticks}


def problem_fields(response: Any) -> set[str]:
    assert response.status_code == 400, response.content
    assert response["Content-Type"].startswith("application/problem+json")
    return set(response.json().get("errors", {}))


# --------------------------------------------------------------------------- candles


def test_candles_are_public_and_decimal_strings(
    market: dict[str, Any], api_client: APIClient
) -> None:
    response = api_client.get(
        url("candles"),
        {"symbol": "BTC", "exchange": "paper", "interval": "5m", "start": iso(market["start"])},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["interval"] == "5m"
    assert body["source"] == "trades"
    assert len(body["candles"]) == 24
    first = body["candles"][0]
    assert isinstance(first["open"], str)
    assert Decimal(first["high"]) >= Decimal(first["low"])
    assert sum(c["trade_count"] for c in body["candles"]) == 719


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"symbol": "NOPE"}, "symbol"),
        ({"interval": "7m"}, "interval"),
        ({"interval": ""}, "interval"),
        ({"exchange": "NotAVenue!"}, "exchange"),
        ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "start"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"limit": "100000"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"start": "yesterday"}, "start"),
        ({"source": "mine"}, "source"),
    ],
)
def test_bad_candle_parameters_are_named(
    clickhouse: ClickHouse, symbols: Any, api_client: APIClient, params: dict[str, str], field: str
) -> None:
    query = {"symbol": "BTC", "exchange": "paper", "interval": "1m", **params}
    assert field in problem_fields(api_client.get(url("candles"), query))


def test_missing_required_parameters(api_client: APIClient) -> None:
    assert problem_fields(api_client.get(url("candles"))) == {"symbol", "interval"}


def test_results_are_cached_for_a_few_seconds(
    market: dict[str, Any], api_client: APIClient, settings: Any
) -> None:
    settings.ANALYTICS = {**settings.ANALYTICS, "API_CACHE_SECONDS": 30}
    query = {"symbol": "ETH", "exchange": "paper", "interval": "1h", "start": iso(market["start"])}
    before = api_client.get(url("candles"), query).json()
    sim = MarketSimulator(seed=5, start=datetime.now(tz=UTC) - timedelta(minutes=5))
    extra = [t for _ in range(10) for t in sim.step(1)]
    extra = [type(t)(**{**t.__dict__, "sequence_number": 10**9 + i}) for i, t in enumerate(extra)]
    services.market_ticks_ingest(batch=TickBatch.from_ticks(extra), backfill=True)
    assert api_client.get(url("candles"), query).json() == before  # served from Redis
    settings.ANALYTICS = {**settings.ANALYTICS, "API_CACHE_SECONDS": 0}
    fresh = api_client.get(url("candles"), query).json()
    assert (
        sum(c["trade_count"] for c in fresh["candles"])
        == sum(c["trade_count"] for c in before["candles"]) + 10
    )


def test_api_queries_run_with_server_enforced_limits(clickhouse: ClickHouse) -> None:
    with pytest.raises(ServerException) as info:
        clickhouse.execute("SELECT number FROM numbers(100)", settings=api_settings(10))
    assert info.value.code == 396  # TOO_MANY_ROWS_OR_BYTES
    assert api_settings(10)["max_execution_time"] > 0


# --------------------------------------------------------------------------- traders


def leader(alias: str, tags: list[str], fills: list[dict[str, Any]] | None = None) -> Trader:
    trader = Trader.objects.create(
        alias=alias, src_uid=f"0x{uuid.uuid4().hex}", exchange="hyperliquid", tags=tags
    )
    if fills:
        services.trader_events_ingest(
            events=trader_events_from_fills(fills, trader_id=str(trader.pk))
        )
    return trader


@pytest.fixture
def leaders(clickhouse: ClickHouse, user: Any, other_user: Any) -> dict[str, Trader]:
    fills = recent(load_json("fills_synthetic.json"), days_back=1)
    winner = leader("winner", ["swing", "btc"], fills)
    # The mirror image: every PnL negated.
    loser = leader(
        "loser",
        ["swing"],
        [{**f, "closedPnl": str(-Decimal(f["closedPnl"])), "tid": f["tid"] + 1} for f in fills],
    )
    newbie = leader("newbie", ["scalper"], fills[:20])  # only the newest days
    leader("no-kpis-yet", ["swing"])
    for owner in (user, other_user):
        strategy = CopyStrategy.objects.create(user=owner, name="s", status=StrategyStatus.ACTIVE)
        CopyAllocation.objects.create(strategy=strategy, trader=newbie, weight=Decimal("0.5"))
    services.trader_kpis_refresh(as_of=days_ago(0).date())
    return {"winner": winner, "loser": loser, "newbie": newbie}


def test_leaderboard_selector_ranks_by_each_metric(leaders: dict[str, Trader]) -> None:
    ids = {name: t.pk for name, t in leaders.items()}
    by_pnl = selectors.leaderboard(period="all", metric="pnl")
    assert by_pnl[0]["trader_id"] == ids["winner"]
    assert [e["trader_id"] for e in by_pnl][-1] == ids["loser"]
    assert [e["rank"] for e in by_pnl] == [1, 2, 3]
    assert all(isinstance(e["trader_id"], uuid.UUID) for e in by_pnl)
    drawdown = selectors.leaderboard(period="all", metric="drawdown")
    assert [e["max_drawdown"] for e in drawdown] == sorted(e["max_drawdown"] for e in drawdown)
    followers = selectors.leaderboard(period="all", metric="followers")
    assert followers[0]["trader_id"] == ids["newbie"]
    assert followers[0]["followers"] == 2
    assert {e["trader_id"] for e in selectors.leaderboard(period="all", tag="scalper")} == {
        ids["newbie"]
    }
    assert {e["trader_id"] for e in selectors.leaderboard(period="all", min_days=30)} == {
        ids["winner"], ids["loser"],
    }  # fmt: skip
    assert len(selectors.leaderboard(period="all", metric="sharpe", limit=1)) == 1


def test_leaderboard_endpoint(leaders: dict[str, Trader], api_client: APIClient) -> None:
    response = api_client.get(
        url("leaderboard"), {"period": "30d", "metric": "roi", "tag": "swing"}
    )
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["alias"] for r in results] == ["winner", "loser"]
    assert isinstance(results[0]["pnl"], str)
    assert results[0]["rank"] == 1
    assert problem_fields(api_client.get(url("leaderboard"), {"period": "2d"})) == {"period"}
    assert problem_fields(api_client.get(url("leaderboard"), {"metric": "luck"})) == {"metric"}


def test_trader_kpis_and_equity_endpoints(
    leaders: dict[str, Trader], api_client: APIClient
) -> None:
    trader = leaders["winner"]
    kpis = api_client.get(url("trader-kpis", trader_id=trader.pk))
    assert kpis.status_code == 200, kpis.content
    assert set(kpis.json()["periods"]) == {"1d", "7d", "30d", "all"}
    equity = api_client.get(
        url("trader-equity", trader_id=trader.pk), {"start": str(days_ago(60).date())}
    )
    assert equity.status_code == 200
    points = equity.json()["points"]
    assert points
    assert Decimal(points[-1]["equity_end"]) == Decimal(points[-1]["equity_start"]) + Decimal(
        points[-1]["net_pnl"]
    )
    assert api_client.get(url("trader-kpis", trader_id=uuid.uuid4())).status_code == 404
    assert "start" in problem_fields(
        api_client.get(
            url("trader-equity", trader_id=trader.pk), {"start": "2026-02-01", "end": "2026-01-01"}
        )
    )


# --------------------------------------------------------------------------- copy performance


def copy_event(user: Any, strategy_id: uuid.UUID, **extra: Any) -> CopyTradeEventRow:
    values: dict[str, Any] = {
        "strategy_id": str(strategy_id),
        "user_id": str(user.pk),
        "source_trader_id": str(uuid.uuid4()),
        "event_type": "order_filled",
        "symbol": "BTC",
        "timestamp": datetime.now(tz=UTC) - timedelta(hours=1),
        "latency_ms": 100,
        "slippage_bps": 4,
        "quantity": Decimal("0.1"),
        "price": Decimal("90000"),
        "realized_pnl": Decimal("5"),
        "fee": Decimal("0.5"),
        **extra,
    }
    return CopyTradeEventRow(**values)


def test_copy_performance_is_the_callers_own(
    clickhouse: ClickHouse,
    user: Any,
    other_user: Any,
    user_client: APIClient,
    api_client: APIClient,
    api_key_client: Any,
) -> None:
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    services.copy_trade_events_ingest(
        events=[
            copy_event(user, mine, latency_ms=100),
            copy_event(user, mine, latency_ms=300, event_type="order_failed", status="failed"),
            copy_event(other_user, theirs),
        ]
    )
    response = user_client.get(url("copy-performance"))
    assert response.status_code == 200, response.content
    [row] = response.json()["strategies"]
    assert row["strategy_id"] == str(mine)
    assert (row["events"], row["fills"], row["failures"]) == (2, 1, 1)
    assert row["success_rate"] == 0.5
    assert row["avg_latency_ms"] == 200
    assert Decimal(row["realized_pnl"]) == Decimal(10)
    assert Decimal(row["notional"]) == Decimal(9000)
    # Another user's strategy id shows nothing of it.
    assert user_client.get(url("copy-performance"), {"strategy": str(theirs)}).json() == {
        "strategies": []
    }
    assert api_client.get(url("copy-performance")).status_code == 401
    assert api_key_client("trade").get(url("copy-performance")).status_code == 403
    assert api_key_client("read").get(url("copy-performance")).status_code == 200


# --------------------------------------------------------------------------- injection

PAYLOADS = [
    "BTC'; DROP TABLE market_ticks_raw; --",
    "1 OR 1=1",
    "{x:String}",
    "' OR ''='",
    'BTC") UNION SELECT name FROM system.tables --',
    "ünïcödé 😀",
    "A" * 5000,
    "%00\x00",
    "1; SELECT 1",
    "NULL",
    "\\'",
    "2026-01-01T00:00:00Z' OR '1'='1",
]

ENDPOINTS: list[tuple[str, dict[str, str], bool]] = [
    (
        "candles",
        {"symbol": "BTC", "exchange": "paper", "interval": "1h", "source": "trades", "limit": "10"},
        False,
    ),
    ("funding", {"symbol": "BTC", "exchange": "paper", "limit": "10"}, False),
    ("heatmap", {"symbol": "BTC", "exchange": "paper", "limit": "10"}, False),
    (
        "leaderboard",
        {"period": "30d", "metric": "pnl", "tag": "swing", "min_days": "0", "limit": "5"},
        False,
    ),
    ("copy-performance", {"strategy": str(uuid.UUID(int=1))}, True),
]
TIME_PARAMS = ("start", "end")


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for name, base, _private in ENDPOINTS:
        params = list(base) + (list(TIME_PARAMS) if name != "leaderboard" else [])
        for param in params:
            for payload in PAYLOADS:
                cases.append((name, param, payload))
    return cases


@pytest.fixture
def tables_before(clickhouse_db: str) -> list[tuple[Any, ...]]:
    from analytics.clickhouse.client import get_client

    return get_client().execute(
        "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    )


@pytest.mark.parametrize(("endpoint", "param", "payload"), _cases())
def test_injection_strings_are_refused_or_match_nothing(
    symbols: Any,
    tables_before: list[tuple[Any, ...]],
    user_client: APIClient,
    endpoint: str,
    param: str,
    payload: str,
    no_throttle: Any,
) -> None:
    base = next(b for n, b, _private in ENDPOINTS if n == endpoint)
    response = user_client.get(url(endpoint), {**base, param: payload})
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert param in problem_fields(response)
    else:
        body = response.json()
        assert not any(
            body.get(key) for key in ("candles", "rates", "bins", "results", "strategies")
        )
    from analytics.clickhouse.client import get_client

    after = get_client().execute(
        "SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name"
    )
    assert after == tables_before


@pytest.mark.parametrize("payload", PAYLOADS[:6])
def test_injection_in_path_parameters_is_a_404(api_client: APIClient, payload: str) -> None:
    from urllib.parse import quote

    for suffix in ("kpis", "equity"):
        response = api_client.get(f"/api/v1/analytics/traders/{quote(payload, safe='')}/{suffix}/")
        assert response.status_code == 404


@pytest.fixture
def no_throttle(settings: Any) -> None:
    rates = dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}


# --------------------------------------------------------------------------- portal


def test_markets_page_is_public_and_shows_candles(market: dict[str, Any], client: Any) -> None:
    page = client.get("/analytics/markets/", {"symbol": "BTC", "interval": "5m"})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("<tr>") == 24 + 1  # header + two hours of 5-minute candles
    assert 'aria-current="page">Markets' in html
    unknown = client.get("/analytics/markets/", {"symbol": "NOPE", "interval": "1h"})
    assert "Unknown symbol" in unknown.content.decode()
    bad = client.get("/analytics/markets/", {"symbol": "BTC'; DROP TABLE x; --", "interval": "1h"})
    assert bad.status_code == 200
    assert "No candles" in bad.content.decode()


# ------------------------------------------------------------------ bad input, every endpoint

RANGED: list[tuple[str, dict[str, str], bool]] = [
    ("candles", {"symbol": "BTC", "exchange": "paper", "interval": "1h"}, False),
    ("funding", {"symbol": "BTC", "exchange": "paper"}, False),
    ("heatmap", {"symbol": "BTC", "exchange": "paper"}, False),
    ("copy-performance", {}, False),
    ("trader-equity", {}, True),  # dates, not instants
]


@pytest.mark.parametrize(("endpoint", "base", "dates"), RANGED)
def test_every_ranged_endpoint_names_a_reversed_or_oversized_range(
    clickhouse: ClickHouse,
    symbols: Any,
    user_client: APIClient,
    endpoint: str,
    base: dict[str, str],
    dates: bool,
) -> None:
    kwargs = {}
    if endpoint == "trader-equity":
        kwargs["trader_id"] = leader("ranged", ["swing"]).pk
    day = (lambda d: d) if dates else (lambda d: f"{d}T00:00:00Z")
    target = url(endpoint, **kwargs)
    ok = user_client.get(target, {**base, "start": day("2026-01-01"), "end": day("2026-01-02")})
    assert ok.status_code == 200, ok.content  # the same query with a sane range is served
    reversed_range = {"start": day("2026-01-02"), "end": day("2026-01-01")}
    assert "start" in problem_fields(user_client.get(target, {**base, **reversed_range}))
    # Thirty years is past every endpoint's bound (the longest, the equity curve, is ten).
    oversized = {"start": day("1996-01-01"), "end": day("2026-01-01")}
    assert "end" in problem_fields(user_client.get(target, {**base, **oversized}))


@pytest.mark.parametrize("endpoint", ["candles", "funding", "heatmap"])
def test_every_market_endpoint_names_an_unknown_symbol(
    clickhouse: ClickHouse, symbols: Any, api_client: APIClient, endpoint: str
) -> None:
    base = {"exchange": "paper", **({"interval": "1h"} if endpoint == "candles" else {})}
    assert api_client.get(url(endpoint), {**base, "symbol": "BTC"}).status_code == 200
    # Well-formed but not listed on that venue, and listed but on another venue.
    assert problem_fields(api_client.get(url(endpoint), {**base, "symbol": "NOTACOIN"})) == {
        "symbol"
    }
    other_venue = {**base, "symbol": "BTC", "exchange": "binance"}
    assert problem_fields(api_client.get(url(endpoint), other_venue)) == {"symbol"}
