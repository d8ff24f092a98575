"""Order throughput: create + submit to the paper venue, through the services, per second.

    .venv/bin/python -m bench.bench_orders [--orders N] [--rounds R] [--json]

Measured path (real PostgreSQL, real Redis, in one process): ``trading.services.order_create``
(checks, order + outbox rows, one transaction) -> after commit, the execution task (Celery,
eager, as tests run it) -> ``order_submit``: claim, the paper venue (its Redis compare-and-set),
record the answer, apply the fill to the position. Every order ends ``filled``. Everything the
settings hook onto that path runs too, inline: live updates to the owner's account stream and
every configured fill listener (billing's accrual task runs eagerly here; in production it runs
on its own queue).

Baseline, in the same run and database: plain psycopg writing *the same rows* each order
leaves behind -- the order (created pending, moved to submitted then filled, so the same
triggers fire and write the same history rows), its outbox row, its fill, and its position
upsert -- in one transaction per order, with no framework, no checks and no venue. The ratio
service / baseline is what the framework, the checks, the venue round trips and the
crash-safe three-transaction protocol cost. Absolute numbers are printed for context, along
with a bare single-row INSERT rate. The two sides are timed in alternating rounds, so a change
in the machine's load during the run weighs on both alike.

Runs against a dedicated database (``test_tandem_bench``, migrated on first use) and a Redis
key prefix of its own, so it never touches development or test data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from decimal import Decimal
from typing import Any

TARGET = 0.3


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("TANDEM_TEST_DB_SUFFIX", "bench")
    import django

    django.setup()
    from django.db import connection

    # A database of its own, created and migrated the first time (like pytest --reuse-db).
    connection.creation.create_test_db(verbosity=0, keepdb=True, serialize=False)


def _prepare(prefix: str, traders: int) -> list[Any]:
    from django.conf import settings

    settings.TANDEM = {
        **settings.TANDEM,
        "REDIS_KEY_PREFIX": prefix,
        "PAPER_LATENCY_MS": 0,
        "PAPER_STARTING_BALANCE": "100000000",
    }
    from accounts.tests.factories import AgentWalletFactory, UserFactory
    from trading.marketdata import quote_tick, ticks_publish
    from trading.services import symbols_sync

    symbols_sync(venue="paper")
    ticks_publish(
        [
            quote_tick("paper", "ETH", Decimal(2500), size=Decimal(100000)),
            quote_tick("paper", "BTC", Decimal(50000), size=Decimal(10000)),
        ]
    )
    users = []
    for _ in range(traders):
        user = UserFactory()
        AgentWalletFactory(user=user, exchange="paper")
        users.append(user)
    return users


def _service_rate(users: list[Any], count: int) -> tuple[float, list[Any]]:
    from trading.services import order_create

    orders = []
    started = time.perf_counter()
    for n in range(count):
        user = users[n % len(users)]
        side = "buy" if (n // len(users)) % 2 == 0 else "sell"
        orders.append(
            order_create(user=user, symbol="ETH", side=side, quantity=Decimal("0.01")).order
        )
    elapsed = time.perf_counter() - started
    return count / elapsed, orders


def _interleaved(
    users: list[Any], count: int, rounds: int
) -> tuple[float, float, float, list[Any]]:
    """Service and baseline rates, measured in alternating rounds so that a change in the
    machine's load (CI runners, shared laptops) weighs on both sides alike; and the CPU time
    this process spent per order on the service side (all its threads)."""
    service_seconds = baseline_seconds = service_cpu = 0.0
    made: list[Any] = []
    per_round = max(count // rounds, 1)
    for _ in range(rounds):
        cpu_started = time.process_time()
        rate, orders = _service_rate(users, per_round)
        service_cpu += time.process_time() - cpu_started
        service_seconds += per_round / rate
        made += orders
        baseline_seconds += per_round / _baseline_rate(users, per_round)
    total = per_round * rounds
    return total / service_seconds, total / baseline_seconds, service_cpu / total, made


_BASELINE_ORDER = """
INSERT INTO orders (id, user_id, agent_wallet_id, symbol_id, exchange, side, order_type,
    time_in_force, reduce_only, quantity, filled_quantity, fees, status, cloid,
    request_fingerprint, venue_status, is_copy_trade, metadata, created_at, updated_at)
VALUES (%s, %s, %s, %s, 'paper', %s, 'market', 'Ioc', false, %s, 0, 0, 'pending', %s, '', '',
    false, '{}', now(), now())
"""
_BASELINE_OUTBOX = """
INSERT INTO order_outbox (order_id, kind, created_at, available_at, attempts, last_error)
VALUES (%s, 'submit', now(), now(), 1, '')
"""
_BASELINE_SUBMITTED = """
UPDATE orders SET status = 'submitted', submitted_at = now(), exchange_order_id = %s,
    venue_status = 'filled', submitted_price = %s, updated_at = now() WHERE id = %s
"""
_BASELINE_FILLED = """
UPDATE orders SET status = 'filled', filled_at = now(), first_fill_at = now(),
    filled_quantity = %s, average_price = %s, fees = %s, updated_at = now() WHERE id = %s
"""
_BASELINE_POSITION = """
INSERT INTO positions (id, user_id, agent_wallet_id, symbol_id, exchange, side, quantity,
    entry_price, unrealized_pnl, realized_pnl, fees_paid, leverage, margin_mode, margin_used,
    created_at, last_updated_at, metadata, opened_at)
VALUES (%s, %s, %s, %s, 'paper', %s, %s, %s, 0, 0, %s, 1, 'cross', 0, now(), now(), '{}',
    now())
ON CONFLICT (user_id, agent_wallet_id, symbol_id) DO UPDATE
SET quantity = positions.quantity + EXCLUDED.quantity,
    side = CASE WHEN positions.quantity + EXCLUDED.quantity > 0 THEN 'long'
                WHEN positions.quantity + EXCLUDED.quantity < 0 THEN 'short' ELSE 'flat' END,
    entry_price = CASE WHEN positions.quantity + EXCLUDED.quantity = 0 THEN 0
                       ELSE EXCLUDED.entry_price END,
    closed_at = CASE WHEN positions.quantity + EXCLUDED.quantity = 0 THEN now() END,
    opened_at = CASE WHEN positions.quantity = 0 THEN now() ELSE positions.opened_at END,
    fees_paid = positions.fees_paid + EXCLUDED.fees_paid, last_updated_at = now()
RETURNING id
"""
_BASELINE_FILL = """
INSERT INTO fills (id, exchange, venue_fill_id, user_id, agent_wallet_id, order_id,
    position_id, symbol_id, side, price, size, fee, fee_token, direction, realized_pnl,
    is_liquidation, venue_order_id, cloid, tx_hash, time_ms, filled_at, created_at, raw)
VALUES (%s, 'paper', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'USDC', %s, 0, false, %s, %s, '',
    %s, now(), now(), '{}')
"""
_BASELINE_OUTBOX_DONE = "UPDATE order_outbox SET done_at = now() WHERE order_id = %s"


def _baseline_rate(users: list[Any], count: int) -> float:
    """Plain psycopg, the same rows per order (see the module docstring)."""
    import psycopg
    from django.db import connection

    from trading.models import Symbol, new_cloid

    symbol = Symbol.objects.get(venue="paper", name="BTC")  # a position of its own
    wallets = [(str(u.pk), str(u.agent_wallets.get().pk)) for u in users]
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    price, size, fee = Decimal("50000"), Decimal("0.01"), Decimal("0.225")
    with psycopg.connect(**params, autocommit=True) as conn:
        started = time.perf_counter()
        for n in range(count):
            user_id, wallet_id = wallets[n % len(wallets)]
            order_id, cloid = uuid.uuid4(), new_cloid()
            side = "buy" if (n // len(wallets)) % 2 == 0 else "sell"
            signed = size if side == "buy" else -size
            with conn.transaction():
                conn.execute(
                    _BASELINE_ORDER, (order_id, user_id, wallet_id, symbol.pk, side, size, cloid)
                )
                conn.execute(_BASELINE_OUTBOX, (order_id,))
                conn.execute(_BASELINE_SUBMITTED, (order_id.hex[:16], price, order_id))
                position_id = conn.execute(
                    _BASELINE_POSITION,
                    (
                        uuid.uuid4(),
                        user_id,
                        wallet_id,
                        symbol.pk,
                        "long" if signed > 0 else "short",
                        signed,
                        price,
                        fee,
                    ),
                ).fetchone()[0]  # type: ignore[index]
                conn.execute(
                    _BASELINE_FILL,
                    (
                        uuid.uuid4(),
                        f"bench-{order_id}",
                        user_id,
                        wallet_id,
                        order_id,
                        position_id,
                        symbol.pk,
                        side,
                        price,
                        size,
                        fee,
                        "Open Long" if side == "buy" else "Close Long",
                        order_id.hex[:16],
                        cloid,
                        int(time.time() * 1000),
                    ),
                )
                conn.execute(_BASELINE_FILLED, (size, price, fee, order_id))
                conn.execute(_BASELINE_OUTBOX_DONE, (order_id,))
        elapsed = time.perf_counter() - started
    return count / elapsed


def _single_insert_rate(count: int) -> float:
    import psycopg
    from django.db import connection

    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS bench_single_insert (id uuid PRIMARY KEY, payload text)"
        )
        started = time.perf_counter()
        for _ in range(count):
            conn.execute("INSERT INTO bench_single_insert VALUES (%s, 'x')", (uuid.uuid4(),))
        elapsed = time.perf_counter() - started
        conn.execute("DROP TABLE bench_single_insert")
    return count / elapsed


def _cleanup(prefix: str) -> None:
    from django.db import connection

    from trading.stores import market_redis, paper_redis

    for client in (market_redis(), paper_redis()):
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    with connection.cursor() as cursor:
        for table in (
            "fills",
            "order_events",
            "order_outbox",
            "risk_events",
            "positions",
            "orders",
        ):
            cursor.execute(f"DELETE FROM {table}")


def run(orders: int = 600, rounds: int = 4) -> dict[str, Any]:
    _setup_django()
    from trading.models import Order, OrderStatus

    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    try:
        users = _prepare(prefix, traders=8)
        _service_rate(users, 50)  # warm-up: connections, caches, code paths
        _baseline_rate(users, 50)
        service, baseline, cpu_per_order, made = _interleaved(users, orders, rounds)
        single = _single_insert_rate(orders)
        filled = Order.objects.filter(
            pk__in=[o.pk for o in made], status=OrderStatus.FILLED
        ).count()
        if filled != len(made):
            raise SystemExit(f"only {filled} of {len(made)} orders filled")
    finally:
        _cleanup(prefix)
    ratio = service / baseline
    cpu_ms = cpu_per_order * 1000
    note = ""
    if ratio < TARGET:
        note = (
            f"CPU-bound: {cpu_ms:.1f} ms of Python per order (ORM for 18 statements in the "
            f"3-transaction protocol, 4 live account events, eager Celery incl. the fill "
            f"listeners) against {1000 / baseline:.1f} ms per order for the baseline"
        )
    return {
        "name": "orders_create_submit_per_s",
        "value": round(service, 1),
        "baseline": round(baseline, 1),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "orders": len(made),
        "rounds": rounds,
        "single_row_insert_per_s": round(single, 1),
        "service_cpu_ms_per_order": round(cpu_ms, 2),
        **({"note": note} if note else {}),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_orders")
    parser.add_argument("--orders", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=4, help="alternating service/baseline rounds")
    parser.add_argument("--json", action="store_true", help="print the result as JSON only")
    args = parser.parse_args(argv)
    result = run(orders=args.orders, rounds=args.rounds)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"order create + submit (services, paper venue): {result['value']:.0f}/s")
        print(f"baseline, same rows with plain psycopg:        {result['baseline']:.0f}/s")
        print(
            f"ratio {result['ratio']:.3f} (target >= {result['target']})"
            f"   [a bare one-row INSERT: {result['single_row_insert_per_s']:.0f}/s]"
        )
        print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
