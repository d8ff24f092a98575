"""Numbered ClickHouse migrations (``NNNN_name.py`` with ``operations``), applied in order by
``manage.py migrate_clickhouse`` (analytics.clickhouse.migrator)."""
