"""Live updates of trading state: orders, fills and positions to their owner's ``account``
stream, prices, books and 1-minute candles to ``market.<symbol>`` (protocol: config.streams).

Everything is published after the database commit, from services, never from views. Payloads
are the REST serializers' shapes, so a mobile client parses one format for both.

Account events go out in batches, one per transaction (:func:`account_events_publish`): one
Redis pipeline assigns every event its sequence number and stores it in the stream's backlog
(config.streams' Lua script, in order), and one hop to the process's channel-layer loop
(config.streams.run_in_send_loop) hands them all to the channel layer -- a round trip each per
transaction rather than per event. Sending stays synchronous (done before the commit hook
returns) because other apps publish to the same ``account`` stream right after (billing's fee
events, from the fill listener) and a consumer drops an event older than one it has already
delivered.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from celery import shared_task
from channels.layers import get_channel_layer
from django.db import transaction

from config import streams
from trading.marketdata.ticks import Tick
from trading.stores import market_redis

logger = logging.getLogger(__name__)

# Above this many orders in one transaction (a copy fan-out), publishing moves to a task so the
# engine's commit → submit path is not held up by thousands of websocket sends.
INLINE_PUBLISH_LIMIT = 20
_pending = threading.local()
_serializers = threading.local()
_recent_fills = threading.local()

AccountEvent = tuple[Any, str, dict[str, Any]]  # (user id, event type, data)


# --------------------------------------------------------------------------- account events


def _serializer(cls: type) -> Any:
    """One serializer instance per class and thread: DRF builds a serializer's fields when it
    is first used, which costs more than representing an object with them."""
    instance = getattr(_serializers, cls.__name__, None)
    if instance is None:
        instance = cls()
        setattr(_serializers, cls.__name__, instance)
    return instance


def order_payload(order: Any) -> dict[str, Any]:
    from trading.api.serializers import OrderSerializer

    return dict(_serializer(OrderSerializer).to_representation(order))


def fill_payload(fill: Any) -> dict[str, Any]:
    from trading.api.serializers import FillSerializer

    return dict(_serializer(FillSerializer).to_representation(fill))


def position_payload(position: Any) -> dict[str, Any]:
    from trading.api.serializers import PositionSerializer

    return dict(_serializer(PositionSerializer).to_representation(position))


def account_events_publish(events: Sequence[AccountEvent]) -> list[int]:
    """Sequence, store and broadcast account events, in the given order: one Redis round trip
    for all of them, one hop to the process's channel-layer loop. The messages are exactly
    ``config.streams.publish_account``'s. Returns their sequence numbers."""
    if not events:
        return []
    now_ms = int(time.time() * 1000)
    pipe = streams._redis().pipeline(transaction=False)
    for user_id, event_type, data in events:
        template = json.dumps(
            {"stream": "account", "type": event_type, "seq": 0, "ts": now_ms, "data": data},
            cls=streams.StreamEncoder,
        )
        seq_key, backlog_key = streams._keys(streams.account_stream(user_id))
        pipe.eval(
            streams._PUBLISH_LUA,
            2,
            seq_key,
            backlog_key,
            template,
            streams.BACKLOG_SIZE,
            streams.BACKLOG_TTL_SECONDS,
        )
    # A broadcast carries the serialised event and the fields routing needs (config.streams).
    broadcasts = [
        (
            streams.group_name(streams.account_stream(user_id)),
            {
                "type": "stream.event",
                "stream": "account",
                "seq": int(seq),
                "kind": event_type,
                "text": text.decode() if isinstance(text, bytes) else text,
            },
        )
        for (user_id, event_type, _), (seq, text) in zip(events, pipe.execute(), strict=True)
    ]
    layer = get_channel_layer()
    if layer is not None:

        async def send_all() -> None:
            for group, message in broadcasts:
                await layer.group_send(group, message)

        streams.run_in_send_loop(send_all())
    return [int(message["seq"]) for _, message in broadcasts]


def _publish_safely(events: Sequence[AccountEvent], what: str) -> None:
    try:
        account_events_publish(events)
    except Exception:  # a live update must never break trading
        logger.exception("publishing %s failed", what)


def orders_publish(order_ids: Sequence[uuid.UUID | str]) -> int:
    """Publish the current state of these orders (read again) to each owner's account stream."""
    from trading.models import Order

    orders = list(Order.objects.filter(pk__in=list(order_ids)).select_related("symbol"))
    account_events_publish([(o.user_id, "order", order_payload(o)) for o in orders])
    return len(orders)


@shared_task(name="trading.live.orders_publish_task", ignore_result=True)
def orders_publish_task(order_ids: list[str]) -> int:
    return orders_publish(order_ids)


class _Batch:
    """What one transaction changed -- orders, and fills with their positions -- published
    once when it commits, as this transaction left it (the instances the services saved: no
    read back), in one batch: orders, then fills, then positions."""

    def __init__(self) -> None:
        self.orders: dict[str, Any] = {}
        self.fills: dict[str, Any] = {}
        self.flushed = False

    def flush(self) -> None:
        self.flushed = True
        events: list[AccountEvent] = []
        try:
            if len(self.orders) > INLINE_PUBLISH_LIMIT:
                orders_publish_task.delay(list(self.orders))
            else:
                events += [(o.user_id, "order", order_payload(o)) for o in self.orders.values()]
            events += _fill_events(list(self.fills.values()))
        except Exception:  # a live update must never break trading
            logger.exception("serialising a transaction's live updates failed")
            return
        if self.fills:
            # The fill listener (below) runs next, after this same commit: these fills are
            # published already.
            _recent_fills.published = set(self.fills)
        _publish_safely(events, f"{len(events)} account updates")


def _current_batch() -> _Batch:
    connection = transaction.get_connection()
    batch: _Batch | None = getattr(_pending, "batch", None)
    # A batch already flushed, or whose flush is no longer registered (committed or rolled
    # back), is done: start anew. (Flushed-but-still-registered happens when commit hooks run
    # while the list of hooks is kept, as in tests capturing them: the submission's changes,
    # made by a hook of the creating transaction, must not join that finished batch.)
    if (
        batch is None
        or batch.flushed
        or not any(entry[1] == batch.flush for entry in connection.run_on_commit)
    ):
        batch = _pending.batch = _Batch()
        transaction.on_commit(batch.flush)
    return batch


def order_changed(order: Any) -> None:
    """Queue one order's state for its owner's stream; flushed once per transaction commit."""
    if not transaction.get_connection().in_atomic_block:
        single = _Batch()
        single.orders[str(order.pk)] = order
        single.flush()
        return
    _current_batch().orders[str(order.pk)] = order


def fills_applied(fills: Sequence[Any]) -> None:
    """New fills (each with its position attached), written in the current transaction by the
    fill service: published with the transaction's orders when it commits."""
    _current_batch().fills.update({str(fill.pk): fill for fill in fills})


def _fill_events(fills: Sequence[Any]) -> list[AccountEvent]:
    events: list[AccountEvent] = [(f.user_id, "fill", fill_payload(f)) for f in fills]
    positions = {f.position_id: f.position for f in fills}
    events += [(p.user_id, "position", position_payload(p)) for p in positions.values()]
    return events


def fills_published(fill_ids: Sequence[uuid.UUID]) -> None:
    """Fill listener (trading.services.hooks): each new fill and its position, to the owner.
    Fills the fill service already published with their transaction are not sent again."""
    from trading.models import Fill

    published: set[str] = getattr(_recent_fills, "published", set())
    missing = [pk for pk in fill_ids if str(pk) not in published]
    _recent_fills.published = set()
    if not missing:
        return
    fills = Fill.objects.filter(pk__in=missing).select_related(
        "symbol", "position", "position__symbol"
    )
    account_events_publish(_fill_events(list(fills)))


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
