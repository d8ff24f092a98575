"""The copy engine's rules: how one follower answers one leader move. Pure, Decimal, no I/O.

The engine (copytrade.services.engine) loads the facts for thousands of followers at once and
calls :func:`size_copy` for each; the copy simulation (copytrade.services.simulation) calls the
same function over a trader's recorded fills, so what a customer previews is what runs.

Rules, in the order they apply:

1. **Net change.** A move whose fills net to zero (the leader's own orders matching each other)
   copies nothing (``no_net_change``).
2. **New entries only.** With ``follow_new_entries_only``, a leader position that was open before
   the strategy started -- and that the follower holds no share of -- is not copied, nor any
   later change to it, until it is flat again (``new_entries_only``). A flip of such a position
   copies only the new side.
3. **Decompose** the leader's move into a closing part and an opening part:
   close to flat / flip -> the follower closes *all* of its share of that leader's position;
   reduce by x % -> the follower closes x % of its share (proportional closes, whatever the size
   mode); open / add / the new side of a flip -> sized by the size mode:

   * proportional: ``|open| x follower equity / leader equity x weight x copy_pct / 100``
     (follower equity capped by the KYC limit),
   * fixed: ``fixed_notional_usd x weight / leader price`` per opening trade,
   * multiplier: ``|open| x multiplier x weight``;

   ``inverse`` takes the opposite side of opening parts. Closing parts are capped by what the
   follower's account will hold (venue position plus its orders in flight).
4. **Remainder.** The wanted quantity adds the slot's running remainder (earlier parts too small
   to trade, lot residue); a close to flat or a flip starts afresh from the follower's share.
5. **Lot rounding** down to the venue lot.
6. **Max position.** ``max_position_usd`` caps an increasing order (``max_position`` when
   nothing is left); what the cap removes is dropped, not carried.
7. **Minimum.** Below ``max(strategy min_order_usd, wallet min_order_usd, venue minimum)`` (only
   the venue minimum for a reduce-only order) the order is skipped (``below_minimum``) and the
   whole wanted quantity carried in the remainder, so many small moves add up to one order.
8. **Slippage guard.** An IOC limit at the leader's price plus/minus ``slippage_bps`` (rounded
   toward the leader's price); when the market's touch is already beyond it, skipped
   (``slippage``) -- a copy never pays more than the customer allowed.
9. **Leverage** = the lowest of the leader's, the strategy's, the agent wallet's and the
   venue's maximum for the coin (whole number, at least 1).

Trading's risk limits run afterwards, in the order path (trading.services.bulk).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from trading.rounding import PriceRules, SizeRules, price_round, size_round

ZERO = Decimal(0)
BPS = Decimal(10_000)
HUNDRED = Decimal(100)


def sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


class Reason:
    """Reason codes a decision carries; the text is built with the numbers."""

    NO_NET_CHANGE = "no_net_change"
    NEW_ENTRIES_ONLY = "new_entries_only"
    LEADER_EQUITY_UNKNOWN = "leader_equity_unknown"
    FOLLOWER_EQUITY_UNKNOWN = "follower_equity_unknown"
    NOTHING_TO_CLOSE = "nothing_to_close"
    BELOW_MINIMUM = "below_minimum"
    MAX_POSITION = "max_position"
    SLIPPAGE = "slippage"
    NO_MARKET_PRICE = "no_market_price"
    # decided by the engine before sizing
    NOT_LISTED = "not_listed"
    STALE = "stale_signal"
    ACCOUNT_BLOCKED = "account_blocked"
    # refused by the order path (trading)
    REFUSED = "refused"
    RISK_LIMIT = "risk_limit"


@dataclass(frozen=True)
class MoveFacts:
    """One leader move, as every follower sees it."""

    coin: str
    before: Decimal  # the leader's signed position before the move
    after: Decimal
    price: Decimal  # the leader's average price
    time_ms: int
    leader_equity: Decimal | None = None
    leader_leverage: Decimal | None = None
    # When the leader's pre-move position was opened (None: before Tandem watched).
    opened_at_ms: int | None = None


@dataclass(frozen=True)
class MarketFacts:
    """The follower venue's rules and touch for the coin."""

    price_rules: PriceRules
    size_rules: SizeRules
    max_leverage: int
    bid: Decimal | None = None
    ask: Decimal | None = None
    mark: Decimal | None = None


@dataclass(frozen=True)
class FollowerFacts:
    """One strategy's settings and state for the coin."""

    size_mode: str  # proportional | fixed | multiplier
    copy_pct: Decimal = HUNDRED
    fixed_notional_usd: Decimal | None = None
    multiplier: Decimal | None = None
    inverse: bool = False
    max_leverage: Decimal = Decimal(5)
    max_position_usd: Decimal | None = None
    slippage_bps: int = 10
    min_order_usd: Decimal = Decimal(5)
    follow_new_entries_only: bool = True
    started_at_ms: int = 0
    weight: Decimal = Decimal(1)
    wallet_max_leverage: int = 5
    wallet_min_order_usd: Decimal = Decimal(5)
    equity: Decimal | None = None  # follower equity (KYC cap applied)
    attributable: Decimal = ZERO  # the follower's share of this leader's position
    remainder: Decimal = ZERO
    wallet_position: Decimal = ZERO  # what the venue account holds in the coin (filled)
    pending_position: Decimal = ZERO  # signed rest of the account's orders still in flight
    strategy_position: Decimal = ZERO  # the strategy's share over all its traders


@dataclass(frozen=True)
class Sizing:
    place: bool
    reason_code: str
    reason: str
    desired: Decimal = ZERO  # signed, before rounding (remainder included)
    remainder_after: Decimal = ZERO
    side: str = ""
    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    leverage: int | None = None
    reduce_only: bool = False
    capped: bool = False
    details: dict[str, Any] = field(default_factory=dict)


def _fmt(value: Decimal | None) -> str:
    if value is None:
        return "-"
    text = f"{value.normalize():f}"
    return text


def _usd(value: Decimal) -> str:
    return f"{value.quantize(Decimal('0.01'))}"


def open_size(
    open_abs: Decimal, move: MoveFacts, follower: FollowerFacts
) -> tuple[Decimal | None, str, str]:
    """The follower's quantity for the opening part of a move, by size mode: (quantity, reason
    code, reason) with quantity None when it cannot be sized."""
    if follower.size_mode == "fixed":
        notional = follower.fixed_notional_usd or ZERO
        return notional * follower.weight / move.price, "", ""
    if follower.size_mode == "multiplier":
        return open_abs * (follower.multiplier or ZERO) * follower.weight, "", ""
    if move.leader_equity is None or move.leader_equity <= 0:
        return (
            None,
            Reason.LEADER_EQUITY_UNKNOWN,
            "The leader's account value is not known yet, so a proportional size cannot be "
            "computed.",
        )
    if follower.equity is None or follower.equity <= 0:
        return (
            None,
            Reason.FOLLOWER_EQUITY_UNKNOWN,
            "Your account value is not known (or is zero), so a proportional size cannot be "
            "computed.",
        )
    ratio = follower.equity / move.leader_equity * follower.weight * follower.copy_pct / HUNDRED
    return open_abs * ratio, "", ""


def leverage_for(move: MoveFacts, market: MarketFacts, follower: FollowerFacts) -> int:
    caps = [
        Decimal(follower.max_leverage),
        Decimal(follower.wallet_max_leverage),
        Decimal(market.max_leverage),
    ]
    if move.leader_leverage is not None and move.leader_leverage > 0:
        caps.append(move.leader_leverage)
    return max(int(min(caps).to_integral_value(rounding=ROUND_FLOOR)), 1)


def size_copy(move: MoveFacts, market: MarketFacts, follower: FollowerFacts) -> Sizing:
    """How one follower answers one leader move (module docstring, rules 1-9)."""
    before, after = move.before, move.after
    delta = after - before
    if delta == 0:
        return Sizing(
            False,
            Reason.NO_NET_CHANGE,
            "The leader's fills in this instant net to zero (its own orders matched each "
            "other): nothing to copy.",
            remainder_after=follower.remainder,
        )
    held = before != 0
    flip = held and after != 0 and sign(after) != sign(before)
    to_flat = held and after == 0
    reducing = held and not flip and after != 0 and abs(after) < abs(before)
    adding = held and not flip and abs(after) > abs(before)
    legacy = (
        follower.follow_new_entries_only
        and held
        and follower.attributable == 0
        and (move.opened_at_ms is None or move.opened_at_ms < follower.started_at_ms)
    )
    if legacy and not flip:
        return Sizing(
            False,
            Reason.NEW_ENTRIES_ONLY,
            f"The leader's {move.coin} position was opened before this strategy started; with "
            "'follow new entries only' it is not copied until it is closed.",
            remainder_after=follower.remainder,
        )
    details: dict[str, Any] = {}

    # -- closing part: the follower's own share, proportionally
    close = ZERO
    reset = to_flat or flip
    carried = ZERO if reset else follower.remainder
    if (to_flat or flip) and not legacy:
        close = -follower.attributable
    elif reducing:
        # The follower's target shrinks by the same fraction as the leader's position, and so
        # does what it is still owed: new deviation = (held + owed) x (1 - f) - held.
        fraction = (abs(before) - abs(after)) / abs(before)
        close = -follower.attributable * fraction
        carried = follower.remainder * (1 - fraction)
        details["close_fraction"] = str(fraction)
    if close != 0:
        # Never close more than the account will hold once its orders in flight are done.
        expected = follower.wallet_position + follower.pending_position
        if sign(expected) != sign(follower.attributable):
            details["venue_position"] = str(expected)
            close = ZERO
        elif abs(close) > abs(expected):
            details["clamped_to_venue_position"] = str(expected)
            close = -expected

    # -- opening part
    open_leader = ZERO
    if not held or flip:
        open_leader = after
    elif adding:
        open_leader = delta
    opened = ZERO
    if open_leader != 0:
        quantity, code, text = open_size(abs(open_leader), move, follower)
        if quantity is None:
            if close == 0:
                return Sizing(
                    False, code, text, remainder_after=ZERO if reset else follower.remainder
                )
            details["open_not_sized"] = code
        else:
            direction = sign(open_leader) * (-1 if follower.inverse else 1)
            opened = quantity * direction
    desired = close + opened + carried
    details.update(close=str(close), open=str(opened), carried=str(carried))
    if desired == 0:
        return Sizing(
            False,
            Reason.NOTHING_TO_CLOSE,
            f"The leader reduced its {move.coin} position, but you hold no share of it to reduce.",
            desired=desired,
            remainder_after=ZERO,
            details=details,
        )

    side = "buy" if desired > 0 else "sell"
    # Reduce-only only against what the venue already holds: an order that closes a position
    # still being opened by an order in flight must not be refused for arriving first.
    held_now = follower.wallet_position
    quantity = size_round(abs(desired), market.size_rules)
    reduce_only = held_now != 0 and sign(desired) == -sign(held_now) and quantity <= abs(held_now)

    # -- max position (increasing orders only)
    capped = False
    if follower.max_position_usd is not None and not reduce_only:
        limit_quantity = follower.max_position_usd / move.price
        position = follower.strategy_position
        room = limit_quantity - position if desired > 0 else limit_quantity + position
        room = size_round(max(room, ZERO), market.size_rules)
        if quantity > room:
            capped = True
            details["capped_from"] = str(quantity)
            quantity = room
            if quantity == 0:
                return Sizing(
                    False,
                    Reason.MAX_POSITION,
                    f"Your {move.coin} position is at the strategy's maximum of "
                    f"{_usd(follower.max_position_usd)} USD.",
                    desired=desired,
                    remainder_after=ZERO,
                    capped=True,
                    details=details,
                )

    # -- the limit price and the minimum
    slip = Decimal(follower.slippage_bps) / BPS
    if side == "buy":
        limit = price_round(move.price * (1 + slip), market.price_rules, "down")
    else:
        limit = price_round(move.price * (1 - slip), market.price_rules, "up")
    venue_min = market.size_rules.min_notional
    minimum = (
        venue_min
        if reduce_only
        else max(venue_min, follower.min_order_usd, follower.wallet_min_order_usd)
    )
    notional = quantity * limit
    if quantity == 0 or notional < minimum:
        return Sizing(
            False,
            Reason.BELOW_MINIMUM,
            f"below minimum: {_fmt(quantity)} {move.coin} is worth {_usd(notional)} USD, under "
            f"the minimum order of {_usd(minimum)} USD; carried over "
            f"({_fmt(desired)} {move.coin}) until later moves add up to the minimum.",
            desired=desired,
            remainder_after=ZERO if capped else desired,
            side=side,
            capped=capped,
            details=details,
        )

    # -- slippage guard against the market now
    touch = (market.ask if side == "buy" else market.bid) or market.mark
    if touch is None:
        return Sizing(
            False,
            Reason.NO_MARKET_PRICE,
            f"No current market price for {move.coin} on your venue.",
            desired=desired,
            remainder_after=carried,
            side=side,
            details=details,
        )
    if (side == "buy" and touch > limit) or (side == "sell" and touch < limit):
        word = "ask" if side == "buy" else "bid"
        return Sizing(
            False,
            Reason.SLIPPAGE,
            f"The market moved beyond the slippage limit: the {word} is {_fmt(touch)}, the "
            f"leader traded at {_fmt(move.price)} and {follower.slippage_bps} bps allows "
            f"{_fmt(limit)}.",
            desired=desired,
            remainder_after=carried,
            side=side,
            limit_price=limit,
            details=details,
        )

    signed = quantity if side == "buy" else -quantity
    return Sizing(
        True,
        "",
        "Copied." if not capped else "Copied, capped by the strategy's maximum position.",
        desired=desired,
        remainder_after=ZERO if capped else desired - signed,
        side=side,
        quantity=quantity,
        limit_price=limit,
        leverage=None if reduce_only else leverage_for(move, market, follower),
        reduce_only=reduce_only,
        capped=capped,
        details=details,
    )
