"""Fixtures for the copy-trading tests: an isolated Redis namespace per test, the paper venue and
its symbols, a leader, and followers with running strategies -- built through the services."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent / "data"
_tids = itertools.count(1_000)


def _wipe(prefix: str) -> None:
    from analytics.buffer import buffer_redis
    from trading.stores import market_redis, paper_redis

    for client in (market_redis(), paper_redis(), buffer_redis()):
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


@pytest.fixture(autouse=True)
def copy_namespace(settings: Any) -> Iterator[str]:
    """Own Redis keys per test; replays are never "stale" unless a test says so; no listeners
    except the ones a test turns on."""
    prefix = f"test-copy-{uuid.uuid4().hex[:12]}:"
    settings.TANDEM = {
        **settings.TANDEM,
        "REDIS_KEY_PREFIX": prefix,
        "PAPER_LATENCY_MS": 0,
        "MARKET_DATA_VENUE": "paper",
        "FILL_LISTENERS": [],
        "TICK_LISTENERS": [],
        "COPY_MAX_SIGNAL_AGE_SECONDS": None,
        "PAPER_STARTING_BALANCE": "1000000",
    }
    yield prefix
    _wipe(prefix)


@pytest.fixture
def paper_symbols(db: Any) -> dict[str, Any]:
    from trading.models import Symbol
    from trading.services import symbols_sync

    symbols_sync(venue="paper")
    return {s.name: s for s in Symbol.objects.filter(venue="paper")}


@pytest.fixture
def publish() -> Callable[..., Any]:
    """publish("BTC", "50000"): the latest market for a symbol (price and a deep book top)."""
    from trading.marketdata import quote_tick, ticks_publish

    def _publish(symbol: str, price: Any, *, venue: str = "paper", size: str = "1000000") -> Any:
        tick = quote_tick(
            venue, symbol, Decimal(str(price)), spread_bps=Decimal(2), size=Decimal(size)
        )
        ticks_publish([tick])
        return tick

    return _publish


@pytest.fixture
def market(publish: Callable[..., Any]) -> None:
    for name, price in {"BTC": "50000", "ETH": "2500", "SOL": "100", "ARB": "0.8",
                        "DOGE": "0.2", "kPEPE": "0.01"}.items():  # fmt: skip
        publish(name, price)


@pytest.fixture
def leader(db: Any) -> Any:
    from copytrade.tests.factories import TraderFactory

    return TraderFactory.create(alias="Leader", account_value=Decimal(100_000))


@pytest.fixture
def follower(db: Any, paper_symbols: dict[str, Any]) -> Callable[..., Any]:
    """follower(leader, equity=..., **settings): a customer with a paper agent wallet and a
    running single-trader strategy following ``leader`` (created and started by the services),
    its equity cached as ``equity``."""
    from django.utils import timezone

    from accounts.tests.factories import AgentWalletFactory, UserFactory
    from copytrade.models import FollowerEquity
    from copytrade.services import strategy_activate, strategy_create

    def make(
        trader: Any,
        *,
        equity: Decimal | str = "100000",
        weight: Decimal | str = "1",
        activate: bool = True,
        started_at: Any = None,
        others: list[tuple[Any, str]] = (),  # type: ignore[assignment]
        **settings: Any,
    ) -> Any:
        user = UserFactory.create(kyc_level=2)
        wallet = AgentWalletFactory.create(user=user, exchange="paper", max_leverage=20,
                                           min_order_usd=Decimal(1))  # fmt: skip
        FollowerEquity.objects.create(
            agent_wallet=wallet, account_value=Decimal(str(equity)), fetched_at=timezone.now()
        )
        settings.setdefault("follow_new_entries_only", False)
        settings.setdefault("min_order_usd", Decimal(1))
        settings.setdefault("max_leverage", Decimal(10))
        allocations = [{"trader": trader.pk, "weight": weight}]
        allocations += [{"trader": t.pk, "weight": w} for t, w in others]
        strategy = strategy_create(
            user=user,
            name="Copy",
            allocations=allocations,
            agent_wallet_id=wallet.pk,
            **settings,
        ).strategy
        if activate:
            strategy = strategy_activate(strategy=strategy, started_at=started_at)
        return strategy

    return make


def fill(
    coin: str,
    side: str,
    size: Any,
    price: Any,
    *,
    start: Any,
    time_ms: int,
    tid: int | None = None,
    oid: int = 1,
    hash_: str = "0xabc",
    **extra: Any,
) -> dict[str, Any]:
    """A userFills record as the venue sends it today (with ``tid``)."""
    record = {
        "coin": coin,
        "px": str(price),
        "sz": str(size),
        "side": "B" if side == "buy" else "A",
        "time": time_ms,
        "startPosition": str(start),
        "dir": "",
        "closedPnl": "0.0",
        "hash": hash_,
        "oid": oid,
        "crossed": True,
        "fee": "0.0",
        "tid": tid if tid is not None else next(_tids),
        "feeToken": "USDC",
    }
    record.update(extra)
    return record
