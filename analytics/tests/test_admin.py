"""Staff screens: the data-quality report and the read-only, audited SQL console."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import AuditLog
from accounts.tests.factories import StaffFactory, UserFactory
from analytics import services
from analytics.batches import TickBatch
from analytics.buffer import Buffer
from analytics.clickhouse.client import ClickHouse
from config.errors import PermissionDenied, ValidationFailed
from trading.marketdata import MarketSimulator

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(180)]
PASSWORD = "correct horse battery staple"


@pytest.fixture
def admin_client(client: Client) -> tuple[Client, Any]:
    staff = StaffFactory.create(password=PASSWORD, is_superuser=True)
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    response = client.post(
        "/admin/login/",
        {
            "username": staff.email,
            "password": PASSWORD,
            "otp_token": str(totp.token()).zfill(6),
            "next": "/admin/",
        },
    )
    assert response.status_code == 302, response.content
    return client, staff


def console_audits() -> list[AuditLog]:
    return list(AuditLog.objects.filter(action="analytics_sql_console").order_by("created_at"))


def test_quality_report_lists_counts_and_quarantined_rows(
    clickhouse: ClickHouse, admin_client: tuple[Client, Any]
) -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    client, _ = admin_client
    sim = MarketSimulator(seed=3, start=datetime.now(tz=UTC) - timedelta(seconds=60))
    ticks = [t for _ in range(20) for t in sim.step(1)]
    ticks[50] = type(ticks[50])(**{**ticks[50].__dict__, "price": ticks[50].price * Decimal(3)})
    services.market_ticks_ingest(batch=TickBatch.from_ticks(ticks))
    Buffer("funding").push(b"garbage", rows=1)  # waiting in a buffer
    page = client.get("/admin/analytics/qualityreport/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "price_deviation" in html
    assert "market_ticks" in html
    assert str(ticks[50].sequence_number) in html
    assert "<td>funding</td><td>1</td><td>1</td><td>0</td>" in html
    filtered = client.get(
        "/admin/analytics/qualityreport/", {"dataset": "market_ticks", "reason": "duplicate"}
    )
    assert filtered.status_code == 200
    assert "None." in filtered.content.decode()
    assert client.get("/admin/analytics/qualityreport/add/").status_code == 403


def test_dead_letters_can_be_put_back_from_the_report(
    clickhouse: ClickHouse, admin_client: tuple[Client, Any], settings: Any
) -> None:
    client, staff = admin_client
    settings.ANALYTICS = {**settings.ANALYTICS, "DRAIN_MAX_ATTEMPTS": 1}
    buffer = Buffer("copy_trade_events")
    buffer.push(b"[1]", rows=1)
    assert services.buffer_drain(stream="copy_trade_events").dead_lettered == 1
    response = client.post("/admin/analytics/qualityreport/", {"requeue": "copy_trade_events"})
    assert response.status_code == 302
    assert buffer.pending_items() == 1
    assert buffer.dead_items() == 0
    assert AuditLog.objects.filter(
        action="analytics_dead_letters_requeue", actor_id=staff.pk
    ).exists()


def test_console_runs_a_select_and_audits_it(
    clickhouse: ClickHouse, admin_client: tuple[Client, Any]
) -> None:
    client, staff = admin_client
    response = client.post(
        "/admin/analytics/sqlconsole/",
        {
            "sql": "SELECT name FROM system.tables "
            "WHERE database = currentDatabase() AND name = 'market_ticks_raw'"
        },
    )
    assert response.status_code == 200
    assert "<td>market_ticks_raw</td>" in response.content.decode()
    [audit] = console_audits()
    assert audit.actor_id == staff.pk
    assert audit.status == "success"
    assert audit.new_values is not None
    assert "market_ticks_raw" in audit.new_values["sql"]
    assert audit.new_values["rows"] == 1


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DROP TABLE market_ticks_raw", "Only"),
        ("INSERT INTO market_ticks_raw SELECT * FROM market_ticks_raw", "Only"),
        ("SELECT 1; DROP TABLE market_ticks_raw", "One statement"),
        ("SELECT 1 INTO OUTFILE '/tmp/x'", "OUTFILE"),
        ("ALTER TABLE market_ticks_raw DELETE WHERE 1", "Only"),
        ("", "Enter"),
    ],
)
def test_statements_outside_the_allow_list_are_refused_and_audited(
    clickhouse: ClickHouse, sql: str, message: str
) -> None:
    staff = StaffFactory.create()
    with pytest.raises(ValidationFailed) as info:
        services.sql_console_run(user=staff, sql=sql)
    assert message in info.value.message
    assert info.value.fields.keys() == {"sql"}
    [audit] = console_audits()
    assert audit.status == "failure"
    assert clickhouse.execute("EXISTS TABLE market_ticks_raw") == [(1,)]


@pytest.mark.parametrize(
    "sql",
    [
        "WITH 1 AS x INSERT INTO market_ticks_raw (symbol) SELECT 'X'",  # passes the allow-list
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:1/', 'CSV')",
    ],
)
def test_the_server_enforces_readonly_behind_the_allow_list(
    clickhouse: ClickHouse, sql: str
) -> None:
    staff = StaffFactory.create()
    with pytest.raises(ValidationFailed) as info:
        services.sql_console_run(user=staff, sql=sql)
    assert "readonly" in info.value.message.lower()
    [audit] = console_audits()
    assert audit.status == "failure"
    assert audit.error_code == "164"
    assert clickhouse.execute("SELECT count() FROM market_ticks_raw") == [(0,)]


def test_console_row_limit(clickhouse: ClickHouse, settings: Any) -> None:
    settings.ANALYTICS = {**settings.ANALYTICS, "CONSOLE_MAX_ROWS": 100}
    staff = StaffFactory.create()
    assert (
        len(services.sql_console_run(user=staff, sql="SELECT number FROM numbers(100)").rows) == 100
    )
    with pytest.raises(ValidationFailed) as info:
        services.sql_console_run(user=staff, sql="SELECT number FROM numbers(101)")
    assert "Limit for result exceeded" in info.value.message or "rows" in info.value.message


def test_console_is_staff_only(clickhouse: ClickHouse, client: Client) -> None:
    customer = UserFactory.create()
    with pytest.raises(PermissionDenied):
        services.sql_console_run(user=customer, sql="SELECT 1")
    client.force_login(customer)
    assert client.get("/admin/analytics/sqlconsole/").status_code == 302  # to the admin login
