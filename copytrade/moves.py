"""Leader fills -> leader *moves*: pure functions, no database.

A move is what the copy engine copies: the fills of one coin in one millisecond that report the
same start position. Hyperliquid lists several fills of one transaction (partial fills of one
order against several makers) with one ``startPosition``, and a leader's own buy and sell
matching each other in the same millisecond report the same start too (data/hyperliquid
README). Copying fill by fill would copy the parts of one order separately (each perhaps below
the minimum) and both legs of a self-match; copying the move copies the net change.

Order does not matter: the same fills in any order -- newest first as the venue lists them,
shuffled within a millisecond, split over several deliveries -- give the same moves in the same
canonical order, so replaying them decides the same.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from trading.exchanges import VenueFill

ZERO = Decimal(0)


def sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def signed_size(fill: VenueFill) -> Decimal:
    return fill.size if fill.side == "buy" else -fill.size


def move_key(coin: str, time_ms: int, fill_ids: Iterable[str]) -> str:
    """A stable name for a move: its coin, its millisecond and a digest of its fill ids (a
    late part of a move -- fills of the same millisecond delivered later -- is a move of its
    own with a key of its own)."""
    digest = hashlib.sha256("|".join(sorted(fill_ids)).encode()).hexdigest()[:16]
    return f"{coin}:{time_ms}:{digest}"


@dataclass(frozen=True)
class LeaderMove:
    coin: str
    time_ms: int
    start: Decimal | None  # the venue's start position (None: the venue does not say)
    fills: tuple[VenueFill, ...]  # sorted by fill id
    key: str

    @property
    def delta(self) -> Decimal:
        return sum((signed_size(f) for f in self.fills), ZERO)

    @property
    def gross_size(self) -> Decimal:
        return sum((f.size for f in self.fills), ZERO)

    @property
    def price(self) -> Decimal:
        """Average price of the fills on the move's net side (all fills when it nets to zero):
        the leader's price a copy is compared with."""
        direction = sign(self.delta)
        chosen = [f for f in self.fills if direction == 0 or sign(signed_size(f)) == direction]
        size = sum((f.size for f in chosen), ZERO)
        if size == 0:
            return self.fills[0].price
        return sum((f.price * f.size for f in chosen), ZERO) / size

    @property
    def fill_ids(self) -> list[str]:
        return [f.venue_fill_id for f in self.fills]

    @property
    def is_liquidation(self) -> bool:
        return any(f.is_liquidation for f in self.fills)


def group_moves(fills: Sequence[VenueFill]) -> list[LeaderMove]:
    """Group fills into moves and put them in canonical order: by millisecond; within one
    millisecond and coin, following the chain of positions (the move that starts where another
    ends comes after it); then by coin and key. Duplicate fill ids count once."""
    unique: dict[str, VenueFill] = {}
    for item in fills:
        unique.setdefault(item.venue_fill_id, item)
    buckets: dict[tuple[str, int, Decimal | None, str], list[VenueFill]] = defaultdict(list)
    for item in unique.values():
        # Without a start position nothing says which fills belong together: one move each.
        alone = "" if item.start_position is not None else item.venue_fill_id
        buckets[(item.symbol, item.time_ms, item.start_position, alone)].append(item)
    moves = []
    for (coin, time_ms, start, _), items in buckets.items():
        items.sort(key=lambda f: f.venue_fill_id)
        moves.append(
            LeaderMove(
                coin=coin,
                time_ms=time_ms,
                start=start,
                fills=tuple(items),
                key=move_key(coin, time_ms, (f.venue_fill_id for f in items)),
            )
        )
    by_instant: dict[tuple[int, str], list[LeaderMove]] = defaultdict(list)
    for move in moves:
        by_instant[(move.time_ms, move.coin)].append(move)
    ordered: list[LeaderMove] = []
    for instant in sorted(by_instant):
        ordered.extend(_chain(by_instant[instant]))
    return ordered


def _chain(moves: list[LeaderMove]) -> list[LeaderMove]:
    """Moves of one coin in one millisecond, in the order their positions chain."""
    if len(moves) == 1:
        return moves
    remaining = sorted(moves, key=lambda m: (m.start is None, m.start or ZERO, m.key))
    ends = {m.start + m.delta for m in remaining if m.start is not None}
    result: list[LeaderMove] = []
    while remaining:
        # Start from a move no other remaining move leads into; else (a cycle, or no starts)
        # the first in the stable order.
        heads = [m for m in remaining if m.start is None or m.start not in ends]
        current: LeaderMove | None = heads[0] if heads else remaining[0]
        while current is not None:
            result.append(current)
            remaining.remove(current)
            if current.start is not None:
                ends.discard(current.start + current.delta)
                end = current.start + current.delta
                current = next((m for m in remaining if m.start == end), None)
            else:
                current = None
    return result
