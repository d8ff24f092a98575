"""Numbered ClickHouse migrations: discovery, the applied-migrations table, and applying them.

A migration is a module ``analytics/clickhouse/migrations/NNNN_name.py`` with a list
``operations`` of :class:`CreateTable`, :class:`CreateView` or :class:`RunSQL`. Each operation
renders its statements for a database and an optional cluster (one code path: the embedded
server runs the single-server DDL, a cluster gets ``ON CLUSTER``/``Replicated*``/
``Distributed``, see :mod:`analytics.clickhouse.schema`).

Applied migrations are recorded in ``<database>.clickhouse_migrations`` (name, checksum of
the rendered statements, time). Every statement is idempotent (``IF NOT EXISTS``), and a
migration is recorded only after all its statements ran, so an interrupted run is completed
by the next one. Statements use fully qualified names, so the connection itself may point at
any database (the target may not exist yet).
"""

from __future__ import annotations

import hashlib
import importlib
import pkgutil
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from analytics.clickhouse import schema
from analytics.clickhouse.client import ClickHouse, quote_identifier

MIGRATION_NAME = re.compile(r"^\d{4}_[a-z0-9_]+$")
MIGRATIONS_PACKAGE = "analytics.clickhouse.migrations"


class Operation(Protocol):
    def statements(self, *, database: str, cluster: str) -> list[str]: ...


@dataclass(frozen=True)
class CreateTable:
    table: schema.Table

    def statements(self, *, database: str, cluster: str) -> list[str]:
        return schema.render(self.table, database=database, cluster=cluster)


@dataclass(frozen=True)
class CreateView:
    view: schema.MaterializedView

    def statements(self, *, database: str, cluster: str) -> list[str]:
        return schema.render(self.view, database=database, cluster=cluster)


@dataclass(frozen=True)
class RunSQL:
    """Raw statements with ``{database}`` (quoted) and ``{on_cluster}`` placeholders."""

    sql: Sequence[str]

    def statements(self, *, database: str, cluster: str) -> list[str]:
        on_cluster = f" ON CLUSTER {quote_identifier(cluster)}" if cluster else ""
        return [
            s.format(database=quote_identifier(database), on_cluster=on_cluster) for s in self.sql
        ]


@dataclass(frozen=True)
class Migration:
    name: str
    operations: tuple[Operation, ...] = field(default_factory=tuple)

    def statements(self, *, database: str, cluster: str = "") -> list[str]:
        return [
            statement
            for operation in self.operations
            for statement in operation.statements(database=database, cluster=cluster)
        ]

    def checksum(self, *, database: str, cluster: str = "") -> str:
        # Independent of the database name, so the same migration has one checksum everywhere.
        text = "\n;\n".join(self.statements(database="__db__", cluster=cluster))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def discover(package: str = MIGRATIONS_PACKAGE) -> list[Migration]:
    """Every migration module of ``package``, in name order."""
    module = importlib.import_module(package)
    names = sorted(info.name for info in pkgutil.iter_modules(module.__path__) if not info.ispkg)
    migrations = []
    for name in names:
        if not MIGRATION_NAME.match(name):
            continue
        loaded = importlib.import_module(f"{package}.{name}")
        operations = tuple(getattr(loaded, "operations", ()))
        migrations.append(Migration(name=name, operations=operations))
    return migrations


def _migrations_table(database: str) -> str:
    return f"{quote_identifier(database)}.{quote_identifier(schema.MIGRATIONS_TABLE)}"


def ensure_bookkeeping(client: ClickHouse, *, database: str, cluster: str = "") -> None:
    client.command(schema.create_database_sql(database, cluster=cluster))
    for statement in schema.render(schema.MIGRATIONS, database=database, cluster=cluster):
        client.command(statement)


def applied_migrations(client: ClickHouse, *, database: str) -> dict[str, str]:
    """name -> checksum of the migrations recorded in ``database``."""
    table = _migrations_table(database)  # a validated, quoted identifier
    rows = client.execute(f"SELECT name, checksum FROM {table} FINAL")  # noqa: S608
    return {str(name): str(checksum) for name, checksum in rows}


@dataclass(frozen=True)
class MigrationResult:
    applied: list[str]
    skipped: list[str]


def migrate(
    client: ClickHouse,
    *,
    database: str,
    cluster: str = "",
    migrations: Sequence[Migration] | None = None,
    log: Callable[[str], None] | None = None,
) -> MigrationResult:
    """Apply the migrations ``database`` has not recorded yet, in order; idempotent."""
    quote_identifier(database)
    plan = list(migrations) if migrations is not None else discover()
    ensure_bookkeeping(client, database=database, cluster=cluster)
    done = applied_migrations(client, database=database)
    applied: list[str] = []
    for migration in plan:
        if migration.name in done:
            continue
        for statement in migration.statements(database=database, cluster=cluster):
            client.command(statement)
        client.insert_rows(
            f"{database}.{schema.MIGRATIONS_TABLE}",
            ["name", "checksum", "applied_at"],
            [
                (
                    migration.name,
                    migration.checksum(database=database, cluster=cluster),
                    datetime.now(tz=UTC),
                )
            ],
        )
        applied.append(migration.name)
        if log is not None:
            log(migration.name)
    return MigrationResult(applied=applied, skipped=[m.name for m in plan if m.name in done])


def pending(client: ClickHouse, *, database: str, cluster: str = "") -> list[Migration]:
    """Migrations not recorded in ``database`` yet (changes nothing)."""
    exists = client.execute(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        {"db": database, "t": schema.MIGRATIONS_TABLE},
    )
    done = applied_migrations(client, database=database) if exists[0][0] else {}
    return [m for m in discover() if m.name not in done]
