"""The initial schema: every table of analytics.clickhouse.schema, then the materialized views
(created from the coarsest level of the candle cascade down, so no level misses a block)."""

from analytics.clickhouse import schema
from analytics.clickhouse.migrator import CreateTable, CreateView

operations = [
    *(CreateTable(table) for table in schema.TABLES),
    *(CreateView(view) for view in schema.VIEWS),
]
