"""The paper venue and its adapter. The venue answers in Hyperliquid's shapes, so the adapter
parses it with the same code as the real Hyperliquid adapter (trading.exchanges.hlformat)."""

from __future__ import annotations

from decimal import Decimal

from trading.exchanges import hlformat
from trading.exchanges.base import (
    AccountState,
    OrderRequest,
    PlaceResult,
    SymbolInfo,
    VenueAdapter,
    VenueFill,
    VenueOrder,
    VenueRejected,
)
from trading.exchanges.paper.venue import UNIVERSE, PaperMarket, PaperVenue
from trading.rounding import to_wire

__all__ = ["UNIVERSE", "PaperAdapter", "PaperMarket", "PaperVenue"]


class PaperAdapter(VenueAdapter):
    venue = "paper"

    def __init__(self, *, account: str | None = None, venue: PaperVenue | None = None) -> None:
        self.account = account or ""
        self.engine = venue or PaperVenue()

    def _user(self) -> str:
        if not self.account:
            raise VenueRejected("this adapter has no account", code="unknown_account")
        return self.account

    def place_order(self, request: OrderRequest) -> PlaceResult:
        response = self.engine.order(
            user=self._user(),
            coin=request.symbol,
            is_buy=request.side == "buy",
            sz=to_wire(request.size),
            limit_px=to_wire(request.limit_price),
            tif=request.time_in_force,
            reduce_only=request.reduce_only,
            cloid=request.cloid,
            leverage=request.leverage,
        )
        order = hlformat.parse_order_response(
            response,
            symbol=request.symbol,
            side=request.side,
            size=request.size,
            cloid=request.cloid,
            time_in_force=request.time_in_force,
        )
        fills = [hlformat.parse_fill(raw) for raw in response.get("fills", [])]
        return PlaceResult(order=order, fills=fills)

    def cancel_order(
        self, *, symbol: str, cloid: str | None = None, venue_order_id: str | None = None
    ) -> None:
        response = self.engine.cancel(
            user=self._user(),
            coin=symbol,
            cloid=cloid,
            oid=int(venue_order_id) if venue_order_id else None,
        )
        statuses = response["response"]["data"]["statuses"]
        if statuses[0] != "success":
            hlformat.raise_for_error(str(statuses[0].get("error", statuses[0])))

    def order_by_cloid(self, *, symbol: str, cloid: str) -> VenueOrder | None:
        return hlformat.parse_order_status(self.engine.order_status(user=self._user(), cloid=cloid))

    def open_orders(self) -> list[VenueOrder]:
        return [
            hlformat.parse_open_order(raw) for raw in self.engine.open_orders(user=self._user())
        ]

    def account_state(self) -> AccountState:
        return hlformat.parse_clearinghouse_state(
            self.engine.clearinghouse_state(user=self._user())
        )

    def fills_since(self, *, since_ms: int) -> list[VenueFill]:
        return hlformat.parse_fills(
            self.engine.user_fills_by_time(user=self._user(), start_ms=since_ms)
        )

    def symbols(self) -> list[SymbolInfo]:
        return hlformat.parse_meta(self.engine.meta())

    def mark_prices(self) -> dict[str, Decimal]:
        return hlformat.parse_mids(self.engine.all_mids())
