"""Fixtures for the trading tests: an isolated Redis namespace per test, the paper venue and its
symbols, published prices, and a trading-ready customer."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from trading.exchanges.paper import PaperAdapter, PaperVenue
from trading.marketdata import Tick, quote_tick, ticks_publish
from trading.stores import market_redis, paper_redis

DATA = Path(__file__).resolve().parent / "data"


def _wipe(prefix: str) -> None:
    for client in (market_redis(), paper_redis()):
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


@pytest.fixture(autouse=True)
def trading_namespace(settings: Any) -> Iterator[str]:
    """Every test gets its own Redis key prefix (market data, paper venue), wiped afterwards,
    and a fixed configuration it may override."""
    prefix = f"test-trading-{uuid.uuid4().hex[:12]}:"
    settings.TANDEM = {
        **settings.TANDEM,
        "REDIS_KEY_PREFIX": prefix,
        "PAPER_LATENCY_MS": 0,
        "MARKET_DATA_VENUE": "paper",
        "FILL_LISTENERS": [],
        "TICK_LISTENERS": [],
    }
    yield prefix
    _wipe(prefix)


@pytest.fixture
def paper_venue(trading_namespace: str) -> PaperVenue:
    return PaperVenue()


@pytest.fixture
def paper_symbols(db: Any) -> dict[str, Any]:
    from trading.models import Symbol
    from trading.services import symbols_sync

    symbols_sync(venue="paper")
    return {s.name: s for s in Symbol.objects.filter(venue="paper")}


def make_tick(
    symbol: str,
    price: Decimal | str,
    *,
    spread_bps: Decimal = Decimal(2),
    size: Decimal | str = "10",
    exchange: str = "paper",
    at: datetime | None = None,
) -> Tick:
    return quote_tick(
        exchange, symbol, Decimal(str(price)), spread_bps=spread_bps, size=Decimal(str(size)), at=at
    )


@pytest.fixture
def publish() -> Callable[..., Tick]:
    """publish("BTC", "50000", size="2"): make that the latest market (price and book top)."""

    def _publish(symbol: str, price: Decimal | str, **kwargs: Any) -> Tick:
        tick = make_tick(symbol, price, **kwargs)
        ticks_publish([tick])
        return tick

    return _publish


@pytest.fixture
def market(publish: Callable[..., Tick]) -> dict[str, Tick]:
    """A deep, quiet market for every demo symbol."""
    prices = {
        "BTC": ("50000", "5"),
        "ETH": ("2500", "100"),
        "SOL": ("100", "2000"),
        "ARB": ("0.8", "200000"),
        "DOGE": ("0.2", "1000000"),
        "kPEPE": ("0.01", "50000000"),
    }
    return {name: publish(name, px, size=sz) for name, (px, sz) in prices.items()}


@pytest.fixture
def trader(db: Any) -> Any:
    """A customer with KYC and an active paper agent wallet."""
    from accounts.tests.factories import AgentWalletFactory, UserFactory

    customer = UserFactory.create()
    AgentWalletFactory.create(user=customer, exchange="paper")
    return customer


@pytest.fixture
def wallet(trader: Any) -> Any:
    return trader.agent_wallets.get()


@pytest.fixture
def paper_account(wallet: Any, paper_venue: PaperVenue) -> PaperAdapter:
    """The adapter a test can use to look at (or trade on) the trader's paper account."""
    return PaperAdapter(account=wallet.user.wallet_addr, venue=paper_venue)
