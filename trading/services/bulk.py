"""The bulk order path: thousands of orders written and submitted as one batch (copy fan-out).

``order_create`` costs a few queries per order -- fine for a person, ~20 ms an order for a
fan-out of one leader fill to ten thousand followers. The bulk path keeps every rule of the
single path and the crash-safety protocol, and changes only how often it talks to the stores:

``orders_create_bulk`` (inside the caller's transaction, so the engine's decisions commit with
their orders):

* validates once per symbol (listed and active, its rules, the reference price per side),
  once per user and wallet (one query each: account status and KYC, wallet active with trade
  permission), then each order in memory (rounding to the venue when asked, tick, lot, venue
  minimum and maximum, the wallet's minimum, leverage caps);
* runs the risk limits of users that have any (one query finds them; most have none) through
  ``risk_check_order``, under the same per-user advisory lock as ``order_create``, and writes
  the risk event of a refused order;
* writes the orders and their outbox rows with one ``COPY`` each; every order carries its
  ``cloid`` before anything is sent, exactly like the single path;
* after commit, dispatches ``orders_submit_bulk_task`` in chunks.

``orders_submit_bulk`` follows ``order_submit``'s protocol for a whole chunk: claim the outbox
rows (one ``UPDATE ... FOR UPDATE SKIP LOCKED``, attempts counted, lease taken); any row on its
second attempt or later goes through the single path (ask the venue about the cloid first); the
rest are sent -- to the paper venue as one batch (trading.exchanges.paper.bulk), to any other
venue one by one through its adapter; the venue's acknowledgements are recorded in one UPDATE
(``submitted_at`` is the moment the venue answered), refusals in another, then fills and final
states per order through the fill service and the state machine.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from django.db import connection, transaction
from django.utils import timezone

from trading.exchanges import (
    OrderRequest,
    VenueError,
    VenueFill,
    VenueOrder,
    VenueRejected,
    adapter_for_venue,
    adapter_for_wallet,
    hlformat,
)
from trading.models import (
    Order,
    OrderEvent,
    OrderEventKind,
    OrderOutbox,
    OrderStatus,
    OrderType,
    OutboxKind,
    RiskLimit,
    Symbol,
    TimeInForce,
    new_cloid,
)
from trading.rounding import price_problem, price_round, size_problem, size_round, to_wire
from trading.services.execution import _release, _submit, venue_news
from trading.services.fills import apply_fills_locked
from trading.services.orders import reference_price
from trading.services.risk import ProposedOrder, risk_breach_record, risk_check_order
from trading.services.state import order_settle
from trading.stores import setting

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
SUBMIT_CHUNK = 1000  # orders per submit task
RECORD_CHUNK = 250  # orders per transaction when recording fills


@dataclass
class BulkOrder:
    """One order of a batch. ``id`` and ``cloid`` are fixed here, before anything is written."""

    user_id: uuid.UUID
    agent_wallet_id: uuid.UUID
    symbol: Symbol
    side: str
    quantity: Decimal
    price: Decimal | None = None
    order_type: str = OrderType.LIMIT
    time_in_force: str = TimeInForce.IOC
    reduce_only: bool = False
    leverage: Decimal | int | None = None
    strategy_id: uuid.UUID | None = None
    source_trader_id: uuid.UUID | None = None
    source_event_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    cloid: str = field(default_factory=new_cloid)


@dataclass
class BulkCreateResult:
    created: list[BulkOrder] = field(default_factory=list)
    # index in the input -> (code, message): refused before anything was written
    refused: dict[int, tuple[str, str]] = field(default_factory=dict)
    created_at: datetime | None = None


class _Account:
    """What the pre-trade checks read of a user (accounts.policy duck-types on these)."""

    def __init__(self, pk: uuid.UUID, status: str, kyc_level: int, is_staff: bool) -> None:
        self.pk = pk
        self.status = status
        self.kyc_level = kyc_level
        self.is_staff = is_staff


def _accounts(user_ids: set[uuid.UUID]) -> dict[uuid.UUID, _Account]:
    from accounts.models import User

    rows = User.objects.filter(pk__in=list(user_ids)).values_list(
        "pk", "status", "kyc_level", "is_staff"
    )
    return {row[0]: _Account(*row) for row in rows}


def _wallets(wallet_ids: set[uuid.UUID]) -> dict[uuid.UUID, Any]:
    from accounts.models import AgentWallet

    rows = AgentWallet.objects.filter(pk__in=list(wallet_ids)).values(
        "pk", "user_id", "exchange", "status", "permissions", "min_order_usd", "max_leverage"
    )
    return {row["pk"]: row for row in rows}


def _check(
    order: BulkOrder,
    *,
    account: _Account | None,
    wallet: dict[str, Any] | None,
    reference: Decimal | None,
    round_to_venue: bool,
) -> tuple[str, str] | None:
    """Why ``order`` cannot be written, or None (rounding applied in place)."""
    from accounts.policy import trading_block_reason

    if account is None:
        return "account_cannot_trade", "Unknown account."
    block = trading_block_reason(cast("User", account))
    if block:
        return "account_cannot_trade", f"Trading is not allowed: {block}."
    if wallet is None or wallet["user_id"] != order.user_id:
        return "agent_wallet_inactive", "Agent wallet not found."
    if wallet["status"] != "active" or not (wallet["permissions"] or {}).get("trade"):
        return "agent_wallet_inactive", f"The agent wallet is {wallet['status']} and cannot trade."
    symbol = order.symbol
    if wallet["exchange"] != symbol.venue:
        return "unknown_symbol", f"{symbol.name} is not traded on {wallet['exchange']}."
    if order.quantity <= 0:
        return "quantity_not_positive", "Quantity must be greater than zero."
    if round_to_venue:
        order.quantity = size_round(order.quantity, symbol.size_rules)
        if order.price is not None:
            order.price = price_round(order.price, symbol.price_rules)
    if order.price is not None:
        problem = price_problem(order.price, symbol.price_rules)
        if problem:
            return "price_off_tick", problem
    elif order.order_type == OrderType.LIMIT:
        return "required", "A limit order needs a price."
    check_price = order.price or reference
    size_issue = size_problem(order.quantity, check_price, symbol.size_rules)
    if size_issue is not None:
        return size_issue
    if symbol.max_size is not None and order.quantity > symbol.max_size:
        return "size_above_maximum", "Quantity is above the venue maximum."
    minimum = Decimal(wallet["min_order_usd"])
    if check_price is not None and not order.reduce_only and order.quantity * check_price < minimum:
        return "below_wallet_minimum", f"Order value is below this wallet's minimum of {minimum}."
    if order.leverage is not None:
        cap = min(Decimal(symbol.max_leverage), Decimal(wallet["max_leverage"]))
        lev = Decimal(order.leverage)
        if lev <= 0 or lev > cap or lev != lev.to_integral_value():
            return "leverage_above_limit", f"Leverage must be a whole number from 1 to {cap}."
    return None


def orders_create_bulk(
    *, orders: Sequence[BulkOrder], round_to_venue: bool = True, dispatch: bool = True
) -> BulkCreateResult:
    """Check and write ``orders`` (module docstring). Runs inside the caller's transaction;
    refused orders are reported by index, nothing of them is written."""
    result = BulkCreateResult()
    if not orders:
        return result
    if not connection.in_atomic_block:
        raise RuntimeError("orders_create_bulk runs inside the caller's transaction")
    accounts = _accounts({o.user_id for o in orders})
    wallets = _wallets({o.agent_wallet_id for o in orders})
    symbols_checked: dict[int, str | None] = {}
    references: dict[tuple[int, str], Decimal | None] = {}
    accepted: list[tuple[int, BulkOrder]] = []
    for index, order in enumerate(orders):
        symbol = order.symbol
        if symbol.pk not in symbols_checked:
            symbols_checked[symbol.pk] = (
                None if symbol.is_active else f"{symbol.name} on {symbol.venue} is {symbol.status}."
            )
        if symbols_checked[symbol.pk]:
            result.refused[index] = ("symbol_inactive", str(symbols_checked[symbol.pk]))
            continue
        key = (symbol.pk, order.side)
        if key not in references and order.price is None:
            references[key] = reference_price(symbol, order.side)
        problem = _check(
            order,
            account=accounts.get(order.user_id),
            wallet=wallets.get(order.agent_wallet_id),
            reference=references.get(key),
            round_to_venue=round_to_venue,
        )
        if problem is not None:
            result.refused[index] = problem
            continue
        accepted.append((index, order))

    accepted = _risk_checked(accepted, result)
    if not accepted:
        return result
    now = timezone.now()
    result.created_at = now
    _copy_orders([order for _, order in accepted], now)
    result.created = [order for _, order in accepted]
    if dispatch:
        ids = [str(order.id) for order in result.created]
        transaction.on_commit(lambda: orders_submit_bulk_dispatch(ids))
        transaction.on_commit(lambda: orders_publish(ids))
    return result


def _risk_checked(
    accepted: list[tuple[int, BulkOrder]], result: BulkCreateResult
) -> list[tuple[int, BulkOrder]]:
    """Run the risk limits for the users that have any (most have none: one query says so)."""
    user_ids = {order.user_id for _, order in accepted}
    limited = set(
        RiskLimit.objects.filter(user_id__in=list(user_ids)).values_list("user_id", flat=True)
    )
    if not limited:
        return accepted
    from accounts.models import AgentWallet, User

    users = {u.pk: u for u in User.objects.filter(pk__in=list(limited))}
    wallets = {
        w.pk: w
        for w in AgentWallet.objects.filter(
            pk__in=[o.agent_wallet_id for _, o in accepted if o.user_id in limited]
        )
    }
    strategies = _strategies([o.strategy_id for _, o in accepted if o.user_id in limited])
    with connection.cursor() as cursor:
        for user_id in sorted(limited, key=str):
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"orders:{user_id}"]
            )
    kept = []
    for index, order in accepted:
        if order.user_id not in limited:
            kept.append((index, order))
            continue
        strategy = strategies.get(order.strategy_id) if order.strategy_id else None
        proposed = ProposedOrder(
            user=users[order.user_id],
            agent_wallet=wallets[order.agent_wallet_id],
            symbol=order.symbol,
            strategy=strategy,
            side=order.side,
            quantity=order.quantity,
            reference_price=order.price or reference_price(order.symbol, order.side),
            leverage=Decimal(order.leverage) if order.leverage is not None else None,
            reduce_only=order.reduce_only,
        )
        breach = risk_check_order(proposed=proposed)
        if breach is None:
            kept.append((index, order))
            continue
        risk_breach_record(breach=breach, proposed=proposed)
        result.refused[index] = ("risk_limit_exceeded", breach.reason)
    return kept


def _strategies(ids: list[uuid.UUID | None]) -> dict[uuid.UUID, Any]:
    from copytrade.models import CopyStrategy

    wanted = [pk for pk in ids if pk is not None]
    if not wanted:
        return {}
    return {s.pk: s for s in CopyStrategy.objects.filter(pk__in=wanted)}


# Columns written by COPY, in table order; anything else takes its database default or NULL.
_ORDER_COLUMNS = (
    "id", "user_id", "agent_wallet_id", "strategy_id", "symbol_id", "exchange", "side",
    "order_type", "time_in_force", "reduce_only", "leverage", "quantity", "price",
    "filled_quantity", "fees", "status", "cloid", "request_fingerprint", "venue_status",
    "created_at", "updated_at", "is_copy_trade", "source_trader_id", "source_event_id",
    "metadata",
)  # fmt: skip
_OUTBOX_COLUMNS = ("order_id", "kind", "created_at", "available_at", "attempts", "last_error")


def _copy_orders(orders: Sequence[BulkOrder], now: datetime) -> None:
    raw = cast(Any, connection.cursor().cursor)  # the psycopg cursor under Django's wrapper
    columns = ", ".join(_ORDER_COLUMNS)
    with raw.copy(f"COPY orders ({columns}) FROM STDIN") as copy:
        for o in orders:
            copy.write_row(
                (
                    o.id, o.user_id, o.agent_wallet_id, o.strategy_id, o.symbol.pk,
                    o.symbol.venue, o.side, o.order_type, o.time_in_force, o.reduce_only,
                    o.leverage, o.quantity, o.price, ZERO, ZERO, OrderStatus.PENDING, o.cloid,
                    "", "", now, now, o.strategy_id is not None or o.source_trader_id is not None,
                    o.source_trader_id, o.source_event_id, json.dumps(o.metadata, default=str),
                )
            )  # fmt: skip
    with raw.copy(f"COPY order_outbox ({', '.join(_OUTBOX_COLUMNS)}) FROM STDIN") as copy:
        for o in orders:
            copy.write_row((o.id, OutboxKind.SUBMIT, now, now, 0, ""))


def orders_publish(order_ids: list[str]) -> None:
    """Live updates of a batch go through a task (trading.live), never inline."""
    try:
        from trading import live

        task = getattr(live, "orders_publish_task", None)
        if task is not None:
            task.delay(order_ids)
    except Exception:  # a live update must never break trading
        logger.exception("publishing %d new orders failed", len(order_ids))


def orders_submit_bulk_dispatch(order_ids: Sequence[str]) -> None:
    from trading.tasks import dispatch, orders_submit_bulk_task

    for start in range(0, len(order_ids), SUBMIT_CHUNK):
        dispatch(orders_submit_bulk_task, json.dumps(list(order_ids[start : start + SUBMIT_CHUNK])))


# --------------------------------------------------------------------------- submission


@dataclass
class BulkSubmitResult:
    claimed: int = 0
    submitted: int = 0  # acknowledged by the venue
    failed: int = 0
    single_path: int = 0  # retries and non-batch venues, sent through order_submit's path
    # (order id, seconds): went back to the outbox for a later attempt (venue busy or down)
    retries: list[tuple[str, float]] = field(default_factory=list)
    venue_answered_at: datetime | None = None


_CLAIM_MANY_SQL = """
UPDATE order_outbox SET attempts = attempts + 1, claimed_until = %s, claim_token = %s
WHERE id IN (
    SELECT id FROM order_outbox
    WHERE order_id = ANY(%s::uuid[]) AND kind = 'submit' AND done_at IS NULL
      AND (claimed_until IS NULL OR claimed_until <= %s)
    FOR UPDATE SKIP LOCKED
)
RETURNING id, order_id, attempts
"""


def orders_submit_bulk(*, order_ids: Sequence[uuid.UUID | str]) -> BulkSubmitResult:
    """Submit a chunk of orders exactly once each (module docstring)."""
    result = BulkSubmitResult()
    now = timezone.now()
    lease = timedelta(seconds=float(setting("ORDER_SUBMIT_LEASE_SECONDS")))
    token = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_MANY_SQL, [now + lease, token, [str(pk) for pk in order_ids], now])
        claimed = cursor.fetchall()
    result.claimed = len(claimed)
    if not claimed:
        return result
    # In the order given: an account's orders reach the venue in the order they were made.
    position = {str(pk): index for index, pk in enumerate(order_ids)}
    claimed.sort(key=lambda row: position.get(str(row[1]), len(position)))
    rows = _lean_orders([row[1] for row in claimed])
    batch: list[tuple[OrderOutbox, _LeanOrder]] = []
    single: list[tuple[OrderOutbox, uuid.UUID]] = []
    stale: list[int] = []
    for outbox_id, order_id, attempts in claimed:
        lean = rows[order_id]
        outbox = OrderOutbox(
            pk=outbox_id,
            order_id=order_id,
            kind=OutboxKind.SUBMIT,
            attempts=attempts,
            claim_token=token,
            claimed_until=now + lease,
        )
        if lean.status != OrderStatus.PENDING:
            stale.append(outbox_id)
        elif attempts > 1 or lean.venue != "paper" or lean.price is None:
            single.append((outbox, order_id))
        else:
            batch.append((outbox, lean))
    if stale:
        OrderOutbox.objects.filter(pk__in=stale).update(done_at=timezone.now())
    if batch:
        _submit_paper_batch(batch, result)
    if single:
        _submit_singly(single, result)
    return result


@dataclass(frozen=True)
class _LeanOrder:
    """What sending a limit order needs, read in one query for a whole chunk."""

    pk: uuid.UUID
    status: str
    cloid: str
    side: str
    quantity: Decimal
    price: Decimal | None
    time_in_force: str
    reduce_only: bool
    leverage: Decimal | None
    symbol: str  # the venue's name for the market
    venue: str
    account: str  # the venue account (the user's master wallet)

    def request(self) -> OrderRequest:
        assert self.price is not None
        return OrderRequest(
            cloid=self.cloid,
            symbol=self.symbol,
            side="buy" if self.side == "buy" else "sell",
            size=self.quantity,
            limit_price=self.price,
            time_in_force=self.time_in_force,
            reduce_only=self.reduce_only,
            leverage=int(self.leverage) if self.leverage else None,
        )


_LEAN_SQL = """
SELECT o.id, o.status, o.cloid, o.side, o.quantity, o.price, o.time_in_force, o.reduce_only,
       o.leverage, COALESCE(NULLIF(s.venue_symbol, ''), s.name), w.exchange,
       COALESCE(u.wallet_addr, w.addr), o.order_type
  FROM orders o
  JOIN symbols s ON s.id = o.symbol_id
  JOIN agent_wallets w ON w.id = o.agent_wallet_id
  JOIN users u ON u.id = w.user_id
 WHERE o.id = ANY(%s::uuid[])
"""


def _lean_orders(order_ids: list[Any]) -> dict[uuid.UUID, _LeanOrder]:
    with connection.cursor() as cursor:
        cursor.execute(_LEAN_SQL, [[str(pk) for pk in order_ids]])
        rows = cursor.fetchall()
    lean = {}
    for r in rows:
        is_limit = r[12] in (OrderType.LIMIT,)
        lean[r[0]] = _LeanOrder(
            pk=r[0], status=r[1], cloid=r[2], side=r[3], quantity=r[4],
            price=r[5] if is_limit else None, time_in_force=r[6], reduce_only=r[7],
            leverage=r[8], symbol=r[9], venue=r[10], account=r[11],
        )  # fmt: skip
    return lean


def _submit_singly(single: list[tuple[OrderOutbox, uuid.UUID]], result: BulkSubmitResult) -> None:
    """Retries (they ask the venue about the cloid first), other venues, market orders:
    ``order_submit``'s own path, one order at a time."""
    orders = {
        o.pk: o
        for o in Order.objects.select_related(
            "symbol", "agent_wallet", "agent_wallet__user"
        ).filter(pk__in=[order_id for _, order_id in single])
    }
    for outbox, order_id in single:
        outbox.order = orders[order_id]
        result.single_path += 1
        adapter = adapter_for_wallet(outbox.order.agent_wallet)
        try:
            outcome = _submit(outbox, adapter)
        finally:
            adapter.close()
        if outcome.status == "retry":
            result.retries.append((str(order_id), outcome.retry_in or 1.0))


def _paper_engine() -> Any:
    """The paper venue the paper adapter talks to (the same one a test may have swapped in),
    or None when the paper venue is not a PaperAdapter here (a test fake): no batching then."""
    from trading.exchanges.paper import PaperAdapter

    probe = adapter_for_venue("paper")
    return probe.engine if isinstance(probe, PaperAdapter) else None


def _submit_paper_batch(
    batch: list[tuple[OrderOutbox, _LeanOrder]], result: BulkSubmitResult
) -> None:
    from trading.exchanges.paper.bulk import Placement, place_batch

    engine = _paper_engine()
    if engine is None:  # the paper venue is a test's fake here: one by one
        _submit_singly([(outbox, lean.pk) for outbox, lean in batch], result)
        return
    requests = [lean.request() for _, lean in batch]
    placements = [
        Placement(
            user=lean.account,
            coin=request.symbol,
            is_buy=request.side == "buy",
            sz=to_wire(request.size),
            limit_px=to_wire(request.limit_price),
            tif=request.time_in_force,
            reduce_only=request.reduce_only,
            cloid=request.cloid,
            leverage=request.leverage,
        )
        for (_, lean), request in zip(batch, requests, strict=True)
    ]
    try:
        answers = place_batch(engine, placements)
    except Exception as exc:
        # Whether the batch reached the venue is unknown; each order goes back to the outbox
        # and its next attempt asks the venue about its cloid before sending anything.
        logger.warning("paper batch of %d orders failed: %s", len(placements), exc)
        for outbox, lean in batch:
            _release(outbox, delay=1.0, error=f"batch: {exc}", kind=OrderEventKind.VENUE_ERROR)
            result.retries.append((str(lean.pk), 1.0))
        return
    answered_at = timezone.now()
    result.venue_answered_at = answered_at
    outcomes: list[tuple[OrderOutbox, uuid.UUID, VenueOrder | None, list[VenueFill], Any]] = []
    for (outbox, lean), sent, response in zip(batch, requests, answers, strict=True):
        try:
            found = hlformat.parse_order_response(
                response,
                symbol=sent.symbol,
                side=sent.side,
                size=sent.size,
                cloid=sent.cloid,
                time_in_force=sent.time_in_force,
            )
        except VenueError as exc:
            rejected = (
                exc if isinstance(exc, VenueRejected) else VenueRejected(str(exc), code=exc.code)
            )
            outcomes.append((outbox, lean.pk, None, [], rejected))
            continue
        fills = [hlformat.parse_fill(raw) for raw in response.get("fills", [])]
        outcomes.append((outbox, lean.pk, found, fills, sent))
    _record_batch(outcomes, answered_at, result)


_ACK_SQL = """
UPDATE orders AS o
   SET status = 'submitted', submitted_at = %s, updated_at = %s, venue_status_at = %s,
       venue_status = v.venue_status, exchange_order_id = NULLIF(v.venue_order_id, ''),
       submitted_price = v.submitted_price
  FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::numeric[])
       AS v(id, venue_status, venue_order_id, submitted_price)
 WHERE o.id = v.id AND o.status = 'pending'
"""
_FAIL_SQL = """
UPDATE orders AS o
   SET status = 'failed', failed_at = %s, updated_at = %s, error_code = v.code,
       error_message = v.message
  FROM unnest(%s::uuid[], %s::text[], %s::text[]) AS v(id, code, message)
 WHERE o.id = v.id AND o.status = 'pending'
"""


def _record_batch(
    outcomes: list[tuple[OrderOutbox, uuid.UUID, VenueOrder | None, list[VenueFill], Any]],
    answered_at: datetime,
    result: BulkSubmitResult,
) -> None:
    """The venue's answers: acknowledgements and refusals in one statement each (and the
    outbox rows closed), then fills and final states per order, a chunk per transaction."""
    acked = [(pk, found, fills) for _, pk, found, fills, _ in outcomes if found is not None]
    refused = [(o, pk, exc) for o, pk, found, _, exc in outcomes if found is None]
    submitted_prices = {
        pk: sent.limit_price
        for _, pk, found, _, sent in outcomes
        if found is not None and isinstance(sent, OrderRequest)
    }
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        if acked:
            cursor.execute(
                _ACK_SQL,
                [
                    answered_at,
                    now,
                    answered_at,
                    [str(pk) for pk, _, _ in acked],
                    [str(found.status) for _, found, _ in acked],
                    [found.venue_order_id or "" for _, found, _ in acked],
                    [submitted_prices.get(pk) for pk, _, _ in acked],
                ],
            )
        if refused:
            cursor.execute(
                _FAIL_SQL,
                [
                    now,
                    now,
                    [str(pk) for _, pk, _ in refused],
                    [exc.code for _, _, exc in refused],
                    [exc.message[:2000] for _, _, exc in refused],
                ],
            )
            OrderEvent.objects.bulk_create(
                OrderEvent(
                    order_id=pk,
                    kind=OrderEventKind.VENUE_REJECT,
                    details={"code": exc.code, "message": exc.message, "attempt": outbox.attempts},
                )
                for outbox, pk, exc in refused
            )
        OrderOutbox.objects.filter(pk__in=[o.pk for o, *_ in outcomes]).update(done_at=now)
    result.submitted += len(acked)
    result.failed += len(refused)
    for start in range(0, len(acked), RECORD_CHUNK):
        _record_fills(acked[start : start + RECORD_CHUNK])


def _record_fills(chunk: list[tuple[uuid.UUID, VenueOrder, list[VenueFill]]]) -> None:
    now = timezone.now()
    with transaction.atomic():
        locked = {
            o.pk: o
            for o in Order.objects.select_for_update(of=("self",))
            .select_related("symbol", "agent_wallet", "agent_wallet__user")
            .filter(pk__in=[pk for pk, _, _ in chunk])
            .order_by("pk")
        }
        for pk, found, fills in chunk:
            order = locked[pk]
            if fills:
                apply_fills_locked(agent_wallet=order.agent_wallet, fills=fills, orders=[order])
            news = venue_news(found)
            if news.ended is not None or news.filled is not None:
                order_settle(order, news, now=now)


def orders_submitted_by_venue(*, order_ids: Sequence[uuid.UUID | str]) -> dict[str, int]:
    """Order status counts for a batch (tests, benchmarks)."""
    counts: dict[str, int] = defaultdict(int)
    for status in Order.objects.filter(pk__in=list(order_ids)).values_list("status", flat=True):
        counts[status] += 1
    return dict(counts)


__all__ = [
    "BulkCreateResult",
    "BulkOrder",
    "BulkSubmitResult",
    "orders_create_bulk",
    "orders_publish",
    "orders_submit_bulk",
    "orders_submit_bulk_dispatch",
    "orders_submitted_by_venue",
]
