"""Other venues through ccxt (OKX first, seed 004), behind the same adapter interface.

Tandem's cloid (0x + 32 hex) becomes the venue's client order id without the ``0x`` (OKX
``clOrdId`` allows 1-32 letters and digits), so an order can be looked up and cancelled by the
id stored before it was sent. Sizes: Tandem counts base units, OKX swaps count contracts
(``ctVal`` base units each); the adapter converts with the market's ``contractSize``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import ccxt

from trading.exchanges.base import (
    AccountState,
    OrderRequest,
    PlaceResult,
    RateLimited,
    Side,
    SymbolInfo,
    VenueAdapter,
    VenueFill,
    VenueOrder,
    VenueOrderStatus,
    VenuePosition,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)
from trading.pnl import maintenance_margin_rate, q8
from trading.rounding import decimals_of

T = TypeVar("T")

_STATUSES = {
    "open": VenueOrderStatus.OPEN,
    "closed": VenueOrderStatus.FILLED,
    "canceled": VenueOrderStatus.CANCELLED,
    "cancelled": VenueOrderStatus.CANCELLED,
    "rejected": VenueOrderStatus.REJECTED,
    "expired": VenueOrderStatus.CANCELLED,
}


@dataclass(frozen=True)
class VenueCredentials:
    api_key: str
    secret: str
    password: str = ""


def client_order_id(cloid: str) -> str:
    return cloid[2:] if cloid.startswith("0x") else cloid


def _dec(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def _call(operation: Callable[[], T]) -> T:
    try:
        return operation()
    except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:
        raise RateLimited(str(exc)) from exc
    except ccxt.RequestTimeout as exc:
        raise VenueTimeout(str(exc)) from exc
    except (ccxt.ExchangeNotAvailable, ccxt.NetworkError) as exc:
        raise VenueUnavailable(str(exc)) from exc
    except ccxt.InsufficientFunds as exc:
        raise VenueRejected(str(exc), code="insufficient_margin") from exc
    except ccxt.OrderNotFound as exc:  # a subclass of InvalidOrder: first
        raise VenueRejected(str(exc), code="order_not_open") from exc
    except ccxt.InvalidOrder as exc:
        raise VenueRejected(str(exc), code="invalid_order") from exc
    except ccxt.BadSymbol as exc:
        raise VenueRejected(str(exc), code="unknown_symbol") from exc
    except ccxt.AuthenticationError as exc:
        raise VenueRejected(str(exc), code="authentication") from exc
    except ccxt.ExchangeError as exc:
        raise VenueRejected(str(exc), code="rejected") from exc


class CcxtAdapter(VenueAdapter):
    def __init__(
        self,
        *,
        venue: str = "okx",
        exchange_id: str = "okx",
        credentials: VenueCredentials | None = None,
        base_url: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.venue = venue
        klass = getattr(ccxt, exchange_id)
        config: dict[str, Any] = {
            "timeout": int(timeout * 1000),
            "enableRateLimit": False,  # Tandem paces requests itself (Celery retries)
            "options": {
                "fetchMarkets": {"types": ["swap"]},
                "defaultType": "swap",
                "createOrder": "privatePostTradeOrder",
                "brokerId": "",
            },
        }
        if credentials:
            config.update(
                apiKey=credentials.api_key, secret=credentials.secret, password=credentials.password
            )
        self.client = klass(config)
        if base_url:
            self.client.urls["api"] = {"rest": base_url.rstrip("/")}

    # ------------------------------------------------------------------ helpers
    def _markets(self) -> dict[str, Any]:
        return _call(lambda: self.client.load_markets())

    def _contract_size(self, symbol: str) -> Decimal:
        market = self._markets().get(symbol)
        if market is None:
            raise VenueRejected(f"Unknown symbol {symbol}.", code="unknown_symbol")
        return Decimal(str(market.get("contractSize") or 1))

    def _order(
        self, raw: dict[str, Any], *, fallback_symbol: str = "", fallback_side: Side = "buy"
    ) -> VenueOrder:
        symbol = raw.get("symbol") or fallback_symbol
        size_contracts = _dec(raw.get("amount")) or Decimal(0)
        filled_contracts = _dec(raw.get("filled")) or Decimal(0)
        contract = self._contract_size(symbol) if symbol else Decimal(1)
        client_id = raw.get("clientOrderId")
        side: Side = "sell" if raw.get("side") == "sell" else fallback_side
        if raw.get("side") == "buy":
            side = "buy"
        return VenueOrder(
            cloid=f"0x{client_id}" if client_id else None,
            venue_order_id=str(raw.get("id") or ""),
            symbol=symbol,
            side=side,
            status=_STATUSES.get(str(raw.get("status")), VenueOrderStatus.OPEN),
            size=size_contracts * contract,
            filled_size=filled_contracts * contract,
            average_price=_dec(raw.get("average")),
            limit_price=_dec(raw.get("price")),
            reduce_only=bool(raw.get("reduceOnly")),
            time_in_force=raw.get("timeInForce"),
            timestamp_ms=raw.get("timestamp"),
            raw=raw.get("info") or {},
        )

    # ------------------------------------------------------------------ orders
    def place_order(self, request: OrderRequest) -> PlaceResult:
        contract = self._contract_size(request.symbol)
        params: dict[str, Any] = {"clOrdId": client_order_id(request.cloid), "tdMode": "cross"}
        if request.reduce_only:
            params["reduceOnly"] = True
        if request.time_in_force == "Ioc":
            params["timeInForce"] = "IOC"
        elif request.time_in_force == "Alo":
            params["postOnly"] = True
        if request.leverage:
            _call(
                lambda: self.client.set_leverage(
                    request.leverage, request.symbol, {"mgnMode": "cross"}
                )
            )
        amount = request.size / contract
        price = None if request.is_market else float(request.limit_price)
        raw = _call(
            lambda: self.client.create_order(
                request.symbol,
                "market" if request.is_market else "limit",
                request.side,
                float(amount),
                price,
                params,
            )
        )
        # OKX acknowledges with ids only; the order is live until fills or a cancel say more.
        return PlaceResult(
            order=VenueOrder(
                cloid=request.cloid,
                venue_order_id=str(raw.get("id") or ""),
                symbol=request.symbol,
                side=request.side,
                status=VenueOrderStatus.OPEN,
                size=request.size,
                limit_price=request.limit_price,
                reduce_only=request.reduce_only,
                time_in_force=request.time_in_force,
                raw=raw.get("info") or {},
            )
        )

    def cancel_order(
        self, *, symbol: str, cloid: str | None = None, venue_order_id: str | None = None
    ) -> None:
        params = {"clOrdId": client_order_id(cloid)} if cloid else {}
        _call(lambda: self.client.cancel_order(venue_order_id or "", symbol, params))

    def order_by_cloid(self, *, symbol: str, cloid: str) -> VenueOrder | None:
        try:
            raw = _call(
                lambda: self.client.fetch_order(None, symbol, {"clOrdId": client_order_id(cloid)})
            )
        except VenueRejected as exc:
            if exc.code == "order_not_open":  # OrderNotFound: the venue never got it
                return None
            raise
        return self._order(raw, fallback_symbol=symbol)

    def open_orders(self) -> list[VenueOrder]:
        return [self._order(raw) for raw in _call(lambda: self.client.fetch_open_orders())]

    # ------------------------------------------------------------------ account
    def account_state(self) -> AccountState:
        raw_positions = _call(lambda: self.client.fetch_positions())
        balance = _call(lambda: self.client.fetch_balance())
        positions = []
        for raw in raw_positions:
            contracts = _dec(raw.get("contracts")) or Decimal(0)
            size = contracts * (_dec(raw.get("contractSize")) or Decimal(1))
            if raw.get("side") == "short":
                size = -size
            positions.append(
                VenuePosition(
                    symbol=raw["symbol"],
                    quantity=size,
                    entry_price=_dec(raw.get("entryPrice")),
                    unrealized_pnl=_dec(raw.get("unrealizedPnl")) or Decimal(0),
                    leverage=_dec(raw.get("leverage")),
                    margin_mode=str(raw.get("marginMode") or "cross"),
                    margin_used=_dec(raw.get("initialMargin")) or Decimal(0),
                    liquidation_price=_dec(raw.get("liquidationPrice")),
                    position_value=_dec(raw.get("notional")),
                )
            )
        quote = "USDT"
        total = balance.get("total", {}) or {}
        used = balance.get("used", {}) or {}
        free = balance.get("free", {}) or {}
        return AccountState(
            account_value=_dec(total.get(quote)) or Decimal(0),
            margin_used=_dec(used.get(quote)) or Decimal(0),
            withdrawable=_dec(free.get(quote)) or Decimal(0),
            positions=positions,
        )

    def fills_since(self, *, since_ms: int) -> list[VenueFill]:
        trades = _call(lambda: self.client.fetch_my_trades(None, since_ms))
        fills = []
        for raw in trades:
            contract = self._contract_size(raw["symbol"])
            fee = raw.get("fee") or {}
            client_id = (raw.get("info") or {}).get("clOrdId")
            fills.append(
                VenueFill(
                    venue_fill_id=str(raw["id"]),
                    symbol=raw["symbol"],
                    side="buy" if raw["side"] == "buy" else "sell",
                    price=Decimal(str(raw["price"])),
                    size=Decimal(str(raw["amount"])) * contract,
                    time_ms=int(raw["timestamp"]),
                    fee=_dec(fee.get("cost")) or Decimal(0),
                    fee_token=str(fee.get("currency") or ""),
                    venue_order_id=str(raw.get("order") or ""),
                    cloid=f"0x{client_id}" if client_id else "",
                    is_taker=raw.get("takerOrMaker") == "taker",
                    raw=raw.get("info") or {},
                )
            )
        return sorted(fills, key=lambda fill: fill.time_ms)

    # ------------------------------------------------------------------ public data
    def symbols(self) -> list[SymbolInfo]:
        result = []
        for symbol, market in sorted(self._markets().items()):
            if not market.get("swap") or not market.get("linear"):
                continue
            contract = Decimal(str(market.get("contractSize") or 1))
            lot_contracts = _dec((market.get("precision") or {}).get("amount")) or Decimal(1)
            tick = _dec((market.get("precision") or {}).get("price"))
            min_contracts = _dec(((market.get("limits") or {}).get("amount") or {}).get("min"))
            info = market.get("info") or {}
            max_leverage = int(Decimal(str(info.get("lever") or 1)))
            lot = lot_contracts * contract
            result.append(
                SymbolInfo(
                    name=str(market["base"]),
                    base_currency=str(market["base"]),
                    quote_currency=str(market["quote"]),
                    sz_decimals=decimals_of(lot),
                    lot_size=lot,
                    min_size=(min_contracts or lot_contracts) * contract,
                    min_notional=Decimal(0),
                    max_leverage=max_leverage,
                    maintenance_margin_rate=q8(maintenance_margin_rate(max_leverage)),
                    tick_size=tick,
                    contract_size=contract,
                    venue_symbol=symbol,
                    is_delisted=not market.get("active", True),
                    raw=info,
                )
            )
        return result

    def mark_prices(self) -> dict[str, Decimal]:
        tickers = _call(lambda: self.client.fetch_tickers(None, {"instType": "SWAP"}))
        return {
            symbol: Decimal(str(t["last"]))
            for symbol, t in tickers.items()
            if t.get("last") is not None
        }
