"""The paper venue as an exchange: its rules, fees, slippage, partial fills, refusals, its own
state in Redis, and the placement log the chaos test relies on."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from trading.exchanges import OrderRequest, VenueOrderStatus, VenueRejected
from trading.exchanges.paper import PaperAdapter, PaperVenue
from trading.models import new_cloid

D = Decimal
USER = "0x1111111111111111111111111111111111111111"


@pytest.fixture
def account(paper_venue: PaperVenue) -> PaperAdapter:
    return PaperAdapter(account=USER, venue=paper_venue)


def _order(
    symbol: str = "ETH",
    side: str = "buy",
    size: str = "1",
    price: str = "2600",
    tif: str = "Ioc",
    **kwargs: Any,
) -> OrderRequest:
    return OrderRequest(
        cloid=new_cloid(),
        symbol=symbol,
        side=side,  # type: ignore[arg-type]
        size=D(size),
        limit_price=D(price),
        time_in_force=tif,
        **kwargs,
    )


@pytest.mark.usefixtures("market")
class TestMatching:
    def test_market_order_fills_at_the_touch_with_taker_fee(
        self, account: PaperAdapter, market: dict[str, Any]
    ) -> None:
        result = account.place_order(_order(size="1"))
        assert result.order.status == VenueOrderStatus.FILLED
        (fill,) = result.fills
        assert fill.price == market["ETH"].ask_price  # within the best level: no impact
        assert fill.fee == (fill.price * D("0.00045")).quantize(D("0.00000001"))
        assert (fill.direction, fill.start_position, fill.is_taker) == ("Open Long", D(0), True)
        assert fill.closed_pnl == 0
        assert fill.cloid == result.order.cloid

    def test_slippage_grows_with_size(self, account: PaperAdapter) -> None:
        small = account.place_order(_order(size="50", price="2700")).fills[0].price
        large = account.place_order(_order(size="400", price="2700")).fills[0].price
        assert large > small

    def test_large_ioc_order_fills_partially_and_cancels_the_rest(
        self, account: PaperAdapter, publish: Callable[..., Any]
    ) -> None:
        publish("ETH", "2500", size="2")  # 2 ETH at the best ask, 10 visible in all
        result = account.place_order(_order(size="25", price="2700"))
        assert result.order.status == VenueOrderStatus.CANCELLED
        assert result.order.filled_size == D(10)
        looked_up = account.order_by_cloid(symbol="ETH", cloid=str(result.order.cloid))
        assert looked_up is not None
        assert looked_up.status == VenueOrderStatus.CANCELLED
        assert looked_up.filled_size == D(10)

    def test_resting_limit_order_fills_in_slices_as_price_crosses(
        self, account: PaperAdapter, paper_venue: PaperVenue, publish: Callable[..., Any]
    ) -> None:
        result = account.place_order(_order(size="3", price="2400", tif="Gtc"))
        assert result.order.status == VenueOrderStatus.OPEN
        assert not result.fills
        assert [o.cloid for o in account.open_orders()] == [result.order.cloid]
        publish("ETH", "2390", size="2")  # crosses; a slice of half the best level fills
        assert paper_venue.match_resting(["ETH"]) == 1
        after_one = account.order_by_cloid(symbol="ETH", cloid=str(result.order.cloid))
        assert after_one is not None
        assert (after_one.status, after_one.filled_size) == (VenueOrderStatus.OPEN, D(1))
        paper_venue.match_resting(["ETH"])
        paper_venue.match_resting(["ETH"])
        done = account.order_by_cloid(symbol="ETH", cloid=str(result.order.cloid))
        assert done is not None
        assert done.status == VenueOrderStatus.FILLED
        fills = account.fills_since(since_ms=0)
        assert [f.size for f in fills] == [D(1), D(1), D(1)]
        assert all(f.price == D(2400) and f.is_taker is False for f in fills)
        assert fills[0].fee == (D(2400) * D("0.00015")).quantize(D("0.00000001"))  # maker
        assert account.open_orders() == []

    def test_reduce_only_is_clamped_to_the_position(self, account: PaperAdapter) -> None:
        account.place_order(_order(size="0.5"))
        request = _order(side="sell", size="2", price="2400", reduce_only=True)
        result = account.place_order(request)
        assert (result.order.status, result.order.filled_size) == (
            VenueOrderStatus.CANCELLED,
            D("0.5"),
        )
        found = account.order_by_cloid(symbol="ETH", cloid=request.cloid)
        assert found is not None
        assert (found.status, found.filled_size, found.size) == (
            VenueOrderStatus.CANCELLED,
            D("0.5"),
            D(2),
        )
        assert account.account_state().positions == []

    def test_realised_pnl_and_fees_move_the_balance(
        self, account: PaperAdapter, publish: Callable[..., Any]
    ) -> None:
        start = account.account_state().account_value
        buy = account.place_order(_order(size="2", price="2600")).fills[0]
        publish("ETH", "2600", size="100")
        sell = account.place_order(_order(side="sell", size="2", price="2500")).fills[0]
        assert sell.direction == "Close Long"
        assert sell.closed_pnl == (sell.price - buy.price) * 2
        state = account.account_state()
        assert state.positions == []
        assert state.account_value == start + sell.closed_pnl - buy.fee - sell.fee

    def test_leveraged_position_reports_a_liquidation_price(
        self, account: PaperAdapter, paper_venue: PaperVenue
    ) -> None:
        paper_venue.set_balance(USER, D(1000))
        account.place_order(_order(size="2", price="2600", leverage=10))
        state = account.account_state()
        (position,) = state.positions
        assert position.quantity == D(2)
        assert position.leverage == D(10)
        assert position.liquidation_price is not None
        assert D(2000) < position.liquidation_price < D(2500)


@pytest.mark.usefixtures("market")
class TestRefusals:
    @pytest.mark.parametrize(
        ("request_args", "code"),
        [
            ({"price": "2600.55"}, "price_off_tick"),  # 6 significant figures
            ({"size": "0.00001"}, "size_off_lot"),  # ETH has 4 size decimals
            ({"size": "0.001"}, "notional_below_minimum"),  # $2.6 < $10
            ({"symbol": "FAKE"}, "unknown_symbol"),
            ({"side": "sell", "reduce_only": True}, "reduce_only_would_increase"),
            ({"price": "2400", "tif": "Ioc"}, "ioc_no_match"),
            ({"price": "2600", "tif": "Alo"}, "post_only_would_match"),
            ({"size": "1000", "price": "2600"}, "insufficient_margin"),
        ],
    )
    def test_refusals_a_real_venue_gives(
        self,
        account: PaperAdapter,
        paper_venue: PaperVenue,
        request_args: dict[str, Any],
        code: str,
    ) -> None:
        paper_venue.set_balance(USER, D(10_000))
        with pytest.raises(VenueRejected) as refused:
            account.place_order(_order(**request_args))
        assert refused.value.code == code
        assert refused.value.message  # the venue's own words

    def test_a_refused_order_is_known_as_rejected(self, account: PaperAdapter) -> None:
        request = _order(size="0.001")
        with pytest.raises(VenueRejected):
            account.place_order(request)
        found = account.order_by_cloid(symbol="ETH", cloid=request.cloid)
        assert found is not None
        assert found.status == VenueOrderStatus.REJECTED


def test_no_market_price_is_refused(account: PaperAdapter) -> None:
    with pytest.raises(VenueRejected) as refused:
        account.place_order(_order())  # no `market` fixture: nothing published yet
    assert refused.value.code == "no_market_price"


@pytest.mark.usefixtures("market")
def test_every_placement_is_logged_and_duplicates_are_visible(
    account: PaperAdapter, paper_venue: PaperVenue
) -> None:
    request = _order()
    account.place_order(request)
    with pytest.raises(VenueRejected) as refused:
        account.place_order(request)  # the same cloid again
    assert refused.value.code == "duplicate_cloid"
    with pytest.raises(VenueRejected):
        account.place_order(_order(size="0.001"))
    counts = paper_venue.placement_counts()
    assert counts[request.cloid] == 2
    assert len(paper_venue.placements()) == 3
    # The first order is untouched by the duplicate
    found = account.order_by_cloid(symbol="ETH", cloid=request.cloid)
    assert found is not None
    assert found.status == VenueOrderStatus.FILLED


@pytest.mark.usefixtures("market")
def test_state_lives_in_redis_shared_by_every_instance(
    account: PaperAdapter, trading_namespace: str
) -> None:
    result = account.place_order(_order(size="1", price="2400", tif="Gtc"))
    elsewhere = PaperAdapter(account=USER, venue=PaperVenue())  # a new process would do this
    assert [o.cloid for o in elsewhere.open_orders()] == [result.order.cloid]
    elsewhere.cancel_order(symbol="ETH", cloid=str(result.order.cloid))
    found = account.order_by_cloid(symbol="ETH", cloid=str(result.order.cloid))
    assert found is not None
    assert found.status == VenueOrderStatus.CANCELLED
    with pytest.raises(VenueRejected) as refused:
        account.cancel_order(symbol="ETH", cloid=str(result.order.cloid))
    assert refused.value.code == "order_not_open"
    assert account.order_by_cloid(symbol="ETH", cloid=new_cloid()) is None


def test_metadata_and_marks(account: PaperAdapter, market: dict[str, Any]) -> None:
    symbols = {s.name: s for s in account.symbols()}
    assert set(symbols) == {"BTC", "ETH", "SOL", "ARB", "DOGE", "kPEPE"}
    assert symbols["BTC"].price_max_decimals == 1
    assert symbols["BTC"].min_notional == D(10)
    assert account.mark_prices()["ETH"] == market["ETH"].mark_price
