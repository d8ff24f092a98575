"""order_create / order_cancel: input checks (nothing written on a refusal), idempotency keys,
copy-engine rounding, risk limits (event written, order not, loss limits pause copying)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import AgentWalletStatus, UserStatus
from config.errors import Conflict, ValidationFailed
from copytrade.models import CopyStrategy, StrategyStatus
from trading.exchanges import VenueFill
from trading.models import (
    Fill,
    Order,
    OrderEvent,
    OrderOutbox,
    OrderStatus,
    Position,
    RiskEvent,
    RiskEventType,
    SymbolStatus,
)
from trading.services import (
    RiskLimitExceeded,
    fills_apply,
    order_cancel,
    order_create,
    risk_limit_set,
)

D = Decimal
pytestmark = pytest.mark.django_db


def _counts() -> tuple[int, ...]:
    return (
        Order.objects.count(),
        OrderOutbox.objects.count(),
        OrderEvent.objects.count(),
        RiskEvent.objects.count(),
        Fill.objects.count(),
        Position.objects.count(),
    )


def _create(user: Any, **kwargs: Any) -> Order:
    values: dict[str, Any] = {"symbol": "ETH", "side": "buy", "quantity": D(1)}
    values.update(kwargs)
    return order_create(user=user, **values).order


@pytest.fixture
def no_dispatch(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Orders stay pending: the submit task is recorded, not run."""
    sent: list[str] = []
    monkeypatch.setattr(
        "trading.services.orders.order_submit_dispatch", lambda order_id: sent.append(str(order_id))
    )
    return sent


@pytest.mark.usefixtures("paper_symbols", "market")
class TestBadInputWritesNothing:
    @pytest.mark.parametrize(
        ("kwargs", "field", "code"),
        [
            ({"quantity": D(0)}, "quantity", "quantity_not_positive"),
            ({"quantity": D(-1)}, "quantity", "quantity_not_positive"),
            ({"quantity": "abc"}, "quantity", "invalid_number"),
            ({"order_type": "limit", "price": D("2500.55")}, "price", "price_off_tick"),
            ({"order_type": "limit", "price": D("2500.123")}, "price", "price_off_tick"),
            ({"order_type": "limit"}, "price", "required"),
            ({"price": D(2500)}, "price", "price_not_allowed"),
            ({"quantity": D("0.00001")}, "quantity", "size_off_lot"),
            ({"quantity": D("0.001")}, "quantity", "notional_below_minimum"),
            ({"symbol": "NOPE"}, "symbol", "unknown_symbol"),
            ({"leverage": 26}, "leverage", "leverage_above_limit"),
            ({"leverage": 0}, "leverage", "leverage_above_limit"),
            ({"side": "hold"}, "side", "invalid_choice"),
            ({"time_in_force": "Gtc"}, "time_in_force", "invalid_choice"),
        ],
    )
    def test_refused_with_the_field(
        self, trader: Any, no_dispatch: list[str], kwargs: dict[str, Any], field: str, code: str
    ) -> None:
        trader.agent_wallets.update(max_leverage=50)
        before = _counts()
        with pytest.raises(ValidationFailed) as refused:
            _create(trader, **kwargs)
        assert refused.value.code == code
        assert field in refused.value.fields
        assert _counts() == before
        assert no_dispatch == []

    def test_inactive_symbol(self, trader: Any, paper_symbols: dict[str, Any]) -> None:
        paper_symbols["ETH"].status = SymbolStatus.INACTIVE
        paper_symbols["ETH"].save()
        before = _counts()
        with pytest.raises(ValidationFailed) as refused:
            _create(trader)
        assert (refused.value.code, list(refused.value.fields)) == ("symbol_inactive", ["symbol"])
        assert _counts() == before

    def test_suspended_account(self, trader: Any) -> None:
        trader.status = UserStatus.SUSPENDED
        trader.save()
        before = _counts()
        with pytest.raises(ValidationFailed) as refused:
            _create(trader)
        assert "account" in refused.value.fields
        assert _counts() == before

    @pytest.mark.parametrize(
        "status",
        [AgentWalletStatus.INACTIVE, AgentWalletStatus.SUSPENDED, AgentWalletStatus.PENDING],
    )
    def test_agent_wallet_that_cannot_trade(self, trader: Any, wallet: Any, status: str) -> None:
        wallet.status = status
        wallet.save()
        before = _counts()
        with pytest.raises(ValidationFailed) as refused:
            _create(trader, agent_wallet_id=wallet.pk)
        assert "agent_wallet" in refused.value.fields
        assert _counts() == before

    def test_below_the_wallets_minimum(self, trader: Any, wallet: Any) -> None:
        wallet.min_order_usd = D(5000)
        wallet.save()
        with pytest.raises(ValidationFailed) as refused:
            _create(trader)
        assert refused.value.code == "below_wallet_minimum"


@pytest.mark.usefixtures("paper_symbols", "market")
class TestCreation:
    def test_order_and_outbox_in_one_transaction_submitted_after_commit(
        self,
        trader: Any,
        no_dispatch: list[str],
        django_capture_on_commit_callbacks: Callable[..., Any],
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True) as callbacks:
            order = _create(trader, order_type="limit", price=D(2400), leverage=5)
        # One dispatch of the outbox plus one flush of the live order stream, both after commit.
        assert len(callbacks) == 2
        assert no_dispatch == [str(order.pk)]
        assert order.status == OrderStatus.PENDING
        assert order.cloid.startswith("0x")
        assert len(order.cloid) == 34
        outbox = OrderOutbox.objects.get(order=order)
        assert (outbox.kind, outbox.attempts, outbox.done_at) == ("submit", 0, None)
        assert order.time_in_force == "Gtc"
        assert list(order.events.values_list("kind", flat=True)) == ["created"]

    def test_market_orders_default_to_ioc(self, trader: Any, no_dispatch: list[str]) -> None:
        order = _create(trader)
        assert (order.order_type, order.time_in_force, order.price) == ("market", "Ioc", None)

    def test_repeated_idempotency_key_returns_the_first_order(
        self,
        trader: Any,
        no_dispatch: list[str],
        django_capture_on_commit_callbacks: Callable[..., Any],
    ) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            first = order_create(
                user=trader, symbol="ETH", side="buy", quantity=D(1), idempotency_key="abc-1"
            )
        with django_capture_on_commit_callbacks(execute=True):
            again = order_create(
                user=trader, symbol="ETH", side="buy", quantity=D(1), idempotency_key="abc-1"
            )
        assert first.created
        assert not again.created
        assert again.order.pk == first.order.pk
        assert Order.objects.count() == 1
        assert len(no_dispatch) == 1
        with pytest.raises(Conflict) as conflict:
            order_create(
                user=trader, symbol="ETH", side="buy", quantity=D(2), idempotency_key="abc-1"
            )
        assert conflict.value.code == "idempotency_key_reused"

    def test_copy_engine_orders_are_rounded_not_refused(
        self, trader: Any, no_dispatch: list[str]
    ) -> None:
        order = order_create(
            user=trader,
            symbol="ETH",
            side="buy",
            quantity=D("0.123456789"),
            order_type="limit",
            price=D("2500.4567"),
            round_to_venue=True,
        ).order
        assert order.quantity == D("0.1234")  # 4 size decimals, rounded down
        assert order.price == D("2500.5")  # 5 significant figures
        with pytest.raises(ValidationFailed):
            order_create(user=trader, symbol="ETH", side="buy", quantity=D("0.123456789"))


@pytest.mark.usefixtures("paper_symbols", "market")
class TestRiskLimits:
    def test_leverage_limit_writes_a_risk_event_and_no_order(
        self, trader: Any, no_dispatch: list[str]
    ) -> None:
        risk_limit_set(user=trader, max_leverage=D(3))
        before = _counts()
        with pytest.raises(RiskLimitExceeded) as refused:
            _create(trader, leverage=5)
        assert "risk_limit.leverage" in refused.value.fields
        event = RiskEvent.objects.get()
        assert (event.event_type, event.metric_name, event.metric_value, event.threshold_value) == (
            RiskEventType.LIMIT_BREACH,
            "leverage",
            D(5),
            D(3),
        )
        assert event.action_taken == "order_rejected"
        assert Order.objects.count() == before[0]
        assert no_dispatch == []

    def test_orders_per_hour(self, trader: Any, no_dispatch: list[str]) -> None:
        risk_limit_set(user=trader, max_orders_per_hour=2)
        _create(trader)
        _create(trader)
        with pytest.raises(RiskLimitExceeded):
            _create(trader)
        assert Order.objects.count() == 2
        Order.objects.update(created_at=timezone.now() - timedelta(hours=2))
        _create(trader)

    def test_position_value_but_reducing_is_always_allowed(
        self, trader: Any, wallet: Any, no_dispatch: list[str]
    ) -> None:
        risk_limit_set(user=trader, max_position_value=D(6000))
        _create(trader, quantity=D(2))  # 2 x ~2500 = 5000
        with pytest.raises(RiskLimitExceeded) as refused:
            _create(trader, quantity=D(3))
        assert refused.value.fields == {"risk_limit.position_value": [refused.value.message]}
        _fill(wallet, "ETH", "buy", D(2), D(2500))
        with pytest.raises(RiskLimitExceeded):
            _create(trader, quantity=D(1))  # 3 ETH would be ~7500
        _create(trader, side="sell", quantity=D(1))  # reduces: allowed

    def test_strategy_daily_loss_pauses_that_strategy(
        self, trader: Any, wallet: Any, no_dispatch: list[str]
    ) -> None:
        strategy = CopyStrategy.objects.create(user=trader, name="s", status="active")
        other = CopyStrategy.objects.create(user=trader, name="other", status="active")
        risk_limit_set(user=trader, strategy=strategy, max_daily_loss=D(100))
        opened = _create(trader, strategy=strategy, quantity=D(2))
        _fill(wallet, "ETH", "buy", D(2), D(2500), cloid=opened.cloid)
        closed = _create(trader, strategy=strategy, side="sell", quantity=D(1))
        _fill(wallet, "ETH", "sell", D(1), D(2400), cloid=closed.cloid)  # -100 - fees today
        before = Order.objects.count()
        with pytest.raises(RiskLimitExceeded) as refused:
            _create(trader, strategy=strategy)
        assert "risk_limit.daily_loss" in refused.value.fields
        assert Order.objects.count() == before
        strategy.refresh_from_db()
        other.refresh_from_db()
        assert strategy.status == StrategyStatus.PAUSED
        assert other.status == StrategyStatus.ACTIVE  # only the strategy whose limit broke
        event = RiskEvent.objects.get(event_type=RiskEventType.LIMIT_BREACH)
        assert (event.metric_name, event.metric_value, event.threshold_value) == (
            "daily_loss",
            D(101),
            D(100),
        )
        assert event.action_taken == "order_rejected_strategy_paused"
        assert event.strategy_id == strategy.pk
        _create(trader, strategy=other)  # the other strategy trades on

    def test_user_daily_loss_limit_pauses_running_strategies(
        self, trader: Any, wallet: Any, no_dispatch: list[str]
    ) -> None:
        strategy = CopyStrategy.objects.create(user=trader, name="s", status="active")
        risk_limit_set(user=trader, max_daily_loss=D(50))
        _fill(wallet, "ETH", "buy", D(2), D(2500))
        _fill(wallet, "ETH", "sell", D(1), D(2400))  # -100 realised (and fees)
        with pytest.raises(RiskLimitExceeded):
            _create(trader)
        strategy.refresh_from_db()
        assert strategy.status == StrategyStatus.PAUSED
        assert "Risk limit" in strategy.status_reason
        event = RiskEvent.objects.get(event_type=RiskEventType.LIMIT_BREACH)
        assert event.metric_name == "daily_loss"
        assert event.action_taken == "order_rejected_strategies_paused"
        assert event.severity == "critical"
        _create(trader, side="sell", quantity=D(1), reduce_only=True)  # a way out stays open

    def test_drawdown_from_the_peak(self, trader: Any, wallet: Any, no_dispatch: list[str]) -> None:
        limit = risk_limit_set(user=trader, max_drawdown=D(150))
        _fill(wallet, "ETH", "buy", D(1), D(2000))
        _fill(wallet, "ETH", "sell", D(1), D(2300))  # +300 - 1 fees: a new peak
        _create(trader)  # passes, and records the peak
        limit.refresh_from_db()
        assert limit.pnl_peak == D(299)
        _fill(wallet, "ETH", "buy", D(1), D(2300))
        _fill(wallet, "ETH", "sell", D(1), D(2150))  # -150 - 1: 151 below the peak
        with pytest.raises(RiskLimitExceeded) as refused:
            _create(trader)
        assert "risk_limit.drawdown" in refused.value.fields
        event = RiskEvent.objects.get(event_type=RiskEventType.LIMIT_BREACH)
        assert (event.metric_value, event.threshold_value) == (D(151), D(150))


_fill_counter = iter(range(1, 1_000_000))


def _fill(wallet: Any, symbol: str, side: str, size: D, price: D, cloid: str = "") -> None:
    n = next(_fill_counter)
    fills_apply(
        agent_wallet=wallet,
        fills=[
            VenueFill(
                venue_fill_id=f"t-{n}-{wallet.pk}",
                symbol=symbol,
                side=side,  # type: ignore[arg-type]
                price=price,
                size=size,
                time_ms=int(timezone.now().timestamp() * 1000) + n,
                fee=D("0.5"),
                cloid=cloid,
            )
        ],
    )


@pytest.mark.usefixtures("paper_symbols", "market")
class TestCancel:
    def test_pending_order_is_cancelled_at_once(self, trader: Any, no_dispatch: list[str]) -> None:
        order = _create(trader)
        cancelled = order_cancel(order=order, actor=trader)
        assert cancelled.status == OrderStatus.CANCELLED
        assert cancelled.cancelled_at
        assert OrderOutbox.objects.get(order=order).done_at is not None
        with pytest.raises(Conflict):
            order_cancel(order=cancelled)

    def test_pending_order_in_flight_cannot_be_cancelled_locally(
        self, trader: Any, no_dispatch: list[str]
    ) -> None:
        order = _create(trader)
        OrderOutbox.objects.filter(order=order).update(attempts=1)
        with pytest.raises(Conflict) as conflict:
            order_cancel(order=order)
        assert conflict.value.code == "order_in_flight"
