"""Analytics keeps its data in ClickHouse; PostgreSQL holds no analytics table.

The two models below are *unmanaged* and have no table: they give the staff screens of the
ClickHouse-backed admin pages (the data-quality report and the read-only SQL console) a place
in the admin index and Django permissions to grant (``analytics.view_qualityreport``,
``analytics.view_sqlconsole``). The quarantine itself is a ClickHouse table
(``data_quality_quarantine``): see analytics.clickhouse.schema for why.
"""

from django.db import models


class QualityReport(models.Model):
    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "data quality report"
        verbose_name_plural = "data quality report"

    def __str__(self) -> str:
        return "data quality report"


class SqlConsole(models.Model):
    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "ClickHouse SQL console"
        verbose_name_plural = "ClickHouse SQL console"

    def __str__(self) -> str:
        return "ClickHouse SQL console"
