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
2. ``copy_submit_p99_1000`` -- at 1,000 followers, the p99 over the follower orders of the time
   from the leader fill being *seen* (the event's ``seen_at``) to the order being *submitted*:
   acknowledged by the paper venue (``orders.submitted_at``, the moment the venue's answer to
   the batch arrived). After the commit, the execution task claims the orders (exactly-once
   protocol), sends them to the paper venue as one batch and records the acknowledgements in
   one statement -- here inline (eager Celery), as a worker would right after the dispatch.
   Target <= 100 ms.

Followers are created with bulk inserts (setup, not measured): each has its own user, active
paper agent wallet, cached equity and a running single-trader proportional strategy.
Runs against a database of its own (``test_tandem_benchcopy``), under a Redis key prefix of its
own, so it never touches development or test data.
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
    os.environ.setdefault("TANDEM_TEST_DB_SUFFIX", "benchcopy")
    import django

    django.setup()
    from django.db import connection

    connection.creation.create_test_db(verbosity=0, keepdb=True, serialize=False)


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
    for strategy, version in zip(strategies, versions, strict=True):
        strategy.version = version
    CopyStrategy.objects.bulk_update(strategies, ["version"], batch_size=2000)
    CopyAllocation.objects.bulk_create(
        [CopyAllocation(strategy=s, trader=leader, weight=Decimal(1)) for s in strategies],
        batch_size=2000,
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


def _ingest(leader: Any, record: dict[str, Any]) -> tuple[float, float, Any]:
    """Ingest one fill; (seconds to the commit, seconds including what runs after it, result)."""
    from django.db import transaction

    from copytrade.services import trader_fills_ingest

    marks: dict[str, float] = {}
    started = time.perf_counter()
    with transaction.atomic():
        # Registered first, so it runs first after the commit: the moment everything is written.
        transaction.on_commit(lambda: marks.setdefault("committed", time.perf_counter()))
        result = trader_fills_ingest(trader=leader, fills=[record])
    ended = time.perf_counter()
    return marks["committed"] - started, ended - started, result


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


def _write_part(count: int) -> dict[str, Any]:
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
        _ingest(leader, _fill(int(time.time() * 1000)))  # warm-up: caches, plans
        writes = []
        for _ in range(3):
            committed, _, result = _ingest(leader, _fill(int(time.time() * 1000) + 1))
            writes.append(committed)
            key = result.fanouts[0]
            assert key.placed == count, key.reasons
    event_key = (
        CopyDecision.objects.filter(trader=leader)
        .order_by("-created_at")
        .values_list("source_event_id", flat=True)[0]
    )
    baselines = sorted(_baseline(event_key, dummy) for _ in range(3))
    engine = sorted(writes)[1]  # the median of three
    baseline = baselines[1]
    Trader.objects.filter(pk=leader.pk).update(is_active=False)
    return {
        "name": f"copy_fanout_write_{count}",
        "value": round(engine * 1000, 1),
        "unit": "ms",
        "baseline": round(baseline * 1000, 1),
        "ratio": round(baseline / engine, 3),
        "target": WRITE_TARGET,
        "followers": count,
        "rows_per_s": round(3 * count / engine),
    }


def _latency_part(count: int, raw_copy_ms: float | None = None) -> dict[str, Any]:
    from copytrade.models import CopyDecision, Trader
    from copytrade.tests.factories import TraderFactory
    from trading.models import Order

    leader = TraderFactory.create(alias=f"bench latency {count}", account_value=Decimal(1_000_000))
    _followers(leader, count)
    with mock.patch("copytrade.services.engine._after_commit"):
        _ingest(leader, _fill(int(time.time() * 1000), size="10"))  # warm-up
        committed, total, result = _ingest(leader, _fill(int(time.time() * 1000) + 1, size="10"))
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
    Trader.objects.filter(pk=leader.pk).update(is_active=False)
    result_row: dict[str, Any] = {
        "name": f"copy_submit_p99_{count}",
        "value": round(p99, 1),
        "unit": "ms",
        "baseline": LATENCY_TARGET_MS,
        "ratio": round(LATENCY_TARGET_MS / p99, 3) if p99 else None,
        "target": LATENCY_TARGET_MS,
        "met": p99 <= LATENCY_TARGET_MS,
        "p50_ms": round(p50, 1),
        "committed_ms": round(committed * 1000, 1),
        "venue_batch_ms": round(p99 - committed * 1000, 1),
        "until_fills_recorded_ms": round(total * 1000, 1),
        "filled": filled,
    }
    if p99 > LATENCY_TARGET_MS:
        copy_ms = f"{raw_copy_ms:.0f} ms" if raw_copy_ms is not None else "(not measured)"
        result_row["note"] = (
            f"p99 {p99:.0f} ms = {committed * 1000:.0f} ms to write and commit the "
            f"{count} orders, outbox rows and decisions (a raw COPY of the same rows alone "
            f"takes {copy_ms} here: the per-row order triggers -- state guard, history, slot "
            f"bookkeeping) + {p99 - committed * 1000:.0f} ms to claim them and place them on "
            "the paper venue as one batch; the write alone is above the target, so meeting it "
            "needs the fan-out split over parallel workers, one transaction each"
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
    prefix = f"bench-copy-{uuid.uuid4().hex[:8]}:"
    _configure(prefix)
    from trading.marketdata import quote_tick, ticks_publish
    from trading.services import symbols_sync

    results = []
    try:
        symbols_sync(venue="paper")
        ticks_publish([quote_tick("paper", "ETH", Decimal(2500), size=Decimal(10_000_000))])
        for count in followers:
            started = time.monotonic()
            results.append(_write_part(count))
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
    results = run(tuple(int(n) for n in args.followers.split(",")))
    if args.json:
        print(json.dumps(results))
        return results
    for r in results:
        if r["name"].startswith("copy_fanout_write"):
            print(
                f"{r['followers']:>6} followers: every order + outbox row + decision written in "
                f"{r['value']:.0f} ms; raw COPY of the same rows {r['baseline']:.0f} ms; "
                f"ratio {r['ratio']:.2f} (target >= {r['target']})  [{r['seconds']} s]"
            )
        else:
            verdict = "met" if r["met"] else "NOT met"
            print(
                f"  1000 followers: seen -> submitted p99 {r['value']:.0f} ms "
                f"(p50 {r['p50_ms']:.0f} ms, commit at {r['committed_ms']:.0f} ms) "
                f"target <= {r['target']:.0f} ms: {verdict}  [{r['seconds']} s]"
            )
            if r.get("note"):
                print(f"  gap: {r['note']}")
    print(json.dumps(results))
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
