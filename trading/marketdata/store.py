"""Latest prices and order-book tops in Redis (seed 002 §3.2), written by any tick source.

``price:{exchange}:{symbol}`` is a hash ``{price, timestamp, volume, bid, ask, mark}`` and
``orderbook:{exchange}:{symbol}`` a JSON string ``{bids: [[price, amount]], asks: [...],
timestamp}``; timestamps are epoch milliseconds, numbers decimal strings. Everything under the
configured key prefix (trading.stores).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from django.utils.module_loading import import_string

from trading.marketdata.ticks import Tick
from trading.rounding import to_wire
from trading.stores import key_prefix, market_redis, setting


@dataclass(frozen=True)
class PriceSnapshot:
    exchange: str
    symbol: str
    price: Decimal
    timestamp: datetime
    volume: Decimal
    bid: Decimal | None = None
    ask: Decimal | None = None
    mark: Decimal | None = None


@dataclass(frozen=True)
class BookTop:
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    timestamp: datetime

    @property
    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        return self.asks[0] if self.asks else None


def price_key(exchange: str, symbol: str) -> str:
    return f"{key_prefix()}price:{exchange}:{symbol}"


def orderbook_key(exchange: str, symbol: str) -> str:
    return f"{key_prefix()}orderbook:{exchange}:{symbol}"


def _from_ms(value: str | int) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


# Callables that receive every published batch of ticks (settings.TANDEM["TICK_LISTENERS"],
# dotted paths), e.g. the analytics ingestion that appends them to ClickHouse.
_listeners: list[Callable[[Sequence[Tick]], None]] = []


def register_tick_listener(listener: Callable[[Sequence[Tick]], None]) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def unregister_tick_listener(listener: Callable[[Sequence[Tick]], None]) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def _all_listeners() -> list[Callable[[Sequence[Tick]], None]]:
    configured = [import_string(path) for path in (setting("TICK_LISTENERS") or [])]
    return [*configured, *_listeners]


def ticks_publish(ticks: Iterable[Tick]) -> list[Tick]:
    """Store each tick as the latest price and book top of its market, then tell listeners."""
    batch = list(ticks)
    if not batch:
        return batch
    pipe = market_redis().pipeline(transaction=False)
    for tick in batch:
        pipe.hset(
            price_key(tick.exchange, tick.symbol),
            mapping={
                "price": to_wire(tick.price),
                "timestamp": tick.time_ms,
                "volume": to_wire(tick.volume),
                "bid": to_wire(tick.bid_price),
                "ask": to_wire(tick.ask_price),
                "mark": to_wire(tick.mark_price),
            },
        )
        pipe.set(
            orderbook_key(tick.exchange, tick.symbol),
            json.dumps(
                {
                    "bids": [[to_wire(tick.bid_price), to_wire(tick.bid_volume)]],
                    "asks": [[to_wire(tick.ask_price), to_wire(tick.ask_volume)]],
                    "timestamp": tick.time_ms,
                }
            ),
        )
    pipe.execute()
    for listener in _all_listeners():
        listener(batch)
    return batch


def _snapshot(exchange: str, symbol: str, raw: dict[str, str]) -> PriceSnapshot | None:
    if not raw or "price" not in raw:
        return None
    return PriceSnapshot(
        exchange=exchange,
        symbol=symbol,
        price=Decimal(raw["price"]),
        timestamp=_from_ms(raw.get("timestamp", 0)),
        volume=Decimal(raw.get("volume", "0")),
        bid=Decimal(raw["bid"]) if raw.get("bid") else None,
        ask=Decimal(raw["ask"]) if raw.get("ask") else None,
        mark=Decimal(raw["mark"]) if raw.get("mark") else None,
    )


def price_get(exchange: str, symbol: str) -> PriceSnapshot | None:
    raw = market_redis().hgetall(price_key(exchange, symbol))
    return _snapshot(exchange, symbol, raw)


def prices_get(exchange: str, symbols: Iterable[str]) -> dict[str, PriceSnapshot]:
    names = list(dict.fromkeys(symbols))
    pipe = market_redis().pipeline(transaction=False)
    for name in names:
        pipe.hgetall(price_key(exchange, name))
    result = {}
    for name, raw in zip(names, pipe.execute(), strict=True):
        snapshot = _snapshot(exchange, name, raw)
        if snapshot is not None:
            result[name] = snapshot
    return result


def book_get(exchange: str, symbol: str) -> BookTop | None:
    return _book(market_redis().get(orderbook_key(exchange, symbol)))


def _book(raw: str | None) -> BookTop | None:
    if not raw:
        return None
    data = json.loads(str(raw))
    return BookTop(
        bids=[(Decimal(p), Decimal(s)) for p, s in data.get("bids", [])],
        asks=[(Decimal(p), Decimal(s)) for p, s in data.get("asks", [])],
        timestamp=_from_ms(data.get("timestamp", 0)),
    )


def market_reads(
    exchange: str, book_symbols: Sequence[str], price_symbols: Sequence[str]
) -> tuple[dict[str, BookTop], dict[str, PriceSnapshot]]:
    """Book tops and latest prices of several markets in one round trip."""
    pipe = market_redis().pipeline(transaction=False)
    for name in book_symbols:
        pipe.get(orderbook_key(exchange, name))
    for name in price_symbols:
        pipe.hgetall(price_key(exchange, name))
    results = pipe.execute()
    books = {}
    for name, raw in zip(book_symbols, results[: len(book_symbols)], strict=True):
        book = _book(raw)
        if book is not None:
            books[name] = book
    prices = {}
    for name, raw in zip(price_symbols, results[len(book_symbols) :], strict=True):
        snapshot = _snapshot(exchange, name, raw)
        if snapshot is not None:
            prices[name] = snapshot
    return books, prices
