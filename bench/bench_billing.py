"""Fee accrual throughput: builder and copy fees for 100,000 copied fills.

    .venv/bin/python -m bench.bench_billing [--fills N] [--json]

Measured path (real PostgreSQL, in one process): ``billing.services.fill_fees_accrue`` on the
fill ids, in batches of ``BILLING["ACCRUAL_BATCH_SIZE"]`` (50,000: what the fill listener and
the sweep hand it) -- read the copied fills and their schedules, compute every fee in Decimal,
write the ``fees_ledger`` rows, their journal transactions and their entries with ``COPY``,
re-derive ``total_fees`` / ``allocated_fees`` from the entries, and commit, which runs the
deferred check that every journal transaction balances and every foreign key. 100,000 fills
are 200,000 fees, 200,000 journal transactions and 400,000 entries.

Baseline, in the same run and database: a raw ``COPY`` of *the same 200,000 ledger rows*
(read back from the table after the measured run) into ``fees_ledger`` -- the same indexes,
check constraints, unique keys and foreign keys, committed -- with billing's own triggers
switched off: no journal, no computation, no framework. ratio = baseline seconds / accrual
seconds (target >= 0.3: the accrual costs at most ~3.3x writing its ledger rows raw).

Runs against a dedicated database (``test_tandem_bench_billing``, migrated on first use); the
tables it fills are emptied before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

TARGET = 0.3
COPIERS = 100
ORDERS_PER_COPIER = 10


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("TANDEM_TEST_DB_SUFFIX", "bench_billing")
    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, keepdb=True, serialize=False)


# Emptied before and after (the test settings' connections may TRUNCATE append-only tables).
_TABLES = (
    "fees_ledger",
    "billing_performance_periods",
    "billing_journal_entries",
    "billing_journal_transactions",
    "billing_accounts",
    "billing_statements",
    "fills",
    "positions",
    "orders",
    "copy_allocations",
    "copy_strategies",
    "traders",
)


def _empty() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(_TABLES)} CASCADE")


def _prepare(fills: int) -> list[uuid.UUID]:
    """Copiers with a two-trader strategy each, copy-trade orders, and ``fills`` fills."""
    import importlib

    from django.db import connection, transaction

    from accounts.tests.factories import AgentWalletFactory, UserFactory
    from billing.models import Plan
    from billing.tests.factories import AllocationFactory, StrategyFactory, TraderFactory
    from trading.models import Fill, Order, Position
    from trading.tests.factories import SymbolFactory

    for values in importlib.import_module("billing.migrations.0003_default_plans").PLANS:
        Plan.objects.get_or_create(code=values["code"], defaults={**values, "currency": "USDC"})
    symbol = SymbolFactory.create(venue="hyperliquid", name="BENCH")
    traders = [TraderFactory.create(src_uid=f"bench-{uuid.uuid4().hex}") for _ in range(20)]
    orders: list[Order] = []
    positions: dict[Any, Position] = {}
    for n in range(COPIERS):
        user = UserFactory.create()
        wallet = AgentWalletFactory.create(user=user, exchange="hyperliquid")
        strategy = StrategyFactory.create(user=user, agent_wallet=wallet)
        pair = (traders[n % 20], traders[(n + 7) % 20])
        for trader, weight in zip(pair, ("0.6", "0.4"), strict=True):
            AllocationFactory.create(strategy=strategy, trader=trader, weight=Decimal(weight))
        positions[wallet.pk] = Position.objects.create(
            user=user, agent_wallet=wallet, symbol=symbol, exchange="hyperliquid"
        )
        for k in range(ORDERS_PER_COPIER):
            orders.append(
                Order(
                    user=user,
                    agent_wallet=wallet,
                    strategy=strategy,
                    symbol=symbol,
                    exchange="hyperliquid",
                    side="buy",
                    order_type="limit",
                    quantity=Decimal(1000),
                    price=Decimal(2500),
                    is_copy_trade=True,
                    source_trader=pair[k % 2],
                )
            )
    Order.objects.bulk_create(orders, batch_size=1000)
    start = datetime.now(tz=UTC) - timedelta(hours=1)
    ids = [uuid.uuid4() for _ in range(fills)]
    # Every column as the model would write it (defaults included), from one template; only
    # what differs per fill is set in the loop. COPY, not bulk_create: setup is not what is
    # measured, and the whole run has to fit in two minutes on a small shared machine.
    template = Fill(
        exchange="hyperliquid",
        symbol=symbol,
        side="buy",
        direction="Open Long",
        price=Decimal(1),
        size=Decimal(1),
        time_ms=1,
        filled_at=start,
    )
    columns = list(Fill._meta.concrete_fields)
    # pre_save: what a save would write (auto_now_add timestamps included).
    base = {f.attname: f.get_db_prep_save(f.pre_save(template, True), connection) for f in columns}

    def rows() -> Any:
        for i, pk in enumerate(ids):
            order = orders[i % len(orders)]
            at = start + timedelta(milliseconds=i)
            values = {
                **base,
                "id": pk,
                "venue_fill_id": f"bench-{i}",
                "user_id": order.user_id,
                "agent_wallet_id": order.agent_wallet_id,
                "order_id": order.pk,
                "position_id": positions[order.agent_wallet_id].pk,
                "price": Decimal("2500.5") + Decimal(i % 997) / 10,
                "size": Decimal("0.0137") * (1 + i % 13),
                "time_ms": int(at.timestamp() * 1000),
                "filled_at": at,
                "tx_hash": f"0x{i:064x}",
            }
            yield [values[f.attname] for f in columns]

    sql = f"COPY {Fill._meta.db_table} ({', '.join(str(f.column) for f in columns)}) FROM STDIN"
    with transaction.atomic(), connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows():
            copy.write_row(row)
    return ids


def _accrue(fill_ids: list[uuid.UUID]) -> tuple[float, int]:
    from billing.conf import billing_setting
    from billing.services import fill_fees_accrue

    batch = int(billing_setting("ACCRUAL_BATCH_SIZE"))
    started = time.perf_counter()
    charged = 0
    for offset in range(0, len(fill_ids), batch):
        charged += fill_fees_accrue(fill_ids=fill_ids[offset : offset + batch]).charged
    return time.perf_counter() - started, charged


def _raw_insert_of_the_same_rows() -> tuple[float, int]:
    """Read the ledger rows back, empty the table, COPY them in again raw, commit."""
    import psycopg
    from django.db import connection

    from billing.services.journal import FEE_COLUMNS

    columns = ", ".join(FEE_COLUMNS)
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as conn:
        select = ", ".join("metadata::text" if c == "metadata" else c for c in FEE_COLUMNS)
        rows = conn.execute(f"SELECT {select} FROM fees_ledger").fetchall()
        conn.execute("TRUNCATE fees_ledger CASCADE")
        conn.execute("ALTER TABLE fees_ledger DISABLE TRIGGER USER")
        conn.commit()
        try:
            started = time.perf_counter()
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY fees_ledger ({columns}) FROM STDIN") as copy,
            ):
                for row in rows:
                    copy.write_row(row)
            conn.commit()  # the deferred foreign keys are checked here
            elapsed = time.perf_counter() - started
        finally:
            conn.rollback()
            conn.execute("ALTER TABLE fees_ledger ENABLE TRIGGER USER")
            conn.commit()
    return elapsed, len(rows)


def _verify(fees: int) -> None:
    from django.db.models import Sum

    from billing.models import FeeLedgerEntry, JournalEntry
    from billing.selectors import journal_imbalances
    from copytrade.models import CopyStrategy

    if FeeLedgerEntry.objects.count() != fees:
        raise SystemExit("ledger row count mismatch")
    if journal_imbalances():
        raise SystemExit("a journal transaction does not balance")
    stored = CopyStrategy.objects.aggregate(total=Sum("total_fees"))["total"]
    derived = JournalEntry.objects.filter(strategy__isnull=False).aggregate(total=Sum("amount"))[
        "total"
    ]
    if stored != derived:
        raise SystemExit(f"total_fees {stored} != entries {derived}")


def run(fills: int = 100_000) -> dict[str, Any]:
    wall_started = time.perf_counter()
    _setup_django()
    _empty()
    try:
        prepare_started = time.perf_counter()
        fill_ids = _prepare(fills)
        prepared = time.perf_counter() - prepare_started
        accrual_seconds, fees = _accrue(fill_ids)
        _verify(fees)
        again_started = time.perf_counter()
        again = _accrue(fill_ids)[1]  # idempotent: the second run charges nothing
        again_seconds = time.perf_counter() - again_started
        if again:
            raise SystemExit(f"second run charged {again} fees")
        baseline_seconds, rows = _raw_insert_of_the_same_rows()
        if rows != fees:
            raise SystemExit("baseline rows differ from the accrued rows")
    finally:
        _empty()
    ratio = baseline_seconds / accrual_seconds
    result: dict[str, Any] = {
        "name": "fee_accrual_fills_per_s",
        "value": round(fills / accrual_seconds, 1),
        "unit": "fills/s",
        "baseline": round(fills / baseline_seconds, 1),
        "ratio": round(ratio, 3),
        "target": TARGET,
        "fills": fills,
        "fees": fees,
        "accrual_seconds": round(accrual_seconds, 3),
        "baseline_seconds": round(baseline_seconds, 3),
        "ledger_rows_per_s": round(fees / accrual_seconds, 1),
        "raw_ledger_rows_per_s": round(rows / baseline_seconds, 1),
        "second_run_seconds": round(again_seconds, 3),
        "setup_seconds": round(prepared, 3),
        "wall_seconds": round(time.perf_counter() - wall_started, 1),
        # Context for reading the figures: other work on the machine slows both sides, and
        # the accrual (more statements, more CPU) more than the raw COPY.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
    if ratio < TARGET:
        result["note"] = (
            f"below target: the accrual writes 3 rows per fee (ledger row, journal transaction, "
            f"2 entries) against the baseline's 1, plus the commit check; host load "
            f"{result['load_average_1m']} on {result['cpus']} CPUs"
        )
    return result


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_billing")
    parser.add_argument("--fills", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    result = run(fills=args.fills)
    if args.json:
        print(json.dumps([result]))
    else:
        print(
            f"fee accrual (service, COPY, journal, commit checks): {result['fills']} fills -> "
            f"{result['fees']} fees in {result['accrual_seconds']:.2f} s "
            f"({result['value']:.0f} fills/s, {result['ledger_rows_per_s']:.0f} ledger rows/s)"
        )
        print(
            "baseline, raw COPY of the same ledger rows:        "
            f"{result['baseline_seconds']:.2f} s "
            f"({result['raw_ledger_rows_per_s']:.0f} rows/s)"
        )
        print(
            f"ratio {result['ratio']:.3f} (target >= {result['target']})"
            f"   [second run, nothing to charge: {result['second_run_seconds']:.2f} s;"
            f" setup {result['setup_seconds']:.1f} s; whole run {result['wall_seconds']:.0f} s;"
            f" load {result['load_average_1m']} on {result['cpus']} CPUs]"
        )
        if "note" in result:
            print(result["note"])
        print(json.dumps(result))
    return [result]


if __name__ == "__main__":
    main(sys.argv[1:])
