"""Hyperliquid through hyperliquid-python-sdk (Info for reads, Exchange for signed actions).

Orders are signed with the user's *agent wallet* key and act for the user's master account
(``account_address``): an agent may trade but never withdraw. Numbers go out as the Decimal
strings Tandem already rounded to the venue's rules -- the SDK's float conversion is bypassed by
building the order wire here and signing it with the SDK's ``sign_l1_action``.

The SDK's constructors are given the symbol table so they make no network calls, and its HTTP
error handling is replaced so every failure arrives as one of the adapter errors of
trading.exchanges.base (a 429 as RateLimited, a 5xx as VenueUnavailable, a timeout as
VenueTimeout, an ``{"error": ...}`` status as VenueRejected with a classified code).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import requests
from eth_account import Account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.constants import MAINNET_API_URL
from hyperliquid.utils.signing import (
    get_timestamp_ms,
    order_type_to_wire,
    order_wires_to_order_action,
    sign_l1_action,
)
from hyperliquid.utils.types import Cloid

from trading.exchanges import hlformat
from trading.exchanges.base import (
    AccountState,
    OrderRequest,
    PlaceResult,
    RateLimited,
    SymbolInfo,
    VenueAdapter,
    VenueError,
    VenueFill,
    VenueOrder,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
)
from trading.rounding import to_wire

T = TypeVar("T")
EMPTY_SPOT_META: Any = {"universe": [], "tokens": []}
FILLS_PAGE_LIMIT = 2000  # userFillsByTime answers at most this many fills a call


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class _ErrorMapping:
    """Replaces the SDK's ``API._handle_exception`` (which raises a KeyError on error bodies
    without ``code``) with the adapter's error classes."""

    def _handle_exception(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        text = response.text[:500]
        if status == 429:
            raise RateLimited(text or "rate limited", retry_after=_retry_after(response.headers))
        if status >= 500:
            raise VenueUnavailable(text or f"HTTP {status}", status_code=status)
        message = text
        try:
            body = json.loads(text)
            if isinstance(body, dict):
                message = str(body.get("msg") or body.get("error") or body.get("response") or text)
        except ValueError:
            pass
        raise VenueRejected(message or f"HTTP {status}", code=f"http_{status}")


class _Info(_ErrorMapping, Info):
    pass


class _Exchange(_ErrorMapping, Exchange):
    pass


def _call(operation: Callable[[], T]) -> T:
    try:
        return operation()
    except VenueError:
        raise
    except requests.Timeout as exc:
        raise VenueTimeout(str(exc) or "timeout") from exc
    except requests.ConnectionError as exc:
        raise VenueUnavailable(f"cannot reach the venue: {exc}") from exc
    except requests.RequestException as exc:
        raise VenueUnavailable(f"request failed: {exc}") from exc


class HyperliquidAdapter(VenueAdapter):
    venue = "hyperliquid"

    def __init__(
        self,
        *,
        base_url: str,
        account_address: str | None = None,
        private_key: str | None = None,
        timeout: float = 10.0,
        assets: dict[str, tuple[int, int]] | None = None,
        is_mainnet: bool | None = None,
    ) -> None:
        """``assets`` maps a coin to (asset index, szDecimals), normally from the Symbol table;
        without it the adapter can read but not place or cancel."""
        self.base_url = base_url.rstrip("/")
        self.account_address = account_address
        # Signatures differ between mainnet and testnet; by default the URL tells which.
        self.is_mainnet = self.base_url == MAINNET_API_URL if is_mainnet is None else is_mainnet
        self.info = _Info(
            self.base_url,
            skip_ws=True,
            meta={"universe": []},
            spot_meta=EMPTY_SPOT_META,
            timeout=timeout,
        )
        for coin, (asset, sz_decimals) in (assets or {}).items():
            self.info.coin_to_asset[coin] = asset
            self.info.name_to_coin[coin] = coin
            self.info.asset_to_sz_decimals[asset] = sz_decimals
        self.exchange: _Exchange | None = None
        if private_key:
            self.exchange = _Exchange(
                Account.from_key(private_key),
                self.base_url,
                meta={"universe": []},
                spot_meta=EMPTY_SPOT_META,
                account_address=account_address,
                timeout=timeout,
            )
            self.exchange.info = self.info

    # ------------------------------------------------------------------ helpers
    def _user(self) -> str:
        if not self.account_address:
            raise VenueRejected("this adapter has no account", code="unknown_account")
        return self.account_address

    def _signer(self) -> _Exchange:
        if self.exchange is None:
            raise VenueRejected("no signing key for this agent wallet", code="no_signing_key")
        return self.exchange

    def _asset(self, coin: str) -> int:
        asset = self.info.coin_to_asset.get(coin)
        if asset is None:
            raise VenueRejected(f"Unknown asset {coin}.", code="unknown_symbol")
        return int(asset)

    def _post_action(self, action: dict[str, Any]) -> Any:
        exchange = self._signer()
        nonce = get_timestamp_ms()
        signature = sign_l1_action(
            exchange.wallet,
            action,
            exchange.vault_address,
            nonce,
            exchange.expires_after,
            self.is_mainnet,
        )
        return _call(lambda: exchange._post_action(action, signature, nonce))

    # ------------------------------------------------------------------ orders
    def place_order(self, request: OrderRequest) -> PlaceResult:
        asset = self._asset(request.symbol)
        if request.leverage:
            self.update_leverage(symbol=request.symbol, leverage=request.leverage)
        if request.trigger_price is not None:
            order_type: Any = {
                "trigger": {
                    "triggerPx": float(request.trigger_price),
                    "isMarket": request.is_market,
                    "tpsl": "sl",
                }
            }
        else:
            order_type = {"limit": {"tif": request.time_in_force}}
        wire = {
            "a": asset,
            "b": request.side == "buy",
            "p": to_wire(request.limit_price),
            "s": to_wire(request.size),
            "r": request.reduce_only,
            "t": order_type_to_wire(order_type),
            "c": Cloid(request.cloid).to_raw(),
        }
        response = self._post_action(order_wires_to_order_action([wire], None, "na"))
        order = hlformat.parse_order_response(
            response,
            symbol=request.symbol,
            side=request.side,
            size=request.size,
            cloid=request.cloid,
            time_in_force=request.time_in_force,
        )
        return PlaceResult(order=order)

    def update_leverage(self, *, symbol: str, leverage: int, is_cross: bool = True) -> None:
        response = self._post_action(
            {
                "type": "updateLeverage",
                "asset": self._asset(symbol),
                "isCross": is_cross,
                "leverage": int(leverage),
            }
        )
        if not isinstance(response, dict) or response.get("status") != "ok":
            hlformat.raise_for_error(
                str(response.get("response") if isinstance(response, dict) else response)
            )

    def cancel_order(
        self, *, symbol: str, cloid: str | None = None, venue_order_id: str | None = None
    ) -> None:
        asset = self._asset(symbol)
        if cloid:
            action: dict[str, Any] = {
                "type": "cancelByCloid",
                "cancels": [{"asset": asset, "cloid": cloid}],
            }
        elif venue_order_id:
            action = {"type": "cancel", "cancels": [{"a": asset, "o": int(venue_order_id)}]}
        else:
            raise ValueError("cancel_order needs a cloid or a venue order id")
        response = self._post_action(action)
        if not isinstance(response, dict) or response.get("status") != "ok":
            hlformat.raise_for_error(str(response))
        status = response["response"]["data"]["statuses"][0]
        if status != "success":
            hlformat.raise_for_error(str(status.get("error", status)))

    def order_by_cloid(self, *, symbol: str, cloid: str) -> VenueOrder | None:
        user = self._user()
        response = _call(lambda: self.info.query_order_by_cloid(user, Cloid(cloid)))
        return hlformat.parse_order_status(response)

    def open_orders(self) -> list[VenueOrder]:
        user = self._user()
        return [
            hlformat.parse_open_order(raw)
            for raw in _call(lambda: self.info.frontend_open_orders(user))
        ]

    # ------------------------------------------------------------------ account
    def account_state(self) -> AccountState:
        user = self._user()
        return hlformat.parse_clearinghouse_state(_call(lambda: self.info.user_state(user)))

    def fills_since(self, *, since_ms: int) -> list[VenueFill]:
        user = self._user()
        collected: list[dict[str, Any]] = []
        start = since_ms
        while True:
            page = _call(lambda start=start: self.info.user_fills_by_time(user, start))  # type: ignore[misc]
            collected.extend(page)
            if len(page) < FILLS_PAGE_LIMIT:
                break
            start = max(int(fill["time"]) for fill in page)
        unique = {
            (f.get("tid"), f.get("hash"), f.get("oid"), f["px"], f["sz"], f["time"]): f
            for f in collected
        }
        return hlformat.parse_fills(list(unique.values()))

    # ------------------------------------------------------------------ public data
    def symbols(self) -> list[SymbolInfo]:
        return hlformat.parse_meta(_call(lambda: self.info.meta()))

    def mark_prices(self) -> dict[str, Decimal]:
        return hlformat.parse_mids(_call(lambda: self.info.all_mids()))

    def close(self) -> None:
        self.info.session.close()
        if self.exchange is not None:
            self.exchange.session.close()
