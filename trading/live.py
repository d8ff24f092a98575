"""Live updates of trading state: orders, fills and positions to their owner's ``account``
stream, prices, books and 1-minute candles to ``market.<symbol>`` (protocol: config.streams).

Everything is published after the database commit, from services, never from views. Payloads
are the REST serializers' shapes, so a mobile client parses one format for both.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from celery import shared_task
from django.db import transaction

from config import streams
from trading.marketdata.ticks import Tick
from trading.stores import market_redis

logger = logging.getLogger(__name__)

# Above this many orders in one transaction (a copy fan-out), publishing moves to a task so the
# engine's commit → submit path is not held up by thousands of websocket sends.
INLINE_PUBLISH_LIMIT = 20
_pending = threading.local()


def _order_payload(order: Any) -> dict[str, Any]:
    from trading.api.serializers import OrderSerializer

    return dict(OrderSerializer(order).data)


def orders_publish(order_ids: Sequence[uuid.UUID | str]) -> int:
    """Publish the current state of these orders to each owner's account stream."""
    from trading.models import Order

    orders = Order.objects.filter(pk__in=list(order_ids)).select_related("symbol")
    count = 0
    for order in orders:
        streams.publish_account(order.user_id, "order", _order_payload(order))
        count += 1
    return count


@shared_task(name="trading.live.orders_publish_task", ignore_result=True)
def orders_publish_task(order_ids: list[str]) -> int:
    return orders_publish(order_ids)


class _Batch:
    """Order ids changed in one transaction, published once when it commits."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def flush(self) -> None:
        ids = list(dict.fromkeys(self.ids))
        if len(ids) > INLINE_PUBLISH_LIMIT:
            orders_publish_task.delay(ids)
            return
        try:
            orders_publish(ids)
        except Exception:  # a live update must never break trading
            logger.exception("publishing %d order updates failed", len(ids))


def order_changed(order: Any) -> None:
    """Queue one order's state for its owner's stream; flushed once per transaction commit."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        single = _Batch()
        single.ids.append(str(order.pk))
        single.flush()
        return
    batch: _Batch | None = getattr(_pending, "batch", None)
    # A batch whose flush is no longer registered was committed or rolled back: start anew.
    if batch is None or not any(entry[1] == batch.flush for entry in connection.run_on_commit):
        batch = _pending.batch = _Batch()
        transaction.on_commit(batch.flush)
    batch.ids.append(str(order.pk))


def fills_published(fill_ids: Sequence[uuid.UUID]) -> None:
    """Fill listener (trading.services.hooks): each new fill and its position, to the owner."""
    from trading.api.serializers import FillSerializer, PositionSerializer
    from trading.models import Fill, Position

    fills = list(Fill.objects.filter(pk__in=list(fill_ids)).select_related("symbol"))
    position_keys = {(f.user_id, f.agent_wallet_id, f.symbol_id) for f in fills}
    for fill in fills:
        streams.publish_account(fill.user_id, "fill", dict(FillSerializer(fill).data))
    for user_id, wallet_id, symbol_id in position_keys:
        position = (
            Position.objects.filter(user_id=user_id, agent_wallet_id=wallet_id, symbol_id=symbol_id)
            .select_related("symbol")
            .first()
        )
        if position is not None:
            streams.publish_account(user_id, "position", dict(PositionSerializer(position).data))


# --------------------------------------------------------------------------- market streams

# KEYS[1] = candle hash; ARGV = minute start ms, price, volume. Keeps the current minute's candle.
_CANDLE_LUA = """
local minute = redis.call('HGET', KEYS[1], 't')
if minute ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 't', ARGV[1], 'o', ARGV[2], 'h', ARGV[2], 'l', ARGV[2], 'c', ARGV[2],
             'v', ARGV[3], 'n', 1)
else
  local high = redis.call('HGET', KEYS[1], 'h')
  local low = redis.call('HGET', KEYS[1], 'l')
  if tonumber(ARGV[2]) > tonumber(high) then redis.call('HSET', KEYS[1], 'h', ARGV[2]) end
  if tonumber(ARGV[2]) < tonumber(low) then redis.call('HSET', KEYS[1], 'l', ARGV[2]) end
  redis.call('HSET', KEYS[1], 'c', ARGV[2])
  redis.call('HINCRBYFLOAT', KEYS[1], 'v', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'n', 1)
end
redis.call('EXPIRE', KEYS[1], 3600)
return redis.call('HGETALL', KEYS[1])
"""


def candle_key(exchange: str, symbol: str) -> str:
    from trading.marketdata.store import price_key

    return price_key(exchange, symbol).replace("price:", "candle1m:", 1)


def _candle(raw: list[Any]) -> dict[str, Any]:
    pairs = dict(zip(raw[::2], raw[1::2], strict=True))
    text = {
        (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
        for k, v in pairs.items()
    }
    return {
        "t": int(text["t"]),
        "o": text["o"],
        "h": text["h"],
        "l": text["l"],
        "c": text["c"],
        "v": str(Decimal(text["v"]).normalize()),
        "n": int(text["n"]),
    }


def current_candle(exchange: str, symbol: str) -> dict[str, Any] | None:
    raw = market_redis().hgetall(candle_key(exchange, symbol))
    if not raw:
        return None
    flat: list[Any] = []
    for key, value in raw.items():
        flat.extend((key, value))
    return _candle(flat)


def market_stream(symbol: str) -> str:
    return f"market.{symbol}"


def ticks_published(ticks: Sequence[Tick]) -> None:
    """Tick listener: ticker + current 1-minute candle per symbol on ``market.<symbol>``.

    Clients get at most a few of these a second: the consumer coalesces market streams.
    """
    redis = market_redis()
    for tick in ticks:
        minute = tick.time_ms - tick.time_ms % 60_000
        raw = redis.eval(
            _CANDLE_LUA,
            1,
            candle_key(tick.exchange, tick.symbol),
            minute,
            str(tick.price),
            str(tick.volume),
        )
        stream = market_stream(tick.symbol)
        try:
            streams.publish(
                stream,
                "ticker",
                {
                    "symbol": tick.symbol,
                    "venue": tick.exchange,
                    "price": tick.price,
                    "bid": tick.bid_price,
                    "ask": tick.ask_price,
                    "bid_size": tick.bid_volume,
                    "ask_size": tick.ask_volume,
                    "mark": tick.mark_price,
                    "time": tick.time_ms,
                },
            )
            if tick.volume > 0:
                streams.publish(
                    stream,
                    "trade",
                    {"price": tick.price, "size": tick.volume, "time": tick.time_ms},
                )
            streams.publish(
                stream, "candle", {"symbol": tick.symbol, "interval": "1m", **_candle(raw)}
            )
        except ValueError:
            logger.warning("symbol %r cannot be a stream name; not published", tick.symbol)
