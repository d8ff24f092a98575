"""The venue adapter interface: what Tandem asks of any exchange, in typed Decimal dataclasses.

Every adapter (paper, Hyperliquid, ccxt) turns its venue's wire format into these types and its
failures into the four error classes below, so the execution, fill and reconciliation services
never see a venue's JSON or a library's exception:

* :class:`VenueRejected` -- the venue received the request and refused it; retrying the same
  request is pointless. Carries the venue's ``code`` (classified) and ``message`` (verbatim).
* :class:`RateLimited` -- refused for pace; safe to retry after ``retry_after`` seconds.
* :class:`VenueUnavailable` -- 5xx, connection refused or reset: the request may or may not
  have been processed.
* :class:`VenueTimeout` -- no answer in time: the outcome is unknown. A caller that placed an
  order must look the ``cloid`` up before sending anything again.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

Side = Literal["buy", "sell"]


class VenueError(Exception):
    def __init__(self, message: str, *, code: str = "venue_error") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class VenueRejected(VenueError):
    """Refused by the venue: final for this request."""


class RateLimited(VenueError):
    def __init__(self, message: str = "rate limited", *, retry_after: float | None = None) -> None:
        super().__init__(message, code="rate_limited")
        self.retry_after = retry_after


class VenueUnavailable(VenueError):
    """Server error or no connection; the request may have been processed."""

    def __init__(
        self, message: str, *, code: str = "venue_unavailable", status_code: int | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.status_code = status_code


class VenueTimeout(VenueUnavailable):
    """No answer in time: the outcome is unknown."""

    def __init__(self, message: str = "the venue did not answer in time") -> None:
        super().__init__(message, code="timeout")


class VenueOrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


@dataclass(frozen=True)
class OrderRequest:
    """An order as sent: every number already valid for the venue's tick and lot rules."""

    cloid: str
    symbol: str  # the venue's name for the market (Symbol.address)
    side: Side
    size: Decimal
    limit_price: Decimal
    time_in_force: str = "Gtc"  # Gtc | Ioc | Alo
    reduce_only: bool = False
    trigger_price: Decimal | None = None
    is_market: bool = False
    leverage: int | None = None


@dataclass(frozen=True)
class VenueFill:
    venue_fill_id: str
    symbol: str
    side: Side
    price: Decimal
    size: Decimal
    time_ms: int
    fee: Decimal = Decimal(0)
    fee_token: str = "USDC"  # noqa: S105 - a token symbol, not a secret
    builder_fee: Decimal | None = None
    start_position: Decimal | None = None
    direction: str | None = None
    closed_pnl: Decimal | None = None
    venue_order_id: str = ""
    cloid: str = ""
    tx_hash: str = ""
    is_taker: bool | None = None
    is_liquidation: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class VenueOrder:
    cloid: str | None
    venue_order_id: str
    symbol: str
    side: Side
    status: VenueOrderStatus
    size: Decimal  # original size
    filled_size: Decimal = Decimal(0)
    average_price: Decimal | None = None
    limit_price: Decimal | None = None
    reduce_only: bool = False
    time_in_force: str | None = None
    timestamp_ms: int | None = None
    error: str = ""
    error_code: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def remaining(self) -> Decimal:
        return self.size - self.filled_size


@dataclass(frozen=True)
class PlaceResult:
    """What the venue said to a placement. ``fills`` holds the fills the venue returned with
    the answer (paper does; Hyperliquid only sums them, so its list is empty)."""

    order: VenueOrder
    fills: list[VenueFill] = field(default_factory=list)


@dataclass(frozen=True)
class VenuePosition:
    symbol: str
    quantity: Decimal  # signed
    entry_price: Decimal | None
    unrealized_pnl: Decimal = Decimal(0)
    leverage: Decimal | None = None
    margin_mode: str = "cross"
    margin_used: Decimal = Decimal(0)
    liquidation_price: Decimal | None = None
    position_value: Decimal | None = None


@dataclass(frozen=True)
class AccountState:
    account_value: Decimal
    margin_used: Decimal
    withdrawable: Decimal
    positions: list[VenuePosition]


@dataclass(frozen=True)
class SymbolInfo:
    name: str
    base_currency: str
    quote_currency: str
    sz_decimals: int
    lot_size: Decimal
    min_size: Decimal
    min_notional: Decimal
    max_leverage: int
    maintenance_margin_rate: Decimal
    price_sig_figs: int | None = None
    price_max_decimals: int | None = None
    tick_size: Decimal | None = None
    contract_size: Decimal = Decimal(1)
    venue_symbol: str = ""
    venue_asset_id: int | None = None
    only_isolated: bool = False
    is_delisted: bool = False
    raw: dict[str, Any] = field(default_factory=dict, compare=False)


def derive_fill_id(
    *, tx_hash: str, venue_order_id: str | int, price: str, size: str, time_ms: int
) -> str:
    """A stable id for a fill whose venue gives no ``tid``.

    No single field of a 2023 Hyperliquid fill is unique, but (hash, oid, px, sz, time) is
    (README of data/hyperliquid). The digest keeps the column short and fixed-width.
    """
    key = f"{tx_hash}|{venue_order_id}|{price}|{size}|{time_ms}"
    return "d:" + hashlib.sha256(key.encode()).hexdigest()[:40]


class VenueAdapter(abc.ABC):
    """One venue, seen through one account (or none, for public data)."""

    venue: str

    # -- orders
    @abc.abstractmethod
    def place_order(self, request: OrderRequest) -> PlaceResult: ...

    @abc.abstractmethod
    def cancel_order(
        self, *, symbol: str, cloid: str | None = None, venue_order_id: str | None = None
    ) -> None:
        """Cancel an open order; VenueRejected when it is not open (filled, cancelled, unknown)."""

    @abc.abstractmethod
    def order_by_cloid(self, *, symbol: str, cloid: str) -> VenueOrder | None:
        """The venue's view of the order with this cloid, or None if it never received one."""

    @abc.abstractmethod
    def open_orders(self) -> list[VenueOrder]: ...

    # -- account
    @abc.abstractmethod
    def account_state(self) -> AccountState: ...

    @abc.abstractmethod
    def fills_since(self, *, since_ms: int) -> list[VenueFill]:
        """The account's fills at or after ``since_ms``, oldest first."""

    # -- public data
    @abc.abstractmethod
    def symbols(self) -> list[SymbolInfo]: ...

    @abc.abstractmethod
    def mark_prices(self) -> dict[str, Decimal]: ...

    def close(self) -> None:
        """Release connections (HTTP sessions); adapters without any need not override."""
        return None
