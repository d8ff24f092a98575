"""Hyperliquid messages -> analytics rows.

Websocket channels (``{"channel": ..., "data": ...}``), shapes as Hyperliquid documents them
and as ``hyperliquid-python-sdk`` types them:

* ``trades``: ``[{coin, side: "B"|"A", px, sz, hash, time, tid, users}]`` -> ticks (one per
  trade: price = px, volume = sz, sequence = tid; book fields unknown, stored as 0);
* ``l2Book``: ``{coin, time, levels: [bids, asks]}``, levels ``{px, sz, n}`` -> a book snapshot;
* ``candle``: ``{t, T, s, i, o, c, h, l, v, n}`` -> a venue candle (the open candle is re-sent
  on every trade: ``market_candles`` keeps the newest);
* ``allMids``: ``{mids: {coin: px}}`` -> mid prices (for the latest-price store, not ClickHouse);
* ``activeAssetCtx``: ``{coin, ctx: {openInterest, markPx, oraclePx, funding, ...}}`` -> open
  interest;
* ``userFills``: ``{user, isSnapshot, fills: [...]}`` -> trader events (the caller maps the
  address to Tandem's trader id).

``info`` responses of the same shapes parse with the same functions (candleSnapshot,
fundingHistory, l2Book, allMids, userFills/userFillsByTime, portfolio, metaAndAssetCtxs).
Numbers stay decimal strings until they become ``Decimal``; times are epoch milliseconds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from analytics.batches import (
    LIMIT_18,
    BookSnapshotRow,
    CandleRow,
    EquitySampleRow,
    FundingRow,
    OpenInterestRow,
    TickBatch,
    TraderEventRow,
    to_scaled,
)

EXCHANGE = "hyperliquid"


class FeedError(ValueError):
    """A message that does not have the documented shape."""


def from_ms(value: int | str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def _decimal(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except Exception as exc:
        raise FeedError(f"{what}: not a decimal: {value!r}") from exc


# --------------------------------------------------------------------------- market data


def ticks_from_trades(
    trades: Sequence[Mapping[str, Any]], *, exchange: str = EXCHANGE
) -> TickBatch:
    """One tick per trade. ``tid`` orders trades of one coin; without it (old payloads) the
    trade's time in ms x 1000 + its position in the message stands in."""
    n = len(trades)
    timestamp = np.empty(n, dtype=np.int64)
    sequence = np.empty(n, dtype=np.uint64)
    price = np.zeros(n, dtype=np.int64)
    volume = np.zeros(n, dtype=np.int64)
    invalid = np.zeros(n, dtype=bool)
    for i, trade in enumerate(trades):
        try:
            time_ms = int(trade["time"])
            timestamp[i] = time_ms * 1_000_000
            tid = trade.get("tid")
            sequence[i] = int(tid) if tid is not None else time_ms * 1000 + i
            px = to_scaled(_decimal(trade["px"], "px"), limit=LIMIT_18)
            sz = to_scaled(_decimal(trade["sz"], "sz"), limit=LIMIT_18)
        except (KeyError, TypeError, ValueError) as exc:
            raise FeedError(f"trade {i}: {exc}") from exc
        if px is None or sz is None:
            invalid[i] = True
        else:
            price[i], volume[i] = px, sz
    batch = TickBatch.from_arrays(
        timestamp=timestamp,
        symbol=pd.Categorical([str(t["coin"]) for t in trades]),
        exchange=pd.Categorical([exchange] * n),
        sequence_number=sequence,
        price=price,
        volume=volume,
    )
    batch.invalid = invalid if invalid.any() else None
    return batch


def book_snapshot_from_l2(data: Mapping[str, Any], *, exchange: str = EXCHANGE) -> BookSnapshotRow:
    try:
        bids, asks = data["levels"]

        def levels(side: Iterable[Mapping[str, Any]]) -> tuple[tuple[Decimal, Decimal, int], ...]:
            return tuple(
                (_decimal(lv["px"], "px"), _decimal(lv["sz"], "sz"), int(lv["n"])) for lv in side
            )

        return BookSnapshotRow(
            exchange=exchange,
            symbol=str(data["coin"]),
            timestamp=from_ms(data["time"]),
            bids=levels(bids),
            asks=levels(asks),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedError(f"l2Book: {exc}") from exc


def candle_from_message(data: Mapping[str, Any], *, exchange: str = EXCHANGE) -> CandleRow:
    try:
        return CandleRow(
            exchange=exchange,
            symbol=str(data["s"]),
            interval=str(data["i"]),
            open_time=from_ms(data["t"]),
            close_time=from_ms(data["T"]),
            open=_decimal(data["o"], "o"),
            high=_decimal(data["h"], "h"),
            low=_decimal(data["l"], "l"),
            close=_decimal(data["c"], "c"),
            volume=_decimal(data["v"], "v"),
            trade_count=int(data["n"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise FeedError(f"candle: {exc}") from exc


def candles_from_snapshot(
    rows: Iterable[Mapping[str, Any]], *, exchange: str = EXCHANGE
) -> list[CandleRow]:
    return [candle_from_message(row, exchange=exchange) for row in rows]


def mids_from_message(data: Mapping[str, Any]) -> dict[str, Decimal]:
    """``allMids`` websocket data ``{"mids": {...}}`` or the info response ``{coin: px}``."""
    mids = data.get("mids", data)
    if not isinstance(mids, Mapping):
        raise FeedError("allMids: no mids")
    return {str(coin): _decimal(px, coin) for coin, px in mids.items()}


def funding_from_history(
    rows: Iterable[Mapping[str, Any]], *, exchange: str = EXCHANGE
) -> list[FundingRow]:
    try:
        return [
            FundingRow(
                exchange=exchange,
                symbol=str(row["coin"]),
                timestamp=from_ms(row["time"]),
                funding_rate=_decimal(row["fundingRate"], "fundingRate"),
                premium=_decimal(row.get("premium") or "0", "premium"),
            )
            for row in rows
        ]
    except (KeyError, TypeError) as exc:
        raise FeedError(f"fundingHistory: {exc}") from exc


def open_interest_from_ctx(
    coin: str, ctx: Mapping[str, Any], *, at: datetime, exchange: str = EXCHANGE
) -> OpenInterestRow:
    try:
        return OpenInterestRow(
            exchange=exchange,
            symbol=coin,
            timestamp=at,
            open_interest=_decimal(ctx["openInterest"], "openInterest"),
            mark_price=_decimal(ctx.get("markPx") or "0", "markPx"),
            oracle_price=_decimal(ctx.get("oraclePx") or "0", "oraclePx"),
            funding_rate=_decimal(ctx.get("funding") or "0", "funding"),
        )
    except KeyError as exc:
        raise FeedError(f"asset context of {coin}: {exc}") from exc


def open_interest_from_meta_and_ctxs(
    response: Sequence[Any], *, at: datetime, exchange: str = EXCHANGE
) -> list[OpenInterestRow]:
    """The info ``metaAndAssetCtxs`` answer ``[meta, ctxs]`` (ctxs in universe order)."""
    try:
        meta, ctxs = response
        names = [asset["name"] for asset in meta["universe"]]
    except (TypeError, ValueError, KeyError) as exc:
        raise FeedError(f"metaAndAssetCtxs: {exc}") from exc
    return [
        open_interest_from_ctx(name, ctx, at=at, exchange=exchange)
        for name, ctx in zip(names, ctxs, strict=False)
    ]


# --------------------------------------------------------------------------- traders


def fill_event_hash(fill: Mapping[str, Any], *, trader_id: str, exchange: str = EXCHANGE) -> str:
    """The dedupe key of a fill. Today's fills carry a unique ``tid``; the 2023 ones do not,
    and only (hash, oid, px, sz, time) -- plus coin and side, to be safe -- is unique."""
    if fill.get("tid") is not None:
        basis = f"{exchange}|{trader_id}|tid|{fill['tid']}"
    else:
        basis = "|".join(
            str(part)
            for part in (
                exchange, trader_id, fill.get("hash"), fill.get("oid"), fill.get("coin"),
                fill.get("side"), fill.get("px"), fill.get("sz"), fill.get("time"),
            )
        )  # fmt: skip
    return hashlib.sha256(basis.encode()).hexdigest()[:32]


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def classify_fill(start: Decimal, new: Decimal) -> tuple[str, str]:
    """(action, position side) of a fill that moved a position from ``start`` to ``new``."""
    if start == 0:
        return "open", "long" if new > 0 else "short"
    if new == 0:
        return "close", "long" if start > 0 else "short"
    if _sign(new) != _sign(start):
        return "flip", "long" if new > 0 else "short"
    side = "long" if start > 0 else "short"
    return ("add" if abs(new) > abs(start) else "reduce"), side


def trader_event_from_fill(
    fill: Mapping[str, Any],
    *,
    trader_id: str,
    exchange: str = EXCHANGE,
    leverage: Decimal | None = None,
) -> TraderEventRow:
    try:
        size = _decimal(fill["sz"], "sz")
        price = _decimal(fill["px"], "px")
        start = _decimal(fill.get("startPosition", "0"), "startPosition")
        buy = str(fill["side"]) == "B"
        new = start + size if buy else start - size
        action, side = classify_fill(start, new)
        if fill.get("liquidation"):
            action = "liquidation"
        return TraderEventRow(
            trader_id=str(trader_id),
            exchange=exchange,
            symbol=str(fill["coin"]),
            timestamp=from_ms(fill["time"]),
            action=action,
            side=side,
            fill_side="buy" if buy else "sell",
            quantity=size,
            price=price,
            prev_exposure=start,
            new_exposure=new,
            closed_pnl=_decimal(fill.get("closedPnl") or "0", "closedPnl"),
            fee=_decimal(fill.get("fee") or "0", "fee")
            + _decimal(fill.get("builderFee") or "0", "builderFee"),
            fee_token=str(fill.get("feeToken") or "USDC"),
            crossed=bool(fill.get("crossed", False)),
            order_id=str(fill.get("oid", "")),
            trade_id=str(
                fill.get("tid", "") if fill.get("tid") is not None else fill.get("hash", "")
            ),
            leverage=leverage if leverage is not None else Decimal(0),
            event_hash=fill_event_hash(fill, trader_id=str(trader_id), exchange=exchange),
        )
    except (KeyError, TypeError) as exc:
        raise FeedError(f"fill: {exc}") from exc


def trader_events_from_fills(
    fills: Iterable[Mapping[str, Any]],
    *,
    trader_id: str,
    exchange: str = EXCHANGE,
    leverage: Mapping[str, Decimal] | None = None,
) -> list[TraderEventRow]:
    """``userFills``/``userFillsByTime`` fills of one account; ``leverage`` per coin when
    known (clearinghouseState), else 0 (unknown)."""
    lev = leverage or {}
    return [
        trader_event_from_fill(
            fill, trader_id=trader_id, exchange=exchange, leverage=lev.get(str(fill.get("coin")))
        )
        for fill in fills
    ]


def leverage_from_user_state(state: Mapping[str, Any]) -> dict[str, Decimal]:
    """Per-coin leverage of the open positions in a ``clearinghouseState`` answer."""
    out: dict[str, Decimal] = {}
    for item in state.get("assetPositions", []):
        position = item.get("position", {})
        value = (position.get("leverage") or {}).get("value")
        if position.get("coin") and value is not None:
            out[str(position["coin"])] = _decimal(value, "leverage")
    return out


def equity_samples_from_portfolio(
    portfolio: Sequence[Any],
    *,
    trader_id: str,
    windows: Sequence[str] = ("allTime", "month", "week", "day"),
) -> list[EquitySampleRow]:
    """``portfolio`` answers ``[[window, {accountValueHistory: [[ms, value]], ...}], ...]``;
    samples of all listed windows (finer windows add recent detail), one per instant."""
    seen: dict[int, EquitySampleRow] = {}
    try:
        by_window = {str(name): body for name, body in portfolio}
    except (TypeError, ValueError) as exc:
        raise FeedError(f"portfolio: {exc}") from exc
    for window in windows:
        for ms, value in by_window.get(window, {}).get("accountValueHistory", []):
            seen[int(ms)] = EquitySampleRow(
                trader_id=str(trader_id),
                timestamp=from_ms(ms),
                account_value=_decimal(value, "accountValue"),
                source=f"portfolio:{window}",
            )
    return [seen[ms] for ms in sorted(seen)]


# --------------------------------------------------------------------------- websocket


@dataclass
class ParsedMessage:
    """What one websocket message holds, by kind (most messages fill one of these)."""

    channel: str
    ticks: TickBatch | None = None
    candles: list[CandleRow] = field(default_factory=list)
    books: list[BookSnapshotRow] = field(default_factory=list)
    mids: dict[str, Decimal] = field(default_factory=dict)
    open_interest: list[OpenInterestRow] = field(default_factory=list)
    fills: list[Mapping[str, Any]] = field(default_factory=list)
    user: str = ""


IGNORED_CHANNELS = frozenset({"pong", "subscriptionResponse", "post", "error"})


def parse_ws_message(
    message: Mapping[str, Any], *, exchange: str = EXCHANGE, now: datetime | None = None
) -> ParsedMessage:
    """Dispatch on ``channel``; unknown or ignored channels give an empty result."""
    channel = str(message.get("channel", ""))
    data = message.get("data")
    parsed = ParsedMessage(channel=channel)
    if channel in IGNORED_CHANNELS or data is None:
        return parsed
    if channel == "trades":
        if not isinstance(data, list):
            raise FeedError("trades: data is not a list")
        parsed.ticks = ticks_from_trades(data, exchange=exchange)
    elif channel == "l2Book":
        parsed.books.append(book_snapshot_from_l2(data, exchange=exchange))
    elif channel == "candle":
        items = data if isinstance(data, list) else [data]
        parsed.candles.extend(candle_from_message(item, exchange=exchange) for item in items)
    elif channel == "allMids":
        parsed.mids = mids_from_message(data)
    elif channel == "activeAssetCtx":
        parsed.open_interest.append(
            open_interest_from_ctx(
                str(data["coin"]), data["ctx"], at=now or datetime.now(tz=UTC), exchange=exchange
            )
        )
    elif channel == "userFills":
        parsed.fills = list(data.get("fills", []))
        parsed.user = str(data.get("user", ""))
    return parsed
