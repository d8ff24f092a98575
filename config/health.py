"""Liveness and readiness probes.

``/healthz`` answers while the process can serve a request at all. ``/readyz`` checks each store
the process depends on and answers 503 naming those that failed, so a load balancer stops sending
traffic to an instance that would only return errors.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

CHECK_TIMEOUT = 2.0


def check_postgres() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    from django_redis import get_redis_connection

    get_redis_connection("default").ping()


def check_clickhouse() -> None:
    from analytics.clickhouse.client import get_client

    if not get_client().ping():
        raise ConnectionError("ClickHouse did not answer ping")


def check_broker() -> None:
    from config.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=int(CHECK_TIMEOUT))


CHECKS: dict[str, Callable[[], None]] = {
    "postgres": check_postgres,
    "redis": check_redis,
    "clickhouse": check_clickhouse,
    "broker": check_broker,
}


def run_checks() -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    for name, check in CHECKS.items():
        started = time.perf_counter()
        try:
            check()
        except Exception as exc:
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            results[name] = {"ok": True}
        results[name]["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return results


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    results = run_checks()
    failed = sorted(name for name, result in results.items() if not result["ok"])
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "failed": failed}
    # Error text can name hosts; show it to operators running in debug or to staff only.
    if settings.DEBUG or getattr(request.user, "is_staff", False):
        body["checks"] = results
    else:
        body["checks"] = {name: {"ok": result["ok"]} for name, result in results.items()}
    return JsonResponse(body, status=503 if failed else 200)
