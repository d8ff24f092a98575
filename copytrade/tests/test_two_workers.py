"""The copy path across two real Celery worker processes, as production splits it: one worker
consumes the ingest queue (leader fills arrive and the engine fans them out), another consumes
execution and copy (follower orders go to the venue). Through the configured broker (Redis, or
RabbitMQ in CI's broker run), on the test database, with queues of this test's own.

Nothing is run in this process: what ends filled was ingested by one process and submitted by
the other, and every follower's position equals what its own orders filled -- nothing applied
twice, nothing lost."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db.models import Sum

from config.celery import app
from trading.tests.test_chaos import _database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.broker]
BASE_DIR = Path(__file__).resolve().parents[2]
FOLLOWERS = 12


class Worker:
    def __init__(self, queues: list[str], env: dict[str, str], log: Path) -> None:
        self.queues, self.env, self.log = queues, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "worker",
                 "-Q", ",".join(self.queues), "--concurrency", "1", "--pool", "prefork",
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "-l", "WARNING", "-n", f"copy-{uuid.uuid4().hex[:8]}@%h"],
                cwd=BASE_DIR, env=self.env, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def _wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


@pytest.fixture
def workers(copy_namespace: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    suffix = f".t{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        # Local settings: the test settings run tasks eagerly, in-process.
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": str(settings.REDIS_URL),
        # The test run's ClickHouse database, named in the URL's path.
        "CLICKHOUSE_URL": urlunsplit(
            urlsplit(str(settings.CLICKHOUSE_URL))._replace(path=f"/{settings.CLICKHOUSE_DATABASE}")
        ),
        "CELERY_BROKER_URL": str(app.conf.broker_url),
        "TANDEM_QUEUE_SUFFIX": suffix,
        "TANDEM_REDIS_KEY_PREFIX": copy_namespace,
        "TANDEM_PAPER_LATENCY_MS": "0",
        "TANDEM_PAPER_STARTING_BALANCE": "1000000",
        "TANDEM_LOG_FORMAT": "plain",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "workers.log"
    ingest = Worker([f"ingest{suffix}"], env, log)
    execution = Worker([f"execution{suffix}", f"copy{suffix}", f"default{suffix}",
                        f"billing{suffix}"], env, log)  # fmt: skip
    ingest.start()
    execution.start()
    try:
        yield suffix, log
    finally:
        ingest.stop()
        execution.stop()


def test_leader_fills_ingested_by_one_worker_are_executed_by_another(
    workers: tuple[str, Path], follower: Callable[..., Any], market: None
) -> None:
    from copytrade.models import CopyDecision, TraderEvent
    from copytrade.services.demo import demo_traders_ensure
    from trading.models import FINAL_STATUSES, Order, OrderStatus, Position

    suffix, log = workers
    traders = demo_traders_ensure()[:2]
    strategies = [follower(traders[i % 2], equity="50000") for i in range(FOLLOWERS)]
    wallets = [s.agent_wallet_id for s in strategies]

    def followed_events() -> int:
        return TraderEvent.objects.filter(trader__in=traders).count()

    # The simulated traders trade at random; keep stepping until both have traded a little.
    sent = 0
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and followed_events() < 4:
        app.send_task("copytrade.tasks.demo_traders_step_task", queue=f"ingest{suffix}")
        sent += 1
        time.sleep(1.0)
    events = followed_events()
    assert events >= 4, f"{sent} steps sent, {events} events; worker log:\n{log.read_text()}"

    placed = CopyDecision.objects.filter(strategy__in=strategies, order__isnull=False)
    assert _wait(
        lambda: (
            placed.exists()
            and not Order.objects.filter(agent_wallet__in=wallets)
            .exclude(status__in=FINAL_STATUSES)
            .exists()
        ),
        timeout=90,
    ), log.read_text()

    orders = Order.objects.filter(agent_wallet__in=wallets)
    # One decision per (strategy, leader event), at most one order per decision.
    assert orders.count() == placed.count()
    keys = list(orders.values_list("strategy_id", "source_event_id"))
    assert len(keys) == len(set(keys))
    filled = orders.filter(status=OrderStatus.FILLED)
    assert filled.exists(), log.read_text()
    assert not filled.filter(submitted_at__isnull=True).exists()
    # Every follower holds exactly what its own orders filled: nothing twice, nothing lost.
    for wallet in wallets:
        for symbol_id in orders.filter(agent_wallet=wallet).values_list("symbol", flat=True):
            mine = orders.filter(agent_wallet=wallet, symbol_id=symbol_id)
            bought = mine.filter(side="buy").aggregate(q=Sum("filled_quantity"))["q"] or 0
            sold = mine.filter(side="sell").aggregate(q=Sum("filled_quantity"))["q"] or 0
            position = Position.objects.filter(agent_wallet=wallet, symbol_id=symbol_id).first()
            held = position.quantity if position else Decimal(0)
            assert held == Decimal(bought) - Decimal(sold)
