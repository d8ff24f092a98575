"""Acceptance (c): real Celery workers killed (SIGKILL) in the middle of submitting orders.

Several runs. Each run creates a batch of market orders (committed to the real test database,
each dispatched to a real Redis broker after commit, on a queue of its own), starts a real
``celery worker`` subprocess on the same database and Redis, and, as soon as it is seen
submitting, kills its whole process group with SIGKILL at a random moment -- again and again --
restarting it each time. The paper venue answers after a small simulated network latency, so a
kill often lands between "the venue accepted" and "Tandem recorded it". At the end the sweeper
runs until nothing is left behind.

Then: no cloid was ever placed twice at the venue; no order was lost (every one is final, and
Tandem and the venue agree about each: what filled, what was refused, what never arrived);
every position equals the venue's.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection

from accounts.tests.factories import AgentWalletFactory, UserFactory
from trading.exchanges import VenueOrderStatus
from trading.exchanges.paper import PaperAdapter, PaperVenue
from trading.models import (
    FINAL_STATUSES,
    Fill,
    Order,
    OrderEventKind,
    OrderOutbox,
    OrderStatus,
    Position,
)
from trading.services import order_create, outbox_sweep, symbols_sync

D = Decimal
BASE_DIR = Path(settings.BASE_DIR)
RUNS = 4
ORDERS_PER_RUN = 55
KILLS_PER_RUN = 3
LEASE_SECONDS = 2
LATENCY_MS = 15
STARTING_BALANCE = "10000000"


@dataclass
class ChaosStats:
    orders: int = 0
    kills: int = 0
    claimed_more_than_once: int = 0
    resolved_by_lookup: int = 0
    duplicates: int = 0
    lost: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def _database_url() -> str:
    db = connection.settings_dict
    host = str(db.get("HOST") or db.get("OPTIONS", {}).get("host") or "")
    user = quote(str(db.get("USER") or "postgres"))
    name = quote(str(db["NAME"]))
    if host.startswith("/"):
        return f"postgresql://{user}@/{name}?host={quote(host)}"
    password = quote(str(db.get("PASSWORD") or ""))
    return f"postgresql://{user}:{password}@{host}:{db.get('PORT') or 5432}/{name}"


class Worker:
    """A real `celery worker` on the test database, consuming the run's queue only."""

    def __init__(self, queue: str, prefix: str, log: Path) -> None:
        self.queue, self.prefix, self.log = queue, prefix, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            # local settings: not the test settings, whose CELERY_TASK_ALWAYS_EAGER would make
            # the worker run retries in-process instead of through the broker.
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "false",
            "DATABASE_URL": _database_url(),
            "REDIS_URL": str(settings.REDIS_URL),
            "CLICKHOUSE_URL": str(settings.CLICKHOUSE_URL),
            "TANDEM_REDIS_KEY_PREFIX": self.prefix,
            "TANDEM_EXECUTION_QUEUE": self.queue,
            "TANDEM_ORDER_SUBMIT_LEASE_SECONDS": str(LEASE_SECONDS),
            "TANDEM_PAPER_LATENCY_MS": str(LATENCY_MS),
            "TANDEM_PAPER_STARTING_BALANCE": STARTING_BALANCE,
            "TANDEM_LOG_FORMAT": "plain",
            "TANDEM_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "-Q",
                    self.queue,
                    "--concurrency",
                    "2",
                    "--pool",
                    "prefork",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-l",
                    "WARNING",
                    "-n",
                    f"chaos-{uuid.uuid4().hex[:8]}@%h",
                ],
                cwd=BASE_DIR,
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # the main process and its pool
        self.proc.wait(timeout=30)
        self.proc = None


def _progress(orders: list[Order]) -> int:
    """Submission attempts made so far (claims), a sign the worker is at work."""
    return sum(OrderOutbox.objects.filter(order__in=orders).values_list("attempts", flat=True))


def _finals(orders: list[Order]) -> int:
    return Order.objects.filter(pk__in=[o.pk for o in orders], status__in=FINAL_STATUSES).count()


def _wait(condition: Any, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Every worker a test starts is killed at teardown, whatever happened."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


@pytest.fixture
def chaos_env(settings: Any, trading_namespace: str, tmp_path: Path) -> Iterator[str]:
    from config.celery import app

    queue = f"chaos-{uuid.uuid4().hex[:10]}"
    settings.TANDEM = {
        **settings.TANDEM,
        "EXECUTION_QUEUE": queue,
        "ORDER_SUBMIT_LEASE_SECONDS": LEASE_SECONDS,
        "PAPER_STARTING_BALANCE": STARTING_BALANCE,
    }
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = False  # this test is about the real broker
    try:
        yield queue
    finally:
        app.conf.task_always_eager = eager
        with app.connection_for_write() as conn:
            # kombu's own call, so it works on every broker (Redis and RabbitMQ in CI).
            conn.default_channel.queue_delete(queue)  # type: ignore[attr-defined]  # kombu


def _check_agreement(orders: list[Order], venue: PaperVenue, stats: ChaosStats) -> None:
    counts = venue.placement_counts()
    for order in Order.objects.filter(pk__in=[o.pk for o in orders]).select_related(
        "agent_wallet__user"
    ):
        outcome = f"failed:{order.error_code}" if order.error_code else order.status
        stats.outcomes[outcome] = stats.outcomes.get(outcome, 0) + 1
        if order.status not in FINAL_STATUSES:
            stats.lost += 1
            continue
        account = PaperAdapter(account=order.agent_wallet.user.wallet_addr, venue=venue)
        at_venue = account.order_by_cloid(symbol=order.symbol.address, cloid=order.cloid)
        fills = sum(Fill.objects.filter(order=order).values_list("size", flat=True), D(0))
        if order.status == OrderStatus.FAILED:
            assert at_venue is None or at_venue.status == VenueOrderStatus.REJECTED, order.pk
            assert fills == 0
        else:
            assert at_venue is not None, f"{order.pk} {order.status} but unknown at the venue"
            assert at_venue.filled_size == order.filled_quantity == fills, order.pk
            expected: VenueOrderStatus = {
                str(OrderStatus.FILLED): VenueOrderStatus.FILLED,
                str(OrderStatus.CANCELLED): VenueOrderStatus.CANCELLED,
            }[order.status]
            assert at_venue.status == expected, order.pk
        if counts.get(order.cloid, 0) == 0:
            assert order.status == OrderStatus.FAILED  # never arrived: refused before sending
    stats.claimed_more_than_once += OrderOutbox.objects.filter(
        order__in=orders, attempts__gt=1
    ).count()
    stats.resolved_by_lookup += (
        Order.objects.filter(pk__in=[o.pk for o in orders], events__kind=OrderEventKind.LOOKUP)
        .distinct()
        .count()
    )


@pytest.mark.django_db(transaction=True)
def test_killed_workers_never_place_twice_nor_lose_an_order(
    chaos_env: str,
    trading_namespace: str,
    paper_symbols: dict[str, Any],
    market: Any,
    workers: list[Worker],
    tmp_path: Path,
) -> None:
    symbols_sync(venue="paper")
    traders = []
    for _ in range(4):
        user = UserFactory.create()
        AgentWalletFactory.create(user=user, exchange="paper")
        traders.append(user)
    venue = PaperVenue()
    stats = ChaosStats()
    log = Path(os.environ.get("TANDEM_CHAOS_LOG") or tmp_path / "worker.log")
    plans = [
        ("ETH", "buy", "0.5"),
        ("ETH", "sell", "0.3"),
        ("BTC", "buy", "0.01"),
        ("SOL", "buy", "5"),
        ("BTC", "buy", "30"),  # deeper than the book: partial
        ("ARB", "sell", "100"),
        ("BTC", "sell", "30"),
        ("DOGE", "buy", "200"),
    ]

    created: set[str] = set()
    for run in range(RUNS):
        rng = random.Random(1000 + run)
        worker = Worker(chaos_env, trading_namespace, log)
        workers.append(worker)
        worker.start()
        orders = []
        for n in range(ORDERS_PER_RUN):
            symbol, side, size = plans[(n + run) % len(plans)]
            user = traders[n % len(traders)]
            reduce_only = n % 11 == 5  # some refused by the venue: nothing to reduce
            orders.append(
                order_create(
                    user=user, symbol=symbol, side=side, quantity=D(size), reduce_only=reduce_only
                ).order
            )
        stats.orders += len(orders)
        t0 = time.monotonic()
        for _ in range(KILLS_PER_RUN):
            seen = _progress(orders)
            if not _wait(lambda seen=seen, batch=orders: _progress(batch) > seen, timeout=60):
                break  # nothing left to do: the worker drained the queue
            time.sleep(rng.uniform(0.0, 0.12))  # somewhere in the middle of a submission
            worker.kill()
            stats.kills += 1
            worker.start()
        # Let the last worker drain what it can, then sweep what was left behind (killed
        # mid-task: their messages are unacknowledged in a dead worker's hands).
        t1 = time.monotonic()
        deadline = time.monotonic() + 90
        while _finals(orders) < len(orders) and time.monotonic() < deadline:
            _wait(lambda batch=orders: _finals(batch) == len(batch), timeout=LEASE_SECONDS + 1.0)
            outbox_sweep(older_than_seconds=1)
        t2 = time.monotonic()
        print(f"run {run}: kills phase {t1 - t0:.1f}s, drain+sweep {t2 - t1:.1f}s")
        worker.kill()
        _check_agreement(orders, venue, stats)
        created.update(o.cloid for o in orders)

    counts = venue.placement_counts()
    stats.duplicates = sum(1 for n in counts.values() if n > 1)
    assert set(counts) <= created, "the venue received an order Tandem never created"

    # Every position is the venue's: each fill was applied exactly once.
    for user in traders:
        venue_positions = {
            p.symbol: p.quantity
            for p in PaperAdapter(account=user.wallet_addr, venue=venue).account_state().positions
        }
        ours = {
            p.symbol.name: p.quantity
            for p in Position.objects.filter(user=user).select_related("symbol")
            if p.quantity
        }
        assert ours == venue_positions, user.wallet_addr

    print(f"\nchaos: {stats}")
    log_tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    assert stats.orders >= 200
    assert stats.kills >= RUNS * 2, log_tail
    assert stats.duplicates == 0
    assert stats.lost == 0, log_tail
    assert stats.claimed_more_than_once > 0  # the kills did interrupt submissions
