"""Leader fills in: stored once, grouped into moves, copied; then to ClickHouse.

``trader_fills_ingest`` is the one way in, whatever delivered the fills (the websocket watcher,
polling, the demo generator, a replay). In one transaction, under the trader's row lock (so the
watcher and the poller delivering the same fills queue instead of racing):

1. parse the fills in Hyperliquid's ``userFills`` shape, with or without ``tid``/``feeToken``/
   ``builderFee``/``cloid``/``liquidation`` (trading.exchanges.hlformat);
2. drop the ones already stored (unique venue fill id: ``tid``, or the digest of
   (hash, oid, px, sz, time) when there is none -- the rule trading's fills use);
3. group the rest into leader moves (copytrade.moves: one coin, one millisecond, one start
   position; canonical order, so a shuffled or re-delivered list decides the same);
4. per move: the leader's position before and after (the venue's start position -- plus any
   fills of the same move stored earlier, when a move arrives in parts), whether it opened
   the position, and the leader position it leaves; store its fills (``seen_at``);
5. copy each move (copytrade.services.engine), unless ``copy`` is off (backfills);
6. advance the trader's cursor.

After commit the new fills go to ClickHouse ``trader_events`` through analytics' ingestion,
at least once (``exported_at`` marks what went; the export task retries the rest, and the
table drops duplicates on the fill's event hash), and to the ``trader.<id>`` live stream.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from config.errors import ValidationFailed
from copytrade.live import trader_activity_publish_on_commit
from copytrade.models import (
    Trader,
    TraderEvent,
    TraderEventSource,
    TraderFillCursor,
    TraderPosition,
)
from copytrade.moves import LeaderMove, group_moves, sign
from copytrade.services.engine import (
    EngineMove,
    FanOutResult,
    after_commit,
    copy_move,
)
from copytrade.sizing import MoveFacts
from trading.exchanges import VenueFill, hlformat

logger = logging.getLogger(__name__)
ZERO = Decimal(0)


@dataclass
class IngestResult:
    received: int = 0
    new: int = 0
    duplicates: int = 0
    moves: int = 0
    decisions: int = 0
    orders: int = 0
    fanouts: list[FanOutResult] = field(default_factory=list)


def parse_user_fills(fills: Sequence[Mapping[str, Any]]) -> list[tuple[VenueFill, int]]:
    """Parse ``userFills`` records (either shape) into fills, each with its place within its
    millisecond as the venue listed it. A record without the fields a fill must have is a
    ValidationFailed naming it; nothing of the batch is stored then."""
    parsed: list[tuple[VenueFill, int]] = []
    per_ms: dict[int, int] = defaultdict(int)
    for index, raw in enumerate(fills):
        try:
            fill = hlformat.parse_fill(dict(raw))
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ValidationFailed(
                f"Fill {index} is not a userFills record: {exc!r}.", field="fills"
            ) from exc
        if fill.size <= 0 or fill.price <= 0 or fill.side not in ("buy", "sell"):
            raise ValidationFailed(f"Fill {index} has no positive size and price.", field="fills")
        parsed.append((fill, per_ms[fill.time_ms]))
        per_ms[fill.time_ms] += 1
    return parsed


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def trader_fills_ingest(
    *,
    trader: Trader,
    fills: Sequence[Mapping[str, Any]],
    source: str = TraderEventSource.POLL,
    seen_at: datetime | None = None,
    copy: bool = True,
) -> IngestResult:
    """Store, group and copy a delivery of one leader's fills (module docstring)."""
    if source not in TraderEventSource.values:
        raise ValidationFailed("Unknown fill source.", field="source")
    parsed = parse_user_fills(fills)
    seen = seen_at or timezone.now()
    result = IngestResult(received=len(parsed))
    with transaction.atomic():
        locked = Trader.objects.select_for_update().get(pk=trader.pk)
        unique: dict[str, tuple[VenueFill, int]] = {}
        for fill, seq in parsed:
            unique.setdefault(fill.venue_fill_id, (fill, seq))
        stored = set(
            TraderEvent.objects.filter(
                exchange=locked.exchange, fill_id__in=list(unique)
            ).values_list("fill_id", flat=True)
        )
        fresh = {k: v for k, v in unique.items() if k not in stored}
        result.duplicates = len(parsed) - len(fresh)
        result.new = len(fresh)
        if fresh:
            moves = group_moves([fill for fill, _ in fresh.values()])
            result.moves = len(moves)
            engine_moves, announced = _store(locked, moves, fresh, seen, source)
            order_ids: list[str] = []
            decision_ids: list[str] = []
            if copy and locked.is_active:
                for engine_move in engine_moves:
                    fanout = copy_move(move=engine_move, dispatch=False)
                    result.fanouts.append(fanout)
                    result.decisions += fanout.placed + fanout.skipped + fanout.refused
                    result.orders += fanout.placed
                    order_ids.extend(str(pk) for pk in fanout.order_ids)
                    decision_ids.extend(fanout.decision_ids)
            # After commit, most urgent first: orders to the venue, decisions to their
            # owners, the fills to the trader's stream, then to ClickHouse.
            after_commit(order_ids=order_ids, decision_ids=decision_ids)
            new_rows, moved = announced
            trader_activity_publish_on_commit(trader_id=locked.pk, fills=new_rows, positions=moved)
        _cursor_advance(locked, [fill for fill, _ in fresh.values()])
        if fresh:
            trader_id = str(locked.pk)
            transaction.on_commit(lambda: _export_dispatch(trader_id))
    return result


def _prior_parts(
    trader: Trader, moves: list[LeaderMove]
) -> dict[tuple[str, int, Decimal], Decimal]:
    """Signed sizes of fills stored earlier that belong to the same (coin, ms, start) as a new
    move: the part of a move that arrived first."""
    keys = {(m.coin, m.time_ms, m.start) for m in moves if m.start is not None}
    if not keys:
        return {}
    rows = TraderEvent.objects.filter(
        trader=trader,
        coin__in={k[0] for k in keys},
        time_ms__in={k[1] for k in keys},
        start_position__isnull=False,
    ).values_list("coin", "time_ms", "start_position", "side", "size")
    prior: dict[tuple[str, int, Decimal], Decimal] = defaultdict(lambda: ZERO)
    for coin, time_ms, start, side, size in rows:
        key = (coin, time_ms, start)
        if key in keys:
            prior[key] += size if side == "buy" else -size
    return prior


def _opened_before(trader: Trader, coin: str, time_ms: int, exclude: str) -> int | None:
    """When the leader's position in ``coin`` as of ``time_ms`` was opened (a move that opened
    it from flat or flipped it), from the stored history; None when no such move is stored."""
    return (
        TraderEvent.objects.filter(
            trader=trader, coin=coin, opens_position=True, time_ms__lte=time_ms
        )
        .exclude(move_key=exclude)
        .aggregate(at=Max("time_ms"))["at"]
    )


def _store(
    trader: Trader,
    moves: list[LeaderMove],
    fresh: dict[str, tuple[VenueFill, int]],
    seen: datetime,
    source: str,
) -> tuple[list[EngineMove], tuple[list[TraderEvent], list[TraderPosition]]]:
    positions = {
        p.coin: p
        for p in TraderPosition.objects.select_for_update().filter(
            trader=trader, coin__in={m.coin for m in moves}
        )
    }
    prior = _prior_parts(trader, moves)
    rows: list[TraderEvent] = []
    engine_moves: list[EngineMove] = []
    touched: set[str] = set()
    for move in moves:
        position = positions.get(move.coin)
        if position is None:
            position = positions[move.coin] = TraderPosition(trader=trader, coin=move.coin)
        in_order = move.time_ms >= position.last_time_ms
        if move.start is not None:
            before = move.start + prior.get((move.coin, move.time_ms, move.start), ZERO)
        else:
            before = position.quantity
        after = before + move.delta
        opens = after != 0 and (before == 0 or sign(after) != sign(before))
        if before == 0:
            opened_at: int | None = move.time_ms
        elif in_order and (position.pk is not None or position.last_time_ms > 0):
            opened_at = position.opened_at_ms
        else:
            opened_at = _opened_before(trader, move.coin, move.time_ms, move.key)
        for fill in move.fills:
            _, seq = fresh[fill.venue_fill_id]
            rows.append(
                TraderEvent(
                    trader=trader,
                    exchange=trader.exchange,
                    fill_id=fill.venue_fill_id,
                    coin=fill.symbol,
                    side=fill.side,
                    price=fill.price,
                    size=fill.size,
                    start_position=fill.start_position,
                    direction=fill.direction or "",
                    closed_pnl=fill.closed_pnl or ZERO,
                    fee=fill.fee,
                    fee_token=fill.fee_token,
                    builder_fee=fill.builder_fee,
                    oid=fill.venue_order_id,
                    cloid=fill.cloid,
                    tx_hash=fill.tx_hash,
                    crossed=fill.is_taker,
                    is_liquidation=fill.is_liquidation,
                    time_ms=fill.time_ms,
                    filled_at=_datetime(fill.time_ms),
                    seq=seq,
                    move_key=move.key,
                    opens_position=opens,
                    source=source,
                    seen_at=seen,
                    raw=fill.raw,
                )
            )
        if in_order:
            position.quantity = after
            position.last_time_ms = move.time_ms
            if after == 0:
                position.opened_at_ms = None
                position.entry_price = None
            elif opens:
                position.opened_at_ms = move.time_ms
                position.entry_price = move.price
            touched.add(move.coin)
        engine_moves.append(
            EngineMove(
                facts=MoveFacts(
                    coin=move.coin,
                    before=before,
                    after=after,
                    price=move.price,
                    time_ms=move.time_ms,
                    leader_equity=trader.account_value,
                    leader_leverage=position.leverage,
                    opened_at_ms=opened_at,
                ),
                trader_id=trader.pk,
                exchange=trader.exchange,
                key=move.key,
                trader_event_id=None,  # set below, once the rows have ids
                seen_at=seen,
                fill_ids=tuple(move.fill_ids),
            )
        )
    TraderEvent.objects.bulk_create(rows)
    first_event: dict[str, uuid.UUID] = {}
    for row in rows:
        first_event.setdefault(row.move_key, row.pk)
    for coin in touched:
        positions[coin].save()
    announced = (rows, [positions[c] for c in touched])
    return [
        EngineMove(
            facts=m.facts,
            trader_id=m.trader_id,
            exchange=m.exchange,
            key=m.key,
            trader_event_id=first_event.get(m.key),
            seen_at=m.seen_at,
            fill_ids=m.fill_ids,
        )
        for m in engine_moves
    ], announced


def _cursor_advance(trader: Trader, fills: list[VenueFill]) -> None:
    cursor, _ = TraderFillCursor.objects.select_for_update().get_or_create(trader=trader)
    newest = max((f.time_ms for f in fills), default=0)
    cursor.last_fill_time_ms = max(cursor.last_fill_time_ms, newest)
    cursor.fills_seen += len(fills)
    cursor.last_error = ""
    cursor.save()


def trader_cursor_error(*, trader: Trader, error: str) -> None:
    TraderFillCursor.objects.update_or_create(
        trader=trader, defaults={"last_error": error[:2000], "last_polled_at": timezone.now()}
    )


# --------------------------------------------------------------------------- ClickHouse


def _export_dispatch(trader_id: str) -> None:
    from copytrade.tasks import trader_events_export_task

    try:
        trader_events_export_task.delay()
    except Exception:  # the beat task exports what this missed
        logger.exception("could not dispatch the trader events export (trader %s)", trader_id)


def trader_events_export(*, limit: int = 5000) -> int:
    """Send unexported fills to ClickHouse ``trader_events`` (analytics' buffered ingestion)
    and mark them; returns how many. At least once: a crash after the send re-sends, and the
    table drops duplicates by event hash."""
    from analytics.feeds.hyperliquid import trader_event_from_fill
    from analytics.services import trader_events_enqueue

    with transaction.atomic():
        events = list(
            TraderEvent.objects.select_for_update(skip_locked=True)
            .filter(exported_at__isnull=True)
            .order_by("seen_at", "time_ms")[:limit]
        )
        if not events:
            return 0
        leverage = {
            (p.trader_id, p.coin): p.leverage
            for p in TraderPosition.objects.filter(
                trader_id__in={e.trader_id for e in events}, leverage__isnull=False
            )
        }
        rows = [
            trader_event_from_fill(
                event.raw or _raw(event),
                trader_id=str(event.trader_id),
                exchange=event.exchange,
                leverage=leverage.get((event.trader_id, event.coin)),
            )
            for event in events
        ]
        ids = sorted(str(e.pk) for e in events)
        batch_id = "copy-fills-" + hashlib.sha256("|".join(ids).encode()).hexdigest()[:24]
        trader_events_enqueue(events=rows, batch_id=batch_id)
        TraderEvent.objects.filter(pk__in=[e.pk for e in events]).update(exported_at=timezone.now())
    return len(events)


def _raw(event: TraderEvent) -> dict[str, Any]:
    """A userFills record rebuilt from the row (rows written without their raw record)."""
    return {
        "coin": event.coin,
        "px": str(event.price),
        "sz": str(event.size),
        "side": "B" if event.side == "buy" else "A",
        "time": event.time_ms,
        "startPosition": str(event.start_position or 0),
        "dir": event.direction,
        "closedPnl": str(event.closed_pnl),
        "hash": event.tx_hash,
        "oid": event.oid,
        "crossed": bool(event.crossed),
        "fee": str(event.fee),
        "tid": event.fill_id,
    }
