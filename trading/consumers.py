"""Trading's live streams: ``market.<symbol>`` and the orders/positions parts of ``account``."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async

from config import streams


def _symbol_exists(name: str) -> bool:
    from trading.selectors import symbol_list

    return symbol_list().filter(name=name).exists()


async def _authorize_market(user: Any, stream: str) -> bool:
    return await database_sync_to_async(_symbol_exists)(stream.split(".", 1)[1])


def _market_snapshot_sync(symbol: str) -> dict[str, Any]:
    from trading import live
    from trading.selectors import latest_book, latest_price, symbol_list

    venues = list(symbol_list().filter(name=symbol).values_list("venue", flat=True))
    venue = venues[0] if venues else ""
    price = latest_price(exchange=venue, symbol=symbol)
    book = latest_book(exchange=venue, symbol=symbol)
    return {
        "symbol": symbol,
        "venue": venue,
        "ticker": None
        if price is None
        else {
            "price": price.price,
            "bid": price.bid,
            "ask": price.ask,
            "mark": price.mark,
            "time": int(price.timestamp.timestamp() * 1000),
        },
        "book": None if book is None else {"bids": book.bids, "asks": book.asks},
        "candle": live.current_candle(venue, symbol),
    }


async def _market_snapshot(user: Any, stream: str) -> Any:
    return await database_sync_to_async(_market_snapshot_sync)(stream.split(".", 1)[1])


def _account_orders(user: Any) -> list[dict[str, Any]]:
    from trading.api.serializers import OrderSerializer
    from trading.models import OrderStatus
    from trading.selectors import order_list

    open_orders = (
        order_list(user=user)
        .filter(status__in=[OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.PARTIAL])
        .select_related("symbol")
        .order_by("-created_at")[:200]
    )
    return [dict(OrderSerializer(order).data) for order in open_orders]


def _account_positions(user: Any) -> list[dict[str, Any]]:
    from trading.api.serializers import PositionSerializer
    from trading.selectors import position_list

    positions = position_list(user=user, is_open=True).select_related("symbol")
    return [dict(PositionSerializer(position).data) for position in positions]


streams.register(
    streams.StreamSpec(
        prefix="market",
        authorize=_authorize_market,
        snapshot=_market_snapshot,
        coalesce_seconds=0.25,
    )
)
streams.register_account_part("orders", _account_orders)
streams.register_account_part("positions", _account_positions)
