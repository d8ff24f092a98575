"""``manage.py migrate_clickhouse``: apply the numbered ClickHouse migrations (idempotent).

    manage.py migrate_clickhouse                 # the configured database, applied ones skipped
    manage.py migrate_clickhouse --database NAME # another database (created when missing)
    manage.py migrate_clickhouse --plan          # list what would be applied, change nothing
    manage.py migrate_clickhouse --sql [--cluster NAME]  # print the DDL, change nothing

With settings.CLICKHOUSE_CLUSTER set (or ``--cluster``), the DDL is the cluster variant:
``ON CLUSTER``, ``Replicated*`` engines and ``Distributed`` tables (analytics.clickhouse.schema).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from analytics.clickhouse import migrator
from analytics.clickhouse.client import (
    ClickHouse,
    ClickHouseError,
    NetworkError,
    ServerException,
    configured_database,
    quote_identifier,
)


class Command(BaseCommand):
    help = "Apply the ClickHouse migrations in analytics/clickhouse/migrations/."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", help="target database (default: the configured one)")
        parser.add_argument(
            "--cluster", default=None, help="cluster name (default: settings.CLICKHOUSE_CLUSTER)"
        )
        parser.add_argument("--plan", action="store_true", help="list pending migrations only")
        parser.add_argument(
            "--sql", action="store_true", help="print every migration's DDL; execute nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        database = options["database"] or configured_database()
        cluster = (
            options["cluster"]
            if options["cluster"] is not None
            else getattr(settings, "CLICKHOUSE_CLUSTER", "")
        )
        try:
            quote_identifier(database)
            if cluster:
                quote_identifier(cluster)
        except ClickHouseError as exc:
            raise CommandError(str(exc)) from exc
        if options["sql"]:
            for migration in migrator.discover():
                self.stdout.write(f"-- {migration.name}")
                for statement in migration.statements(database=database, cluster=cluster):
                    self.stdout.write(statement + ";\n")
            return
        # Statements name their database; the connection itself stays on `default`, which
        # exists everywhere (the target may not yet).
        client = ClickHouse(settings.CLICKHOUSE_URL, database="default", pool_size=1)
        try:
            if options["plan"]:
                pending = migrator.pending(client, database=database, cluster=cluster)
                for migration in pending:
                    self.stdout.write(f"pending: {migration.name}")
                if not pending:
                    self.stdout.write(f"ClickHouse database {database}: nothing to apply")
                return
            result = migrator.migrate(
                client,
                database=database,
                cluster=cluster,
                log=lambda name: self.stdout.write(f"applied: {name}"),
            )
        except (ServerException, NetworkError, OSError) as exc:
            raise CommandError(f"CLICKHOUSE_URL: ClickHouse migration failed: {exc}") from exc
        finally:
            client.close()
        if not result.applied:
            self.stdout.write(
                f"ClickHouse database {database}: up to date ({len(result.skipped)} applied)"
            )
