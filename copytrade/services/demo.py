"""Simulated traders for the demo (`make run`): a handful of Trader rows (source ``demo``) that
trade the simulated market, producing fills in the exact ``userFills`` format -- ``tid``,
``hash``, ``oid``, ``startPosition``, ``dir``, ``closedPnl``, ``fee``/``feeToken``, partial fills
of one order sharing a millisecond and a start position -- and fed through the same ingestion
path as real leaders (``trader_fills_ingest``), so everything downstream is the real thing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

import numpy as np
from django.utils import timezone
from eth_utils import keccak

from copytrade.conf import setting
from copytrade.models import Trader, TraderEventSource, TraderPosition, TraderSource
from trading import pnl
from trading.rounding import PriceRules, price_round, to_wire

ZERO = Decimal(0)
TAKER_FEE_BPS = Decimal("4.5")


@dataclass(frozen=True)
class Persona:
    alias: str
    tags: tuple[str, ...]
    coins: tuple[str, ...]
    risk: float  # share of equity per trade, on average
    leverage: int
    activity: float  # chance of trading on a step


PERSONAS: tuple[Persona, ...] = (
    Persona("Demo · Momentum", ("demo", "momentum"), ("BTC", "ETH"), 0.25, 5, 0.35),
    Persona("Demo · SOL swing", ("demo", "swing"), ("SOL", "ETH"), 0.2, 4, 0.25),
    Persona("Demo · Degen", ("demo", "high-risk"), ("DOGE", "kPEPE", "ARB"), 0.35, 8, 0.45),
    Persona("Demo · Careful BTC", ("demo", "low-risk"), ("BTC",), 0.1, 2, 0.15),
    Persona("Demo · Rotator", ("demo", "rotation"), ("ETH", "SOL", "ARB"), 0.15, 3, 0.3),
)


def demo_address(index: int) -> str:
    return "0x" + keccak(text=f"tandem-demo-trader:{index}")[-20:].hex()


def _sz_decimals(coin: str) -> int:
    from trading.exchanges.paper.state import UNIVERSE

    return next((m.sz_decimals for m in UNIVERSE if m.name == coin), 2)


def _start_price(coin: str) -> Decimal:
    from trading.marketdata.simulator import DEMO_MARKETS

    return next((m.start_price for m in DEMO_MARKETS if m.symbol == coin), Decimal(100))


def demo_traders_ensure(*, count: int | None = None) -> list[Trader]:
    """The demo traders, created on first use (idempotent), with an account value."""
    wanted = min(int(count or setting("COPY_DEMO_TRADERS")), len(PERSONAS))
    traders = []
    for index, persona in enumerate(PERSONAS[:wanted]):
        address = demo_address(index)
        trader, _ = Trader.objects.get_or_create(
            exchange="paper",
            src_uid=address,
            defaults={
                "alias": persona.alias,
                "addr": address,
                "tags": list(persona.tags),
                "source": TraderSource.DEMO,
                "account_value": Decimal(100_000),
                "account_value_at": timezone.now(),
                "metadata": {"persona": index},
            },
        )
        traders.append(trader)
    return traders


def _persona(trader: Trader) -> Persona:
    return PERSONAS[int((trader.metadata or {}).get("persona", 0)) % len(PERSONAS)]


def _fill_records(
    *,
    coin: str,
    side: str,
    size: Decimal,
    price: Decimal,
    start: Decimal,
    entry: Decimal,
    time_ms: int,
    rng: np.random.Generator,
    ids: Callable[[], int],
) -> tuple[list[dict[str, Any]], pnl.PositionState]:
    """One order's fills (1-3 partial fills, one millisecond, one start position)."""
    decimals = _sz_decimals(coin)
    lot = Decimal(1).scaleb(-decimals)
    parts = int(rng.integers(1, 4)) if size >= 3 * lot else 1
    sizes = []
    remaining = size
    for part in range(parts - 1):
        share = (size * Decimal(str(round(float(rng.uniform(0.2, 0.5)), 3)))).quantize(
            lot, rounding=ROUND_DOWN
        )
        share = min(max(share, lot), remaining - lot * (parts - 1 - part))
        sizes.append(share)
        remaining -= share
    sizes.append(remaining)
    oid = ids()
    tx = "0x" + hashlib.sha256(f"demo-{coin}-{time_ms}-{oid}".encode()).hexdigest()
    state = pnl.PositionState(start, entry if start else ZERO)
    legs = [pnl.Leg("buy" if side == "buy" else "sell", part, price) for part in sizes if part > 0]
    after, results = pnl.apply_legs(state, legs)
    records = []
    for leg, outcome in zip(legs, results, strict=True):
        fee = pnl.fee_for(leg.size * price, TAKER_FEE_BPS)
        records.append(
            {
                "coin": coin,
                "px": to_wire(price),
                "sz": to_wire(leg.size),
                "side": "B" if side == "buy" else "A",
                "time": time_ms,
                "startPosition": to_wire(start),
                "dir": outcome.direction,
                "closedPnl": to_wire(pnl.q8(outcome.realized_pnl)),
                "hash": tx,
                "oid": oid,
                "crossed": True,
                "fee": to_wire(fee),
                "tid": ids(),
                "feeToken": "USDC",
            }
        )
    return records, after


def _decide(
    persona: Persona,
    position: Decimal,
    equity: Decimal,
    price: Decimal,
    coin: str,
    rng: np.random.Generator,
) -> tuple[str, Decimal] | None:
    """(side, size) of the persona's next order in ``coin``, or None (hold)."""
    decimals = _sz_decimals(coin)
    lot = Decimal(1).scaleb(-decimals)
    notional = equity * Decimal(str(round(float(rng.uniform(0.5, 1.5)) * persona.risk, 4)))
    fresh = (notional / price).quantize(lot, rounding=ROUND_DOWN)
    roll = float(rng.random())
    if position == 0:
        if fresh <= 0:
            return None
        return ("buy" if roll < 0.55 else "sell"), fresh
    long = position > 0
    if roll < 0.25:  # add
        return ("buy" if long else "sell"), fresh
    if roll < 0.55:  # reduce part
        part = (abs(position) * Decimal(str(round(float(rng.uniform(0.2, 0.6)), 2)))).quantize(
            lot, rounding=ROUND_DOWN
        )
        return (("sell" if long else "buy"), part) if part > 0 else None
    if roll < 0.85:  # close
        return ("sell" if long else "buy"), abs(position)
    if roll < 0.93:  # flip
        return ("sell" if long else "buy"), abs(position) + fresh
    return None


def _ids() -> Callable[[], int]:
    counter = iter(range(int(timezone.now().timestamp() * 1000) * 1000, 2**62))
    return lambda: next(counter)


def demo_traders_step(*, seed: int | None = None, force: bool = False) -> int:
    """One beat of the demo traders: each may trade one of its coins at the simulated market's
    price; the fills go through ``trader_fills_ingest``. Returns the number of fills."""
    from copytrade.services.ingest import trader_fills_ingest
    from trading.marketdata import price_get

    venue = "paper"
    now = timezone.now()
    rng = np.random.default_rng(seed if seed is not None else int(now.timestamp() * 1000))
    ids = _ids()
    count = 0
    for trader in demo_traders_ensure():
        persona = _persona(trader)
        if not force and float(rng.random()) > persona.activity:
            continue
        coin = persona.coins[int(rng.integers(0, len(persona.coins)))]
        snapshot = price_get(venue, coin)
        price = snapshot.price if snapshot else _start_price(coin)
        position = TraderPosition.objects.filter(trader=trader, coin=coin).first()
        held = position.quantity if position else ZERO
        entry = (position.entry_price or price) if position else price
        equity = trader.account_value or Decimal(100_000)
        decision = _decide(persona, held, equity, price, coin, rng)
        if decision is None:
            continue
        side, size = decision
        if size <= 0:
            continue
        records, _ = _fill_records(
            coin=coin, side=side, size=size, price=price, start=held, entry=entry,
            time_ms=int(now.timestamp() * 1000), rng=rng, ids=ids,
        )  # fmt: skip
        _leverage(trader, coin, persona.leverage)
        trader_fills_ingest(trader=trader, fills=records, source=TraderEventSource.DEMO)
        _equity_book(trader, records)
        count += len(records)
    return count


def _leverage(trader: Trader, coin: str, leverage: int) -> None:
    TraderPosition.objects.get_or_create(
        trader=trader, coin=coin, defaults={"leverage": Decimal(leverage)}
    )
    TraderPosition.objects.filter(trader=trader, coin=coin, leverage__isnull=True).update(
        leverage=Decimal(leverage)
    )


def _equity_book(trader: Trader, records: list[dict[str, Any]]) -> None:
    change = sum((Decimal(r["closedPnl"]) - Decimal(r["fee"]) for r in records), ZERO)
    value = max((trader.account_value or Decimal(100_000)) + change, Decimal(1_000))
    Trader.objects.filter(pk=trader.pk).update(account_value=value, account_value_at=timezone.now())
    trader.account_value = value


def demo_history_generate(
    *, trader: Trader, days: int = 14, trades: int = 150, seed: int = 7
) -> int:
    """Backfill ``trades`` orders over the last ``days`` for a demo trader, on a random walk
    that ends at today's price: history for the leaderboard and the copy simulation. Ingested
    with copying off (nobody copied the past). Idempotent: a trader with history is left."""
    from copytrade.models import TraderEvent
    from copytrade.services.ingest import trader_fills_ingest
    from trading.marketdata import price_get

    if TraderEvent.objects.filter(trader=trader).exists():
        return 0
    persona = _persona(trader)
    rng = np.random.default_rng(seed + int((trader.metadata or {}).get("persona", 0)))
    now = timezone.now()
    start = now - timedelta(days=days)
    span_ms = int((now - start).total_seconds() * 1000)
    times = sorted(int(start.timestamp() * 1000) + int(x) for x in rng.integers(0, span_ms, trades))
    walks: dict[str, list[Decimal]] = {}
    for coin in persona.coins:
        snapshot = price_get("paper", coin)
        last = float(snapshot.price if snapshot else _start_price(coin))
        walk = np.cumsum(rng.normal(0, 0.012, trades))
        path = last * np.exp(walk - walk[-1])  # a random walk that ends at today's price
        rules = PriceRules.hyperliquid_perp(_sz_decimals(coin))
        walks[coin] = [price_round(Decimal(repr(float(p))), rules) for p in path]
    positions: dict[str, pnl.PositionState] = {c: pnl.PositionState() for c in persona.coins}
    equity = Decimal(100_000)
    ids = _ids()
    records: list[dict[str, Any]] = []
    for index, time_ms in enumerate(times):
        coin = persona.coins[int(rng.integers(0, len(persona.coins)))]
        price = walks[coin][index]
        state = positions[coin]
        decision = _decide(persona, state.quantity, equity, price, coin, rng)
        if decision is None or decision[1] <= 0:
            continue
        side, size = decision
        fills, after = _fill_records(
            coin=coin, side=side, size=size, price=price, start=state.quantity,
            entry=state.entry_price or price, time_ms=time_ms, rng=rng, ids=ids,
        )  # fmt: skip
        positions[coin] = after
        equity += sum((Decimal(f["closedPnl"]) - Decimal(f["fee"]) for f in fills), ZERO)
        records.extend(fills)
    for coin in persona.coins:
        _leverage(trader, coin, persona.leverage)
    records.reverse()  # the venue lists newest first
    trader_fills_ingest(trader=trader, fills=records, source=TraderEventSource.REPLAY, copy=False)
    Trader.objects.filter(pk=trader.pk).update(account_value=max(equity, Decimal(1_000)))
    return len(records)


def demo_portfolio_seed(*, customer: Any, signer: Any) -> list[str]:
    """The demo customer's copy trading, idempotent: paper symbols, an active paper agent wallet
    (approved with the demo wallet's own signature), the demo traders with history, and a
    running two-trader portfolio strategy. ``signer`` is the customer's eth-account key.
    Returns printable lines."""
    from eth_account.messages import encode_typed_data

    from accounts.models import AgentWallet, AgentWalletStatus
    from accounts.services import agent_wallet_approve, agent_wallet_generate
    from copytrade.models import CopyStrategy, StrategyStatus
    from copytrade.services.strategies import strategy_activate, strategy_create
    from trading.models import Symbol
    from trading.services import symbols_sync

    lines = []
    if not Symbol.objects.filter(venue="paper").exists():
        symbols_sync(venue="paper")
        lines.append("paper symbols synced")
    wallet = (
        AgentWallet.objects.filter(user=customer, exchange="paper", status=AgentWalletStatus.ACTIVE)
        .order_by("created_at")
        .first()
    )
    if wallet is None:
        approval = agent_wallet_generate(user=customer, name="Demo paper", exchange="paper")
        signed = signer.sign_message(encode_typed_data(full_message=approval.typed_data))
        wallet = agent_wallet_approve(
            user=customer,
            agent_wallet_id=approval.agent_wallet.pk,
            signature="0x" + bytes(signed.signature).hex().removeprefix("0x"),
        )
        lines.append(f"demo paper agent wallet {wallet.addr} approved")
    traders = demo_traders_ensure()
    for trader in traders:
        made = demo_history_generate(trader=trader)
        if made:
            lines.append(f"{trader.alias}: {made} historical fills")
    strategy = CopyStrategy.objects.filter(user=customer, name="Demo portfolio").first()
    if strategy is None:
        strategy = strategy_create(
            user=customer,
            name="Demo portfolio",
            description="Two simulated traders, 60/40, copying 25 % of the proportional size.",
            allocations=[
                {"trader": traders[0].pk, "weight": Decimal("0.6")},
                {"trader": traders[1].pk, "weight": Decimal("0.4")},
            ],
            agent_wallet_id=wallet.pk,
            copy_pct=Decimal(25),
            max_leverage=Decimal(5),
            max_position_usd=Decimal(50_000),
            slippage_bps=30,
            min_order_usd=Decimal(10),
            follow_new_entries_only=True,
        ).strategy
        lines.append("demo portfolio strategy created")
    if strategy.status in (StrategyStatus.PAUSED, StrategyStatus.ERROR):
        strategy_activate(strategy=strategy)
        lines.append("demo portfolio strategy copying")
    return lines
