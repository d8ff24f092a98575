"""The copy engine's fan-out: one leader move -> a decision (and at most one order) for every
running strategy that follows the leader, written set-wise.

For one move, whatever the number of followers, the engine:

1. reads every running strategy following the leader, with its settings, weight, wallet,
   owner and cached equity, in one query; the follower-side state (each strategy's share of
   the leader's position and its remainder, its share over all its traders, the venue position)
   in one query each;
2. sizes each follower in memory with the rules of copytrade.sizing (the same function the
   copy simulation uses);
3. writes the orders through trading's bulk path (its pre-trade checks, one COPY for the orders
   and one for their outbox rows, the risk limits of users that have any), the decisions --
   placed, skipped with the reason, or refused by trading with trading's reason -- with one
   COPY, and the changed remainders with one upsert; all in the caller's transaction, so a
   leader fill is stored together with everything decided from it, or not at all;
4. after commit: the orders go to the venue in batches (trading), the decisions to their owners'
   live streams and to ClickHouse ``copy_trade_events`` (signal and decision latency).

``copy_decisions`` is unique per (strategy, source event): a replayed move finds its decisions
and decides nothing again.
"""

from __future__ import annotations

import gc
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db import connection, transaction
from django.utils import timezone

from accounts.policy import kyc_equity_cap, trading_block_reason
from copytrade.conf import setting
from copytrade.models import DecisionKind, DecisionOutcome
from copytrade.sizing import (
    FollowerFacts,
    MarketFacts,
    MoveFacts,
    Reason,
    Sizing,
    size_copy,
)
from trading.marketdata import price_get
from trading.models import Symbol
from trading.services.bulk import BulkOrder, orders_create_bulk

logger = logging.getLogger(__name__)
ZERO = Decimal(0)


@dataclass(frozen=True)
class EngineMove:
    """A leader move as the engine copies it: the facts every follower sizes from, and what
    identifies and explains it."""

    facts: MoveFacts
    trader_id: uuid.UUID
    exchange: str
    key: str  # the source_event_id of every decision and order made from it
    trader_event_id: uuid.UUID | None
    seen_at: datetime
    fill_ids: tuple[str, ...] = ()

    @property
    def leader_time(self) -> datetime:
        return datetime.fromtimestamp(self.facts.time_ms / 1000, tz=UTC)

    @property
    def side(self) -> str:
        return "buy" if self.facts.after > self.facts.before else "sell"


@dataclass
class Follower:
    """One running strategy following the leader, as read for a move."""

    strategy_id: uuid.UUID
    user_id: uuid.UUID
    agent_wallet_id: uuid.UUID | None
    version_id: int | None
    version_number: int | None
    size_mode: str
    copy_pct: Decimal
    fixed_notional_usd: Decimal | None
    multiplier: Decimal | None
    inverse: bool
    max_leverage: Decimal
    max_position_usd: Decimal | None
    slippage_bps: int
    min_order_usd: Decimal
    follow_new_entries_only: bool
    started_at: datetime
    weight: Decimal
    venue: str | None
    wallet_status: str | None
    wallet_can_trade: bool
    wallet_max_leverage: int
    wallet_min_order_usd: Decimal
    user_status: str
    kyc_level: int
    is_staff: bool
    equity: Decimal | None
    equity_at: datetime | None
    # follower-side state for the move's coin
    attributable: Decimal = ZERO
    remainder: Decimal = ZERO
    strategy_position: Decimal = ZERO
    wallet_position: Decimal = ZERO
    pending_position: Decimal = ZERO
    slot_known: bool = False


_FOLLOWERS_SQL = """
SELECT s.id, s.user_id, s.agent_wallet_id, s.version_id, v.number,
       s.size_mode, s.copy_pct, s.fixed_notional_usd, s.multiplier, s.inverse,
       s.max_leverage, s.max_position_usd, s.slippage_bps, s.min_order_usd,
       s.follow_new_entries_only, s.started_at, a.weight,
       w.exchange, w.status,
       COALESCE((w.permissions ->> 'trade')::boolean, false),
       w.max_leverage, w.min_order_usd,
       u.status, u.kyc_level, u.is_staff,
       e.account_value, e.fetched_at
  FROM copy_allocations a
  JOIN copy_strategies s ON s.id = a.strategy_id
  JOIN users u ON u.id = s.user_id
  LEFT JOIN strategy_versions v ON v.id = s.version_id
  LEFT JOIN agent_wallets w ON w.id = s.agent_wallet_id
  LEFT JOIN copy_follower_equity e ON e.agent_wallet_id = s.agent_wallet_id
 WHERE a.trader_id = %s AND a.status = 'active' AND s.status = 'active'
   AND s.started_at <= %s
   {only}
 ORDER BY s.id
"""


def _followers(
    trader_id: uuid.UUID, at: datetime, strategy_ids: Sequence[uuid.UUID] | None = None
) -> list[Follower]:
    only = "AND s.id = ANY(%s::uuid[])" if strategy_ids is not None else ""
    params: list[Any] = [trader_id, at]
    if strategy_ids is not None:
        params.append([str(pk) for pk in strategy_ids])
    with connection.cursor() as cursor:
        cursor.execute(_FOLLOWERS_SQL.replace("{only}", only), params)
        rows = cursor.fetchall()
    return [
        Follower(
            strategy_id=r[0],
            user_id=r[1],
            agent_wallet_id=r[2],
            version_id=r[3],
            version_number=r[4],
            size_mode=r[5],
            copy_pct=r[6],
            fixed_notional_usd=r[7],
            multiplier=r[8],
            inverse=r[9],
            max_leverage=r[10],
            max_position_usd=r[11],
            slippage_bps=r[12],
            min_order_usd=r[13],
            follow_new_entries_only=r[14],
            started_at=r[15],
            weight=r[16],
            venue=r[17],
            wallet_status=r[18],
            wallet_can_trade=bool(r[18] == "active" and r[19]),
            wallet_max_leverage=int(r[20] or 1),
            wallet_min_order_usd=r[21] or ZERO,
            user_status=r[22],
            kyc_level=r[23],
            is_staff=r[24],
            equity=r[25],
            equity_at=r[26],
        )
        for r in rows
    ]


# The follower-side state in one round trip (three reads, tagged by their first column):
# 's' each strategy's slots in the move's coin (its share of each leader's position and the
# remainder), 'p' each wallet's venue position, 'o' each wallet's orders still open.
_FOLLOWER_STATE_SQL = """
SELECT 's', strategy_id, trader_id, base_quantity + committed_quantity, remainder
  FROM copy_slots
 WHERE symbol_id = ANY(%(symbols)s) AND strategy_id = ANY(%(strategies)s::uuid[])
UNION ALL
SELECT 'p', agent_wallet_id, NULL, quantity, NULL
  FROM positions
 WHERE symbol_id = ANY(%(symbols)s) AND agent_wallet_id = ANY(%(wallets)s::uuid[])
UNION ALL
SELECT 'o', agent_wallet_id, NULL,
       SUM(CASE WHEN side = 'buy' THEN 1 ELSE -1 END * (quantity - filled_quantity)), NULL
  FROM orders
 WHERE symbol_id = ANY(%(symbols)s) AND agent_wallet_id = ANY(%(wallets)s::uuid[])
   AND status IN ('pending', 'submitted', 'partial')
 GROUP BY agent_wallet_id
"""


def _follower_state(
    followers: list[Follower], trader_id: uuid.UUID, symbols: dict[str, Symbol]
) -> None:
    """Each follower's share of this leader's position, its remainder, the strategy's share over
    all its traders, the venue position and what its open orders will add -- one statement for
    any number of followers (a round trip less or two on the fan-out's critical path)."""
    if not followers or not symbols:
        return
    by_strategy = {f.strategy_id: f for f in followers}
    by_wallet = {f.agent_wallet_id: f for f in followers if f.agent_wallet_id}
    with connection.cursor() as cursor:
        cursor.execute(
            _FOLLOWER_STATE_SQL,
            {
                "symbols": [s.pk for s in symbols.values()],
                "strategies": [str(pk) for pk in by_strategy],
                "wallets": [str(pk) for pk in by_wallet],
            },
        )
        rows = cursor.fetchall()
    for kind, owner, slot_trader, quantity, remainder in rows:
        if kind == "s":
            follower = by_strategy[owner]
            follower.strategy_position += quantity
            if slot_trader == trader_id:
                follower.attributable = quantity
                follower.remainder = remainder
                follower.slot_known = True
        elif kind == "p":
            by_wallet[owner].wallet_position = quantity
        else:
            by_wallet[owner].pending_position = quantity or ZERO


def _refresh_equities(followers: list[Follower]) -> None:
    """Missing or stale equities of proportional followers, fetched inline up to a limit."""
    from accounts.models import AgentWallet
    from copytrade.services.equity import follower_equity_fetch

    max_age = timedelta(seconds=float(setting("COPY_EQUITY_MAX_AGE_SECONDS")))
    cutoff = timezone.now() - max_age
    stale = [
        f
        for f in followers
        if f.size_mode == "proportional"
        and f.agent_wallet_id
        and f.wallet_can_trade
        and (f.equity is None or f.equity_at is None or f.equity_at < cutoff)
    ]
    limit = int(setting("COPY_EQUITY_FETCH_LIMIT"))
    if not stale:
        return
    wallets = {
        w.pk: w
        for w in AgentWallet.objects.select_related("user").filter(
            pk__in=[f.agent_wallet_id for f in stale[:limit]]
        )
    }
    for follower in stale[:limit]:
        wallet = wallets.get(follower.agent_wallet_id) if follower.agent_wallet_id else None
        if wallet is None:
            continue
        value = follower_equity_fetch(agent_wallet=wallet)
        if value is not None:
            follower.equity, follower.equity_at = value, timezone.now()
    if len(stale) > limit:
        from copytrade.tasks import follower_equities_refresh_task

        ids = [str(f.agent_wallet_id) for f in stale[limit:]]
        transaction.on_commit(lambda: follower_equities_refresh_task.delay(ids))


def _market(symbol: Symbol) -> MarketFacts:
    snapshot = price_get(symbol.venue, symbol.name)
    return MarketFacts(
        price_rules=symbol.price_rules,
        size_rules=symbol.size_rules,
        max_leverage=symbol.max_leverage,
        bid=snapshot.bid if snapshot else None,
        ask=snapshot.ask if snapshot else None,
        mark=(snapshot.mark or snapshot.price) if snapshot else None,
    )


def follower_facts(follower: Follower, equity: Decimal | None) -> FollowerFacts:
    return FollowerFacts(
        size_mode=follower.size_mode,
        copy_pct=follower.copy_pct,
        fixed_notional_usd=follower.fixed_notional_usd,
        multiplier=follower.multiplier,
        inverse=follower.inverse,
        max_leverage=follower.max_leverage,
        max_position_usd=follower.max_position_usd,
        slippage_bps=follower.slippage_bps,
        min_order_usd=follower.min_order_usd,
        follow_new_entries_only=follower.follow_new_entries_only,
        started_at_ms=int(follower.started_at.timestamp() * 1000),
        weight=follower.weight,
        wallet_max_leverage=follower.wallet_max_leverage,
        wallet_min_order_usd=follower.wallet_min_order_usd,
        equity=equity,
        attributable=follower.attributable,
        remainder=follower.remainder,
        wallet_position=follower.wallet_position,
        pending_position=follower.pending_position,
        strategy_position=follower.strategy_position,
    )


def _equity_for(follower: Follower, caps: dict[tuple[int, bool], Decimal | None]) -> Decimal | None:
    """The equity proportional sizing uses: the account value, capped by the KYC limit."""
    if follower.equity is None:
        return None
    key = (follower.kyc_level, follower.is_staff)
    if key not in caps:
        caps[key] = kyc_equity_cap(cast(Any, _Account(follower)))
    cap = caps[key]
    return follower.equity if cap is None else min(follower.equity, cap)


class _Account:
    def __init__(self, follower: Follower) -> None:
        self.status = follower.user_status
        self.kyc_level = follower.kyc_level
        self.is_staff = follower.is_staff


@dataclass
class Decided:
    follower: Follower
    sizing: Sizing
    outcome: str
    reason_code: str
    reason: str
    symbol: Symbol | None = None
    order_id: uuid.UUID | None = None
    decision_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class FanOutResult:
    followers: int = 0
    placed: int = 0
    skipped: int = 0
    refused: int = 0
    order_ids: list[uuid.UUID] = field(default_factory=list)
    decision_ids: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)


def _skip(follower: Follower, code: str, reason: str) -> Decided:
    sizing = Sizing(False, code, reason, remainder_after=follower.remainder)
    return Decided(follower, sizing, DecisionOutcome.SKIPPED, code, reason)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No automatic garbage collection during a fan-out: sizing ten thousand followers makes
    enough short-lived objects to trigger full collections over everything the worker holds
    (~100 ms a time on a loaded worker). Collection resumes after; nothing is leaked (the
    objects are freed by reference counting, the collector only handles cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def copy_move(
    *,
    move: EngineMove,
    strategy_ids: Sequence[uuid.UUID] | None = None,
    dispatch: bool = True,
) -> FanOutResult:
    """Decide, for every running strategy following the move's leader, what to do; write the
    decisions and orders (module docstring). Runs inside the caller's transaction.

    ``dispatch`` False leaves sending the orders to the caller (``orders_submit_dispatch``
    after commit): ingestion sends the orders of all the moves of one delivery together, in
    the order they were decided, so an account's orders reach the venue in that order."""
    if not connection.in_atomic_block:
        raise RuntimeError("copy_move runs inside the ingestion transaction")
    with _collector_paused():
        return _copy_move(move=move, strategy_ids=strategy_ids, dispatch=dispatch)


def _copy_move(
    *, move: EngineMove, strategy_ids: Sequence[uuid.UUID] | None, dispatch: bool
) -> FanOutResult:
    followers = _followers(move.trader_id, move.leader_time, strategy_ids)
    if not followers:
        return FanOutResult()
    followers = _not_yet_decided(followers, move.key)
    result = FanOutResult(followers=len(followers))
    if not followers:
        return result
    venues = {f.venue for f in followers if f.venue}
    symbols = {
        s.venue: s
        for s in Symbol.objects.filter(venue__in=venues, name=move.facts.coin, status="active")
    }
    _follower_state(followers, move.trader_id, symbols)
    markets = {venue: _market(symbol) for venue, symbol in symbols.items()}
    max_age = setting("COPY_MAX_SIGNAL_AGE_SECONDS")
    stale_by = (move.seen_at - move.leader_time).total_seconds()
    stale = max_age is not None and stale_by > float(max_age)
    if not stale and move.facts.before != move.facts.after:
        _refresh_equities(followers)
    caps: dict[tuple[int, bool], Decimal | None] = {}
    decided: list[Decided] = []
    for follower in followers:
        if stale:
            decided.append(
                _skip(
                    follower,
                    Reason.STALE,
                    f"Seen {stale_by:.0f} s after the leader traded (the limit is "
                    f"{float(max_age):.0f} s): an old trade is not chased at today's price.",
                )
            )
            continue
        block = trading_block_reason(cast(Any, _Account(follower)))
        if block:
            decided.append(
                _skip(follower, Reason.ACCOUNT_BLOCKED, f"Trading is not allowed: {block}.")
            )
            continue
        if not follower.wallet_can_trade or follower.venue is None:
            decided.append(
                _skip(
                    follower,
                    Reason.ACCOUNT_BLOCKED,
                    f"The strategy's agent wallet is {follower.wallet_status or 'missing'} and "
                    "cannot trade.",
                )
            )
            continue
        symbol = symbols.get(follower.venue)
        if symbol is None:
            decided.append(
                _skip(
                    follower,
                    Reason.NOT_LISTED,
                    f"{move.facts.coin} is not traded on {follower.venue}.",
                )
            )
            continue
        sizing = size_copy(
            move.facts,
            markets[follower.venue],
            follower_facts(follower, _equity_for(follower, caps)),
        )
        outcome = DecisionOutcome.PLACED if sizing.place else DecisionOutcome.SKIPPED
        decided.append(
            Decided(follower, sizing, outcome, sizing.reason_code, sizing.reason, symbol=symbol)
        )
    _write(decided, move, kind=DecisionKind.COPY, result=result)
    if dispatch:
        after_commit(
            order_ids=[str(pk) for pk in result.order_ids], decision_ids=result.decision_ids
        )
    return result


def after_commit(*, order_ids: list[str], decision_ids: list[str]) -> None:
    """Register what follows a fan-out's commit, most urgent first: the orders to the venue,
    then the decisions to their owners and ClickHouse (a task for more than a few)."""
    if order_ids:
        transaction.on_commit(lambda: orders_submit_dispatch(order_ids))
    if decision_ids:
        transaction.on_commit(lambda: _after_commit(decision_ids))


def orders_submit_dispatch(order_ids: Sequence[str]) -> None:
    """After commit: the orders to the venue (batches, in this order), their live updates."""
    from trading.services.bulk import orders_publish, orders_submit_bulk_dispatch

    orders_submit_bulk_dispatch(list(order_ids))
    orders_publish(list(order_ids))


def _not_yet_decided(followers: list[Follower], key: str) -> list[Follower]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT strategy_id FROM copy_decisions WHERE source_event_id = %s", [key])
        done = {row[0] for row in cursor.fetchall()}
    return [f for f in followers if f.strategy_id not in done] if done else followers


def _write(decided: list[Decided], move: EngineMove, *, kind: str, result: FanOutResult) -> None:
    """Orders (trading's bulk path), decisions (COPY) and remainders (one upsert)."""
    placing = [d for d in decided if d.outcome == DecisionOutcome.PLACED]
    orders = []
    for d in placing:
        f, s = d.follower, d.sizing
        assert d.symbol is not None
        assert f.agent_wallet_id is not None
        assert s.quantity is not None
        orders.append(
            BulkOrder(
                user_id=f.user_id,
                agent_wallet_id=f.agent_wallet_id,
                symbol=d.symbol,
                side=s.side,
                quantity=s.quantity,
                price=s.limit_price,
                reduce_only=s.reduce_only,
                leverage=s.leverage,
                strategy_id=f.strategy_id,
                source_trader_id=move.trader_id,
                source_event_id=move.key,
                metadata={
                    "copy": {
                        "decision": str(d.decision_id),
                        "strategy_version": f.version_number,
                        "leader_price": str(move.facts.price),
                        "kind": kind,
                    }
                },
            )
        )
    created = (
        orders_create_bulk(orders=orders, round_to_venue=True, dispatch=False) if orders else None
    )
    if created is not None:
        for index, (code, message) in created.refused.items():
            d = placing[index]
            d.outcome = DecisionOutcome.REFUSED
            d.reason_code = Reason.RISK_LIMIT if code == "risk_limit_exceeded" else Reason.REFUSED
            d.reason = f"Refused by the pre-trade checks: {message}"
        refused = set(created.refused)
        for index, order in enumerate(orders):
            if index not in refused:
                placing[index].order_id = order.id
                result.order_ids.append(order.id)
    _copy_decisions(decided, move, kind)
    _remainders_save(decided, move)
    for d in decided:
        if d.outcome == DecisionOutcome.PLACED:
            result.placed += 1
        elif d.outcome == DecisionOutcome.REFUSED:
            result.refused += 1
        else:
            result.skipped += 1
        result.reasons[d.reason_code or "placed"] = (
            result.reasons.get(d.reason_code or "placed", 0) + 1
        )
    result.decision_ids.extend(str(d.decision_id) for d in decided)


_DECISION_COLUMNS = (
    "id", "strategy_id", "user_id", "trader_id", "version_id", "version_number", "kind",
    "source_event_id", "trader_event_id", "outcome", "reason_code", "reason", "coin",
    "leader_side", "leader_size", "leader_price", "leader_before", "leader_after",
    "leader_time", "seen_at", "side", "quantity", "desired_quantity", "limit_price",
    "leverage", "reduce_only", "capped", "remainder_before", "remainder_after",
    "follower_equity", "leader_equity", "weight", "order_id", "details", "created_at",
)  # fmt: skip


def _copy_decisions(decided: list[Decided], move: EngineMove, kind: str) -> None:
    now = timezone.now()
    facts = move.facts
    raw = cast(Any, connection.cursor().cursor)
    with raw.copy(f"COPY copy_decisions ({', '.join(_DECISION_COLUMNS)}) FROM STDIN") as copy:
        for d in decided:
            f, s = d.follower, d.sizing
            placed = d.outcome == DecisionOutcome.PLACED
            copy.write_row(
                (
                    d.decision_id, f.strategy_id, f.user_id, move.trader_id, f.version_id,
                    f.version_number, kind, move.key, move.trader_event_id, d.outcome,
                    d.reason_code, d.reason, facts.coin, move.side,
                    abs(facts.after - facts.before), facts.price, facts.before, facts.after,
                    move.leader_time, move.seen_at, s.side, s.quantity if placed else None,
                    s.desired, s.limit_price, s.leverage, s.reduce_only, s.capped, f.remainder,
                    s.remainder_after, f.equity, facts.leader_equity, f.weight, d.order_id,
                    json.dumps({**s.details, "fills": list(move.fill_ids)}, default=str), now,
                )
            )  # fmt: skip


_REMAINDER_SQL = """
INSERT INTO copy_slots (strategy_id, trader_id, symbol_id, base_quantity, committed_quantity,
                        remainder, updated_at)
SELECT v.strategy_id, %s, %s, 0, 0, v.remainder, now()
  FROM unnest(%s::uuid[], %s::numeric[]) AS v(strategy_id, remainder)
ON CONFLICT (strategy_id, trader_id, symbol_id)
DO UPDATE SET remainder = EXCLUDED.remainder, updated_at = now()
"""


def _remainders_save(decided: list[Decided], move: EngineMove) -> None:
    by_symbol: dict[int, list[tuple[str, Decimal]]] = defaultdict(list)
    for d in decided:
        if d.symbol is None:
            continue
        if d.sizing.remainder_after != d.follower.remainder:
            by_symbol[d.symbol.pk].append((str(d.follower.strategy_id), d.sizing.remainder_after))
    with connection.cursor() as cursor:
        for symbol_id, rows in by_symbol.items():
            cursor.execute(
                _REMAINDER_SQL,
                [move.trader_id, symbol_id, [r[0] for r in rows], [r[1] for r in rows]],
            )


def _after_commit(decision_ids: list[str]) -> None:
    """Live updates and ClickHouse rows for a batch of decisions (a task above a few)."""
    from copytrade.services.events import decisions_announce
    from copytrade.tasks import decisions_announce_task

    if len(decision_ids) > 20:
        decisions_announce_task.delay(decision_ids)
        return
    try:
        decisions_announce(decision_ids=decision_ids)
    except Exception:  # announcing must never break copying
        logger.exception("announcing %d decisions failed", len(decision_ids))
