"""Copy simulation: what a strategy would have done over the last N days, from its traders'
recorded fills, before the customer starts it.

The same pieces as the live engine: the stored fills are grouped into moves
(copytrade.moves), and each follower decision is :func:`copytrade.sizing.size_copy` with the
same settings. What differs is only the world around it, and each assumption is stated in the
result: the strategy starts at the beginning of the window (so ``follow_new_entries_only``
ignores positions already open then); every placed order fills completely at the leader's
price and pays the venue's taker fee; the leader's equity is its latest known account value;
the follower's equity is the one given (default: the agent wallet's, else 10,000 USD) and
moves with realised PnL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from config.errors import ValidationFailed
from copytrade.models import Trader, TraderEvent
from copytrade.moves import group_moves
from copytrade.services.common import parse_decimal, parse_int
from copytrade.sizing import FollowerFacts, MarketFacts, MoveFacts, size_copy
from trading import pnl
from trading.exchanges import VenueFill

ZERO = Decimal(0)
DEFAULT_EQUITY = Decimal(10_000)
MAX_EVENTS = 50_000


@dataclass
class SimulationResult:
    days: int
    start: str
    end: str
    equity_start: Decimal
    equity_end: Decimal
    realized_pnl: Decimal = ZERO
    unrealized_pnl: Decimal = ZERO
    fees: Decimal = ZERO
    volume: Decimal = ZERO
    copied: int = 0
    skipped: int = 0
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    max_drawdown_pct: Decimal = ZERO
    positions: dict[str, str] = field(default_factory=dict)
    curve: list[dict[str, Any]] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)

    @property
    def total_pnl(self) -> Decimal:
        return self.realized_pnl + self.unrealized_pnl - self.fees

    @property
    def return_pct(self) -> Decimal:
        if not self.equity_start:
            return ZERO
        return (self.total_pnl / self.equity_start * 100).quantize(Decimal("0.01"))

    def as_dict(self) -> dict[str, Any]:
        q = Decimal("0.01")
        return {
            "days": self.days,
            "start": self.start,
            "end": self.end,
            "equity_start": str(self.equity_start.quantize(q)),
            "equity_end": str(self.equity_end.quantize(q)),
            "realized_pnl": str(self.realized_pnl.quantize(q)),
            "unrealized_pnl": str(self.unrealized_pnl.quantize(q)),
            "fees": str(self.fees.quantize(q)),
            "total_pnl": str(self.total_pnl.quantize(q)),
            "return_pct": str(self.return_pct),
            "volume": str(self.volume.quantize(q)),
            "copied": self.copied,
            "skipped": self.skipped,
            "skipped_by_reason": self.skipped_by_reason,
            "max_drawdown_pct": str(self.max_drawdown_pct.quantize(q)),
            "positions": self.positions,
            "curve": self.curve,
            "assumptions": self.assumptions,
        }


def _fill(event: TraderEvent) -> VenueFill:
    return VenueFill(
        venue_fill_id=event.fill_id,
        symbol=event.coin,
        side="buy" if event.side == "buy" else "sell",
        price=event.price,
        size=event.size,
        time_ms=event.time_ms,
        start_position=event.start_position,
    )


def _market_rules(venue: str, coins: set[str]) -> dict[str, MarketFacts]:
    from trading.models import Symbol

    return {
        s.name: MarketFacts(
            price_rules=s.price_rules, size_rules=s.size_rules, max_leverage=s.max_leverage
        )
        for s in Symbol.objects.filter(venue=venue, name__in=coins)
    }


def copy_simulate(
    *,
    allocations: Sequence[Mapping[str, Any]],
    settings: Mapping[str, Any],
    days: int | str = 30,
    equity: Decimal | str | None = None,
    venue: str | None = None,
    wallet_limits: tuple[int, Decimal] = (50, Decimal(0)),
) -> SimulationResult:
    """Run the strategy described by ``settings`` and ``allocations`` over the last ``days``
    of its traders' stored fills (module docstring). Reads only."""
    from django.conf import settings as django_settings

    from copytrade.services.strategies import DEFAULTS, _check_consistency, _clean_setting

    period = parse_int(days, "days", minimum=1, maximum=365)
    start_equity = parse_decimal(
        equity if equity not in (None, "") else DEFAULT_EQUITY,
        "equity",
        minimum=ZERO,
        exclusive_minimum=True,
        maximum=Decimal("1e10"),
    )
    assert start_equity is not None
    raw = {**DEFAULTS, "name": "simulation", **dict(settings)}
    values = {
        name: _clean_setting(name, raw.get(name))
        for name in (
            "size_mode", "copy_pct", "fixed_notional_usd", "multiplier", "inverse",
            "max_leverage", "max_position_usd", "slippage_bps", "min_order_usd",
            "follow_new_entries_only",
        )
    }  # fmt: skip
    _check_consistency(values)
    weights: dict[Any, Decimal] = {}
    for index, item in enumerate(allocations):
        weight = parse_decimal(
            item.get("weight"), f"allocations[{index}].weight", minimum=ZERO,
            exclusive_minimum=True, maximum=Decimal(1),
        )  # fmt: skip
        assert weight is not None
        weights[str(item.get("trader") or item.get("trader_id"))] = weight
    if not weights:
        raise ValidationFailed("Choose at least one trader.", field="allocations")
    if sum(weights.values(), ZERO) > 1:
        raise ValidationFailed("Weights may add up to at most 1.", field="allocations")
    traders = {str(t.pk): t for t in Trader.objects.filter(pk__in=list(weights))}
    if set(traders) != set(weights):
        raise ValidationFailed("Unknown trader.", field="allocations", code="unknown_trader")
    end = timezone.now()
    begin = end - timedelta(days=period)
    begin_ms = int(begin.timestamp() * 1000)
    events = list(
        TraderEvent.objects.filter(trader_id__in=list(traders), time_ms__gte=begin_ms).order_by(
            "time_ms", "seq"
        )[:MAX_EVENTS]
    )
    venue = venue or str(django_settings.TANDEM.get("DEFAULT_VENUE", "paper"))
    markets = _market_rules(venue, {e.coin for e in events})
    taker_bps = Decimal(str(django_settings.TANDEM.get("PAPER_TAKER_FEE_BPS", "4.5")))
    result = SimulationResult(
        days=period,
        start=begin.isoformat(),
        end=end.isoformat(),
        equity_start=start_equity,
        equity_end=start_equity,
        assumptions=[
            "Starts at the beginning of the window: positions the traders already held then "
            "are treated as opened before the strategy started.",
            "Every copied order fills completely at the trader's price, paying a "
            f"{taker_bps} bps taker fee.",
            "Leader equity is each trader's latest known account value.",
            f"Follower equity starts at {start_equity.quantize(Decimal('0.01'))} USD.",
        ],
    )
    if len(events) == MAX_EVENTS:
        result.assumptions.append(f"Only the first {MAX_EVENTS} fills of the window were used.")
    by_trader: dict[str, list[TraderEvent]] = defaultdict(list)
    for event in events:
        by_trader[str(event.trader_id)].append(event)
    moves = []
    for trader_id, items in by_trader.items():
        for move in group_moves([_fill(e) for e in items]):
            moves.append((move.time_ms, trader_id, move))
    moves.sort(key=lambda m: (m[0], m[1]))  # stable: a trader's moves keep their order

    attributable: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    remainders: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    positions: dict[str, pnl.PositionState] = defaultdict(pnl.PositionState)
    leader_opened: dict[tuple[str, str], int | None] = {}
    last_price: dict[str, Decimal] = {}
    reasons: Counter[str] = Counter()
    equity_now = start_equity
    peak = start_equity
    curve_every = max(len(moves) // 200, 1)
    max_lev, wallet_min = wallet_limits
    for index, (time_ms, trader_id, move) in enumerate(moves):
        coin = move.coin
        last_price[coin] = move.price
        before = move.start if move.start is not None else ZERO
        after = before + move.delta
        key = (trader_id, coin)
        opened = (
            leader_opened.get(key) if key in leader_opened else (time_ms if before == 0 else None)
        )
        if after == 0:
            leader_opened[key] = None
        elif before == 0 or (before > 0) != (after > 0):
            leader_opened[key] = time_ms
        else:
            leader_opened.setdefault(key, opened)
        market = markets.get(coin)
        if market is None:
            reasons["not_listed"] += 1
            result.skipped += 1
            continue
        market = MarketFacts(
            price_rules=market.price_rules,
            size_rules=market.size_rules,
            max_leverage=market.max_leverage,
            bid=move.price,
            ask=move.price,
            mark=move.price,
        )
        strategy_position = sum((q for (t, c), q in attributable.items() if c == coin), ZERO)
        facts = FollowerFacts(
            size_mode=values["size_mode"],
            copy_pct=values["copy_pct"],
            fixed_notional_usd=values["fixed_notional_usd"],
            multiplier=values["multiplier"],
            inverse=values["inverse"],
            max_leverage=values["max_leverage"],
            max_position_usd=values["max_position_usd"],
            slippage_bps=values["slippage_bps"],
            min_order_usd=values["min_order_usd"],
            follow_new_entries_only=values["follow_new_entries_only"],
            started_at_ms=begin_ms,
            weight=weights[trader_id],
            wallet_max_leverage=max_lev,
            wallet_min_order_usd=wallet_min,
            equity=equity_now,
            attributable=attributable[key],
            remainder=remainders[key],
            wallet_position=positions[coin].quantity,
            strategy_position=strategy_position,
        )
        sizing = size_copy(
            MoveFacts(
                coin=coin,
                before=before,
                after=after,
                price=move.price,
                time_ms=time_ms,
                leader_equity=traders[trader_id].account_value,
                opened_at_ms=opened,
            ),
            market,
            facts,
        )
        remainders[key] = sizing.remainder_after
        if not sizing.place or sizing.quantity is None:
            reasons[sizing.reason_code] += 1
            result.skipped += 1
            continue
        result.copied += 1
        quantity = sizing.quantity
        signed = quantity if sizing.side == "buy" else -quantity
        attributable[key] += signed
        state, leg = pnl.apply_fill(
            positions[coin],
            pnl.Leg("buy" if sizing.side == "buy" else "sell", quantity, move.price),
        )
        positions[coin] = state
        notional = quantity * move.price
        fee = pnl.fee_for(notional, taker_bps)
        result.volume += notional
        result.fees += fee
        result.realized_pnl += leg.realized_pnl
        equity_now += leg.realized_pnl - fee
        marked = equity_now + sum(
            (pnl.unrealized_pnl(p.quantity, p.entry_price, last_price.get(c, p.entry_price))
             for c, p in positions.items() if p.quantity),
            ZERO,
        )  # fmt: skip
        peak = max(peak, marked)
        if peak > 0:
            result.max_drawdown_pct = max(result.max_drawdown_pct, (peak - marked) / peak * 100)
        if index % curve_every == 0:
            result.curve.append({"time": time_ms, "equity": str(marked.quantize(Decimal("0.01")))})
    result.unrealized_pnl = sum(
        (pnl.unrealized_pnl(p.quantity, p.entry_price, last_price.get(c, p.entry_price))
         for c, p in positions.items() if p.quantity),
        ZERO,
    )  # fmt: skip
    result.equity_end = start_equity + result.total_pnl
    result.positions = {c: str(p.quantity.normalize()) for c, p in positions.items() if p.quantity}
    result.skipped_by_reason = dict(reasons)
    return result
