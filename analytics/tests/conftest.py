"""Analytics test fixtures: a Redis namespace per test, the migrated ClickHouse test database
(emptied for each test that asks for ``clickhouse``), symbols, and data builders."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent / "data"


def load_json(name: str) -> Any:
    return json.loads((DATA / name).read_text())


@pytest.fixture(autouse=True)
def analytics_namespace(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """Own Redis keys per test (buffers, quality state, trading's market data), no result
    cache unless a test turns it on, and the tick listener as configured in base settings.
    (Nothing to do when the ClickHouse server/client tests run without Django.)"""
    if not request.config.pluginmanager.hasplugin("django"):
        yield None
        return
    settings = request.getfixturevalue("settings")
    prefix = f"test-analytics-{uuid.uuid4().hex[:12]}:"
    settings.TANDEM = {
        **settings.TANDEM,
        "REDIS_KEY_PREFIX": prefix,
        "TICK_LISTENERS": ["analytics.services.ticks_listener"],
        "FILL_LISTENERS": [],
    }
    settings.ANALYTICS = {**settings.ANALYTICS, "API_CACHE_SECONDS": 0}
    yield prefix
    from analytics.buffer import buffer_redis

    client = buffer_redis()
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    from trading.stores import market_redis

    market = market_redis()
    keys = list(market.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        market.delete(*keys[start : start + 500])


def days_ago(days: int, *, hour: int = 0) -> datetime:
    """Midnight UTC ``days`` days before today, plus ``hour`` hours."""
    today = datetime.now(tz=UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days) + timedelta(hours=hour)


def shift_ms_to_recent(times_ms: list[int], *, days_back: int = 3) -> int:
    """A whole number of days (in ms) that moves recorded times to end ``days_back`` days ago:
    whole days keep every hour/day/4-hour boundary, and recent times survive the TTLs."""
    newest = datetime.fromtimestamp(max(times_ms) / 1000, tz=UTC)
    target = days_ago(days_back)
    return (target.date() - newest.date()).days * 86_400_000


@pytest.fixture
def symbols(db: Any) -> dict[tuple[str, str], Any]:
    """Symbols of the paper venue (the simulator's markets) and a few Hyperliquid ones."""
    from trading.tests.factories import SymbolFactory

    made = {}
    for venue in ("paper", "hyperliquid"):
        for name in ("BTC", "ETH", "SOL", "ARB", "DOGE", "kPEPE", "SUI", "INJ", "DYDX"):
            made[(venue, name)] = SymbolFactory(venue=venue, name=name, max_leverage=20)
    return made


def recent(
    records: list[dict[str, Any]],
    *,
    key: str = "time",
    days_back: int = 3,
    keys: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Recorded records moved forward by whole days so the newest is ``days_back`` days old
    (TTLs drop rows older than their retention at insert time)."""
    fields = (key, *keys)
    shift = shift_ms_to_recent([int(r[key]) for r in records], days_back=days_back)
    return [{**r, **{f: int(r[f]) + shift for f in fields}} for r in records]
