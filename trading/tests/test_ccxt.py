"""The ccxt adapter (OKX) against a local fake OKX v5 REST API: place, cancel, fetch by client
order id, positions and balance, fills, and the error classes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from trading.exchanges import (
    OrderRequest,
    RateLimited,
    VenueOrderStatus,
    VenueRejected,
    VenueTimeout,
)
from trading.exchanges.ccxt_venue import CcxtAdapter, VenueCredentials, client_order_id
from trading.models import new_cloid
from trading.tests.fakevenue import FakeVenue, Reply, fake_venue

D = Decimal
SYMBOL = "BTC/USDT:USDT"
INSTRUMENT = {
    "instType": "SWAP",
    "instId": "BTC-USDT-SWAP",
    "uly": "BTC-USDT",
    "instFamily": "BTC-USDT",
    "baseCcy": "",
    "quoteCcy": "",
    "settleCcy": "USDT",
    "ctVal": "0.01",
    "ctMult": "1",
    "ctValCcy": "BTC",
    "ctType": "linear",
    "lotSz": "1",
    "minSz": "1",
    "tickSz": "0.1",
    "lever": "100",
    "state": "live",
    "listTime": "1606468572000",
    "expTime": "",
    "alias": "",
    "category": "1",
    "maxLmtSz": "100000",
    "maxMktSz": "3000",
}


def _ok(data: list[dict[str, Any]]) -> Reply:
    return Reply({"code": "0", "msg": "", "data": data})


class FakeOkx:
    """Just enough of OKX's v5 API: orders are remembered by clOrdId."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.next_place: Reply | None = None

    def __call__(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        if path == "/api/v5/public/instruments":
            return _ok([INSTRUMENT])
        if path == "/api/v5/trade/order" and method == "POST":
            if self.next_place is not None:
                reply, self.next_place = self.next_place, None
                return reply
            order = {
                "instType": "SWAP",
                "instId": body["instId"],
                "ordId": "3122698653563740",
                "clOrdId": body["clOrdId"],
                "px": body.get("px", ""),
                "sz": body["sz"],
                "ordType": body["ordType"],
                "side": body["side"],
                "state": "live",
                "accFillSz": "0",
                "avgPx": "",
                "cTime": "1700000000000",
                "uTime": "1700000000000",
                "reduceOnly": str(body.get("reduceOnly", False)).lower(),
                "tdMode": body["tdMode"],
                "fee": "0",
                "feeCcy": "USDT",
            }
            self.orders[body["clOrdId"]] = order
            return _ok(
                [
                    {
                        "clOrdId": body["clOrdId"],
                        "ordId": order["ordId"],
                        "tag": "",
                        "sCode": "0",
                        "sMsg": "",
                    }
                ]
            )
        if path == "/api/v5/trade/order" and method == "GET":
            found = self.orders.get(query.get("clOrdId", [""])[0])
            if found is None:
                return Reply({"code": "51603", "msg": "Order does not exist", "data": []})
            return _ok([found])
        if path == "/api/v5/trade/cancel-order":
            live = self.orders.get(body.get("clOrdId", ""))
            if live is None or live["state"] != "live":
                return Reply(
                    {
                        "code": "1",
                        "msg": "",
                        "data": [
                            {
                                "clOrdId": body.get("clOrdId", ""),
                                "ordId": "",
                                "sCode": "51400",
                                "sMsg": (
                                    "Order cancellation failed as the order has been filled, "
                                    "canceled or does not exist"
                                ),
                            }
                        ],
                    }
                )
            live["state"] = "canceled"
            return _ok(
                [{"clOrdId": live["clOrdId"], "ordId": live["ordId"], "sCode": "0", "sMsg": ""}]
            )
        if path == "/api/v5/account/positions":
            return _ok(
                [
                    {
                        "instType": "SWAP",
                        "instId": "BTC-USDT-SWAP",
                        "mgnMode": "cross",
                        "posSide": "net",
                        "pos": "-3",
                        "avgPx": "30000",
                        "markPx": "30100",
                        "upl": "-3",
                        "lever": "10",
                        "liqPx": "39500.5",
                        "imr": "9.03",
                        "mmr": "0.45",
                        "notionalUsd": "903",
                        "ccy": "USDT",
                        "adl": "1",
                        "cTime": "1700000000000",
                        "uTime": "1700000000000",
                    }
                ]
            )
        if path == "/api/v5/account/balance":
            return _ok(
                [
                    {
                        "totalEq": "1000",
                        "uTime": "1700000000000",
                        "details": [
                            {
                                "ccy": "USDT",
                                "eq": "1000",
                                "cashBal": "1000",
                                "availBal": "900",
                                "frozenBal": "100",
                                "availEq": "900",
                                "uTime": "1700000000000",
                            }
                        ],
                    }
                ]
            )
        if path in ("/api/v5/trade/fills", "/api/v5/trade/fills-history"):
            return _ok(
                [
                    {
                        "instType": "SWAP",
                        "instId": "BTC-USDT-SWAP",
                        "tradeId": "77",
                        "ordId": "3122698653563740",
                        "clOrdId": "ab" * 16,
                        "billId": "1",
                        "fillPx": "30000.1",
                        "fillSz": "5",
                        "side": "buy",
                        "posSide": "net",
                        "execType": "T",
                        "fee": "-0.075",
                        "feeCcy": "USDT",
                        "ts": "1700000000500",
                    }
                ]
            )
        if path == "/api/v5/asset/currencies":
            return _ok([])
        return Reply(
            {"code": "50000", "msg": f"unexpected {method} {path}", "data": []}, status=400
        )


@pytest.fixture
def okx() -> Iterator[tuple[FakeOkx, FakeVenue]]:
    responder = FakeOkx()
    with fake_venue(responder) as venue:
        yield responder, venue


def _adapter(venue: FakeVenue, timeout: float = 2.0) -> CcxtAdapter:
    return CcxtAdapter(
        credentials=VenueCredentials("key", "secret", "pass"), base_url=venue.url, timeout=timeout
    )


def _request(**kwargs: Any) -> OrderRequest:
    values: dict[str, Any] = {
        "cloid": new_cloid(),
        "symbol": SYMBOL,
        "side": "buy",
        "size": D("0.05"),
        "limit_price": D("30000.1"),
    }
    values.update(kwargs)
    return OrderRequest(**values)


def test_symbols_from_the_venue_in_base_units(okx: tuple[FakeOkx, FakeVenue]) -> None:
    _, venue = okx
    (btc,) = _adapter(venue).symbols()
    assert (
        btc.name,
        btc.venue_symbol,
        btc.contract_size,
        btc.lot_size,
        btc.min_size,
        btc.tick_size,
        btc.max_leverage,
    ) == ("BTC", SYMBOL, D("0.01"), D("0.01"), D("0.01"), D("0.1"), 100)


def test_place_converts_to_contracts_and_sends_the_cloid(okx: tuple[FakeOkx, FakeVenue]) -> None:
    _, venue = okx
    request = _request(reduce_only=True, time_in_force="Ioc")
    result = _adapter(venue).place_order(request)
    assert (result.order.status, result.order.venue_order_id) == (
        VenueOrderStatus.OPEN,
        "3122698653563740",
    )
    (sent,) = [r for r in venue.requests_to("/api/v5/trade/order") if r.method == "POST"]
    assert sent.body["clOrdId"] == client_order_id(request.cloid) == request.cloid[2:]
    assert (sent.body["sz"], sent.body["px"], sent.body["tdMode"], sent.body["side"]) == (
        "5",
        "30000.1",
        "cross",
        "buy",
    )
    assert sent.body["reduceOnly"] is True
    assert sent.body["ordType"] == "ioc"
    assert sent.headers["OK-ACCESS-KEY"] == "key"
    assert sent.headers["OK-ACCESS-SIGN"]


def test_fetch_by_client_id_and_cancel(okx: tuple[FakeOkx, FakeVenue]) -> None:
    _, venue = okx
    adapter = _adapter(venue)
    assert adapter.order_by_cloid(symbol=SYMBOL, cloid=new_cloid()) is None
    request = _request()
    adapter.place_order(request)
    found = adapter.order_by_cloid(symbol=SYMBOL, cloid=request.cloid)
    assert found is not None
    assert (found.cloid, found.status, found.size, found.limit_price) == (
        request.cloid,
        VenueOrderStatus.OPEN,
        D("0.05"),
        D("30000.1"),
    )
    adapter.cancel_order(symbol=SYMBOL, cloid=request.cloid)
    cancelled = adapter.order_by_cloid(symbol=SYMBOL, cloid=request.cloid)
    assert cancelled is not None
    assert cancelled.status == VenueOrderStatus.CANCELLED
    with pytest.raises(VenueRejected) as refused:
        adapter.cancel_order(symbol=SYMBOL, cloid=request.cloid)
    assert refused.value.code in ("order_not_open", "invalid_order")


def test_positions_and_account_value(okx: tuple[FakeOkx, FakeVenue]) -> None:
    _, venue = okx
    state = _adapter(venue).account_state()
    (position,) = state.positions
    assert (
        position.symbol,
        position.quantity,
        position.entry_price,
        position.leverage,
        position.liquidation_price,
    ) == (SYMBOL, D("-0.03"), D(30000), D(10), D("39500.5"))
    assert (state.account_value, state.withdrawable, state.margin_used) == (D(1000), D(900), D(100))


def test_fills_in_base_units(okx: tuple[FakeOkx, FakeVenue]) -> None:
    _, venue = okx
    (fill,) = _adapter(venue).fills_since(since_ms=1700000000000)
    assert (fill.venue_fill_id, fill.size, fill.price, fill.side, fill.cloid) == (
        "77",
        D("0.05"),
        D("30000.1"),
        "buy",
        "0x" + "ab" * 16,
    )
    assert fill.fee == D("0.075")
    assert fill.time_ms == 1700000000500


def test_errors_are_classified(okx: tuple[FakeOkx, FakeVenue]) -> None:
    responder, venue = okx
    adapter = _adapter(venue, timeout=0.3)
    adapter.symbols()  # markets loaded
    responder.next_place = Reply(
        {
            "code": "1",
            "msg": "",
            "data": [
                {
                    "clOrdId": "x",
                    "ordId": "",
                    "sCode": "51008",
                    "sMsg": "Order failed. Your available USDT balance is insufficient.",
                }
            ],
        }
    )
    with pytest.raises(VenueRejected) as refused:
        adapter.place_order(_request())
    assert refused.value.code == "insufficient_margin"
    responder.next_place = Reply(
        {"code": "50011", "msg": "Too Many Requests", "data": []}, status=429
    )
    with pytest.raises(RateLimited):
        adapter.place_order(_request())
    responder.next_place = Reply({"code": "0", "msg": "", "data": []}, delay=1.0)
    with pytest.raises(VenueTimeout):
        adapter.place_order(_request())
