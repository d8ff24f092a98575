"""Alignment: how closely a follower's venue account matches what its strategy says it should
hold, and the rebalance orders that close the gap.

Target. For each coin ``c`` and each active allocation ``t`` of the strategy, the follower's
target share of leader ``t``'s current position ``L_tc`` is

* proportional: ``L_tc x follower equity / leader equity x weight_t x copy_pct / 100``,
* multiplier: ``L_tc x multiplier x weight_t``,
* fixed: the follower's current share of that position (fixed sizing is per trade, not a
  function of the leader's size), while the leader holds it, else 0,

negated for ``inverse`` strategies. With ``follow_new_entries_only`` a leader position counts
only if it was opened after the strategy started or the follower already holds a share of it.
``T_c`` is the sum over allocations, capped at ``max_position_usd``.

Alignment rate. With ``A_c`` the follower's venue position (trading's Position), ``p_c`` the
coin's latest price on the follower's venue and ``m_c`` its minimum order value::

    d_c = |A_c - T_c| x p_c                  (drift in USD)
    d'_c = d_c if d_c >= m_c else 0          (a drift no order could correct does not count)
    G   = sum_c |T_c| x p_c                  (gross target exposure)
    alignment_rate = 100 x (1 - min(1, sum_c d'_c / G))   when G > 0
                   = 100 if sum_c d'_c = 0 else 0         when G = 0

so 100 means every tradable difference is gone, 50 that half of the target exposure is
missing (or held in excess), 0 that nothing matches. Stored on the strategy (two decimals) by
the periodic task, with each coin's drift in basis points of the follower's equity
(``d_c / equity x 10 000``).

Rebalance. When ``auto_rebalance`` is on, every coin whose drift is above
``rebalance_threshold_bps`` (and tradable) gets an order for ``T_c - A_c``: an IOC limit at the
current touch plus/minus the strategy's slippage, reduce-only when it only shrinks the
position, through ``order_create`` (every pre-trade check) and recorded as a ``rebalance``
decision.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from config.errors import DomainError
from copytrade.models import (
    AllocationStatus,
    CopyDecision,
    CopySlot,
    CopyStrategy,
    DecisionKind,
    DecisionOutcome,
    SizeMode,
    StrategyStatus,
    TraderPosition,
)
from copytrade.sizing import sign

logger = logging.getLogger(__name__)
ZERO = Decimal(0)
HUNDRED = Decimal(100)
BPS = Decimal(10_000)


@dataclass
class CoinAlignment:
    coin: str
    target: Decimal
    actual: Decimal
    price: Decimal | None
    drift_usd: Decimal
    drift_bps: Decimal | None
    tradable: bool
    shares: dict[str, Decimal] = field(default_factory=dict)  # trader id -> target share


@dataclass
class AlignmentReport:
    rate: Decimal
    equity: Decimal | None
    gross_target_usd: Decimal
    drift_usd: Decimal
    coins: list[CoinAlignment]


def _ratio(strategy: CopyStrategy, weight: Decimal, leader_equity: Decimal | None,
           equity: Decimal | None) -> Decimal | None:  # fmt: skip
    if strategy.size_mode == SizeMode.MULTIPLIER:
        return (strategy.multiplier or ZERO) * weight
    if strategy.size_mode == SizeMode.PROPORTIONAL:
        if not leader_equity or not equity:
            return None
        return equity / leader_equity * weight * strategy.copy_pct / HUNDRED
    return None  # fixed


def strategy_alignment(*, strategy: CopyStrategy) -> AlignmentReport:
    """The target, the venue position and the drift per coin, and the alignment rate
    (module docstring)."""
    from copytrade.services.equity import follower_equity
    from trading.marketdata import price_get
    from trading.models import Position, Symbol

    wallet = strategy.agent_wallet
    venue = wallet.exchange if wallet else None
    equity = follower_equity(agent_wallet=wallet) if wallet else None
    allocations = list(
        strategy.allocations.filter(status=AllocationStatus.ACTIVE).select_related("trader")
    )
    slots = list(CopySlot.objects.filter(strategy=strategy).select_related("symbol"))
    attributable = {(s.trader_id, s.symbol.name): s.attributable for s in slots}
    started_ms = int(strategy.started_at.timestamp() * 1000) if strategy.started_at else 0
    inverse = -1 if strategy.inverse else 1
    targets: dict[str, Decimal] = defaultdict(lambda: ZERO)
    shares: dict[str, dict[str, Decimal]] = defaultdict(dict)
    leader_positions = TraderPosition.objects.filter(
        trader_id__in=[a.trader_id for a in allocations]
    ).exclude(quantity=0)
    weights = {a.trader_id: a for a in allocations}
    for lp in leader_positions:
        allocation = weights[lp.trader_id]
        held = attributable.get((lp.trader_id, lp.coin), ZERO)
        eligible = (
            not strategy.follow_new_entries_only
            or held != 0
            or (lp.opened_at_ms is not None and lp.opened_at_ms >= started_ms)
        )
        if not eligible:
            continue
        ratio = _ratio(strategy, allocation.weight, allocation.trader.account_value, equity)
        if ratio is None:
            share = held if sign(held) == sign(lp.quantity) * inverse else ZERO
        else:
            share = lp.quantity * ratio * inverse
        targets[lp.coin] += share
        shares[lp.coin][str(lp.trader_id)] = share
    coins = set(targets) | {s.symbol.name for s in slots}
    symbols = (
        {s.name: s for s in Symbol.objects.filter(venue=venue, name__in=coins)} if venue else {}
    )
    actual = (
        {
            p.symbol.name: p.quantity
            for p in Position.objects.filter(
                agent_wallet=wallet, symbol__name__in=coins
            ).select_related("symbol")
        }
        if wallet
        else {}
    )
    report_coins = []
    gross = drift_total = ZERO
    for coin in sorted(coins):
        symbol = symbols.get(coin)
        snapshot = price_get(venue, coin) if venue else None
        price = (snapshot.mark or snapshot.price) if snapshot else None
        target = targets.get(coin, ZERO)
        if price and strategy.max_position_usd is not None:
            limit = strategy.max_position_usd / price
            if abs(target) > limit:
                target = limit * sign(target)
        held = actual.get(coin, ZERO)
        if price is None:
            report_coins.append(
                CoinAlignment(coin, target, held, None, ZERO, None, False, shares.get(coin, {}))
            )
            continue
        drift = abs(held - target) * price
        minimum = symbol.min_notional if symbol else ZERO
        tradable = drift >= max(minimum, Decimal("0.01")) and symbol is not None
        gross += abs(target) * price
        drift_total += drift if tradable else ZERO
        report_coins.append(
            CoinAlignment(
                coin=coin,
                target=target,
                actual=held,
                price=price,
                drift_usd=drift,
                drift_bps=(drift / equity * BPS) if equity else None,
                tradable=tradable,
                shares=shares.get(coin, {}),
            )
        )
    if gross > 0:
        rate = HUNDRED * (1 - min(Decimal(1), drift_total / gross))
    else:
        rate = HUNDRED if drift_total == 0 else ZERO
    return AlignmentReport(
        rate=rate.quantize(Decimal("0.01")),
        equity=equity,
        gross_target_usd=gross,
        drift_usd=drift_total,
        coins=report_coins,
    )


@dataclass
class AlignResult:
    rate: Decimal
    rebalance_orders: int = 0
    skipped: list[str] = field(default_factory=list)


def strategy_align(*, strategy: CopyStrategy, rebalance: bool | None = None) -> AlignResult:
    """Measure, store the rate (and PnL totals), and rebalance when the strategy asks for it."""
    report = strategy_alignment(strategy=strategy)
    totals = _pnl_totals(strategy)
    CopyStrategy.objects.filter(pk=strategy.pk).update(
        alignment_rate=report.rate, updated_at=timezone.now(), **totals
    )
    strategy.alignment_rate = report.rate
    result = AlignResult(rate=report.rate)
    wanted = strategy.auto_rebalance if rebalance is None else rebalance
    if not wanted or strategy.status != StrategyStatus.ACTIVE:
        return result
    threshold = Decimal(strategy.rebalance_threshold_bps)
    for coin in report.coins:
        if not coin.tradable or coin.drift_bps is None or coin.drift_bps <= threshold:
            continue
        try:
            if _rebalance(strategy, coin):
                result.rebalance_orders += 1
        except DomainError as exc:
            result.skipped.append(f"{coin.coin}: {exc.message}")
    return result


def _pnl_totals(strategy: CopyStrategy) -> dict[str, Decimal]:
    from trading.models import Fill

    totals = Fill.objects.filter(order__strategy=strategy).aggregate(
        pnl=Sum("realized_pnl"), fees=Sum("fee")
    )
    return {"total_pnl": totals["pnl"] or ZERO, "total_fees": totals["fees"] or ZERO}


def _rebalance(strategy: CopyStrategy, coin: CoinAlignment) -> bool:
    """One rebalance order for one coin (module docstring); False when nothing was placed."""
    from trading.marketdata import price_get
    from trading.models import Symbol
    from trading.rounding import price_round, size_round
    from trading.services import order_create

    wallet = strategy.agent_wallet
    assert wallet is not None
    symbol = Symbol.objects.get(venue=wallet.exchange, name=coin.coin)
    difference = coin.target - coin.actual
    quantity = size_round(abs(difference), symbol.size_rules)
    side = "buy" if difference > 0 else "sell"
    snapshot = price_get(symbol.venue, symbol.name)
    touch = (snapshot.ask if side == "buy" else snapshot.bid) if snapshot else None
    touch = touch or (snapshot.mark if snapshot else None) or coin.price
    if quantity == 0 or touch is None:
        return False
    slip = Decimal(strategy.slippage_bps) / BPS
    limit = price_round(touch * (1 + slip if side == "buy" else 1 - slip), symbol.price_rules,
                        "up" if side == "buy" else "down")  # fmt: skip
    reduce_only = (
        coin.actual != 0 and sign(difference) == -sign(coin.actual) and quantity <= abs(coin.actual)
    )
    if quantity * limit < symbol.min_notional:
        return False
    # The slot the order is booked to: the leader with the largest share of the target (or of
    # what is held, when the target is flat).
    trader_id = _slot_trader(strategy, coin)
    if trader_id is None:
        return False
    minute = int(timezone.now().timestamp() // 60)
    key = f"rebalance:{coin.coin}:{minute}"
    with transaction.atomic():
        if CopyDecision.objects.filter(strategy=strategy, source_event_id=key).exists():
            return False
        decision = CopyDecision(
            strategy=strategy,
            user_id=strategy.user_id,
            trader_id=trader_id,
            version_id=strategy.version_id,
            version_number=strategy.version.number if strategy.version else None,
            kind=DecisionKind.REBALANCE,
            source_event_id=key,
            coin=coin.coin,
            side=side,
            desired_quantity=difference,
            limit_price=limit,
            reduce_only=reduce_only,
            details={
                "target": str(coin.target),
                "held": str(coin.actual),
                "drift_usd": str(coin.drift_usd),
                "drift_bps": str(coin.drift_bps),
                "threshold_bps": strategy.rebalance_threshold_bps,
            },
        )
        try:
            with transaction.atomic():
                created = order_create(
                    user=strategy.user,
                    symbol=coin.coin,
                    side=side,
                    quantity=quantity,
                    order_type="limit",
                    price=limit,
                    time_in_force="Ioc",
                    reduce_only=reduce_only,
                    agent_wallet_id=wallet.pk,
                    strategy=strategy,
                    source_trader=_trader(trader_id),
                    source_event_id=key,
                    round_to_venue=True,
                    metadata={"copy": {"decision": str(decision.pk), "kind": "rebalance",
                                       "strategy_version": decision.version_number}},
                )  # fmt: skip
        except DomainError as exc:
            decision.outcome = DecisionOutcome.REFUSED
            decision.reason_code = "refused"
            decision.reason = f"Rebalance refused by the pre-trade checks: {exc.message}"
            decision.save()
            return False
        decision.outcome = DecisionOutcome.PLACED
        decision.quantity = created.order.quantity
        decision.order = created.order
        decision.reason = (
            f"Drift of {coin.drift_bps:.0f} bps is above the {strategy.rebalance_threshold_bps} "
            "bps threshold: rebalanced toward the target."
        )
        try:
            decision.save()
        except IntegrityError:
            return False
    return True


def _slot_trader(strategy: CopyStrategy, coin: CoinAlignment) -> Any:
    if coin.shares:
        best = max(coin.shares.items(), key=lambda kv: abs(kv[1]))
        return best[0]
    slot = (
        CopySlot.objects.filter(strategy=strategy, symbol__name=coin.coin)
        .order_by("-committed_quantity")
        .first()
    )
    return slot.trader_id if slot else None


def _trader(trader_id: Any) -> Any:
    from copytrade.models import Trader

    return Trader.objects.get(pk=trader_id)


def strategies_align(*, limit: int = 1000) -> int:
    """Beat: align every running strategy (each in its own transaction). Returns how many."""
    count = 0
    for strategy in (
        CopyStrategy.objects.filter(status=StrategyStatus.ACTIVE)
        .select_related("agent_wallet", "agent_wallet__user", "user", "version")
        .order_by("updated_at")[:limit]
    ):
        try:
            strategy_align(strategy=strategy)
            count += 1
        except Exception:  # one strategy's failure must not stop the others
            logger.exception("aligning strategy %s failed", strategy.pk)
    return count
