"""Copy fan-out: one leader fill copied to 1,000 and to 10,000 followers.

    .venv/bin/python -m bench.bench_copy [--followers 1000,10000] [--json]

Measured path (real PostgreSQL and Redis, one process, as the ingestion worker runs it):
``copytrade.services.trader_fills_ingest`` with one leader fill -> the fill stored -> the move
grouped -> every running follower read (one query), sized (copytrade.sizing), its order
checked and written by trading's bulk path -> orders, outbox rows and decisions written with
one COPY each -> commit.

1. ``copy_fanout_write_<n>`` -- time from the fill entering ingestion to the commit of every
   follower's order, outbox row and decision, against a **raw COPY of the same rows** (same
   tables, same columns, the same triggers firing, psycopg with pre-serialised data, one
   transaction) measured in the same run: ratio = COPY time / engine time, target >= 0.5.
   Best of 5 runs at 1,000 followers and of 2 at 10,000, for both sides; the engine's time
   is split into this process's CPU (``python_cpu_ms``) and waiting on PostgreSQL, and a miss
   comes with a note saying so.
2. ``copy_submit_p99_1000`` -- at 1,000 followers, the p99 over the follower orders of the time
   from the leader fill being *seen* (the event's ``seen_at``) to the order being *submitted*:
   acknowledged by the paper venue (``orders.submitted_at``, the moment the venue's answer to
   the batch arrived). After the commit, the execution task claims the orders (exactly-once
   protocol), sends them to the paper venue as one batch and records the acknowledgements in
   one statement -- here inline (eager Celery), as a worker would right after the dispatch.
   Target <= 100 ms. The figure comes with its breakdown (commit, claim, venue batch, marked
   by wrappers that call straight through) and, when the target is missed, a note with the
   gap and its cause. A 20-follower fan-out through the whole path warms it first.

Left out of the timed process, because production runs them in tasks of their own after the
orders: the decisions' announcements (live stream, ClickHouse) and the order updates to the
owners' sockets (bench_ws measures that path). The ClickHouse export of the leader fill runs.

Followers are created with bulk inserts (setup, not measured): each has its own user, active
paper agent wallet, cached equity and a running single-trader proportional strategy.
Runs against a database of its own (``test_tandem_benchcopy``, emptied at the start of every
run so figures do not drift as rows pile up), under a Redis key prefix of its own, so it never
touches development or test data. A run takes about 1-2 minutes on 2 shared cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import sys
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any
from unittest import mock

WRITE_TARGET = 0.5
LATENCY_TARGET_MS = 100.0


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    # Always its own database (emptied at the start of every run): never a test suite's.
    os.environ["TANDEM_TEST_DB_SUFFIX"] = "benchcopy"
    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, keepdb=True, serialize=False)


def _reset() -> None:
    """Start every run from the same empty tables: the bench database is its own and kept
    between runs (migrations take long), and orders piling up run after run would make each
    run slower than the last. Symbols and the schema stay."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if not str(name).endswith("benchcopy"):
        raise RuntimeError(f"refusing to empty {name!r}: not the copy bench's database")
    with connection.cursor() as cursor:
        # Everything a run writes hangs off a user or a trader.
        cursor.execute("TRUNCATE users, traders CASCADE")


def _configure(prefix: str) -> None:
    from django.conf import settings

    settings.TANDEM = {
        **settings.TANDEM,
        "REDIS_KEY_PREFIX": prefix,
        "PAPER_LATENCY_MS": 0,
        "PAPER_STARTING_BALANCE": "1000000",
        "FILL_LISTENERS": [],
        "TICK_LISTENERS": [],
        "COPY_MAX_SIGNAL_AGE_SECONDS": None,
    }


def _address() -> str:
    from eth_utils import to_checksum_address

    return str(to_checksum_address("0x" + secrets.token_hex(20)))


def _followers(leader: Any, count: int) -> list[Any]:
    """``count`` followers of ``leader``, created set-wise (setup, not measured)."""
    from django.db import connection
    from django.utils import timezone

    from accounts.models import AgentWallet, User
    from copytrade.models import CopyAllocation, CopyStrategy, FollowerEquity, StrategyVersion

    now = timezone.now()
    users = User.objects.bulk_create(
        [
            User(wallet_addr=_address(), kyc_level=2, password="!bench")  # noqa: S106
            for _ in range(count)
        ],
        batch_size=2000,
    )
    wallets = AgentWallet.objects.bulk_create(
        [
            AgentWallet(
                user=user,
                addr=_address(),
                exchange="paper",
                status="active",
                key_source="registered",
                min_order_usd=Decimal(1),
                max_leverage=20,
            )
            for user in users
        ],
        batch_size=2000,
    )
    FollowerEquity.objects.bulk_create(
        [FollowerEquity(agent_wallet=w, account_value=Decimal(100_000), fetched_at=now)
         for w in wallets],
        batch_size=2000,
    )  # fmt: skip
    strategies = CopyStrategy.objects.bulk_create(
        [
            CopyStrategy(
                user=user,
                agent_wallet=wallet,
                name="bench",
                status="active",
                mode="single_trader",
                copy_pct=Decimal(10),
                follow_new_entries_only=False,
                min_order_usd=Decimal(1),
                slippage_bps=50,
                started_at=now - timedelta(hours=1),
            )
            for user, wallet in zip(users, wallets, strict=True)
        ],
        batch_size=2000,
    )
    versions = StrategyVersion.objects.bulk_create(
        [StrategyVersion(strategy=s, number=1, config={"bench": True}, reason="created")
         for s in strategies],
        batch_size=2000,
    )  # fmt: skip
    # One statement, not bulk_update's CASE over ten thousand ids (seconds of setup).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE copy_strategies s SET version_id = v.id FROM strategy_versions v "
            "WHERE v.strategy_id = s.id AND v.id = ANY(%s)",
            [[v.pk for v in versions]],
        )
    CopyAllocation.objects.bulk_create(
        [CopyAllocation(strategy=s, trader=leader, weight=Decimal(1)) for s in strategies],
        batch_size=2000,
    )
    with connection.cursor() as cursor:  # fresh statistics, as a live database would have
        cursor.execute(
            "ANALYZE users, agent_wallets, copy_follower_equity, copy_strategies, "
            "strategy_versions, copy_allocations"
        )
    return strategies


def _fill(time_ms: int, size: str = "100") -> dict[str, Any]:
    return {
        "coin": "ETH",
        "px": "2500",
        "sz": size,
        "side": "B",
        "time": time_ms,
        "startPosition": "0",
        "dir": "Open Long",
        "closedPnl": "0",
        "hash": "0x" + secrets.token_hex(32),
        "oid": secrets.randbelow(10**12),
        "crossed": True,
        "fee": "0",
        "tid": secrets.randbelow(10**15),
        "feeToken": "USDC",
    }


def _ingest(leader: Any, record: dict[str, Any]) -> tuple[float, float, float, Any]:
    """Ingest one fill: (seconds to the commit, seconds including what runs after it, this
    process's CPU seconds until the commit, the result)."""
    from django.db import transaction

    from copytrade.services import trader_fills_ingest

    marks: dict[str, float] = {}
    started = time.perf_counter()
    cpu_started = time.process_time()

    def committed() -> None:
        marks["committed"] = time.perf_counter()
        marks["cpu"] = time.process_time() - cpu_started

    with transaction.atomic():
        # Registered first, so it runs first after the commit: the moment everything is written.
        transaction.on_commit(committed)
        result = trader_fills_ingest(trader=leader, fills=[record])
    ended = time.perf_counter()
    return marks["committed"] - started, ended - started, marks["cpu"], result


# --------------------------------------------------------------------------- the baseline


def _copy_text(rows: list[tuple[Any, ...]]) -> bytes:
    """Rows in COPY's text format (what a raw COPY sends)."""

    def field(value: Any) -> str:
        if value is None:
            return "\\N"
        if isinstance(value, bool):
            return "t" if value else "f"
        return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")

    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(field(v) for v in row))
        buffer.write("\n")
    return buffer.getvalue().encode()


def _baseline(event_key: str, dummy_trader: Any) -> float:
    """A raw COPY of the rows the engine wrote for ``event_key`` -- the same tables, the same
    columns, new ids -- committed, timed, then removed."""
    import psycopg
    from django.db import connection

    from copytrade.services.engine import _DECISION_COLUMNS
    from trading.models import new_cloid
    from trading.services.bulk import _ORDER_COLUMNS, _OUTBOX_COLUMNS

    tag = f"baseline-{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(_ORDER_COLUMNS)} FROM orders WHERE source_event_id = %s",
            [event_key],
        )
        orders = cursor.fetchall()
        cursor.execute(
            f"SELECT {', '.join(_DECISION_COLUMNS)} FROM copy_decisions WHERE source_event_id = %s",
            [event_key],
        )
        decisions = cursor.fetchall()
    order_index = {name: i for i, name in enumerate(_ORDER_COLUMNS)}
    decision_index = {name: i for i, name in enumerate(_DECISION_COLUMNS)}
    new_orders, new_outbox, new_decisions = [], [], []
    order_ids = []
    for row in orders:
        values = list(row)
        order_id = uuid.uuid4()
        order_ids.append(order_id)
        values[order_index["id"]] = order_id
        values[order_index["cloid"]] = new_cloid()
        values[order_index["source_event_id"]] = tag
        values[order_index["source_trader_id"]] = dummy_trader.pk
        values[order_index["metadata"]] = json.dumps(values[order_index["metadata"]])
        new_orders.append(tuple(values))
        created = values[order_index["created_at"]]
        new_outbox.append((order_id, "submit", created, created, 0, ""))
    for row in decisions:
        values = list(row)
        values[decision_index["id"]] = uuid.uuid4()
        values[decision_index["source_event_id"]] = tag
        values[decision_index["trader_id"]] = dummy_trader.pk
        values[decision_index["trader_event_id"]] = None
        values[decision_index["order_id"]] = None
        values[decision_index["details"]] = json.dumps(values[decision_index["details"]])
        new_decisions.append(tuple(values))
    payloads = [
        (f"COPY orders ({', '.join(_ORDER_COLUMNS)}) FROM STDIN", _copy_text(new_orders)),
        (f"COPY order_outbox ({', '.join(_OUTBOX_COLUMNS)}) FROM STDIN", _copy_text(new_outbox)),
        (f"COPY copy_decisions ({', '.join(_DECISION_COLUMNS)}) FROM STDIN",
         _copy_text(new_decisions)),
    ]  # fmt: skip
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for statement, data in payloads:
                with cursor.copy(statement) as copy:
                    copy.write(data)
        conn.commit()
        elapsed = time.perf_counter() - started
        with conn.cursor() as cursor:  # remove them again (not measured)
            ids = [str(pk) for pk in order_ids]
            cursor.execute("DELETE FROM copy_decisions WHERE source_event_id = %s", [tag])
            cursor.execute("DELETE FROM order_outbox WHERE order_id = ANY(%s::uuid[])", [ids])
            cursor.execute("DELETE FROM order_events WHERE order_id = ANY(%s::uuid[])", [ids])
            cursor.execute("DELETE FROM orders WHERE id = ANY(%s::uuid[])", [ids])
            cursor.execute("DELETE FROM copy_slots WHERE trader_id = %s", [dummy_trader.pk])
        conn.commit()
    return elapsed


# --------------------------------------------------------------------------- parts


def _write_part(count: int, *, warm_up: bool = True) -> dict[str, Any]:
    from copytrade.models import CopyDecision, Trader
    from copytrade.tests.factories import TraderFactory

    leader = TraderFactory.create(alias=f"bench leader {count}", account_value=Decimal(1_000_000))
    dummy = TraderFactory.create(alias="bench baseline")
    _followers(leader, count)
    # What follows the commit (sending, announcing) is measured in part 2, not here.
    with (
        mock.patch("copytrade.services.engine.orders_submit_dispatch"),
        mock.patch("copytrade.services.engine._after_commit"),
        mock.patch("copytrade.services.ingest._export_dispatch"),
    ):
        if warm_up:  # caches, plans; a later, larger part runs on what the first warmed
            _ingest(leader, _fill(int(time.time() * 1000)))
        writes: list[tuple[float, float]] = []
        # Best of several, for the engine and the baseline alike: the machine is shared, and
        # the fastest run is the one least disturbed by others (timeit's rule).
        runs = 5 if count <= 1000 else 2
        for _ in range(runs):
            committed, _, cpu, result = _ingest(leader, _fill(int(time.time() * 1000) + 1))
            writes.append((committed, cpu))
            key = result.fanouts[0]
            assert key.placed == count, key.reasons
    event_key = (
        CopyDecision.objects.filter(trader=leader)
        .order_by("-created_at")
        .values_list("source_event_id", flat=True)[0]
    )
    baseline = min(_baseline(event_key, dummy) for _ in range(runs))
    engine, cpu = min(writes)
    Trader.objects.filter(pk=leader.pk).update(is_active=False)
    load = os.getloadavg()[0]
    row: dict[str, Any] = {
        "name": f"copy_fanout_write_{count}",
        "value": round(engine * 1000, 1),
        "unit": "ms",
        "baseline": round(baseline * 1000, 1),
        "ratio": round(baseline / engine, 3),
        "target": WRITE_TARGET,
        "followers": count,
        "rows_per_s": round(3 * count / engine),
        # The engine's time split: this process's CPU (reading, sizing, the pre-trade checks,
        # serialising rows -- single-threaded Python) and the rest, waiting on PostgreSQL.
        "python_cpu_ms": round(cpu * 1000, 1),
        "database_wait_ms": round((engine - cpu) * 1000, 1),
        "load_average": round(load, 1),
        "cores": os.cpu_count(),
    }
    if baseline / engine < WRITE_TARGET:
        row["note"] = (
            f"{engine * 1000:.0f} ms against a raw COPY's {baseline * 1000:.0f} ms: "
            f"{cpu * 1000:.0f} ms of it is this process's own CPU (sizing {count} followers, "
            "trading's pre-trade checks, serialising the rows), which the raw COPY does not "
            f"do, and {(engine - cpu) * 1000:.0f} ms waiting on PostgreSQL (the COPYs, plus the "
            "reads the engine needs first: the followers, their slots, positions and open "
            f"orders, trading's account and wallet checks); on {os.cpu_count()} cores at load "
            f"{load:.1f}, both parts are stretched by whatever else runs"
        )
    return row


class _Marks:
    """Wall-clock marks on the submit path, taken by wrappers that call straight through."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def wrap(self, module: Any, name: str, label: str) -> Any:
        real = getattr(module, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            self.at.setdefault(f"{label}_start", time.perf_counter())
            try:
                return real(*args, **kwargs)
            finally:
                self.at.setdefault(f"{label}_end", time.perf_counter())

        return mock.patch.object(module, name, timed)


def _latency_part(count: int, raw_copy_ms: float | None = None) -> dict[str, Any]:
    import trading.exchanges.paper.bulk as paper_bulk
    import trading.services.bulk as trading_bulk
    from copytrade.models import CopyDecision, Trader
    from copytrade.tests.factories import TraderFactory
    from trading import live as trading_live
    from trading.models import Order

    # Warm the whole path (imports, venue scripts, statement plans) on a few followers, so the
    # measured fan-out pays none of a first run's costs -- and none of a thousand extra fills.
    warm = TraderFactory.create(alias="bench latency warm-up", account_value=Decimal(1_000_000))
    _followers(warm, 20)
    leader = TraderFactory.create(alias=f"bench latency {count}", account_value=Decimal(1_000_000))
    _followers(leader, count)
    marks = _Marks()
    with (
        # Decisions to their owners and to ClickHouse: measured elsewhere, after the orders.
        mock.patch("copytrade.services.engine._after_commit"),
        # Order updates to the owners' sockets run in a task of their own on a worker; Celery is
        # eager here, so they would run in this process after the measured point and only
        # lengthen the run (the websocket bench measures that path).
        mock.patch.object(trading_live.orders_publish_task, "delay"),
    ):
        _ingest(warm, _fill(int(time.time() * 1000), size="10"))
        with (
            marks.wrap(trading_bulk, "orders_submit_bulk", "submit"),
            marks.wrap(paper_bulk, "place_batch", "venue"),
        ):
            started = time.perf_counter()
            committed, total, _, result = _ingest(
                leader, _fill(int(time.time() * 1000) + 1, size="10")
            )
    key = result.fanouts[0]
    seen = CopyDecision.objects.filter(pk__in=key.decision_ids).values_list("seen_at", flat=True)[0]
    stamps = list(Order.objects.filter(pk__in=key.order_ids).values_list("submitted_at", "status"))
    assert len(stamps) == count
    missing = [s for s in stamps if s[0] is None]
    assert not missing, f"{len(missing)} orders never reached the venue"
    assert seen is not None
    latencies = sorted(
        (submitted - seen).total_seconds() * 1000 for submitted, _ in stamps if submitted
    )
    p50 = latencies[len(latencies) // 2]
    p99 = latencies[min(int(len(latencies) * 0.99), len(latencies) - 1)]
    filled = sum(1 for _, status in stamps if status == "filled")
    Trader.objects.filter(pk__in=[leader.pk, warm.pk]).update(is_active=False)

    def since_start(label: str) -> float:
        return round((marks.at[label] - started) * 1000, 1)

    breakdown = {
        "committed_ms": round(committed * 1000, 1),
        "claim_and_read_ms": round(since_start("venue_start") - committed * 1000, 1),
        "venue_batch_ms": round(since_start("venue_end") - since_start("venue_start"), 1),
    }
    result_row: dict[str, Any] = {
        "name": f"copy_submit_p99_{count}",
        "value": round(p99, 1),
        "unit": "ms",
        "baseline": LATENCY_TARGET_MS,
        "ratio": round(LATENCY_TARGET_MS / p99, 3) if p99 else None,
        "target": LATENCY_TARGET_MS,
        "met": p99 <= LATENCY_TARGET_MS,
        "p50_ms": round(p50, 1),
        **breakdown,
        "until_fills_recorded_ms": round(total * 1000, 1),
        "filled": filled,
        "raw_copy_ms": raw_copy_ms,
        "load_average": round(os.getloadavg()[0], 1),
        "cores": os.cpu_count(),
    }
    if p99 > LATENCY_TARGET_MS:
        floor = (
            f"a raw COPY of the same {count} orders, outbox rows and decisions alone takes "
            f"{raw_copy_ms:.0f} ms in this run"
            if raw_copy_ms is not None
            else "the raw COPY was not measured in this run"
        )
        result_row["note"] = (
            f"p99 {p99:.0f} ms = {breakdown['committed_ms']:.0f} ms from the fill entering "
            f"ingestion to the commit of every order, outbox row and decision + "
            f"{breakdown['claim_and_read_ms']:.0f} ms to claim the outbox rows and read the "
            f"orders + {breakdown['venue_batch_ms']:.0f} ms for the paper venue to decide and "
            f"store the batch (trading.exchanges.paper.bulk). The floor is the write: {floor} "
            f"(per-row order triggers: state guard, history row, slot bookkeeping), on "
            f"{os.cpu_count()} cores at load {os.getloadavg()[0]:.1f}. One writer cannot meet "
            f"{LATENCY_TARGET_MS:.0f} ms at {count} followers here; meeting it needs the fan-out "
            "split over parallel workers (one transaction and one venue batch each), which this "
            "machine's cores cannot show"
        )
    return result_row


def _cleanup(prefix: str) -> None:
    from trading.stores import market_redis, paper_redis

    for client in (market_redis(), paper_redis()):
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])


def run(followers: tuple[int, ...] = (1000, 10000)) -> list[dict[str, Any]]:
    _setup_django()
    _reset()
    prefix = f"bench-copy-{uuid.uuid4().hex[:8]}:"
    _configure(prefix)
    from trading.marketdata import quote_tick, ticks_publish
    from trading.services import symbols_sync

    results = []
    try:
        symbols_sync(venue="paper")
        ticks_publish([quote_tick("paper", "ETH", Decimal(2500), size=Decimal(10_000_000))])
        for index, count in enumerate(followers):
            started = time.monotonic()
            results.append(_write_part(count, warm_up=index == 0))
            results[-1]["seconds"] = round(time.monotonic() - started, 1)
        started = time.monotonic()
        copy_1000 = next(
            (r["baseline"] for r in results if r["name"] == "copy_fanout_write_1000"), None
        )
        results.append(_latency_part(1000, raw_copy_ms=copy_1000))
        results[-1]["seconds"] = round(time.monotonic() - started, 1)
    finally:
        _cleanup(prefix)
    return results


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_copy")
    parser.add_argument("--followers", default="1000,10000")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    started = time.monotonic()
    results = run(tuple(int(n) for n in args.followers.split(",")))
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps(results))
        return results
    for r in results:
        if r["name"].startswith("copy_fanout_write"):
            print(
                f"{r['followers']:>6} followers: every order + outbox row + decision written in "
                f"{r['value']:.0f} ms (Python CPU {r['python_cpu_ms']:.0f} ms); raw COPY of the "
                f"same rows {r['baseline']:.0f} ms; ratio {r['ratio']:.2f} "
                f"(target >= {r['target']})  [{r['seconds']} s]"
            )
            if r.get("note"):
                print(f"  gap: {r['note']}")
        else:
            verdict = "met" if r["met"] else "NOT met"
            print(
                f"  1000 followers: seen -> submitted p99 {r['value']:.0f} ms "
                f"(p50 {r['p50_ms']:.0f} ms; committed at {r['committed_ms']:.0f} ms, claimed "
                f"+{r['claim_and_read_ms']:.0f} ms, venue batch +{r['venue_batch_ms']:.0f} ms) "
                f"target <= {r['target']:.0f} ms: {verdict}  [{r['seconds']} s]"
            )
            if r.get("note"):
                print(f"  gap: {r['note']}")
    print(f"whole run {elapsed:.0f} s (load average {os.getloadavg()[0]:.1f})")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
