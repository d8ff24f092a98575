"""A deterministic venue for replays: an in-memory Hyperliquid-like account per address that
fills an order completely at the latest published mid price when its limit allows it (IOC:
refused otherwise), honours reduce-only, and reports fills in the adapter's types with the
account's start position -- so a follower's positions in a replay come from real fills through
trading's execution and fill services, for coins the paper venue does not list."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any

from trading.exchanges import (
    AccountState,
    OrderRequest,
    PlaceResult,
    SymbolInfo,
    VenueAdapter,
    VenueFill,
    VenueOrder,
    VenueOrderStatus,
    VenuePosition,
    VenueRejected,
)
from trading.marketdata import price_get

ZERO = Decimal(0)


class ReplayBook:
    """The venue's state, shared by every adapter a test's factory builds."""

    def __init__(self, venue: str = "hyperliquid") -> None:
        self.venue = venue
        self.positions: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        self.orders: dict[str, VenueOrder] = {}
        self.placements: dict[str, int] = defaultdict(int)
        self.ids = itertools.count(1)

    def factory(self, agent_wallet: Any) -> ReplayAdapter:
        account = agent_wallet.user.wallet_addr if agent_wallet else ""
        return ReplayAdapter(self, account)


class ReplayAdapter(VenueAdapter):
    venue = "hyperliquid"

    def __init__(self, book: ReplayBook, account: str) -> None:
        self.book = book
        self.account = account

    def place_order(self, request: OrderRequest) -> PlaceResult:
        book = self.book
        book.placements[request.cloid] += 1
        snapshot = price_get(book.venue, request.symbol)
        if snapshot is None:
            raise VenueRejected("No market price.", code="no_market_price")
        price = snapshot.price
        buy = request.side == "buy"
        if (buy and price > request.limit_price) or (not buy and price < request.limit_price):
            raise VenueRejected(
                "Order could not immediately match against any resting orders.",
                code="ioc_no_match",
            )
        held = book.positions[self.account][request.symbol]
        size = request.size
        if request.reduce_only:
            if held == 0 or (held > 0) == buy:
                raise VenueRejected(
                    "Reduce only order would increase position.",
                    code="reduce_only_would_increase",
                )
            size = min(size, abs(held))
        oid = str(next(book.ids))
        fill = VenueFill(
            venue_fill_id=f"replay-{oid}",
            symbol=request.symbol,
            side=request.side,
            price=price,
            size=size,
            time_ms=int(time.time() * 1000),
            start_position=held,
            venue_order_id=oid,
            cloid=request.cloid,
            is_taker=True,
        )
        book.positions[self.account][request.symbol] = held + (size if buy else -size)
        order = VenueOrder(
            cloid=request.cloid,
            venue_order_id=oid,
            symbol=request.symbol,
            side=request.side,
            status=VenueOrderStatus.FILLED if size == request.size else VenueOrderStatus.CANCELLED,
            size=request.size,
            filled_size=size,
            average_price=price,
        )
        book.orders[request.cloid] = order
        return PlaceResult(order=order, fills=[fill])

    def cancel_order(
        self, *, symbol: str, cloid: str | None = None, venue_order_id: str | None = None
    ) -> None:
        raise VenueRejected("Order was never placed, already canceled, or filled.")

    def order_by_cloid(self, *, symbol: str, cloid: str) -> VenueOrder | None:
        return self.book.orders.get(cloid)

    def open_orders(self) -> list[VenueOrder]:
        return []

    def account_state(self) -> AccountState:
        positions = [
            VenuePosition(symbol=coin, quantity=qty, entry_price=None)
            for coin, qty in self.book.positions[self.account].items()
            if qty
        ]
        return AccountState(
            account_value=Decimal(10**9), margin_used=ZERO, withdrawable=ZERO, positions=positions
        )

    def fills_since(self, *, since_ms: int) -> list[VenueFill]:
        return []

    def symbols(self) -> list[SymbolInfo]:
        return []

    def mark_prices(self) -> dict[str, Decimal]:
        return {}
