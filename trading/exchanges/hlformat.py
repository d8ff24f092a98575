"""Hyperliquid's wire format, parsed into the adapter dataclasses.

Shared by the Hyperliquid adapter and the paper venue (which answers in Hyperliquid's shapes so
both go through the same parsing). Shapes follow the recorded responses in data/hyperliquid
and the SDK docstrings; fields that newer responses add (``tid``, ``cloid``, ``feeToken``,
``builderFee``, ``liquidation``) are optional, so 2023 records and today's both parse.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from trading.exchanges.base import (
    AccountState,
    RateLimited,
    Side,
    SymbolInfo,
    VenueFill,
    VenueOrder,
    VenueOrderStatus,
    VenuePosition,
    VenueRejected,
    derive_fill_id,
)
from trading.pnl import maintenance_margin_rate, q8
from trading.rounding import HYPERLIQUID_PERP_MAX_DECIMALS, HYPERLIQUID_SIG_FIGS

HYPERLIQUID_MIN_NOTIONAL = Decimal(10)

# Venue messages -> Tandem's error codes. Hyperliquid answers refusals in prose only.
_ERROR_CODES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(p, re.IGNORECASE), code)
    for p, code in [
        (r"minimum value of \$", "notional_below_minimum"),
        (r"insufficient margin", "insufficient_margin"),
        (r"reduce only order would increase", "reduce_only_would_increase"),
        (r"invalid price|tick size|divisible by", "price_off_tick"),
        (r"invalid size|zero size", "size_off_lot"),
        (r"post only order would have immediately matched", "post_only_would_match"),
        (r"could not immediately match", "ioc_no_match"),
        (r"never placed, already canceled, or filled", "order_not_open"),
        (r"unknown asset|invalid asset|unknown symbol", "unknown_symbol"),
        (r"does not exist", "unknown_account"),
        (r"duplicate", "duplicate_cloid"),
        (r"no market price", "no_market_price"),
        (r"leverage", "leverage_invalid"),
    ]
]
_RATE_LIMIT = re.compile(r"too many (cumulative )?requests|rate limit", re.IGNORECASE)


def classify_error(message: str) -> str:
    for pattern, code in _ERROR_CODES:
        if pattern.search(message):
            return code
    return "rejected"


def raise_for_error(message: str) -> None:
    """Raise the adapter error a Hyperliquid error message stands for."""
    if _RATE_LIMIT.search(message):
        raise RateLimited(message)
    raise VenueRejected(message, code=classify_error(message))


def _side(value: str) -> Side:
    return "buy" if value == "B" else "sell"


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value))


def parse_order_response(
    response: Any, *, symbol: str, side: Side, size: Decimal, cloid: str, time_in_force: str
) -> VenueOrder:
    """The one status of a single-order ``/exchange`` answer, as a VenueOrder.

    ``resting`` -> open; ``filled`` -> filled, or cancelled with a partial fill when an IOC
    order matched less than its size (the venue cancels the rest); ``error`` -> VenueRejected.
    """
    if not isinstance(response, dict):
        raise VenueRejected(f"unexpected answer: {response!r}", code="bad_response")
    if response.get("status") != "ok":
        raise_for_error(str(response.get("response", response)))
    data = (response.get("response") or {}).get("data") or {}
    statuses = data.get("statuses") or []
    if not statuses:
        raise VenueRejected(f"answer has no order status: {response!r}", code="bad_response")
    status = statuses[0]
    if isinstance(status, dict) and "error" in status:
        raise_for_error(str(status["error"]))
    if isinstance(status, dict) and "resting" in status:
        return VenueOrder(
            cloid=cloid,
            venue_order_id=str(status["resting"]["oid"]),
            symbol=symbol,
            side=side,
            status=VenueOrderStatus.OPEN,
            size=size,
            time_in_force=time_in_force,
            raw=status,
        )
    if isinstance(status, dict) and "filled" in status:
        filled = status["filled"]
        total = Decimal(str(filled["totalSz"]))
        done = total >= size or time_in_force == "Ioc"
        state = (
            VenueOrderStatus.FILLED
            if total >= size
            else VenueOrderStatus.CANCELLED
            if done
            else VenueOrderStatus.OPEN
        )
        return VenueOrder(
            cloid=cloid,
            venue_order_id=str(filled["oid"]),
            symbol=symbol,
            side=side,
            status=state,
            size=size,
            filled_size=total,
            average_price=_decimal(filled.get("avgPx")),
            time_in_force=time_in_force,
            raw=status,
        )
    raise VenueRejected(f"unknown order status: {status!r}", code="bad_response")


# historicalOrders / orderStatus statuses -> ours. Everything the venue ends an order with
# that is not a fill is a cancellation from Tandem's point of view, except a refusal.
_ORDER_STATUSES: dict[str, VenueOrderStatus] = {
    "open": VenueOrderStatus.OPEN,
    "triggered": VenueOrderStatus.OPEN,
    "filled": VenueOrderStatus.FILLED,
    "rejected": VenueOrderStatus.REJECTED,
}


def _order_status(value: str) -> VenueOrderStatus:
    if value in _ORDER_STATUSES:
        return _ORDER_STATUSES[value]
    if value.endswith("Rejected") and not value.endswith("CancelRejected"):
        return VenueOrderStatus.REJECTED
    # canceled, marginCanceled, reduceOnlyCanceled, iocCancelRejected, selfTradeCanceled, ...
    return VenueOrderStatus.CANCELLED


def parse_open_order(raw: dict[str, Any], status: str = "open") -> VenueOrder:
    """An ``openOrders`` / ``frontendOpenOrders`` / ``historicalOrders[].order`` record."""
    size = Decimal(str(raw.get("origSz", raw["sz"])))
    remaining = Decimal(str(raw["sz"]))
    parsed = _order_status(status)
    if raw.get("filledSz") is not None:
        filled = Decimal(str(raw["filledSz"]))  # the paper venue says it outright
    elif parsed == VenueOrderStatus.FILLED:
        filled = size
    elif parsed == VenueOrderStatus.REJECTED:
        filled = Decimal(0)  # refused orders never traded, whatever ``sz`` says
    else:
        filled = size - remaining
    tif = raw.get("tif")
    return VenueOrder(
        cloid=raw.get("cloid") or None,
        venue_order_id=str(raw["oid"]),
        symbol=raw["coin"],
        side=_side(raw["side"]),
        status=parsed,
        size=size,
        filled_size=filled,
        average_price=_decimal(raw.get("avgPx")),
        limit_price=_decimal(raw.get("limitPx")),
        reduce_only=bool(raw.get("reduceOnly", False)),
        time_in_force=tif,
        timestamp_ms=raw.get("timestamp"),
        error=str(raw.get("error") or ""),
        error_code=classify_error(str(raw["error"])) if raw.get("error") else "",
        raw=raw,
    )


def parse_order_status(response: Any) -> VenueOrder | None:
    """``{"type": "orderStatus"}``: None for ``unknownOid`` (the venue never received it)."""
    if not isinstance(response, dict) or response.get("status") != "order":
        return None
    wrapper = response.get("order") or {}
    return parse_open_order(wrapper["order"], status=str(wrapper.get("status", "open")))


def parse_fill(raw: dict[str, Any]) -> VenueFill:
    tid = raw.get("tid")
    fill_id = (
        str(tid)
        if tid is not None
        else derive_fill_id(
            tx_hash=str(raw.get("hash", "")),
            venue_order_id=raw.get("oid", ""),
            price=str(raw["px"]),
            size=str(raw["sz"]),
            time_ms=int(raw["time"]),
        )
    )
    liquidation = raw.get("liquidation")
    return VenueFill(
        venue_fill_id=fill_id,
        symbol=raw["coin"],
        side=_side(raw["side"]),
        price=Decimal(str(raw["px"])),
        size=Decimal(str(raw["sz"])),
        time_ms=int(raw["time"]),
        fee=Decimal(str(raw.get("fee", "0"))),
        fee_token=str(raw.get("feeToken") or "USDC"),
        builder_fee=_decimal(raw.get("builderFee")),
        start_position=_decimal(raw.get("startPosition")),
        direction=raw.get("dir"),
        closed_pnl=_decimal(raw.get("closedPnl")),
        venue_order_id=str(raw.get("oid", "")),
        cloid=str(raw.get("cloid") or ""),
        tx_hash=str(raw.get("hash", "")),
        is_taker=raw.get("crossed"),
        is_liquidation=bool(liquidation),
        raw=raw,
    )


def parse_fills(raw: list[dict[str, Any]]) -> list[VenueFill]:
    """Fills oldest first. The venue lists newest first by millisecond but oldest first within
    one millisecond, so a *stable* sort on time alone gives the true order."""
    return sorted((parse_fill(item) for item in raw), key=lambda fill: fill.time_ms)


def parse_clearinghouse_state(raw: dict[str, Any]) -> AccountState:
    positions = []
    for item in raw.get("assetPositions", []):
        pos = item["position"]
        leverage = pos.get("leverage") or {}
        positions.append(
            VenuePosition(
                symbol=pos["coin"],
                quantity=Decimal(str(pos["szi"])),
                entry_price=_decimal(pos.get("entryPx")),
                unrealized_pnl=_decimal(pos.get("unrealizedPnl")) or Decimal(0),
                leverage=_decimal(leverage.get("value")),
                margin_mode=str(leverage.get("type", "cross")),
                margin_used=_decimal(pos.get("marginUsed")) or Decimal(0),
                liquidation_price=_decimal(pos.get("liquidationPx")),
                position_value=_decimal(pos.get("positionValue")),
            )
        )
    summary = raw.get("marginSummary") or raw.get("crossMarginSummary") or {}
    return AccountState(
        account_value=Decimal(str(summary.get("accountValue", "0"))),
        margin_used=Decimal(str(summary.get("totalMarginUsed", "0"))),
        withdrawable=Decimal(str(raw.get("withdrawable", "0"))),
        positions=positions,
    )


def parse_meta(raw: dict[str, Any], *, quote: str = "USDC") -> list[SymbolInfo]:
    """``{"type": "meta"}``: every perp with its asset index (its place in the list)."""
    symbols = []
    for index, asset in enumerate(raw.get("universe", [])):
        sz_decimals = int(asset["szDecimals"])
        lot = Decimal(1).scaleb(-sz_decimals)
        max_leverage = int(asset["maxLeverage"])
        symbols.append(
            SymbolInfo(
                name=asset["name"],
                base_currency=asset["name"],
                quote_currency=quote,
                sz_decimals=sz_decimals,
                lot_size=lot,
                min_size=lot,
                min_notional=HYPERLIQUID_MIN_NOTIONAL,
                max_leverage=max_leverage,
                maintenance_margin_rate=q8(maintenance_margin_rate(max_leverage)),
                price_sig_figs=HYPERLIQUID_SIG_FIGS,
                price_max_decimals=max(HYPERLIQUID_PERP_MAX_DECIMALS - sz_decimals, 0),
                venue_asset_id=index,
                only_isolated=bool(asset.get("onlyIsolated", False)),
                is_delisted=bool(asset.get("isDelisted", False)),
                raw=asset,
            )
        )
    return symbols


def parse_mids(raw: dict[str, Any]) -> dict[str, Decimal]:
    return {coin: Decimal(str(px)) for coin, px in raw.items() if not coin.startswith("@")}
