"""Queues per workload: every task lands on a declared queue that some worker consumes, with a
time limit, and the latency-critical execution tasks outrank the rest of their queue."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

import pytest
from celery import Celery
from django.conf import settings

from config.celery import app

ROOT = Path(__file__).resolve().parents[2]


def _router() -> Any:
    return cast(Any, app.amqp).router  # celery-types does not describe the router


def _our_tasks(celery: Celery) -> list[str]:
    celery.loader.import_default_modules()
    return sorted(name for name in celery.tasks if not name.startswith("celery."))


def test_every_task_routes_to_a_declared_queue() -> None:
    declared = {queue.name for queue in settings.CELERY_TASK_QUEUES}
    assert declared == set(settings.TANDEM_QUEUES)
    tasks = _our_tasks(app)
    assert len(tasks) >= 20  # the apps' tasks were found, not an empty registry
    for name in tasks:
        route = _router().route({}, name)
        assert route["queue"].name in declared, name


@pytest.mark.parametrize(
    ("task", "queue"),
    [
        ("trading.tasks.order_submit_task", "execution"),
        ("trading.tasks.market_simulator_step", "ingest"),
        ("copytrade.tasks.trader_fills_poll_task", "ingest"),
        ("copytrade.tasks.decisions_announce_task", "copy"),
        ("copytrade.tasks.strategies_align_task", "copy"),
        ("billing.tasks.fill_fees_accrue_task", "billing"),
        ("analytics.tasks.buffers_drain_task", "ingest"),
        ("accounts.siwe_nonces_purge", "default"),
    ],
)
def test_workloads_are_kept_apart(task: str, queue: str) -> None:
    assert _router().route({}, task)["queue"].name == queue


def test_every_queue_has_a_worker_in_make_run_and_in_production() -> None:
    launcher = (ROOT / "config" / "launcher.py").read_text()
    make_run = re.search(r'"TANDEM_QUEUES", "([a-z,]+)"', launcher)
    assert make_run is not None
    assert set(make_run.group(1).split(",")) == set(settings.TANDEM_QUEUES)
    procfile = (ROOT / "Procfile").read_text()
    consumed = set(re.findall(r"-Q ([a-z]+)", procfile))
    assert consumed == set(settings.TANDEM_QUEUES)


def test_time_limits_and_priorities() -> None:
    for name in _our_tasks(app):
        task = app.tasks[name]
        hard = task.time_limit or app.conf.task_time_limit
        soft = task.soft_time_limit or app.conf.task_soft_time_limit
        assert hard, name
        assert soft, name
        assert soft < hard, name
    submit = app.tasks["trading.tasks.order_submit_task"]
    assert submit.priority == 9
    assert submit.time_limit <= 60
    assert app.conf.task_default_priority < submit.priority
    assert all(
        cast(Any, queue).queue_arguments == {"x-max-priority": 10}
        for queue in settings.CELERY_TASK_QUEUES
    )
