"""Hyperliquid parsers against the recorded responses and the documented websocket shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from analytics import services
from analytics.batches import FACTOR
from analytics.buffer import Buffer
from analytics.feeds import hyperliquid as hl
from analytics.tests.conftest import load_json


def recorded(shared_data: Path, name: str) -> Any:
    return json.loads((shared_data / "hyperliquid" / name).read_text())


def test_trades_become_ticks_ordered_by_trade_id() -> None:
    message = load_json("ws_messages.json")["trades"]
    parsed = hl.parse_ws_message(message)
    ticks = parsed.ticks
    assert ticks is not None
    assert len(ticks) == 3
    assert ticks.sequence_number.tolist() == [118000000000001, 118000000000002, 118000000000007]
    assert ticks.decimals["price"].tolist() == [
        int(Decimal(px) * FACTOR) for px in ("95012.5", "95012", "95013.1")
    ]
    assert ticks.decimals["volume"][0] == int(Decimal("0.01234") * FACTOR)
    assert ticks.decimals["bid_price"].tolist() == [0, 0, 0]  # not reported by a trade
    assert ticks.timestamp[0] == 1767225600123 * 1_000_000
    assert list(ticks.symbol) == ["BTC"] * 3
    assert list(ticks.exchange) == ["hyperliquid"] * 3


def test_trades_built_from_the_recorded_fills_shape(shared_data: Path) -> None:
    """The public trades stream carries the same fields a fill does (coin, side, px, sz, hash,
    time), without tid in these 2023 records: the order falls back to time and position."""
    fills = recorded(shared_data, "user_fills.json")[:50]
    trades = [{k: f[k] for k in ("coin", "side", "px", "sz", "hash", "time")} for f in fills]
    batch = hl.ticks_from_trades(trades)
    assert len(batch) == 50
    assert batch.invalid is None
    assert batch.decimals["price"][0] == int(Decimal(fills[0]["px"]) * FACTOR)
    assert len(set(batch.sequence_number.tolist())) == 50


def test_l2book_snapshot_from_the_recorded_answer(shared_data: Path) -> None:
    data = recorded(shared_data, "l2_book_dydx.json")
    parsed = hl.parse_ws_message({"channel": "l2Book", "data": data})
    [book] = parsed.books
    assert book.symbol == "DYDX"
    assert len(book.bids) == 20
    assert len(book.asks) == 20
    assert book.bids[0] == (Decimal("2.111"), Decimal("134.4"), 1)
    assert book.bids[0][0] > book.bids[-1][0]
    assert book.asks[0][0] < book.asks[-1][0]
    assert book.bids[0][0] < book.asks[0][0]
    assert book.timestamp == datetime(2023, 7, 17, 21, 43, 23, 930000, tzinfo=UTC)


def test_candle_message_from_the_recorded_snapshot(shared_data: Path) -> None:
    candles = recorded(shared_data, "candles_kpepe_1h.json")
    parsed = hl.parse_ws_message({"channel": "candle", "data": candles[0]})
    [candle] = parsed.candles
    assert (candle.symbol, candle.interval, candle.trade_count) == ("kPEPE", "1h", 709)
    assert candle.open == Decimal("0.001601")
    assert candle.volume == Decimal("520665683.0")
    assert candle.close_time.timestamp() * 1000 == candles[0]["T"]
    assert len(hl.candles_from_snapshot(candles)) == 24


def test_all_mids_from_the_recorded_answer(shared_data: Path) -> None:
    mids = recorded(shared_data, "all_mids.json")
    from_ws = hl.parse_ws_message({"channel": "allMids", "data": {"mids": mids}}).mids
    assert from_ws == hl.mids_from_message(mids)  # the info answer is the bare mapping
    assert len(from_ws) == 28
    assert from_ws["BTC"] == Decimal("30135.0")


def test_funding_history_from_the_recorded_answer(shared_data: Path) -> None:
    rows = hl.funding_from_history(recorded(shared_data, "funding_history_btc.json"))
    assert len(rows) == 1038
    assert rows[0].funding_rate == Decimal("-0.00061334")
    assert rows[0].premium == Decimal("-0.00091334")


def test_active_asset_context_and_meta_and_asset_ctxs(shared_data: Path) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    parsed = hl.parse_ws_message(load_json("ws_messages.json")["activeAssetCtx"], now=at)
    [oi] = parsed.open_interest
    assert (oi.symbol, oi.open_interest, oi.mark_price, oi.funding_rate) == (
        "ETH", Decimal("412345.6789"), Decimal("3312.4"), Decimal("0.0000125"),
    )  # fmt: skip
    meta = recorded(shared_data, "meta.json")
    ctxs = [{"openInterest": str(i), "markPx": "1"} for i, _ in enumerate(meta["universe"])]
    rows = hl.open_interest_from_meta_and_ctxs([meta, ctxs], at=at)
    assert [r.symbol for r in rows] == [a["name"] for a in meta["universe"]]
    assert rows[3].open_interest == Decimal(3)


def test_recorded_fills_classify_like_their_dir(shared_data: Path) -> None:
    fills = recorded(shared_data, "user_fills.json")
    events = hl.trader_events_from_fills(fills, trader_id="t")
    assert len(events) == 500
    expected = {
        "Open Long": ({"open", "add"}, "long"),
        "Open Short": ({"open", "add"}, "short"),
        "Close Long": ({"reduce", "close"}, "long"),
        "Close Short": ({"reduce", "close"}, "short"),
        "Long > Short": ({"flip"}, "short"),
        "Short > Long": ({"flip"}, "long"),
    }
    for fill, event in zip(fills, events, strict=True):
        actions, side = expected[fill["dir"]]
        assert event.action in actions, fill
        assert event.side == side, fill
        assert event.closed_pnl == Decimal(fill["closedPnl"])
        assert event.fill_side == ("buy" if fill["side"] == "B" else "sell")
        assert event.notional_value == Decimal(fill["px"]) * Decimal(fill["sz"])
    # (hash, oid, px, sz, time) is unique in this recording, and so is the dedupe key.
    assert len({e.event_hash for e in events}) == 500
    assert sum((e.closed_pnl for e in events), Decimal(0)) == Decimal("-152.586132")


def test_todays_fill_shape_uses_tid_and_adds_builder_fees() -> None:
    message = load_json("ws_messages.json")["userFills"]
    parsed = hl.parse_ws_message(message)
    assert parsed.user.startswith("0xb7b6")
    [event] = hl.trader_events_from_fills(parsed.fills, trader_id="t", leverage={"ETH": Decimal(5)})
    assert event.action == "close"
    assert event.side == "short"
    assert event.new_exposure == 0
    assert event.fee == Decimal("0.589669")
    assert event.leverage == Decimal(5)
    assert event.trade_id == "118000000000010"
    assert event.event_hash == hl.fill_event_hash({"tid": 118000000000010}, trader_id="t")


def test_leverage_and_equity_from_recorded_account_answers(shared_data: Path) -> None:
    leverage = hl.leverage_from_user_state(recorded(shared_data, "user_state.json"))
    assert leverage["BTC"] == Decimal(20)
    assert len(leverage) == 12
    portfolio = recorded(shared_data, "portfolio.json")
    samples = hl.equity_samples_from_portfolio(portfolio, trader_id="t")
    assert samples == sorted(samples, key=lambda s: s.timestamp)
    assert len({s.timestamp for s in samples}) == len(samples)
    every = [
        (ms, v)
        for name, body in portfolio
        if name in ("allTime", "month", "week", "day")
        for ms, v in body["accountValueHistory"]
    ]
    newest_ms, newest_value = max(every)
    assert samples[-1].timestamp.timestamp() * 1000 == newest_ms
    assert samples[-1].account_value == Decimal(newest_value)
    assert len(samples) == len({ms for ms, _ in every})


@pytest.mark.parametrize(
    "message",
    [
        {"channel": "trades", "data": [{"coin": "BTC", "px": "1"}]},
        {"channel": "trades", "data": {"not": "a list"}},
        {"channel": "l2Book", "data": {"coin": "BTC"}},
        {"channel": "candle", "data": {"t": 1}},
        {"channel": "allMids", "data": {"mids": ["x"]}},
    ],
)
def test_malformed_messages_raise_feed_error(message: dict[str, Any]) -> None:
    with pytest.raises(hl.FeedError):
        hl.parse_ws_message(message)


def test_control_and_unknown_channels_are_ignored() -> None:
    messages = load_json("ws_messages.json")
    for name in ("subscriptionResponse", "pong"):
        parsed = hl.parse_ws_message(messages[name])
        assert parsed.ticks is None
        assert not parsed.candles
        assert not parsed.books
    assert hl.parse_ws_message({"channel": "somethingNew", "data": {}}).ticks is None


def test_feed_messages_are_routed_to_their_buffers(shared_data: Path) -> None:
    messages = load_json("ws_messages.json")
    assert services.feed_message_ingest(message=messages["trades"]) == {"ticks": 3}
    assert services.feed_message_ingest(message=messages["activeAssetCtx"]) == {"open_interest": 1}
    book = {"channel": "l2Book", "data": recorded(shared_data, "l2_book_dydx.json")}
    assert services.feed_message_ingest(message=book) == {"book_snapshots": 1}
    assert services.feed_message_ingest(message=messages["pong"]) == {}
    assert Buffer("ticks").pending_rows() == 3
    assert Buffer("open_interest").pending_rows() == 1
    assert Buffer("book_snapshots").pending_items() == 1
