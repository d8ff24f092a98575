"""Orders: creation (with its pre-trade checks and outbox row) and cancellation."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.selectors import agent_wallet_for_trading, user_trading_block_reason
from accounts.services import audit_log_record
from config.errors import Conflict, DomainError, NotFound, ValidationFailed
from trading import live
from trading.marketdata import price_get
from trading.models import (
    OPEN_STATUSES,
    Order,
    OrderEvent,
    OrderEventKind,
    OrderOutbox,
    OrderSide,
    OrderStatus,
    OrderType,
    OutboxKind,
    Symbol,
    TimeInForce,
)
from trading.rounding import price_problem, price_round, size_problem, size_round
from trading.services.risk import (
    ProposedOrder,
    RiskLimitExceeded,
    risk_breach_record,
    risk_check_order,
    risk_limits_for,
)
from trading.services.state import VenueNews, order_settle
from trading.stores import setting

if TYPE_CHECKING:
    from accounts.models import AgentWallet, User
    from copytrade.models import CopyStrategy, Trader

ZERO = Decimal(0)


@dataclass(frozen=True)
class OrderCreateResult:
    order: Order
    created: bool  # False: an earlier request with the same Idempotency-Key made it


def _decimal(value: Any, field: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed("Enter a number.", field=field, code="invalid_number") from exc
    if not result.is_finite():
        raise ValidationFailed("Enter a finite number.", field=field, code="invalid_number")
    return result


def _fingerprint(values: dict[str, Any]) -> str:
    payload = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def reference_price(symbol: Symbol, side: str) -> Decimal | None:
    """The price a market order would trade near: the ask for a buy, the bid for a sell, else
    the last price, from the latest published market data (trading.marketdata)."""
    snapshot = price_get(symbol.venue, symbol.name)
    if snapshot is None:
        return None
    if side == OrderSide.BUY and snapshot.ask:
        return snapshot.ask
    if side == OrderSide.SELL and snapshot.bid:
        return snapshot.bid
    return snapshot.mark or snapshot.price


def _resolve_wallet(
    user: User, agent_wallet_id: uuid.UUID | str | None, venue: str | None
) -> AgentWallet:
    try:
        return agent_wallet_for_trading(user=user, agent_wallet_id=agent_wallet_id, exchange=venue)
    except DomainError as exc:
        # The API answers 400 with the field, like every other refusal of an order's input.
        raise ValidationFailed(
            exc.message, code=exc.code, fields=exc.fields or {"agent_wallet": [exc.message]}
        ) from exc


def _resolve_symbol(venue: str, name: str) -> Symbol:
    symbol = Symbol.objects.filter(venue=venue, name=name).first()
    if symbol is None:
        raise ValidationFailed(
            f"{name} is not traded on {venue}.", field="symbol", code="unknown_symbol"
        )
    if not symbol.is_active:
        raise ValidationFailed(
            f"{name} on {venue} is {symbol.status}: no new orders.",
            field="symbol",
            code="symbol_inactive",
        )
    return symbol


def order_create(
    *,
    user: User,
    symbol: str,
    side: str,
    quantity: Decimal | str,
    order_type: str = OrderType.MARKET,
    price: Decimal | str | None = None,
    trigger_price: Decimal | str | None = None,
    time_in_force: str | None = None,
    reduce_only: bool = False,
    leverage: Decimal | str | int | None = None,
    agent_wallet_id: uuid.UUID | str | None = None,
    venue: str | None = None,
    strategy: CopyStrategy | None = None,
    source_trader: Trader | None = None,
    source_event_id: str | None = None,
    round_to_venue: bool = False,
    idempotency_key: str | None = None,
    metadata: dict[str, Any] | None = None,
    actor: User | None = None,
    request: HttpRequest | None = None,
) -> OrderCreateResult:
    """Check an order, write it with its outbox row, and submit it once the transaction commits.

    Customer orders (``round_to_venue=False``) are refused when a price or size breaks the
    venue's tick/lot rules; copy-engine orders (``round_to_venue=True``) are rounded instead
    (size down to the lot, price to the nearest valid tick). Every refusal happens before
    anything is written. A risk-limit refusal writes its risk event and nothing else.
    """
    values = {
        "symbol": symbol,
        "side": side,
        "quantity": str(quantity),
        "order_type": order_type,
        "price": str(price or ""),
        "trigger_price": str(trigger_price or ""),
        "time_in_force": time_in_force or "",
        "reduce_only": bool(reduce_only),
        "leverage": str(leverage or ""),
        "agent_wallet": str(agent_wallet_id or ""),
        "venue": venue or "",
        "strategy": str(strategy.pk if strategy else ""),
    }
    fingerprint = _fingerprint(values)
    if idempotency_key:
        idempotency_key = idempotency_key.strip()
        if not 1 <= len(idempotency_key) <= 255:
            raise ValidationFailed(
                "An Idempotency-Key has 1 to 255 characters.", field="idempotency_key"
            )
        earlier = Order.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if earlier is not None:
            return _replay(earlier, fingerprint)

    # ---- input, in the order a person would fix it; nothing is written before all pass
    block = user_trading_block_reason(user=user)
    if block:
        raise ValidationFailed(
            f"Trading is not allowed: {block}.", field="account", code="account_cannot_trade"
        )
    wallet = _resolve_wallet(user, agent_wallet_id, venue)
    market = _resolve_symbol(wallet.exchange, symbol)
    if side not in OrderSide.values:
        raise ValidationFailed("Side is buy or sell.", field="side", code="invalid_choice")
    if order_type not in OrderType.values:
        raise ValidationFailed(
            f"Order type is one of {', '.join(OrderType.values)}.",
            field="order_type",
            code="invalid_choice",
        )
    qty = _decimal(quantity, "quantity")
    if qty is None or qty <= 0:
        raise ValidationFailed(
            "Quantity must be greater than zero.", field="quantity", code="quantity_not_positive"
        )
    limit_price = _decimal(price, "price")
    stop_price = _decimal(trigger_price, "trigger_price")
    lev = _decimal(leverage, "leverage")
    tif = time_in_force or (
        TimeInForce.IOC if order_type in (OrderType.MARKET, OrderType.STOP) else TimeInForce.GTC
    )
    if tif not in TimeInForce.values:
        raise ValidationFailed(
            f"Time in force is one of {', '.join(TimeInForce.values)}.",
            field="time_in_force",
            code="invalid_choice",
        )
    if order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT):
        if limit_price is None:
            raise ValidationFailed("A limit order needs a price.", field="price", code="required")
    elif limit_price is not None:
        raise ValidationFailed(
            "A market order takes no price.", field="price", code="price_not_allowed"
        )
    if order_type == OrderType.MARKET and tif != TimeInForce.IOC:
        raise ValidationFailed(
            "A market order is immediate-or-cancel.", field="time_in_force", code="invalid_choice"
        )
    if order_type in (OrderType.STOP, OrderType.STOP_LIMIT) and (
        stop_price is None or stop_price <= 0
    ):
        raise ValidationFailed(
            "A stop order needs a positive trigger price.", field="trigger_price", code="required"
        )

    rules = market.price_rules
    if round_to_venue:
        qty = size_round(qty, market.size_rules)
        if limit_price is not None and limit_price > 0:
            limit_price = price_round(limit_price, rules)
        if stop_price is not None:
            stop_price = price_round(stop_price, rules)
    for field_name, value in (("price", limit_price), ("trigger_price", stop_price)):
        if value is not None:
            problem = price_problem(value, rules)
            if problem:
                raise ValidationFailed(problem, field=field_name, code="price_off_tick")

    check_price = limit_price or reference_price(market, side)
    size_issue = size_problem(qty, check_price, market.size_rules)
    if size_issue is not None:
        code, message = size_issue
        raise ValidationFailed(message, field="quantity", code=code)
    if market.max_size is not None and qty > market.max_size:
        raise ValidationFailed(
            f"Quantity is above the venue maximum of {market.max_size.normalize()}.",
            field="quantity",
            code="size_above_maximum",
        )
    if check_price is not None and not reduce_only and qty * check_price < wallet.min_order_usd:
        raise ValidationFailed(
            f"Order value is below this wallet's minimum of "
            f"{wallet.min_order_usd.normalize()} USD.",
            field="quantity",
            code="below_wallet_minimum",
        )
    if lev is not None:
        cap = min(Decimal(market.max_leverage), Decimal(wallet.max_leverage))
        if lev <= 0 or lev > cap:
            raise ValidationFailed(
                f"Leverage must be between 1 and {cap.normalize()}x for "
                f"{market.name} with this wallet.",
                field="leverage",
                code="leverage_above_limit",
            )
        if lev != lev.to_integral_value():
            raise ValidationFailed(
                "Leverage is a whole number.", field="leverage", code="invalid_number"
            )
    if strategy is not None and strategy.user_id != user.pk:
        raise NotFound("Strategy not found.", field="strategy")

    proposed = ProposedOrder(
        user=user,
        agent_wallet=wallet,
        symbol=market,
        strategy=strategy,
        side=side,
        quantity=qty,
        reference_price=check_price,
        leverage=lev,
        reduce_only=reduce_only,
    )
    order = Order(
        user=user,
        agent_wallet=wallet,
        strategy=strategy,
        symbol=market,
        exchange=market.venue,
        side=side,
        order_type=order_type,
        time_in_force=tif,
        reduce_only=reduce_only,
        leverage=lev,
        quantity=qty,
        price=limit_price,
        trigger_price=stop_price,
        idempotency_key=idempotency_key or None,
        request_fingerprint=fingerprint if idempotency_key else "",
        is_copy_trade=source_trader is not None or strategy is not None,
        source_trader=source_trader,
        source_event_id=source_event_id,
        metadata=metadata or {},
    )
    breach = None
    limits = risk_limits_for(user=user, strategy=strategy)
    try:
        with transaction.atomic():
            if limits:
                # One order-creating transaction per user at a time: the orders-per-hour and
                # position limits then count what is really there.
                with connection.cursor() as cursor:
                    cursor.execute(
                        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                        [f"orders:{user.pk}"],
                    )
                breach = risk_check_order(proposed=proposed, limits=limits)
            if breach is not None:
                risk_breach_record(breach=breach, proposed=proposed)
            else:
                order.save(force_insert=True)
                OrderOutbox.objects.create(
                    order=order, kind=OutboxKind.SUBMIT, available_at=order.created_at
                )
                # The live update is queued before the dispatch so that, after the commit,
                # "pending" is published before the submission (which may run in this very
                # process, eagerly) publishes what the venue made of the order.
                live.order_changed(order)
                order_id = order.pk
                transaction.on_commit(lambda: order_submit_dispatch(order_id))
                if actor is not None:
                    audit_log_record(
                        action="order_create",
                        actor=actor,
                        resource_type="order",
                        resource_id=order.pk,
                        request=request,
                        new_values={**values, "cloid": order.cloid},
                    )
    except IntegrityError:
        if idempotency_key:
            # A concurrent request with the same key won the race: answer with its order.
            earlier = Order.objects.filter(user=user, idempotency_key=idempotency_key).first()
            if earlier is not None:
                return _replay(earlier, fingerprint)
        raise
    if breach is not None:
        raise RiskLimitExceeded(
            breach.reason, field=f"risk_limit.{breach.metric}", limit_scope=breach.scope
        )
    return OrderCreateResult(order=order, created=True)


def _replay(earlier: Order, fingerprint: str) -> OrderCreateResult:
    if earlier.request_fingerprint and earlier.request_fingerprint != fingerprint:
        raise Conflict(
            "This Idempotency-Key was used with a different order.",
            code="idempotency_key_reused",
            field="idempotency_key",
        )
    return OrderCreateResult(order=earlier, created=False)


def order_submit_dispatch(order_id: uuid.UUID) -> None:
    """Hand the order to the execution queue (runs after the creating transaction commits)."""
    from trading.tasks import dispatch, order_submit_task

    dispatch(order_submit_task, str(order_id))


def order_cancel(
    *, order: Order, actor: User | None = None, request: HttpRequest | None = None, reason: str = ""
) -> Order:
    """Cancel an order. Not yet sent: cancelled at once (its outbox row is closed, and a
    submission already claimed by a worker is refused). At the venue: a cancel request is
    queued (outbox) and the order turns ``cancelled`` when the venue confirms."""
    now = timezone.now()
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.is_final:
            raise Conflict(
                f"The order is already {locked.status}.", code="order_final", field="status"
            )
        if locked.status == OrderStatus.PENDING:
            submit = (
                OrderOutbox.objects.select_for_update()
                .filter(order=locked, kind=OutboxKind.SUBMIT, done_at__isnull=True)
                .first()
            )
            if submit is not None and submit.attempts > 0:
                # A worker has tried to send it: only the venue can say whether it is there.
                raise Conflict(
                    "The order is being sent to the venue; cancel it again in a moment.",
                    code="order_in_flight",
                    field="status",
                )
            if submit is not None:
                submit.done_at = now
                submit.last_error = "cancelled before submission"
                submit.save(update_fields=["done_at", "last_error"])
            order_settle(locked, VenueNews(ended=OrderStatus.CANCELLED), now=now)
        elif locked.status in OPEN_STATUSES:
            if locked.cancel_requested_at is None:
                locked.cancel_requested_at = now
                locked.save(update_fields=["cancel_requested_at", "updated_at"])
            OrderOutbox.objects.get_or_create(
                order=locked,
                kind=OutboxKind.CANCEL,
                done_at__isnull=True,
                defaults={"available_at": now},
            )
            order_id = locked.pk
            transaction.on_commit(lambda: order_cancel_dispatch(order_id))
        OrderEvent.objects.create(
            order=locked,
            kind=OrderEventKind.CANCEL_REQUESTED,
            details={"reason": reason, "actor": str(actor.pk) if actor else "system"},
        )
        if actor is not None:
            audit_log_record(
                action="order_cancel",
                actor=actor,
                resource_type="order",
                resource_id=locked.pk,
                request=request,
                old_values={"status": order.status},
                new_values={"status": locked.status, "reason": reason},
            )
    return locked


def order_cancel_dispatch(order_id: uuid.UUID) -> None:
    from trading.tasks import dispatch, order_cancel_task

    dispatch(order_cancel_task, str(order_id))


def stale_pending_cutoff() -> timedelta:
    return timedelta(seconds=int(setting("OUTBOX_SWEEP_AFTER_SECONDS")))
