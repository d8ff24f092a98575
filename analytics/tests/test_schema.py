"""The ClickHouse schema, its migrations and ``manage.py migrate_clickhouse``."""

from __future__ import annotations

import io
import re
import uuid
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from analytics.clickhouse import migrator, schema
from analytics.clickhouse.client import ClickHouse

pytestmark = pytest.mark.timeout(180)

EXPECTED_TTLS = {
    "market_ticks_raw": "90 DAY",
    "market_ohlcv_1min": "2 YEAR",
    "market_ohlcv_5m": "5 YEAR",
    "market_ohlcv_1h": "5 YEAR",
    "market_ohlcv_1d": "5 YEAR",
    "trader_events": "1 YEAR",
    "trader_kpis_day": "5 YEAR",
    "liq_heatmap_bins": "7 DAY",
    "copy_trade_events": "30 DAY",
    "market_book_snapshots": "30 DAY",
    "system_metrics": "180 DAY",
    "data_quality_quarantine": "90 DAY",
}


def test_every_table_and_view_exists_with_its_engine_and_ttl(clickhouse: ClickHouse) -> None:
    rows = clickhouse.query_dicts(
        "SELECT name, engine, create_table_query FROM system.tables "
        "WHERE database = currentDatabase()"
    )
    found = {row["name"]: row for row in rows}
    for table in schema.TABLES:
        assert table.name in found, table.name
        assert found[table.name]["engine"] == table.engine
    for view in schema.VIEWS:
        assert found[view.name]["engine"] == "MaterializedView"
    for name, ttl in EXPECTED_TTLS.items():
        amount, unit = ttl.split()
        rendered = f"toInterval{unit.title()}({amount})"  # how the server prints INTERVAL n UNIT
        assert rendered in found[name]["create_table_query"], name
    assert "ReplacingMergeTree(ingested_at)" in found["trader_events"]["create_table_query"]
    assert "event_hash" in found["trader_events"]["create_table_query"].split("ORDER BY")[1]
    # The seed's Gorilla codec on decimals does not run; nothing uses it.
    assert not any("Gorilla" in row["create_table_query"] for row in rows)


def test_ttls_as_rendered() -> None:
    by_name = {t.name: t for t in schema.TABLES}
    for name, ttl in EXPECTED_TTLS.items():
        assert f"INTERVAL {ttl} DELETE" in (by_name[name].ttl or ""), name
    candles = by_name["market_candles"].ttl or ""
    assert "2 YEAR DELETE WHERE interval = '1m'" in candles
    assert "5 YEAR DELETE" in candles


def test_migrations_are_recorded_and_idempotent(clickhouse_db: str) -> None:
    out = io.StringIO()
    call_command("migrate_clickhouse", stdout=out)
    assert "up to date" in out.getvalue()
    client = ClickHouse(settings.CLICKHOUSE_URL, database="default", pool_size=1)
    try:
        applied = migrator.applied_migrations(client, database=clickhouse_db)
    finally:
        client.close()
    assert set(applied) == {m.name for m in migrator.discover()}
    assert all(re.fullmatch(r"[0-9a-f]{16}", checksum) for checksum in applied.values())


def test_command_migrates_a_new_database_then_skips_it() -> None:
    name = f"mig_test_{uuid.uuid4().hex[:10]}"
    client = ClickHouse(settings.CLICKHOUSE_URL, database="default", pool_size=1)
    try:
        plan = io.StringIO()
        call_command("migrate_clickhouse", "--database", name, "--plan", stdout=plan)
        assert "pending: 0001_initial" in plan.getvalue()
        assert not client.execute(
            "SELECT 1 FROM system.databases WHERE name = {n:String}", {"n": name}
        )  # --plan changes nothing
        first = io.StringIO()
        call_command("migrate_clickhouse", "--database", name, stdout=first)
        assert "applied: 0001_initial" in first.getvalue()
        tables = {
            row[0]
            for row in client.execute(
                "SELECT name FROM system.tables WHERE database = {n:String}", {"n": name}
            )
        }
        assert {t.name for t in schema.TABLES} <= tables
        again = io.StringIO()
        call_command("migrate_clickhouse", "--database", name, stdout=again)
        assert "applied" not in again.getvalue().replace("1 applied", "")
        assert "up to date" in again.getvalue()
    finally:
        client.drop_database(name)
        client.close()


@pytest.mark.parametrize("bad", ["x; DROP DATABASE default", "a-b", "1abc", ""])
def test_command_refuses_a_bad_database_name(bad: str) -> None:
    from django.core.management.base import CommandError

    with pytest.raises((CommandError, Exception)):
        call_command("migrate_clickhouse", "--database", bad or "`", "--plan", stdout=io.StringIO())


def test_cluster_ddl_is_generated_through_one_function() -> None:
    statements = migrator.discover()[0].statements(database="tandem", cluster="main")
    text = "\n".join(statements)
    creates = [s for s in statements if s.startswith("CREATE")]
    assert creates
    assert all(" ON CLUSTER `main`" in s.split("\n")[0] for s in creates)
    ticks_local = next(s for s in statements if "`market_ticks_raw_local`" in s.split("\n")[0])
    assert (
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/tandem/market_ticks_raw_local', "
        "'{replica}')" in ticks_local
    )
    assert "replicated_deduplication_window = 1000" in ticks_local
    assert "non_replicated_deduplication_window" not in text
    distributed = next(
        s
        for s in statements
        if s.startswith("CREATE TABLE IF NOT EXISTS `tandem`.`market_ticks_raw` ")
    )
    assert "AS `tandem`.`market_ticks_raw_local`" in distributed
    assert (
        "ENGINE = Distributed(`main`, `tandem`, `market_ticks_raw_local`, cityHash64(symbol))"
        in distributed
    )
    events = next(s for s in statements if "`trader_events_local`" in s.split("\n")[0])
    assert (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/tandem/trader_events_local', "
        "'{replica}', ingested_at)" in events
    )
    assert "Distributed(`main`, `tandem`, `trader_events_local`, cityHash64(trader_id))" in text
    candles = next(s for s in statements if "`market_ohlcv_1min_local`" in s.split("\n")[0])
    assert "ReplicatedAggregatingMergeTree(" in candles
    view = next(s for s in statements if "`mv_ohlcv_1min`" in s.split("\n")[0])
    # Views live on every node, between the local tables.
    assert "TO `tandem`.`market_ohlcv_1min_local`" in view
    assert "FROM `tandem`.`market_ticks_raw_local` AS src" in view
    assert schema.create_database_sql("tandem", cluster="main") == (
        "CREATE DATABASE IF NOT EXISTS `tandem` ON CLUSTER `main`"
    )


def test_every_table_and_view_has_its_cluster_form() -> None:
    """Not only the few spelled out above: every table of the schema (and the migrations'
    bookkeeping table) is a Replicated local table plus a Distributed one over it, and every
    view runs between local tables."""
    statements = migrator.discover()[0].statements(database="tandem", cluster="c2x2")
    statements += schema.render(schema.MIGRATIONS, database="tandem", cluster="c2x2")
    heads = {s.split("\n")[0]: s for s in statements}
    for table in (*schema.TABLES, schema.MIGRATIONS):
        local = heads[f"CREATE TABLE IF NOT EXISTS `tandem`.`{table.name}_local` ON CLUSTER `c2x2`"]
        path = f"'/clickhouse/tables/{{shard}}/tandem/{table.name}_local', '{{replica}}'"
        assert f"ENGINE = Replicated{table.engine}({path}" in local, table.name
        if table.ttl:
            assert f"TTL {table.ttl}" in local, table.name
        distributed = heads[
            f"CREATE TABLE IF NOT EXISTS `tandem`.`{table.name}` ON CLUSTER `c2x2` "
            f"AS `tandem`.`{table.name}_local`"
        ]
        assert distributed.endswith(
            f"ENGINE = Distributed(`c2x2`, `tandem`, `{table.name}_local`, {table.sharding_key})"
        ), table.name
    for view in schema.VIEWS:
        [ddl] = [s for s in statements if f"`tandem`.`{view.name}` ON CLUSTER `c2x2`" in s]
        assert f"TO `tandem`.`{view.target}_local`" in ddl
        assert f"FROM `tandem`.`{view.source}_local` AS src" in ddl


def test_cluster_inserts_are_synchronous(settings: Any) -> None:
    """On a cluster an insert must return only once its shard holds the rows (or fail and be
    retried from the buffer); a single server has no such setting to send."""
    from analytics.clickhouse.client import default_settings

    settings.CLICKHOUSE_CLUSTER = ""
    assert "distributed_foreground_insert" not in default_settings()
    settings.CLICKHOUSE_CLUSTER = "c2x2"
    cluster = default_settings()
    assert cluster["distributed_foreground_insert"] == 1
    assert cluster["max_execution_time"] == settings.CLICKHOUSE_SETTINGS["max_execution_time"]


def test_single_server_ddl_has_no_cluster_parts() -> None:
    text = "\n".join(migrator.discover()[0].statements(database="tandem"))
    assert "ON CLUSTER" not in text
    assert "Replicated" not in text
    assert "Distributed" not in text
    assert "non_replicated_deduplication_window = 1000" in text


def test_sql_flag_prints_cluster_ddl_without_running_it(settings: Any) -> None:
    settings.CLICKHOUSE_CLUSTER = "analytics_cluster"
    out = io.StringIO()
    call_command("migrate_clickhouse", "--sql", "--database", "never_created", stdout=out)
    assert "ON CLUSTER `analytics_cluster`" in out.getvalue()
    client = ClickHouse(settings.CLICKHOUSE_URL, database="default", pool_size=1)
    try:
        assert not client.execute("SELECT 1 FROM system.databases WHERE name = 'never_created'")
    finally:
        client.close()


def test_candle_views_cascade_and_aggregate_states_are_not_plain_columns(
    clickhouse: ClickHouse,
) -> None:
    """The seed's view wrote -State values into plain columns; ours keeps states."""
    types = dict(
        clickhouse.execute(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
            "AND table = 'market_ohlcv_1h'"
        )
    )
    assert types["open"].startswith("AggregateFunction(argMin")
    assert types["close"].startswith("AggregateFunction(argMax")
    assert types["high"].startswith("SimpleAggregateFunction(max")
    assert types["trade_count"] == "SimpleAggregateFunction(sum, UInt64)"
