"""The Hyperliquid adapter against recorded answers (data/hyperliquid, served over HTTP by a
local fake) and against a fake exchange endpoint: resting / filled / error statuses, signing
with the agent wallet, 429s, 5xx, timeouts, lookups by cloid, and the execution service end to
end (a lost answer is resolved by asking, never by sending twice)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from eth_account import Account
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

from accounts.crypto import encrypt
from accounts.models import AgentWalletKeySource
from accounts.tests.factories import AgentWalletFactory, UserFactory
from trading.exchanges import (
    OrderRequest,
    RateLimited,
    VenueOrderStatus,
    VenueRejected,
    VenueTimeout,
    VenueUnavailable,
    adapter_for_wallet,
    hlformat,
)
from trading.exchanges.hyperliquid import HyperliquidAdapter
from trading.models import Fill, Order, OrderOutbox, OrderStatus, Position, new_cloid
from trading.services import order_create, order_submit, symbols_sync
from trading.tests.fakevenue import FakeVenue, Reply, fake_venue

D = Decimal
DATA = Path(__file__).parent / "data"
USER = "0x2222222222222222222222222222222222222222"


def _ok(status: Any, kind: str = "order") -> dict[str, Any]:
    return {"status": "ok", "response": {"type": kind, "data": {"statuses": [status]}}}


class FakeHyperliquid:
    """Answers /info from recorded files, /exchange from a script, and remembers the orders it
    accepted so ``orderStatus`` can tell about them later (as the venue would)."""

    def __init__(self, info: dict[str, Any]) -> None:
        self.info = info
        self.script: list[Reply] = []
        self.orders: dict[str, dict[str, Any]] = {}
        self.fills: list[dict[str, Any]] = []

    def __call__(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> Reply:
        if path == "/info":
            kind = body["type"]
            if kind == "orderStatus":
                known = self.orders.get(str(body["oid"]))
                return Reply(known or {"status": "unknownOid"})
            if kind == "userFillsByTime":
                return Reply([f for f in self.fills if f["time"] >= body["startTime"]])
            return Reply(self.info.get(kind))
        action = body["action"]
        reply = self.script.pop(0) if self.script else Reply(_ok({"resting": {"oid": 1}}))
        if (
            action["type"] == "order"
            and reply.status == 200
            and "error" not in json.dumps(reply.body)
        ):
            wire = action["orders"][0]
            self.orders[wire["c"]] = {
                "status": "order",
                "order": {
                    "order": {
                        "coin": "ETH",
                        "side": "B" if wire["b"] else "A",
                        "limitPx": wire["p"],
                        "sz": "0",
                        "origSz": wire["s"],
                        "oid": 4242,
                        "timestamp": 1,
                        "cloid": wire["c"],
                    },
                    "status": "filled",
                    "statusTimestamp": 2,
                },
            }
            self.fills.append(
                {
                    "coin": "ETH",
                    "px": wire["p"],
                    "sz": wire["s"],
                    "side": "B" if wire["b"] else "A",
                    "time": int(time.time() * 1000),
                    "startPosition": "0.0",
                    "dir": "Open Long",
                    "closedPnl": "0.0",
                    "hash": "0x" + "cd" * 32,
                    "oid": 4242,
                    "crossed": True,
                    "fee": "0.1",
                    "tid": 1000 + len(self.fills),
                    "cloid": wire["c"],
                    "feeToken": "USDC",
                }
            )
        return reply


@pytest.fixture
def agent_key() -> Any:
    return Account.create()


@pytest.fixture
def hl() -> Iterator[tuple[FakeHyperliquid, FakeVenue]]:
    meta = json.loads((DATA / "meta_small.json").read_text())
    info = {
        "meta": meta,
        "clearinghouseState": json.loads((DATA / "user_state_small.json").read_text()),
        "frontendOpenOrders": [],
        "allMids": {"BTC": "30000", "ETH": "2000.5", "@1": "1"},
    }
    responder = FakeHyperliquid(info)
    with fake_venue(responder) as venue:
        yield responder, venue


def _adapter(venue: FakeVenue, key: Any = None, timeout: float = 2.0) -> HyperliquidAdapter:
    meta = json.loads((DATA / "meta_small.json").read_text())
    assets = {s.name: (s.venue_asset_id or 0, s.sz_decimals) for s in hlformat.parse_meta(meta)}
    return HyperliquidAdapter(
        base_url=venue.url,
        account_address=USER,
        private_key=key.key.hex() if key else None,
        timeout=timeout,
        assets=assets,
    )


def _request(**kwargs: Any) -> OrderRequest:
    values: dict[str, Any] = {
        "cloid": new_cloid(),
        "symbol": "ETH",
        "side": "buy",
        "size": D("0.5"),
        "limit_price": D("2000.5"),
        "time_in_force": "Gtc",
    }
    values.update(kwargs)
    return OrderRequest(**values)


# --------------------------------------------------------------------------- recorded answers


def test_recorded_answers_parse_through_the_adapter(shared_data: Path) -> None:
    folder = shared_data / "hyperliquid"
    files = {
        "meta": "meta.json",
        "clearinghouseState": "user_state.json",
        "frontendOpenOrders": "frontend_open_orders.json",
        "allMids": "all_mids.json",
        "userFillsByTime": "user_fills_by_time.json",
    }
    info = {kind: json.loads((folder / name).read_text()) for kind, name in files.items()}

    def responder(method: str, path: str, query: Any, body: Any) -> Reply:
        return Reply(info[body["type"]])

    with fake_venue(responder) as venue:
        adapter = _adapter(venue)
        symbols = adapter.symbols()
        assert len(symbols) == 28
        btc = next(s for s in symbols if s.name == "BTC")
        assert (
            btc.venue_asset_id,
            btc.sz_decimals,
            btc.max_leverage,
            btc.price_max_decimals,
            btc.min_notional,
        ) == (0, 5, 50, 1, D(10))
        state = adapter.account_state()
        assert len(state.positions) == 12
        assert state.account_value == D("1182.312496")
        btc_position = next(p for p in state.positions if p.symbol == "BTC")
        assert (
            btc_position.quantity,
            btc_position.entry_price,
            btc_position.leverage,
            btc_position.liquidation_price,
        ) == (D("-0.00785"), D("26951.0"), D(20), D("173198.69592357"))
        orders = {o.venue_order_id: o for o in adapter.open_orders()}
        assert set(orders) == {"3184595907", "3184595906", "3184595905"}
        take_profit, limit = orders["3184595907"], orders["3184595905"]
        assert (take_profit.side, take_profit.reduce_only, take_profit.size) == (
            "sell",
            True,
            D("12.5"),
        )
        assert (limit.side, limit.reduce_only, limit.limit_price, limit.time_in_force) == (
            "buy",
            False,
            D("10.0"),
            "Gtc",
        )
        assert all(o.status == VenueOrderStatus.OPEN and o.cloid is None for o in orders.values())
        marks = adapter.mark_prices()
        assert marks["BTC"] == D("30135.0")
        assert len(marks) == 28
        fills = adapter.fills_since(since_ms=1683245555699)
        assert len(fills) == 500
        assert len({f.venue_fill_id for f in fills}) == 500
        assert [f.time_ms for f in fills] == sorted(f.time_ms for f in fills)
        assert {f.direction for f in fills} <= {
            "Open Long",
            "Close Long",
            "Open Short",
            "Close Short",
            "Long > Short",
            "Short > Long",
        }
    assert venue.received[0].body["type"] == "meta"


def test_recorded_order_histories_map_to_order_states(shared_data: Path) -> None:
    folder = shared_data / "hyperliquid"
    history = json.loads((folder / "historical_orders.json").read_text())
    parsed = [hlformat.parse_open_order(item["order"], item["status"]) for item in history]
    by_status = {item["status"]: p.status for item, p in zip(history, parsed, strict=True)}
    assert by_status["iocCancelRejected"] == VenueOrderStatus.CANCELLED
    assert by_status["canceled"] == VenueOrderStatus.CANCELLED
    open_orders = json.loads((folder / "open_orders.json").read_text())
    resting = [hlformat.parse_open_order(raw) for raw in open_orders]
    assert len(resting) == 196
    assert all(o.status == VenueOrderStatus.OPEN for o in resting)
    assert resting[0].limit_price == D("1.0357")
    assert resting[0].side == "buy"


def test_synthetic_answers_parse(hl: tuple[FakeHyperliquid, FakeVenue]) -> None:
    _, venue = hl
    adapter = _adapter(venue)
    assert {s.name for s in adapter.symbols()} == {"BTC", "ETH", "SOL", "kPEPE", "OLD"}
    old = next(s for s in adapter.symbols() if s.name == "OLD")
    assert old.is_delisted
    assert old.only_isolated
    assert adapter.mark_prices() == {"BTC": D(30000), "ETH": D("2000.5")}
    assert len(adapter.account_state().positions) == 3


# --------------------------------------------------------------------------- placing orders


def test_resting_filled_and_refused_statuses(
    hl: tuple[FakeHyperliquid, FakeVenue], agent_key: Any
) -> None:
    responder, venue = hl
    adapter = _adapter(venue, agent_key)
    responder.script = [
        Reply(_ok({"resting": {"oid": 77738308}})),
        Reply(_ok({"filled": {"totalSz": "0.5", "avgPx": "2000.1", "oid": 77747314}})),
        Reply(_ok({"filled": {"totalSz": "0.2", "avgPx": "2000.1", "oid": 77747315}})),
        Reply(_ok({"error": "Order must have minimum value of $10."})),
        Reply(_ok({"error": "Insufficient margin to place order. asset=1"})),
        Reply({"status": "err", "response": f"User or API Wallet {USER} does not exist."}),
    ]
    resting = adapter.place_order(_request())
    assert (resting.order.status, resting.order.venue_order_id) == (
        VenueOrderStatus.OPEN,
        "77738308",
    )
    filled = adapter.place_order(_request())
    assert (filled.order.status, filled.order.filled_size, filled.order.average_price) == (
        VenueOrderStatus.FILLED,
        D("0.5"),
        D("2000.1"),
    )
    partial_ioc = adapter.place_order(_request(time_in_force="Ioc"))
    assert (partial_ioc.order.status, partial_ioc.order.filled_size) == (
        VenueOrderStatus.CANCELLED,
        D("0.2"),
    )
    for code in ("notional_below_minimum", "insufficient_margin", "unknown_account"):
        with pytest.raises(VenueRejected) as refused:
            adapter.place_order(_request())
        assert refused.value.code == code


def test_the_order_is_signed_by_the_agent_with_decimal_strings(
    hl: tuple[FakeHyperliquid, FakeVenue], agent_key: Any
) -> None:
    _, venue = hl
    adapter = _adapter(venue, agent_key)
    request = _request(size=D("0.1230"), limit_price=D("2000.50"), reduce_only=True)
    adapter.place_order(request)
    (sent,) = venue.requests_to("/exchange")
    action = sent.body["action"]
    assert action["type"] == "order"
    assert action["grouping"] == "na"
    wire = action["orders"][0]
    assert wire == {
        "a": 1,
        "b": True,
        "p": "2000.5",
        "s": "0.123",
        "r": True,
        "t": {"limit": {"tif": "Gtc"}},
        "c": request.cloid,
    }
    signer = recover_agent_or_user_from_l1_action(
        action, sent.body["signature"], None, sent.body["nonce"], None, False
    )
    assert signer.lower() == agent_key.address.lower()


def test_leverage_is_set_before_the_order(
    hl: tuple[FakeHyperliquid, FakeVenue], agent_key: Any
) -> None:
    responder, venue = hl
    responder.script = [
        Reply({"status": "ok", "response": {"type": "default"}}),
        Reply(_ok({"resting": {"oid": 5}})),
    ]
    _adapter(venue, agent_key).place_order(_request(leverage=7))
    first, second = venue.requests_to("/exchange")
    assert first.body["action"] == {
        "type": "updateLeverage",
        "asset": 1,
        "isCross": True,
        "leverage": 7,
    }
    assert second.body["action"]["type"] == "order"


def test_rate_limit_server_error_and_timeout_are_classified(
    hl: tuple[FakeHyperliquid, FakeVenue], agent_key: Any
) -> None:
    responder, venue = hl
    adapter = _adapter(venue, agent_key, timeout=0.3)
    responder.script = [
        Reply(None, status=429, headers={"Retry-After": "3"}, raw=b"Too many requests"),
        Reply(None, status=502, raw=b"bad gateway"),
        Reply(_ok({"resting": {"oid": 1}}), delay=1.0),
        Reply({"msg": "Failed to deserialize the JSON body"}, status=422),
    ]
    with pytest.raises(RateLimited) as limited:
        adapter.place_order(_request())
    assert limited.value.retry_after == 3.0
    with pytest.raises(VenueUnavailable) as unavailable:
        adapter.place_order(_request())
    assert unavailable.value.status_code == 502
    with pytest.raises(VenueTimeout):
        adapter.place_order(_request())
    with pytest.raises(VenueRejected) as refused:
        adapter.place_order(_request())
    assert refused.value.code == "http_422"


def test_unreachable_venue() -> None:
    adapter = HyperliquidAdapter(base_url="http://127.0.0.1:9", account_address=USER, timeout=0.5)
    with pytest.raises(VenueUnavailable):
        adapter.mark_prices()


def test_lookup_and_cancel_by_cloid(hl: tuple[FakeHyperliquid, FakeVenue], agent_key: Any) -> None:
    responder, venue = hl
    adapter = _adapter(venue, agent_key)
    unknown = new_cloid()
    assert adapter.order_by_cloid(symbol="ETH", cloid=unknown) is None
    request = _request()
    adapter.place_order(request)
    found = adapter.order_by_cloid(symbol="ETH", cloid=request.cloid)
    assert found is not None
    assert found.status == VenueOrderStatus.FILLED
    assert found.filled_size == D("0.5")
    responder.script = [
        Reply(_ok("success", "cancel")),
        Reply(_ok({"error": "Order was never placed, already canceled, or filled."}, "cancel")),
    ]
    adapter.cancel_order(symbol="ETH", cloid=request.cloid)
    cancel = venue.requests_to("/exchange")[-1].body["action"]
    assert cancel == {"type": "cancelByCloid", "cancels": [{"asset": 1, "cloid": request.cloid}]}
    with pytest.raises(VenueRejected) as refused:
        adapter.cancel_order(symbol="ETH", cloid=request.cloid)
    assert refused.value.code == "order_not_open"


# --------------------------------------------------------------------------- end to end


@pytest.fixture
def hl_trader(db: Any, settings: Any, hl: tuple[FakeHyperliquid, FakeVenue], agent_key: Any) -> Any:
    _, venue = hl
    settings.TANDEM = {
        **settings.TANDEM,
        "HYPERLIQUID_API_URL": venue.url,
        "VENUE_TIMEOUT_SECONDS": 0.3,
    }
    symbols_sync(
        venue="hyperliquid",
        infos=hlformat.parse_meta(json.loads((DATA / "meta_small.json").read_text())),
    )
    user = UserFactory.create()
    AgentWalletFactory.create(
        user=user,
        exchange="hyperliquid",
        addr=agent_key.address,
        key_source=AgentWalletKeySource.GENERATED,
        encrypted_private_key=encrypt(agent_key.key.hex()),
    )
    return user


def test_registry_builds_a_signing_adapter_for_the_wallet(hl_trader: Any, agent_key: Any) -> None:
    adapter = adapter_for_wallet(hl_trader.agent_wallets.get())
    assert isinstance(adapter, HyperliquidAdapter)
    assert adapter.exchange is not None
    assert adapter.exchange.wallet.address == agent_key.address
    assert adapter.account_address == hl_trader.wallet_addr
    assert adapter.is_mainnet is True  # signs for mainnet unless TANDEM says testnet


def test_registry_signs_for_testnet_when_configured(hl_trader: Any, settings: Any) -> None:
    settings.TANDEM = {**settings.TANDEM, "HYPERLIQUID_TESTNET": True}
    adapter = adapter_for_wallet(hl_trader.agent_wallets.get())
    assert isinstance(adapter, HyperliquidAdapter)
    assert adapter.is_mainnet is False


def test_filled_order_end_to_end(
    hl_trader: Any,
    hl: tuple[FakeHyperliquid, FakeVenue],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    responder, venue = hl
    responder.script = [Reply(_ok({"filled": {"totalSz": "0.5", "avgPx": "2000.5", "oid": 4242}}))]
    with django_capture_on_commit_callbacks(execute=True):
        order = order_create(
            user=hl_trader,
            symbol="ETH",
            side="buy",
            quantity=D("0.5"),
            order_type="limit",
            price=D("2000.5"),
        ).order
    order.refresh_from_db()
    assert (order.status, order.filled_quantity, order.exchange_order_id) == (
        OrderStatus.FILLED,
        D("0.5"),
        "4242",
    )
    # "filled" only sums the fills: the service fetched them (userFillsByTime) by cloid
    fill = Fill.objects.get(order=order)
    assert (fill.venue_fill_id, fill.price, fill.fee) == ("1000", D("2000.5"), D("0.1"))
    assert any(r.body["type"] == "userFillsByTime" for r in venue.requests_to("/info"))
    assert Position.objects.get(user=hl_trader).quantity == D("0.5")


def test_lost_answer_never_sends_twice(
    hl_trader: Any, hl: tuple[FakeHyperliquid, FakeVenue], monkeypatch: pytest.MonkeyPatch
) -> None:
    responder, venue = hl
    monkeypatch.setattr("trading.services.orders.order_submit_dispatch", lambda pk: None)
    # The venue takes the order but answers after the client's timeout.
    responder.script = [Reply(_ok({"resting": {"oid": 4242}}), delay=1.0)]
    order = order_create(
        user=hl_trader,
        symbol="ETH",
        side="buy",
        quantity=D("0.5"),
        order_type="limit",
        price=D("2000.5"),
    ).order
    assert order_submit(order_id=order.pk).status == "retry"
    past = timezone.now() - timedelta(seconds=1)
    OrderOutbox.objects.filter(order=order).update(claimed_until=past, available_at=past)
    assert order_submit(order_id=order.pk).status == "done"
    orders_sent = [r for r in venue.requests_to("/exchange") if r.body["action"]["type"] == "order"]
    assert len(orders_sent) == 1
    lookups = [r for r in venue.requests_to("/info") if r.body["type"] == "orderStatus"]
    assert [r.body["oid"] for r in lookups] == [order.cloid]
    order = Order.objects.get(pk=order.pk)
    assert order.status == OrderStatus.FILLED  # what the venue said when asked
    assert Fill.objects.filter(order=order).count() == 1
