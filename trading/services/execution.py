"""Execution: getting orders to the venue exactly once, and hearing back.

The submit protocol (``order_submit``), one outbox row per order:

1. **Claim** (one ``UPDATE ... RETURNING`` statement, its own transaction): lock the due outbox
   row (``FOR UPDATE SKIP LOCKED``) unless another worker's lease is still running, count an
   attempt and take a lease (``claimed_until``). Two workers therefore never talk to the venue
   about one order at once.
2. **Ask before re-sending**: from the second attempt on, a previous attempt may have reached
   the venue and died before recording the answer, so the venue is asked about the ``cloid``
   first. Found: its answer is recorded and nothing is sent. Not found: it never arrived.
   (The lease outlasts the adapter's timeout, so by the time a lease expires any request of the
   previous holder has either reached the venue or never will.)
3. **Send** with no database transaction open.
4. **Record** (own transaction): fills first, then the venue's order state, then close the row.

Failures: a venue refusal ends the order ``failed`` with the venue's code and message; a 429 or
5xx or timeout leaves the row claimed-then-released with a backoff, and the Celery task retries;
after ``ORDER_SUBMIT_MAX_ATTEMPTS`` claims the order fails with ``submit_exhausted`` (after a last
lookup). A worker killed anywhere leaves its lease to expire; ``outbox_sweep`` (beat) then
dispatches the row again.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.db import connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from trading.exchanges import (
    OrderRequest,
    RateLimited,
    VenueAdapter,
    VenueError,
    VenueFill,
    VenueOrder,
    VenueOrderStatus,
    VenueRejected,
    VenueUnavailable,
    adapter_for_wallet,
)
from trading.models import (
    Order,
    OrderEvent,
    OrderEventKind,
    OrderOutbox,
    OrderStatus,
    OrderType,
    OutboxKind,
    Symbol,
)
from trading.rounding import price_round
from trading.services.fills import apply_fills_locked, fills_apply
from trading.services.orders import reference_price
from trading.services.state import VenueNews, order_settle
from trading.stores import setting

if TYPE_CHECKING:
    from accounts.models import AgentWallet

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 60.0


@dataclass(frozen=True)
class SubmitOutcome:
    status: str  # "done" | "retry" | "skipped"
    detail: str = ""
    retry_in: float | None = None


def backoff_seconds(attempt: int, hint: float | None = None) -> float:
    if hint is not None and hint > 0:
        return min(hint, BACKOFF_MAX_SECONDS)
    return min(BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0), BACKOFF_MAX_SECONDS)


def venue_news(found: VenueOrder) -> VenueNews:
    """A venue's view of an order, as news for the state machine."""
    ended = None
    if found.status == VenueOrderStatus.CANCELLED:
        ended = OrderStatus.CANCELLED
    elif found.status == VenueOrderStatus.REJECTED:
        ended = OrderStatus.FAILED
    return VenueNews(
        acknowledged=found.status != VenueOrderStatus.REJECTED,
        filled=found.filled_size if found.filled_size > 0 else None,
        average_price=found.average_price if found.filled_size > 0 else None,
        ended=ended,
        venue_order_id=found.venue_order_id or None,
        venue_status=str(found.status),
        error_code=(found.error_code or "rejected") if ended == OrderStatus.FAILED else None,
        error_message=found.error or None,
    )


def _order_request(order: Order) -> OrderRequest:
    price = order.price
    is_market = order.order_type in (OrderType.MARKET, OrderType.STOP)
    if price is None:
        # A market order goes out as an IOC limit at the touch plus the allowed slippage
        # (what Hyperliquid's own SDK does), rounded outward to a valid tick.
        reference = reference_price(order.symbol, order.side)
        if reference is None:
            raise VenueRejected(f"No market price for {order.symbol.name}.", code="no_market_price")
        slippage = Decimal(int(setting("MARKET_ORDER_SLIPPAGE_BPS"))) / Decimal(10_000)
        if order.side == "buy":
            price = price_round(reference * (1 + slippage), order.symbol.price_rules, "up")
        else:
            price = price_round(reference * (1 - slippage), order.symbol.price_rules, "down")
    return OrderRequest(
        cloid=order.cloid,
        symbol=order.symbol.address,
        side="buy" if order.side == "buy" else "sell",
        size=order.quantity,
        limit_price=price,
        time_in_force=order.time_in_force,
        reduce_only=order.reduce_only,
        trigger_price=order.trigger_price,
        is_market=is_market,
        leverage=int(order.leverage) if order.leverage else None,
    )


# One statement, so one implicit transaction: lock the due row (skipping one another worker
# holds), count the attempt and take the lease -- and read the order with what it points at
# (symbol, agent wallet, user) in the same round trip. Cheaper than SELECT ... FOR UPDATE +
# UPDATE in an explicit transaction and a SELECT after it, and just as exclusive.
_CLAIM_SQL = """
WITH claimed AS (
    UPDATE order_outbox SET attempts = attempts + 1, claimed_until = %s, claim_token = %s
    WHERE id = (
        SELECT id FROM order_outbox
        WHERE order_id = %s AND kind = 'submit' AND done_at IS NULL
          AND (claimed_until IS NULL OR claimed_until <= %s)
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, attempts, order_id
)
SELECT claimed.id, claimed.attempts, {columns}
FROM claimed
JOIN {orders} ON {orders}.id = claimed.order_id
JOIN {symbols} ON {symbols}.id = {orders}.symbol_id
JOIN {wallets} ON {wallets}.id = {orders}.agent_wallet_id
JOIN {users} ON {users}.id = {wallets}.user_id
"""


class _RowLoader:
    """Builds model instances from a raw row's columns, with the converters the ORM applies
    (JSON, encrypted fields...), so a joined raw read yields the same objects as the ORM."""

    def __init__(self, model: type[Model]) -> None:
        table = model._meta.db_table
        self.model = model
        self.table = connection.ops.quote_name(table)
        self.fields = [f.attname for f in model._meta.concrete_fields]
        self.columns = [
            f"{self.table}.{connection.ops.quote_name(str(f.column))}"
            for f in model._meta.concrete_fields
        ]
        cols = [f.get_col(table) for f in model._meta.concrete_fields]
        self.converters = [
            (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
            for col in cols
        ]

    def load(self, values: Sequence[Any]) -> Any:
        converted = []
        for value, (col, converters) in zip(values, self.converters, strict=True):
            for convert in converters:
                value = convert(value, col, connection)
            converted.append(value)
        return self.model.from_db(connection.alias, self.fields, converted)


@functools.cache
def _claim_plan() -> tuple[str, list[_RowLoader]]:
    wallet_model = Order._meta.get_field("agent_wallet").related_model
    loaders = [
        _RowLoader(Order),
        _RowLoader(Symbol),
        _RowLoader(wallet_model),
        _RowLoader(wallet_model._meta.get_field("user").related_model),  # type: ignore[arg-type]
    ]
    sql = _CLAIM_SQL.format(
        columns=", ".join(column for loader in loaders for column in loader.columns),
        orders=loaders[0].table,
        symbols=loaders[1].table,
        wallets=loaders[2].table,
        users=loaders[3].table,
    )
    return sql, loaders


def _claim(order_id: uuid.UUID | str) -> tuple[OrderOutbox | None, str]:
    now = timezone.now()
    lease = timedelta(seconds=float(setting("ORDER_SUBMIT_LEASE_SECONDS")))
    token = uuid.uuid4()
    sql, loaders = _claim_plan()
    with connection.cursor() as cursor:
        cursor.execute(sql, [now + lease, token, str(order_id), now])
        claimed = cursor.fetchone()
    if claimed is None:
        held = OrderOutbox.objects.filter(
            order_id=order_id, kind=OutboxKind.SUBMIT, done_at__isnull=True, claimed_until__gt=now
        ).exists()
        if held:
            return None, "another worker holds the lease"
        return None, "nothing to submit (done, or locked by another worker)"
    instances, start = [], 2
    for loader in loaders:
        instances.append(loader.load(claimed[start : start + len(loader.fields)]))
        start += len(loader.fields)
    order, symbol, wallet, user = instances
    wallet.user = user
    order.symbol, order.agent_wallet, order.user = symbol, wallet, user
    outbox = OrderOutbox(
        pk=claimed[0],
        order=order,
        kind=OutboxKind.SUBMIT,
        attempts=claimed[1],
        claim_token=token,
        claimed_until=now + lease,
    )
    if order.status != OrderStatus.PENDING:
        OrderOutbox.objects.filter(pk=outbox.pk).update(done_at=now)
        return None, f"order is already {order.status}"
    return outbox, ""


def _release(outbox: OrderOutbox, *, delay: float, error: str, kind: OrderEventKind) -> None:
    """Give the row back for a later attempt (the lease ends when the backoff does)."""
    available = timezone.now() + timedelta(seconds=delay)
    with transaction.atomic():
        OrderOutbox.objects.filter(pk=outbox.pk, claim_token=outbox.claim_token).update(
            claimed_until=available, available_at=available, last_error=error[:2000]
        )
        OrderEvent.objects.create(
            order_id=outbox.order_id,
            kind=kind,
            details={"attempt": outbox.attempts, "error": error[:500], "retry_in": delay},
        )


def _finish(
    outbox: OrderOutbox,
    *,
    found: VenueOrder | None = None,
    fills: list[VenueFill] | None = None,
    rejected: VenueRejected | None = None,
    event: OrderEventKind | None = None,
    request: OrderRequest | None = None,
) -> None:
    """Record the venue's answer and close the row, in one transaction."""
    now = timezone.now()
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=outbox.order_id)
        # The order row is re-read under the lock; what it points at (symbol, wallet, user)
        # cannot change and was loaded with the claim.
        claimed = outbox.order
        order.symbol, order.agent_wallet, order.user = (
            claimed.symbol,
            claimed.agent_wallet,
            claimed.agent_wallet.user,
        )
        if found is not None and found.status != VenueOrderStatus.REJECTED:
            # The acknowledgement first, with what was sent, in the UPDATE that moves the order
            # to submitted; then the fills; then whatever else the venue said (ended, ...).
            order_settle(
                order,
                VenueNews(
                    acknowledged=True,
                    venue_order_id=found.venue_order_id or None,
                    venue_status=str(found.status),
                ),
                now=now,
                also={"submitted_price": request.limit_price} if request else None,
            )
        if fills:
            apply_fills_locked(agent_wallet=order.agent_wallet, fills=fills, orders=[order])
        if rejected is not None:
            order_settle(
                order,
                VenueNews(
                    ended=OrderStatus.FAILED,
                    error_code=rejected.code,
                    error_message=rejected.message,
                ),
                now=now,
                event=OrderEventKind.VENUE_REJECT,
                details={
                    "code": rejected.code,
                    "message": rejected.message,
                    "attempt": outbox.attempts,
                },
            )
        elif found is not None:
            order_settle(
                order,
                venue_news(found),
                now=now,
                event=event,
                details={"attempt": outbox.attempts} if event else None,
            )
        OrderOutbox.objects.filter(pk=outbox.pk).update(done_at=now)


def venue_fills_for_order(
    adapter: VenueAdapter, order: Order, found: VenueOrder
) -> list[VenueFill]:
    """The fills behind a venue answer that only sums them (Hyperliquid's "filled")."""
    since = int(order.created_at.timestamp() * 1000) - 60_000
    return [
        f
        for f in adapter.fills_since(since_ms=since)
        if f.cloid == order.cloid
        or (found.venue_order_id and f.venue_order_id == found.venue_order_id)
    ]


def order_submit(*, order_id: uuid.UUID | str) -> SubmitOutcome:
    outbox, reason = _claim(order_id)
    if outbox is None:
        return SubmitOutcome("skipped", reason)
    try:
        adapter = adapter_for_wallet(outbox.order.agent_wallet)
    except VenueRejected as exc:
        _finish(outbox, rejected=exc)
        return SubmitOutcome("done", f"failed: {exc.code}")
    try:
        return _submit(outbox, adapter)
    finally:
        adapter.close()


def _submit(outbox: OrderOutbox, adapter: VenueAdapter) -> SubmitOutcome:
    order = outbox.order
    attempt = outbox.attempts
    if attempt > 1:
        try:
            found = adapter.order_by_cloid(symbol=order.symbol.address, cloid=order.cloid)
        except VenueError as exc:
            retry_in = backoff_seconds(attempt, getattr(exc, "retry_after", None))
            _release(
                outbox, delay=retry_in, error=f"lookup: {exc}", kind=OrderEventKind.VENUE_ERROR
            )
            return SubmitOutcome("retry", f"lookup failed: {exc}", retry_in)
        if found is not None:
            fills = venue_fills_for_order(adapter, order, found) if found.filled_size > 0 else []
            _finish(outbox, found=found, fills=fills, event=OrderEventKind.LOOKUP)
            return SubmitOutcome("done", f"found at the venue: {found.status}")
        if attempt > int(setting("ORDER_SUBMIT_MAX_ATTEMPTS")):
            _finish(
                outbox,
                rejected=VenueRejected(
                    f"Gave up after {attempt - 1} attempts; the venue never received the order.",
                    code="submit_exhausted",
                ),
            )
            return SubmitOutcome("done", "failed: submit_exhausted")

    try:
        request = _order_request(order)
        result = adapter.place_order(request)
    except VenueRejected as exc:
        _finish(outbox, rejected=exc)
        return SubmitOutcome("done", f"failed: {exc.code}")
    except (RateLimited, VenueUnavailable) as exc:
        retry_in = backoff_seconds(attempt, getattr(exc, "retry_after", None))
        _release(
            outbox, delay=retry_in, error=f"{exc.code}: {exc}", kind=OrderEventKind.VENUE_ERROR
        )
        return SubmitOutcome("retry", f"{exc.code}: {exc}", retry_in)

    fills = result.fills
    if not fills and result.order.filled_size > 0:
        try:
            fills = venue_fills_for_order(adapter, order, result.order)
        except VenueError:
            fills = []  # the fill sync (beat) picks them up later
    _finish(outbox, found=result.order, fills=fills, request=request)
    return SubmitOutcome("done", str(result.order.status))


def outbox_sweep(*, older_than_seconds: float | None = None, limit: int = 500) -> int:
    """Dispatch outbox rows left behind: due, unclaimed (or lease expired), and older than the
    threshold (a fresh row's own task is probably still on its way). Returns how many."""
    from trading.tasks import dispatch, order_cancel_task, order_submit_task

    now = timezone.now()
    age = float(
        setting("OUTBOX_SWEEP_AFTER_SECONDS") if older_than_seconds is None else older_than_seconds
    )
    due = (
        OrderOutbox.objects.filter(
            done_at__isnull=True,
            available_at__lte=now,
            created_at__lte=now - timedelta(seconds=age),
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lte=now))
        .order_by("available_at")
        .values_list("order_id", "kind")[:limit]
    )
    count = 0
    for order_id, kind in due:
        task = order_submit_task if kind == OutboxKind.SUBMIT else order_cancel_task
        dispatch(task, str(order_id))
        count += 1
    return count


def order_cancel_execute(*, order_id: uuid.UUID | str) -> SubmitOutcome:
    """Send a queued cancel to the venue and record the outcome."""
    now = timezone.now()
    lease = timedelta(seconds=float(setting("ORDER_SUBMIT_LEASE_SECONDS")))
    with transaction.atomic():
        outbox = (
            OrderOutbox.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related(
                "order", "order__symbol", "order__agent_wallet", "order__agent_wallet__user"
            )
            .filter(order_id=order_id, kind=OutboxKind.CANCEL, done_at__isnull=True)
            .first()
        )
        if outbox is None or (outbox.claimed_until and outbox.claimed_until > now):
            return SubmitOutcome("skipped", "nothing to cancel or already claimed")
        outbox.attempts += 1
        outbox.claimed_until = now + lease
        outbox.claim_token = uuid.uuid4()
        outbox.save(update_fields=["attempts", "claimed_until", "claim_token"])
    order = outbox.order
    if order.is_final:
        OrderOutbox.objects.filter(pk=outbox.pk).update(done_at=timezone.now())
        return SubmitOutcome("done", f"order already {order.status}")
    adapter = adapter_for_wallet(order.agent_wallet)
    try:
        adapter.cancel_order(
            symbol=order.symbol.address, cloid=order.cloid, venue_order_id=order.exchange_order_id
        )
        found = adapter.order_by_cloid(symbol=order.symbol.address, cloid=order.cloid)
    except VenueRejected:
        # Not open any more (filled or cancelled meanwhile): the venue's record says which.
        try:
            found = adapter.order_by_cloid(symbol=order.symbol.address, cloid=order.cloid)
        except VenueError as exc:
            retry_in = backoff_seconds(outbox.attempts)
            _release(outbox, delay=retry_in, error=str(exc), kind=OrderEventKind.VENUE_ERROR)
            return SubmitOutcome("retry", str(exc), retry_in)
    except (RateLimited, VenueUnavailable) as exc:
        retry_in = backoff_seconds(outbox.attempts, getattr(exc, "retry_after", None))
        _release(outbox, delay=retry_in, error=str(exc), kind=OrderEventKind.VENUE_ERROR)
        return SubmitOutcome("retry", str(exc), retry_in)
    finally:
        adapter.close()
    fills = venue_fills_for_order(adapter, order, found) if found and found.filled_size > 0 else []
    if found is None:
        found = VenueOrder(
            cloid=order.cloid,
            venue_order_id=order.exchange_order_id or "",
            symbol=order.symbol.address,
            side="buy" if order.side == "buy" else "sell",
            status=VenueOrderStatus.CANCELLED,
            size=order.quantity,
        )
    _finish(outbox, found=found, fills=fills)
    return SubmitOutcome("done", str(found.status))


def wallet_fills_sync(*, agent_wallet: AgentWallet, lookback_ms: int = 60_000) -> int:
    """Pull the wallet's fills since the newest one Tandem holds and apply them (how resting
    orders that fill later reach Tandem). Returns the number of new fills."""
    from trading.models import Fill

    newest = (
        Fill.objects.filter(agent_wallet=agent_wallet)
        .order_by("-time_ms")
        .values_list("time_ms", flat=True)
        .first()
    )
    since = (
        (newest - lookback_ms)
        if newest
        else int(agent_wallet.created_at.timestamp() * 1000) - lookback_ms
    )
    adapter = adapter_for_wallet(agent_wallet)
    try:
        fills = adapter.fills_since(since_ms=max(since, 0))
    finally:
        adapter.close()
    if not fills:
        return 0
    return len(fills_apply(agent_wallet=agent_wallet, fills=fills).created)
