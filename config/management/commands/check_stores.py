"""Connect to every store the configuration names; fail naming the variable that is wrong."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from config.health import CHECKS

VARIABLES = {
    "postgres": "DATABASE_URL",
    "redis": "REDIS_URL",
    "clickhouse": "CLICKHOUSE_URL",
    "broker": "CELERY_BROKER_URL (defaults to REDIS_URL)",
}


class Command(BaseCommand):
    help = "Check that PostgreSQL, Redis, ClickHouse and the Celery broker answer."

    def handle(self, *args: Any, **options: Any) -> None:
        for name, check in CHECKS.items():
            try:
                check()
            except Exception as exc:
                raise CommandError(
                    f"{VARIABLES[name]}: cannot reach {name}: {type(exc).__name__}: {exc}"
                ) from exc
            self.stdout.write(f"{name}: ok")
